/**
 * Bounded retries with exponential backoff and full jitter, for AWS throttling.
 *
 * EC2 answers a drained token bucket with RequestLimitExceeded and SSM with ThrottlingException /
 * TooManyUpdates (facts.md). Retrying at once only drains the bucket further; the seed's
 * docker+machine setup retried failed creations about 60 times and got the account locked out
 * (gitlab-runner #2771). So every retry here waits (AWS's "exponential backoff and jitter"), and
 * the number of attempts and the total wait are capped: after that the caller gets the error and
 * decides (the reconcile pass backs the pool off and tries again in a later pass).
 *
 * SDK clients used with these helpers should be built with `maxAttempts: 1` (see clients.ts), so
 * the retry budget is counted in one place. What counts as retryable is the SDK's own judgement
 * (@smithy/core/retry, the classifier of the SDK's standard retry strategy), so that network
 * errors and every throttling code the SDK knows are retried here exactly as the SDK would.
 */
import { isServerError, isThrottlingError, isTransientError } from '@smithy/core/retry';

export interface RetryPolicy {
  /** Attempts in all, the first included. */
  maxAttempts: number;
  baseMs: number;
  capMs: number;
  /** Total time spent waiting, at most. */
  maxTotalWaitMs: number;
}

export const THROTTLE_POLICY: RetryPolicy = { maxAttempts: 4, baseMs: 200, capMs: 5000, maxTotalWaitMs: 10_000 };

export interface RetryEnv {
  sleep(ms: number): Promise<void>;
  random(): number;
}

export const realRetryEnv: RetryEnv = {
  sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
  random: Math.random,
};

/**
 * Codes the SDK's own classifier does not list but these services send for "slow down": SSM's
 * PutParameter answers TooManyUpdates (facts.md); the rest are older spellings kept for safety.
 */
const EXTRA_THROTTLING_CODES = new Set(['TooManyUpdates', 'RequestThrottled', 'ThrottledException']);

/**
 * EC2 sends "no capacity" answers as server errors (5xx: EC2 API reference, "Error codes"), which
 * the SDK would call transient. Another try a second later asks the same pools again: the caller
 * (the launch classifier in ec2-fleet.ts) cools those pools down and tries others instead.
 */
const CAPACITY_CODES = new Set([
  'InsufficientInstanceCapacity',
  'InsufficientCapacity',
  'InsufficientHostCapacity',
  'InsufficientReservedInstanceCapacity',
  'InsufficientAddressCapacity',
  'InsufficientFreeAddressesInSubnet',
  'MaxSpotInstanceCountExceeded',
  'UnfulfillableCapacity',
]);

/** Server-side failures named by code (EC2's query protocol sends some with no 5xx status in tests and mocks). */
const EXTRA_TRANSIENT_CODES = new Set(['InternalError', 'InternalFailure', 'InternalServerError', 'ServiceUnavailable', 'Unavailable']);

/** The AWS error code of an SDK v3 exception (name, or Code for EC2's query protocol). */
export function errorCode(e: unknown): string {
  if (e && typeof e === 'object') {
    const o = e as { name?: unknown; Code?: unknown; code?: unknown };
    if (typeof o.Code === 'string') return o.Code;
    if (typeof o.name === 'string' && o.name !== 'Error') return o.name;
    if (typeof o.code === 'string') return o.code;
  }
  return 'Unknown';
}

type SdkError = Parameters<typeof isTransientError>[0];

/** The SDK's classifiers read `name`, `code`, `$metadata`, `$retryable` and `cause`: only objects qualify. */
const sdkError = (e: unknown): SdkError | undefined => (e && typeof e === 'object' ? (e as SdkError) : undefined);

/**
 * Throttling, as the AWS SDK itself decides it (`isThrottlingError` of @smithy/core/retry, the
 * classifier behind the SDK's standard retry: RequestLimitExceeded, EC2ThrottledException,
 * PriorRequestNotComplete, ThrottlingException, SlowDown, HTTP 429, modelled `$retryable.throttling`),
 * plus SSM's TooManyUpdates. The error's code also counts when it is not its `name` (EC2 `Code`).
 */
export function isThrottling(e: unknown): boolean {
  const err = sdkError(e);
  if (!err) return false;
  const code = errorCode(e);
  return isThrottlingError(err) || isThrottlingError({ ...err, name: code } as SdkError) || EXTRA_THROTTLING_CODES.has(code);
}

/**
 * Transient failures worth one more bounded try, as the SDK decides them (`isTransientError`,
 * `isServerError`): dropped or refused connections (ECONNRESET, ECONNREFUSED, EPIPE, ETIMEDOUT:
 * after a Lambda freeze, kept-alive sockets are often dead), DNS hiccups (EAI_AGAIN, ENOTFOUND),
 * socket and request timeouts (TimeoutError, RequestTimeout), HTTP 5xx, clock skew the SDK
 * corrected, and errors modelled as retryable; anywhere in the `cause` chain. AbortError is not.
 */
export function isTransient(e: unknown): boolean {
  const err = sdkError(e);
  if (!err) return false;
  const code = errorCode(e);
  if (CAPACITY_CODES.has(code)) return false;
  return isTransientError(err) || isServerError(err) || EXTRA_TRANSIENT_CODES.has(code);
}

/** Whether `withRetry` retries this error by default: throttling or transient. */
export function isRetryable(e: unknown): boolean {
  return isThrottling(e) || isTransient(e);
}

/** "Full jitter": a random wait in [0, min(cap, base * 2^attempt)). */
export function backoffDelay(policy: RetryPolicy, attempt: number, random: () => number): number {
  return Math.floor(random() * Math.min(policy.capMs, policy.baseMs * 2 ** attempt));
}

export interface RetryStats {
  attempts: number;
  waitedMs: number;
}

/**
 * Runs `fn`, retrying while `retryable(error)` holds, within the policy's bounds. `stats`, when
 * given, accumulates the attempts and the wait (benchmarks and tests read it).
 */
export async function withRetry<T>(
  fn: () => Promise<T>,
  opts: { policy?: RetryPolicy; env?: RetryEnv; retryable?: (e: unknown) => boolean; stats?: RetryStats } = {},
): Promise<T> {
  const policy = opts.policy ?? THROTTLE_POLICY;
  const env = opts.env ?? realRetryEnv;
  const retryable = opts.retryable ?? isRetryable;
  let waited = 0;
  for (let attempt = 0; ; attempt++) {
    try {
      if (opts.stats) opts.stats.attempts++;
      return await fn();
    } catch (e) {
      if (!retryable(e) || attempt + 1 >= policy.maxAttempts) throw e;
      const delay = Math.min(backoffDelay(policy, attempt, env.random), policy.maxTotalWaitMs - waited);
      if (delay < 0) throw e;
      waited += delay;
      if (opts.stats) opts.stats.waitedMs += delay;
      await env.sleep(delay);
    }
  }
}

/**
 * Backoff stored across passes (quota errors, throttling that outlived the in-call budget):
 * base * 2^(failures-1), capped. Deterministic: the pass interval already spreads the retries.
 */
export function storedBackoffMs(baseMs: number, capMs: number, failures: number): number {
  return Math.min(capMs, baseMs * 2 ** Math.max(0, Math.min(30, failures - 1)));
}
