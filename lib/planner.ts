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
 *             date, when the pool is over `limit`, when it is surplus (launched for jobs, never the
 *             idle target, and nothing pending or coming needs it: notIdleTargetWorkers), or
 *             when it was idle longer than IdleTime and the idle target is exceeded without it.
 *  - launch?  enough for the pending jobs `concurrent` lets run that no idle worker, booting worker
 *             or soon-free busy worker covers, for the jobs forecast to become pending within a
 *             boot time (lib/forecast.ts), plus the idle target, within `limit` (workers in all
 *             states) and MaxGrowthRate (workers booting); nothing while an operator holds the pool
 *             (pause, drain: Snapshot.holds), and a drained pool's workers are all asked to retire.
 * A pool with `targetWait` sizes its idle target from the forecast (arrivals nobody can forecast,
 * the boot time) with IdleCount as a floor, and gives back any idle worker nothing needs.
 * An instance that should go (surplus, outdated, broken, orphaned, timed out) is always asked to
 * retire first: a graceful request the worker honours after its current job. TerminateInstances is
 * planned only behind the fence (model.ts TerminationKind; docs/architecture.md, "The fence"): for
 * an instance that cannot have taken a job since the snapshot the plan is made from, whatever the
 * worker's runner did in between, or at the hard end of a worker's life.
 */
import { DEFAULTS, type Config, type Pool } from './config';
import { activeSettings, type ActiveSettings } from './periods';
import type { Plan, PoolCounts, PoolForecast, PoolPlan, Retirement, RetirementKind, Snapshot, Termination, TerminationKind, WorkerView } from './model';

/**
 * How workers report (lib/worker/script.ts) and how long a report may stay out of sight: the
 * fence below is sized on these.
 */
export const REPORTING = {
  /** A worker repeats its state this often, so a lost report is repaired. */
  heartbeatSeconds: 600,
  /** A report a pass received stays hidden this long; if that pass dies, SQS delivers it again after it. */
  visibilitySeconds: 120,
  /**
   * A worker that reported ready and has sent nothing for this long (two heartbeats lost, plus a
   * delivery held by a pass that died, plus a minute) is taken for gone silent: its script died and
   * its runner with it, or it cannot reach SQS. It is asked to retire and no longer counted as
   * available, so a pending job it "covers" gets a worker.
   */
  silenceSeconds: 2 * 600 + 120 + 60,
  /**
   * No report at all for this long from a fleet of at least quietFleet ready workers (each repeats
   * its state every heartbeat) is the reporting path failing (SQS, the workers' network, IAM), not
   * the workers: silence is not judged meanwhile, and counts again from when reports resume.
   * A smaller fleet has nothing to compare with: there a silence is always the worker's.
   */
  quietSeconds: 600 + 120,
  quietFleet: 5,
};

/**
 * The fence's waits, in seconds. Each one is longer than what it waits for, so that no report in
 * flight, no pass that crashed holding messages, and no clock skew can make it cut a job short.
 */
export const FENCE = {
  /**
   * A worker whose runner has stopped for good reports `stopped` and powers off at once; if it is
   * still running this long after, it is terminated (its shutdown failed). Nothing can run on it.
   */
  stoppedGrace: 120,
  /**
   * A worker that never reported ready is terminated once launched-at + bootTimeout + this has
   * passed. The worker refuses to report ready or start its runner after launched-at + bootTimeout
   * and starts it only once SQS accepted its ready report; this covers a ready report in flight,
   * held by a pass that died (visibility timeout), lost and repeated by the next heartbeat, and
   * three minutes for clock skew and slow passes.
   */
  bootGrace: REPORTING.heartbeatSeconds + REPORTING.visibilitySeconds + 180,
  /** Asked to retire jobTimeout + this ago and still there (the worker itself aborts its job at jobTimeout). */
  retirementGrace: 600,
  /** Launched maxLifetime + jobTimeout + this ago: terminated whatever it reports (the worker leaves at maxLifetime and aborts its last job at + jobTimeout). */
  endOfLifeGrace: 600,
};

