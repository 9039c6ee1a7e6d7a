/**
 * The webhook's lean AWS path (lib/aws/aws-json.ts + lib/aws/webhook-aws.ts) against a local HTTP
 * server that plays SSM/SQS (request shape, Signature V4 checked by an independent computation,
 * error answers, timeouts) and against moto (a real round trip of both operations).
 */
import { createHash, createHmac } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SSMClient, PutParameterCommand } from '@aws-sdk/client-ssm';
import { SQSClient, CreateQueueCommand, ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { AwsServiceError, endpointFor, envAwsJsonSend, SQS, SSM } from '../../lib/aws/aws-json';
import { webhookAws, SECRET_READ_POLICY } from '../../lib/aws/webhook-aws';
import { isRetryable, type RetryStats } from '../../lib/aws/retry';
import { startMoto, motoClientConfig, type MotoServer } from '../helpers/moto';

interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
  /** The client's port: the same one twice means a kept-alive connection was reused. */
  port?: number;
}
type Reply = (seen: Seen, res: ServerResponse) => void;

let server: Server;
let endpoint: string;
let seen: Seen[] = [];
let replies: Reply[] = [];
const json = (status: number, body: unknown, headers: Record<string, string> = {}) => (_: Seen, res: ServerResponse) => {
  res.writeHead(status, { 'content-type': 'application/x-amz-json-1.1', 'x-amzn-requestid': 'req-123', ...headers });
  res.end(JSON.stringify(body));
};

beforeAll(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const s = { method: req.method!, url: req.url!, headers: req.headers, body: Buffer.concat(chunks).toString(), port: req.socket.remotePort };
      seen.push(s);
      const reply = replies.length > 1 ? replies.shift()! : replies[0];
      if (reply) reply(s, res);
      else json(500, { __type: 'NoReplySet' })(s, res);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));
beforeEach(() => {
  seen = [];
  replies = [];
});

const CREDS = { AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE', AWS_SECRET_ACCESS_KEY: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY', AWS_SESSION_TOKEN: 'session-token-abc' };
const env = (more: Record<string, string> = {}) => ({ ...CREDS, AWS_REGION: 'eu-west-1', AWS_ENDPOINT_URL: endpoint, ...more });
const noWait = { sleep: async () => {}, random: () => 0.5 };
const timeouts = { connectTimeoutMs: 1000, requestTimeoutMs: 1500 };

/** Signature V4 as AWS documents it ("Create a signed AWS API request"), computed here without the SDK. */
function expectedSignature(s: Seen, secret: string, region: string, service: string): string {
  const auth = String(s.headers.authorization);
  const signedHeaders = /SignedHeaders=([^,]+)/.exec(auth)![1].split(';');
  const amzDate = String(s.headers['x-amz-date']);
  const headerLines = signedHeaders.map((h) => `${h}:${String(s.headers[h]).trim()}\n`).join('');
  const canonical = `${s.method}\n${s.url}\n\n${headerLines}\n${signedHeaders.join(';')}\n${createHash('sha256').update(s.body).digest('hex')}`;
  const scope = `${amzDate.slice(0, 8)}/${region}/${service}/aws4_request`;
  const toSign = ['AWS4-HMAC-SHA256', amzDate, scope, createHash('sha256').update(canonical).digest('hex')].join('\n');
  const hmac = (k: Buffer | string, d: string) => createHmac('sha256', k).update(d).digest();
  const key = hmac(hmac(hmac(hmac(`AWS4${secret}`, amzDate.slice(0, 8)), region), service), 'aws4_request');
  return createHmac('sha256', key).update(toSign).digest('hex');
}

