/**
 * Demand bookkeeping: job events and API answers in, pending / running counts per pool out. Pure.
 *
 * GitLab job webhooks are lossy and may arrive twice or out of order (facts.md), so every entry
 * expires unless something confirms it again, and transitions are applied so that a duplicate or
 * stale delivery cannot resurrect a job:
 *  - finished jobs leave a short-lived tombstone; a webhook never makes a finished job pending
 *    again (GitLab retries a job by creating a new job id) — the API can: it is the truth, and a
 *    forged `success` with the right secret must not strand a real pending job;
 *  - running never goes back to pending through a webhook (a stale delivery is far more likely
 *    than a requeue; the API confirmation repairs the rare requeue).
 *
 * Not every pending job is demand: a job GitLab keeps pending while idle workers of its pool do
 * not take it (the runner is paused, not enabled for the project, protected...) is `stuck`, and a
 * job the API refuses to show (403, 500 for ever) is `refused`. Neither holds workers; both are
 * listed by `status` with the reason (heldBackJobs).
 */
import { poolForJobTags, type Config, type Pool } from '../config';
import type { PoolDemand, WorkerView } from '../model';
import type { ApiJob } from '../gitlab/api';
import type { JobEvent, Logger } from './ports';
import { touchProject, type ControllerState, type JobEntry, type JobStatus } from './state';

/** Tombstones live this long: longer than GitLab's webhook retries of one delivery. */
export const TOMBSTONE_TTL_MS = 15 * 60_000;

/**
 * A pending job that an idle worker of its pool has not taken for this long is one no runner of
 * ours will take. gitlab-runner asks for jobs every few seconds (check_interval 3 s) and GitLab
 * hands a waiting job to the first matching runner that asks, so a minute is already strong
 * evidence; we wait up to five, but no longer than half the pool's shortest IdleTime, or a worker
 * launched for the job would leave (--wait-timeout) before it could witness anything, and the
 * next one would be launched for it again.
 */
export const NOT_TAKEN_AFTER_MS = 5 * 60_000;
const NOT_TAKEN_MIN_MS = 60_000;

export function notTakenAfterMs(pool: Pool | undefined): number {
  if (!pool) return NOT_TAKEN_AFTER_MS;
  const idleTimes = [pool.IdleTime, ...pool.autoscaling.map((a) => a.IdleTime ?? 0)].filter((t) => t > 0);
  const shortest = idleTimes.length ? Math.min(...idleTimes) * 1000 : Infinity;
  return Math.max(NOT_TAKEN_MIN_MS, Math.min(NOT_TAKEN_AFTER_MS, shortest / 2));
}

/**
 * Every STUCK_PROBE_EVERY_MS, for STUCK_PROBE_MS, one stuck job per pool counts as demand again:
 * if its runner was fixed meanwhile, a worker takes it; if not, one worker idles for its IdleTime
 * (at most six a day per pool, whatever the number of stuck jobs). Insurance against a wrong
 * verdict, such as a worker whose runner died while its tags still say idle. The window is short
 * (the schedule runs a pass every minute: the first launches, the next sees that worker booting),
 * so one probe launches one worker. Pools keeping idle workers need no probe: those take the job
 * as soon as GitLab lets them.
 */
export const STUCK_PROBE_EVERY_MS = 4 * 3_600_000;
export const STUCK_PROBE_MS = 2 * 60_000;

export type StatusKind = 'pending' | 'running' | 'finished' | 'inactive';

/**
 * GitLab build_status -> what it means for capacity.
 * pending: waiting for a runner (demand). running, canceling, waiting_for_callback: on a runner.
 * success, failed, canceled, skipped: finished. created, waiting_for_resource, manual, scheduled,
 * preparing: not runnable yet, so not demand. (`preparing` comes BEFORE pending in GitLab's state
 * machine: a job whose prerequisites, such as a Kubernetes namespace, are being created; then
 * `enqueue_preparing` makes it pending. gitlab-runner's "Preparing the executor" is `running`.)
 */
