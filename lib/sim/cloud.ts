/**
 * The simulated world: EC2 instances that boot, run one job at a time, get interrupted and shut
 * down, GitLab's queue of pending jobs, and the webhook events GitLab sends about them. Both
 * policies of a run (the real controller through `SimFleet`, and the docker+machine baseline in
 * baseline.ts) drive the same kind of world, each its own copy.
 *
 * Modelling choices (docs/simulation.md explains each):
 *  - A worker boots for the time its image's boot steps take (boot.ts: pre-built or base image,
 *    each step drawn from figures measured or published), or uniformly in bootSeconds when given,
 *    then takes the oldest pending job of its pool at once (GitLab's long polling makes pickup
 *    near-immediate). A worker of a base image pulls its helper and job image at its first job.
 *  - A worker is gitlab-runner `run-single`: it exits by itself after MaxBuilds builds
 *    (--max-builds) or after being idle for its wait timeout (--wait-timeout, the pool's largest
 *    IdleTime), and honours a retirement request after its current job.
 *  - A worker of the controller follows lib/worker/script.ts: it reports ready / idle / busy /
 *    draining / stopped to the report queue (delayed, sometimes lost; ready never: the runner starts
 *    only once it was accepted), repeats its state every heartbeat, never becomes ready after
 *    launched-at + bootTimeout, notices a retirement request only at its next poll of the tags (its
 *    runner may take a job until then), drains at maxLifetime after launch, and powers off once its
 *    runner stopped (rarely that power-off fails and the instance stays). The controller sees only
 *    EC2's side and what it recorded from reports (SimFleet.discover).
 *  - Faults on demand: slow boots past bootTimeout, failed status checks (the runner keeps
 *    working), failed power-offs; and the race window: runners keep taking jobs between a pass's
 *    discovery and its actions (SimFleet).
 *  - Spot capacity of each instance type x subnet has outages (an alternating on/off process);
 *    launching into a pool in an outage fails with a 'capacity' LaunchError naming it.
 *  - A spot instance is interrupted at a constant hazard rate: it gets problem 'interrupted' (the
 *    2-minute warning; it takes no new job) and is reclaimed 120 s later. A job still running then
 *    fails with runner_system_failure and GitLab retries it as a new job (projects running CI on
 *    spot set `retry: {when: runner_system_failure}`), pending again from that instant.
 *  - Instances take shutdownSeconds from "leave" to terminated; EC2 bills per second, 60 s minimum.
 */
import { workerWaitTimeout } from '../worker/userdata';
import type { Config, Pool } from '../config';
import { poolForJobTags } from '../config';
import { deriveState, type ReportedState, type WorkerView } from '../model';
import type { CapacityPool, Fleet, FleetWorker, JobEvent, LaunchError, LaunchRequest, LaunchResult } from '../controller/ports';
import type { ApiJob, GitLabApi, Outcome, Page, ProjectActivity } from '../gitlab/api';
import { PIPELINES_PER_SCOPE, PROJECTS_PER_REQUEST } from '../gitlab/graphql';
import type { Retirement, Termination, TerminationKind } from '../model';
import type { WorkerReport, WorkerStateWrite } from '../controller/reports';
import { REPORTING } from '../planner';
import { TAGS } from '../controller/tags';
import { EventQueue } from './events';
import { Rng } from './rng';
import { sampleBoot, sampleFirstPull, type WorkerImage } from './boot';
import type { PriceTable } from './prices';
import type { TraceCancel, TraceJob } from './trace';
import { PipelineProcess, pipelineIds, type JobEnd } from './pipelines';
import { PIPELINE_PROJECTS_PER_REQUEST, type PipelineApi, type PipelineListing } from '../gitlab/pipeline-api';

export interface CloudOptions {
  /** Seconds from launch until the runner takes jobs: uniform in [min, max]; unset = the boot model of each pool's worker image (boot.ts). */
  bootSeconds?: [number, number];
  /** Seconds from "leave" (shutdown or terminate) until the instance is gone and billing stops. */
  shutdownSeconds: number;
  /** Seconds a worker takes to notice a retirement request (it polls instance-metadata tags). */
  retirementNoticeSeconds: number;
  /** Spot interruptions per running spot instance-hour. */
  interruptionsPerHour: number;
  /** Capacity outages per day for each instance type x subnet. */
  capacityOutagesPerDay: number;
  /** Mean length of a capacity outage, minutes. */
  capacityOutageMinutes: number;
  /** A worker's report reaches the queue this many seconds after it is sent, at most (uniform). */
  reportDelaySeconds: number;
  /** Share of reports lost for good (the worker gave up sending); the ready report is never lost. */
  reportLossRate: number;
  /** Share of a controller's boots that take 0.8 to 1.6 times the pool's bootTimeout. */
  slowBootRate: number;
  /** Failed EC2 status checks per running instance-hour (the runner keeps working). */
  impairmentsPerHour: number;
  /** Share of workers whose power-off fails after their runner stopped: the instance stays until terminated. */
  shutdownFailRate: number;
  /** Runners keep taking jobs for up to this many seconds between a pass's discovery and its actions. */
  raceWindowSeconds: number;
}

export const DEFAULT_CLOUD: CloudOptions = {
  shutdownSeconds: 30,
  retirementNoticeSeconds: 10,
  interruptionsPerHour: 0.005,
  capacityOutagesPerDay: 1,
  capacityOutageMinutes: 30,
  reportDelaySeconds: 2,
  reportLossRate: 0.01,
  // Faults are off by default (no figure to base a rate on); the invariant tests turn them on.
  slowBootRate: 0,
  impairmentsPerHour: 0,
  shutdownFailRate: 0,
  raceWindowSeconds: 3,
};

/** The role id the simulated workers' reports are signed with (the SenderId check runs as in AWS). */
export const SIM_WORKER_ROLE = 'AROASIMULATEDWORKER01';

/** AWS's notice before a spot instance is reclaimed. */
export const INTERRUPTION_NOTICE_MS = 120_000;
const MINUTE = 60_000;

export type JobState = 'pending' | 'assigned' | 'running' | 'success' | 'failed';

/** One GitLab job: a trace job's attempt (a retry is a new job with a new id, as in GitLab). */
export interface SimJob {
  id: number;
  trace: TraceJob;
  traceIndex: number;
  pool: string | undefined;
  state: JobState;
  pendingSince: number;
  workerId?: string;
  /** When a worker started it (job-hours, the duration in its hooks). */
  startedAt?: number;
}

/** What happened to each trace job across its attempts. */
export interface JobOutcome {
  /** Seconds spent pending (or waiting for a machine created for it) over all attempts. */
  wait: number;
  started: boolean;
  finished: boolean;
  attempts: number;
  hitByInterruption: number;
  /** How it ended: its last attempt's result, or why it never ran (pipelines.ts). */
  end?: JobEnd;
}

