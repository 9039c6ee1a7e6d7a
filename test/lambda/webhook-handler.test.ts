import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { handler, resetForTests } from '../../handlers/webhook';
import { AwsServiceError } from '../../lib/aws/aws-json';
import { fakeAwsJson } from '../helpers/fake-aws-json';
import { clearRegisteredSecrets, createLogger, isRegisteredSecret, registeredSecretCount } from '../../lib/lambda/logger';
import { decodeQueueMessage } from '../../lib/webhook/job-hook';

const SECRET = 'whsec-0123456789abcdef-5e1f7a2c9b3d4e60';
// The webhook's AWS transport (lib/aws/aws-json.ts), faked per operation; its retries and error
// classes (lib/aws/webhook-aws.ts) run for real above it.
const aws = fakeAwsJson();
const event = (name: string) => JSON.parse(readFileSync(join(__dirname, '../../events', name), 'utf8'));
const withToken = (e: any, token: string | undefined) => ({ ...e, headers: { ...e.headers, 'x-gitlab-token': token } });
const ctx = () => ({ awsRequestId: 'req-1', functionName: 'webhook', getRemainingTimeInMillis: () => 10_000 }) as any;

let lines: string[];
let spy: jest.SpyInstance;
beforeEach(() => {
  aws.reset();
  resetForTests({ send: aws.send });
  clearRegisteredSecrets();
  process.env.QUEUE_URL = 'https://sqs.eu-west-1.amazonaws.com/123456789012/q';
  process.env.WEBHOOK_SECRET_PARAMETER = '/gsa/x/dev/secrets/webhook-secret';
  process.env.WEBHOOK_SECRET_CACHE_SECONDS = '300';
  aws.on('GetParameter').resolves({ Parameter: { Value: SECRET } });
  aws.on('SendMessage').resolves({ MessageId: 'm-1' });
  lines = [];
  spy = jest.spyOn(process.stdout, 'write').mockImplementation(((chunk: any) => {
    lines.push(String(chunk));
    return true;
  }) as any);
});
afterEach(() => spy.mockRestore());

const logs = () => lines.join('').split('\n').filter(Boolean).map((l) => JSON.parse(l));

