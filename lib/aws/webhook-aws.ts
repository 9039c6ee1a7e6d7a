/**
 * The webhook Lambda's two AWS calls, behind one small interface: read the webhook secret (SSM
 * GetParameter, decrypted) and queue a job event (SQS SendMessage). Built on aws-json.ts rather than
 * the v3 clients so that the webhook bundle loads faster than a bare Node start (aws-json.ts says why;
 * docs/architecture.md, "Webhook"). The controller Lambdas keep the v3 clients.
 *
 * Behaviour the handler relies on, as it had with the SDK clients:
 * - bounded retries with backoff and full jitter on throttling, 5xx, timeouts and network errors
 *   (retry.ts: the SDK's own classifiers), within budgets that keep the answer far inside GitLab's
 *   10 s: the secret read 3 attempts of at most 1.5 s each and at most 1.5 s waiting; SendMessage
 *   3 attempts of at most 1.5 s each (the SDK standard mode's 3 attempts, backoff from 100 ms), so
 *   three timed-out attempts stay under 6 s.
 * - errors that a retry cannot cure because the function's configuration is wrong (the parameter
 *   or queue does not exist, the role may not read or send, the KMS key is unusable, credentials are
 *   refused) become a MisconfigurationError naming what to fix: the webhook answers 500. Everything
 *   else that remains after the retries (SSM or SQS unreachable, throttled, failing) is rethrown as
 *   is: the webhook answers 503.
 * - no secret in an error: aws-json.ts never puts a request or a successful answer into one.
 */
import { createHash } from 'node:crypto';
import { withRetry, type RetryEnv, type RetryPolicy, type RetryStats } from './retry';
import { envAwsJsonSend, SQS, SSM, type AwsJsonSend, type Timeouts } from './aws-json';
import { MisconfigurationError } from '../lambda/middleware';

export interface WebhookAws {
  /** The decrypted value of a SecureString parameter ('' when it has none). */
  readSecret(name: string): Promise<string>;
  /** Sends one message with string attributes; resolves with SQS's message id. */
  queueMessage(queueUrl: string, body: string, attributes: Record<string, string>): Promise<{ messageId?: string }>;
}

export const SECRET_READ_POLICY: RetryPolicy = { maxAttempts: 3, baseMs: 100, capMs: 1000, maxTotalWaitMs: 1500 };
export const SECRET_READ_TIMEOUTS: Timeouts = { connectTimeoutMs: 1000, requestTimeoutMs: 1500 };
/** The SDK standard retry mode's budget for SQS (lib/lambda/clients.ts SQS_MAX_ATTEMPTS): 3 attempts, full jitter from 100 ms. */
export const SEND_POLICY: RetryPolicy = { maxAttempts: 3, baseMs: 100, capMs: 1000, maxTotalWaitMs: 1000 };
export const SEND_TIMEOUTS: Timeouts = { connectTimeoutMs: 1000, requestTimeoutMs: 1500 };

/**
 * AWS error codes that mean the function's own configuration is wrong (SSM and SQS API references,
 * "Errors", and the common errors of both): retrying cannot help and nothing passes by itself.
 */
const CONFIGURATION_CODES = new Set([
  // SSM GetParameter
  'ParameterNotFound',
  'ParameterVersionNotFound',
  'InvalidKeyId',
  // SQS SendMessage (JSON protocol codes; the old query names in x-amzn-query-error are not needed)
  'QueueDoesNotExist',
  'InvalidAddress',
  'InvalidSecurity',
  'KmsAccessDenied',
  'KmsDisabled',
  'KmsInvalidKeyUsage',
  'KmsInvalidState',
  'KmsNotFound',
  // Either: the role or its credentials
  'AccessDeniedException',
  'AccessDenied',
  'UnrecognizedClientException',
  'InvalidClientTokenId',
  'IncompleteSignature',
  'MissingAuthenticationToken',
]);

/** A configuration error as a MisconfigurationError that says what was refused and where to look; anything else unchanged. */
export function classifyAwsError(e: unknown, what: string, fix: string): unknown {
  const o = e as { name?: unknown; message?: unknown; $metadata?: { httpStatusCode?: unknown } } | null;
  const status = o?.$metadata?.httpStatusCode;
  if (typeof o?.name === 'string' && CONFIGURATION_CODES.has(o.name) && typeof status === 'number' && status >= 400 && status < 500) {
    const err = new MisconfigurationError(`${what} was refused with ${o.name} (${String(o.message ?? '').slice(0, 300)}): ${fix}`);
    (err as { cause?: unknown }).cause = e;
    return err;
  }
  return e;
}

export interface WebhookAwsOptions {
  /** The transport; default envAwsJsonSend() (credentials, region and endpoints from process.env). */
  send?: AwsJsonSend;
  retryEnv?: RetryEnv;
  /** Accumulates attempts and waits of every call (tests, benchmarks). */
  stats?: RetryStats;
}

export function webhookAws(opts: WebhookAwsOptions = {}): WebhookAws {
  const send = opts.send ?? envAwsJsonSend();
  const retry = { ...(opts.retryEnv ? { env: opts.retryEnv } : {}), ...(opts.stats ? { stats: opts.stats } : {}) };
  return {
    async readSecret(name) {
      try {
        const out = await withRetry(() => send({ service: SSM, operation: 'GetParameter', input: { Name: name, WithDecryption: true }, timeouts: SECRET_READ_TIMEOUTS }), { policy: SECRET_READ_POLICY, ...retry });
        const parameter = out.Parameter as { Value?: unknown } | undefined;
        return typeof parameter?.Value === 'string' ? parameter.Value : '';
      } catch (e) {
        throw classifyAwsError(e, `SSM GetParameter of ${name}`, 'check that the parameter exists in this region, that the function role may ssm:GetParameter it and kms:Decrypt with its key');
      }
    },
    async queueMessage(queueUrl, body, attributes) {
      const MessageAttributes = Object.fromEntries(Object.entries(attributes).map(([k, v]) => [k, { DataType: 'String', StringValue: v }]));
      // The queue URL's origin is the endpoint unless one is configured, as the SDK's SQS client does.
      let origin: string | undefined;
      try {
        origin = new URL(queueUrl).origin;
      } catch {
        throw new MisconfigurationError(`QUEUE_URL ${JSON.stringify(queueUrl.slice(0, 200))} is not a URL`);
      }
      try {
        const out = await withRetry(() => send({ service: SQS, operation: 'SendMessage', input: { QueueUrl: queueUrl, MessageBody: body, MessageAttributes }, defaultEndpoint: origin, timeouts: SEND_TIMEOUTS }), {
          policy: SEND_POLICY,
          ...retry,
        });
        // SQS's digest of the body it stored, checked as the SDK's SQS client checks it: a mismatch is
        // not retried (the message may be queued, garbled); the webhook answers 503.
        const md5 = createHash('md5').update(body, 'utf8').digest('hex');
        if (out.MD5OfMessageBody !== md5) throw new Error(`SQS SendMessage to ${queueUrl}: MD5OfMessageBody ${JSON.stringify(String(out.MD5OfMessageBody).slice(0, 40))} is not the body's ${md5} (InvalidChecksumError)`);
        return { messageId: typeof out.MessageId === 'string' ? out.MessageId : undefined };
      } catch (e) {
        throw classifyAwsError(e, `SQS SendMessage to ${queueUrl}`, 'check QUEUE_URL and that the function role may sqs:SendMessage to it (and use its KMS key)');
      }
    },
  };
}
