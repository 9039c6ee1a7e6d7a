/**
 * The small interfaces the reconcile pass drives. EC2, SSM, SQS and GitLab adapters implement them
 * for Lambda; the simulation and the tests implement them in memory. Nothing here imports AWS.
 */
import type { Config, Pool } from '../config';
import type { PoolHold, Retirement, Termination, WorkerView } from '../model';
import type { WorkerStateWrite } from './reports';
import type { ControllerState } from './state';
import type { PipelineLearnPass, PipelineLearnReport } from '../gitlab/pipelines';

/** An instance type in a subnet: the unit spot capacity is granted (or refused) in. */
export interface CapacityPool {
  instanceType: string;
  subnet: string;
  /** The market the cooldown applies to; undefined = both spot and on-demand. */
  market?: 'spot' | 'on-demand';
}

/** How a launch error is handled (facts: CreateFleet errors). */
export type LaunchErrorClass =
  | 'capacity' // InsufficientInstanceCapacity, UnfulfillableCapacity, MaxSpotInstanceCountExceeded...: cool that pool down, try others
  | 'quota' // VcpuLimitExceeded, InstanceLimitExceeded: back off the whole pool, alert
  | 'throttling' // RequestLimitExceeded: back off with jitter
  | 'invalid' // InvalidParameterValue and friends: a bug or bad config, never retried in a loop
  | 'other';

export interface LaunchError {
  class: LaunchErrorClass;
  code: string;
  message: string;
  instanceType?: string;
  subnet?: string;
  /** The market of the attempt that failed, when known. */
  market?: 'spot' | 'on-demand';
}

export interface LaunchRequest {
  pool: Pool;
  count: number;
  /** Id of the reconcile pass, tagged on every instance. */
  /** (The reconcile pass sends its launch id here: `<state epoch>-g<generation>`, the same for a pass and its re-run after a crash.) */
  passId: string;
  /** Idempotency token for CreateFleet: the same pass retried launches nothing twice. */
  /** (Derived from deployment, stage, pool, state epoch and generation, so a pass re-run from unsaved state sends the same token.) */
  clientToken: string;
  /** Capacity pools on cooldown: left out of the overrides. */
  avoid: readonly CapacityPool[];
  /** Of `count`, how many are for demand (pending or forecast jobs) rather than the idle target: tagged `launched-for` (planner: surplus). */
  forDemand?: number;
}

export interface LaunchResult {
  launched: WorkerView[];
  errors: LaunchError[];
}

/**
 * CreateFleet's answer to a ClientToken already used with other parameters. The reconcile pass
 * reads it as "a launch from a pass that did not save its state may be in flight": it launches
 * nothing for that pool this pass and records a guard (docs/controller.md, "Idempotency and adoption").
 */
export const IDEMPOTENT_MISMATCH = 'IdempotentParameterMismatch';

/** The fleet, as found in EC2 by this deployment's tags. Level-triggered: always rediscovered. */
export interface Fleet {
  /** Every instance of this deployment and stage that is not terminated, by tags, all pages. */
  discover(now: number): Promise<WorkerView[]>;
  launch(req: LaunchRequest): Promise<LaunchResult>;
  /** Graceful: tags the instances; each worker leaves after its current job. */
  requestRetirement(retirements: readonly Retirement[]): Promise<void>;
  /** Immediate; only ever called behind the fence (model.ts TerminationKind). */
  terminate(terminations: readonly Termination[]): Promise<void>;
  /**
   * Records what workers reported onto the instances (lib/controller/reports.ts): one call per tag
   * set, many instances each. Resolves to whether each write succeeded; a report whose write failed
   * is delivered again. Optional: a fleet without it keeps reports in the pass's memory only.
   */
  recordWorkerState?(writes: readonly WorkerStateWrite[]): Promise<boolean[]>;
  /**
   * The launch template version the pool launches from now (the version `launch` tags instances
   * with), or undefined when unknown (no template, refused template, API trouble): idle workers of
   * other versions are retired only when this is known. Optional: fleets without templates omit it.
   */
  currentTemplateVersion?(pool: Pool): Promise<string | undefined>;
}

/** A decision line of the pass (kept in `last-pass`, shown by `status`) at a log level. */
export type Decide = (line: string, level?: 'info' | 'warn' | 'error') => void;

/** What the GitLab side gets from a pass (lib/gitlab/sync.ts). Job events are already applied to `state`. */
export interface GitLabPass {
  config: Config;
  state: ControllerState;
  now: number;
  log: Logger;
  decide: Decide;
  /** Wall-clock ms the pass may still take; GitLab calls use `timeShare` of it. Unset: no time limit. */
  remainingMs?: () => number;
  timeShare?: number;
}

/**
 * Operators' holds on pools (pause, drain: lib/controller/holds.ts), read at the start of every
 * pass. Throws when they cannot be read and nothing was read before: a pass must not launch into a
 * pool an operator may have paused (as a state that cannot be read fails the pass).
 */
