/**
 * What is coming: the controller's knowledge of pipelines in flight and what it has learnt, turned
 * into per-pool figures the planner sizes capacity with. Pure (no AWS, no HTTP): the reconcile pass
 * feeds it job events, pipeline graphs from the GitLab API and workers' ready reports; the planner
 * reads `PoolForecast`s.
 *
 *  - Pipelines: GitLab sends a `created` Job Hook for every job of a pipeline when the pipeline is
 *    created (facts.md), with the job's name, stage and pipeline; the GitLab API adds its tags,
 *    `needs` and whether it is manual (lib/gitlab/pipeline-api.ts). So the controller knows,
 *    minutes ahead, that stage 3 of pipeline P will need 8 workers of pool `general` when stage 2
 *    ends (`PipelineBook`).
 *  - Durations: learnt per project and job name from `build_duration` in the hooks of finished
 *    jobs (`Durations`): a job's stage ends when its slowest job does, so the stage after it becomes
 *    pending at a time the controller can estimate, and a busy worker is free at one too.
 *  - Whether a created job runs at all: manual jobs (from the API) do not, nor do the jobs of a
 *    canceled pipeline, nor on_success jobs after a failure; for the rest (on_failure jobs, rules)
 *    the share of created jobs of that name that became pending is learnt.
 *  - Boot times per pool, from the workers' ready reports (`BootTimes`).
 *  - Arrivals nobody forecast (first stages of new pipelines), per pool and hour of the day
 *    (`Arrivals`), for pools that size their idle capacity from a wait target (`targetWait`).
 *
 * What is learnt survives a cold start in one SSM parameter (`learned`, at most 4 KB), written
 * at most every LEARNED_WRITE_EVERY_MS: a compact, lossy table (the least recently used durations
 * are left out when it is full; facts.md: 4 KB parameters, ~3 PutParameter a second per account).
 * The pipelines in flight are not stored: after a cold start the controller learns them again
 * from the next hooks and the API, and plans as without a forecast meanwhile.
 */
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { poolForJobTags, type Config } from './config';
import type { GraphJob, PipelineGraph } from './gitlab/pipeline-api';
import type { PoolForecast } from './model';

export type { PoolForecast };

// ---- durations -------------------------------------------------------------------------------

/** GitLab names parallel jobs "rspec 3/8"; their shards share a duration. */
const PARALLEL_SUFFIX = /\s+\d+\/\d+$/;

/** Learnt durations are keyed by a 24-bit hash of the project and the job name (lossy on purpose: 3 bytes a key). */
export function durationKey(projectId: number, name: string): number {
  const text = `${projectId}\u0000${name.replace(PARALLEL_SUFFIX, '')}`;
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0;
  return (h ^ (h >>> 24)) & 0xffffff;
}

/** A project's jobs of any name: the fallback when a name was never seen. */
export const projectKey = (projectId: number) => durationKey(projectId, '\u0000*');

/** Durations are stored as log-quantized bytes: 5 % steps from 1 s to 1 day (a byte holds 233 steps). */
const STEP = Math.log(1.05);
const quantize = (seconds: number) => Math.max(0, Math.min(255, Math.round(Math.log(Math.max(1, seconds)) / STEP)));
const dequantize = (q: number) => Math.exp(q * STEP);

interface DurationEntry {
  /** Mean of log(seconds). */
  logMean: number;
  /** Samples seen (in memory; a stored entry starts at STORED_WEIGHT). */
  n: number;
  /** Share of created jobs of this name that became pending (0..1). */
  runs: number;
  /** Created jobs whose fate was seen. */
  runN: number;
  /** Epoch minutes it was last used or updated (least recently used are dropped first). */
  used: number;
}

const STORED_WEIGHT = 4;
/** Older samples fade: a job that got slower is followed within a few runs. */
const MIN_ALPHA = 0.25;
export const DEFAULT_RUN_SHARE = 0.95;

export class Durations {
  readonly entries = new Map<number, DurationEntry>();
  /** Per pool: the mean log duration of its jobs, for jobs of names and projects never seen. */
  private readonly poolMean = new Map<string, { logMean: number; n: number }>();
  changed = false;
  /** Bumped by every change: estimates cached against it stay valid until something is learnt. */
  version = 0;
  constructor(readonly maxEntries = 20_000) {}

  private entry(key: number, now: number): DurationEntry {
    let e = this.entries.get(key);
    if (!e) {
      e = { logMean: NaN, n: 0, runs: DEFAULT_RUN_SHARE, runN: 0, used: Math.floor(now / 60_000) };
      this.entries.set(key, e);
      if (this.entries.size > this.maxEntries) this.evict();
    }
    e.used = Math.floor(now / 60_000);
    return e;
  }

