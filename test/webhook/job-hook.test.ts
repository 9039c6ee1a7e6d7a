import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import {
  decideDelivery,
  dedupeEvents,
  decodeQueueMessage,
  encodeQueueMessage,
  describeValue,
  header,
  RecentDeliveries,
  tokenMatches,
  webhookSecretProblem,
  MIN_WEBHOOK_SECRET_LENGTH,
  QueueMessageError,
  type WebhookRequest,
} from '../../lib/webhook/job-hook';

const SECRET = 's3cret-webhook-value-7f2c91e04b5d';
const body = (status: string) => readFileSync(join(__dirname, '../../events', `job-hook-${status}.body.json`), 'utf8');
const req = (over: Partial<WebhookRequest> & { headers?: Record<string, string | undefined> } = {}): WebhookRequest => ({
  body: body('pending'),
  ...over,
  headers: { 'content-type': 'application/json', 'x-gitlab-event': 'Job Hook', 'x-gitlab-token': SECRET, 'idempotency-key': 'idem-1', ...(over.headers ?? {}) },
});
const now = 1_764_234_903_000;

describe('tokenMatches', () => {
  it('accepts only the exact secret', () => {
    expect(tokenMatches(SECRET, SECRET)).toBe(true);
    expect(tokenMatches(SECRET + 'x', SECRET)).toBe(false);
    expect(tokenMatches(SECRET.slice(0, -1), SECRET)).toBe(false);
    expect(tokenMatches(undefined, SECRET)).toBe(false);
    expect(tokenMatches('', SECRET)).toBe(false);
  });
  it('never accepts anything when the secret is empty', () => {
    expect(tokenMatches('', '')).toBe(false);
    expect(tokenMatches(undefined, '')).toBe(false);
  });
  it('agrees with string equality for arbitrary inputs', () => {
    fc.assert(fc.property(fc.string(), fc.string({ minLength: 1 }), (a, s) => tokenMatches(a, s) === (a === s)));
  });
  it('refuses a token with a lone surrogate even where UTF-8 would make it equal to the secret', () => {
    // UTF-8 encodes a lone surrogate as U+FFFD: hashing alone would accept it for a secret holding U+FFFD.
    const secret = 'a'.repeat(20) + '\ufffd' + 'b'.repeat(20);
    expect(tokenMatches('a'.repeat(20) + '\ud800' + 'b'.repeat(20), secret)).toBe(false);
    expect(tokenMatches(secret, secret)).toBe(true);
  });
});

describe('webhookSecretProblem', () => {
  it(`refuses secrets under ${MIN_WEBHOOK_SECRET_LENGTH} characters and low-variety ones, naming no part of the value`, () => {
    expect(webhookSecretProblem('changeme')).toMatch(/8 characters long; at least 32 are required.*openssl rand -hex 32/);
    expect(webhookSecretProblem('x'.repeat(31) + 'y')).toMatch(/only 2 distinct characters/);
    expect(webhookSecretProblem('ab'.repeat(40))).toMatch(/only 2 distinct/);
    expect(webhookSecretProblem('changeme')).not.toContain('changeme');
  });
  it('refuses a secret no HTTP header can present (white space around it, control or non-ASCII characters), naming no part of it', () => {
    const good = '9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08';
    for (const bad of [good + '\n', good + '\r\n', ' ' + good, good + '\t'])
      expect(`${JSON.stringify(bad)}: ${webhookSecretProblem(bad)}`).toMatch(/white space .*no delivery could ever match/);
    for (const bad of [good.slice(0, 20) + '\u0000' + good.slice(20), good + 'é', good.slice(0, 10) + '\u200b' + good.slice(10)]) {
      expect(`${JSON.stringify(bad)}: ${webhookSecretProblem(bad)}`).toMatch(/control or non-ASCII characters/);
      expect(webhookSecretProblem(bad)).not.toContain(good.slice(0, 8));
    }
    // Such a secret would never match what GitLab sends (HTTP trims the header value).
    expect(tokenMatches(good, good + '\n')).toBe(false);
  });
  it('accepts what the docs generate (openssl rand -hex 32) and 32 random characters', () => {
    expect(webhookSecretProblem('9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08')).toBeUndefined();
    expect(webhookSecretProblem('Qm4tX9vK2pL7sR1wZ8yB3nC6dF5gH0jA')).toBeUndefined();
  });
});

