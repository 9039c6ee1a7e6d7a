/**
 * Client settings shared by every AWS SDK client of the project, and the SSM client.
 *
 * Retries are counted in one place (retry.ts), so the SDK's own retry is switched off: the SDK
 * default (3 attempts) under the adapters' 4 would make 12 attempts of a throttled call. Endpoint
 * overrides (moto, LocalStack) come from the SDK's standard AWS_ENDPOINT_URL /
 * AWS_ENDPOINT_URL_SSM variables or `endpoint`.
 *
 * Timeouts: the SDK's HTTP handler has none by default, so a half-open connection (a kept-alive
 * socket that died while the Lambda was frozen, a stalled endpoint) would hold a call until the
 * Lambda's own timeout, where nothing can be retried. With a connect and a request timeout the
 * call fails with a TimeoutError instead, which retry.ts retries within its budget.
 * `throwOnRequestTimeout` is needed: without it the handler only logs a warning when the request
 * timeout passes (@smithy/types NodeHttpHandlerOptions).
 *
 * A module of its own so that code needing only SSM does not bundle the EC2 client: esbuild
 * cannot drop an unused import from the SDK's CommonJS build. (The webhook uses no SDK client at
 * all: lib/aws/webhook-aws.ts.)
 */
import { SSMClient } from '@aws-sdk/client-ssm';

export interface ClientOptions {
  region?: string;
  endpoint?: string;
  /** Milliseconds to establish a connection; default CONTROLLER_TIMEOUTS. */
  connectTimeoutMs?: number;
  /** Milliseconds a request and its response may take; default CONTROLLER_TIMEOUTS. */
  requestTimeoutMs?: number;
}

/**
 * The controller's calls: a connection within 3 s (same region), an answer within 15 s. The
 * slowest call is an instant CreateFleet (synchronous launch, usually a few seconds); a retried
 * CreateFleet carries the same ClientToken, so a timeout never launches twice.
 */
export const CONTROLLER_TIMEOUTS = { connectTimeoutMs: 3000, requestTimeoutMs: 15_000 };

export function clientSettings(opts: ClientOptions) {
  return {
    maxAttempts: 1,
    requestHandler: {
      connectionTimeout: opts.connectTimeoutMs ?? CONTROLLER_TIMEOUTS.connectTimeoutMs,
      requestTimeout: opts.requestTimeoutMs ?? CONTROLLER_TIMEOUTS.requestTimeoutMs,
      throwOnRequestTimeout: true,
    },
    ...(opts.region ? { region: opts.region } : {}),
    ...(opts.endpoint ? { endpoint: opts.endpoint } : {}),
  };
}

export function ssmClient(opts: ClientOptions = {}): SSMClient {
  return new SSMClient(clientSettings(opts));
}