  private evict(): void {
    const oldest = [...this.entries].sort((a, b) => a[1].used - b[1].used).slice(0, Math.ceil(this.maxEntries / 10));
    for (const [k] of oldest) this.entries.delete(k);
  }

  /** A finished job ran `seconds` (build_duration). */
  observe(projectId: number, name: string, pool: string | undefined, seconds: number, now: number): void {
    if (!(seconds > 0) || !Number.isFinite(seconds)) return;
    const x = Math.log(seconds);
    for (const key of [durationKey(projectId, name), projectKey(projectId)]) {
      const e = this.entry(key, now);
      e.n++;
      const alpha = Math.max(MIN_ALPHA, 1 / e.n);
      e.logMean = Number.isNaN(e.logMean) ? x : e.logMean + alpha * (x - e.logMean);
    }
    if (pool) {
      const p = this.poolMean.get(pool) ?? { logMean: x, n: 0 };
      p.n++;
      p.logMean += Math.max(0.05, 1 / p.n) * (x - p.logMean);
      this.poolMean.set(pool, p);
    }
    this.changed = true;
    this.version++;
  }

  /** A created job became pending (true) or ended without running: skipped, manual (false). */
  observeRun(projectId: number, name: string, ran: boolean, now: number): void {
    const e = this.entry(durationKey(projectId, name), now);
    e.runN++;
    e.runs += Math.max(0.2, 1 / e.runN) * ((ran ? 1 : 0) - e.runs);
    this.changed = true;
    this.version++;
  }

  /** Expected seconds a job of this project and name runs: its own, its project's, its pool's, or DEFAULT_JOB_SECONDS. */
  estimate(projectId: number, name: string | undefined, pool?: string): number {
    for (const key of name !== undefined ? [durationKey(projectId, name), projectKey(projectId)] : [projectKey(projectId)]) {
      const e = this.entries.get(key);
      if (e && !Number.isNaN(e.logMean)) return Math.exp(e.logMean);
    }
    const p = pool !== undefined ? this.poolMean.get(pool) : undefined;
    return p ? Math.exp(p.logMean) : DEFAULT_JOB_SECONDS;
  }

  /** True when this job name's own duration is known (not a fallback). */
  known(projectId: number, name: string): boolean {
    const e = this.entries.get(durationKey(projectId, name));
    return e !== undefined && !Number.isNaN(e.logMean);
  }

  /** Share of created jobs of this name that run. */
  runShare(projectId: number, name: string): number {
    return this.entries.get(durationKey(projectId, name))?.runs ?? DEFAULT_RUN_SHARE;
  }
}

/** A job nothing is known about: five minutes (the sample week's median job is about four). */
export const DEFAULT_JOB_SECONDS = 300;

// ---- boot times --------------------------------------------------------------------------------

/**
 * Until a pool's workers have reported, its boot is assumed to take this long: EC2 pending to
 * running ~17 s (facts.md), cloud-init, docker and gitlab-runner (docs/worker.md, "Boot timeline").
 */
export const DEFAULT_BOOT_SECONDS = 90;
const BOOT_SAMPLES = 30;

export class BootTimes {
  private readonly samples = new Map<string, number[]>();
  /** Stored estimates, used until enough samples are seen. */
  readonly stored = new Map<string, number>();
  changed = false;

  /** A worker of `pool` reported ready `seconds` after its launch. */
  observe(pool: string, seconds: number): void {
    if (!(seconds > 0) || seconds > 3600) return;
    const list = this.samples.get(pool) ?? [];
    list.push(seconds);
    if (list.length > BOOT_SAMPLES) list.shift();
    this.samples.set(pool, list);
    this.changed = true;
  }

  /** The 75th percentile of the pool's recent boots: a launch made this long before a job is due is seldom late. */
  estimate(pool: string): number {
    const list = this.samples.get(pool);
    if (!list || list.length < 3) return this.stored.get(pool) ?? DEFAULT_BOOT_SECONDS;
    const sorted = [...list].sort((a, b) => a - b);
    return sorted[Math.min(sorted.length - 1, Math.floor(0.75 * sorted.length))];
  }

  pools(): string[] {
    return [...new Set([...this.samples.keys(), ...this.stored.keys()])].sort();
  }
}

// ---- arrivals nobody forecast (time of day) -----------------------------------------------------

/** Buckets: working days and weekends, 24 hours each, in the pool's time zone. */
const BUCKETS = 48;
const formatters = new Map<string, Intl.DateTimeFormat>();
function bucketOf(now: number, zone: string): number {
  let f = formatters.get(zone);
  if (!f) formatters.set(zone, (f = new Intl.DateTimeFormat('en-US', { timeZone: zone, hourCycle: 'h23', hour: '2-digit', weekday: 'short' })));
  const parts = f.formatToParts(new Date(now));
  const hour = Number(parts.find((p) => p.type === 'hour')?.value ?? 0) % 24;
  const day = parts.find((p) => p.type === 'weekday')?.value;
  return (day === 'Sat' || day === 'Sun' ? 24 : 0) + hour;
}