describe('aws-json: one signed call', () => {
  it('sends GetParameter as AWS JSON 1.1 with a Signature V4 that an independent computation accepts, session token included', async () => {
    replies = [json(200, { Parameter: { Name: '/p', Value: 's3cr3t', Type: 'SecureString' } })];
    const out = await envAwsJsonSend(env())({ service: SSM, operation: 'GetParameter', input: { Name: '/p', WithDecryption: true }, timeouts });
    expect(out).toEqual({ Parameter: { Name: '/p', Value: 's3cr3t', Type: 'SecureString' } });
    const s = seen[0];
    expect(s.method).toBe('POST');
    expect(s.url).toBe('/');
    expect(JSON.parse(s.body)).toEqual({ Name: '/p', WithDecryption: true });
    expect(s.headers['content-type']).toBe('application/x-amz-json-1.1');
    expect(s.headers['x-amz-target']).toBe('AmazonSSM.GetParameter');
    expect(s.headers['x-amz-security-token']).toBe('session-token-abc');
    expect(s.headers['x-amz-date']).toMatch(/^\d{8}T\d{6}Z$/);
    const auth = String(s.headers.authorization);
    expect(auth).toMatch(new RegExp(`^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/${String(s.headers['x-amz-date']).slice(0, 8)}/eu-west-1/ssm/aws4_request, SignedHeaders=[a-z0-9;-]+, Signature=[0-9a-f]{64}$`));
    const signed = /SignedHeaders=([^,]+)/.exec(auth)![1].split(';');
    for (const h of ['host', 'content-type', 'x-amz-target', 'x-amz-date', 'x-amz-security-token']) expect(signed).toContain(h);
    expect(/Signature=([0-9a-f]+)/.exec(auth)![1]).toBe(expectedSignature(s, CREDS.AWS_SECRET_ACCESS_KEY, 'eu-west-1', 'ssm'));
    // A changed secret key gives another signature: the check above can fail.
    expect(/Signature=([0-9a-f]+)/.exec(auth)![1]).not.toBe(expectedSignature(s, 'another-key', 'eu-west-1', 'ssm'));
  });

  it('sends SendMessage as AWS JSON 1.0 to the SQS endpoint variable first, and without session token when there is none', async () => {
    replies = [json(200, { MessageId: 'm-1' })];
    const { AWS_SESSION_TOKEN: _, ...noToken } = env({ AWS_ENDPOINT_URL: 'http://127.0.0.1:9', AWS_ENDPOINT_URL_SQS: endpoint });
    await envAwsJsonSend(noToken)({ service: SQS, operation: 'SendMessage', input: { QueueUrl: 'q', MessageBody: 'b' }, timeouts });
    expect(seen[0].headers['content-type']).toBe('application/x-amz-json-1.0');
    expect(seen[0].headers['x-amz-target']).toBe('AmazonSQS.SendMessage');
    expect(seen[0].headers['x-amz-security-token']).toBeUndefined();
    expect(String(seen[0].headers.authorization)).toContain('/eu-west-1/sqs/aws4_request');
    expect(/Signature=([0-9a-f]+)/.exec(String(seen[0].headers.authorization))![1]).toBe(expectedSignature(seen[0], CREDS.AWS_SECRET_ACCESS_KEY, 'eu-west-1', 'sqs'));
  });

  it('turns an error answer into an SDK-shaped error (code, status, request id) that carries neither request nor credentials', async () => {
    replies = [json(400, { __type: 'com.amazonaws.ssm#ParameterNotFound', message: 'Parameter /p not found.' })];
    const e = await envAwsJsonSend(env())({ service: SSM, operation: 'GetParameter', input: { Name: '/p' }, timeouts }).catch((x) => x);
    expect(e).toBeInstanceOf(AwsServiceError);
    expect(e).toMatchObject({ name: 'ParameterNotFound', $fault: 'client', $metadata: { httpStatusCode: 400, requestId: 'req-123' } });
    expect(e.message).toBe('SSM GetParameter: Parameter /p not found.');
    const dump = JSON.stringify({ ...e, message: e.message, stack: e.stack });
    for (const v of Object.values(CREDS)) expect(dump).not.toContain(v);
    // The x-amzn-errortype header wins, and its URI part is dropped (as the SDK reads it).
    replies = [json(400, { __type: 'Other' }, { 'x-amzn-errortype': 'ThrottlingException:http://internal.amazon.com/coral/com.amazon.coral.availability/' })];
    const t = await envAwsJsonSend(env())({ service: SSM, operation: 'GetParameter', input: {}, timeouts }).catch((x) => x);
    expect(t.name).toBe('ThrottlingException');
    expect(isRetryable(t)).toBe(true);
    replies = [(_, res) => res.writeHead(503).end('<html>busy</html>')];
    const u = await envAwsJsonSend(env())({ service: SSM, operation: 'GetParameter', input: {}, timeouts }).catch((x) => x);
    expect(u).toMatchObject({ name: 'ServiceUnavailable', $fault: 'server', $metadata: { httpStatusCode: 503 } });
    expect(isRetryable(u)).toBe(true);
  });

  it('never puts a successful answer into an error (it may be the secret)', async () => {
    replies = [(_, res) => res.writeHead(200).end('not json: the-secret-value')];
    const e = await envAwsJsonSend(env())({ service: SSM, operation: 'GetParameter', input: {}, timeouts }).catch((x) => x);
    expect(e.message).toMatch(/is not a JSON object/);
    expect(JSON.stringify({ ...e, m: e.message })).not.toContain('the-secret-value');
  });

  it('refuses an answer over 1 MiB without keeping it', async () => {
    replies = [(_, res) => res.writeHead(200).end('x'.repeat(1024 * 1024 + 10))];
    const e = await envAwsJsonSend(env())({ service: SSM, operation: 'GetParameter', input: {}, timeouts }).catch((x) => x);
    expect(e.message).toMatch(/larger than 1048576 bytes/);
  });

  it('gives up on a silent endpoint after the request timeout with a TimeoutError (retryable)', async () => {
    replies = [() => undefined]; // never answers
    const t0 = Date.now();
    const e = await envAwsJsonSend(env())({ service: SSM, operation: 'GetParameter', input: {}, timeouts: { connectTimeoutMs: 500, requestTimeoutMs: 300 } }).catch((x) => x);
    expect(e.name).toBe('TimeoutError');
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(isRetryable(e)).toBe(true);
  });

  it('names what is missing: credentials, region, a bad endpoint (EnvError: the webhook answers 500)', async () => {
    const call = (e: Record<string, string>) => envAwsJsonSend(e)({ service: SSM, operation: 'GetParameter', input: {}, timeouts }).catch((x) => x);
    const { AWS_ACCESS_KEY_ID: _a, ...noKey } = env();
    expect(await call(noKey)).toMatchObject({ name: 'EnvError', message: expect.stringContaining('AWS_ACCESS_KEY_ID is not set') });
    const { AWS_REGION: _r, ...noRegion } = env();
    expect(await call(noRegion)).toMatchObject({ name: 'EnvError', message: expect.stringContaining('AWS_REGION is not set') });
    expect(await call(env({ AWS_ENDPOINT_URL: 'not a url' }))).toMatchObject({ name: 'EnvError', message: expect.stringContaining('AWS_ENDPOINT_URL') });
    expect(seen).toHaveLength(0);
  });

  it('finds the regional endpoint, FIPS, the China partition, and prefers configured endpoints to the queue URL', () => {
    expect(endpointFor(SSM, 'eu-west-1', {}).origin).toBe('https://ssm.eu-west-1.amazonaws.com');
    expect(endpointFor(SSM, 'us-east-1', { AWS_USE_FIPS_ENDPOINT: 'true' }).origin).toBe('https://ssm-fips.us-east-1.amazonaws.com');
    expect(endpointFor(SSM, 'cn-north-1', {}).origin).toBe('https://ssm.cn-north-1.amazonaws.com.cn');
    expect(endpointFor(SQS, 'eu-west-1', {}, 'https://sqs.eu-west-1.amazonaws.com').origin).toBe('https://sqs.eu-west-1.amazonaws.com');
    expect(endpointFor(SQS, 'eu-west-1', { AWS_ENDPOINT_URL: 'http://127.0.0.1:5000' }, 'https://sqs.eu-west-1.amazonaws.com').origin).toBe('http://127.0.0.1:5000');
    expect(endpointFor(SQS, 'eu-west-1', { AWS_ENDPOINT_URL: 'http://a:1', AWS_IGNORE_CONFIGURED_ENDPOINT_URLS: 'true' }, 'https://sqs.eu-west-1.amazonaws.com').origin).toBe('https://sqs.eu-west-1.amazonaws.com');
  });
});