export type SimWorkerState = 'booting' | 'idle' | 'busy' | 'leaving' | 'gone';

export interface SimWorker {
  id: string;
  pool: Pool;
  instanceType: string;
  subnet: string;
  zone: string;
  market: 'spot' | 'on-demand';
  launchedAt: number;
  readyAt: number;
  state: SimWorkerState;
  builds: number;
  idleSince?: number;
  job?: SimJob;
  /** A job the baseline's manager acquired for this machine while it boots (docker+machine, IdleCount 0). */
  boundJob?: SimJob;
  retireRequestedAt?: number;
  /** Epoch ms of the spot interruption warning (the interruption handler's tag). */
  interruptedAt?: number;
  interrupted?: boolean;
  /** The reconcile pass that launched it (a launch tag). */
  passId?: string;
  /** Of its launch's instances, how many were for demand (the `launched-for` tag). */
  launchedFor?: { demand: number; count: number };
  goneAt?: number;
  /** run-single's own exits (max builds, wait timeout); docker+machine machines have none. A worker of the controller. */
  selfExit: boolean;
  /** Bumped whenever the worker becomes idle: stale idle-timeout events are ignored. */
  idleEpoch: number;
  /** When its runner became ready (it reported it). */
  readyAtActual?: number;
  /** Reports sent (the sequence number of the last). */
  seq: number;
  /** It saw its retirement request, a spot notice or its lifetime end: its runner takes no new job. */
  draining?: boolean;
  /** Its runner has exited for good. */
  runnerStopped?: boolean;
  /** Failing EC2 status checks (its runner works on). */
  impaired?: boolean;
  /** Its power-off failed: the instance stays, with no runner, until terminated. */
  stuck?: boolean;
  /** The image it boots from (boot.ts), and the seconds its first job still has to pull (0 once pulled). */
  image: WorkerImage;
  firstPull: number;
  /** What the controller recorded on the instance from its reports (the tags of recordWorkerState). */
  recorded: { readyAt?: number; reported?: ReportedState; idleSince?: number; stoppedAt?: number; builds?: number };
}

export interface WorldStats {
  launches: number;
  interruptions: number;
  jobsHitByInterruptions: number;
  /** Busy workers terminated by the policy: the controller must never do it. */
  busyTerminations: number;
  /** Terminations by the fence's kind (TerminationKind), and how many retirement requests reached a runner that had just taken a job. */
  terminationsByKind: Partial<Record<TerminationKind, number>>;
  retiredWhileBusy: number;
  reportsSent: number;
  slowBoots: number;
  impairments: number;
  limitViolations: number;
  peakWorkers: number;
  /** Second-accurate instance time and money, filled in as instances go (and at the end). */
  instanceSeconds: number;
  cost: number;
  onDemandCostOfSameHours: number;
  byMarket: Record<'spot' | 'on-demand', number>;
  webhooksSent: number;
  /** Every worker that became ready: its pool, image and seconds from launch to ready. */
  boots: { pool: string; image: WorkerImage; seconds: number }[];
  /** Seconds workers spent running jobs (utilization = job-hours / worker-hours). */
  jobSeconds: number;
}

export interface Sample {
  at: number;
  pending: number;
  running: number;
  booting: number;
  idle: number;
  busy: number;
  leaving: number;
}

export interface WorldOptions {
  config: Config;
  cloud: CloudOptions;
  prices: PriceTable;
  rng: Rng;
  /** Global cap on jobs running at once, enforced on pickup (docker+machine's `concurrent`); 0 = none. */
  maxRunning: number;
  /** Every machine boots from its base AMI whatever the pool's worker.image (docker+machine cannot use the pre-built image). */
  baseImageOnly?: boolean;
  sampleEveryMs?: number;
  /** Pipelines the trace cancels (trace.ts). */
  cancels?: readonly TraceCancel[];
}

// Seconds a run-single worker waits idle before it exits: the rule the real user data renders.
export { workerWaitTimeout };

export class World {
  readonly queue = new EventQueue();
  now: number;
  readonly workers = new Map<string, SimWorker>();
  readonly jobs = new Map<number, SimJob>();
  readonly outcomes: JobOutcome[];
  readonly samples: Sample[] = [];
  readonly stats: WorldStats = {
    launches: 0, interruptions: 0, jobsHitByInterruptions: 0, busyTerminations: 0, terminationsByKind: {}, retiredWhileBusy: 0, reportsSent: 0, slowBoots: 0, impairments: 0, limitViolations: 0, peakWorkers: 0,
    instanceSeconds: 0, cost: 0, onDemandCostOfSameHours: 0, byMarket: { spot: 0, 'on-demand': 0 }, webhooksSent: 0, boots: [], jobSeconds: 0,
  };
  /** Called for every job status change GitLab would send a Job Hook for. */
  onJobEvent: (e: JobEvent) => void = () => {};
  /** Called when a spot interruption warning arrives (EventBridge -> interruption handler). */
  onInterruption: (w: SimWorker) => void = () => {};
  /** Called for every report a worker of the controller sends; `mustArrive` for the ready report (the runner starts only once it was accepted). */
  onReport: (r: WorkerReport, mustArrive: boolean) => void = () => {};
  /** Called after anything that may change what the baseline should do. */
  onChange: () => void = () => {};

  /** Trace jobs that match a pool and that a runner may take (not stuck), and how many of them finished. */
  readonly routable: number;
  /** Trace jobs GitLab keeps pending for ever (`stuck: true`): no runner takes them. */
  readonly stuck: number;
  /** Trace jobs whose tags match no pool (and that are not stuck). */
  readonly unroutable: number;
  finishedCount = 0;
  /** GitLab's pipeline processing: pipeline jobs are created with their pipeline and queued when what they wait for has ended. */
  readonly pipelines: PipelineProcess;
  private readonly pipelineIds: Map<string, number>;
  /** Pipeline jobs (trace indexes) by pipeline, and pipelines by project, for the API. */
  private readonly pipelineJobs = new Map<string, number[]>();
  private readonly pipelinesOf = new Map<number, string[]>();
  /** Ids GitLab gave pipeline jobs at creation (their first attempt keeps it). */
  private readonly createdIds = new Map<number, number>();
  /** Each trace job's current attempt. */
  private readonly current = new Map<number, SimJob>();
  private readonly pending = new Map<string, SimJob[]>();
  /** Jobs no pool serves, and stuck ones: pending forever, listed by GitLab's API like any other pending job. */
  private readonly neverTaken: SimJob[] = [];
  /** Pending and running jobs per project: what GitLab's API lists. */
  private readonly active = new Map<number, Set<SimJob>>();
  private nextJobId = 1000;
  private nextWorker = 1;
  private running = 0;
  private readonly rng: Rng;
  private readonly bootRng: Rng;
  private readonly interruptRng: Rng;
  private readonly faultRng: Rng;
  readonly config: Config;
  readonly cloud: CloudOptions;
  readonly prices: PriceTable;
  private readonly maxRunning: number;
  private readonly baseImageOnly: boolean;