/**
 * Jobs that became pending without a forecast (the first stages of new pipelines, lone jobs), per
 * pool: an hourly rate per hour of a working day and of a weekend day, learnt across days (each
 * hour's count moves its bucket a third of the way), and the rate of the last quarter hour.
 */
export class Arrivals {
  readonly history = new Map<string, number[]>();
  private readonly current = new Map<string, { bucket: number; hour: number; count: number }>();
  private readonly recent = new Map<string, number[]>();
  changed = false;

  observe(pool: string, zone: string, now: number): void {
    this.roll(pool, zone, now);
    this.current.get(pool)!.count++;
    const list = this.recent.get(pool) ?? [];
    list.push(now);
    while (list.length && now - list[0] > RECENT_MS) list.shift();
    this.recent.set(pool, list);
  }

  /** Closes the pool's hour when a new one began: its count moves that hour's bucket. */
  roll(pool: string, zone: string, now: number): void {
    const hour = Math.floor(now / 3_600_000);
    const cur = this.current.get(pool);
    if (cur && cur.hour === hour) return;
    if (cur) {
      const h = this.history.get(pool) ?? new Array<number>(BUCKETS).fill(-1);
      h[cur.bucket] = h[cur.bucket] < 0 ? cur.count : h[cur.bucket] + (cur.count - h[cur.bucket]) / 3;
      this.history.set(pool, h);
      this.changed = true;
      // Hours without a single arrival count too (the pass that closes them may come much later).
      for (let k = cur.hour + 1; k < hour && k < cur.hour + BUCKETS; k++) {
        const b = bucketOf(k * 3_600_000 + 1_800_000, zone);
        h[b] = h[b] < 0 ? 0 : h[b] * (2 / 3);
      }
    }
    this.current.set(pool, { bucket: bucketOf(now, zone), hour, count: 0 });
  }

  /** Expected arrivals a second now: the larger of this hour's history (and the next's) and the last quarter hour's rate. */
  rate(pool: string, zone: string, now: number): number {
    this.roll(pool, zone, now);
    const h = this.history.get(pool);
    const b = bucketOf(now, zone);
    const next = bucketOf(now + 3_600_000, zone);
    const hist = h ? Math.max(h[b], h[next], 0) / 3600 : 0;
    const list = (this.recent.get(pool) ?? []).filter((t) => now - t <= RECENT_MS);
    return Math.max(hist, list.length / (RECENT_MS / 1000));
  }
}
const RECENT_MS = 15 * 60_000;

// ---- pipelines in flight -----------------------------------------------------------------------

type BookStatus = 'created' | 'pending' | 'running' | 'success' | 'failed' | 'notrun' | 'canceled';

interface BookJob {
  id: number;
  name?: string;
  stage?: string;
  status: BookStatus;
  /** When it reached its status (epoch ms). */
  at: number;
  startedAt?: number;
  /** From the API: its pool ('' when its tags match none), manual, needs (names), the stage's index. */
  pool?: string;
  manual?: boolean;
  needs?: string[];
  stageIndex?: number;
  allowFailure?: boolean;
  /** Its expected duration (ms) as last estimated, valid while Durations.version and its pool are unchanged. */
  est?: { version: number; pool: string | undefined; ms: number };
}

interface BookPipeline {
  id: number;
  projectId: number;
  firstSeen: number;
  lastNews: number;
  /** The API's graph was applied (tags, needs, manual known). */
  graph: boolean;
  /** Listings of its project that did not show it (it ended, or the project has too many active pipelines): asked twice, then not again. */
  missed: number;
  canceled: boolean;
  jobs: Map<number, BookJob>;
}

/** GitLab build_status -> the book's. */
function bookStatus(status: string): BookStatus | undefined {
  switch (status) {
    case 'created':
    case 'waiting_for_resource':
      return 'created';
    case 'pending':
      return 'pending';
    case 'preparing':
    case 'running':
    case 'waiting_for_callback':
    case 'canceling':
      return 'running';
    case 'success':
      return 'success';
    case 'failed':
      return 'failed';
    case 'canceled':
      return 'canceled';
    case 'skipped':
    case 'manual':
    case 'scheduled':
      return 'notrun';
    default:
      return undefined;
  }
}
const RANK: Record<BookStatus, number> = { created: 0, pending: 1, running: 2, success: 3, failed: 3, notrun: 3, canceled: 3 };
const ended = (s: BookStatus) => RANK[s] === 3;

/** A job hook as the book reads it (lib/controller/ports.ts JobEvent). */
export interface JobNews {
  jobId: number;
  projectId: number;
  pipelineId?: number;
  name?: string;
  stage?: string;
  status: string;
  at: number;
  duration?: number;
}

