/**
 * POST /webhook: GitLab Job Hook -> SQS. Thin: the decision is lib/webhook/job-hook.ts.
 * Imports only the SSM and SQS clients (never EC2: cold start; test/deploy/package.test.ts checks the bundle).
 */
import middy from '@middy/core';
import { GetParameterCommand, type SSMClient } from '@aws-sdk/client-ssm';
import { SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { withRetry, type RetryPolicy } from '../lib/aws/retry';
import { decideDelivery, encodeQueueMessage } from '../lib/webhook/job-hook';
import { correlate, httpErrors, jsonResponse, type HttpResponse, type LoggedContext } from '../lib/lambda/middleware';
import { sqsClient } from '../lib/lambda/clients';
import { ssmClient } from '../lib/aws/ssm-client';
import { cached, webhookEnv, type WebhookEnv } from '../lib/lambda/env';
import { registerSecret } from '../lib/lambda/logger';

/**
 * The secret read is retried on throttling (the SSM client's own retry is off: lib/aws/clients.ts),
 * within a budget that keeps the answer far inside GitLab's 10 s: 3 attempts, at most 1.5 s waiting.
 * It happens once per container per WEBHOOK_SECRET_CACHE_SECONDS, not per delivery.
 */
const SECRET_READ_POLICY: RetryPolicy = { maxAttempts: 3, baseMs: 100, capMs: 1000, maxTotalWaitMs: 1500 };

let env: WebhookEnv | undefined;
let ssm: SSMClient | undefined;
let sqs: SQSClient | undefined;
let secret: ReturnType<typeof cached<string>> | undefined;

function setup() {
  if (!env) {
    env = webhookEnv();
    ssm = ssmClient(); // lib/aws/ssm-client.ts, not clients.ts: that one brings the EC2 client along
    sqs = sqsClient();
    const e = env;
    const client = ssm;
    secret = cached(async () => {
      const out = await withRetry(() => client.send(new GetParameterCommand({ Name: e.webhookSecretParameter, WithDecryption: true })), { policy: SECRET_READ_POLICY });
      const value = out.Parameter?.Value;
      if (!value) throw new Error(`SSM parameter ${e.webhookSecretParameter} is empty`);
      registerSecret(value); // the real secret, loaded by us: masked wherever it might appear
      return value;
    }, env.secretCacheSeconds * 1000);
  }
  return { env, sqs: sqs!, secret: secret! };
}

/** For tests: forget clients, env and the cached secret. */
export function resetForTests(): void {
  env = undefined;
  ssm = undefined;
  sqs = undefined;
  secret = undefined;
}

async function receive(event: APIGatewayProxyEventV2, context: LoggedContext): Promise<HttpResponse> {
  const { env, sqs, secret } = setup();
  // The presented X-Gitlab-Token is never registered as a secret (a caller would control the
  // redaction list) and never logged: no line here carries the headers, and the logger masks the
  // header by name (lib/lambda/logger.ts).
  const decision = decideDelivery(
    { headers: event.headers ?? {}, body: event.body, isBase64Encoded: event.isBase64Encoded },
    { secret: await secret.get(), now: Date.now(), maxBodyBytes: env.maxBodyBytes },
  );
  const log = context.log;
  if (decision.kind === 'reject') {
    log.warn('webhook rejected', { status: decision.status, reason: decision.reason, sourceIp: event.requestContext?.http?.sourceIp });
    return jsonResponse(decision.status, { error: decision.reason, correlationId: context.correlationId }, context.correlationId);
  }
  if (decision.kind === 'ignore') {
    log.info('webhook ignored', { reason: decision.reason });
    return jsonResponse(decision.status, { ignored: decision.reason }, context.correlationId);
  }
  const out = await sqs.send(
    new SendMessageCommand({
      QueueUrl: env.queueUrl,
      MessageBody: encodeQueueMessage({ v: 1, type: 'job', event: decision.event }),
      MessageAttributes: {
        dedupKey: { DataType: 'String', StringValue: decision.dedupKey },
        correlationId: { DataType: 'String', StringValue: context.correlationId },
      },
    }),
  );
  log.info('job event queued', { jobId: decision.event.jobId, projectId: decision.event.projectId, status: decision.event.status, dedupKey: decision.dedupKey, messageId: out.MessageId });
  return jsonResponse(decision.status, { queued: decision.reason, messageId: out.MessageId }, context.correlationId);
}

export const handler = middy<APIGatewayProxyEventV2, HttpResponse, Error, LoggedContext>(receive)
  .use(
    correlate<APIGatewayProxyEventV2, HttpResponse>({
      fields: { service: 'gitlab-spot-autoscaler', function: 'webhook' },
      summarize: (r) => ({ statusCode: r?.statusCode }),
    }),
  )
  .use(httpErrors<APIGatewayProxyEventV2>());