  constructor(
    opts: WorldOptions,
    private readonly trace: readonly TraceJob[],
    start: number,
  ) {
    this.config = opts.config;
    this.cloud = opts.cloud;
    this.prices = opts.prices;
    this.maxRunning = opts.maxRunning;
    this.baseImageOnly = opts.baseImageOnly ?? false;
    this.rng = opts.rng;
    this.bootRng = opts.rng.fork('boot');
    this.interruptRng = opts.rng.fork('interrupt');
    this.faultRng = opts.rng.fork('faults');
    this.now = start;
    for (const p of this.config.pools) this.pending.set(p.name, []);
    this.outcomes = trace.map(() => ({ wait: 0, started: false, finished: false, attempts: 0, hitByInterruption: 0 }));
    const neverTaken = (t: TraceJob) => t.stuck === true || poolForJobTags(this.config, t.tags) === undefined;
    this.pipelineIds = pipelineIds(trace);
    this.pipelines = new PipelineProcess(this, trace, this.pipelineIds, opts.rng.fork('gitlab'), neverTaken);
    // Jobs that wait for a stuck one never run: counted with the stuck ones.
    this.routable = trace.filter((t, i) => !neverTaken(t) && !this.pipelines.blocked.has(i)).length;
    this.stuck = trace.filter((t, i) => t.stuck || this.pipelines.blocked.has(i)).length;
    this.unroutable = trace.length - this.routable - this.stuck;
    trace.forEach((t, i) => {
      if (!this.pipelines.has(i)) this.queue.push(t.at, () => this.arrive(t, i, t.at));
    });
    this.pipelines.start(trace, opts.cancels);
    trace.forEach((t, i) => {
      if (!this.pipelines.has(i)) return;
      const list = this.pipelineJobs.get(t.pipeline!);
      if (list) list.push(i);
      else {
        this.pipelineJobs.set(t.pipeline!, [i]);
        this.pipelinesOf.set(t.project, [...(this.pipelinesOf.get(t.project) ?? []), t.pipeline!]);
      }
    });
    const every = opts.sampleEveryMs ?? MINUTE;
    const sample = () => {
      this.takeSample();
      this.queue.push(this.now + every, sample);
    };
    this.queue.push(Math.ceil(start / every) * every, sample);
  }

  // ---- time ----------------------------------------------------------------------------------

  /** Runs events until `until` (epoch ms) or until `done()` holds after an event. */
  /** Runs events up to `until` (the clock then reads `until`), or until `done()` holds after an event. */
  async runUntil(until: number, done: () => boolean = () => false): Promise<void> {
    for (;;) {
      const e = this.queue.peek();
      if (!e || e.at > until) break;
      this.queue.pop();
      this.now = e.at;
      const r = e.run();
      if (r) await r;
      if (done()) return;
    }
    if (until > this.now && Number.isFinite(until)) this.now = until;
  }

  at(t: number, run: () => void | Promise<void>): void {
    this.queue.push(Math.max(t, this.now), run);
  }

  // ---- jobs (GitLab) -------------------------------------------------------------------------

  private arrive(trace: TraceJob, traceIndex: number, at: number): void {
    if (this.outcomes[traceIndex].end !== undefined) return; // canceled while its retry was on the way
    const pool = poolForJobTags(this.config, trace.tags)?.name;
    const first = this.createdIds.get(traceIndex);
    this.createdIds.delete(traceIndex);
    const job: SimJob = { id: first ?? this.nextJobId++, trace, traceIndex, pool, state: 'pending', pendingSince: at };
    this.jobs.set(job.id, job);
    this.current.set(traceIndex, job);
    this.setActive(job, true);
    this.outcomes[traceIndex].attempts++;
    this.emit(job, 'pending');
    if (pool && !trace.stuck) {
      this.pending.get(pool)!.push(job);
      this.dispatch(pool);
    } else this.neverTaken.push(job);
    this.onChange();
  }

  private setActive(job: SimJob, on: boolean): void {
    const project = job.trace.project;
    let set = this.active.get(project);
    if (on) {
      if (!set) this.active.set(project, (set = new Set()));
      set.add(job);
    } else if (set) {
      set.delete(job);
      if (set.size === 0) this.active.delete(project);
    }
  }

  private emit(job: SimJob, status: string): void {
    const duration = job.startedAt !== undefined && status !== 'running' ? (this.now - job.startedAt) / 1000 : undefined;
    this.hook(job.id, job.traceIndex, status, duration);
  }

  /** A Job Hook: what GitLab's payload says that the controller reads (build_name, build_stage, pipeline_id, build_duration). */
  private hook(jobId: number, traceIndex: number, status: string, duration?: number): void {
    const t = this.trace[traceIndex];
    this.stats.webhooksSent++;
    const e: JobEvent = { jobId, projectId: t.project, status, receivedAt: this.now, deliveryId: `${jobId}-${status}` };
    if (t.pipeline !== undefined) e.pipelineId = this.pipelineIds.get(t.pipeline);
    const name = t.name ?? (this.pipelines.has(traceIndex) ? t.id : undefined);
    if (name !== undefined) e.name = name;
    const stage = this.pipelines.stageOf(traceIndex);
    if (stage !== undefined) e.stage = stage;
    if (duration !== undefined) e.duration = Math.round(duration * 10) / 10;
    this.onJobEvent(e);
  }

  // ---- pipelines (PipelineWorld: pipelines.ts calls these) -----------------------------------

  createJob(traceIndex: number): void {
    const id = this.nextJobId++;
    this.createdIds.set(traceIndex, id);
    this.hook(id, traceIndex, 'created');
  }

  enqueue(traceIndex: number): void {
    this.arrive(this.trace[traceIndex], traceIndex, this.now);
  }

  settle(traceIndex: number, end: 'skipped' | 'manual' | 'canceled'): void {
    this.resolve(traceIndex, end);
    const id = this.createdIds.get(traceIndex);
    if (end === 'canceled' && id !== undefined) this.hook(id, traceIndex, 'canceled');
  }

  /** Cancels a trace job's current attempt: pending (out of the queue), acquired by a booting machine, or running (the worker stops it). */
  cancelActive(traceIndex: number): boolean {
    const job = this.current.get(traceIndex);
    if (!job || (job.state !== 'pending' && job.state !== 'assigned' && job.state !== 'running')) return false;
    this.resolve(traceIndex, 'canceled');
    if (job.state === 'pending') {
      const q = job.pool ? this.pending.get(job.pool) : undefined;
      const k = q?.indexOf(job) ?? -1;
      if (q && k >= 0) q.splice(k, 1);
      else this.neverTaken.splice(this.neverTaken.indexOf(job), 1);
    } else {
      this.running--;
      const w = [...this.workers.values()].find((x) => x.job === job || x.boundJob === job);
      if (w?.boundJob === job) w.boundJob = undefined;
      else if (w) {
        if (job.startedAt !== undefined) this.stats.jobSeconds += (this.now - job.startedAt) / 1000;
        w.job = undefined;
        w.builds++;
        this.becomeIdle(w);
        this.dispatchAll();
      }
    }
    job.state = 'failed';
    this.setActive(job, false);
    this.emit(job, 'canceled');
    this.onChange();
    return true;
  }