/** Pipelines are forgotten this long after their last news (a pipeline whose end was never seen). */
export const PIPELINE_TTL_MS = 6 * 3_600_000;
/** At most this many pipelines are followed (the oldest are forgotten first). */
export const MAX_PIPELINES = 5_000;
/** A created job whose dependencies all ended this long ago and that is not pending was skipped, or is manual. */
export const NOT_QUEUED_AFTER_MS = 120_000;
/** GitLab queues a job a moment after what it waits for ended (PipelineProcessWorker). */
export const PROCESSING_LAG_MS = 3_000;

export class PipelineBook {
  readonly pipelines = new Map<number, BookPipeline>();
  /** Job id -> pipeline id, for hooks of jobs whose event carries no pipeline. */
  private readonly jobPipeline = new Map<number, number>();

  /** When the job's pipeline was first heard of, if it is followed. */
  firstSeenOf(jobId: number, pipelineId?: number): number | undefined {
    const id = pipelineId ?? this.jobPipeline.get(jobId);
    return id === undefined ? undefined : this.pipelines.get(id)?.firstSeen;
  }

  /** Applies one hook. Returns the job's previous and new status when it changed. */
  observe(n: JobNews, durations: Durations, poolOf: (jobId: number) => string | undefined): void {
    const status = bookStatus(n.status);
    if (!status) return;
    const pipelineId = n.pipelineId ?? this.jobPipeline.get(n.jobId);
    if (pipelineId === undefined) {
      if ((status === 'success' || status === 'failed') && n.name && n.duration) durations.observe(n.projectId, n.name, poolOf(n.jobId), n.duration, n.at);
      return;
    }
    let p = this.pipelines.get(pipelineId);
    if (!p) {
      // A pipeline first heard of through a job that already ended teaches its duration, nothing more.
      if (ended(status) && status !== 'canceled') {
        if (n.name && n.duration && status !== 'notrun') durations.observe(n.projectId, n.name, poolOf(n.jobId), n.duration, n.at);
        return;
      }
      p = { id: pipelineId, projectId: n.projectId, firstSeen: n.at, lastNews: n.at, graph: false, missed: 0, canceled: false, jobs: new Map() };
      this.pipelines.set(pipelineId, p);
      if (this.pipelines.size > MAX_PIPELINES) this.forgetOldest();
    }
    p.lastNews = Math.max(p.lastNews, n.at);
    this.jobPipeline.set(n.jobId, pipelineId);
    let j = p.jobs.get(n.jobId);
    if (!j) p.jobs.set(n.jobId, (j = { id: n.jobId, status: 'created', at: n.at }));
    if (n.name !== undefined) j.name = n.name;
    if (n.stage !== undefined) j.stage = n.stage;
    if (RANK[status] < RANK[j.status] || (RANK[status] === RANK[j.status] && status === j.status)) return; // stale or repeated
    const before = j.status;
    j.status = status;
    j.at = n.at;
    if (status === 'running' && j.startedAt === undefined) j.startedAt = n.at;
    if (j.name !== undefined) {
      if (before === 'created' && (status === 'pending' || status === 'running')) durations.observeRun(p.projectId, j.name, true, n.at);
      if ((status === 'success' || status === 'failed') && n.duration) durations.observe(p.projectId, j.name, poolOf(n.jobId) ?? j.pool, n.duration, n.at);
    }
    // A created job canceled: its pipeline was canceled (a job alone is canceled only once it runs).
    if (status === 'canceled' && before === 'created') p.canceled = true;
  }

  /** What the API says: the graph (tags -> pool, needs, manual, stage order) and each job's status. */
  applyGraph(g: PipelineGraph, config: Config, durations: Durations, now: number): void {
    let p = this.pipelines.get(g.id);
    if (!p) {
      p = { id: g.id, projectId: g.projectId, firstSeen: now, lastNews: now, graph: false, missed: 0, canceled: false, jobs: new Map() };
      this.pipelines.set(g.id, p);
    }
    p.graph = true;
    p.lastNews = Math.max(p.lastNews, now);
    if (g.status === 'canceled' || g.status === 'canceling') p.canceled = true;
    const order = new Map(g.stages.map((s, i) => [s, i]));
    for (const gj of g.jobs) {
      this.jobPipeline.set(gj.id, g.id);
      let j = p.jobs.get(gj.id);
      if (!j) p.jobs.set(gj.id, (j = { id: gj.id, status: 'created', at: now }));
      applyGraphJob(j, gj, config, order);
      const status = bookStatus(gj.status);
      if (status && RANK[status] > RANK[j.status]) {
        if (j.status === 'created' && j.name !== undefined && status === 'notrun' && !gj.manual) durations.observeRun(p.projectId, j.name, false, now);
        j.status = status;
        j.at = now;
        if (status === 'running') j.startedAt ??= now;
      }
    }
  }

