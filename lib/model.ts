/**
 * The vocabulary shared by the planner, the controller, the simulation and the tests.
 * Pure data: no AWS or HTTP types leak in here.
 */
import type { ActiveSettings } from './periods';

/**
 * A worker's life, in docker+machine's terms (executors/docker/machine):
 *  booting  = Creating (launched, runner not yet ready)
 *  idle     = Idle (runner ready, no job)
 *  busy     = Used (running a job)
 *  retiring = Removing (asked to leave after its job, interrupted, or shutting down)
 */
export type WorkerState = 'booting' | 'idle' | 'busy' | 'retiring';

/** Something wrong with an instance, found by the fleet adapter (EC2 status, tags, state). */
export type WorkerProblem =
  | 'impaired' // failed EC2 status checks
  | 'stopped' // stopped or stopping: workers are never meant to stop (shutdown = terminate); the adapter reports its state as 'retiring'
  | 'interrupted' // spot interruption notice received (interruption handler tags it)
  | 'silent'; // reported ready once, then nothing for REPORTING.silenceSeconds (its script, and runner, may have died)

/**
 * What the worker last reported about itself (docs/controller.md, "Worker reports"):
 *  idle     runner ready, no job
 *  busy     a job runs
 *  draining leaving (asked to retire, interrupted, MaxBuilds, lifetime...); its runner still runs and may finish a job
 *  stopped  its runner has exited for good: no job runs and none can start; it is shutting down
 */
export type ReportedState = 'idle' | 'busy' | 'draining' | 'stopped';

/** EC2's state of the instance, as far as the controller cares. */
export type InstanceState = 'pending' | 'running' | 'shutting-down' | 'stopping' | 'stopped';

export interface WorkerView {
  /** EC2 instance id (or a simulated id). */
  id: string;
  /** Pool name from the instance's tag; a name not in the config makes it an orphan. */
  pool: string;
  state: WorkerState;
  /** Epoch ms. */
  launchedAt: number;
  /** Builds this worker has run (the worker reports it; MaxBuilds). */
  builds: number;
  /** Epoch ms since the worker has been idle (IdleTime). */
  idleSince?: number;
  /** Epoch ms when retirement was requested (the `retire` tag), whatever the worker reported since. */
  retireRequestedAt?: number;
  problem?: WorkerProblem;
  /** EC2's state; undefined = running (fleets that do not model it). */
  instanceState?: InstanceState;
  /** Epoch ms the worker reported its runner ready; undefined = it never did (booting). */
  readyAt?: number;
  /** The worker's latest report; undefined = none yet. */
  reported?: ReportedState;
  /** Epoch ms the worker reported its runner stopped for good (`reported` is then 'stopped'). */
  stoppedAt?: number;
  /** Launch template version the worker was launched from (a changed template retires it). */
  templateVersion?: string;
  /**
   * The time limits (seconds) it was launched with (its `limits` tag; the worker runs by them).
   * The fence counts with the longer of these and the pool's current ones.
   */
  limits?: { bootTimeout: number; jobTimeout: number; maxLifetime: number };
  /**
   * The launch that made it (`launched-for` tag): its id, how many instances it asked for and how
   * many of them were for demand (pending or forecast jobs) rather than the idle target.
   */
  launchedFor?: { launch: string; demand: number; count: number };
  instanceType?: string;
  zone?: string;
  market?: 'spot' | 'on-demand';
}

/**
 * The docker+machine state of a worker from what EC2 and the worker's reports say. Leaving wins over
 * everything (a retirement request, a draining or stopped report, an instance shutting down); a
 * worker that never reported ready is booting; then busy or idle as reported.
 */
export function deriveState(w: Pick<WorkerView, 'instanceState' | 'retireRequestedAt' | 'reported' | 'readyAt'>): WorkerState {
  if (w.instanceState === 'shutting-down' || w.retireRequestedAt !== undefined || w.reported === 'draining' || w.reported === 'stopped') return 'retiring';
  if (w.instanceState === 'pending' || w.readyAt === undefined) return 'booting';
  return w.reported === 'busy' ? 'busy' : 'idle';
}

export interface PoolDemand {
  /** Jobs waiting for a runner of this pool. */
  pending: number;
  /** Jobs running on this pool's workers. */
  running: number;
}

/**
 * An operator's hold on a pool (`pause` / `drain`, lib/controller/holds.ts): paused launches
 * nothing, idle target included; draining also asks every worker of the pool to retire (a busy
 * one after its job). Never a termination: the fence is unchanged.
 */
