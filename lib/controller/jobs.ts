/**
 * Demand bookkeeping: job events in, pending / running counts per pool out. Pure.
 *
 * GitLab job webhooks are lossy and may arrive twice or out of order (facts.md), so every entry
 * expires unless something confirms it again, and transitions are applied so that a duplicate or
 * stale delivery cannot resurrect a job:
 *  - finished jobs leave a short-lived tombstone; a job that finished never becomes pending again
 *    (GitLab retries a job by creating a new job id);
 *  - running never goes back to pending through a webhook (a stale delivery is far more likely
 *    than a requeue; the API confirmation repairs the rare requeue).
 */
import { poolForJobTags, type Config } from '../config';
import type { PoolDemand } from '../model';
import type { GitLabJob, JobEvent } from './ports';
import type { ControllerState, JobEntry, JobStatus } from './state';

/** Tombstones live this long: longer than GitLab's webhook retries of one delivery. */
export const TOMBSTONE_TTL_MS = 15 * 60_000;

export type StatusKind = JobStatus | 'inactive';

/**
 * GitLab build_status -> what it means for capacity.
 * pending: waiting for a runner (demand). preparing, running, canceling, waiting_for_callback: on
 * a runner. success, failed, canceled, skipped: finished. created, waiting_for_resource, manual,
 * scheduled: not runnable yet, so not demand.
 */
export function statusKind(status: string): StatusKind | undefined {
  switch (status) {
    case 'pending':
      return 'pending';
    case 'preparing':
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
    case 'waiting_for_resource':
    case 'manual':
    case 'scheduled':
      return 'inactive';
    default:
      return undefined;
  }
}

export type EventOutcome = 'added' | 'updated' | 'removed' | 'ignored' | 'unknown-status' | 'no-pool';

/**
 * Applies one observation of a job (webhook event or API read). `pool` is the routed pool name,
 * '' when not known yet, or undefined when the job's tags match no pool (not ours).
 */
export function observeJob(state: ControllerState, jobId: number, projectId: number, status: string, at: number, pool: string | undefined): EventOutcome {
  const kind = statusKind(status);
  if (kind === undefined) return 'unknown-status';
  const existing = state.jobs.get(jobId);
  if (existing?.status === 'finished') return 'ignored';
  if (kind === 'inactive') {
    if (!existing) return 'ignored';
    state.jobs.delete(jobId);
    return 'removed';
  }
  if (kind === 'finished') {
    state.jobs.set(jobId, { projectId, pool: existing?.pool ?? pool ?? '', status: 'finished', seenAt: at });
    return existing ? 'removed' : 'ignored';
  }
  if (pool === undefined) {
    if (existing) state.jobs.delete(jobId);
    return 'no-pool';
  }
  if (existing) {
    if (existing.status === 'running' && kind === 'pending') return 'ignored';
    const next: JobEntry = { projectId, pool: pool || existing.pool, status: kind, seenAt: Math.max(existing.seenAt, at) };
    if (next.pool === existing.pool && next.status === existing.status && next.seenAt === existing.seenAt) return 'ignored';
    state.jobs.set(jobId, next);
    return 'updated';
  }
  state.jobs.set(jobId, { projectId, pool, status: kind, seenAt: at });
  return 'added';
}

/** The pool for a webhook event: by its tags when known, else the entry's pool, else '' (unrouted). */
export function routeEvent(config: Config, state: ControllerState, ev: JobEvent): string | undefined {
  if (ev.tags) return poolForJobTags(config, ev.tags)?.name;
  const known = state.jobs.get(ev.jobId)?.pool;
  if (known) return known;
  // A single pool and no way to ask GitLab: every job counts for it (docs/controller.md).
  return '';
}

export function applyEvent(config: Config, state: ControllerState, ev: JobEvent): EventOutcome {
  return observeJob(state, ev.jobId, ev.projectId, ev.status, ev.receivedAt, routeEvent(config, state, ev));
}

/** Applies what the API says about a job; undefined = the job no longer exists. */
export function applyApiJob(config: Config, state: ControllerState, jobId: number, projectId: number, job: GitLabJob | undefined, now: number): EventOutcome {
  if (!job) {
    if (!state.jobs.delete(jobId)) return 'ignored';
    return 'removed';
  }
  const pool = poolForJobTags(config, job.tagList)?.name;
  const kind = statusKind(job.status);
  // The API is the truth: a requeued job (running -> pending) is accepted here.
  const existing = state.jobs.get(jobId);
  if (existing && existing.status === 'running' && kind === 'pending') state.jobs.delete(jobId);
  return observeJob(state, jobId, projectId, job.status, now, pool);
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
    } else if (j.status === 'pending' && age > config.pendingJobTtl * 1000) {
      state.jobs.delete(id);
      out.pending++;
    } else if (j.status === 'running' && age > (timeout.get(j.pool) ?? longest)) {
      state.jobs.delete(id);
      out.running++;
    }
  }
  return out;
}

/** Pending and running jobs per pool. Unrouted jobs count for the pool when there is only one. */
export function demandByPool(config: Config, state: ControllerState): Record<string, PoolDemand> {
  const demand: Record<string, PoolDemand> = {};
  for (const p of config.pools) demand[p.name] = { pending: 0, running: 0 };
  const single = config.pools.length === 1 ? config.pools[0].name : undefined;
  for (const j of state.jobs.values()) {
    if (j.status === 'finished') continue;
    const pool = j.pool || single;
    const d = pool !== undefined ? demand[pool] : undefined;
    if (!d) continue; // a pool removed from the config, or unrouted with several pools
    if (j.status === 'pending') d.pending++;
    else d.running++;
  }
  return demand;
}