describe('webhook handler', () => {
  it('queues a valid pending job and answers 202', async () => {
    const res = await handler(withToken(event('webhook-job-pending.json'), SECRET), ctx());
    expect(res.statusCode).toBe(202);
    expect(aws.calls('SendMessage')).toHaveLength(1);
    const input = aws.calls('SendMessage')[0];
    expect(input.QueueUrl).toBe(process.env.QUEUE_URL);
    expect(decodeQueueMessage(input.MessageBody!)).toMatchObject({ type: 'job', event: { jobId: 4242, projectId: 17, status: 'pending' } });
    expect(input.MessageAttributes?.dedupKey?.StringValue).toBe('idem:0b5a3c2e-9f0d-4a8e-9a51-1f2c3d4e5f60');
    expect(aws.calls('GetParameter')[0]).toEqual({ Name: '/gsa/x/dev/secrets/webhook-secret', WithDecryption: true });
  });

  it('answers 401 to a wrong token and queues nothing', async () => {
    const res = await handler(withToken(event('webhook-job-pending.json'), 'wrong-token-value'), ctx());
    expect(res.statusCode).toBe(401);
    expect(aws.calls('SendMessage')).toHaveLength(0);
  });

  it('answers 4xx with a reason to a malformed body and queues nothing', async () => {
    const res = await handler({ ...withToken(event('webhook-job-pending.json'), SECRET), body: '{oops' }, ctx());
    expect(res.statusCode).toBe(400);
    expect(JSON.parse(res.body).error).toBe('body is not valid JSON');
    expect(aws.calls('SendMessage')).toHaveLength(0);
  });

  it('answers 200 to other GitLab events and queues nothing', async () => {
    const e = withToken(event('webhook-job-pending.json'), SECRET);
    e.headers['x-gitlab-event'] = 'Push Hook';
    const res = await handler(e, ctx());
    expect(res.statusCode).toBe(200);
    expect(aws.calls('SendMessage')).toHaveLength(0);
  });

  it('caches the secret between deliveries', async () => {
    await handler(withToken(event('webhook-job-pending.json'), SECRET), ctx());
    await handler(withToken(event('webhook-job-running.json'), SECRET), ctx());
    expect(aws.calls('GetParameter')).toHaveLength(1);
  });

  it('answers 503 when SQS is down, without details, and logs the cause', async () => {
    aws.on('SendMessage').rejects(Object.assign(new Error('connect ECONNREFUSED sqs'), { code: 'ECONNREFUSED' }));
    const res = await handler(withToken(event('webhook-job-pending.json'), SECRET), ctx());
    expect(res.statusCode).toBe(503);
    expect(res.body).not.toMatch(/ECONNREFUSED/);
    expect(logs().some((l) => l.level === 'error' && JSON.stringify(l.error).includes('ECONNREFUSED'))).toBe(true);
    expect(aws.calls('SendMessage')).toHaveLength(3); // a network error is retried, within the send budget
  });

  it('answers 503 after bounded retries when SQS throttles or fails (5xx)', async () => {
    for (const e of [new AwsServiceError('ThrottlingException', 'slow down', 400), new AwsServiceError('InternalFailure', 'oops', 500)]) {
      aws.reset();
      aws.on('GetParameter').resolves({ Parameter: { Value: SECRET } });
      aws.on('SendMessage').rejects(e);
      resetForTests({ send: aws.send });
      expect((await handler(withToken(event('webhook-job-pending.json'), SECRET), ctx())).statusCode).toBe(503);
      expect(aws.calls('SendMessage')).toHaveLength(3);
    }
  });

  it.each([
    ['GetParameter', 'ParameterNotFound', 'not found', /SSM GetParameter of \/gsa\/x\/dev\/secrets\/webhook-secret was refused with ParameterNotFound/],
    ['GetParameter', 'AccessDeniedException', 'not authorized to perform ssm:GetParameter', /refused with AccessDeniedException/],
    ['SendMessage', 'QueueDoesNotExist', 'The specified queue does not exist.', /SQS SendMessage to https:\/\/sqs.eu-west-1.amazonaws.com\/123456789012\/q was refused with QueueDoesNotExist/],
  ])('answers 500 (misconfigured, not retried) when %s is refused with %s', async (operation, code, message, logged) => {
    aws.on(operation).rejects(new AwsServiceError(code, message, 400));
    const res = await handler(withToken(event('webhook-job-pending.json'), SECRET), ctx());
    expect(res.statusCode).toBe(500);
    expect(aws.calls(operation)).toHaveLength(1);
    expect(logs().find((l) => l.message === 'invocation failed').error.message).toMatch(logged);
  });

  it('answers 503 when the secret cannot be read, and queues nothing', async () => {
    aws.on('GetParameter').rejects(new AwsServiceError('ThrottlingException', 'Rate exceeded', 400));
    const res = await handler(withToken(event('webhook-job-pending.json'), SECRET), ctx());
    expect(res.statusCode).toBe(503);
    expect(aws.calls('SendMessage')).toHaveLength(0);
    // Retried within the webhook's bounded budget (lib/aws/retry.ts), not forever.
    expect(aws.calls('GetParameter')).toHaveLength(3);
  });

  it('logs JSON lines with one correlation id (GitLab event UUID) and never the secret or a presented token', async () => {
    await handler(withToken(event('webhook-job-pending.json'), SECRET), ctx());
    await handler(withToken(event('webhook-job-pending.json'), 'glrt-presented-but-wrong-1234'), ctx());
    const all = lines.join('');
    expect(all).not.toContain(SECRET);
    expect(all).not.toContain('glrt-presented-but-wrong-1234');
    const entries = logs();
    expect(entries.length).toBeGreaterThanOrEqual(4);
    for (const l of entries) expect(l.correlationId).toBe('0b5a3c2e-9f0d-4a8e-9a51-1f2c3d4e5f60');
    expect(entries.some((l) => l.message === 'job event queued' && l.jobId === 4242)).toBe(true);
    expect(entries.some((l) => l.message === 'webhook rejected' && l.status === 401)).toBe(true);
  });

  it('never registers a presented token as a secret: callers cannot grow or poison the redaction list', async () => {
    // "pending" as a forged token: were it registered, the word would be masked in every later line.
    await handler(withToken(event('webhook-job-pending.json'), 'pending'), ctx());
    for (let i = 0; i < 50; i++) await handler(withToken(event('webhook-job-pending.json'), `forged-token-number-${i}`), ctx());
    expect(isRegisteredSecret('pending')).toBe(false);
    expect(isRegisteredSecret('forged-token-number-7')).toBe(false);
    expect(registeredSecretCount()).toBe(1); // the real secret, loaded from SSM
    expect(isRegisteredSecret(SECRET)).toBe(true);
    lines.length = 0;
    await handler(withToken(event('webhook-job-pending.json'), SECRET), ctx());
    expect(logs().find((l) => l.message === 'job event queued')).toMatchObject({ status: 'pending' });
    expect(lines.join('')).not.toContain('forged-token-number');
  });

  it('masks credential headers by name if a line ever carries them', () => {
    const out: string[] = [];
    createLogger({}, { sink: (l) => out.push(l) }).warn('headers', {
      headers: { 'X-Gitlab-Token': 'forged-value-abc', authorization: 'Bearer xyz-123456', 'private-token': ['multi', 'valued'], 'x-gitlab-event': 'Job Hook' },
    });
    const entry = JSON.parse(out[0]);
    expect(entry.headers).toEqual({ 'X-Gitlab-Token': '[REDACTED]', authorization: '[REDACTED]', 'private-token': '[REDACTED]', 'x-gitlab-event': 'Job Hook' });
    expect(out[0]).not.toMatch(/forged-value-abc|xyz-123456|multi/);
  });

  it('names the missing variable when the function is misconfigured (500: not an outage that passes)', async () => {
    delete process.env.QUEUE_URL;
    const res = await handler(withToken(event('webhook-job-pending.json'), SECRET), ctx());
    expect(res.statusCode).toBe(500);
    expect(res.body).not.toContain('QUEUE_URL');
    expect(lines.join('')).toContain('QUEUE_URL is not set');
  });

  it.each([
    ['short', 'whsec-short-secret'],
    ['a placeholder repeated', 'changeme'.repeat(5)],
    ['empty', ''],
  ])('refuses a %s webhook secret: every delivery 500, the log names the SSM parameter, nothing queued', async (_what, weak) => {
    aws.on('GetParameter').resolves({ Parameter: { Value: weak } });
    for (const token of [weak, SECRET, 'anything']) {
      const res = await handler(withToken(event('webhook-job-pending.json'), token), ctx());
      expect(res.statusCode).toBe(500);
      expect(res.body).toBe(JSON.stringify({ error: 'the webhook is misconfigured; its logs say what to fix', correlationId: '0b5a3c2e-9f0d-4a8e-9a51-1f2c3d4e5f60' }));
    }
    expect(aws.calls('SendMessage')).toHaveLength(0);
    const failed = logs().filter((l) => l.message === 'invocation failed');
    expect(failed[0].error.message).toMatch(/the webhook secret in SSM parameter \/gsa\/x\/dev\/secrets\/webhook-secret is refused: it (is \d+ characters long; at least 32|uses only \d+ distinct|is empty)/);
    if (weak) expect(lines.join('')).not.toContain(weak);
    // A refused secret is an answer, remembered like a good one: one SSM read, not one per request.
    expect(aws.calls('GetParameter')).toHaveLength(1);
  });

  it('after a failed secret read, answers 503 without asking SSM again for 10 s (a flood cannot hammer SSM)', async () => {
    aws.on('GetParameter').rejects(new AwsServiceError('ThrottlingException', 'Rate exceeded', 400));
    for (let i = 0; i < 20; i++) expect((await handler(withToken(event('webhook-job-pending.json'), 'x'), ctx())).statusCode).toBe(503);
    expect(aws.calls('GetParameter')).toHaveLength(3); // the first request's bounded retries
  });

  it('a warm container whose secret refresh is throttled keeps its last good secret (no 503s), for at most the TTL + 15 min; a configuration error is not covered', async () => {
    let now = Date.UTC(2026, 10, 30, 10, 0, 0);
    const clock = jest.spyOn(Date, 'now').mockImplementation(() => now);
    try {
      const deliver = async (token: string) => (await handler(withToken(event('webhook-job-pending.json'), token), ctx())).statusCode;
      expect(await deliver(SECRET)).toBe(202);
      aws.on('GetParameter').rejects(new AwsServiceError('ThrottlingException', 'Rate exceeded', 400));
      now += 301_000; // past WEBHOOK_SECRET_CACHE_SECONDS: the refresh is throttled
      expect(await deliver(SECRET)).toBe(202);
      expect(await deliver('wrong-token')).toBe(401);
      expect(aws.calls('GetParameter')).toHaveLength(4); // one read, then one refresh with its retries; the failure is remembered
      now += 15 * 60_000; // past the grace: throttled still, so no secret
      expect(await deliver(SECRET)).toBe(503);
      // A configuration error on refresh is never papered over with the old secret.
      resetForTests({ send: aws.send });
      aws.on('GetParameter').resolves({ Parameter: { Value: SECRET } });
      expect(await deliver(SECRET)).toBe(202);
      aws.on('GetParameter').rejects(new AwsServiceError('ParameterNotFound', 'Parameter not found', 400));
      now += 301_000;
      expect(await deliver(SECRET)).toBe(500);
    } finally {
      clock.mockRestore();
    }
  });

  it('uses the GitLab event UUID as correlation id only when it is well-formed; otherwise the request id', async () => {
    for (const uuid of ['\r\nSet-Cookie: a=b', 'x'.repeat(65), 'caf\u00e9', '\u0000']) {
      lines.length = 0;
      const e = withToken(event('webhook-job-pending.json'), SECRET);
      e.headers['x-gitlab-event-uuid'] = uuid;
      e.headers['idempotency-key'] = uuid;
      const res = await handler(e, ctx());
      expect(res.statusCode).toBe(202);
      expect(res.headers['x-correlation-id']).toBe('req-1');
      for (const l of logs()) expect(l.correlationId).toBe('req-1');
      expect(aws.calls('SendMessage').at(-1)!.MessageAttributes?.dedupKey?.StringValue).toBe('job:4242:pending:0');
    }
  });

  it.each([
    ['null', null],
    ['a string', 'hello'],
    ['an array', []],
    ['headers as a string', { headers: 'x-gitlab-token: a' }],
  ])('answers 401 to an event that is %s (a direct invoke), without throwing', async (_what, e) => {
    const res = await handler(e as any, ctx());
    expect(res.statusCode).toBe(401);
    expect(res.headers['x-correlation-id']).toBe('req-1');
  });
});