export function statusKind(status: string): StatusKind | undefined {
  switch (status) {
    case 'pending':
      return 'pending';
    case 'running':
    case 'canceling':
    case 'waiting_for_callback':
      return 'running';
    case 'success':
    case 'failed':
    case 'canceled':
    case 'skipped':
      return 'finished';
    case 'created':
    case 'preparing':
    case 'waiting_for_resource':
    case 'manual':
    case 'scheduled':
      return 'inactive';
    default:
      return undefined;
  }
}

/** Pending in GitLab's eyes, whatever we make of it (pending, stuck or refused). */
export const waitingInGitLab = (s: JobStatus) => s === 'pending' || s === 'stuck' || s === 'refused';

export type EventOutcome = 'added' | 'updated' | 'removed' | 'ignored' | 'unknown-status' | 'no-pool';

export interface Observation {
  status: string;
  at: number;
  /** Routed pool name, '' when not known yet, undefined when the job's tags match no pool (not ours). */
  pool: string | undefined;
  /** Webhook deliveries may be stale; the API is the truth. */
  source: 'event' | 'api';
  /** When the job became pending, if the source knows (GraphQL queuedAt). */
  since?: number;
}

/** Applies one observation of a job (webhook event or API answer). */
export function observeJob(state: ControllerState, jobId: number, projectId: number, o: Observation): EventOutcome {
  const kind = statusKind(o.status);
  if (kind === undefined) return 'unknown-status';
  let existing = state.jobs.get(jobId);
  if (existing?.status === 'finished') {
    if (o.source === 'event' || kind === 'finished' || kind === 'inactive') return 'ignored';
    state.jobs.delete(jobId); // the API says it waits or runs: a tombstone from a forged or stale delivery
    existing = undefined;
  }
  if (kind === 'inactive') {
    if (!existing) return 'ignored';
    state.jobs.delete(jobId);
    return 'removed';
  }
  if (kind === 'finished') {
    state.jobs.set(jobId, { projectId, pool: existing?.pool ?? o.pool ?? '', status: 'finished', seenAt: o.at });
    return existing ? 'removed' : 'ignored';
  }
  if (o.pool === undefined) {
    if (existing) state.jobs.delete(jobId);
    return 'no-pool';
  }
  if (existing) {
    if (existing.status === 'running' && kind === 'pending') {
      if (o.source === 'event') return 'ignored';
      existing = undefined; // requeued: the API says pending again
    }
  }
  if (existing) {
    let status: JobStatus = kind;
    // A job that waits stays stuck whatever re-announces it; a refused one stays refused until the API answers.
    if (kind === 'pending' && (existing.status === 'stuck' || (existing.status === 'refused' && o.source === 'event'))) status = existing.status;
    const next: JobEntry = { projectId, pool: o.pool || existing.pool, status, seenAt: Math.max(existing.seenAt, o.at) };
    const since = kind === 'pending' ? (existing.since ?? o.since ?? o.at) : undefined;
    if (since !== undefined) next.since = since;
    if (next.pool === existing.pool && next.status === existing.status && next.seenAt === existing.seenAt && next.since === existing.since) return 'ignored';
    state.jobs.set(jobId, next);
    return 'updated';
  }
  const entry: JobEntry = { projectId, pool: o.pool, status: kind, seenAt: o.at };
  if (kind === 'pending') entry.since = Math.min(o.since ?? o.at, o.at);
  state.jobs.set(jobId, entry);
  return 'added';
}

/** The pool for a webhook event: by its tags when known, else the entry's pool, else '' (unrouted). */
export function routeEvent(config: Config, state: ControllerState, ev: JobEvent): string | undefined {
  if (ev.tags) return poolForJobTags(config, ev.tags)?.name;
  const known = state.jobs.get(ev.jobId)?.pool;
  if (known) return known;
  // Not known yet: the GitLab side routes it by the job's tags (several pools), or confirms it
  // (one pool: an unrouted job counts for it meanwhile only when GitLab cannot be asked, demandByPool).
  return '';
}

