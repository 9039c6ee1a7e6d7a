/**
 * The SQS client of the handlers. EC2 and SSM clients come from lib/aws/clients.ts and
 * lib/aws/ssm-client.ts (SDK retries off, because every EC2/SSM call is wrapped in
 * lib/aws/retry.ts's bounded retry).
 *
 * SQS is different: its calls are NOT wrapped in retry.ts, so the SDK's retry is the one and only
 * retry layer for them. maxAttempts 3 (the SDK's standard mode: exponential backoff with full
 * jitter from 100 ms, plus its client-side retry quota) gives one send at most 3 attempts and well
 * under a second of waiting, and does not multiply with any other layer. (The webhook uses no SDK
 * client: lib/aws/webhook-aws.ts gives its SendMessage the same 3 attempts through retry.ts.)
 * Endpoint overrides (moto) come from the SDK's standard AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_SQS.
 *
 * Timeouts (lib/aws/ssm-client.ts explains why): a send normally takes tens of milliseconds, so a
 * connection within 1 s and an answer within 1.5 s; the SDK retries the TimeoutError like any
 * transient error. Three timed-out attempts stay under 5 s, inside GitLab's 10 s.
 */
import { SQSClient } from '@aws-sdk/client-sqs';

export const SQS_MAX_ATTEMPTS = 3;
export const SQS_TIMEOUTS = { connectTimeoutMs: 1000, requestTimeoutMs: 1500 };

export function sqsClient(opts: { region?: string; endpoint?: string; requestTimeoutMs?: number } = {}): SQSClient {
  return new SQSClient({
    maxAttempts: SQS_MAX_ATTEMPTS,
    requestHandler: { connectionTimeout: SQS_TIMEOUTS.connectTimeoutMs, requestTimeout: opts.requestTimeoutMs ?? SQS_TIMEOUTS.requestTimeoutMs, throwOnRequestTimeout: true },
    ...(opts.region ? { region: opts.region } : {}),
    ...(opts.endpoint ? { endpoint: opts.endpoint } : {}),
  });
}
