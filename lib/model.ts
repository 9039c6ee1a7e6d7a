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
  | 'interrupted'; // spot interruption notice received (interruption handler tags it)

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
  /** Epoch ms when retirement was requested, for workers in state `retiring`. */
  retireRequestedAt?: number;
  problem?: WorkerProblem;
  /** Launch template version the worker was launched from (a changed template retires it). */
  templateVersion?: string;
  instanceType?: string;
  zone?: string;
  market?: 'spot' | 'on-demand';
}

export interface PoolDemand {
  /** Jobs waiting for a runner of this pool. */
  pending: number;
  /** Jobs running on this pool's workers. */
  running: number;
}

export interface Snapshot {
  workers: readonly WorkerView[];
  /** Demand per pool name; a pool missing here has no demand. */
  demand: Readonly<Record<string, PoolDemand>>;
  /** The launch template version each pool launches from now; idle workers of other versions are retired. */
  templateVersions?: Readonly<Record<string, string>>;
}

/** A graceful request: the worker finishes its current job, then leaves on its own. */
export interface Retirement {
  id: string;
  reason: string;
}

/** Immediate termination: only for instances that are not running a job, or are broken. */
export interface Termination {
  id: string;
  reason: string;
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
  /** Why, in words: "2 for pending jobs, 1 for IdleCount". Empty when launch is 0. */
  launchReasons: string[];
  /** The caps that reduced the launch, if any ("limit 10", "MaxGrowthRate 2", "concurrent 20"). */
  cappedBy: string[];
  retire: Retirement[];
  terminate: Termination[];
}

export interface Plan {
  /** ISO 8601 instant the plan was made for. */
  at: string;
  pools: PoolPlan[];
  /** Instances of this deployment whose pool is not in the config (busy ones wait until idle). */
  orphans: { terminate: Termination[] };
}
