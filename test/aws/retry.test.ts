/**
 * lib/aws/retry.ts: what is retried (the SDK's own classification, one case per class), within
 * which budget, and against real sockets that reset or hang (the shapes the SDK really produces).
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { isRetryable, isThrottling, isTransient, withRetry, type RetryEnv, type RetryPolicy } from '../../lib/aws/retry';

const nodeError = (code: string, syscall = 'read') => Object.assign(new Error(`${syscall} ${code}`), { code, errno: -1, syscall });
const awsError = (name: string, status?: number, extra: Record<string, unknown> = {}) =>
  Object.assign(new Error(name), { name, $fault: status && status >= 500 ? 'server' : 'client', $metadata: status ? { httpStatusCode: status } : {}, ...extra });

describe('classification (the SDK classifier, @smithy/core/retry)', () => {
  const transient: [string, unknown][] = [
    ['ECONNRESET (stale keep-alive socket after a Lambda freeze)', nodeError('ECONNRESET')],
    ['ECONNREFUSED', nodeError('ECONNREFUSED', 'connect')],
    ['EPIPE', nodeError('EPIPE', 'write')],
    ['ETIMEDOUT', nodeError('ETIMEDOUT', 'connect')],
    ['EAI_AGAIN (DNS)', nodeError('EAI_AGAIN', 'getaddrinfo')],
    ['socket timeout (TimeoutError from the HTTP handler)', Object.assign(new Error('Connection timed out after 2000 ms'), { name: 'TimeoutError' })],
    ['RequestTimeout', awsError('RequestTimeout', 400)],
    ['HTTP 500', awsError('InternalServerError', 500)],
    ['HTTP 502', awsError('BadGateway', 502)],
    ['HTTP 503', awsError('ServiceUnavailable', 503)],
    ['HTTP 504', awsError('GatewayTimeout', 504)],
    ['EC2 InternalError (no status)', { Code: 'InternalError', name: 'InternalError' }],
    ['a network error wrapped as the cause', Object.assign(new Error('request failed'), { cause: nodeError('ECONNRESET') })],
    ['an error the service models as retryable', awsError('SomeModelledRetryable', 400, { $retryable: {} })],
  ];
  test.each(transient)('%s is transient and retried', (_name, e) => {
    expect(isTransient(e)).toBe(true);
    expect(isRetryable(e)).toBe(true);
  });

  const throttling: [string, unknown][] = [
    ['RequestLimitExceeded (EC2 token bucket)', awsError('RequestLimitExceeded', 503)],
    ['EC2ThrottledException', awsError('EC2ThrottledException', 400)],
    ['PriorRequestNotComplete', awsError('PriorRequestNotComplete', 400)],
    ['ThrottlingException (SSM)', awsError('ThrottlingException', 400)],
    ['TooManyUpdates (SSM PutParameter)', awsError('TooManyUpdates', 400)],
    ['SlowDown (S3)', awsError('SlowDown', 503)],
    ['HTTP 429', awsError('TooManyRequests', 429)],
    ['EC2 query-protocol Code', { Code: 'RequestLimitExceeded', name: 'Error' }],
    ['a bare { name } as the launch classifier passes it', { name: 'EC2ThrottledException' }],
  ];
  test.each(throttling)('%s is throttling and retried', (_name, e) => {
    expect(isThrottling(e)).toBe(true);
    expect(isRetryable(e)).toBe(true);
  });

  const final: [string, unknown][] = [
    ['AccessDeniedException', awsError('AccessDeniedException', 400)],
    ['UnauthorizedOperation', awsError('UnauthorizedOperation', 403)],
    ['ParameterNotFound', awsError('ParameterNotFound', 400)],
    ['InvalidParameterValue', awsError('InvalidParameterValue', 400)],
    ['InsufficientInstanceCapacity, though EC2 sends it as a 500 (a capacity answer: cooldowns, not retries)', awsError('InsufficientInstanceCapacity', 500)],
    ['InsufficientAddressCapacity (503)', awsError('InsufficientAddressCapacity', 503)],
    ['ValidationException', awsError('ValidationException', 400)],
    ['AbortError (the caller gave up)', Object.assign(new Error('aborted'), { name: 'AbortError', code: 'ECONNRESET' })],
    ['a programming error', new TypeError('x is not a function')],
    ['a thrown string', 'boom'],
    ['undefined', undefined],
  ];
  test.each(final)('%s is not retried', (_name, e) => {
    expect(isRetryable(e)).toBe(false);
  });
});

describe('withRetry budget', () => {
  const policy: RetryPolicy = { maxAttempts: 4, baseMs: 100, capMs: 1000, maxTotalWaitMs: 2000 };
  const env = (): RetryEnv & { waits: number[] } => {
    const waits: number[] = [];
    return { waits, sleep: async (ms) => void waits.push(ms), random: () => 0.999 };
  };

  test.each(['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT'])('%s: retried until it succeeds', async (code) => {
    let calls = 0;
    const e = env();
    const out = await withRetry(async () => (++calls < 3 ? Promise.reject(nodeError(code)) : 'ok'), { policy, env: e });
    expect(out).toBe('ok');
    expect(calls).toBe(3);
    expect(e.waits).toHaveLength(2);
  });

  test('a failure that never ends costs maxAttempts calls and at most maxTotalWaitMs of waiting', async () => {
    let calls = 0;
    const e = env();
    await expect(withRetry(async () => Promise.reject(awsError('EC2ThrottledException', 400, { calls: ++calls })), { policy, env: e })).rejects.toMatchObject({ name: 'EC2ThrottledException' });
    expect(calls).toBe(policy.maxAttempts);
    expect(e.waits.reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(policy.maxTotalWaitMs);
  });

  test('a final error is thrown at once', async () => {
    let calls = 0;
    await expect(withRetry(async () => Promise.reject(awsError('AccessDeniedException', 400, { n: ++calls })), { policy, env: env() })).rejects.toMatchObject({ name: 'AccessDeniedException' });
    expect(calls).toBe(1);
  });
});

/**
 * Real sockets, in a child process: under Jest, errors raised by Node's own net/http code come from
 * another realm (not \`instanceof Error\` in the test's VM), so the SDK wraps them and drops their code.
 * Lambda runs plain Node, so the probe does too (test/aws/retry-sockets.ts).
 */
describe('against real sockets (the errors the SDK client really raises, in plain Node)', () => {
  let results: Record<string, { ok: boolean; attempts: number; code?: string; name?: string; retryable?: boolean }>;
  beforeAll(() => {
    const out = execFileSync(process.execPath, ['--import', 'tsx', join(__dirname, 'retry-sockets.ts')], {
      env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
      timeout: 20_000,
      encoding: 'utf8',
    });
    results = JSON.parse(out.trim().split('\n').pop()!);
  }, 25_000);

  test('the first error of a connection reset by the server is ECONNRESET and classified retryable', () => {
    expect(results.resetFirst).toMatchObject({ ok: false, code: 'ECONNRESET', retryable: true });
  });
  test('a reset (ECONNRESET) is retried and the second attempt answers', () => {
    expect(results.reset).toMatchObject({ ok: true, attempts: 2 });
  });
  test('a server that never answers (socket timeout) is retried and the third attempt answers', () => {
    expect(results.hang).toMatchObject({ ok: true, attempts: 3 });
  });
  test('a closed port (ECONNREFUSED) is retried, then given up after maxAttempts', () => {
    expect(results.refused).toMatchObject({ ok: false, code: 'ECONNREFUSED', attempts: 4 });
  });
});
