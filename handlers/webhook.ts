/**
 * POST /webhook: GitLab Job Hook -> SQS. Thin: the decision is lib/webhook/job-hook.ts.
 * Imports only the SSM and SQS clients (never EC2: cold start; test/deploy/bundle.test.ts checks).
 */
import middy from '@middy/core';
import { SSMClient, GetParameterCommand } from '@aws-sdk/client-ssm';
import { SQSClient, SendMessageCommand } from '@aws-sdk/client-sqs';
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { decideDelivery, encodeQueueMessage } from '../lib/webhook/job-hook';
import { correlate, httpErrors, jsonResponse, type HttpResponse, type LoggedContext } from '../lib/lambda/middleware';
import { cached, webhookEnv, type WebhookEnv } from '../lib/lambda/env';
import { registerSecret } from '../lib/lambda/logger';

let env: WebhookEnv | undefined;
let ssm: SSMClient | undefined;
let sqs: SQSClient | undefined;
let secret: ReturnType<typeof cached<string>> | undefined;

function setup() {
  if (!env) {
    env = webhookEnv();
    ssm = new SSMClient({});
    sqs = new SQSClient({});
    const e = env;
    secret = cached(async () => {
      const out = await ssm!.send(new GetParameterCommand({ Name: e.webhookSecretParameter, WithDecryption: true }));
      const value = out.Parameter?.Value;
      if (!value) throw new Error(`SSM parameter ${e.webhookSecretParameter} is empty`);
      registerSecret(value);
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
  const presented = Object.entries(event.headers ?? {}).find(([k]) => k.toLowerCase() === 'x-gitlab-token')?.[1];
  registerSecret(presented); // whatever the caller sent is never logged, right or wrong
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

export const handler = middy(receive as any)
  .use(
    correlate({
      fields: { service: 'gitlab-spot-autoscaler', function: 'webhook' },
      summarize: (r) => ({ statusCode: (r as HttpResponse | undefined)?.statusCode }),
    }),
  )
  .use(httpErrors());
