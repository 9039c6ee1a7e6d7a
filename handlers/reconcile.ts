/**
 * The single writer (reserved concurrency 1). Triggers:
 *  - EventBridge Scheduler, every minute (and at autoscaling period boundaries): runs passes back
 *    to back for most of the function's timeout, reading the job-event queue (long polling: an
 *    event starts a pass within about a second) and the worker-report queue itself
 *    (lib/controller/loop.ts; why not an SQS trigger: docs/architecture.md, "Event throughput");
 *  - a manual invoke ({"trigger": "manual"}, e.g. `serverless invoke -f reconcile`): one pass;
 *  - an SQS batch (an event source mapping left from an earlier release, or `serverless invoke
 *    local --path events/sqs-batch.json`): one pass over the batch, partial failures reported.
 * Thin: builds the ports from the environment, runs the loop, logs and emits metrics.
 */
import { createHash } from 'node:crypto';
import middy from '@middy/core';
import type { EC2Client } from '@aws-sdk/client-ec2';
import type { SSMClient } from '@aws-sdk/client-ssm';
import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import type { SQSClient } from '@aws-sdk/client-sqs';
import { ec2Client, ssmClient } from '../lib/aws/clients';
import { Ec2Fleet } from '../lib/aws/ec2-fleet';
import { SsmStateStore } from '../lib/aws/ssm-state-store';
import { SqsInbox } from '../lib/aws/sqs-inbox';
import { SsmOperatorHolds } from '../lib/aws/operator-holds';
import { parameterNames, type Config } from '../lib/config';
import { reconcilePass, type PassInput, type PassReport } from '../lib/controller/reconcile';
import { CADENCE, decodeEvents, runLoop, type LoopOptions, type LoopReport } from '../lib/controller/loop';
import { ReportMemory } from '../lib/controller/reports';
import { ForecastMemory } from '../lib/forecast';
import type { GitLabSide, Logger } from '../lib/controller/ports';
import { sqsClient } from '../lib/lambda/clients';
import { controllerEnv, type ControllerEnv } from '../lib/lambda/env';
import { correlate, type LoggedContext } from '../lib/lambda/middleware';
import { invocationLine, passFailureLine, passMetricLines, stdoutSink, type MetricsSink } from '../lib/lambda/metrics';
import { loadConfig } from '../lib/lambda/runtime';
import { dedupeEvents, RecentDeliveries } from '../lib/webhook/job-hook';
import { gitlabFor } from '../lib/lambda/gitlab';
import { LoggerRelay } from '../lib/lambda/logger';

let clients: { env: ControllerEnv; ec2: EC2Client; ssm: SSMClient; sqs: SQSClient } | undefined;
/** What this container remembers of workers' reports between passes (the newest per instance). */
let reportMemory = new ReportMemory();
/** What this container knows of pipelines in flight and has learnt (lib/forecast.ts); the learnt part is also kept in SSM. */
let forecast = new ForecastMemory();
let metricsSink: MetricsSink = stdoutSink;
/** Idempotency-Keys taken by this container's passes: a redelivery in a later batch or pass is dropped. */
let recentDeliveries = new RecentDeliveries();
/**
 * One Ec2Fleet per container and config: its launch template check is cached 60 s, which a fleet
 * built per invocation would throw away (one DescribeLaunchTemplateVersions per pool and pass).
 * Logs go to the current invocation's logger (correlation id), not the first one's.
 */
let fleetCache: { key: string; fleet: Ec2Fleet; log: LoggerRelay } | undefined;
/** Operators' holds (pause / drain), one reader per container: its 5 s cache bounds the SSM reads to one per pass. */
let holdsCache: { path: string; holds: SsmOperatorHolds; log: LoggerRelay } | undefined;

function holdsFor(config: Config, stage: string, ssm: SSMClient, log: Logger): SsmOperatorHolds {
  const path = parameterNames(config, stage).operator;
  if (holdsCache?.path !== path) {
    const relay = new LoggerRelay(log);
    holdsCache = { path, holds: new SsmOperatorHolds({ ssm, path, log: relay }), log: relay };
  }
  holdsCache.log.current = log;
  return holdsCache.holds;
}

/**
 * Time kept back from the Lambda's remaining time for what follows the pass's own deadline:
 * the metrics and log lines, and a slow last SSM write. GitLab calls get at most 40 % of the rest
 * (ReconcileOptions.gitlabTimeShare), so discovery, launches and the state save always run.
 */
