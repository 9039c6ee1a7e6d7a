/**
 * POST /webhook: GitLab Job Hook -> SQS. Thin: the decision is lib/webhook/job-hook.ts.
 * Imports no AWS SDK client (cold start: lib/aws/aws-json.ts; test/deploy/package.test.ts checks the bundle).
 *
 * The URL is public and the event may be anything (a direct invoke sends any JSON): nothing a
 * caller sends can make this throw, answer 5xx, or put more than a few shortened characters of
 * its input into a log line or a response (docs/deployment.md, "The public webhook";
 * test/webhook/fuzz.test.ts). 5xx means SSM or SQS failed (503) or the function is misconfigured (500).
 */
import middy from '@middy/core';
import { decideDelivery, encodeQueueMessage, webhookSecretProblem } from '../lib/webhook/job-hook';
import { correlate, httpErrors, isMisconfiguration, jsonResponse, MisconfigurationError, type HttpResponse, type LoggedContext } from '../lib/lambda/middleware';
// Not the v3 SDK clients: two signed JSON calls, so the bundle loads faster than a bare Node start
// (lib/aws/aws-json.ts; retries, timeouts and error classes in lib/aws/webhook-aws.ts).
import { webhookAws, type WebhookAws } from '../lib/aws/webhook-aws';
import type { AwsJsonSend } from '../lib/aws/aws-json';
import type { RetryEnv } from '../lib/aws/retry';
import { cached, webhookEnv, type WebhookEnv } from '../lib/lambda/env';
import { registerSecret } from '../lib/lambda/logger';

/**
 * After a failed secret read, the container answers 503 for this long without asking SSM again, so
 * a flood during an SSM outage costs one read per container per 10 s (lib/lambda/env.ts cached).
 * The read itself is retried within a budget (lib/aws/webhook-aws.ts SECRET_READ_POLICY) and
 * happens once per container per WEBHOOK_SECRET_CACHE_SECONDS, not per delivery.
 */
const SECRET_FAILURE_TTL_MS = 10_000;

/**
 * How long past its cache TTL a container may keep using the secret it read when a refresh fails
 * transiently (SSM throttled by a burst of cold containers or by the controller, or down): without
 * it, every warm container whose secret expires during a throttle answers 503 for the failure TTL,
 * and 4 failed deliveries in a row make GitLab disable the hook. A rotated secret still takes
 * effect at the first successful read; a parameter deleted or made unreadable is not covered.
 */
const SECRET_STALE_GRACE_MS = 15 * 60_000;

/** The secret as loaded: usable, or refused with the reason (remembered like a value, for the TTL). */
type LoadedSecret = { ok: true; value: string } | { ok: false; error: MisconfigurationError };

let env: WebhookEnv | undefined;
let aws: WebhookAws | undefined;
let secret: ReturnType<typeof cached<LoadedSecret>> | undefined;
let testSeam: { send?: AwsJsonSend; retryEnv?: RetryEnv } = {};

function setup() {
  if (!env) {
    const e = webhookEnv();
    const a = webhookAws(testSeam);
    aws = a;
    secret = cached<LoadedSecret>(
      async () => {
        const value = await a.readSecret(e.webhookSecretParameter);
        registerSecret(value); // the real secret, loaded by us: masked wherever it might appear
        // A weak secret is refused, not used: a definite answer from SSM, so remembered for the TTL
        // like a good one (no SSM read per request while it stays weak).
        const problem = value ? webhookSecretProblem(value) : 'it is empty';
        if (problem) return { ok: false, error: new MisconfigurationError(`the webhook secret in SSM parameter ${e.webhookSecretParameter} is refused: ${problem}. Store a new one there and in GitLab's webhook "Secret token"`) };
        return { ok: true, value };
      },
      e.secretCacheSeconds * 1000,
      () => Date.now(),
      {
        failureTtlMs: Math.min(SECRET_FAILURE_TTL_MS, e.secretCacheSeconds * 1000),
        // A warm container whose refresh is throttled or finds SSM down keeps its last good secret
        // for a while (docs/security.md, "Webhook secret"); a configuration error does not.
        staleIfError: { maxAgeMs: e.secretCacheSeconds * 1000 + SECRET_STALE_GRACE_MS, when: (err) => !isMisconfiguration(err) },
      },
    );
    env = e;
  }
  return { env, aws: aws!, secret: secret! };
}

/**
 * For tests: forget the AWS adapter, env and the cached secret; the next delivery builds them anew
 * with this transport (default: signed calls to the endpoints of process.env) and retry clock.
 */
export function resetForTests(seam: { send?: AwsJsonSend; retryEnv?: RetryEnv } = {}): void {
  env = undefined;
  aws = undefined;
  secret = undefined;
  testSeam = seam;
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The caller's address as API Gateway reports it, when it looks like one (a direct invoke may send anything). */
function sourceIpOf(event: Record<string, unknown>): string | undefined {
  const http = isRecord(event.requestContext) && isRecord(event.requestContext.http) ? event.requestContext.http : undefined;
  const ip = http?.sourceIp;
  return typeof ip === 'string' && /^[0-9A-Fa-f.:]{2,45}$/.test(ip) ? ip : undefined;
}

async function receive(raw: unknown, context: LoggedContext): Promise<HttpResponse> {
  const { env, aws, secret } = setup();
  const loaded = await secret.get();
  if (!loaded.ok) throw loaded.error;
  const event = isRecord(raw) ? raw : {};
  // The presented X-Gitlab-Token is never registered as a secret (a caller would control the
  // redaction list) and never logged: no line here carries the headers, and the logger masks the
  // header by name (lib/lambda/logger.ts). Caller values reach the log only through the
  // decision's `detail`, already shortened (job-hook.ts describeValue).
  const decision = decideDelivery({ headers: event.headers, body: event.body, isBase64Encoded: event.isBase64Encoded }, { secret: loaded.value, now: Date.now(), maxBodyBytes: env.maxBodyBytes });
  const log = context.log;
  if (decision.kind === 'reject') {
    log.warn('webhook rejected', { status: decision.status, reason: decision.reason, ...decision.detail, sourceIp: sourceIpOf(event) });
    return jsonResponse(decision.status, { error: decision.reason, correlationId: context.correlationId }, context.correlationId);
  }
  if (decision.kind === 'ignore') {
    log.info('webhook ignored', { reason: decision.reason, ...decision.detail });
    return jsonResponse(decision.status, { ignored: decision.reason }, context.correlationId);
  }
  const out = await aws.queueMessage(env.queueUrl, encodeQueueMessage({ v: 1, type: 'job', event: decision.event }), { dedupKey: decision.dedupKey, correlationId: context.correlationId });
  log.info('job event queued', { jobId: decision.event.jobId, projectId: decision.event.projectId, status: decision.event.status, dedupKey: decision.dedupKey, messageId: out.messageId, ...decision.detail });
  return jsonResponse(decision.status, { queued: decision.reason, messageId: out.messageId }, context.correlationId);
}

export const handler = middy<unknown, HttpResponse, Error, LoggedContext>(receive)
  .use(
    correlate<unknown, HttpResponse>({
      fields: { service: 'gitlab-spot-autoscaler', function: 'webhook' },
      summarize: (r) => ({ statusCode: r?.statusCode }),
    }),
  )
  .use(httpErrors<unknown>());