describe('header', () => {
  it('reads one string value by name in any case', () => {
    expect(header({ 'X-Gitlab-Token': 'a' }, 'x-gitlab-token')).toBe('a');
  });
  it.each([
    ['a number', { 'x-gitlab-token': 42 }],
    ['an array', { 'x-gitlab-token': ['a'] }],
    ['an object', { 'x-gitlab-token': { v: 'a' } }],
    ['a Buffer', { 'x-gitlab-token': Buffer.from('a') }],
    ['null', { 'x-gitlab-token': null }],
    ['two spellings', { 'x-gitlab-token': 'a', 'X-Gitlab-Token': 'a' }],
    ['an inherited key', Object.create({ 'x-gitlab-token': 'a' })],
    ['headers that are not an object', 'x-gitlab-token: a'],
    ['headers that are an array', [['x-gitlab-token', 'a']]],
  ])('reads %s as absent', (_what, headers) => {
    expect(header(headers, 'x-gitlab-token')).toBeUndefined();
  });
});

describe('describeValue', () => {
  it('shows at most 64 characters of a string, escaped, and only the type of anything else', () => {
    expect(describeValue('k'.repeat(250_000))).toBe(`"${'k'.repeat(64)}" (+249936 more characters)`);
    expect(describeValue('a\r\nb')).toBe('"a\\r\\nb"');
    const deep: unknown[] = [];
    let cur = deep;
    for (let i = 0; i < 200_000; i++) cur = (cur[0] = []) as unknown[];
    expect(describeValue(deep)).toBe('an array of 1 items'); // JSON.stringify of it overflows the stack
    expect(describeValue({ a: 1 })).toBe('an object');
    expect(describeValue(undefined)).toBe('absent');
  });
});

