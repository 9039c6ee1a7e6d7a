import { clearRegisteredSecrets, createLogger, isRegisteredSecret, MAX_REGISTERED_SECRETS, redact, registeredSecretCount, registerSecret } from '../../lib/lambda/logger';
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