  /** Records how a trace job ended (once); the run is over when every job a runner may take has. */
  private resolve(traceIndex: number, end: JobEnd): void {
    const o = this.outcomes[traceIndex];
    if (o.end !== undefined) return;
    o.end = end;
    const t = this.trace[traceIndex];
    if (!t.stuck && !this.pipelines.blocked.has(traceIndex) && poolForJobTags(this.config, t.tags) !== undefined) this.finishedCount++;
  }

  /**
   * The active pipelines of a project with their job graphs, as lib/gitlab/pipeline-graphql.ts
   * reads them: the newest PIPELINES_PER_SCOPE running and pending ones, 100 jobs each.
   */
  gitlabPipelines(projectId: number): PipelineListing {
    const graphs: PipelineListing['pipelines'] = [];
    for (const key of this.pipelinesOf.get(projectId) ?? []) {
      const st = this.pipelines.status(key);
      if (!st.active) continue;
      const jobs: PipelineListing['pipelines'][number]['jobs'] = [];
      let anyStarted = false;
      const names = new Map<string, string>(this.pipelineJobs.get(key)!.map((k) => [this.trace[k].id, this.trace[k].name ?? this.trace[k].id]));
      for (const i of this.pipelineJobs.get(key)!) {
        const t = this.trace[i];
        const attempt = this.current.get(i);
        const id = attempt?.id ?? this.createdIds.get(i);
        if (id === undefined) continue;
        const status = attempt ? (attempt.state === 'assigned' ? 'running' : attempt.state) : this.pipelines.idleStatus(i);
        if (status !== 'pending' && status !== 'created') anyStarted = true;
        jobs.push({ id, name: t.name ?? t.id, stage: this.pipelines.stageOf(i)!, status, tags: [...t.tags], manual: t.when === 'manual', ...(t.needs ? { needs: t.needs.map((n) => names.get(n)!) } : {}) });
      }
      graphs.push({ id: this.pipelineIds.get(key)!, projectId, status: anyStarted ? 'running' : 'pending', stages: this.pipelines.stagesOf(key), jobs: jobs.slice(0, 100), complete: jobs.length <= 100 });
    }
    graphs.sort((a, b) => b.id - a.id);
    const running = graphs.filter((g) => g.status === 'running');
    const pending = graphs.filter((g) => g.status !== 'running');
    return { pipelines: [...running.slice(0, PIPELINES_PER_SCOPE), ...pending.slice(0, PIPELINES_PER_SCOPE)], complete: running.length <= PIPELINES_PER_SCOPE && pending.length <= PIPELINES_PER_SCOPE };
  }

  pendingJobs(pool: string): readonly SimJob[] {
    return this.pending.get(pool) ?? [];
  }

  runningJobs(): number {
    return this.running;
  }

  /** GitLab's API view of a job: always the truth. A job the baseline's manager acquired is running for GitLab. */
  apiJob(j: SimJob): ApiJob {
    const status = j.state === 'assigned' ? 'running' : j.state;
    const job: ApiJob = { id: j.id, projectId: j.trace.project, status, tags: [...j.trace.tags] };
    if (j.state === 'pending') job.queuedAt = j.pendingSince;
    return job;
  }

  /**
   * GitLab's active-jobs listing of a project as the GraphQL query sees it (lib/gitlab/graphql.ts):
   * the newest PIPELINES_PER_SCOPE pipelines with a running job, the newest with only pending ones,
   * at most 100 jobs each; `complete` when nothing was cut. Jobs without a pipeline in the trace
   * are each their own pipeline.
   */
  gitlabActiveJobs(projectId: number): ProjectActivity {
    const byPipeline = new Map<string, SimJob[]>();
    for (const j of this.active.get(projectId) ?? []) {
      const key = j.trace.pipeline ?? `job-${j.traceIndex}`;
      byPipeline.set(key, [...(byPipeline.get(key) ?? []), j]);
    }
    const newest = (list: SimJob[][]) => list.sort((a, b) => Math.max(...b.map((j) => j.id)) - Math.max(...a.map((j) => j.id)));
    const running = newest([...byPipeline.values()].filter((l) => l.some((j) => j.state !== 'pending')));
    const pending = newest([...byPipeline.values()].filter((l) => l.every((j) => j.state === 'pending')));
    let complete = running.length <= PIPELINES_PER_SCOPE && pending.length <= PIPELINES_PER_SCOPE;
    const jobs: ApiJob[] = [];
    for (const list of [...running.slice(0, PIPELINES_PER_SCOPE), ...pending.slice(0, PIPELINES_PER_SCOPE)]) {
      if (list.length > 100) complete = false;
      for (const j of list.sort((a, b) => b.id - a.id).slice(0, 100)) jobs.push(this.apiJob(j));
    }
    return { jobs, complete };
  }

  /** One project's active jobs, newest first, `perPage` at a time (Project.jobs / the REST listing). */
  gitlabActiveJobsPage(projectId: number, page: number, perPage = 100): Page<ApiJob> {
    const all = [...(this.active.get(projectId) ?? [])].sort((a, b) => b.id - a.id);
    const items = all.slice(page * perPage, (page + 1) * perPage).map((j) => this.apiJob(j));
    return { items, ...(all.length > (page + 1) * perPage ? { next: String(page + 1) } : {}) };
  }

  /** Takes a pending job for a machine the baseline creates for it (docker+machine with IdleCount 0). */
  takePending(pool: string): SimJob | undefined {
    const q = this.pending.get(pool)!;
    const job = q.shift();
    if (!job) return undefined;
    job.state = 'assigned';
    this.running++;
    this.emit(job, 'running');
    return job;
  }

  private canRunAnother(): boolean {
    return this.maxRunning <= 0 || this.running < this.maxRunning;
  }

  /** Idle workers of the pool take its oldest pending jobs, longest-idle worker first. */
  dispatch(poolName: string): void {
    const q = this.pending.get(poolName);
    if (!q || q.length === 0) return;
    const idle = [...this.workers.values()]
      // A runner takes jobs until its worker sees the retirement request (the race the fence is for).
      .filter((w) => w.pool.name === poolName && w.state === 'idle' && !w.interrupted && !w.draining && !w.runnerStopped && (w.selfExit || w.retireRequestedAt === undefined))
      .sort((a, b) => (a.idleSince ?? 0) - (b.idleSince ?? 0) || (a.id < b.id ? -1 : 1));
    for (const w of idle) {
      if (q.length === 0 || !this.canRunAnother()) break;
      const job = q.shift()!;
      this.running++;
      this.start(w, job);
    }
  }