describe('decideDelivery', () => {
  it('queues a pending job with its ids, status, receive time and idempotency key', () => {
    const d = decideDelivery(req(), { secret: SECRET, now });
    expect(d).toMatchObject({ kind: 'queue', status: 202, dedupKey: 'idem:idem-1' });
    if (d.kind !== 'queue') throw new Error('unreachable');
    expect(d.event).toEqual({ jobId: 4242, projectId: 17, status: 'pending', receivedAt: now, deliveryId: 'idem-1', pipelineId: 981, name: 'test:unit', stage: 'test' });
  });

  it('carries pipeline_id when it is a positive integer, and leaves it out otherwise (it is optional)', () => {
    const withPipeline = (v: unknown) => {
      const b = JSON.parse(body('pending'));
      if (v === undefined) delete b.pipeline_id;
      else b.pipeline_id = v;
      const d = decideDelivery(req({ body: JSON.stringify(b) }), { secret: SECRET, now });
      if (d.kind !== 'queue') throw new Error(`expected queue, got ${d.kind}`);
      return d.event.pipelineId;
    };
    expect(withPipeline(12345)).toBe(12345);
    expect(withPipeline(undefined)).toBeUndefined();
    expect(withPipeline('12345')).toBeUndefined();
    expect(withPipeline(-1)).toBeUndefined();
    expect(withPipeline(null)).toBeUndefined();
    const event = { jobId: 1, projectId: 2, status: 'pending', receivedAt: now, pipelineId: 77 };
    const back = decodeQueueMessage(encodeQueueMessage({ v: 1, type: 'job', event }));
    expect(back).toEqual({ v: 1, type: 'job', event });
  });

  it.each(['running', 'success', 'canceled'])('queues a %s job', (status) => {
    const d = decideDelivery(req({ body: body(status) }), { secret: SECRET, now });
    expect(d.kind).toBe('queue');
    if (d.kind === 'queue') expect(d.event.status).toBe(status);
  });

  it('reads header names in any case', () => {
    const d = decideDelivery({ body: body('pending'), headers: { 'X-Gitlab-Token': SECRET, 'X-Gitlab-Event': 'Job Hook', 'Content-Type': 'application/json' } }, { secret: SECRET, now });
    expect(d.kind).toBe('queue');
  });

  it('never takes X-Gitlab-Event-UUID for a delivery id (hooks of one event share it)', () => {
    const d = decideDelivery(req({ headers: { 'idempotency-key': undefined, 'x-gitlab-event-uuid': 'shared-by-a-chain' } }), { secret: SECRET, now });
    if (d.kind !== 'queue') throw new Error('unreachable');
    expect(d.event.deliveryId).toBeUndefined();
    expect(d.dedupKey).toBe('job:4242:pending:0');
  });

  it('falls back to job, status and retries as the dedup key without Idempotency-Key', () => {
    const d = decideDelivery(req({ headers: { 'idempotency-key': undefined } }), { secret: SECRET, now });
    expect(d).toMatchObject({ kind: 'queue', dedupKey: 'job:4242:pending:0' });
  });

  it('answers 401 to a wrong or missing token, before looking at anything else', () => {
    expect(decideDelivery(req({ headers: { 'x-gitlab-token': 'nope' } }), { secret: SECRET, now })).toMatchObject({ kind: 'reject', status: 401 });
    expect(decideDelivery(req({ headers: { 'x-gitlab-token': undefined }, body: 'not json' }), { secret: SECRET, now })).toMatchObject({ kind: 'reject', status: 401 });
  });

  it('acknowledges other GitLab events with 200 and queues nothing', () => {
    const d = decideDelivery(req({ headers: { 'x-gitlab-event': 'Pipeline Hook' }, body: '{"object_kind":"pipeline"}' }), { secret: SECRET, now });
    expect(d).toMatchObject({ kind: 'ignore', status: 200, detail: { event: '"Pipeline Hook"' } });
    expect(d.reason).not.toContain('Pipeline Hook'); // the answer is fixed; the log shows what came
  });

  it('queues created jobs for the forecast, with name, stage and (finished jobs) build_duration', () => {
    const b = JSON.parse(body('pending'));
    Object.assign(b, { build_status: 'created', build_name: 'rspec 1/4', build_stage: 'test', pipeline_id: 77 });
    const d = decideDelivery(req({ body: JSON.stringify(b) }), { secret: SECRET, now });
    expect(d).toMatchObject({ kind: 'queue', event: { status: 'created', name: 'rspec 1/4', stage: 'test', pipelineId: 77 } });
    const done = decideDelivery(req({ body: JSON.stringify({ ...b, build_status: 'success', build_duration: 83.4 }) }), { secret: SECRET, now });
    expect(done).toMatchObject({ kind: 'queue', event: { status: 'success', duration: 83.4 } });
    // Through the queue unchanged.
    if (done.kind !== 'queue') throw new Error('queued');
    expect(decodeQueueMessage(JSON.stringify({ v: 1, type: 'job', event: done.event }))).toEqual({ v: 1, type: 'job', event: done.event });
    // Odd values are left out, never refused: a Job Hook is not refused for a field the forecast could use.
    const odd = decideDelivery(req({ body: JSON.stringify({ ...b, build_name: 42, build_stage: 'x'.repeat(400), build_duration: -3 }) }), { secret: SECRET, now });
    expect(odd.kind).toBe('queue');
    if (odd.kind !== 'queue') throw new Error('queued');
    expect(odd.event.name).toBeUndefined();
    expect(odd.event.stage).toHaveLength(255);
    expect(odd.event.duration).toBeUndefined();
  });

  it('acknowledges jobs that wait for a person or a time (manual, scheduled)', () => {
    for (const status of ['manual', 'scheduled']) {
      const b = JSON.parse(body('pending'));
      b.build_status = status;
      expect(decideDelivery(req({ body: JSON.stringify(b) }), { secret: SECRET, now })).toMatchObject({ kind: 'ignore', status: 200 });
    }
  });

  it('refuses a body over the limit with 413', () => {
    const d = decideDelivery(req({ body: JSON.stringify({ object_kind: 'build', pad: 'x'.repeat(5000) }) }), { secret: SECRET, now, maxBodyBytes: 4096 });
    expect(d).toMatchObject({ kind: 'reject', status: 413, reason: 'body is over 4096 bytes' });
  });

  it('decodes a base64 body (API Gateway may encode it)', () => {
    const d = decideDelivery(req({ body: Buffer.from(body('pending')).toString('base64'), isBase64Encoded: true }), { secret: SECRET, now });
    expect(d.kind).toBe('queue');
  });

  it.each([
    ['not JSON', '{"object_kind":', 400, /not valid JSON/, undefined],
    ['a JSON array', '[]', 400, /JSON object/, { body: 'an array of 0 items' }],
    ['another object kind', '{"object_kind":"pipeline"}', 422, /object_kind must be "build"/, { objectKind: '"pipeline"' }],
    ['no build_id', '{"object_kind":"build","project_id":1,"build_status":"pending"}', 422, /build_id/, { buildId: 'absent' }],
    ['a string project_id', '{"object_kind":"build","build_id":1,"project_id":"1","build_status":"pending"}', 422, /project_id/, { projectId: '"1"' }],
    ['an unknown status', '{"object_kind":"build","build_id":1,"project_id":1,"build_status":"exploded"}', 422, /accepted: created/, { buildStatus: '"exploded"' }],
  ])('refuses %s with a 4xx naming the problem (fixed text; the log detail shows the value)', (_what, text, status, reason, detail) => {
    const d = decideDelivery(req({ body: text }), { secret: SECRET, now });
    expect(d).toMatchObject({ kind: 'reject', status });
    expect(d.reason).toMatch(reason);
    if (detail) expect(d.detail).toEqual(detail);
    expect(d.reason).not.toMatch(/exploded|pipeline"/);
  });

  it.each([
    ['a number', 42],
    ['an object', { object_kind: 'build' }],
    ['an array', ['a']],
  ])('refuses a body that is %s (a direct invoke) with 400', (_what, b) => {
    expect(decideDelivery(req({ body: b }), { secret: SECRET, now })).toMatchObject({ kind: 'reject', status: 400, reason: 'body must be a JSON text' });
  });

  it.each([
    ['outside the alphabet', '@@' + Buffer.from(body('pending')).toString('base64')],
    ['truncated', Buffer.from(body('pending')).toString('base64').slice(0, -3)],
    ['URL-safe alphabet', Buffer.from(body('pending')).toString('base64').replace(/\+/g, '-').replace(/\//g, '_') + '-_'],
  ])('refuses base64 %s with 400', (_what, b64) => {
    expect(decideDelivery(req({ body: b64, isBase64Encoded: true }), { secret: SECRET, now })).toMatchObject({ kind: 'reject', status: 400, reason: 'body is not valid base64' });
  });

  it('measures a base64 body by its decoded size, exactly, before decoding it', () => {
    const text = JSON.stringify({ object_kind: 'build', build_id: 1, project_id: 1, build_status: 'pending', pad: 'p'.repeat(4000) });
    const b64 = Buffer.from(text).toString('base64');
    const at = (max: number) => decideDelivery(req({ body: b64, isBase64Encoded: true }), { secret: SECRET, now, maxBodyBytes: max }).status;
    expect(at(Buffer.byteLength(text))).toBe(202);
    expect(at(Buffer.byteLength(text) - 1)).toBe(413);
  });

  it('takes isBase64Encoded only when it is true (not "true" or 1)', () => {
    const b64 = Buffer.from(body('pending')).toString('base64');
    for (const flag of ['true', 1]) expect(decideDelivery(req({ body: b64, isBase64Encoded: flag }), { secret: SECRET, now })).toMatchObject({ status: 400 });
  });

  it('uses an Idempotency-Key only when it is shaped like one; others fall back to the job key and are shown shortened', () => {
    for (const bad of ['\r\nX: 1', 'x'.repeat(65), 'caf\u00e9', '\ud800abc', '']) {
      const d = decideDelivery(req({ headers: { 'idempotency-key': bad, 'x-gitlab-event-uuid': undefined } }), { secret: SECRET, now });
      expect(d).toMatchObject({ kind: 'queue', dedupKey: 'job:4242:pending:0' });
      if (d.kind === 'queue') expect(d.event.deliveryId).toBeUndefined();
    }
    const d = decideDelivery(req({ headers: { 'idempotency-key': 'x'.repeat(5000) } }), { secret: SECRET, now });
    expect(d.detail?.ignoredDeliveryId).toMatch(/^"x{64}" \(\+4936 more characters\)$/);
  });

  it('refuses a non-JSON content type with 415', () => {
    for (const ct of ['text/plain', 'application/jsonx', 'application/json-patch+json', 'application/json\r\nX: 1'])
      expect(decideDelivery(req({ headers: { 'content-type': ct } }), { secret: SECRET, now })).toMatchObject({ kind: 'reject', status: 415 });
    for (const ct of ['application/json', 'application/json; charset=utf-8', 'APPLICATION/JSON'])
      expect(decideDelivery(req({ headers: { 'content-type': ct } }), { secret: SECRET, now })).toMatchObject({ kind: 'queue' });
  });

  it('never throws and never answers 5xx, whatever the body, headers or flags', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.json(), fc.anything()), fc.anything(), fc.oneof(fc.boolean(), fc.anything()), (text, extra, b64) => {
        const d = decideDelivery(
          { headers: { ...req().headers as object, extra }, body: b64 === true && typeof text === 'string' ? Buffer.from(text).toString('base64') : text, isBase64Encoded: b64 },
          { secret: SECRET, now },
        );
        return d.status < 500 && Buffer.byteLength(d.reason) < 300;
      }),
    );
  });
});

