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
 * The id that ties the lines of one invocation together, taken from the event when it carries
 * one a human could search for elsewhere: GitLab's X-Gitlab-Event-UUID for a webhook, the
 * EventBridge event id for an EC2 event, the first SQS message id for a batch (the webhook puts
 * its own correlation id on the message as an attribute); otherwise the Lambda request id.
 */
export function correlationIdOf(event: unknown, context?: Partial<Context>): string {
  const e = (event ?? {}) as Record<string, any>;
  const headers = (e.headers ?? {}) as Record<string, string | undefined>;
  for (const [k, v] of Object.entries(headers)) if (k.toLowerCase() === 'x-gitlab-event-uuid' && v) return String(v).slice(0, 128);
  if (Array.isArray(e.Records) && e.Records[0]?.messageId) return String(e.Records[0].messageId);
  if (typeof e.id === 'string' && typeof e['detail-type'] === 'string') return e.id;
  return context?.awsRequestId ?? randomUUID();
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

export function jsonResponse(statusCode: number, body: Record<string, unknown>, correlationId?: string): HttpResponse {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (correlationId) headers['x-correlation-id'] = correlationId;
  return { statusCode, headers, body: JSON.stringify(body) };
}

/**
 * An unexpected error in an HTTP handler (SSM or SQS unreachable, a bug) becomes a 503 with a
 * correlation id and no detail: the caller learns nothing internal, the log has the cause. 503
 * rather than 200 on purpose: the delivery was NOT queued, and GitLab shows failed deliveries in
 * the hook's "Recent events" (see docs/deployment.md, "Webhook status codes").
 * Must be registered AFTER `correlate` (middy runs onError in reverse order), so it sees the logger.
 */
export function httpErrors<TEvent>(): MiddlewareObj<TEvent, HttpResponse, Error, LoggedContext> {
  return {
    onError: (request: Request<TEvent, HttpResponse, Error, LoggedContext>) => {
      const ctx: Partial<LoggedContext> = request.context;
      request.response = jsonResponse(503, { error: 'temporarily unable to accept the event; it was not queued', correlationId: ctx.correlationId }, ctx.correlationId);
    },
  };
}
