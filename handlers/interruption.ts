/**
 * EventBridge (aws.ec2): Spot Instance Interruption Warning, Rebalance Recommendation, Instance
 * State-change Notification. The events carry no tags, and the rules see every instance of the
 * account, so the instance is looked up first: only this deployment's and stage's workers are
 * marked (lib/controller/reconcile.ts markInterrupted: EC2 tags only) and a reconcile message is
 * queued, so the single writer replaces the capacity at once instead of at the next minute.
 */
import middy from '@middy/core';
import { EC2Client, DescribeInstancesCommand } from '@aws-sdk/client-ec2';
import { SSMClient } from '@aws-sdk/client-ssm';
import { SQSClient, SendMessageCommand } from '@aws-sdk/client-sqs';
import type { EventBridgeEvent } from 'aws-lambda';
import { Ec2Fleet } from '../lib/aws/ec2-fleet';
import { markInterrupted, type InterruptionNotice } from '../lib/controller/reconcile';
import { TAGS } from '../lib/controller/tags';
import { controllerEnv, type ControllerEnv } from '../lib/lambda/env';
import { correlate, type LoggedContext } from '../lib/lambda/middleware';
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
  if (!clients) clients = { env: controllerEnv(), ec2: new EC2Client({}), ssm: new SSMClient({}), sqs: new SQSClient({}) };
  return clients;
}

/** For tests. */
export function resetForTests(sink: MetricsSink = stdoutSink): void {
  clients = undefined;
  metricsSink = sink;
}

type Ec2Event = EventBridgeEvent<string, { 'instance-id'?: string; state?: string; 'instance-action'?: string }>;

export interface InterruptionResult {
  instanceId?: string;
  action: string;
  queued: boolean;
  reason: string;
}

/** The pool of the instance when it is one of ours (tags), else undefined. Terminated instances stay visible for about an hour. */
async function ownPool(ec2: EC2Client, instanceId: string, deployment: string, stage: string): Promise<string | undefined> {
  try {
    const out = await ec2.send(
      new DescribeInstancesCommand({
        InstanceIds: [instanceId],
        Filters: [
          { Name: `tag:${TAGS.deployment}`, Values: [deployment] },
          { Name: `tag:${TAGS.stage}`, Values: [stage] },
        ],
      }),
    );
    const inst = out.Reservations?.[0]?.Instances?.[0];
    return inst ? (inst.Tags?.find((t) => t.Key === TAGS.pool)?.Value ?? '') : undefined;
  } catch (e) {
    if (String((e as { name?: string }).name ?? '').startsWith('InvalidInstanceID')) return undefined;
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
  const pool = await ownPool(ec2, instanceId, config.deployment, env.stage);
  if (pool === undefined) {
    log.info('event ignored', { instanceId, kind, reason: 'not a worker of this deployment and stage' });
    return { instanceId, action: 'not-ours', queued: false, reason: 'not a worker of this deployment and stage' };
  }
  const fleet = new Ec2Fleet({ ec2, config, stage: env.stage, log });
  const outcome = await markInterrupted({ fleet, clock: { now: () => Date.now() }, log }, { instanceId, kind, state: event.detail?.state });
  metricsSink(interruptionLine(config.deployment, env.stage, pool || '(none)', kind));
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
  log.info('interruption handled', { instanceId, pool, kind, state: event.detail?.state, action: outcome.action, queued, reason: outcome.reason });
  return { instanceId, action: outcome.action, queued, reason: outcome.reason };
}

export const handler = middy(handle as any).use(
  correlate({ fields: { service: 'gitlab-spot-autoscaler', function: 'interruption' }, summarize: (r) => ({ action: (r as InterruptionResult | undefined)?.action }) }),
);
