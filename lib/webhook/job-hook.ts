/**
 * GitLab Job Hook deliveries: authentication, validation and mapping to the JobEvent the reconcile
 * pass consumes. Pure (node:crypto only): the webhook Lambda adapts HTTP to this and back.
 *
 * Why the status codes are what they are: GitLab disables a hook temporarily after 4 consecutive
 * failed deliveries (4xx or 5xx, backoff 1 min doubling to 24 h) and permanently after 40
 * (docs.gitlab.com, "Webhooks": auto-disabled hooks). So every event GitLab may legitimately send
 * and we do not need is answered 2xx; only deliveries that are wrong (bad token, malformed body)
 * get a 4xx, because those mean the hook is misconfigured and an admin should notice.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { JobEvent } from '../controller/ports';

/** GitLab's job hook body is a few KB; 256 KB leaves room for long names and commit messages. */
export const DEFAULT_MAX_BODY_BYTES = 256 * 1024;

/** build_status values GitLab sends (facts: GitLab job webhooks). Others are refused as malformed. */
export const JOB_STATUSES = [
  'created',
  'waiting_for_resource',
  'preparing',
  'waiting_for_callback',
  'pending',
  'running',
  'success',
  'failed',
  'canceling',
  'canceled',
  'skipped',
  'manual',
  'scheduled',
] as const;

/**
 * Statuses in which a job neither needs nor holds a runner: `created` (every job of a new pipeline,
 * before its stage is reached), `manual` and `scheduled` (waiting for a person or a time). They
 * are acknowledged and dropped here, which keeps most of a pipeline's deliveries off the queue; the
 * job's `pending` delivery follows when it does need a runner.
 */
export const IGNORED_STATUSES: readonly string[] = ['created', 'manual', 'scheduled'];

export interface WebhookRequest {
  /** Header names in any case (API Gateway HTTP API lower-cases them; others may not). */
  headers: Record<string, string | undefined>;
  body: string | undefined | null;
  isBase64Encoded?: boolean;
}

export interface WebhookOptions {
  /** The shared secret GitLab sends in X-Gitlab-Token. */
  secret: string;
  now: number;
  maxBodyBytes?: number;
}

export type WebhookDecision =
  | { kind: 'queue'; status: 202; event: JobEvent; dedupKey: string; reason: string }
  | { kind: 'ignore'; status: 200; reason: string }
  | { kind: 'reject'; status: 400 | 401 | 413 | 415 | 422; reason: string };

/**
 * Constant-time comparison of the presented token with the secret. Both sides are hashed first so
 * the comparison takes the same time whatever the presented length (timingSafeEqual alone throws
 * on a length mismatch, which would leak the secret's length).
 */
export function tokenMatches(presented: string | undefined, secret: string): boolean {
  if (!secret) return false; // an empty secret would accept an absent header
  const a = createHash('sha256').update(presented ?? '', 'utf8').digest();
  const b = createHash('sha256').update(secret, 'utf8').digest();
  return timingSafeEqual(a, b) && presented !== undefined;
}

export function header(headers: WebhookRequest['headers'], name: string): string | undefined {
  const lower = name.toLowerCase();
  for (const [k, v] of Object.entries(headers ?? {})) if (k.toLowerCase() === lower) return v ?? undefined;
  return undefined;
}

function positiveInt(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isSafeInteger(v) && v > 0 ? v : undefined;
}

/**
 * The key under which two deliveries are "the same": GitLab's Idempotency-Key (17.4+, stable across
 * retries and "Resend Request") when present, else the job, its status and its retry count: GitLab
 * sends each transition of a job once, so the same (job, status) twice is a redelivery.
 */
export function dedupKey(event: Pick<JobEvent, 'jobId' | 'status'>, retries: number, idempotencyKey?: string): string {
  return idempotencyKey ? `idem:${idempotencyKey}` : `job:${event.jobId}:${event.status}:${retries}`;
}