/** Kept for the readers of earlier releases: the grace after jobTimeout before an ignored retirement request ends in termination. */
export const RETIREMENT_GRACE_SECONDS = FENCE.retirementGrace;

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

// ---- what is coming: forecast demand and targetWait -----------------------------------------

/** A launch decided now reaches a job this much after its boot: the pass, the event's way to it. */
export const LAUNCH_LATENCY_SECONDS = 10;
/** The share of arrivals a targetWait pool lets wait longer than targetWait (it is a p95). */
const WAIT_QUANTILE = 0.95;

/** The smallest k with P(N <= k) >= q for N ~ Poisson(mean). */
export function poissonQuantile(mean: number, q: number): number {
  if (!(mean > 0)) return 0;
  let k = 0;
  let p = Math.exp(-mean);
  let cdf = p;
  while (cdf < q && k < 10_000) {
    k++;
    p *= mean / k;
    cdf += p;
  }
  return k;
}

/**
 * The idle target of a pool with `targetWait`: never below the IdleCount rule (the floor); enough
 * idle workers that the arrivals nobody can forecast during one boot find one when a boot would
 * make them wait longer than targetWait; and as many as arrive per boot time anyway (keeping a
 * worker that is used within a boot time costs less than booting another).
 */
export function waitTarget(targetWait: number, fc: PoolForecast, floor: number): number {
  const perBoot = (fc.arrivalRate ?? 0) * fc.bootSeconds;
  const forWait = fc.bootSeconds + LAUNCH_LATENCY_SECONDS > targetWait ? poissonQuantile(perBoot, WAIT_QUANTILE) : 0;
  return Math.max(floor, forWait, Math.floor(perBoot));
}

/**
 * Idle workers that were never the idle target: launched for demand (pending or forecast jobs),
 * as the launch's `launched-for` tag says (of its `count` instances, `demand` were for jobs).
 * docker+machine never has such a machine while IdleCount > 0: it creates machines only for the
 * idle target and jobs wait for them (facts.md, idle_limit_strategy.go). So IdleTime, a promise
 * about idle-target machines, does not hold them: once idle, they leave as soon as nothing pending
 * or coming needs them and the idle target is met without them. With IdleCount = 0 docker+machine
 * creates a machine per job and keeps it IdleTime after; there, only a demand worker that never
 * ran a job (an idle or sooner-free worker took the job it was launched for) is surplus.
 * Which instances of a launch were for demand is not recorded one by one: its busy members, then
 * the ones gone, count first (the conservative reading), then the idle ones in id order.
 */
function notIdleTargetWorkers(workers: readonly WorkerView[], usedToo: boolean): Set<string> {
  const groups = new Map<string, WorkerView[]>();
  for (const w of workers) {
    if (!w.launchedFor) continue;
    const members = groups.get(w.launchedFor.launch);
    if (members) members.push(w);
    else groups.set(w.launchedFor.launch, [w]);
  }
  const out = new Set<string>();
  for (const members of groups.values()) {
    const { demand, count } = members[0].launchedFor!;
    const candidates = members.filter(usedToo ? (w) => w.state === 'idle' : neverUsed).sort(byId);
    const gone = Math.max(0, count - members.length);
    let left = demand - gone - (members.length - candidates.length);
    for (const w of candidates) if (left-- > 0) out.add(w.id);
  }
  return out;
}

/** Idle since it became ready: its idle-since tag is at most a minute after its ready tag (both rounded to the minute). */
const neverUsed = (w: WorkerView) => w.state === 'idle' && w.builds === 0 && w.readyAt !== undefined && (w.idleSince ?? w.readyAt) - w.readyAt <= 60_000;

// ---- named rules ---------------------------------------------------------------------------

/** The time limits of a worker: its pool's, or for an orphan (pool no longer configured) the longest any pool or the defaults allow. */
interface Limits {
  bootTimeout: number;
  jobTimeout: number;
  maxLifetime: number;
}
const poolLimits = (pool: Pool): Limits => ({ bootTimeout: pool.worker.bootTimeout, jobTimeout: pool.jobTimeout, maxLifetime: pool.worker.maxLifetime });
function orphanLimits(config: Config): Limits {
  const all = [...config.pools.map(poolLimits), { bootTimeout: DEFAULTS.bootTimeout, jobTimeout: DEFAULTS.jobTimeout, maxLifetime: DEFAULTS.maxLifetime }];
  return { bootTimeout: Math.max(...all.map((l) => l.bootTimeout)), jobTimeout: Math.max(...all.map((l) => l.jobTimeout)), maxLifetime: Math.max(...all.map((l) => l.maxLifetime)) };
}