  /** Projects that have pipelines the API has not described yet, seen at least `afterMs` ago (so that one request covers a burst). */
  projectsToLearn(now: number, afterMs: number): number[] {
    const out = new Set<number>();
    for (const p of this.pipelines.values())
      if (!p.graph && !p.canceled && p.missed < 2 && now - p.firstSeen >= afterMs && [...p.jobs.values()].some((j) => !ended(j.status))) out.add(p.projectId);
    return [...out];
  }

  /** These projects were listed: their pipelines the listing did not show count a miss. */
  listed(projects: readonly number[]): void {
    const set = new Set(projects);
    for (const p of this.pipelines.values()) if (set.has(p.projectId) && !p.graph) p.missed++;
  }

  /** Forgets pipelines that ended (nothing created, pending or running) or have had no news for PIPELINE_TTL_MS. */
  expire(now: number): void {
    for (const [id, p] of this.pipelines) {
      const open = !p.canceled && [...p.jobs.values()].some((j) => !ended(j.status));
      if (!open || now - p.lastNews > PIPELINE_TTL_MS) this.forget(id);
    }
  }

  private forget(id: number): void {
    const p = this.pipelines.get(id);
    if (!p) return;
    for (const j of p.jobs.keys()) this.jobPipeline.delete(j);
    this.pipelines.delete(id);
  }

  private forgetOldest(): void {
    const oldest = [...this.pipelines.values()].sort((a, b) => a.lastNews - b.lastNews).slice(0, Math.ceil(MAX_PIPELINES / 10));
    for (const p of oldest) this.forget(p.id);
  }

  /** The running jobs the book knows, with their start, for `freeing`. */
  *running(): Generator<{ id: number; projectId: number; name?: string; startedAt: number; pool?: string }> {
    for (const p of this.pipelines.values())
      for (const j of p.jobs.values()) if (j.status === 'running' && j.startedAt !== undefined) yield { id: j.id, projectId: p.projectId, name: j.name, startedAt: j.startedAt, pool: j.pool };
  }

  get size(): number {
    return this.pipelines.size;
  }
}

function applyGraphJob(j: BookJob, gj: GraphJob, config: Config, order: Map<string, number>): void {
  j.name = gj.name;
  j.stage = gj.stage;
  j.stageIndex = order.get(gj.stage);
  j.pool = poolForJobTags(config, gj.tags)?.name ?? '';
  j.manual = gj.manual;
  j.needs = gj.needs;
  if (gj.allowFailure !== undefined) j.allowFailure = gj.allowFailure;
}

// ---- the forecast --------------------------------------------------------------------------------

/** The horizon is the boot time and this margin: a launch decided a little early is ready when the job is. */
export const HORIZON_MARGIN_SECONDS = 15;

export interface ForecastInput {
  config: Config;
  now: number;
  /** Pool of a pending or running job, as the controller routed it (state). */
  poolOfJob: (jobId: number) => string | undefined;
}

/** When each job of a pipeline is expected to end, and when each created job becomes pending (epoch ms), with its chance of running. */
interface Timing {
  end: number;
  pendingAt?: number;
  chance: number;
  failed: boolean;
}

/**
 * Per pool: how many jobs of the pipelines in flight are expected to become pending within the
 * boot time (plus a margin), and how many busy workers will be free before a worker launched now.
 * Created jobs that should have been queued long ago and were not are marked not run (skipped or
 * manual), and that is learnt.
 */
export function forecastPools(book: PipelineBook, durations: Durations, boots: BootTimes, input: ForecastInput): Record<string, PoolForecast> {
  const { config, now } = input;
  const out: Record<string, PoolForecast> = {};
  const single = config.pools.length === 1 ? config.pools[0].name : undefined;
  for (const pool of config.pools) {
    const boot = boots.estimate(pool.name);
    out[pool.name] = { expected: 0, freeing: 0, bootSeconds: boot, horizonSeconds: boot + HORIZON_MARGIN_SECONDS };
  }
  for (const p of book.pipelines.values()) {
    // Only jobs not yet queued are forecast: a pipeline whose jobs are all queued or done has none.
    if (p.canceled || !hasCreated(p)) continue;
    const timings = pipelineTimings(p, durations, now, (j) => j.pool ?? input.poolOfJob(j.id) ?? single);
    for (const [id, t] of timings) {
      const j = p.jobs.get(id)!;
      if (j.status !== 'created' || t.pendingAt === undefined) continue;
      if (t.pendingAt < now - NOT_QUEUED_AFTER_MS) {
        // Everything it waits for ended long ago and GitLab did not queue it: skipped, or manual.
        j.status = 'notrun';
        if (j.name !== undefined && !j.manual) durations.observeRun(p.projectId, j.name, false, now);
        continue;
      }
      const pool = j.pool ?? single;
      const f = pool !== undefined ? out[pool] : undefined;
      if (!f || t.chance <= 0) continue;
      if (t.pendingAt <= now + f.horizonSeconds * 1000) f.expected += t.chance;
    }
  }
  // Busy workers free within the boot time: their jobs' learnt durations say when.
  for (const r of book.running()) {
    const pool = input.poolOfJob(r.id) ?? r.pool ?? single;
    const f = pool !== undefined ? out[pool] : undefined;
    if (!f || r.name === undefined || !durations.known(r.projectId, r.name)) continue;
    const end = expectedEnd(r.startedAt, durations.estimate(r.projectId, r.name, pool) * 1000, now);
    if (end !== undefined && end <= now + f.bootSeconds * 1000) f.freeing++;
  }
  for (const pool of config.pools) {
    const f = out[pool.name];
    f.expected = Math.round(f.expected * 100) / 100;
    // A worker at its last build leaves after its job instead of taking another (MaxBuilds).
    if (pool.MaxBuilds > 0) f.freeing = Math.floor(f.freeing * (1 - 1 / pool.MaxBuilds));
  }
  return out;
}