export interface OperatorHolds {
  read(): Promise<Readonly<Record<string, PoolHold>>>;
}

export interface GitLabPassReport {
  /** 'graphql', 'rest' (fallback), 'simulated'... */
  mode: string;
  /** HTTP requests sent to GitLab in this pass, retries included. */
  requests: number;
  byKind: Record<'route' | 'confirm' | 'discover', number>;
  /** Requests each kind of work wanted (what it did not get waits for the next pass). */
  wanted: Record<'route' | 'confirm' | 'discover', number>;
  routed: number;
  confirmed: number;
  /** Jobs dropped because GitLab no longer lists them as pending or running (a lost webhook, or a forged one). */
  removed: number;
  /** Pending jobs found that no webhook announced. */
  discovered: number;
  /** Jobs newly held back because GitLab keeps failing for their project. */
  refused: number;
  projectsListed: number;
  /** Projects isolated after repeated failures. */
  isolated: number;
  /** True when GitLab calls stopped because their share of the pass's time was used up. */
  outOfTime: boolean;
  /** Set when no GitLab request succeeded in this pass: the error seen. */
  unavailable?: string;
}

/**
 * The GitLab side of the pass: routes the jobs of new events to pools, confirms jobs no event
 * confirmed lately, discovers pending jobs whose every delivery was lost, all within its request
 * budget (lib/gitlab/sync.ts GitLabDemand over the GraphQL/REST API, or the simulated GitLab).
 */
export interface GitLabSide {
  syncJobs(pass: GitLabPass): Promise<GitLabPassReport>;
  /** The graphs of pipelines in flight for the forecast, with what routing, confirmation and discovery left of the budget (lib/gitlab/pipelines.ts). */
  learnPipelines?(pass: PipelineLearnPass): Promise<PipelineLearnReport>;
}

/** What the webhook queues for each Job Hook delivery (see handlers/webhook). */
export interface JobEvent {
  jobId: number;
  projectId: number;
  /** GitLab build_status: created, pending, running, success, failed, canceled, ... */
  status: string;
  /** Epoch ms when the webhook received it. */
  receivedAt: number;
  /** Job tags when known (the Job Hook carries none; the API or the simulation may). */
  tags?: string[];
  /** GitLab's Idempotency-Key (17.4+): the same for a delivery and its redeliveries. For de-duplication. */
  deliveryId?: string;
  /** The job's pipeline (Job Hook pipeline_id): the forecast follows pipelines (lib/forecast.ts). */
  pipelineId?: number;
  /** Job Hook build_name and build_stage (the stage's name). */
  name?: string;
  stage?: string;
  /** Job Hook build_duration: seconds the job ran (finished jobs). Durations are learnt from it. */
  duration?: number;
}

export interface Clock {
  now(): number;
}

export interface Logger {
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

/**
 * What a Fleet may add to a WorkerView (all optional; the in-memory fleet may leave them out):
 * where it runs and which pass launched it. The controller uses them for cooldowns after
 * interruptions and to count launches that discovery does not show yet (eventual consistency).
 */
export type FleetWorker = WorkerView & {
  subnet?: string;
  /** Pass id tagged at launch. */
  passId?: string;
  /** Epoch ms and kind of the interruption handler's mark, when present. */
  interruptedAt?: number;
  interruptionKind?: 'interruption' | 'rebalance';
};

/** Result of marking one instance for the interruption handler. */
export type MarkOutcome = 'tagged' | 'not-ours' | 'gone';

/** Tags one instance of this deployment (EC2 only; the interruption Lambda never writes SSM). */
export interface InstanceMarker {
  markInstance(instanceId: string, tags: Readonly<Record<string, string>>): Promise<MarkOutcome>;
}

/** A message of a queue the reconcile function reads (job events, worker reports). */
export interface InboxMessage {
  /** Message id: what `delete` takes. */
  id: string;
  body: string;
  /** SQS SenderId (who sent it). */
  sender?: string;
  /** SQS SentTimestamp, epoch ms. */
  sentAt?: number;
  /** SQS ApproximateReceiveCount. */
  receiveCount?: number;
}

/** A queue the reconcile function consumes itself (lib/aws/sqs-inbox.ts; in memory for the tests). */
export interface Inbox {
  /**
   * Up to `max` messages. With `waitSeconds` > 0 it waits that long for the first one (long
   * polling) and returns as soon as there is one; then it takes what is there without waiting.
   * Received messages are hidden from other receives until deleted or their visibility timeout ends.
   */
  receive(max: number, waitSeconds: number): Promise<InboxMessage[]>;
  /** Deletes received messages by id; unknown ids are ignored. */
  delete(ids: readonly string[]): Promise<void>;
  /** Forgets the messages received so far that were not deleted: they come back after their visibility timeout. */
  release?(): void;
}
