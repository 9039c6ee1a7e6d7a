/**
 * The scaling policy, in one place: (config, now, snapshot) -> plan. Pure and deterministic.
 *
 * It follows gitlab-runner's docker+machine autoscaler (executors/docker/machine/
 * idle_limit_strategy.go; docs.gitlab.com/runner/configuration/autoscale/), with the state names
 * mapped as in model.ts, and adds what a job-driven controller can do that docker+machine could
 * not: pending jobs that no idle or booting worker covers get capacity in the same pass.
 *
 * Two decisions per pool, each made of small named rules:
 *  - retire?  an idle worker leaves when it reached MaxBuilds, when its launch template is out of
 *             date, when the pool is over `limit`, or when it was idle longer than IdleTime and the
 *             idle target is exceeded without it.
 *  - launch?  enough for the pending jobs `concurrent` lets run, plus the idle target, within
 *             `limit` (workers in all states) and MaxGrowthRate (workers booting).
 * Retirement is always a request (the worker leaves after its job) and only ever made of idle
 * workers; only instances that are broken, stuck or orphaned, and not running a job, are
 * terminated. A busy worker is never retired nor terminated.
 */
import { DEFAULTS, type Config, type Pool } from './config';
import { activeSettings, type ActiveSettings } from './periods';
import type { Plan, PoolCounts, PoolPlan, Retirement, Snapshot, Termination, WorkerView } from './model';

/** Grace after jobTimeout before a worker that ignores its retirement request is terminated. */
export const RETIREMENT_GRACE_SECONDS = 600;

// ---- the idle target (IdleCount / IdleCountMin / IdleScaleFactor) ---------------------------

/**
 * gitlab-runner: the idle target is met when Available >= IdleCount, or when
 * Available >= IdleCountMin and Available >= int(InUse * IdleScaleFactor); IdleCountMin is
 * forced to at least 1 when IdleScaleFactor > 0. That is: Available >= the value returned here.
 */
export function idleTarget(s: ActiveSettings, inUse: number): number {
  if (s.IdleScaleFactor <= 0) return s.IdleCount;
  const min = Math.max(s.IdleCountMin, 1);
  return Math.min(s.IdleCount, Math.max(min, Math.floor(inUse * s.IdleScaleFactor)));
}

// ---- named rules ---------------------------------------------------------------------------

const maxBuildsReached = (pool: Pool, w: WorkerView) => pool.MaxBuilds > 0 && w.builds >= pool.MaxBuilds;
const templateOutdated = (w: WorkerView, current: string | undefined) => current !== undefined && w.templateVersion !== undefined && w.templateVersion !== current;
const totalWorkersExceeded = (pool: Pool, total: number) => pool.limit > 0 && total > pool.limit;
const idleTimeExceeded = (s: ActiveSettings, w: WorkerView, now: number) => now - (w.idleSince ?? w.launchedAt) >= s.IdleTime * 1000;
const bootTimedOut = (pool: Pool, w: WorkerView, now: number) => w.state === 'booting' && now - w.launchedAt > pool.worker.bootTimeout * 1000;
const retirementIgnored = (pool: Pool, w: WorkerView, now: number) =>
  w.state === 'retiring' && w.retireRequestedAt !== undefined && now - w.retireRequestedAt > (pool.jobTimeout + RETIREMENT_GRACE_SECONDS) * 1000;

const orphanRetirementIgnored = (w: WorkerView, now: number) =>
  w.retireRequestedAt !== undefined && now - w.retireRequestedAt > (DEFAULTS.jobTimeout + RETIREMENT_GRACE_SECONDS) * 1000;

/** Caps on launches; each returns how many more workers it allows (Infinity when unset). */
const roomUnderLimit = (pool: Pool, total: number) => (pool.limit > 0 ? Math.max(0, pool.limit - total) : Infinity);
const roomUnderGrowthRate = (pool: Pool, booting: number) => (pool.MaxGrowthRate > 0 ? Math.max(0, pool.MaxGrowthRate - booting) : Infinity);

// ---- repair: instances that are broken, stuck or ignored a request --------------------------