export function applyEvent(config: Config, state: ControllerState, ev: JobEvent): EventOutcome {
  return observeJob(state, ev.jobId, ev.projectId, { status: ev.status, at: ev.receivedAt, pool: routeEvent(config, state, ev), source: 'event' });
}

/** Applies what the API says about a job; `null` = the job is no longer there (or never was). */
export function applyApiJob(config: Config, state: ControllerState, jobId: number, projectId: number, job: ApiJob | null, now: number): EventOutcome {
  if (!job) return state.jobs.delete(jobId) ? 'removed' : 'ignored';
  return observeJob(state, jobId, projectId, { status: job.status, at: now, pool: poolForJobTags(config, job.tags)?.name, source: 'api', since: job.queuedAt });
}

export interface EventCounts {
  events: number;
  added: number;
  updated: number;
  removed: number;
  ignored: number;
  'unknown-status': number;
  'no-pool': number;
}

/**
 * Applies a batch of job events, oldest first (so a batch holding pending then running for a job
 * ends running). Projects are remembered for discovery (state `projects`) only when the GitLab
 * API can list them: otherwise they would cost SSM writes for nothing.
 */
export function applyJobEvents(config: Config, state: ControllerState, events: readonly JobEvent[], opts: { now: number; rememberProjects: boolean; log: Logger }): EventCounts {
  const counts: EventCounts = { events: events.length, added: 0, updated: 0, removed: 0, ignored: 0, 'unknown-status': 0, 'no-pool': 0 };
  const badStatuses = new Set<string>();
  for (const ev of [...events].sort((a, b) => a.receivedAt - b.receivedAt)) {
    if (!Number.isSafeInteger(ev.jobId) || ev.jobId <= 0 || !Number.isSafeInteger(ev.projectId) || ev.projectId <= 0) {
      opts.log.warn('job event ignored: jobId and projectId must be positive integers', { jobId: ev.jobId, projectId: ev.projectId });
      counts.ignored++;
      continue;
    }
    // A receive time in the future (clock skew, or a message not written by our webhook) counts as now.
    const e = Number.isFinite(ev.receivedAt) && ev.receivedAt <= opts.now ? ev : { ...ev, receivedAt: opts.now };
    if (opts.rememberProjects) touchProject(state, e.projectId, e.receivedAt);
    // The end of a job we never knew needs no tombstone when the API can be asked: a late `pending`
    // for it is dropped by the listing of its project. (100,000 forged `success` events with the
    // right secret would otherwise fill the state with tombstones.)
    if (opts.rememberProjects && statusKind(e.status) === 'finished' && !state.jobs.has(e.jobId)) {
      counts.ignored++;
      continue;
    }
    const outcome = applyEvent(config, state, e);
    counts[outcome]++;
    if (outcome === 'unknown-status') badStatuses.add(e.status);
  }
  if (badStatuses.size) opts.log.warn('job events with an unknown build_status ignored', { statuses: [...badStatuses] });
  if (events.length) opts.log.info('job events applied', { ...counts });
  return counts;
}

export interface Expired {
  pending: number;
  running: number;
  tombstones: number;
}

/** Drops entries nothing confirmed for too long: pendingJobTtl, the pool's jobTimeout, tombstone TTL. */
export function expireJobs(config: Config, state: ControllerState, now: number): Expired {
  const timeout = new Map(config.pools.map((p) => [p.name, p.jobTimeout * 1000]));
  const longest = Math.max(...config.pools.map((p) => p.jobTimeout * 1000));
  const out: Expired = { pending: 0, running: 0, tombstones: 0 };
  for (const [id, j] of state.jobs) {
    const age = now - j.seenAt;
    if (j.status === 'finished' && age > TOMBSTONE_TTL_MS) {
      state.jobs.delete(id);
      out.tombstones++;
    } else if (waitingInGitLab(j.status) && age > config.pendingJobTtl * 1000) {
      state.jobs.delete(id);
      out.pending++;
    } else if (j.status === 'running' && age > (timeout.get(j.pool) ?? longest)) {
      state.jobs.delete(id);
      out.running++;
    }
  }
  return out;
}