describe('dedupeEvents', () => {
  const e = (jobId: number, status: string, deliveryId?: string) => ({ jobId, projectId: 1, status, receivedAt: 0, ...(deliveryId ? { deliveryId } : {}) });
  it('drops the same delivery and the same job+status, keeping order and distinct transitions', () => {
    const out = dedupeEvents([e(1, 'pending', 'a'), e(1, 'pending', 'a'), e(2, 'pending', 'b'), e(1, 'running', 'c'), e(1, 'pending', 'd')]);
    expect(out.map((x) => `${x.jobId}:${x.status}`)).toEqual(['1:pending', '2:pending', '1:running']);
  });

  it('an Idempotency-Key seen with another job or status is not a redelivery: a forged or reused key suppresses nothing real', () => {
    // GitLab keeps the key for the redeliveries of one delivery (one job, one status). A delivery
    // forged with the right secret and a key that a real delivery of another job carries must not
    // make the real one vanish, in the batch or later.
    expect(dedupeEvents([e(9, 'success', 'k'), e(3, 'running', 'k')]).map((x) => `${x.jobId}:${x.status}`)).toEqual(['9:success', '3:running']);
    const recent = new RecentDeliveries();
    recent.remember([e(9, 'success', 'k')], 0);
    expect(dedupeEvents([e(3, 'running', 'k'), e(9, 'pending', 'k')], recent, 1).map((x) => `${x.jobId}:${x.status}`)).toEqual(['3:running', '9:pending']);
    expect(dedupeEvents([e(9, 'success', 'k')], recent, 1)).toEqual([]); // the real redelivery is still dropped
  });

  it('drops a redelivery in a later batch by its Idempotency-Key, once the pass that took it succeeded; job+status alone is not remembered', () => {
    const recent = new RecentDeliveries(3, 60_000);
    const first = dedupeEvents([e(1, 'pending', 'k1'), e(2, 'pending', 'k2')], recent, 0);
    // The pass failed: the batch is retried, nothing was remembered.
    expect(dedupeEvents([e(1, 'pending', 'k1'), e(2, 'pending', 'k2')], recent, 1).length).toBe(2);
    recent.remember(first, 2);
    expect(dedupeEvents([e(1, 'pending', 'k1'), e(2, 'running', 'k3'), e(2, 'pending', 'k4')], recent, 3).map((x) => x.deliveryId)).toEqual(['k3', 'k4']);
    expect(dedupeEvents([e(1, 'pending', 'k1')], recent, 60_002)).toHaveLength(1); // forgotten after the TTL
    recent.remember([e(5, 'pending', 'a'), e(6, 'pending', 'b'), e(7, 'pending', 'c')], 4);
    expect(recent.size).toBe(3); // bounded: the oldest go first
  });
});