/**
 * The limits the fence counts with for this worker: the longer of what it was launched with (it
 * runs by those: a shorter maxLifetime or jobTimeout in today's config must not end it before it
 * leaves) and the pool's current ones.
 */
function workerLimits(l: Limits, w: WorkerView): Limits {
  if (!w.limits) return l;
  return { bootTimeout: Math.max(l.bootTimeout, w.limits.bootTimeout), jobTimeout: Math.max(l.jobTimeout, w.limits.jobTimeout), maxLifetime: Math.max(l.maxLifetime, w.limits.maxLifetime) };
}

const maxBuildsReached = (pool: Pool, w: WorkerView) => pool.MaxBuilds > 0 && w.builds >= pool.MaxBuilds;
const templateOutdated = (w: WorkerView, current: string | undefined) => current !== undefined && w.templateVersion !== undefined && w.templateVersion !== current;
const totalWorkersExceeded = (pool: Pool, total: number) => pool.limit > 0 && total > pool.limit;
const idleTimeExceeded = (s: ActiveSettings, w: WorkerView, now: number) => now - (w.idleSince ?? w.launchedAt) >= s.IdleTime * 1000;
const bootTimedOut = (l: Limits, w: WorkerView, now: number) => w.state === 'booting' && now - w.launchedAt > l.bootTimeout * 1000;
/** The worker may still be running a job, by its own latest word (the action-time defence, reconcile.ts). */
export const mayRunJob = (w: WorkerView) => w.reported === 'busy' || w.reported === 'draining';

// The fence: each rule names an instance that cannot have taken a job since the snapshot, or has reached its hard end.
const stoppedInstance = (w: WorkerView) => w.problem === 'stopped';
const endOfLife = (l: Limits, w: WorkerView, now: number) => now - w.launchedAt > (l.maxLifetime + l.jobTimeout + FENCE.endOfLifeGrace) * 1000;
const runnerStopped = (w: WorkerView, now: number) => w.reported === 'stopped' && w.stoppedAt !== undefined && now - w.stoppedAt >= FENCE.stoppedGrace * 1000 && w.instanceState !== 'shutting-down';
const neverReady = (l: Limits, w: WorkerView, now: number) =>
  w.readyAt === undefined && w.reported === undefined && w.instanceState !== 'shutting-down' && now - w.launchedAt > (l.bootTimeout + FENCE.bootGrace) * 1000;
const retirementIgnored = (l: Limits, w: WorkerView, now: number) => w.retireRequestedAt !== undefined && now - w.retireRequestedAt > (l.jobTimeout + FENCE.retirementGrace) * 1000;

/** Caps on launches; each returns how many more workers it allows (Infinity when unset). */
const roomUnderLimit = (pool: Pool, total: number) => (pool.limit > 0 ? Math.max(0, pool.limit - total) : Infinity);
const roomUnderGrowthRate = (pool: Pool, booting: number) => (pool.MaxGrowthRate > 0 ? Math.max(0, pool.MaxGrowthRate - booting) : Infinity);

// ---- repair: instances that are broken, stuck or ignored a request --------------------------

/**
 * The termination the fence allows for this worker, if any. Order matters only for the reason
 * given: every rule that matches would be safe on its own.
 */
