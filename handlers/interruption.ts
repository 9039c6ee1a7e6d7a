/**
 * EventBridge (aws.ec2): Spot Instance Interruption Warning, Rebalance Recommendation, Instance
 * State-change Notification. The events carry no tags and the rules see every instance of the
 * account, so ownership is checked before anything is done:
 *  - interruption / rebalance: markInterrupted (lib/controller/reconcile.ts) -> Ec2Fleet.markInstance
 *    looks the instance up ONCE, checks the deployment and stage tags, and tags it; its outcome
 *    ('tagged' | 'not-ours' | 'gone') and `wakeReconcile` decide what happens here. No second lookup.
 *  - state-change: markInterrupted makes no EC2 call for it, so this handler looks the instance up
 *    (one DescribeInstances with the deployment/stage tag filters): otherwise every instance that
 *    stops anywhere in the account would wake the reconcile function.
 * When capacity may need replacing, a reconcile message is queued, so the single writer replaces it
 * at once instead of at the next minute.
 */
import middy from '@middy/core';
import { DescribeInstancesCommand, type EC2Client } from '@aws-sdk/client-ec2';
import type { SSMClient } from '@aws-sdk/client-ssm';
import { SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { EventBridgeEvent } from 'aws-lambda';
import { ec2Client, ssmClient } from '../lib/aws/clients';
import { Ec2Fleet } from '../lib/aws/ec2-fleet';
import { errorCode, withRetry } from '../lib/aws/retry';
import { markInterrupted, type InterruptionNotice } from '../lib/controller/reconcile';
import { TAGS } from '../lib/controller/tags';
import { controllerEnv, type ControllerEnv } from '../lib/lambda/env';
import { correlate, type LoggedContext } from '../lib/lambda/middleware';
import { sqsClient } from '../lib/lambda/clients';
import { interruptionLine, stdoutSink, type MetricsSink } from '../lib/lambda/metrics';
import { loadConfig } from '../lib/lambda/runtime';
import { encodeQueueMessage } from '../lib/webhook/job-hook';

const KINDS: Record<string, InterruptionNotice['kind']> = {
  'EC2 Spot Instance Interruption Warning': 'interruption',
  'EC2 Instance Rebalance Recommendation': 'rebalance',
  'EC2 Instance State-change Notification': 'state-change',
};

let clients: { env: ControllerEnv; ec2: EC2Client; ssm: SSMClient; sqs: SQSClient } | undefined;
let metricsSink: MetricsSink = stdoutSink;

function setup() {
  // EC2/SSM: SDK retries off, bounded retries in lib/aws/retry.ts; SQS: lib/lambda/clients.ts.
  if (!clients) clients = { env: controllerEnv(), ec2: ec2Client(), ssm: ssmClient(), sqs: sqsClient() };
  return clients;
}

/** For tests. */
export function resetForTests(sink: MetricsSink = stdoutSink): void {
  clients = undefined;
  metricsSink = sink;
}

export type Ec2Event = EventBridgeEvent<string, { 'instance-id'?: string; state?: string; 'instance-action'?: string } | undefined>;

export interface InterruptionResult {
  instanceId?: string;
  action: string;
  queued: boolean;
  reason: string;
}

/**
 * Whether a stopped/terminated instance was one of this deployment's and stage's workers (state-change
 * events only). Terminated instances stay visible to DescribeInstances for about an hour.
 */
async function isOwnWorker(ec2: EC2Client, instanceId: string, deployment: string, stage: string): Promise<boolean> {
  try {
    const out = await withRetry(() =>
      ec2.send(
        new DescribeInstancesCommand({
          InstanceIds: [instanceId],
          Filters: [
            { Name: `tag:${TAGS.deployment}`, Values: [deployment] },
            { Name: `tag:${TAGS.stage}`, Values: [stage] },
          ],
        }),
      ),
    );
    return (out.Reservations ?? []).some((r) => (r.Instances ?? []).length > 0);
  } catch (e) {
    if (errorCode(e).startsWith('InvalidInstanceID')) return false;
    throw e;
  }
}

async function handle(event: Ec2Event, context: LoggedContext): Promise<InterruptionResult> {
  const { env, ec2, ssm, sqs } = setup();
  const log = context.log;
  const kind = KINDS[event['detail-type']];
  const instanceId = event.detail?.['instance-id'];
  // Never throw for an event we do not handle: EventBridge would retry it for nothing.
  if (!kind || !instanceId) {
    log.warn('event ignored', { detailType: event['detail-type'], reason: !kind ? 'not an EC2 event this function handles' : 'no detail.instance-id' });
    return { instanceId, action: 'ignored', queued: false, reason: 'not an event this function handles' };
  }
  const config = await loadConfig(env, ssm);
  if (kind === 'state-change' && !(await isOwnWorker(ec2, instanceId, config.deployment, env.stage))) {
    log.info('event ignored', { instanceId, kind, reason: 'not a worker of this deployment and stage' });
    return { instanceId, action: 'not-ours', queued: false, reason: 'not a worker of this deployment and stage' };
  }
  const fleet = new Ec2Fleet({ ec2, config, stage: env.stage, log });
  const outcome = await markInterrupted({ fleet, clock: { now: () => Date.now() }, log }, { instanceId, kind, state: event.detail?.state });
  // Counted only for our own workers: 'tagged' (markInstance checked the tags) or an own state change;
  // The rule delivers only terminated and stopped (lib/deploy/stack.ts): a worker's end is counted once, at terminated.
  if (outcome.action === 'tagged' || (kind === 'state-change' && event.detail?.state === 'terminated')) metricsSink(interruptionLine(config.deployment, env.stage, kind));
  let queued = false;
  if (outcome.wakeReconcile) {
    if (!env.queueUrl) throw new Error('QUEUE_URL is not set: cannot wake the reconcile function');
    await sqs.send(
      new SendMessageCommand({
        QueueUrl: env.queueUrl,
        MessageBody: encodeQueueMessage({ v: 1, type: 'interruption', instanceId, detailType: event['detail-type'], at: Date.now() }),
        MessageAttributes: { correlationId: { DataType: 'String', StringValue: context.correlationId } },
      }),
    );
    queued = true;
  }
  log.info('interruption handled', { instanceId, kind, state: event.detail?.state, action: outcome.action, queued, reason: outcome.reason });
  return { instanceId, action: outcome.action, queued, reason: outcome.reason };
}

export const handler = middy<Ec2Event, InterruptionResult, Error, LoggedContext>(handle).use(
  correlate<Ec2Event, InterruptionResult>({ fields: { service: 'gitlab-spot-autoscaler', function: 'interruption' }, summarize: (r) => ({ action: r?.action }) }),
);
