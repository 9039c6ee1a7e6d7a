import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import {
  decideDelivery,
  dedupeEvents,
  decodeQueueMessage,
  encodeQueueMessage,
  tokenMatches,
  QueueMessageError,
  type WebhookRequest,
} from '../../lib/webhook/job-hook';

const SECRET = 's3cret-webhook-value';
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
});

describe('decideDelivery', () => {
  it('queues a pending job with its ids, status, receive time and idempotency key', () => {
    const d = decideDelivery(req(), { secret: SECRET, now });
    expect(d).toMatchObject({ kind: 'queue', status: 202, dedupKey: 'idem:idem-1' });
    if (d.kind !== 'queue') throw new Error('unreachable');
    expect(d.event).toEqual({ jobId: 4242, projectId: 17, status: 'pending', receivedAt: now, deliveryId: 'idem-1', pipelineId: 981 });
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
    expect(d).toMatchObject({ kind: 'ignore', status: 200 });
    expect(d.reason).toContain('Pipeline Hook');
  });

  it('acknowledges jobs that need no runner yet (created, manual, scheduled)', () => {
    for (const status of ['created', 'manual', 'scheduled']) {
      const b = JSON.parse(body('pending'));
      b.build_status = status;
      expect(decideDelivery(req({ body: JSON.stringify(b) }), { secret: SECRET, now })).toMatchObject({ kind: 'ignore', status: 200 });
    }
  });

  it('refuses a body over the limit with 413', () => {
    const d = decideDelivery(req({ body: JSON.stringify({ object_kind: 'build', pad: 'x'.repeat(5000) }) }), { secret: SECRET, now, maxBodyBytes: 4096 });
    expect(d).toMatchObject({ kind: 'reject', status: 413 });
    expect(d.reason).toMatch(/at most 4096/);
  });

  it('decodes a base64 body (API Gateway may encode it)', () => {
    const d = decideDelivery(req({ body: Buffer.from(body('pending')).toString('base64'), isBase64Encoded: true }), { secret: SECRET, now });
    expect(d.kind).toBe('queue');
  });

  it.each([
    ['not JSON', '{"object_kind":', 400, /not JSON/],
    ['a JSON array', '[]', 400, /JSON object/],
    ['another object kind', '{"object_kind":"pipeline"}', 422, /object_kind "build"/],
    ['no build_id', '{"object_kind":"build","project_id":1,"build_status":"pending"}', 422, /build_id/],
    ['a string project_id', '{"object_kind":"build","build_id":1,"project_id":"1","build_status":"pending"}', 422, /project_id/],
    ['an unknown status', '{"object_kind":"build","build_id":1,"project_id":1,"build_status":"exploded"}', 422, /exploded.*accepted: created/],
  ])('refuses %s with a 4xx naming the problem', (_what, text, status, reason) => {
    const d = decideDelivery(req({ body: text }), { secret: SECRET, now });
    expect(d).toMatchObject({ kind: 'reject', status });
    expect(d.reason).toMatch(reason);
  });

  it('refuses a non-JSON content type with 415', () => {
    expect(decideDelivery(req({ headers: { 'content-type': 'text/plain' } }), { secret: SECRET, now })).toMatchObject({ kind: 'reject', status: 415 });
  });

  it('never throws and never answers 5xx, whatever the body', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.json()), fc.boolean(), (text, b64) => {
        const d = decideDelivery(req({ body: b64 ? Buffer.from(text).toString('base64') : text, isBase64Encoded: b64 }), { secret: SECRET, now });
        return d.status < 500;
      }),
    );
  });
});

describe('dedupeEvents', () => {
  const e = (jobId: number, status: string, deliveryId?: string) => ({ jobId, projectId: 1, status, receivedAt: 0, ...(deliveryId ? { deliveryId } : {}) });
  it('drops the same delivery and the same job+status, keeping order and distinct transitions', () => {
    const out = dedupeEvents([e(1, 'pending', 'a'), e(1, 'pending', 'a'), e(2, 'pending', 'b'), e(1, 'running', 'c'), e(1, 'pending', 'd'), e(3, 'running', 'b')]);
    expect(out.map((x) => `${x.jobId}:${x.status}`)).toEqual(['1:pending', '2:pending', '1:running']);
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