function hasCreated(p: BookPipeline): boolean {
  for (const j of p.jobs.values()) if (j.status === 'created') return true;
  return false;
}

/**
 * When a running job is expected to end. A job past its typical duration (half of them are: the
 * typical one is the median) usually ends within a fraction of it more (run-to-run spread is tens
 * of percent); one past twice its typical duration says nothing about when it ends (undefined).
 */
export function expectedEnd(startedAt: number, typicalMs: number, now: number): number | undefined {
  const elapsed = now - startedAt;
  if (elapsed > 2 * typicalMs) return undefined;
  return Math.max(startedAt + typicalMs, now + Math.min(60_000, OVERRUN_SHARE * typicalMs));
}
const OVERRUN_SHARE = 0.2;

/**
 * Expected end of every job of a pipeline and when each created one becomes pending: a job waits
 * for the jobs it needs, or for every job of the earlier stages (GitLab's order; without the API,
 * stages are ordered by the ids GitLab gave their jobs, which it numbers in stage order).
 */
function pipelineTimings(p: BookPipeline, durations: Durations, now: number, poolOf: (j: BookJob) => string | undefined): Map<number, Timing> {
  const jobs = [...p.jobs.values()];
  let stageIndex: (j: BookJob) => number;
  if (p.graph) stageIndex = (j) => j.stageIndex ?? 0;
  else {
    const firstId = new Map<string, number>();
    for (const j of jobs) if (j.stage !== undefined) firstId.set(j.stage, Math.min(firstId.get(j.stage) ?? Infinity, j.id));
    const order = new Map([...firstId].sort((a, b) => a[1] - b[1]).map(([s], i) => [s, i]));
    stageIndex = (j) => (j.stage !== undefined ? (order.get(j.stage) ?? 0) : 0);
  }
  const byName = new Map<string, BookJob>();
  for (const j of jobs) if (j.name !== undefined) byName.set(j.name, j);
  const out = new Map<number, Timing>();
  const visiting = new Set<number>();
  // Jobs by stage, and what the stages before each one add up to (their last end, any failure).
  const stages = new Map<number, BookJob[]>();
  for (const j of jobs) {
    const si = stageIndex(j);
    const list = stages.get(si);
    if (list) list.push(j);
    else stages.set(si, [j]);
  }
  const order = [...stages.keys()].sort((a, b) => a - b);
  const before = new Map<number, { end: number; failed: boolean }>();
  const earlier = (si: number) => {
    let agg = before.get(si);
    if (agg) return agg;
    agg = { end: p.firstSeen, failed: false };
    for (const s of order) {
      if (s >= si) break;
      for (const d of stages.get(s)!) {
        const dt = timing(d);
        if (dt.end > agg.end) agg.end = dt.end;
        agg.failed ||= dt.failed;
      }
    }
    before.set(si, agg);
    return agg;
  };
  const dur = (j: BookJob) => {
    const pool = poolOf(j);
    if (j.est?.version !== durations.version || j.est.pool !== pool) j.est = { version: durations.version, pool, ms: durations.estimate(p.projectId, j.name, pool) * 1000 };
    return j.est.ms;
  };
  const timing = (j: BookJob): Timing => {
    const known = out.get(j.id);
    if (known) return known;
    if (visiting.has(j.id)) return { end: now, chance: 0, failed: false }; // a cycle GitLab would refuse
    visiting.add(j.id);
    let t: Timing;
    switch (j.status) {
      case 'success':
      case 'notrun':
        t = { end: Math.min(j.at, now), chance: 0, failed: false };
        break;
      case 'failed':
        t = { end: Math.min(j.at, now), chance: 0, failed: j.allowFailure !== true };
        break;
      case 'canceled':
        t = { end: Math.min(j.at, now), chance: 0, failed: true };
        break;
      case 'running':
        t = { end: expectedEnd(j.startedAt ?? j.at, dur(j), now) ?? now + Math.min(60_000, dur(j)), chance: 0, failed: false };
        break;
      case 'pending':
        t = { end: now + dur(j), chance: 0, failed: false };
        break;
      default: {
        // created: pending once what it waits for has ended.
        let ready = p.firstSeen;
        let failed = false;
        let blocked = false;
        if (j.needs === undefined) ({ end: ready, failed } = earlier(stageIndex(j)));
        else
          for (const n of j.needs) {
            const d = byName.get(n);
            if (!d) continue;
            const dt = timing(d);
            ready = Math.max(ready, dt.end);
            failed ||= dt.failed;
            // A job that needs a manual job waits for someone to play it.
            if (d.manual || d.status === 'notrun') blocked = true;
          }
        const pendingAt = ready + PROCESSING_LAG_MS;
        const share = j.name !== undefined ? durations.runShare(p.projectId, j.name) : DEFAULT_RUN_SHARE;
        // After a failure only on_failure jobs run, and the API does not say which those are: none is counted.
        const chance = j.manual || failed || blocked ? 0 : share;
        // A job that does not run ends (for its dependants) when it would have been queued.
        t = { end: chance > 0 ? pendingAt + dur(j) : pendingAt, pendingAt, chance, failed: false };
      }
    }
    visiting.delete(j.id);
    out.set(j.id, t);
    return t;
  };
  // The created jobs, and (through them) what they wait for: nothing else is needed.
  for (const j of jobs) if (j.status === 'created') timing(j);
  return out;
}