  private start(w: SimWorker, job: SimJob): void {
    const outcome = this.outcomes[job.traceIndex];
    outcome.wait += (this.now - job.pendingSince) / 1000;
    outcome.started = true;
    job.startedAt = this.now;
    const wasAssigned = job.state === 'assigned';
    job.state = 'running';
    job.workerId = w.id;
    w.state = 'busy';
    w.job = job;
    w.idleSince = undefined;
    if (!wasAssigned) this.emit(job, 'running');
    this.report(w);
    const epoch = ++w.idleEpoch;
    // A base image's first job pulls the helper and job image first (boot.ts); a pre-built image has them.
    const pull = w.firstPull;
    w.firstPull = 0;
    this.at(this.now + job.trace.duration * 1000 + pull * 1000, () => {
      if (w.job === job && w.idleEpoch === epoch) this.finish(w, job);
    });
  }

  private finish(w: SimWorker, job: SimJob): void {
    const end = job.trace.fails ? 'failed' : 'success';
    job.state = end;
    this.setActive(job, false);
    this.running--;
    this.outcomes[job.traceIndex].finished = true;
    this.stats.jobSeconds += (this.now - job.startedAt!) / 1000;
    this.resolve(job.traceIndex, end);
    this.emit(job, end);
    this.pipelines.ended(job.traceIndex, end);
    w.job = undefined;
    w.builds++;
    this.becomeIdle(w);
    this.dispatchAll();
    this.onChange();
  }

  private dispatchAll(): void {
    for (const p of this.config.pools) this.dispatch(p.name);
  }

  /** A job lost with its worker: GitLab fails it (runner_system_failure) and its retry is pending. */
  private failAndRetry(job: SimJob): void {
    if (job.startedAt !== undefined) this.stats.jobSeconds += (this.now - job.startedAt) / 1000;
    job.state = 'failed';
    this.setActive(job, false);
    this.running--;
    this.emit(job, 'failed');
    this.queue.push(this.now, () => this.arrive(job.trace, job.traceIndex, this.now));
  }

  // ---- workers (EC2 + run-single) ------------------------------------------------------------

  launchWorker(pool: Pool, instanceType: string, subnet: string, market: 'spot' | 'on-demand', selfExit: boolean, passId?: string): SimWorker {
    const image: WorkerImage = this.baseImageOnly ? 'base' : pool.worker.image;
    let boot: number;
    let firstPull = 0;
    if (this.cloud.bootSeconds) {
      const [lo, hi] = this.cloud.bootSeconds;
      boot = (lo + this.bootRng.next() * (hi - lo)) * 1000;
    } else {
      boot = sampleBoot(image, this.bootRng) * 1000;
      firstPull = sampleFirstPull(image, this.bootRng);
    }
    if (selfExit && this.cloud.slowBootRate > 0 && this.faultRng.chance(this.cloud.slowBootRate)) {
      boot = pool.worker.bootTimeout * 1000 * (0.8 + 0.8 * this.faultRng.next());
      this.stats.slowBoots++;
    }
    const w: SimWorker = {
      id: `i-${(this.nextWorker++).toString(16).padStart(17, '0')}`,
      pool, instanceType, subnet, zone: zoneOf(pool, subnet), market,
      launchedAt: this.now, readyAt: this.now + Math.round(boot), state: 'booting', builds: 0, selfExit, idleEpoch: 0, passId, seq: 0, recorded: {}, image, firstPull,
    };
    this.workers.set(w.id, w);
    this.stats.launches++;
    const alive = this.alive();
    if (alive > this.stats.peakWorkers) this.stats.peakWorkers = alive;
    if (pool.limit > 0 && this.poolTotal(pool.name) > pool.limit) this.stats.limitViolations++;
    this.at(w.readyAt, () => this.ready(w));
    if (market === 'spot' && this.cloud.interruptionsPerHour > 0) {
      const inMs = this.interruptRng.exponential(3_600_000 / this.cloud.interruptionsPerHour);
      this.at(this.now + Math.round(inMs), () => this.interrupt(w));
    }
    if (selfExit) {
      // The worker's own lifetime, counted from launch (lib/worker/script.ts): drain, and abort a job still running jobTimeout later.
      this.at(w.launchedAt + pool.worker.maxLifetime * 1000, () => this.notice(w));
      this.at(w.launchedAt + (pool.worker.maxLifetime + pool.jobTimeout) * 1000, () => {
        if (w.state === 'busy' && w.job) {
          this.failAndRetry(w.job);
          w.job = undefined;
          w.state = 'idle';
          this.stopRunner(w);
        }
      });
      if (this.cloud.impairmentsPerHour > 0) {
        const inMs = this.faultRng.exponential(3_600_000 / this.cloud.impairmentsPerHour);
        this.at(this.now + Math.round(inMs), () => {
          if (w.state !== 'gone' && w.state !== 'leaving') {
            w.impaired = true;
            this.stats.impairments++;
          }
        });
      }
    }
    return w;
  }

  /**
   * The worker sends its current state to the report queue (lib/worker/script.ts `report`):
   * stopped once its runner is gone, draining while leaving, else busy or idle.
   */
  private report(w: SimWorker, mustArrive = false): void {
    if (!w.selfExit || w.readyAtActual === undefined && !w.runnerStopped) return;
    const state: ReportedState = w.runnerStopped ? 'stopped' : w.draining ? 'draining' : w.state === 'busy' ? 'busy' : 'idle';
    w.seq++;
    this.stats.reportsSent++;
    this.onReport(
      {
        id: `${w.id}-${w.seq}`,
        instanceId: w.id,
        seq: w.seq,
        state,
        builds: w.builds,
        at: this.now,
        ...(w.readyAtActual !== undefined ? { readyAt: w.readyAtActual } : {}),
        ...(state === 'idle' && w.idleSince !== undefined ? { idleSince: w.idleSince } : {}),
        sender: `${SIM_WORKER_ROLE}:${w.id}`,
        sentAt: this.now,
        receiveCount: 1,
      },
      mustArrive,
    );
  }

  private heartbeat(w: SimWorker): void {
    if (w.state === 'gone' || w.runnerStopped) return;
    this.report(w);
    this.at(this.now + REPORTING.heartbeatSeconds * 1000, () => this.heartbeat(w));
  }

  alive(): number {
    return this.workers.size;
  }

  /** Workers of a pool in every state but gone: docker+machine's Total. */
  poolTotal(pool: string): number {
    let n = 0;
    for (const w of this.workers.values()) if (w.pool.name === pool && w.state !== 'gone') n++;
    return n;
  }