export const SAFETY_MARGIN_MS = 5_000;
/** EC2 and SQS calls must end this long before the pass's deadline: the state save comes after them. */
export const SAVE_RESERVE_MS = 3_000;
/**
 * A scheduled invocation starts passes for this long (lib/controller/loop.ts CADENCE, shared with
 * the stack's schedule and the simulation; an overlapping tick is dropped by maximumEventAge or
 * runs right after).
 */
export const LOOP_FOR_MS = CADENCE.loopForMs;
/** ReceiveMessage's longest wait (20 s) and then some: the request timeout of the reconcile function's SQS client. */
export const LONG_POLL_REQUEST_TIMEOUT_MS = 25_000;

function fleetFor(config: Config, stage: string, ec2: EC2Client, log: Logger, cacheBucket: string | undefined): Ec2Fleet {
  const key = createHash('sha256').update(JSON.stringify([stage, config, cacheBucket])).digest('hex');
  if (fleetCache?.key !== key) {
    const relay = new LoggerRelay(log);
    fleetCache = { key, fleet: new Ec2Fleet({ ec2, config, stage, log: relay, cacheBucket }), log: relay };
  }
  fleetCache.log.current = log;
  return fleetCache.fleet;
}

function setup() {
  // SDK retries off: Ec2Fleet / SsmStateStore / loadSecret retry within bounds (lib/aws/retry.ts).
  // The SQS client long-polls (ReceiveMessage waits up to 20 s for the first event, loop.ts): its
  // request timeout must outlast that wait, or every idle minute ends in a TimeoutError after 1.5 s
  // (the webhook's SQS_TIMEOUTS) and the invocation fails. Calls are still cut at the pass's
  // deadline by SqsInbox's abort signal.
  if (!clients) clients = { env: controllerEnv(), ec2: ec2Client(), ssm: ssmClient(), sqs: sqsClient({ requestTimeoutMs: LONG_POLL_REQUEST_TIMEOUT_MS }) };
  return clients;
}

/** For tests. */
export function resetForTests(sink: MetricsSink = stdoutSink): void {
  clients = undefined;
  fleetCache = undefined;
  holdsCache = undefined;
  metricsSink = sink;
  reportMemory = new ReportMemory();
  forecast = new ForecastMemory();
  recentDeliveries = new RecentDeliveries();
}

/** Loop settings for tests and the bench (a deployment uses the defaults, lib/controller/loop.ts). */
let loopOverrides: LoopOptions = {};
export function setLoopOptionsForTests(o: LoopOptions): void {
  loopOverrides = o;
}

interface ScheduleInput {
  trigger?: string;
  reason?: string;
}

export type ReconcileEvent = SQSEvent | ScheduleInput;
export type ReconcileResult = SQSBatchResponse | { passId: string; passes: number; decisions: string[]; launched: Record<string, number> };

const isSqs = (e: ReconcileEvent): e is SQSEvent => Array.isArray((e as { Records?: unknown }).Records);

async function runPass(config: Config, env: ControllerEnv, input: PassInput, context: LoggedContext, gitlab: GitLabSide | undefined, store?: SsmStateStore): Promise<PassReport> {
  const { ec2, ssm } = setup();
  const log = context.log;
  const fleet = fleetFor(config, env.stage, ec2, log, env.cacheBucket);
  store ??= new SsmStateStore({ ssm, config, stage: env.stage, log });
  const remainingMs = typeof context.getRemainingTimeInMillis === 'function' ? () => context.getRemainingTimeInMillis() - SAFETY_MARGIN_MS : undefined;
  fleet.timeLeftMs = remainingMs ? () => remainingMs() - SAVE_RESERVE_MS : undefined;
  try {
    const report = await reconcilePass(
      { config, stage: env.stage, fleet, store, gitlab, clock: { now: () => Date.now() }, log, options: { remainingMs }, reportMemory, workerRoleIds: env.workerRoleIds, holds: holdsFor(config, env.stage, ssm, log), forecast },
      input,
    );
    for (const line of passMetricLines(report, config.deployment, env.stage, input.trigger, Date.now(), input)) metricsSink(line);
    log.info('pass done', {
      passId: report.passId,
      trigger: input.trigger,
      events: input.events.length,
      reports: input.reports?.length ?? 0,
      reportTagWrites: report.reports.tagWrites,
      launched: report.launched,
      launchErrors: report.launchErrors.length,
      retired: report.retired.length,
      terminated: report.terminated.length,
      stateWrites: report.stateWrites,
      apiCalls: report.apiCalls,
      gitlab: report.gitlab,
      // What the forecast saw coming per pool (expected jobs within a boot time, busy workers free sooner).
      ...(report.forecast ? { forecast: report.forecast } : {}),
      heldBack: report.heldBack,
      gitlabOutOfTime: report.gitlabOutOfTime,
      outOfTime: report.outOfTime,
      launchId: report.launchId,
      durationMs: report.durationMs,
      decisions: report.decisions,
    });
    return report;
  } catch (e) {
    metricsSink(passFailureLine(config.deployment, env.stage, input.trigger));
    throw e;
  }
}