/** True while the pool's probe window is open (a clock-driven phase per pool, so pools do not probe together). */
export function stuckProbeDue(pool: string, now: number): boolean {
  const minutes = STUCK_PROBE_EVERY_MS / 60_000;
  let phase = 0;
  for (let i = 0; i < pool.length; i++) phase = (phase * 31 + pool.charCodeAt(i)) % minutes;
  return (((now - phase * 60_000) % STUCK_PROBE_EVERY_MS) + STUCK_PROBE_EVERY_MS) % STUCK_PROBE_EVERY_MS < STUCK_PROBE_MS;
}

/**
 * Pending and running jobs per pool. Unrouted jobs count for the pool when there is only one,
 * unless `unrouted` is false: when GitLab could be asked in this pass, a job it has not confirmed
 * yet waits for its listing (else forged events from more projects than one pass can ask about
 * would launch the pool's `limit`). Refused jobs count as pending (what we last knew); stuck ones
 * do not, except one per pool while its probe window is open.
 */
export function demandByPool(config: Config, state: ControllerState, now?: number, opts: { unrouted?: boolean } = {}): Record<string, PoolDemand> {
  const demand: Record<string, PoolDemand> = {};
  for (const p of config.pools) demand[p.name] = { pending: 0, running: 0 };
  const single = config.pools.length === 1 ? config.pools[0].name : undefined;
  const probing = new Set<string>();
  for (const j of state.jobs.values()) {
    if (j.pool === '' && opts.unrouted === false && j.status !== 'refused') continue;
    const pool = j.pool || single;
    const d = pool !== undefined ? demand[pool] : undefined;
    if (!d) continue; // a pool removed from the config, or unrouted with several pools
    if (j.status === 'pending' || j.status === 'refused') d.pending++;
    else if (j.status === 'running') d.running++;
    else if (j.status === 'stuck' && now !== undefined && !probing.has(pool!) && stuckProbeDue(pool!, now)) {
      probing.add(pool!);
      d.pending++;
    }
  }
  return demand;
}

/** A job marked stuck in this pass, for the decision lines. */
export interface UntakenJob {
  jobId: number;
  projectId: number;
  pool: string;
  waitedMs: number;
  idleWorkers: number;
}

/**
 * Marks pending jobs that idle workers of their pool did not take as stuck: some worker of the
 * pool has been idle (ready, healthy, not asked to leave) for NOT_TAKEN_AFTER_MS while the job was
 * pending. Such a job is one GitLab will not give to our runner, and no worker launched for it
 * would take it either.
 */
