/**
 * Fuzz suite for the public webhook (issue 11): thousands of seeded requests (test/webhook/fuzz-cases.ts)
 * through the real handler (middy, middlewares, logger), SSM and SQS mocked at the SDK boundary.
 * Prints one summary line. What must hold for every request:
 *  - nothing escapes the handler (every request gets a response);
 *  - nothing is queued without the exact secret in one unambiguous X-Gitlab-Token header;
 *  - no 5xx unless SSM or SQS fails (checked by replaying the cases with each of them down);
 *  - no caller string of more than 80 characters appears whole in a log line or a response; log
 *    lines stay under 4 KB, responses under 1 KB, response headers are valid HTTP field values and
 *    the correlation id is well-formed; neither the secret nor a presented token is logged;
 *  - what reaches SQS is something SQS accepts (its character set), and nothing pollutes prototypes.
 * FUZZ_SEED and FUZZ_CASES change the seed and the count (defaults: 0x5eed1234, 5000).
 */
import { handler, resetForTests } from '../../handlers/webhook';
import { AwsServiceError } from '../../lib/aws/aws-json';
import { fakeAwsJson } from '../helpers/fake-aws-json';
import { clearRegisteredSecrets } from '../../lib/lambda/logger';
import { decodeQueueMessage } from '../../lib/webhook/job-hook';
import { ECHO_MIN, generateCases, type FuzzCase } from './fuzz-cases';

const SECRET = 'fuzz-secret-5f3c9a0e7b214d68a1c2e3f4b5a69788';
const SEED = Number(process.env.FUZZ_SEED ?? 0x5eed1234);
const COUNT = Number(process.env.FUZZ_CASES ?? 5000);