export function fenceTermination(l: Limits, w: WorkerView, now: number): { kind: TerminationKind; reason: string } | undefined {
  if (stoppedInstance(w)) return { kind: 'stopped-instance', reason: 'instance is stopped; workers never stop (shutdown = terminate), so nothing runs on it' };
  if (endOfLife(l, w, now))
    return {
      kind: 'end-of-life',
      reason: `launched ${Math.round((now - w.launchedAt) / 3_600_000)} h ago, past maxLifetime ${l.maxLifetime} s + jobTimeout ${l.jobTimeout} s + ${FENCE.endOfLifeGrace} s: ended whatever it reports${w.reported ? ` (reports ${w.reported})` : ''}`,
    };
  if (runnerStopped(w, now)) return { kind: 'runner-stopped', reason: `reported its runner stopped for good ${Math.round((now - w.stoppedAt!) / 1000)} s ago and is still running` };
  if (neverReady(l, w, now)) return { kind: 'never-ready', reason: `never reported ready, ${Math.round((now - w.launchedAt) / 1000)} s after launch (bootTimeout ${l.bootTimeout} s + ${FENCE.bootGrace} s)` };
  if (retirementIgnored(l, w, now))
    return { kind: 'retirement-ignored', reason: `still running ${Math.round((now - w.retireRequestedAt!) / 1000)} s after its retirement request (jobTimeout ${l.jobTimeout} s + ${FENCE.retirementGrace} s)` };
  return undefined;
}

interface Triage {
  healthy: WorkerView[];
  retire: Retirement[];
  terminate: Termination[];
  /** Workers leaving (retiring, interrupted, asked to go now, or being terminated): counted in Total, never available. */
  leaving: number;
}

const silentReason = `no report for ${REPORTING.silenceSeconds} s (a worker repeats its state every ${REPORTING.heartbeatSeconds} s): its runner may be gone`;