async function runInvocation(config: Config, env: ControllerEnv, trigger: 'schedule' | 'manual', context: LoggedContext, gitlab: GitLabSide | undefined): Promise<LoopReport> {
  const { sqs, ssm } = setup();
  const log = context.log;
  if (!env.queueUrl) throw new Error('QUEUE_URL is not set: the reconcile function reads job events from that queue');
  // One store for the invocation's passes: the state is read once and then reused, since no other
  // writer can run meanwhile (reserved concurrency 1). The next invocation reads it again.
  const store = new SsmStateStore({ ssm, config, stage: env.stage, log, cacheMs: Infinity });
  const remaining = typeof context.getRemainingTimeInMillis === 'function' ? () => context.getRemainingTimeInMillis() - SAFETY_MARGIN_MS : () => 30_000;
  const timeLeftMs = () => remaining() - SAVE_RESERVE_MS;
  const events = new SqsInbox({ sqs, queueUrl: env.queueUrl, timeLeftMs });
  const reports = env.reportQueueUrl ? new SqsInbox({ sqs, queueUrl: env.reportQueueUrl, timeLeftMs }) : undefined;
  const loop = await runLoop({ pass: (input) => runPass(config, env, input, context, gitlab, store), events, reports, remainingMs: remaining, log, recentDeliveries }, trigger, {
    loopForMs: LOOP_FOR_MS,
    ...loopOverrides,
    ...(trigger === 'manual' ? { maxPasses: 1 } : {}),
  });
  metricsSink(invocationLine(config.deployment, env.stage, loop, trigger));
  log.info('invocation passes', { passes: loop.passes, failedPasses: loop.failedPasses, events: loop.events, reports: loop.reports, unreadable: loop.unreadable, longestPassMs: Math.max(0, ...loop.passMs) });
  return loop;
}

async function handle(event: ReconcileEvent, context: LoggedContext): Promise<ReconcileResult> {
  const { env, ssm } = setup();
  const log = context.log;
  const config = await loadConfig(env, ssm);
  const gitlab = await gitlabFor(config, env.stage, ssm, log);

  if (!isSqs(event)) {
    const trigger = event?.trigger === 'manual' ? 'manual' : 'schedule';
    // A failed invocation throws: the Lambda Errors metric and its alarm see it; the next tick repairs.
    const loop = await runInvocation(config, env, trigger, context, gitlab);
    return { passId: loop.last?.passId ?? '', passes: loop.passes, decisions: loop.last?.decisions ?? [], launched: loop.last?.launched ?? {} };
  }

  const { events, interruption, used } = decodeEvents(
    event.Records.map((r) => ({ id: r.messageId, body: r.body })),
    log,
  );
  // Unreadable ones fail until the dead-letter queue takes them (and its alarm fires).
  const read = new Set(used);
  const failures = event.Records.filter((r) => !read.has(r.messageId)).map((r) => ({ itemIdentifier: r.messageId }));
  const unique = dedupeEvents(events, recentDeliveries);
  if (unique.length < events.length) log.info('duplicate deliveries dropped', { received: events.length, kept: unique.length });
  try {
    // This path reads no reports: nothing that waits for one may end here.
    await runPass(config, env, { events: unique, trigger: interruption ? 'interruption' : 'queue', reportQueue: env.reportQueueUrl ? 'unread' : undefined }, context, gitlab);
    recentDeliveries.remember(unique, Date.now());
  } catch (e) {
    // The whole pass failed: every message is retried (after the visibility timeout).
    log.error('pass failed; the batch will be retried', { error: e, messages: used.length });
    for (const id of used) failures.push({ itemIdentifier: id });
  }
  return { batchItemFailures: failures };
}

export const handler = middy<ReconcileEvent, ReconcileResult, Error, LoggedContext>(handle).use(
  correlate<ReconcileEvent, ReconcileResult>({
    fields: { service: 'gitlab-spot-autoscaler', function: 'reconcile' },
    summarize: (res) => (!res ? {} : 'batchItemFailures' in res ? { batchItemFailures: res.batchItemFailures.length } : { passId: res.passId }),
  }),
);