// The webhook's AWS transport, faked (test/helpers/fake-aws-json.ts); retries run for real, without the waits.
const aws = fakeAwsJson();
const noWait = { sleep: async () => {}, random: Math.random };
const ctx = (i: number) => ({ awsRequestId: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`, functionName: 'webhook', getRemainingTimeInMillis: () => 10_000 }) as any;

// SQS accepts these characters in message bodies and attribute values (SQS API reference, SendMessage).
const SQS_CHARS = /^[\x09\x0a\x0d\x20-\ud7ff\ue000-\ufffd\u{10000}-\u{10ffff}]*$/u;
const HTTP_FIELD_VALUE = /^[\t\x20-\x7e]*$/;
const CORRELATION_ID = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$/;
const escaped = (s: string) => JSON.stringify(s).slice(1, -1);

interface Outcome {
  status: number | 'threw';
  queued: boolean;
  log: string;
  maxLogLine: number;
  response: string;
  responseBytes: number;
  headers: Record<string, unknown>;
  ms: number;
}

let out: string[] = [];
/** What the normal run sent to SQS (SendMessage inputs). */
const sends: any[] = [];
let spy: jest.SpyInstance;
beforeAll(() => {
  spy = jest.spyOn(process.stdout, 'write').mockImplementation(((chunk: any) => {
    out.push(String(chunk));
    return true;
  }) as any);
});
afterAll(() => spy.mockRestore());

function setEnv() {
  process.env.QUEUE_URL = 'https://sqs.eu-west-1.amazonaws.com/123456789012/q';
  process.env.WEBHOOK_SECRET_PARAMETER = '/gsa/fuzz/dev/secrets/webhook-secret';
  process.env.WEBHOOK_SECRET_CACHE_SECONDS = '300';
}

async function run(cases: FuzzCase[], mode: 'normal' | 'sqs-down' | 'ssm-down'): Promise<Outcome[]> {
  setEnv();
  aws.reset();
  resetForTests({ send: aws.send, retryEnv: noWait });
  clearRegisteredSecrets();
  if (mode === 'ssm-down') aws.on('GetParameter').rejects(Object.assign(new Error('connect ECONNREFUSED ssm'), { code: 'ECONNREFUSED' }));
  else aws.on('GetParameter').resolves({ Parameter: { Value: SECRET } });
  let sent = 0;
  aws.on('SendMessage').callsFake((input) => {
    sent++;
    if (mode === 'sqs-down') throw new AwsServiceError('ServiceUnavailable', 'Service Unavailable', 503);
    sends.push(input);
    return { MessageId: '9f1c2a3b-0000-4000-8000-000000000001' };
  });
  const results: Outcome[] = [];
  for (const [i, c] of cases.entries()) {
    out = [];
    const before = sent;
    const t0 = performance.now();
    let res: any;
    try {
      res = await handler(c.event as any, ctx(i));
    } catch {
      res = undefined;
    }
    const ms = performance.now() - t0;
    const log = out.join('');
    const response = res ? JSON.stringify(res.headers ?? {}) + (res.body ?? '') : '';
    results.push({
      status: res ? res.statusCode : 'threw',
      queued: sent > before,
      log,
      maxLogLine: Math.max(0, ...log.split('\n').map((l) => Buffer.byteLength(l))),
      response,
      responseBytes: res ? Buffer.byteLength(res.body ?? '') : 0,
      headers: res?.headers ?? {},
      ms,
    });
  }
  return results;
}

describe(`webhook fuzz (seed ${SEED}, ${COUNT} generated requests)`, () => {
  const cases = generateCases(SECRET, SEED, COUNT);
  let normal: Outcome[];
  let sqsDown: Outcome[];
  let ssmDown: Outcome[];
  const violations: Record<string, string[]> = { escaped: [], acceptedWithoutSecret: [], fiveXX: [], echoed: [], bigLogLine: [], bigResponse: [], badHeader: [], secretLogged: [], tokenLogged: [], sqsRefuses: [] };
  const note = (kind: string, i: number, what = '') => violations[kind].length < 5 && violations[kind].push(`#${i} ${cases[i].category} ${what}`.slice(0, 200));

  beforeAll(async () => {
    const t0 = performance.now();
    normal = await run(cases, 'normal');
    // What a real SQS would refuse (the mock accepts anything).
    for (const input of sends) {
      const values = [input.MessageBody ?? '', ...Object.values(input.MessageAttributes ?? {}).map((a: any) => a.StringValue ?? '')];
      if (values.some((v) => !SQS_CHARS.test(v)) || Buffer.byteLength(input.MessageBody ?? '') > 262_144) violations.sqsRefuses.push(JSON.stringify(input).slice(0, 200));
      decodeQueueMessage(input.MessageBody!); // the consumer's own check
    }
    // Outages: the same requests with SQS down, and (a sample) with SSM down.
    sqsDown = await run(cases, 'sqs-down');
    ssmDown = await run(cases.slice(0, 300), 'ssm-down');
    const seconds = (performance.now() - t0) / 1000;

    const counts: Record<string, number> = {};
    normal.forEach((o, i) => {
      const c = cases[i];
      counts[o.status] = (counts[o.status] ?? 0) + 1;
      if (o.status === 'threw') note('escaped', i);
      if (o.queued && !c.authentic) note('acceptedWithoutSecret', i);
      if (o.status !== 'threw' && o.status >= 500) note('fiveXX', i, `${o.status}`);
      for (const e of c.echoes) {
        const probe = e.slice(0, ECHO_MIN + 1);
        if (o.log.includes(probe) || o.log.includes(escaped(probe)) || o.response.includes(probe) || o.response.includes(escaped(probe))) note('echoed', i, JSON.stringify(probe.slice(0, 40)));
      }
      if (o.maxLogLine > 4096) note('bigLogLine', i, `${o.maxLogLine} B`);
      if (o.responseBytes > 1024) note('bigResponse', i, `${o.responseBytes} B`);
      for (const [k, v] of Object.entries(o.headers)) if (typeof v !== 'string' || !HTTP_FIELD_VALUE.test(v) || (k === 'x-correlation-id' && !CORRELATION_ID.test(v))) note('badHeader', i, k);
      if (o.log.includes(SECRET) || o.response.includes(SECRET)) note('secretLogged', i);
      const ev = c.event as { headers?: Record<string, unknown> } | null;
      const presented = ev && typeof ev === 'object' && ev.headers && typeof ev.headers === 'object' ? Object.entries(ev.headers).filter(([k]) => k.toLowerCase() === 'x-gitlab-token').map(([, v]) => v) : [];
      for (const t of presented) if (typeof t === 'string' && t.length >= 12 && t !== SECRET && (o.log.includes(t) || o.log.includes(escaped(t)))) note('tokenLogged', i);
    });
    const lat = normal.map((o) => o.ms).sort((a, b) => a - b);
    const sqsOutage5xx = sqsDown.filter((o) => o.status === 503).length;
    const queuedNormally = normal.filter((o) => o.queued).length;
    const fmt = (o: Record<string, number>) => Object.entries(o).map(([k, v]) => `${k}:${v}`).join(' ');
    process.stderr.write(
      `webhook fuzz: seed ${SEED}, ${cases.length} requests (+${cases.length} with SQS down, +300 with SSM down) in ${seconds.toFixed(1)} s; ` +
        `status ${fmt(counts)}; ${violations.escaped.length} escaping exceptions, ${violations.acceptedWithoutSecret.length} accepted without the secret, ` +
        `${violations.fiveXX.length} 5xx outside outages, ${violations.echoed.length} caller values echoed, ${violations.secretLogged.length + violations.tokenLogged.length} secrets/tokens logged; ` +
        `max log line ${Math.max(...normal.map((o) => o.maxLogLine))} B, max response ${Math.max(...normal.map((o) => o.responseBytes))} B; ` +
        `SQS down: ${sqsOutage5xx} 503 for ${queuedNormally} queueable; SSM down: ${ssmDown.filter((o) => o.status === 503).length}/300 503; ` +
        `p50 ${lat[Math.floor(lat.length / 2)].toFixed(2)} ms, p99 ${lat[Math.floor(lat.length * 0.99)].toFixed(2)} ms\n`,
    );
  }, 120_000);

  it('lets no exception escape', () => expect(violations.escaped).toEqual([]));
  it('queues nothing without the exact secret', () => expect(violations.acceptedWithoutSecret).toEqual([]));
  it('answers no 5xx while SSM and SQS work', () => expect(violations.fiveXX).toEqual([]));
  it('echoes no caller value whole in logs or responses', () => expect(violations.echoed).toEqual([]));
  it('keeps log lines under 4 KB and responses under 1 KB', () => {
    expect(violations.bigLogLine).toEqual([]);
    expect(violations.bigResponse).toEqual([]);
  });
  it('sends only valid HTTP header values and a well-formed correlation id', () => expect(violations.badHeader).toEqual([]));
  it('logs neither the secret nor a presented token', () => {
    expect(violations.secretLogged).toEqual([]);
    expect(violations.tokenLogged).toEqual([]);
  });
  it('sends SQS only what SQS accepts', () => expect(violations.sqsRefuses).toEqual([]));
  it('pollutes no prototype', () => {
    expect(({} as any).polluted).toBeUndefined();
    expect(({} as any)['x-gitlab-token']).toBeUndefined();
  });
  it('queues GitLab deliveries that carry the secret (the suite exercises the accepting path too)', () => {
    const queued = normal.filter((o, i) => o.queued && cases[i].category === 'gitlab-delivery').length;
    expect(queued).toBeGreaterThan(50);
  });
  it('with SQS down answers 503 exactly where a delivery would have been queued, and as before elsewhere', () => {
    const mismatches = normal.map((o, i) => (o.queued ? sqsDown[i].status === 503 : sqsDown[i].status === o.status) ? -1 : i).filter((i) => i >= 0);
    expect(mismatches.slice(0, 5).map((i) => `#${i} ${cases[i].category} ${normal[i].status} -> ${sqsDown[i].status}`)).toEqual([]);
  });
  it('with SSM down answers 503 to everything (the secret is unknown) and queues nothing', () => {
    expect(ssmDown.every((o) => o.status === 503 && !o.queued)).toBe(true);
    // One SSM read per container per 10 s, not one per request: a flood cannot hammer SSM.
    expect(aws.calls('GetParameter').length).toBeLessThanOrEqual(3);
  });
});
