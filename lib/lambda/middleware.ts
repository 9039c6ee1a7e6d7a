/**
 * The cross-cutting parts of every handler, as middy middlewares (@middy/core 6), so no handler
 * repeats them: a correlation id and a JSON logger per invocation, an invocation summary line, and
 * the mapping of errors to what the caller should see.
 */
import type { MiddlewareObj, Request } from '@middy/core';
import type { Context } from 'aws-lambda';
import { randomUUID } from 'node:crypto';
import { createLogger, type JsonLogger, type LoggerOptions } from './logger';

/** The Lambda context, plus what `correlate` adds. */
export interface LoggedContext extends Context {
  log: JsonLogger;
  correlationId: string;
}

/**
 * What a correlation id may look like: GitLab's X-Gitlab-Event-UUID, SQS message ids, EventBridge
 * event ids and Lambda request ids are UUIDs. The id is echoed in a response header and on every
 * log line, and the header it may come from is sent by whoever calls the public URL, so anything
 * else (control characters, "\r\nSet-Cookie:", 5,000 characters, non-ASCII) is not used.
 */
const CORRELATION_ID = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$/;

/** The value when it is a well-formed correlation id, else undefined. */
export function validCorrelationId(v: unknown): string | undefined {
  return typeof v === 'string' && CORRELATION_ID.test(v) ? v : undefined;
}

/**
 * The id that ties the lines of one invocation together, taken from the event when it carries
 * one a human could search for elsewhere: GitLab's X-Gitlab-Event-UUID for a webhook, the
 * EventBridge event id for an EC2 event, the first SQS message id for a batch (the webhook puts
 * its own correlation id on the message as an attribute); otherwise the Lambda request id, and a
 * fresh UUID when even that is unusable. Every candidate is validated (validCorrelationId).
 */
export function correlationIdOf(event: unknown, context?: Partial<Context>): string {
  const e = (event !== null && typeof event === 'object' ? event : {}) as Record<string, unknown>;
  const headers = e.headers;
  if (headers !== null && typeof headers === 'object' && !Array.isArray(headers)) {
    const matches = Object.keys(headers).filter((k) => k.toLowerCase() === 'x-gitlab-event-uuid');
    const id = matches.length === 1 ? validCorrelationId((headers as Record<string, unknown>)[matches[0]]) : undefined;
    if (id) return id;
  }
  const records = e.Records;
  if (Array.isArray(records) && records.length > 0) {
    const id = validCorrelationId((records[0] as { messageId?: unknown } | null)?.messageId);
    if (id) return id;
  }
  if (typeof e['detail-type'] === 'string') {
    const id = validCorrelationId(e.id);
    if (id) return id;
  }
  return validCorrelationId(context?.awsRequestId) ?? randomUUID();
}

export interface CorrelateOptions<TResult = unknown> extends LoggerOptions {
  /** Fields on every line: service, function, deployment, stage. */
  fields?: Record<string, unknown>;
  /** Summarises the response for the invocation line (never the whole body). */
  summarize?: (response: TResult | null) => Record<string, unknown>;
}

/** Adds `context.log` and `context.correlationId`, and logs one line per invocation with its outcome. */
export function correlate<TEvent, TResult>(opts: CorrelateOptions<TResult> = {}): MiddlewareObj<TEvent, TResult, Error, LoggedContext> {
  const started = new WeakMap<object, number>();
  return {
    before: (request: Request<TEvent, TResult, Error, LoggedContext>) => {
      const correlationId = correlationIdOf(request.event, request.context);
      const ctx = request.context;
      ctx.correlationId = correlationId;
      ctx.log = createLogger({ ...(opts.fields ?? {}), correlationId, requestId: request.context?.awsRequestId }, opts);
      started.set(request, Date.now());
    },
    after: (request: Request<TEvent, TResult, Error, LoggedContext>) => {
      const ctx = request.context;
      const durationMs = Date.now() - (started.get(request) ?? Date.now());
      ctx.log?.info('invocation done', { durationMs, ...(opts.summarize ? opts.summarize(request.response) : {}) });
    },
    onError: (request: Request<TEvent, TResult, Error, LoggedContext>) => {
      const ctx = request.context;
      if (!ctx.log) ctx.log = createLogger({ ...(opts.fields ?? {}), correlationId: correlationIdOf(request.event, request.context) }, opts);
      const durationMs = Date.now() - (started.get(request) ?? Date.now());
      ctx.log.error('invocation failed', { durationMs, error: request.error });
    },
  };
}

export interface HttpResponse {
  statusCode: number;
  headers: Record<string, string>;
  body: string;
}

/**
 * A response header value as HTTP allows it (RFC 9110 field-value: visible ASCII and spaces), at
 * most 128 characters. Values here are ours or validated; this is the last line of defence
 * against a header injection should a caller value ever reach one.
 */
function headerValue(v: string): string {
  return v.replace(/[^\x20-\x7e]/g, '').slice(0, 128);
}

export function jsonResponse(statusCode: number, body: Record<string, unknown>, correlationId?: string): HttpResponse {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (correlationId) headers['x-correlation-id'] = headerValue(correlationId);
  return { statusCode, headers, body: JSON.stringify(body) };
}

/**
 * Errors that mean the function itself is misconfigured (an environment variable missing, a
 * webhook secret refused): not an outage that passes, so 500 rather than 503, and the log line
 * names what to fix. The caller sees neither.
 */
export class MisconfigurationError extends Error {
  override name = 'MisconfigurationError';
}

/**
 * An unexpected error in an HTTP handler (SSM or SQS unreachable, a bug) becomes a 503 with a
 * correlation id and a fixed, short body: the caller learns nothing internal, the log has the
 * cause. 503 rather than 200 on purpose: the delivery was NOT queued, and GitLab shows failed
 * deliveries in the hook's "Recent events" (see docs/deployment.md, "Webhook status codes").
 * A MisconfigurationError (or the environment's EnvError) becomes a 500 the same way.
 * Must be registered AFTER `correlate` (middy runs onError in reverse order), so it sees the logger.
 */
/** Whether an error says the function is misconfigured (answer 500, fix the deployment) rather than an outage (503). */
export function isMisconfiguration(e: unknown): boolean {
  const name = (e as { name?: unknown } | null)?.name;
  return name === 'MisconfigurationError' || name === 'EnvError';
}

export function httpErrors<TEvent>(): MiddlewareObj<TEvent, HttpResponse, Error, LoggedContext> {
  return {
    onError: (request: Request<TEvent, HttpResponse, Error, LoggedContext>) => {
      const ctx: Partial<LoggedContext> = request.context;
      request.response = isMisconfiguration(request.error)
        ? jsonResponse(500, { error: 'the webhook is misconfigured; its logs say what to fix', correlationId: ctx.correlationId }, ctx.correlationId)
        : jsonResponse(503, { error: 'temporarily unable to accept the event; it was not queued', correlationId: ctx.correlationId }, ctx.correlationId);
    },
  };
}