export interface PoolHold {
  mode: 'paused' | 'draining';
  /** Who set it: the caller's ARN (STS GetCallerIdentity) as the CLI wrote it. */
  by: string;
  /** ISO 8601 instant it was set. */
  at: string;
  reason?: string;
}

/** What is coming for a pool (lib/forecast.ts): pipelines in flight, learnt durations and boot times. */
export interface PoolForecast {
  /** Jobs expected to become pending within `horizonSeconds` (the sum of each one's chance of running), not pending yet. */
  expected: number;
  /** Busy workers whose jobs are expected to end within `bootSeconds`: a worker launched now would be ready later than they are free. */
  freeing: number;
  /** Seconds a new worker of the pool takes to be ready (observed, or a default). */
  bootSeconds: number;
  /** How far ahead the forecast looks: the boot time and a margin for the passes in between. */
  horizonSeconds: number;
  /** Jobs a second expected to arrive without a forecast (new pipelines, lone jobs): pools with targetWait only. */
  arrivalRate?: number;
}

export interface Snapshot {
  workers: readonly WorkerView[];
  /** Operator holds by pool name; a pool missing here is not held. */
  holds?: Readonly<Record<string, PoolHold>>;
  /** Demand per pool name; a pool missing here has no demand. */
  demand: Readonly<Record<string, PoolDemand>>;
  /** What is coming per pool name; a pool missing here plans from pending jobs alone. */
  forecast?: Readonly<Record<string, PoolForecast>>;
  /** The launch template version each pool launches from now; idle workers of other versions are retired. */
  templateVersions?: Readonly<Record<string, string>>;
}

/** Why an instance should go; it is always asked first (a Retirement), and terminated only behind the fence (Termination). */
export type RetirementKind = 'max-builds' | 'template' | 'limit' | 'idle' | 'surplus' | 'boot-timeout' | 'impaired' | 'silent' | 'orphan' | 'drain';

/** A graceful request: the worker finishes its current job, then leaves on its own. */
export interface Retirement {
  id: string;
  reason: string;
  kind?: RetirementKind;
}

/**
 * The only cases in which TerminateInstances is sent (docs/architecture.md, "The fence"): none of
 * them can hit a job the runner took after the snapshot.
 *  stopped-instance     EC2 says stopped/stopping: nothing runs on it
 *  runner-stopped       the worker reported its runner gone for good, and is still there a while later
 *  never-ready          never reported ready, past launched-at + bootTimeout + grace (the worker refuses to start its runner after launched-at + bootTimeout)
 *  retirement-ignored   asked to retire jobTimeout + grace ago and still there (refused while it reports a job)
 *  end-of-life          launched maxLifetime + jobTimeout + grace ago: terminated whatever it reports
 */
export type TerminationKind = 'stopped-instance' | 'runner-stopped' | 'never-ready' | 'retirement-ignored' | 'end-of-life';

/** Immediate termination: only behind the fence (TerminationKind). */
export interface Termination {
  id: string;
  reason: string;
  kind: TerminationKind;
}

export interface PoolCounts {
  booting: number;
  idle: number;
  busy: number;
  retiring: number;
  /** All workers of the pool in every state (docker+machine's Total), the ones being terminated included. */
  total: number;
  pending: number;
  running: number;
}

export interface PoolPlan {
  pool: string;
  settings: ActiveSettings;
  /** Counts before the plan is carried out. */
  counts: PoolCounts;
  /** The idle target in force (IdleCount, or IdleCountMin..IdleCount scaled by IdleScaleFactor). */
  idleTarget: number;
  /** Workers to launch now. */
  launch: number;
  /** Of `launch`, how many are for demand (pending or forecast jobs) rather than the idle target (the `launched-for` tag). */
  launchForDemand?: number;
  /** Why, in words: "2 for pending jobs, 1 for IdleCount". Empty when launch is 0. */
  launchReasons: string[];
  /** The caps that reduced the launch, if any ("limit 10", "MaxGrowthRate 2", "concurrent 20"). */
  cappedBy: string[];
  retire: Retirement[];
  terminate: Termination[];
  /** The operator's hold on the pool, when there is one (launch is then 0). */
  hold?: PoolHold;
}

export interface Plan {
  /** ISO 8601 instant the plan was made for. */
  at: string;
  pools: PoolPlan[];
  /** Instances of this deployment whose pool is not in the config: asked to retire, terminated only behind the fence. */
  orphans: { retire: Retirement[]; terminate: Termination[] };
}
