import { clearRegisteredSecrets, createLogger, isRegisteredSecret, MAX_ENTRIES, MAX_REGISTERED_SECRETS, MAX_STRING_CHARS, redact, registeredSecretCount, registerSecret } from '../../lib/lambda/logger';
import { correlationIdOf } from '../../lib/lambda/middleware';
import { emfLine } from '../../lib/lambda/metrics';

afterEach(() => clearRegisteredSecrets());

describe('logger redaction', () => {
  it('masks registered secrets anywhere, token-shaped strings, and secret-named fields', () => {
    registerSecret('hunter2-long-secret');
    const lines: string[] = [];
    const log = createLogger({ service: 's' }, { sink: (l) => lines.push(l) });
    log.info('got hunter2-long-secret from ssm', {
      error: new Error('bad token glrt-abcdef123456 for hunter2-long-secret'),
      nested: { list: ['glpat-xyz987654321'] },
      apiToken: 'plain',
      webhookSecretParameter: '/a/b/webhook-secret',
    });
    const out = lines.join('');
    expect(out).not.toMatch(/hunter2-long-secret|abcdef123456|xyz987654321|"plain"/);
    const entry = JSON.parse(lines[0]);
    expect(entry.webhookSecretParameter).toBe('/a/b/webhook-secret'); // a name, not a secret
    expect(entry.apiToken).toBe('[REDACTED]');
    expect(entry.service).toBe('s');
  });
  it('keeps child fields and survives circular values', () => {
    const lines: string[] = [];
    const a: any = { x: 1 };
    a.self = a;
    createLogger({}, { sink: (l) => lines.push(l) }).child({ passId: 'p1' }).warn('m', { a });
    expect(JSON.parse(lines[0])).toMatchObject({ passId: 'p1', level: 'warn', a: { x: 1, self: '[circular]' } });
  });
  it('keeps the registry bounded even if a caller registered values in a loop', () => {
    for (let i = 0; i < MAX_REGISTERED_SECRETS * 3; i++) registerSecret(`loaded-secret-${i}`);
    expect(registeredSecretCount()).toBe(MAX_REGISTERED_SECRETS);
    expect(isRegisteredSecret(`loaded-secret-${MAX_REGISTERED_SECRETS * 3 - 1}`)).toBe(true); // newest kept
    expect(isRegisteredSecret('loaded-secret-0')).toBe(false); // oldest dropped
  });
  it('does not register short values (they would mask everything)', () => {
    registerSecret('ab');
    expect(redact('abc ab')).toBe('abc ab');
  });
});

describe('emfLine', () => {
  it('declares every metric with its unit under the dimension set', () => {
    const doc = JSON.parse(emfLine({ Pool: 'p' }, { Launches: 2, PassDuration: { value: 12.5, unit: 'Milliseconds' }, Bad: NaN }, { passId: 'x' }, 1000));
    expect(doc._aws).toEqual({ Timestamp: 1000, CloudWatchMetrics: [{ Namespace: 'GitLabSpotAutoscaler', Dimensions: [['Pool']], Metrics: [{ Name: 'Launches', Unit: 'Count' }, { Name: 'PassDuration', Unit: 'Milliseconds' }] }] });
    expect(doc).toMatchObject({ Pool: 'p', Launches: 2, PassDuration: 12.5, passId: 'x' });
    expect(doc.Bad).toBeUndefined();
  });
});

describe('size caps (caller values cannot grow a line)', () => {
  it('cuts long strings after redaction, so no part of a secret is left at the cut', () => {
    const out: string[] = [];
    const secret = 'registered-secret-value-0123456789';
    registerSecret(secret);
    const long = 'a'.repeat(MAX_STRING_CHARS - 5) + secret + 'b'.repeat(100_000);
    createLogger({}, { sink: (l) => out.push(l) }).info('m', { long, [long]: 1 });
    expect(out[0].length).toBeLessThan(5 * MAX_STRING_CHARS);
    expect(out[0]).not.toContain(secret.slice(0, 8));
    expect(out[0]).toContain('more characters]');
  });
  it('keeps at most MAX_ENTRIES entries of an object or array', () => {
    const out: string[] = [];
    const many = Object.fromEntries(Array.from({ length: 10_000 }, (_, i) => [`k${i}`, i]));
    createLogger({}, { sink: (l) => out.push(l) }).info('m', { many, list: Array.from({ length: 10_000 }, (_, i) => i) });
    const entry = JSON.parse(out[0]);
    expect(Object.keys(entry.many)).toHaveLength(MAX_ENTRIES + 1);
    expect(entry.list).toHaveLength(MAX_ENTRIES + 1);
    expect(out[0].length).toBeLessThan(4096);
  });
  it('writes control characters escaped: one entry is one line', () => {
    const out: string[] = [];
    createLogger({}, { sink: (l) => out.push(l) }).info('m', { v: 'a\r\nlevel: error\u0000' });
    expect(out[0]).not.toMatch(/[\r\n\u0000]/);
  });
});

describe('correlationIdOf', () => {
  it('takes a well-formed X-Gitlab-Event-UUID, SQS message id or EventBridge id, else the request id', () => {
    const uuid = '0b5a3c2e-9f0d-4a8e-9a51-1f2c3d4e5f60';
    expect(correlationIdOf({ headers: { 'X-Gitlab-Event-UUID': uuid } }, { awsRequestId: 'r-1' })).toBe(uuid);
    expect(correlationIdOf({ Records: [{ messageId: uuid }] }, { awsRequestId: 'r-1' })).toBe(uuid);
    expect(correlationIdOf({ id: uuid, 'detail-type': 'x' }, { awsRequestId: 'r-1' })).toBe(uuid);
    for (const bad of ['\r\nSet-Cookie: a=b', 'x'.repeat(65), 'caf\u00e9', 42, ['a'], ''])
      expect(correlationIdOf({ headers: { 'x-gitlab-event-uuid': bad }, Records: [{ messageId: bad }] }, { awsRequestId: 'r-1' })).toBe('r-1');
    expect(correlationIdOf(null, {})).toMatch(/^[0-9a-f-]{36}$/);
    expect(correlationIdOf({}, { awsRequestId: '\n' })).toMatch(/^[0-9a-f-]{36}$/);
  });
});