interface Triage {
  healthy: WorkerView[];
  terminate: Termination[];
  /** Workers leaving (retiring, interrupted, or being terminated): counted in Total, never available. */
  leaving: number;
}

function triage(pool: Pool, workers: readonly WorkerView[], now: number): Triage {
  const t: Triage = { healthy: [], terminate: [], leaving: 0 };
  for (const w of workers) {
    if (w.state === 'busy') {
      // Whatever else is wrong with it, a worker reported busy is left to finish: a busy impaired
      // worker is terminated on a later pass, once it is no longer busy.
      if (w.problem) t.leaving++;
      else t.healthy.push(w);
    } else if (w.problem === 'stopped') {
      t.terminate.push({ id: w.id, reason: 'instance is stopped; workers never stop (shutdown = terminate), so it is broken' });
      t.leaving++;
    } else if (w.problem === 'impaired') {
      if (w.state !== 'retiring' || retirementIgnored(pool, w, now)) t.terminate.push({ id: w.id, reason: 'failed EC2 status checks' });
      t.leaving++;
    } else if (w.problem === 'interrupted') {
      // AWS reclaims it; the worker drains itself. Its capacity is replaced below.
      t.leaving++;
    } else if (bootTimedOut(pool, w, now)) {
      t.terminate.push({ id: w.id, reason: `did not become ready within bootTimeout (${pool.worker.bootTimeout} s)` });
      t.leaving++;
    } else if (retirementIgnored(pool, w, now)) {
      t.terminate.push({ id: w.id, reason: `still running ${pool.jobTimeout + RETIREMENT_GRACE_SECONDS} s after its retirement request (jobTimeout ${pool.jobTimeout} s + grace)` });
      t.leaving++;
    } else if (w.state === 'retiring') {
      t.leaving++;
    } else {
      t.healthy.push(w);
    }
  }
  return t;
}

const byId = (a: { id: string }, b: { id: string }) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

// ---- the plan ------------------------------------------------------------------------------

interface PoolWork {
  pool: Pool;
  settings: ActiveSettings;
  counts: PoolCounts;
  idleTarget: number;
  triage: Triage;
  idle: WorkerView[];
}