function triage(l: Limits, workers: readonly WorkerView[], now: number): Triage {
  const t: Triage = { healthy: [], retire: [], terminate: [], leaving: 0 };
  const ask = (w: WorkerView, kind: RetirementKind, reason: string) => {
    if (w.retireRequestedAt === undefined) t.retire.push({ id: w.id, reason, kind });
    t.leaving++;
  };
  for (const w of workers) {
    const lw = workerLimits(l, w);
    const fence = fenceTermination(lw, w, now);
    if (fence) {
      t.terminate.push({ id: w.id, ...fence });
      t.leaving++;
    } else if (w.state === 'busy') {
      // A worker reported busy is left to finish, whatever else is wrong with it: an impaired busy
      // worker is asked to retire once it is idle. A silent one may never say it is idle again.
      if (w.problem === 'silent') ask(w, 'silent', silentReason);
      else if (w.problem) t.leaving++;
      else t.healthy.push(w);
    } else if (w.state === 'retiring' || w.problem === 'interrupted') {
      // Leaving already; an interrupted one is reclaimed by AWS. Its capacity is replaced below.
      t.leaving++;
    } else if (bootTimedOut(lw, w, now)) {
      ask(w, 'boot-timeout', `did not become ready within bootTimeout (${lw.bootTimeout} s)`);
    } else if (w.problem === 'impaired') {
      ask(w, 'impaired', 'failed EC2 status checks');
    } else if (w.problem === 'silent') {
      ask(w, 'silent', silentReason);
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
  forecast?: PoolForecast;
  /** Idle workers that were never the idle target (launched for jobs; retired as soon as nothing needs them). */
  surplus: Set<string>;
}

export function plan(config: Config, at: Date, snapshot: Snapshot): Plan {
  const now = at.getTime();
  const byPool = new Map<string, WorkerView[]>();
  for (const p of config.pools) byPool.set(p.name, []);
  const orphans: Plan['orphans'] = { retire: [], terminate: [] };
  const orphanL = orphanLimits(config);
  for (const w of snapshot.workers) {
    const list = byPool.get(w.pool);
    if (list) {
      list.push(w);
      continue;
    }
    // An instance of a pool no longer in the config: asked to retire (a busy one finishes its job
    // first), terminated only behind the fence, like any other.
    const fence = fenceTermination(workerLimits(orphanL, w), w, now);
    if (fence) orphans.terminate.push({ id: w.id, ...fence, reason: `pool "${w.pool}" is not in the config; ${fence.reason}` });
    else if (w.retireRequestedAt === undefined) orphans.retire.push({ id: w.id, reason: `pool "${w.pool}" is not in the config`, kind: 'orphan' });
  }

  // First look at every pool: counts, idle targets, repairs.
  const work: PoolWork[] = config.pools.map((pool) => {
    const workers = byPool.get(pool.name)!;
    const settings = activeSettings(pool, at);
    const tri = triage(poolLimits(pool), workers, now);
    const demand = snapshot.demand[pool.name] ?? { pending: 0, running: 0 };
    const counts: PoolCounts = { booting: 0, idle: 0, busy: 0, retiring: tri.leaving, total: workers.length, pending: demand.pending, running: demand.running };
    const idle: WorkerView[] = [];
    for (const w of tri.healthy) {
      counts[w.state as 'booting' | 'idle' | 'busy']++;
      if (w.state === 'idle') idle.push(w);
    }
    const forecast = snapshot.forecast?.[pool.name];
    const floor = idleTarget(settings, counts.busy);
    const target = pool.targetWait !== undefined && forecast ? waitTarget(pool.targetWait, forecast, floor) : floor;
    // With targetWait the controller sizes idle capacity itself: any idle worker nothing needs may go.
    const surplus = pool.targetWait !== undefined && forecast ? new Set(idle.map((w) => w.id)) : notIdleTargetWorkers(tri.healthy, settings.IdleCount > 0);
    return { pool, settings, counts, idleTarget: target, triage: tri, idle, forecast, surplus };
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

  const pools: PoolPlan[] = work.map(({ pool, settings, counts, idleTarget: target, triage: tri, idle, forecast, surplus }) => {
    const current = snapshot.templateVersions?.[pool.name];
    const hold = snapshot.holds?.[pool.name];
    const pendingServed = Math.min(counts.pending, jobRoom);
    // A worker looks idle until its busy report arrives (a lost one is repaired by the heartbeat,
    // 10 minutes on): running jobs of the pool that no busy or leaving worker accounts for run on
    // "idle" workers, which are then no capacity for pending jobs. Before, such a worker took the
    // place of a launch and a pending job waited for some worker to end its job (387 s in the
    // quiet-week bench, seed 103; up to jobTimeout).
    const runningOnIdle = Math.min(counts.idle, Math.max(0, counts.running - counts.busy - tri.leaving));
    let available = counts.booting + counts.idle - runningOnIdle;
    // A pool an operator holds launches nothing: of its pending jobs only those its idle and booting
    // workers can take will run, so only those take a share of `concurrent` from the other pools.
    if (jobRoom !== Infinity) jobRoom -= hold ? Math.min(pendingServed, available) : pendingServed;
    // Jobs forecast to become pending within a boot time, and busy workers free before a new one boots.
    const expected = forecast ? Math.min(Math.floor(forecast.expected + 0.5), jobRoom) : 0;
    const freeing = forecast ? Math.min(forecast.freeing, counts.busy) : 0;
    const needed = Math.max(0, pendingServed + expected - freeing);
    let total = counts.total;

    // Retire idle workers, in docker+machine's order of checks, longest idle first.
    const retire: Retirement[] = [...tri.retire];
    idle.sort((a, b) => (a.idleSince ?? a.launchedAt) - (b.idleSince ?? b.launchedAt) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    for (const w of idle) {
      let reason: string | undefined;
      let kind: RetirementKind = 'idle';
      const retiredHere = retire.length - tri.retire.length;
      if (maxBuildsReached(pool, w)) [reason, kind] = [`ran ${w.builds} builds (MaxBuilds ${pool.MaxBuilds})`, 'max-builds'];
      // A changed launch template (AMI, user data, instance profile) reaches the fleet as idle
      // workers are replaced: the replacement is launched in this pass, busy ones follow when idle.
      else if (templateOutdated(w, current)) [reason, kind] = [`launch template changed (version ${w.templateVersion}, now ${current})`, 'template'];
      // docker+machine removes an idle machine when Total >= limit; an idle worker at the limit is
      // exactly the capacity the next job needs, so only a pool over its limit gives one back.
      else if (totalWorkersExceeded(pool, total - tri.leaving - retiredHere)) [reason, kind] = [`pool has ${total - tri.leaving - retiredHere} workers, over limit ${pool.limit}`, 'limit'];
      // Nothing pending or coming within a boot time needs it, and the idle target is met without it.
      else if (surplus.has(w.id) && available - 1 - needed >= target)
        [reason, kind] = [
          `${pool.targetWait !== undefined ? 'idle' : 'launched for jobs, not the idle target'}; ${available - 1} available remain for ${pendingServed} pending and ${expected} forecast job(s) within ${Math.round(forecast?.horizonSeconds ?? 0)} s (${freeing} busy worker(s) free sooner) and idle target ${target}`,
          'surplus',
        ];
      else if (idleTimeExceeded(settings, w, now) && available - 1 - pendingServed >= target)
        reason = `idle ${Math.round((now - (w.idleSince ?? w.launchedAt)) / 1000)} s (IdleTime ${settings.IdleTime} s) and ${available - 1 - pendingServed} idle remain for idle target ${target}`;
      if (reason) {
        retire.push({ id: w.id, reason, kind });
        available--;
      }
    }
    // An operator's drain (lib/controller/holds.ts): every worker of the pool not yet asked is asked
    // to retire now; a busy one finishes its job first. Through the retire tag, never a termination.
    if (hold?.mode === 'draining') {
      const asked = new Set([...retire, ...tri.terminate].map((x) => x.id));
      for (const w of byPool.get(pool.name)!)
        if (w.retireRequestedAt === undefined && !asked.has(w.id))
          retire.push({ id: w.id, reason: `pool drained by ${hold.by} at ${hold.at}${w.state === 'busy' ? ' (leaves after its job)' : ''}`, kind: 'drain' });
    }
    // A worker asked to retire stays in Total until it is gone, as Removing does in docker+machine.
    total = counts.total;

    // Launch for pending jobs first (those no busy worker frees up for sooner than a boot), then for
    // the jobs forecast within a boot time, then for the idle target.
    const forPending = Math.max(0, pendingServed - available - freeing);
    const forForecast = Math.max(0, needed - available - forPending);
    const spare = Math.max(0, available - pendingServed);
    const forIdle = Math.max(0, target - spare);
    const wanted = forPending + forForecast + forIdle;
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
    // An operator's pause or drain: nothing is launched, for pending jobs or the idle target.
    if (hold) {
      const held = launch;
      launch = 0;
      cappedBy.splice(0, cappedBy.length, `pool ${hold.mode} by operator`);
      const reasons = held > 0 ? [`${held} wanted, held: pool ${hold.mode} by ${hold.by} since ${hold.at}`] : [];
      return { pool: pool.name, settings, counts, idleTarget: target, launch, launchReasons: reasons, cappedBy: wanted > 0 ? cappedBy : [], retire: retire.sort(byId), terminate: tri.terminate.sort(byId), hold };
    }
    if (machineRoom !== Infinity) machineRoom -= launch;
    const launchedForPending = Math.min(launch, forPending);
    const launchedForForecast = Math.min(launch - launchedForPending, forForecast);
    const launchReasons: string[] = [];
    if (launchedForPending > 0) launchReasons.push(`${launchedForPending} for pending jobs`);
    if (launchedForForecast > 0) launchReasons.push(`${launchedForForecast} for jobs forecast within ${Math.round(forecast!.horizonSeconds)} s`);
    if (launch - launchedForPending - launchedForForecast > 0) launchReasons.push(`${launch - launchedForPending - launchedForForecast} for the idle target ${target}`);
    if (wanted > launch) launchReasons.push(`${wanted - launch} more wanted, held back by ${cappedBy.join(', ')}`);
    if (launch > 0 && freeing > 0 && pendingServed > available) launchReasons.push(`${Math.min(freeing, pendingServed - available)} pending left to busy workers free within ${Math.round(forecast!.bootSeconds)} s`);

    return {
      pool: pool.name,
      settings,
      counts,
      idleTarget: target,
      launch,
      launchForDemand: launchedForPending + launchedForForecast,
      launchReasons,
      cappedBy: launch < wanted ? cappedBy : [],
      retire: retire.sort(byId),
      terminate: tri.terminate.sort(byId),
    };
  });

  orphans.retire.sort(byId);
  orphans.terminate.sort(byId);
  return { at: at.toISOString(), pools, orphans };
}