describe('aws-json: endpoints as the SDK resolves them', () => {
  // The SDK's own endpoint rules (SSMClient/SQSClient config.endpointProvider) for a region of every
  // partition and a few that do not exist yet but match a partition's pattern; a wrong host is a
  // DNS error, retried and answered 503 for ever.
  const regions = ['eu-west-1', 'us-east-1', 'il-central-1', 'mx-central-1', 'ap-southeast-9', 'cn-north-1', 'cn-northwest-2', 'us-gov-west-1', 'us-gov-east-1', 'us-gov-north-7', 'eusc-de-east-1', 'eusc-de-west-2', 'us-iso-east-1', 'us-isob-east-1', 'eu-isoe-west-1', 'us-isof-south-1'];
  const sdk = { ssm: new SSMClient({ region: 'eu-west-1' }), sqs: new SQSClient({ region: 'eu-west-1' }) };
  it.each(regions)('%s, with and without FIPS', (region) => {
    for (const fips of [false, true])
      for (const service of [SSM, SQS]) {
        const expected = sdk[service.name as 'ssm' | 'sqs'].config.endpointProvider({ Region: region, UseFIPS: fips, UseDualStack: false }).url.origin;
        expect(`${service.name} fips=${fips} ${endpointFor(service, region, fips ? { AWS_USE_FIPS_ENDPOINT: 'true' } : {}).origin}`).toBe(`${service.name} fips=${fips} ${expected}`);
      }
  });
});