export function plan(config: Config, at: Date, snapshot: Snapshot): Plan {
  const now = at.getTime();
  const byPool = new Map<string, WorkerView[]>();
  for (const p of config.pools) byPool.set(p.name, []);
  const orphans: Plan['orphans'] = { terminate: [] };
  for (const w of snapshot.workers) {
    const list = byPool.get(w.pool);
    if (list) list.push(w);
    // An orphan that runs a job is left alone until it is idle; then it goes.
    else if (w.state === 'idle' || w.state === 'booting' || (w.state === 'retiring' && (w.problem !== undefined || orphanRetirementIgnored(w, now))))
      orphans.terminate.push({ id: w.id, reason: `pool "${w.pool}" is not in the config` });
  }

  // First look at every pool: counts, idle targets, repairs.
  const work: PoolWork[] = config.pools.map((pool) => {
    const workers = byPool.get(pool.name)!;
    const settings = activeSettings(pool, at);
    const tri = triage(pool, workers, now);
    const demand = snapshot.demand[pool.name] ?? { pending: 0, running: 0 };
    const counts: PoolCounts = { booting: 0, idle: 0, busy: 0, retiring: tri.leaving, total: workers.length, pending: demand.pending, running: demand.running };
    const idle: WorkerView[] = [];
    for (const w of tri.healthy) {
      counts[w.state as 'booting' | 'idle' | 'busy']++;
      if (w.state === 'idle') idle.push(w);
    }
    return { pool, settings, counts, idleTarget: idleTarget(settings, counts.busy), triage: tri, idle };
  });

  // `concurrent` caps running jobs across all pools (gitlab-runner's global setting): pending jobs
  // get capacity only while running + pending stays under it, shared out in config order.
  // Workers' runners take jobs on their own, so idle workers could run jobs past `concurrent`;
  // machines are therefore also capped at concurrent + the idle targets, which is the upper
  // bound docker+machine documents ("concurrent=20, IdleCount=10 -> at most 30 machines").
  const concurrent = config.concurrent;
  let jobRoom = concurrent > 0 ? Math.max(0, concurrent - work.reduce((n, w) => n + w.counts.running, 0)) : Infinity;
  let machineRoom =
    concurrent > 0
      ? Math.max(0, concurrent + work.reduce((n, w) => n + w.idleTarget, 0) - work.reduce((n, w) => n + w.counts.busy + w.counts.booting + w.counts.idle, 0))
      : Infinity;

  const pools: PoolPlan[] = work.map(({ pool, settings, counts, idleTarget: target, triage: tri, idle }) => {
    const current = snapshot.templateVersions?.[pool.name];
    const pendingServed = Math.min(counts.pending, jobRoom);
    if (jobRoom !== Infinity) jobRoom -= pendingServed;
    let available = counts.booting + counts.idle;
    let total = counts.total;

    // Retire idle workers, in docker+machine's order of checks, longest idle first.
    const retire: Retirement[] = [];
    idle.sort((a, b) => (a.idleSince ?? a.launchedAt) - (b.idleSince ?? b.launchedAt) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    for (const w of idle) {
      let reason: string | undefined;
      if (maxBuildsReached(pool, w)) reason = `ran ${w.builds} builds (MaxBuilds ${pool.MaxBuilds})`;
      // A changed launch template (AMI, user data, instance profile) reaches the fleet as idle
      // workers are replaced: the replacement is launched in this pass, busy ones follow when idle.
      else if (templateOutdated(w, current)) reason = `launch template changed (version ${w.templateVersion}, now ${current})`;
      // docker+machine removes an idle machine when Total >= limit; an idle worker at the limit is
      // exactly the capacity the next job needs, so only a pool over its limit gives one back.
      else if (totalWorkersExceeded(pool, total - retire.length)) reason = `pool has ${total - retire.length} workers, over limit ${pool.limit}`;
      else if (idleTimeExceeded(settings, w, now) && available - 1 - pendingServed >= target)
        reason = `idle ${Math.round((now - (w.idleSince ?? w.launchedAt)) / 1000)} s (IdleTime ${settings.IdleTime} s) and ${available - 1 - pendingServed} idle remain for idle target ${target}`;
      if (reason) {
        retire.push({ id: w.id, reason });
        available--;
      }
    }
    // A worker asked to retire stays in Total until it is gone, as Removing does in docker+machine.
    total = counts.total;

    // Launch for pending jobs first, then for the idle target.
    const forPending = Math.max(0, pendingServed - available);
    const spare = Math.max(0, available - pendingServed);
    const forIdle = Math.max(0, target - spare);
    const wanted = forPending + forIdle;
    const caps: [string, number][] = [
      [`limit ${pool.limit}`, roomUnderLimit(pool, total)],
      [`MaxGrowthRate ${pool.MaxGrowthRate}`, roomUnderGrowthRate(pool, counts.booting)],
      [`concurrent ${concurrent} + idle targets`, machineRoom],
    ];
    let launch = wanted;
    const cappedBy: string[] = [];
    for (const [name, room] of caps)
      if (room < launch) {
        launch = room;
        cappedBy.push(name);
      }
    if (machineRoom !== Infinity) machineRoom -= launch;
    const launchedForPending = Math.min(launch, forPending);
    const launchReasons: string[] = [];
    if (launchedForPending > 0) launchReasons.push(`${launchedForPending} for pending jobs`);
    if (launch - launchedForPending > 0) launchReasons.push(`${launch - launchedForPending} for the idle target ${target}`);
    if (wanted > launch) launchReasons.push(`${wanted - launch} more wanted, held back by ${cappedBy.join(', ')}`);

    return { pool: pool.name, settings, counts, idleTarget: target, launch, launchReasons, cappedBy: launch < wanted ? cappedBy : [], retire: retire.sort(byId), terminate: tri.terminate.sort(byId) };
  });

  orphans.terminate.sort(byId);
  return { at: at.toISOString(), pools, orphans };
}
