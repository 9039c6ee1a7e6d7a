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
 * Statuses in which a job neither needs nor holds a runner and that say nothing of what is coming:
 * `manual` and `scheduled` (waiting for a person or a time; GitLab sends no hook for them today,
 * facts.md). They are acknowledged and dropped here. `created` (every job of a new pipeline, sent
 * when the pipeline is created) is queued: it is no demand, but it tells the forecast
 * (lib/forecast.ts) which jobs are coming, with their names and stages.
 */
export const IGNORED_STATUSES: readonly string[] = ['manual', 'scheduled'];

/** Job and stage names longer than this are cut (GitLab allows 255 characters). */
export const MAX_NAME_CHARS = 255;

/**
 * One delivery as the Lambda receives it. Everything is `unknown` on purpose: the HTTP API builds
 * well-formed events, but the function can also be invoked directly with any JSON, and a public URL
 * means any bytes. Nothing here may throw or answer 5xx because of what a caller sent.
 */
export interface WebhookRequest {
  /** Header names in any case (API Gateway HTTP API lower-cases them; others may not). */
  headers: unknown;
  body: unknown;
  isBase64Encoded?: unknown;
}

export interface WebhookOptions {
  /** The shared secret GitLab sends in X-Gitlab-Token. */
  secret: string;
  now: number;
  maxBodyBytes?: number;
}

/**
 * Caller-supplied values that explain a decision, for the log line only: each is already shortened
 * and escaped (describeValue), never the value itself. Response bodies carry the fixed `reason`.
 */
export type DecisionDetail = Record<string, string | number>;

export type WebhookDecision =
  | { kind: 'queue'; status: 202; event: JobEvent; dedupKey: string; reason: string; detail?: DecisionDetail }
  | { kind: 'ignore'; status: 200; reason: string; detail?: DecisionDetail }
  | { kind: 'reject'; status: 400 | 401 | 413 | 415 | 422; reason: string; detail?: DecisionDetail };

/**
 * The shortest webhook secret accepted: 32 characters. `openssl rand -hex 32` (the command the docs
 * give) makes 64; 32 hex characters are 128 bits, beyond guessing through a throttled public URL
 * (250 requests/s for a million years tries 2^53 of 2^128). Most leaked or guessed webhook secrets
 * are short words and placeholders ("secret", "changeme", "gitlab-webhook"): they are refused.
 */
export const MIN_WEBHOOK_SECRET_LENGTH = 32;
/** A long secret of a few repeated characters ("aaaa…", "abab…") is no secret either. */
const MIN_DISTINCT_SECRET_CHARS = 8;

/** Why a webhook secret is refused, or undefined when it is acceptable. Names no part of the value. */
export function webhookSecretProblem(secret: string): string | undefined {
  // A secret GitLab can never present: HTTP strips white space around a header value (RFC 9110,
  // 5.5), and a header carries no control characters; outside ASCII, bytes depend on each hop's
  // encoding. Refused as misconfiguration (a loud 500 naming the parameter) rather than used and
  // answered with 401 to every delivery. The usual cause: a value stored from a file with its newline.
  if (/^\s|\s$/.test(secret)) return 'it begins or ends with white space (a newline stored from a file?), which no HTTP header carries, so no delivery could ever match';
  if (/[^\x20-\x7e]/.test(secret)) return 'it holds control or non-ASCII characters, which an HTTP header does not carry reliably; use printable ASCII (openssl rand -hex 32)';
  if (secret.length < MIN_WEBHOOK_SECRET_LENGTH)
    return `it is ${secret.length} characters long; at least ${MIN_WEBHOOK_SECRET_LENGTH} are required (generate one with: openssl rand -hex 32)`;
  if (new Set(secret).size < MIN_DISTINCT_SECRET_CHARS)
    return `it uses only ${new Set(secret).size} distinct characters; use a random value (openssl rand -hex 32)`;
  return undefined;
}