describe('webhook-aws: retries and error classes over the real transport', () => {
  const queueUrl = () => `${endpoint}/123456789012/events`;
  const md5 = (s: string) => createHash('md5').update(s).digest('hex');

  it('retries ThrottlingException and 5xx within the secret-read budget, then answers', async () => {
    replies = [json(400, { __type: 'ThrottlingException', message: 'Rate exceeded' }), json(500, { __type: 'InternalServerError' }), json(200, { Parameter: { Value: 'v' } })];
    const stats: RetryStats = { attempts: 0, waitedMs: 0 };
    const aws = webhookAws({ send: envAwsJsonSend(env()), retryEnv: noWait, stats });
    expect(await aws.readSecret('/p')).toBe('v');
    expect(seen).toHaveLength(3);
    expect(stats.attempts).toBe(3);
    expect(stats.waitedMs).toBeLessThanOrEqual(SECRET_READ_POLICY.maxTotalWaitMs);
  });

  it('stops after 3 attempts and rethrows throttling as is (the webhook answers 503)', async () => {
    replies = [json(400, { __type: 'ThrottlingException', message: 'Rate exceeded' })];
    const e = await webhookAws({ send: envAwsJsonSend(env()), retryEnv: noWait }).readSecret('/p').catch((x) => x);
    expect(e.name).toBe('ThrottlingException');
    expect(seen).toHaveLength(3);
  });

  it('retries a dropped connection (network error), then sends', async () => {
    replies = [(_, res) => res.socket!.destroy(), json(200, { MessageId: 'm-2', MD5OfMessageBody: md5('hello') })];
    const out = await webhookAws({ send: envAwsJsonSend(env()), retryEnv: noWait }).queueMessage(queueUrl(), 'hello', { dedupKey: 'k' });
    expect(out).toEqual({ messageId: 'm-2' });
    expect(seen).toHaveLength(2);
    expect(JSON.parse(seen[1].body)).toEqual({ QueueUrl: queueUrl(), MessageBody: 'hello', MessageAttributes: { dedupKey: { DataType: 'String', StringValue: 'k' } } });
  });

  it('retries a kept-alive connection that the server dropped meanwhile (a Lambda thawed after a freeze): ECONNRESET on the reused socket, then a new one', async () => {
    replies = [json(200, { Parameter: { Value: 'v1' } }), (_, res) => res.socket!.destroy(), json(200, { Parameter: { Value: 'v2' } })];
    const aws = webhookAws({ send: envAwsJsonSend(env()), retryEnv: noWait });
    expect(await aws.readSecret('/p')).toBe('v1');
    expect(await aws.readSecret('/p')).toBe('v2');
    expect(seen).toHaveLength(3);
    expect(seen[1].port).toBe(seen[0].port); // the reused connection, reset
    expect(seen[2].port).not.toBe(seen[0].port); // the retry, on a new one
  });

  it('classifies configuration errors as MisconfigurationError (500), not retried, and says what to check', async () => {
    replies = [json(400, { __type: 'com.amazonaws.sqs#QueueDoesNotExist', message: 'The specified queue does not exist.' })];
    const e = await webhookAws({ send: envAwsJsonSend(env()), retryEnv: noWait }).queueMessage(queueUrl(), 'x', {}).catch((x) => x);
    expect(e.name).toBe('MisconfigurationError');
    expect(e.message).toMatch(/SQS SendMessage to .* was refused with QueueDoesNotExist .*check QUEUE_URL/);
    expect(seen).toHaveLength(1);
    seen = [];
    replies = [json(400, { __type: 'AccessDeniedException', message: 'not authorized to perform: ssm:GetParameter' })];
    const d = await webhookAws({ send: envAwsJsonSend(env()), retryEnv: noWait }).readSecret('/p').catch((x) => x);
    expect(d.name).toBe('MisconfigurationError');
    expect(seen).toHaveLength(1);
    // Any other client error stays what it was (503), unretried.
    seen = [];
    replies = [json(400, { __type: 'ValidationException', message: 'bad' })];
    expect((await webhookAws({ send: envAwsJsonSend(env()), retryEnv: noWait }).readSecret('/p').catch((x) => x)).name).toBe('ValidationException');
    expect(seen).toHaveLength(1);
  });

  it('refuses an answer whose MD5OfMessageBody is not the body it sent (as the SDK does), without retrying', async () => {
    replies = [json(200, { MessageId: 'm-3', MD5OfMessageBody: md5('something else') })];
    const e = await webhookAws({ send: envAwsJsonSend(env()), retryEnv: noWait }).queueMessage(queueUrl(), 'hello', {}).catch((x) => x);
    expect(e.message).toMatch(/InvalidChecksumError/);
    expect(seen).toHaveLength(1);
  });
});