/** Decides what to do with one delivery. Never throws for bad input: bad input is a 4xx decision. */
export function decideDelivery(req: WebhookRequest, opts: WebhookOptions): WebhookDecision {
  const maxBytes = opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  // Authentication first: an unauthenticated caller learns nothing about what we accept.
  if (!tokenMatches(header(req.headers, 'x-gitlab-token'), opts.secret))
    return { kind: 'reject', status: 401, reason: 'X-Gitlab-Token is missing or does not match the webhook secret' };

  const eventName = header(req.headers, 'x-gitlab-event');
  if (eventName !== 'Job Hook')
    return { kind: 'ignore', status: 200, reason: `ignored: X-Gitlab-Event is ${eventName === undefined ? 'absent' : JSON.stringify(eventName.slice(0, 64))}, only "Job Hook" is used` };

  const raw = req.body ?? '';
  const bytes = req.isBase64Encoded ? Math.floor((raw.length * 3) / 4) : Buffer.byteLength(raw, 'utf8');
  if (bytes > maxBytes) return { kind: 'reject', status: 413, reason: `body is ${bytes} bytes; at most ${maxBytes} are accepted` };
  const text = req.isBase64Encoded ? Buffer.from(raw, 'base64').toString('utf8') : raw;
  const contentType = header(req.headers, 'content-type');
  if (contentType !== undefined && !/^application\/json\b/i.test(contentType))
    return { kind: 'reject', status: 415, reason: `Content-Type is ${JSON.stringify(contentType.slice(0, 64))}; GitLab sends application/json` };

  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (e) {
    return { kind: 'reject', status: 400, reason: `body is not JSON: ${(e as Error).message.slice(0, 120)}` };
  }
  if (!body || typeof body !== 'object' || Array.isArray(body)) return { kind: 'reject', status: 400, reason: 'body must be a JSON object' };
  const b = body as Record<string, unknown>;
  if (b.object_kind !== 'build')
    return { kind: 'reject', status: 422, reason: `a Job Hook body has object_kind "build"; got ${JSON.stringify(b.object_kind ?? null)}` };
  const jobId = positiveInt(b.build_id);
  if (jobId === undefined) return { kind: 'reject', status: 422, reason: 'build_id must be a positive integer' };
  const projectId = positiveInt(b.project_id);
  if (projectId === undefined) return { kind: 'reject', status: 422, reason: 'project_id must be a positive integer' };
  const status = b.build_status;
  if (typeof status !== 'string' || !(JOB_STATUSES as readonly string[]).includes(status))
    return { kind: 'reject', status: 422, reason: `build_status ${JSON.stringify(status ?? null)} is not a GitLab job status (accepted: ${JOB_STATUSES.join(', ')})` };
  if (IGNORED_STATUSES.includes(status)) return { kind: 'ignore', status: 200, reason: `ignored: job ${jobId} is ${status}; it needs no runner yet` };
  const retries = typeof b.retries_count === 'number' && Number.isSafeInteger(b.retries_count) ? b.retries_count : 0;

  const idem = header(req.headers, 'idempotency-key') ?? header(req.headers, 'x-gitlab-event-uuid');
  const event: JobEvent = { jobId, projectId, status, receivedAt: opts.now };
  if (idem) event.deliveryId = idem.slice(0, 128);
  // Optional: lets the controller route all of a pipeline's untagged jobs with one API call.
  const pipelineId = positiveInt(b.pipeline_id);
  if (pipelineId !== undefined) event.pipelineId = pipelineId;
  return { kind: 'queue', status: 202, event, dedupKey: dedupKey(event, retries, idem ? idem.slice(0, 128) : undefined), reason: `queued job ${jobId} ${status}` };
}

/**
 * Drops redeliveries from a batch of queued events: the same delivery id, or the same job and
 * status seen twice. Keeps the first; order is preserved. The reconcile pass is level-triggered,
 * so a duplicate that slips through (across batches) costs one GitLab lookup, never a second worker.
 */
export function dedupeEvents(events: readonly JobEvent[]): JobEvent[] {
  const seen = new Set<string>();
  const out: JobEvent[] = [];
  for (const e of events) {
    const keys = [`job:${e.jobId}:${e.status}`];
    if (e.deliveryId) keys.push(`idem:${e.deliveryId}`);
    if (keys.some((k) => seen.has(k))) continue;
    keys.forEach((k) => seen.add(k));
    out.push(e);
  }
  return out;
}

/** Queue message body. Versioned so a reconcile Lambda can refuse a format it does not know. */
export type QueueMessage =
  | { v: 1; type: 'job'; event: JobEvent }
  | { v: 1; type: 'interruption'; instanceId: string; detailType: string; at: number };

export function encodeQueueMessage(m: QueueMessage): string {
  return JSON.stringify(m);
}

export class QueueMessageError extends Error {
  override name = 'QueueMessageError';
}

export function decodeQueueMessage(body: string): QueueMessage {
  let m: unknown;
  try {
    m = JSON.parse(body);
  } catch {
    throw new QueueMessageError('message body is not JSON');
  }
  const o = m as Record<string, unknown>;
  if (!o || typeof o !== 'object' || o.v !== 1) throw new QueueMessageError(`unknown message version ${JSON.stringify(o?.v ?? null)} (expected 1)`);
  if (o.type === 'job') {
    const e = o.event as Record<string, unknown> | undefined;
    if (!e || positiveInt(e.jobId) === undefined || positiveInt(e.projectId) === undefined || typeof e.status !== 'string' || typeof e.receivedAt !== 'number')
      throw new QueueMessageError('job message needs event.jobId, event.projectId, event.status and event.receivedAt');
    const event: JobEvent = { jobId: e.jobId as number, projectId: e.projectId as number, status: e.status, receivedAt: e.receivedAt };
    if (typeof e.deliveryId === 'string') event.deliveryId = e.deliveryId;
    if (positiveInt(e.pipelineId) !== undefined) event.pipelineId = e.pipelineId as number;
    if (Array.isArray(e.tags) && e.tags.every((t) => typeof t === 'string')) event.tags = e.tags as string[];
    return { v: 1, type: 'job', event };
  }
  if (o.type === 'interruption') {
    if (typeof o.instanceId !== 'string' || !/^i-[0-9a-f]+$/.test(o.instanceId)) throw new QueueMessageError('interruption message needs instanceId "i-..."');
    return { v: 1, type: 'interruption', instanceId: o.instanceId, detailType: String(o.detailType ?? ''), at: typeof o.at === 'number' ? o.at : 0 };
  }
  throw new QueueMessageError(`unknown message type ${JSON.stringify(o.type ?? null)} (expected "job" or "interruption")`);
}