// ---- what is kept between passes, and in SSM -----------------------------------------------------

/** A pending job whose pipeline was first heard of this recently is a first stage: nobody could forecast it. */
const UNFORECAST_WINDOW_MS = 60_000;
/** The forecast asks the API for a new pipeline's graph once it is this old, so that one request covers a burst. */
export const LEARN_AFTER_MS = 5_000;

/** The learnt table is written at most this often (when it changed). */
export const LEARNED_WRITE_EVERY_MS = 10 * 60_000;
const LEARNED_FORMAT = 1;
const MAX_LEARNED_CHARS = 4000;

/**
 * Everything the forecast keeps in a container between passes (the reconcile Lambda keeps one per
 * container, the simulation one per run): the pipelines in flight, learnt durations, boot times
 * and arrival history.
 */
export class ForecastMemory {
  readonly book = new PipelineBook();
  readonly durations = new Durations();
  readonly boots = new BootTimes();
  readonly arrivals = new Arrivals();
  /** The stored table was read (once per container). */
  loaded = false;
  savedAt = -Infinity;
  /** Pending jobs nobody could forecast (first stages, lone jobs), counted once their pool is known. */
  private readonly unforecast = new Map<number, number>();

  /** A pass's job hooks, oldest first. `poolOf` gives a job's pool as routed so far. */
  observeEvents(events: readonly JobNews[], poolOf: (jobId: number) => string | undefined): void {
    for (const e of [...events].sort((a, b) => a.at - b.at)) {
      const first = this.book.firstSeenOf(e.jobId, e.pipelineId);
      this.book.observe(e, this.durations, poolOf);
      if (e.status === 'pending' && (first === undefined || e.at - first <= UNFORECAST_WINDOW_MS)) this.unforecast.set(e.jobId, e.at);
    }
    if (this.unforecast.size > 50_000) this.unforecast.clear();
  }

  /**
   * The forecast for this pass: the book's pipelines against the learnt durations and boot times,
   * and for pools with targetWait the rate of arrivals nobody can forecast (time-of-day history).
   */
  forecast(config: Config, now: number, poolOfJob: (jobId: number) => string | undefined): Record<string, PoolForecast> {
    this.book.expire(now);
    const waiting = new Map(config.pools.filter((p) => p.targetWait !== undefined).map((p) => [p.name, p]));
    for (const [id, at] of this.unforecast) {
      const pool = poolOfJob(id);
      if (pool) {
        const p = waiting.get(pool);
        if (p) this.arrivals.observe(pool, p.Timezone, at);
        this.unforecast.delete(id);
      } else if (now - at > 5 * 60_000) this.unforecast.delete(id);
    }
    const out = forecastPools(this.book, this.durations, this.boots, { config, now, poolOfJob });
    for (const [name, p] of waiting) out[name].arrivalRate = Math.round(this.arrivals.rate(name, p.Timezone, now) * 1e6) / 1e6;
    return out;
  }

  /** Reads the stored table once; later passes trust what this container learnt since. */
  load(text: string | undefined): void {
    if (this.loaded) return;
    this.loaded = true;
    if (text) decodeLearned(text, this);
  }