describe('webhook-aws against moto (real SSM and SQS protocols over HTTP)', () => {
  let moto: MotoServer;
  beforeAll(async () => {
    moto = await startMoto();
  }, 30_000);
  afterAll(() => moto?.stop());

  it('reads a SecureString and queues a message with attributes that the SDK then receives', async () => {
    const sdk = motoClientConfig(moto.endpoint, 'eu-west-1');
    await new SSMClient(sdk).send(new PutParameterCommand({ Name: '/gsa/t/secret', Value: 'moto-secret-0123456789abcdef-xyz', Type: 'SecureString' }));
    const { QueueUrl } = await new SQSClient(sdk).send(new CreateQueueCommand({ QueueName: 'lean-events' }));
    const aws = webhookAws({ send: envAwsJsonSend({ AWS_ACCESS_KEY_ID: 'testing', AWS_SECRET_ACCESS_KEY: 'testing', AWS_SESSION_TOKEN: 'testing', AWS_REGION: 'eu-west-1', AWS_ENDPOINT_URL: moto.endpoint }) });
    expect(await aws.readSecret('/gsa/t/secret')).toBe('moto-secret-0123456789abcdef-xyz');
    const sent = await aws.queueMessage(QueueUrl!, '{"v":1,"type":"job"}', { dedupKey: 'job:1:pending:0', correlationId: 'c-1' });
    expect(sent.messageId).toMatch(/^[0-9a-f-]{36}$/);
    const got = await new SQSClient(sdk).send(new ReceiveMessageCommand({ QueueUrl, MessageAttributeNames: ['All'], WaitTimeSeconds: 0 }));
    expect(got.Messages?.[0]).toMatchObject({ MessageId: sent.messageId, Body: '{"v":1,"type":"job"}', MessageAttributes: { dedupKey: { DataType: 'String', StringValue: 'job:1:pending:0' }, correlationId: { StringValue: 'c-1' } } });
    // moto's own error answers classify as on AWS.
    const missing = await aws.readSecret('/gsa/t/absent').catch((x) => x);
    expect(missing.name).toBe('MisconfigurationError');
    expect(missing.message).toMatch(/ParameterNotFound/);
    const noQueue = await aws.queueMessage(QueueUrl!.replace('lean-events', 'no-such-queue'), 'x', {}).catch((x) => x);
    expect(noQueue.name).toBe('MisconfigurationError');
    expect(noQueue.message).toMatch(/QueueDoesNotExist/);
  }, 30_000);
});