  private ready(w: SimWorker): void {
    if (w.state !== 'booting') return;
    if (w.selfExit) {
      // lib/worker/script.ts check_may_start: never ready past launched-at + bootTimeout, nor once asked to leave.
      if (this.now >= w.launchedAt + w.pool.worker.bootTimeout * 1000 || w.retireRequestedAt !== undefined || w.interrupted) {
        this.stopRunner(w);
        return;
      }
      w.readyAtActual = this.now;
      this.at(this.now + REPORTING.heartbeatSeconds * 1000, () => this.heartbeat(w));
    } else if (w.retireRequestedAt !== undefined || w.interrupted) {
      this.leave(w);
      return;
    }
    this.stats.boots.push({ pool: w.pool.name, image: w.image, seconds: (this.now - w.launchedAt) / 1000 });
    if (w.boundJob) {
      const job = w.boundJob;
      w.boundJob = undefined;
      this.start(w, job);
      return;
    }
    this.becomeIdle(w, true);
    this.dispatch(w.pool.name);
    this.onChange();
  }

  private becomeIdle(w: SimWorker, ready = false): void {
    if (w.draining || w.interrupted || (w.selfExit && w.pool.MaxBuilds > 0 && w.builds >= w.pool.MaxBuilds) || (!w.selfExit && w.retireRequestedAt !== undefined)) {
      if (w.selfExit) this.stopRunner(w);
      else this.leave(w);
      return;
    }
    w.state = 'idle';
    w.idleSince = this.now;
    this.report(w, ready);
    const epoch = ++w.idleEpoch;
    const timeout = w.selfExit ? workerWaitTimeout(w.pool) : 0;
    if (timeout > 0)
      this.at(this.now + timeout * 1000, () => {
        if (w.state === 'idle' && w.idleEpoch === epoch) {
          this.stopRunner(w);
          this.onChange();
        }
      });
  }

  /** The worker sees it must leave (retirement request, lifetime): its runner takes no new job and finishes the current one. */
  private notice(w: SimWorker): void {
    if (w.state === 'gone' || w.state === 'leaving' || w.draining || w.runnerStopped) return;
    w.draining = true;
    if (w.state === 'busy' && w.retireRequestedAt !== undefined) this.stats.retiredWhileBusy++;
    this.report(w);
    if (w.state === 'idle') this.stopRunner(w);
  }

  /** Its runner is gone for good: it says so, and powers off (which rarely fails). */
  private stopRunner(w: SimWorker): void {
    if (!w.selfExit) return this.leave(w);
    if (w.runnerStopped) return;
    w.runnerStopped = true;
    w.state = 'idle';
    w.idleEpoch++;
    if (w.readyAtActual !== undefined || w.seq > 0) this.report(w);
    if (this.cloud.shutdownFailRate > 0 && this.faultRng.chance(this.cloud.shutdownFailRate)) {
      // Still running, nothing on it, until terminated.
      w.stuck = true;
      w.state = 'leaving';
      return;
    }
    this.leave(w);
  }

  /** The worker shuts itself down (or is being terminated): gone after shutdownSeconds. */
  leave(w: SimWorker): void {
    if (w.state === 'leaving' || w.state === 'gone') return;
    if (w.job) {
      this.failAndRetry(w.job);
      w.job = undefined;
    }
    if (w.boundJob) {
      // The job goes back to GitLab's queue, as when docker+machine fails to create a machine.
      const job = w.boundJob;
      w.boundJob = undefined;
      job.state = 'pending';
      this.running--;
      this.pending.get(job.pool!)!.unshift(job);
    }
    w.state = 'leaving';
    w.idleEpoch++;
    this.at(this.now + this.cloud.shutdownSeconds * 1000, () => this.gone(w));
  }

  gone(w: SimWorker): void {
    if (w.state === 'gone') return;
    w.state = 'gone';
    w.goneAt = this.now;
    this.bill(w, this.now);
    // Only live instances stay in the map: discovery and dispatch stay proportional to the fleet.
    this.workers.delete(w.id);
    this.onChange();
  }

  private bill(w: SimWorker, end: number): void {
    const seconds = Math.max(60, (end - w.launchedAt) / 1000);
    const price = this.prices[w.instanceType];
    this.stats.instanceSeconds += seconds;
    this.stats.byMarket[w.market] += seconds;
    this.stats.cost += (seconds / 3600) * (w.market === 'spot' ? price.spot : price.onDemand);
    this.stats.onDemandCostOfSameHours += (seconds / 3600) * price.onDemand;
  }

  /** Ends the run: instances still alive are billed up to now. */
  close(): void {
    for (const w of this.workers.values()) if (w.state !== 'gone') this.bill(w, this.now);
  }

  requestRetirement(w: SimWorker): void {
    if (w.state === 'leaving' || w.state === 'gone' || w.retireRequestedAt !== undefined) return;
    w.retireRequestedAt = this.now;
    if (!w.selfExit) {
      if (w.state === 'idle') {
        w.idleEpoch++;
        this.at(this.now + this.cloud.retirementNoticeSeconds * 1000, () => {
          if (w.state === 'idle') {
            this.leave(w);
            this.onChange();
          }
        });
      }
      return;
    }
    // The request is a tag the worker polls: until it sees it, its runner may still take a job.
    this.at(this.now + this.cloud.retirementNoticeSeconds * 1000, () => {
      this.notice(w);
      this.onChange();
    });
  }

  terminate(w: SimWorker, kind?: TerminationKind): void {
    if (w.state === 'gone') return;
    if (kind) this.stats.terminationsByKind[kind] = (this.stats.terminationsByKind[kind] ?? 0) + 1;
    if (w.stuck) {
      w.stuck = false;
      this.at(this.now + this.cloud.shutdownSeconds * 1000, () => this.gone(w));
      return;
    }
    if (w.state === 'leaving') return;
    if (w.state === 'busy') this.stats.busyTerminations++;
    this.leave(w);
    this.dispatchAll();
  }

  /** The spot interruption warning; AWS reclaims the instance INTERRUPTION_NOTICE_MS later. */
  interrupt(w: SimWorker): void {
    if (w.state === 'leaving' || w.state === 'gone') {
      if (w.stuck) this.terminate(w); // AWS reclaims it anyway
      return;
    }
    w.interrupted = true;
    w.interruptedAt = this.now;
    this.stats.interruptions++;
    if (w.state === 'idle') w.idleEpoch++;
    if (w.selfExit && !w.runnerStopped) {
      w.draining = true;
      this.report(w);
    }
    this.at(this.now + INTERRUPTION_NOTICE_MS, () => {
      if (w.state === 'gone' || w.state === 'leaving') return;
      if (w.job) this.stats.jobsHitByInterruptions++;
      if (w.job) this.outcomes[w.job.traceIndex].hitByInterruption++;
      this.leave(w);
      this.dispatchAll();
      this.onChange();
    });
    this.onInterruption(w);
  }