export function holdBackUntakenJobs(config: Config, state: ControllerState, workers: readonly WorkerView[], now: number): UntakenJob[] {
  const single = config.pools.length === 1 ? config.pools[0].name : undefined;
  const idle = new Map<string, number[]>();
  for (const w of workers) {
    if (w.state !== 'idle' || w.problem !== undefined || w.retireRequestedAt !== undefined) continue;
    const list = idle.get(w.pool) ?? [];
    // Idle since its report, else since it became ready: not since launch (a slow boot is no wait).
    list.push(w.idleSince ?? w.readyAt ?? w.launchedAt);
    idle.set(w.pool, list);
  }
  const out: UntakenJob[] = [];
  if (idle.size === 0) return out;
  // A worker looks idle until its busy report arrives; a lost one (the next report is the
  // heartbeat, 10 minutes on) left a busy worker "idle" for that long, and it was taken for a
  // witness: the job was held back until some worker of the pool ended its job (432 s in the
  // quiet-week bench, up to jobTimeout). So running jobs of the pool that no busy or leaving
  // worker accounts for are put on "idle" workers: those are no witnesses.
  const holding = new Map<string, number>();
  for (const w of workers) if (w.state === 'busy' || w.state === 'retiring') holding.set(w.pool, (holding.get(w.pool) ?? 0) + 1);
  const running = new Map<string, number>();
  for (const j of state.jobs.values()) {
    const pool = j.pool || single;
    if (j.status === 'running' && pool !== undefined) running.set(pool, (running.get(pool) ?? 0) + 1);
  }
  const unaccounted = (pool: string) => Math.max(0, (running.get(pool) ?? 0) - (holding.get(pool) ?? 0));
  for (const [id, j] of state.jobs) {
    if (j.status !== 'pending') continue;
    const pool = j.pool || single;
    const since = j.since ?? j.seenAt;
    const idleSince = pool !== undefined ? idle.get(pool) : undefined;
    const after = notTakenAfterMs(config.pools.find((p) => p.name === pool));
    if (!idleSince || now - since < after) continue;
    const witnesses = idleSince.filter((t) => now - Math.max(t, since) >= after).length - unaccounted(pool!);
    if (witnesses <= 0) continue;
    state.jobs.set(id, { ...j, status: 'stuck' });
    out.push({ jobId: id, projectId: j.projectId, pool: pool!, waitedMs: now - since, idleWorkers: idleSince.length });
  }
  return out;
}

/** Decision lines for jobs newly marked stuck, one per pool and project. */
export function describeUntaken(jobs: readonly UntakenJob[], config: Config): string[] {
  const groups = new Map<string, UntakenJob[]>();
  for (const j of jobs) {
    const key = `${j.pool}|${j.projectId}`;
    const members = groups.get(key);
    if (members) members.push(j);
    else groups.set(key, [j]);
  }
  return [...groups.values()].map((g) => {
    const { pool, projectId, idleWorkers } = g[0];
    const tags = config.pools.find((p) => p.name === pool)?.tags ?? [];
    const waited = Math.round(Math.max(...g.map((j) => j.waitedMs)) / 60_000);
    const ids = g.map((j) => j.jobId).sort((a, b) => a - b);
    return `pool ${pool}: ${g.length === 1 ? `job ${ids[0]}` : `${g.length} jobs (${ids.slice(0, 5).join(', ')}${ids.length > 5 ? ', …' : ''})`} of project ${projectId} pending ${waited} min, ${idleWorkers} idle worker(s) did not take ${g.length === 1 ? 'it' : 'them'}: is the pool's runner enabled for project ${projectId}, not paused, not limited to protected branches, with tags [${tags.join(', ')}]${config.pools.find((p) => p.name === pool)?.runUntagged ? ' and run-untagged' : ''}? Not counted as demand any more`;
  });
}

/** Jobs not handled as usual, for `status` and the pass report: stuck (not demand) and refused (not confirmed). */
export interface HeldBackJob {
  jobId: number;
  projectId: number;
  pool: string;
  status: 'stuck' | 'refused';
  waitingSeconds: number;
  reason: string;
}

export function heldBackJobs(config: Config, state: ControllerState, now: number): HeldBackJob[] {
  const single = config.pools.length === 1 ? config.pools[0].name : '';
  const out: HeldBackJob[] = [];
  for (const [id, j] of state.jobs) {
    if (j.status !== 'stuck' && j.status !== 'refused') continue;
    const pool = j.pool || single;
    const waitingSeconds = Math.max(0, Math.round((now - (j.since ?? j.seenAt)) / 1000));
    const reason =
      j.status === 'stuck'
        ? `idle workers of pool ${pool || '?'} did not take it: check that the runner is enabled for project ${j.projectId}, not paused, and not limited to protected refs`
        : `the GitLab API keeps failing for project ${j.projectId} (isolated, asked again later): counted as last known${j.pool ? '' : ', which is no pool while it is unrouted'}`;
    out.push({ jobId: id, projectId: j.projectId, pool, status: j.status, waitingSeconds, reason });
  }
  return out.sort((a, b) => b.waitingSeconds - a.waitingSeconds || a.jobId - b.jobId);
}