/** Presented tokens longer than this are refused unhashed (API Gateway allows 10 KB of headers; a direct invoke 6 MB). */
const MAX_TOKEN_LENGTH = 4096;

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/**
 * Constant-time comparison of the presented token with the secret. Both sides are hashed first so
 * the comparison takes the same time whatever the presented length (timingSafeEqual alone throws
 * on a length mismatch, which would leak the secret's length). A token with a lone surrogate is
 * refused: UTF-8 encoding would turn it into U+FFFD and make two different strings hash alike.
 */
export function tokenMatches(presented: string | undefined, secret: string): boolean {
  if (!secret) return false; // an empty secret would accept an absent header
  if (presented === undefined || presented.length > MAX_TOKEN_LENGTH || LONE_SURROGATE.test(presented)) return false;
  const a = createHash('sha256').update(presented, 'utf8').digest();
  const b = createHash('sha256').update(secret, 'utf8').digest();
  return timingSafeEqual(a, b) && presented === secret;
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * A header's value, by name in any case. Only a single string counts: a header present twice under
 * different spellings (possible only in a direct invoke; HTTP API joins repeats with ",") or with a
 * value that is not a string (a number, an array, an object) reads as absent, so it can never be
 * taken for the secret nor crash the code that reads it. Own properties only (no prototype keys).
 */
export function header(headers: unknown, name: string): string | undefined {
  if (!isRecord(headers)) return undefined;
  const lower = name.toLowerCase();
  let found: unknown;
  let count = 0;
  for (const k of Object.keys(headers)) {
    if (k.toLowerCase() !== lower) continue;
    found = headers[k];
    count++;
  }
  return count === 1 && typeof found === 'string' ? found : undefined;
}

/** Longest caller string a log line shows (decideDelivery's `detail`); the rest is counted, not shown. */
const SHOWN_CHARS = 64;

/**
 * A caller value as a log line may show it: strings cut to 64 characters and JSON-escaped (control
 * characters, lone surrogates), anything else by its type and size, never serialized (a 100,000-deep
 * array in object_kind crashed JSON.stringify with a stack overflow).
 */
export function describeValue(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.slice(0, SHOWN_CHARS)) + (v.length > SHOWN_CHARS ? ` (+${v.length - SHOWN_CHARS} more characters)` : '');
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (v === null) return 'null';
  if (v === undefined) return 'absent';
  if (Array.isArray(v)) return `an array of ${v.length} items`;
  if (typeof v === 'object') return 'an object';
  return typeof v;
}

function positiveInt(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isSafeInteger(v) && v > 0 ? v : undefined;
}

/**
 * GitLab's Idempotency-Key is a UUID. A value outside this shape is not
 * used (the job, status and retries key is): it would go into an SQS message attribute, which
 * refuses control characters and lone surrogates with a 400 — a 5xx caused by input.
 */
const DELIVERY_ID = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$/;

/**
 * The key under which two deliveries are "the same": GitLab's Idempotency-Key (17.4+, stable across
 * retries and "Resend Request") when present, else the job, its status and its retry count: GitLab
 * sends each transition of a job once, so the same (job, status) twice is a redelivery.
 * X-Gitlab-Event-UUID is not a delivery id (hooks triggered by one event share it: facts.md), so
 * it is never used to drop a delivery.
 */