  /**
   * What EC2 shows and what the controller recorded from the worker's reports: the view the
   * controller's fleet adapter builds (never the worker's truth).
   */
  view(w: SimWorker): FleetWorker {
    const v: FleetWorker = {
      id: w.id,
      pool: w.pool.name,
      state: 'booting',
      launchedAt: w.launchedAt,
      builds: w.recorded.builds ?? 0,
      instanceState: (w.state === 'leaving' && !w.stuck) || w.state === 'gone' ? 'shutting-down' : 'running',
      retireRequestedAt: w.retireRequestedAt,
      problem: w.interrupted ? 'interrupted' : w.impaired ? 'impaired' : undefined,
      instanceType: w.instanceType,
      zone: w.zone,
      market: w.market,
      subnet: w.subnet,
      passId: w.passId,
      interruptedAt: w.interruptedAt,
      interruptionKind: w.interruptedAt !== undefined ? 'interruption' : undefined,
    };
    if (w.launchedFor && w.passId) v.launchedFor = { launch: w.passId, ...w.launchedFor };
    if (w.recorded.readyAt !== undefined) v.readyAt = w.recorded.readyAt;
    if (w.recorded.reported) v.reported = w.recorded.reported;
    if (w.recorded.reported === 'idle') v.idleSince = w.recorded.idleSince ?? w.recorded.readyAt;
    if (w.recorded.reported === 'stopped') v.stoppedAt = w.recorded.stoppedAt;
    v.state = deriveState(v);
    return v;
  }

  /** The controller's CreateTags of reported state (lib/aws/ec2-fleet.ts recordWorkerState), onto the simulated instance. */
  record(w: SimWorker, tags: Readonly<Record<string, string>>): void {
    const t = (k: string) => (tags[k] !== undefined ? Date.parse(tags[k]) : undefined);
    if (tags[TAGS.ready] !== undefined) w.recorded.readyAt = t(TAGS.ready);
    if (tags[TAGS.state] !== undefined) w.recorded.reported = tags[TAGS.state] as ReportedState;
    if (tags[TAGS.idleSince] !== undefined) w.recorded.idleSince = t(TAGS.idleSince);
    if (tags[TAGS.stoppedAt] !== undefined) w.recorded.stoppedAt = t(TAGS.stoppedAt);
    if (tags[TAGS.builds] !== undefined) w.recorded.builds = Number(tags[TAGS.builds]);
  }

  // ---- observation ---------------------------------------------------------------------------

  private takeSample(): void {
    const s: Sample = { at: this.now, pending: 0, running: 0, booting: 0, idle: 0, busy: 0, leaving: 0 };
    for (const q of this.pending.values()) s.pending += q.length;
    for (const w of this.workers.values()) {
      if (w.state === 'gone') continue;
      if (w.boundJob) s.pending++;
      s[w.state]++;
    }
    s.running = s.busy;
    this.samples.push(s);
  }

  /** True when nothing is left to do: every trace job that matches a pool ended (ran, or will never run). */
  allDone(): boolean {
    return this.finishedCount >= this.routable;
  }
}

/** A subnet's zone in the simulation: one zone per subnet, named after its position in the list. */
export function zoneOf(pool: Pool, subnet: string): string {
  const i = pool.worker.subnets.indexOf(subnet);
  return `sim-zone-${String.fromCharCode(97 + (i >= 0 ? i % 26 : 25))}`;
}

// ---- spot capacity ---------------------------------------------------------------------------

/**
 * Availability of each instance type x subnet: outages start at `capacityOutagesPerDay` per day
 * (Poisson) and last an exponential time with mean `capacityOutageMinutes`. Each capacity pool has
 * its own random stream, so asking about one never shifts another's history.
 */
export class CapacityModel {
  private readonly pools = new Map<string, { rng: Rng; outages: [number, number][]; horizon: number }>();
  constructor(
    private readonly seed: number,
    private readonly opts: CloudOptions,
    private readonly start: number,
  ) {}

  available(instanceType: string, subnet: string, at: number): boolean {
    if (this.opts.capacityOutagesPerDay <= 0) return true;
    const key = `${instanceType}|${subnet}`;
    let p = this.pools.get(key);
    if (!p) {
      let h = this.seed >>> 0;
      for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193) >>> 0;
      p = { rng: new Rng(h), outages: [], horizon: this.start };
      this.pools.set(key, p);
    }
    const meanGap = 86_400_000 / this.opts.capacityOutagesPerDay;
    while (p.horizon <= at) {
      const begin = p.horizon + p.rng.exponential(meanGap);
      const end = begin + p.rng.exponential(this.opts.capacityOutageMinutes * MINUTE);
      p.outages.push([begin, end]);
      p.horizon = end;
    }
    return !p.outages.some(([b, e]) => at >= b && at < e);
  }
}

// ---- the Fleet port, for the real controller ------------------------------------------------

/**
 * lib/controller/ports.ts `Fleet` over the simulated world, for the real reconcile pass.
 * Launches behave like CreateFleet `instant` with price-capacity-optimized: instances go to the
 * cheapest overrides that have capacity, spread over them; overrides in an outage come back as
 * capacity errors (partial fulfilment is normal); what spot could not fill is launched on-demand
 * when the pool allows the fallback.
 */
export class SimFleet implements Fleet {
  calls = { discover: 0, launch: 0, requestRetirement: 0, terminate: 0, recordWorkerState: 0 };
  launchErrors = 0;
  private readonly seenTokens = new Map<string, LaunchResult>();
  private raceDue = false;
  constructor(
    private readonly world: World,
    private readonly capacity: CapacityModel,
    /** Picks how long each pass's race window lasts (0 .. cloud.raceWindowSeconds). */
    private readonly raceRng?: Rng,
  ) {}

  async discover(_now: number): Promise<WorkerView[]> {
    this.calls.discover++;
    const out: WorkerView[] = [];
    for (const w of this.world.workers.values()) if (w.state !== 'gone') out.push(this.world.view(w));
    this.raceDue = true;
    return out;
  }

  /**
   * The time between a pass's discovery and its first action (DescribeLaunchTemplateVersions,
   * CreateFleet... in AWS): the world runs on, jobs arrive and idle runners take them, so what the
   * pass acts on may no longer be what it saw. Passes never overlap (the autoscaler defers them).
   */
  private async race(): Promise<void> {
    if (!this.raceDue) return;
    this.raceDue = false;
    const window = this.world.cloud.raceWindowSeconds;
    if (!this.raceRng || window <= 0) return;
    await this.world.runUntil(this.world.now + Math.round(this.raceRng.next() * window * 1000));
  }