  /** The table to store, when it changed and the last write is LEARNED_WRITE_EVERY_MS old; else undefined. */
  toStore(now: number): string | undefined {
    if (now - this.savedAt < LEARNED_WRITE_EVERY_MS) return undefined;
    if (!this.durations.changed && !this.boots.changed && !this.arrivals.changed) return undefined;
    this.savedAt = now;
    this.durations.changed = this.boots.changed = this.arrivals.changed = false;
    return encodeLearned(this, now);
  }
}

/**
 * `{"v":1,"b":base64(deflate(...))}`: boot estimates per pool (name, seconds / 2), arrival history
 * per pool (48 hourly rates, each a byte: log scale), then durations, most recently used first:
 * 3-byte key, a byte of quantized duration, a byte of run share; left out from the end until it
 * fits 4 KB (about 500 of them; lossy on purpose).
 */
export function encodeLearned(m: ForecastMemory, now: number): string {
  const head: number[] = [LEARNED_FORMAT];
  const str = (s: string) => {
    const b = Buffer.from(s.slice(0, 100), 'utf8');
    head.push(b.length, ...b);
  };
  const pools = m.boots.pools();
  head.push(pools.length);
  for (const p of pools) {
    str(p);
    head.push(Math.min(255, Math.round(m.boots.estimate(p) / 2)));
  }
  const hist = [...m.arrivals.history];
  head.push(hist.length);
  for (const [pool, h] of hist) {
    str(pool);
    for (const r of h) head.push(r < 0 ? 255 : Math.min(254, Math.round(Math.log1p(r) * 40)));
  }
  const entries = [...m.durations.entries].filter(([, e]) => !Number.isNaN(e.logMean) || e.runN > 0).sort((a, b) => b[1].used - a[1].used);
  const body = (n: number) => {
    const b = Buffer.alloc(head.length + 5 * n + 4);
    Buffer.from(head).copy(b, 0);
    let o = head.length;
    b.writeUInt32BE(Math.floor(now / 60_000), o);
    o += 4;
    for (const [k, e] of entries.slice(0, n)) {
      b.writeUIntBE(k, o, 3);
      b[o + 3] = Number.isNaN(e.logMean) ? 0 : Math.max(1, quantize(Math.exp(e.logMean)));
      b[o + 4] = Math.round(e.runs * 255);
      o += 5;
    }
    return JSON.stringify({ v: LEARNED_FORMAT, b: deflateRawSync(b, { level: 9 }).toString('base64') });
  };
  let n = entries.length;
  let text = body(n);
  // Deflate is about linear in entries: scale n by the overshoot (a little under), a few rounds at most.
  while (text.length > MAX_LEARNED_CHARS && n > 0) {
    n = Math.min(n - 1, Math.floor((n * MAX_LEARNED_CHARS * 0.98) / text.length));
    text = body(Math.max(0, n));
  }
  return text;
}

/** Reads a stored table into `m`; an unreadable one is ignored (learnt again). */
export function decodeLearned(text: string, m: ForecastMemory): boolean {
  try {
    const doc = JSON.parse(text) as { v?: unknown; b?: unknown };
    if (doc.v !== LEARNED_FORMAT || typeof doc.b !== 'string') return false;
    const b = inflateRawSync(Buffer.from(doc.b, 'base64'));
    let o = 0;
    const byte = () => {
      if (o >= b.length) throw new Error('truncated');
      return b[o++];
    };
    const str = () => {
      const len = byte();
      if (o + len > b.length) throw new Error('truncated');
      const s = b.toString('utf8', o, o + len);
      o += len;
      return s;
    };
    if (byte() !== LEARNED_FORMAT) return false;
    const pools = byte();
    for (let i = 0; i < pools; i++) {
      const name = str();
      m.boots.stored.set(name, byte() * 2);
    }
    const hists = byte();
    for (let i = 0; i < hists; i++) {
      const name = str();
      const h: number[] = [];
      for (let k = 0; k < BUCKETS; k++) {
        const q = byte();
        h.push(q === 255 ? -1 : Math.expm1(q / 40));
      }
      m.arrivals.history.set(name, h);
    }
    if (o + 4 > b.length) throw new Error('truncated');
    const minute = b.readUInt32BE(o);
    o += 4;
    while (o + 5 <= b.length) {
      const key = b.readUIntBE(o, 3);
      const q = b[o + 3];
      const runs = b[o + 4] / 255;
      o += 5;
      m.durations.entries.set(key, { logMean: q === 0 ? NaN : Math.log(dequantize(q)), n: q === 0 ? 0 : STORED_WEIGHT, runs, runN: STORED_WEIGHT, used: minute });
    }
    m.durations.version++;
    return true;
  } catch {
    return false;
  }
}