describe('queue messages', () => {
  it('round-trips job and interruption messages', () => {
    const job = { v: 1 as const, type: 'job' as const, event: { jobId: 5, projectId: 6, status: 'pending', receivedAt: 7, deliveryId: 'x', tags: ['docker'] } };
    expect(decodeQueueMessage(encodeQueueMessage(job))).toEqual(job);
    const intr = { v: 1 as const, type: 'interruption' as const, instanceId: 'i-0abc', detailType: 'EC2 Spot Instance Interruption Warning', at: 9 };
    expect(decodeQueueMessage(encodeQueueMessage(intr))).toEqual(intr);
  });
  it.each([
    ['garbage', 'nope', /not JSON/],
    ['a future version', '{"v":2,"type":"job"}', /version 2/],
    ['an unknown type', '{"v":1,"type":"other"}', /unknown message type "other"/],
    ['a job without ids', '{"v":1,"type":"job","event":{"status":"pending"}}', /event.jobId/],
    ['a bad instance id', '{"v":1,"type":"interruption","instanceId":"x"}', /instanceId/],
  ])('refuses %s with a reason', (_w, text, reason) => {
    expect(() => decodeQueueMessage(text)).toThrow(QueueMessageError);
    expect(() => decodeQueueMessage(text)).toThrow(reason);
  });
});