export function dedupKey(event: Pick<JobEvent, 'jobId' | 'status'>, retries: number, idempotencyKey?: string): string {
  return idempotencyKey ? `idem:${idempotencyKey}` : `job:${event.jobId}:${event.status}:${retries}`;
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const JSON_MEDIA_TYPE = /^application\/json\s*(;|$)/i;

/** Decides what to do with one delivery. Never throws for bad input: bad input is a 4xx decision. */
export function decideDelivery(req: WebhookRequest, opts: WebhookOptions): WebhookDecision {
  const maxBytes = opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const headers = isRecord(req) ? req.headers : undefined;
  // Authentication first: an unauthenticated caller learns nothing about what we accept.
  if (!tokenMatches(header(headers, 'x-gitlab-token'), opts.secret))
    return { kind: 'reject', status: 401, reason: 'X-Gitlab-Token is missing or does not match the webhook secret' };

  const eventName = header(headers, 'x-gitlab-event');
  if (eventName !== 'Job Hook') return { kind: 'ignore', status: 200, reason: 'ignored: only X-Gitlab-Event "Job Hook" is used', detail: { event: describeValue(eventName) } };

  const contentType = header(headers, 'content-type');
  if (contentType !== undefined && !JSON_MEDIA_TYPE.test(contentType))
    return { kind: 'reject', status: 415, reason: 'Content-Type must be application/json, as GitLab sends it', detail: { contentType: describeValue(contentType) } };

  const raw = req.body ?? '';
  if (typeof raw !== 'string') return { kind: 'reject', status: 400, reason: 'body must be a JSON text', detail: { body: describeValue(raw) } };
  const base64 = req.isBase64Encoded === true;
  // Sizes first, from the length alone: nothing large is decoded or parsed.
  const bytes = base64 ? Math.floor(raw.length / 4) * 3 - (raw.endsWith('==') ? 2 : raw.endsWith('=') ? 1 : 0) : raw.length > maxBytes ? raw.length : Buffer.byteLength(raw, 'utf8');
  if (bytes > maxBytes) return { kind: 'reject', status: 413, reason: `body is over ${maxBytes} bytes`, detail: { bytes } };
  if (base64 && !BASE64.test(raw)) return { kind: 'reject', status: 400, reason: 'body is not valid base64' };
  const text = base64 ? Buffer.from(raw, 'base64').toString('utf8') : raw;

  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (e) {
    // V8's message quotes the input: logged shortened, never answered.
    return { kind: 'reject', status: 400, reason: 'body is not valid JSON', detail: { error: describeValue((e as Error).message) } };
  }
  if (!isRecord(body)) return { kind: 'reject', status: 400, reason: 'body must be a JSON object', detail: { body: describeValue(body) } };
  if (body.object_kind !== 'build') return { kind: 'reject', status: 422, reason: 'object_kind must be "build" (a Job Hook body)', detail: { objectKind: describeValue(body.object_kind) } };
  const jobId = positiveInt(body.build_id);
  if (jobId === undefined) return { kind: 'reject', status: 422, reason: 'build_id must be a positive integer', detail: { buildId: describeValue(body.build_id) } };
  const projectId = positiveInt(body.project_id);
  if (projectId === undefined) return { kind: 'reject', status: 422, reason: 'project_id must be a positive integer', detail: { projectId: describeValue(body.project_id) } };
  const status = body.build_status;
  if (typeof status !== 'string' || !(JOB_STATUSES as readonly string[]).includes(status))
    return { kind: 'reject', status: 422, reason: `build_status is not a GitLab job status (accepted: ${JOB_STATUSES.join(', ')})`, detail: { buildStatus: describeValue(status) } };
  if (IGNORED_STATUSES.includes(status)) return { kind: 'ignore', status: 200, reason: `ignored: job ${jobId} is ${status}; it needs no runner yet` };
  const retries = typeof body.retries_count === 'number' && Number.isSafeInteger(body.retries_count) ? body.retries_count : 0;

  // X-Gitlab-Event-UUID is not a delivery id: hooks triggered by one event share it (facts.md).
  const presentedId = header(headers, 'idempotency-key');
  const deliveryId = presentedId !== undefined && DELIVERY_ID.test(presentedId) ? presentedId : undefined;
  const event: JobEvent = { jobId, projectId, status, receivedAt: opts.now };
  if (deliveryId) event.deliveryId = deliveryId;
  // For the logs.
  const pipelineId = positiveInt(body.pipeline_id);
  if (pipelineId !== undefined) event.pipelineId = pipelineId;
  // For the forecast (lib/forecast.ts): what the job is and, once finished, how long it ran.
  Object.assign(event, forecastFields({ name: body.build_name, stage: body.build_stage, duration: body.build_duration }));
  const decision: WebhookDecision = { kind: 'queue', status: 202, event, dedupKey: dedupKey(event, retries, deliveryId), reason: `queued job ${jobId} ${status}` };
  if (presentedId !== undefined && !deliveryId) decision.detail = { ignoredDeliveryId: describeValue(presentedId) };
  return decision;
}

/**
 * Idempotency-Keys of deliveries already taken, across passes: a redelivery (GitLab's "Resend
 * Request", or our 5xx answered and sent again) reaches a later pass with the same key. Bounded
 * (the oldest go first) and time-limited; in Lambda it lives as long as the container, which is
 * enough: the reconcile pass is level-triggered, so a duplicate that slips through costs nothing
 * but a state update (a finished job's tombstone ignores it; a running job stays running).
 */
export class RecentDeliveries {
  /** Idempotency-Key -> when, and for which job and status (`jobId:status`). */
  private readonly seen = new Map<string, { at: number; what: string }>();
  constructor(
    readonly maxEntries = 100_000,
    readonly ttlMs = 3_600_000,
  ) {}

  /**
   * True when this event's Idempotency-Key was taken within the TTL for the same job and status.
   * GitLab keeps a key for the redeliveries of one delivery; the same key with another job or
   * status is no redelivery (a forged delivery with the right secret and a copied key must not
   * make a real one vanish).
   */
  has(event: Pick<JobEvent, 'deliveryId' | 'jobId' | 'status'>, now: number): boolean {
    const s = event.deliveryId ? this.seen.get(event.deliveryId) : undefined;
    return s !== undefined && now - s.at < this.ttlMs && s.what === `${event.jobId}:${event.status}`;
  }

  /** Records the keys of events a pass has taken: only once the pass succeeded, or the events of a failed pass, which come back, would be dropped. */
  remember(events: readonly JobEvent[], now: number): void {
    for (const e of events) {
      if (!e.deliveryId) continue;
      this.seen.delete(e.deliveryId);
      this.seen.set(e.deliveryId, { at: now, what: `${e.jobId}:${e.status}` });
    }
    for (const k of this.seen.keys()) {
      if (this.seen.size <= this.maxEntries) break;
      this.seen.delete(k);
    }
  }

  get size(): number {
    return this.seen.size;
  }
}

/**
 * Drops redeliveries: within the pass's events, the same job and status seen twice (a redelivery has both,
 * whatever its Idempotency-Key); across passes (with `recent`), an Idempotency-Key already taken
 * for the same job and status. Keeps the first; order is preserved. (Job and status alone are not
 * remembered across passes: a requeued job is pending again under the same id, a legitimate
 * second delivery.) A key never suppresses an event of another job or status.
 */
export function dedupeEvents(events: readonly JobEvent[], recent?: RecentDeliveries, now = Date.now()): JobEvent[] {
  const seen = new Set<string>();
  const out: JobEvent[] = [];
  for (const e of events) {
    const key = `job:${e.jobId}:${e.status}`;
    if (seen.has(key)) continue;
    seen.add(key);
    if (recent?.has(e, now)) continue;
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

/** A job's name, stage and build_duration when they are what GitLab sends (strings, seconds); anything else is left out. */
function forecastFields(x: { name?: unknown; stage?: unknown; duration?: unknown }): Pick<JobEvent, 'name' | 'stage' | 'duration'> {
  const out: Pick<JobEvent, 'name' | 'stage' | 'duration'> = {};
  if (typeof x.name === 'string' && x.name.length > 0) out.name = x.name.slice(0, MAX_NAME_CHARS);
  if (typeof x.stage === 'string' && x.stage.length > 0) out.stage = x.stage.slice(0, MAX_NAME_CHARS);
  if (typeof x.duration === 'number' && Number.isFinite(x.duration) && x.duration >= 0 && x.duration < 366 * 86_400) out.duration = x.duration;
  return out;
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
    Object.assign(event, forecastFields(e));
    return { v: 1, type: 'job', event };
  }
  if (o.type === 'interruption') {
    if (typeof o.instanceId !== 'string' || !/^i-[0-9a-f]+$/.test(o.instanceId)) throw new QueueMessageError('interruption message needs instanceId "i-..."');
    return { v: 1, type: 'interruption', instanceId: o.instanceId, detailType: String(o.detailType ?? ''), at: typeof o.at === 'number' ? o.at : 0 };
  }
  throw new QueueMessageError(`unknown message type ${JSON.stringify(o.type ?? null)} (expected "job" or "interruption")`);
}