  async launch(req: LaunchRequest): Promise<LaunchResult> {
    await this.race();
    this.calls.launch++;
    // ClientToken: a retried CreateFleet returns the first call's result and launches nothing.
    const seen = this.seenTokens.get(req.clientToken);
    if (seen) return seen;
    const { pool } = req;
    const launched: WorkerView[] = [];
    const errors: LaunchError[] = [];
    const prices = this.world.prices;
    const avoided = (c: CapacityPool, market: 'spot' | 'on-demand') =>
      req.avoid.some((a) => a.instanceType === c.instanceType && a.subnet === c.subnet && (a.market === undefined || a.market === market));
    let remaining = req.count;
    if (pool.worker.market === 'spot') {
      const candidates: CapacityPool[] = [];
      for (const instanceType of pool.worker.instanceTypes)
        for (const subnet of pool.worker.subnets) {
          const c = { instanceType, subnet };
          if (avoided(c, 'spot')) continue;
          const price = prices[instanceType];
          if (pool.worker.maxPrice !== undefined && price.spot > pool.worker.maxPrice) {
            errors.push({ class: 'capacity', code: 'SpotMaxPriceTooLow', message: `spot price ${price.spot} is above maxPrice ${pool.worker.maxPrice}`, instanceType, subnet, market: 'spot' });
            continue;
          }
          if (this.capacity.available(instanceType, subnet, this.world.now)) candidates.push(c);
          else errors.push({ class: 'capacity', code: 'InsufficientInstanceCapacity', message: `There is no Spot capacity available that matches your request (${instanceType} in ${subnet})`, instanceType, subnet, market: 'spot' });
        }
      candidates.sort((a, b) => prices[a.instanceType].spot - prices[b.instanceType].spot);
      for (let i = 0; remaining > 0 && candidates.length > 0; i++, remaining--) {
        const c = candidates[i % candidates.length];
        launched.push(this.world.view(this.tagged(this.world.launchWorker(pool, c.instanceType, c.subnet, 'spot', true, req.passId), req)));
      }
    }
    if (remaining > 0 && (pool.worker.market === 'on-demand' || pool.worker.onDemandFallback)) {
      // On-demand capacity is modelled as always there; cooled-down on-demand pools are still skipped.
      const overrides: CapacityPool[] = [];
      for (const instanceType of pool.worker.instanceTypes)
        for (const subnet of pool.worker.subnets) if (!avoided({ instanceType, subnet }, 'on-demand')) overrides.push({ instanceType, subnet });
      overrides.sort((a, b) => prices[a.instanceType].onDemand - prices[b.instanceType].onDemand);
      for (let i = 0; remaining > 0 && overrides.length > 0; i++, remaining--) {
        const c = overrides[i % overrides.length];
        launched.push(this.world.view(this.tagged(this.world.launchWorker(pool, c.instanceType, c.subnet, 'on-demand', true, req.passId), req)));
      }
    }
    this.launchErrors += errors.length;
    const result = { launched, errors };
    this.seenTokens.set(req.clientToken, result);
    this.world.onChange();
    return result;
  }

  /** The launch's tags that CreateFleet's TagSpecifications carry beyond the pass id (lib/aws/ec2-fleet.ts). */
  private tagged(w: SimWorker, req: LaunchRequest): SimWorker {
    if (req.forDemand !== undefined) w.launchedFor = { demand: req.forDemand, count: req.count };
    return w;
  }

  async requestRetirement(retirements: readonly Retirement[]): Promise<void> {
    await this.race();
    this.calls.requestRetirement++;
    for (const r of retirements) {
      const w = this.world.workers.get(r.id);
      if (w) this.world.requestRetirement(w);
    }
  }

  async terminate(terminations: readonly Termination[]): Promise<void> {
    await this.race();
    this.calls.terminate++;
    for (const t of terminations) {
      const w = this.world.workers.get(t.id);
      if (w) this.world.terminate(w, t.kind);
    }
  }

  async recordWorkerState(writes: readonly WorkerStateWrite[]): Promise<boolean[]> {
    await this.race();
    this.calls.recordWorkerState++;
    for (const write of writes)
      for (const id of write.ids) {
        const w = this.world.workers.get(id);
        if (w) this.world.record(w, write.tags);
      }
    return writes.map(() => true);
  }
}

/**
 * GitLab's API over the simulated world (lib/gitlab/api.ts), answering truthfully: listings repair
 * lost `pending` deliveries and show which known jobs ended (lost `running`/`success` ones). Each
 * call is one request, however many projects it covers, as with GraphQL (25 projects a request);
 * `failProjects` answer with an error for ever (a project the token may not read, a GitLab bug).
 */
export class SimGitLab implements GitLabApi, PipelineApi {
  readonly mode = 'simulated';
  readonly projectsPerRequest = PROJECTS_PER_REQUEST;
  readonly pipelineProjectsPerRequest = PIPELINE_PROJECTS_PER_REQUEST;
  requests = 0;
  /** Requests per epoch minute of the simulated clock. */
  readonly perMinute = new Map<number, number>();
  readonly failProjects = new Set<number>();
  constructor(private readonly world: World) {}

  private count(): void {
    this.requests++;
    const m = Math.floor(this.world.now / 60_000);
    this.perMinute.set(m, (this.perMinute.get(m) ?? 0) + 1);
  }

  /** The busiest minute's requests. */
  busiestMinute(): number {
    return Math.max(0, ...this.perMinute.values());
  }

  async activeJobs(projectIds: readonly number[]): Promise<Map<number, Outcome<ProjectActivity>>> {
    return this.batched(projectIds, this.projectsPerRequest, (id) => this.world.gitlabActiveJobs(id));
  }

  /** The active pipelines' graphs of up to PIPELINE_PROJECTS_PER_REQUEST projects: one request. */
  async activePipelines(projectIds: readonly number[]): Promise<Map<number, Outcome<PipelineListing>>> {
    return this.batched(projectIds, this.pipelineProjectsPerRequest, (id) => this.world.gitlabPipelines(id));
  }

  /** One batched request (GraphQL `projects(ids:)`): a failing project fails alone. */
  private batched<T>(projectIds: readonly number[], max: number, answer: (id: number) => T): Map<number, Outcome<T>> {
    if (projectIds.length > max) throw new Error(`at most ${max} projects per request (got ${projectIds.length})`);
    this.count();
    const out = new Map<number, Outcome<T>>();
    for (const id of projectIds) out.set(id, this.failProjects.has(id) ? { ok: false, error: `GitLab GraphQL, project ${id}: Internal server error`, answered: true } : { ok: true, value: answer(id) });
    return out;
  }

  async activeJobsPage(projectId: number, cursor?: string): Promise<Outcome<Page<ApiJob>>> {
    this.count();
    if (this.failProjects.has(projectId)) return { ok: false, error: `GitLab GraphQL, project ${projectId}: Internal server error`, answered: true };
    return { ok: true, value: this.world.gitlabActiveJobsPage(projectId, cursor ? Number(cursor) : 0) };
  }
}
