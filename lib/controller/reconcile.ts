/**
 * The reconcile pass: the single writer of controller state (docs/controller.md).
 *
 *   load state -> apply job events -> expire -> the GitLab side (lib/gitlab: route, confirm and
 *   discover jobs within its request budget)
 *   -> discover the fleet from EC2 tags -> apply workers' reports (newest wins, sender checked)
 *   -> snapshot -> plan() -> act (launch, retire, terminate only behind the fence, record the
 *   reports as tags) -> save state
 *
 * Nothing here terminates an instance the planner's fence does not allow (docs/architecture.md,
 * "The fence"), and at action time a worker that reports a job is spared except at its end of life.
 *
 * Level-triggered, as Karpenter's controllers are: the fleet is rediscovered every pass and the
 * plan recomputed from what exists, so a lost webhook, a crashed pass or an instance terminated
 * behind our back is repaired by the next pass. What EC2 cannot tell (jobs, cooldowns, backoffs)
 * lives in the state store, bounded and written only when it changed.
 *
 * Launch errors are handled per class (facts.md, CreateFleet):
 *  - capacity:   the instance type / subnet cools down for config.capacityCooldown; others are tried next pass
 *  - quota:      the pool backs off (stored, exponential, capped) and it is logged at error level
 *  - throttling: retried inside the adapter within a budget; if that runs out, the pool backs off
 *  - invalid:    the pool is paused until its config changes or a manual pass: never a retry loop
 * so a permanently failing CreateFleet costs at most one call per backoff period, never the seed's
 * 60 blind retries (gitlab-runner #2771).
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Config, Pool } from '../config';
import type { Plan, Retirement, Termination, WorkerView } from '../model';
import { plan as makePlan } from '../planner';
import { applyJobEvents, demandByPool, describeUntaken, expireJobs, holdBackUntakenJobs } from './jobs';
import { IDEMPOTENT_MISMATCH, type CapacityPool, type Clock, type Decide, type Fleet, type FleetWorker, type GitLabPassReport, type GitLabSide, type InstanceMarker, type JobEvent, type LaunchError, type LaunchErrorClass, type Logger, type MarkOutcome, type OperatorHolds } from './ports';
import { expireProjects, type Backoff, type ControllerState, type Cooldown, type StateStore } from './state';
import { formatInterrupted, TAGS } from './tags';
import { applyReports, ReportMemory, type ReportsOutcome, type WorkerReport } from './reports';
import { mayRunJob } from '../planner';
import { LEARN_AFTER_MS, type ForecastMemory } from '../forecast';
import type { PoolForecast } from '../model';

export interface ReconcileOptions {
  /** How long a launch that discovery does not show yet still counts as booting. Default 180 s. */
  inflightGraceMs?: number;
  /**
   * Milliseconds the pass may still take (called several times; wall time, not the pass clock).
   * The reconcile Lambda passes its remaining time minus a margin. Unset: no time limit.
   */
  remainingMs?: () => number;
  /**
   * Share of the time left at the start of the pass that GitLab calls (routing, confirmation,
   * discovery) may use; the rest is kept for discovery, launches and the state save. Default 0.4.
   */
  gitlabTimeShare?: number;
  /**
   * A pool's CreateFleet is sent only while at least this much of remainingMs is left (default
   * 12 s): the launch, the tag writes and the state save that records it must all fit, or the
   * next pass would re-send the same ClientToken (docs/controller.md, "Idempotency"). Skipped
   * launches are made by the next pass.
   */
  launchReserveMs?: number;
  /** Retirements, terminations and report tags are sent only while this much is left (default 5 s); else the next pass does them. */
  actReserveMs?: number;
}

export interface ReconcileDeps {
  config: Config;
  stage: string;
  fleet: Fleet;
  store: StateStore;
  /** The GitLab side (lib/gitlab/sync.ts GitLabDemand); without it, webhook events are the only source of demand. */
  gitlab?: GitLabSide;
  clock: Clock;
  log: Logger;
  options?: ReconcileOptions;
  /** What this container remembers of workers' reports between passes (the newest per instance). */
  reportMemory?: ReportMemory;
  /**
   * Role ids of the deployment's worker roles: a report must come from one of them, in the session
   * of the instance it speaks for (reports.ts senderProblem). Empty: the session is still checked.
   */
  workerRoleIds?: readonly string[];
  /** Operators' pause / drain per pool (lib/controller/holds.ts), read at the start of every pass. */
  holds?: OperatorHolds;
  /** What this container knows of pipelines in flight and has learnt (lib/forecast.ts); without it the plan sees pending jobs only. */
  forecast?: ForecastMemory;
}

export interface PassInput {
  events: JobEvent[];
  /** Workers' reports received for this pass (lib/controller/reports.ts). */
  reports?: WorkerReport[];
  /**
   * How the report queue was read for this pass: 'drained' (taken until it looked empty),
   * 'behind' (the pass took its cap and more wait), 'unread' (not read). Unset: the caller hands
   * over every report there is (the simulation, tests). Terminations that depend on a report not
   * having come (never-ready, retirement-ignored) wait for a drained queue.
   */
  reportQueue?: 'drained' | 'behind' | 'unread';
  trigger: 'queue' | 'schedule' | 'interruption' | 'manual';
  /** Defaults to a new id (time + random). The simulation passes its own for determinism. */
  passId?: string;
}

export type PoolLaunchError = LaunchError & { pool: string };

export interface PassReport {
  passId: string;
  at: string;
  plan: Plan;
  launched: Record<string, number>;
  launchErrors: PoolLaunchError[];
  retired: Retirement[];
  terminated: Termination[];
  stateWrites: number;
  decisions: string[];
  durationMs: number;
  /** GitLab API requests made (routing, confirmation, discovery). */
  apiCalls: number;
  /** Pending jobs found by listing projects' pending jobs that no webhook had announced. */
  jobsRepaired: number;
  /** What the GitLab side did, when there is one. */
  gitlab?: GitLabPassReport;
  /** Jobs GitLab keeps waiting that are not handled as usual: stuck (no runner of ours takes them: not demand) and refused (the API keeps failing for their project). */
  heldBack: { stuck: number; refused: number };
  /** The launch template version each pool launches from, when the fleet reports it. */
  templateVersions: Record<string, string>;
  /**
   * The id this pass's launches carry (instance tag `pass`, in-flight records): `<epoch>-g<generation>`
   * of the state it loaded, so a re-run from the same unsaved state uses the same one.
   */
  launchId: string;
  /** True when GitLab calls stopped because their share of the pass's time was used up. */
  gitlabOutOfTime: boolean;
  /** What became of the workers' reports: ids to delete (settled) and to leave for a later delivery (retry). */
  reports: { settled: string[]; retry: string[]; counts: ReportsOutcome['counts']; tagWrites: number };
  /** Boot timelines of the workers that reported ready in this pass (seconds after launch). */
  boots: ReportsOutcome['boots'];
  /** True when launches or other actions were left to the next pass for lack of time. */
  outOfTime: boolean;
  /** What was coming per pool (lib/forecast.ts), pipelines followed, and the GitLab requests their graphs cost. */
  forecast?: { pools: Record<string, PoolForecast>; pipelines: number; requests: number };
}

/** Stored backoff per error class: base and cap (ms). Quota waits for instances to end. */
export const BACKOFF: Record<Backoff['class'], { baseMs: number; capMs: number }> = {
  quota: { baseMs: 120_000, capMs: 3_600_000 },
  throttling: { baseMs: 30_000, capMs: 900_000 },
  capacity: { baseMs: 60_000, capMs: 600_000 },
  other: { baseMs: 60_000, capMs: 1_800_000 },
};

export function storedBackoffMs(cls: Backoff['class'], failures: number): number {
  const { baseMs, capMs } = BACKOFF[cls];
  return Math.min(capMs, baseMs * 2 ** Math.max(0, Math.min(30, failures - 1)));
}

/** Identifies a pool's configuration: a paused pool resumes when it changes. */
export function poolConfigHash(pool: Pool): string {
  return createHash('sha256').update(JSON.stringify(pool)).digest('hex').slice(0, 12);
}

export function newPassId(now: number): string {
  return `${new Date(now).toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')}-${randomBytes(3).toString('hex')}`;
}

const DEFAULTS = { inflightGraceMs: 180_000 };
type Opts = typeof DEFAULTS;
const LAUNCH_RESERVE_MS = 12_000;
const ACT_RESERVE_MS = 5_000;
const REPORT_TAG_KEYS = { ready: TAGS.ready, state: TAGS.state, idleSince: TAGS.idleSince, stoppedAt: TAGS.stoppedAt, builds: TAGS.builds };

/**
 * The ClientToken of a pool's CreateFleet. Deterministic in what a re-run from the same unsaved
 * state sees (deployment, stage, pool, state epoch, generation), so a pass that died after
 * CreateFleet and before its save sends the same token again: AWS returns the first fleet or, when
 * the request differs (count, tags), IdempotentParameterMismatch, and nothing is launched twice.
 * In practice a re-run is a mismatch (the launched-at tag differs), handled as a launch in flight.
 * Not covered: the very first pass of a new or lost state gets a fresh, clock-based epoch on re-run;
 * there only discovery of the launch-id tag (and the in-flight grace) prevents a second launch.
 * The count and overrides are deliberately left out: with them a re-run that now sees part of
 * the launch would get a fresh token and launch again. CreateFleet tokens: at most 64 ASCII
 * characters (EC2 API, "Ensuring idempotency"); this is 44, leaving room for the adapter's `-od`.
 */
export function launchClientToken(deployment: string, stage: string, pool: string, epoch: string, generation: number): string {
  return `gsa-${createHash('sha256').update(JSON.stringify([deployment, stage, pool, epoch, generation])).digest('hex').slice(0, 40)}`;
}

export async function reconcilePass(deps: ReconcileDeps, input: PassInput): Promise<PassReport> {
  const started = performance.now();
  const { config, fleet, store, clock, log } = deps;
  const remaining = deps.options?.remainingMs ?? (() => Infinity);
  let outOfTime = false;
  const opts: Opts = { inflightGraceMs: deps.options?.inflightGraceMs ?? DEFAULTS.inflightGraceMs };
  const now = clock.now();
  const passId = input.passId ?? newPassId(now);
  const decisions: string[] = [];
  const decide: Decide = (line, level = 'info') => {
    decisions.push(line);
    log[level](line, { passId });
  };

  // ---- state -------------------------------------------------------------------------------
  const state = await store.load();
  const holds = deps.holds ? await deps.holds.read() : {};
  // A state without an epoch (first pass, or rebuilt after a loss) starts one from the clock: a
  // fresh lifetime never reuses the ClientTokens of an earlier one (tokens stay valid >= 24 h).
  if (!state.epoch) {
    state.epoch = Math.max(0, Math.floor(now)).toString(36);
    state.generation = 0;
  }
  const launchId = `${state.epoch}-g${state.generation}`;

  // ---- demand ------------------------------------------------------------------------------
  const applied = applyJobEvents(config, state, input.events, { now, rememberProjects: deps.gitlab !== undefined, log });
  if (applied['no-pool']) decide(`${applied['no-pool']} job event(s) carry tags no pool serves; not counted`);
  const expired = expireJobs(config, state, now);
  if (expired.pending || expired.running)
    decide(`expired ${expired.pending} pending job(s) unconfirmed for pendingJobTtl ${config.pendingJobTtl} s and ${expired.running} running job(s) past jobTimeout`);
  expireProjects(state, now);
  // What is coming (lib/forecast.ts): the hooks' pipelines, names, stages and durations.
  const fm = deps.forecast;
  const single = config.pools.length === 1 ? config.pools[0].name : undefined;
  // A finished job's tombstone keeps its pool: its duration teaches that pool's typical job too.
  const poolOfJob = (id: number) => {
    const j = state.jobs.get(id);
    return j ? j.pool || single : undefined;
  };
  if (fm) {
    fm.load(state.learned);
    fm.observeEvents(
      input.events.map((e) => ({ ...e, at: e.receivedAt })),
      poolOfJob,
    );
  }
  const gitlab = deps.gitlab ? await deps.gitlab.syncJobs({ config, state, now, log, decide, remainingMs: deps.options?.remainingMs, timeShare: deps.options?.gitlabTimeShare }) : undefined;
  const learnt = fm && deps.gitlab?.learnPipelines ? await learnPipelineGraphs(deps, fm, now) : undefined;

  // ---- fleet -------------------------------------------------------------------------------
  const found = (await fleet.discover(now)) as FleetWorker[];
  // What the workers reported since the last pass, applied to what EC2 shows (newest wins).
  const memory = deps.reportMemory ?? new ReportMemory();
  const reportsBehind = input.reportQueue !== undefined && input.reportQueue !== 'drained';
  const rep = applyReports(found, input.reports ?? [], { memory, workerRoleIds: deps.workerRoleIds ?? [], tagKeys: REPORT_TAG_KEYS, now, judgeSilence: !reportsBehind });
  if (rep.refusals.length)
    log.warn('worker reports refused: not sent by the instance they speak for', { passId, refused: rep.refusals.length, examples: rep.refusals.slice(0, 5) });
  if (input.reports?.length) log.info('worker reports applied', { passId, reports: input.reports.length, ...rep.counts, tagWrites: rep.writes.length });
  // Each ready worker's boot, as it timed it (docs/worker.md, "Boot timeline"); also a metric per pool (lib/lambda/metrics.ts).
  for (const b of rep.boots) log.info('worker boot timeline', { passId, instanceId: b.instanceId, pool: b.pool, ...b.boot });
  if (rep.quietSince !== undefined)
    log.error(`no worker has reported since ${new Date(rep.quietSince).toISOString()}: the reporting path (the report queue, the workers' network or their IAM role) looks down; no worker is taken for silent meanwhile`, { passId });
  for (const f of rep.floods) log.error(`worker ${f.instanceId} sent ${f.reports} reports in one pass (a worker sends a few): a job on it may be flooding the report queue`, { passId, ...f });
  const discovered = rep.workers;
  // Each worker's first known readiness: how long the pool's boots take (the forecast's horizon).
  if (fm) for (const b of rep.readied) fm.boots.observe(b.pool, b.seconds);
  recordInterruptionCooldowns(config, state, discovered, now);
  pruneCooldowns(state, now);
  const workers: WorkerView[] = [...discovered, ...inflightPlaceholders(state, discovered, now, opts.inflightGraceMs)];

  const templateVersions = await currentTemplateVersions(deps);

  // ---- plan --------------------------------------------------------------------------------
  // Jobs idle workers did not take are not demand: no runner of ours will run them (docs/controller.md).
  for (const line of describeUntaken(holdBackUntakenJobs(config, state, discovered, now), config)) decide(line, 'warn');
  // One pool: jobs of events count before GitLab confirms them only when it could not be asked.
  const demand = demandByPool(config, state, now, { unrouted: !gitlab || gitlab.unavailable !== undefined || gitlab.outOfTime });
  const forecast = fm?.forecast(config, now, poolOfJob);
  const plan = makePlan(config, new Date(now), { workers, demand, templateVersions, holds, ...(forecast ? { forecast } : {}) });
  for (const pp of plan.pools) if (pp.hold && pp.launchReasons.length) decide(`pool ${pp.pool}: ${pp.launchReasons.join('; ')}`);

  // ---- act ---------------------------------------------------------------------------------
  const launched: Record<string, number> = {};
  const launchErrors: PoolLaunchError[] = [];
  resumePausedPools(deps, state, input.trigger, decide);
  let calledCreateFleet = false;
  const launchReserve = deps.options?.launchReserveMs ?? LAUNCH_RESERVE_MS;
  for (const pp of plan.pools) {
    if (pp.launch <= 0) continue;
    const pool = config.pools.find((p) => p.name === pp.pool)!;
    if (remaining() < launchReserve) {
      // Launching now could leave no time to save the state that records it.
      outOfTime = true;
      decide(`pool ${pool.name}: launch of ${pp.launch} left to the next pass: ${Math.round(remaining() / 1000)} s left in this one`, 'warn');
      continue;
    }
    const n = await launchWorkers(deps, state, pool, { count: pp.launch, forDemand: pp.launchForDemand }, pp.launchReasons, launchId, now, opts.inflightGraceMs, decide);
    if (n.launched > 0) launched[pool.name] = n.launched;
    launchErrors.push(...n.errors);
    calledCreateFleet ||= n.attempted;
  }
  // Every token of this generation has been used: the next pass derives new ones, once this save
  // succeeds. A pass that launched always writes meta (in-flight record, cooldown or backoff), so
  // the generation costs no extra write; a pass that dies before the save keeps the old one.
  if (calledCreateFleet) state.generation++;

  const byId = new Map(workers.map((w) => [w.id, w]));
  const retire = [...plan.pools.flatMap((p) => p.retire), ...plan.orphans.retire].filter((r) => !r.id.startsWith('inflight:'));
  // Defence in depth, at action time: whatever the planner says, a worker that reports a job (busy,
  // or draining with its runner still up) is not terminated, except at its hard end of life or
  // when EC2 has stopped it. It is asked to retire instead.
  // A report still in the queue (a backlog, a flood by a hostile job, a pass that read none) may be
  // the ready or draining report these two wait for: they wait for a pass that read the queue to the end.
  const held: Termination[] = [];
  const terminate = [...plan.pools.flatMap((p) => p.terminate), ...plan.orphans.terminate].filter((t) => {
    if (t.id.startsWith('inflight:')) return false;
    if (reportsBehind && (t.kind === 'never-ready' || t.kind === 'retirement-ignored')) return !held.push(t);
    const w = byId.get(t.id);
    // A silent worker's busy is stale: alive, it saw the request and aborted its job by now.
    if (!w || !mayRunJob(w) || (w.problem === 'silent' && t.kind === 'retirement-ignored')) return true;
    if (t.kind === 'end-of-life' || t.kind === 'stopped-instance') {
      log.warn('terminating a worker that reports a job', { passId, id: t.id, kind: t.kind, reason: t.reason, reported: w.reported });
      return true;
    }
    log.error('refused to terminate a worker that reports a job; asking it to retire instead', { passId, id: t.id, kind: t.kind, reason: t.reason, reported: w.reported });
    if (w.retireRequestedAt === undefined && !retire.some((r) => r.id === t.id)) retire.push({ id: t.id, reason: `${t.reason} (reports ${w.reported}: retire after the current job)` });
    return false;
  });
  if (held.length) decide(`${held.length} termination(s) (${[...new Set(held.map((t) => t.kind))].join(', ')}) held: the report queue is behind (${input.reportQueue}); a report still in it may be the one they wait for`, 'warn');
  const actReserve = deps.options?.actReserveMs ?? ACT_RESERVE_MS;
  const canAct = () => {
    if (remaining() >= actReserve) return true;
    outOfTime = true;
    return false;
  };
  const act = canAct();
  const retired = act ? await requestRetirements(fleet, retire, decide) : [];
  const terminated = act ? await terminateBehindFence(fleet, terminate, decide) : [];
  if (!act && (retire.length || terminate.length)) decide(`${retire.length} retirement(s) and ${terminate.length} termination(s) left to the next pass: ${Math.round(remaining() / 1000)} s left in this one`, 'warn');
  const reports = await recordReports(deps, rep, memory, canAct);

  // ---- save --------------------------------------------------------------------------------
  // The last pass that decided something, for the status command. A pass that only repeats the
  // stored decisions (a pool held in backoff, say) keeps the stored record: no SSM write for it.
  const errorLines = launchErrors.map((e) => `${e.pool}: ${e.code}${e.instanceType ? ` ${e.instanceType}` : ''}${e.subnet ? ` ${e.subnet}` : ''}: ${e.message}`.slice(0, 300));
  const learned = fm?.toStore(now);
  if (learned !== undefined) state.learned = learned;
  const repeated = state.lastPass !== undefined && JSON.stringify([state.lastPass.decisions, state.lastPass.errors]) === JSON.stringify([decisions, errorLines]);
  if ((decisions.length > 0 || launchErrors.length > 0) && !repeated)
    state.lastPass = {
      passId,
      at: new Date(now).toISOString(),
      trigger: input.trigger,
      launched,
      retired: retired.length,
      terminated: terminated.length,
      errors: errorLines,
      decisions,
    };
  const { writes } = await store.save(state);

  return {
    passId,
    at: new Date(now).toISOString(),
    plan,
    launched,
    launchErrors,
    retired,
    terminated,
    stateWrites: writes,
    decisions,
    durationMs: Math.round((performance.now() - started) * 10) / 10,
    apiCalls: (gitlab?.requests ?? 0) + (learnt?.requests ?? 0),
    jobsRepaired: gitlab?.discovered ?? 0,
    ...(gitlab ? { gitlab } : {}),
    heldBack: heldBackCounts(state),
    templateVersions,
    launchId,
    gitlabOutOfTime: gitlab?.outOfTime ?? false,
    reports,
    boots: rep.boots,
    outOfTime,
    ...(forecast ? { forecast: { pools: forecast, pipelines: fm!.book.size, requests: learnt?.requests ?? 0 } } : {}),
  };
}

/** Asks the GitLab side for the graphs of new pipelines (what the budget leaves) and gives them to the forecast. */
async function learnPipelineGraphs(deps: ReconcileDeps, fm: ForecastMemory, now: number) {
  const projects = fm.book.projectsToLearn(now, LEARN_AFTER_MS);
  if (projects.length === 0) return undefined;
  const r = await deps.gitlab!.learnPipelines!({ projects, now, log: deps.log, remainingMs: deps.options?.remainingMs });
  for (const g of r.graphs) fm.book.applyGraph(g, deps.config, fm.durations, now);
  fm.book.listed(r.listed);
  if (r.requests || r.failed) deps.log.info('pipeline graphs listed', { projects: projects.length, listed: r.listed.length, pipelines: r.graphs.length, requests: r.requests, failed: r.failed, deferred: r.deferred });
  return r;
}

/**
 * Writes what the workers reported onto their instances (one CreateTags per tag set) and says
 * which reports are done: a report whose write failed, or was not tried for lack of time, is
 * left in the queue and delivered again.
 */
async function recordReports(deps: ReconcileDeps, rep: ReportsOutcome, memory: ReportMemory, canAct: () => boolean): Promise<PassReport['reports']> {
  const settled = [...rep.settled];
  const retry = [...rep.retry];
  let tagWrites = 0;
  const done = (w: ReportsOutcome['writes'][number]) => {
    settled.push(...w.reports);
    for (const a of w.applied) memory.set(a.instanceId, a.seq, a.builds);
  };
  if (rep.writes.length && !deps.fleet.recordWorkerState) rep.writes.forEach(done);
  else if (rep.writes.length && canAct()) {
    let ok: boolean[];
    try {
      ok = await deps.fleet.recordWorkerState!(rep.writes.map((w) => w.write));
    } catch (e) {
      deps.log.warn('recording worker reports failed; they are delivered again', { error: (e as Error).message });
      ok = rep.writes.map(() => false);
    }
    tagWrites = rep.writes.length;
    rep.writes.forEach((w, k) => (ok[k] ? done(w) : retry.push(...w.reports)));
  } else for (const w of rep.writes) retry.push(...w.reports);
  return { settled, retry, counts: rep.counts, tagWrites };
}

function heldBackCounts(state: ControllerState): { stuck: number; refused: number } {
  const out = { stuck: 0, refused: 0 };
  for (const j of state.jobs.values()) if (j.status === 'stuck' || j.status === 'refused') out[j.status]++;
  return out;
}

/** The template version each pool launches from now; unknown (undefined) retires nothing. */
async function currentTemplateVersions(deps: ReconcileDeps): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const fleet = deps.fleet;
  if (!fleet.currentTemplateVersion) return out;
  for (const pool of deps.config.pools) {
    try {
      const v = await fleet.currentTemplateVersion(pool);
      if (v !== undefined) out[pool.name] = v;
    } catch (e) {
      deps.log.warn('launch template version unknown; no retirement for a changed template this pass', { pool: pool.name, error: (e as Error).message });
    }
  }
  return out;
}

// ---- fleet ---------------------------------------------------------------------------------

const cooldownKey = (c: { pool: string; instanceType: string; subnet: string; market?: string }) => `${c.pool}|${c.instanceType}|${c.subnet}|${c.market ?? '*'}`;

function addCooldown(state: ControllerState, c: Cooldown): void {
  const existing = state.cooldowns.find((x) => cooldownKey(x) === cooldownKey(c));
  if (existing) {
    if (c.until > existing.until) Object.assign(existing, c);
  } else state.cooldowns.push(c);
}

function pruneCooldowns(state: ControllerState, now: number): void {
  state.cooldowns = state.cooldowns.filter((c) => c.until > now);
}

/** An interrupted or rebalance-marked instance says its type and subnet are short of spot capacity. */
function recordInterruptionCooldowns(config: Config, state: ControllerState, workers: readonly FleetWorker[], now: number): void {
  for (const w of workers) {
    if (w.interruptedAt === undefined || !w.instanceType || !w.subnet) continue;
    const until = w.interruptedAt + config.capacityCooldown * 1000;
    if (until <= now) continue;
    addCooldown(state, { pool: w.pool, instanceType: w.instanceType, subnet: w.subnet, market: 'spot', until, reason: `${w.interruptionKind ?? 'interruption'} of ${w.id}` });
  }
}

/**
 * DescribeInstances is eventually consistent: instances a pass launched may be missing from the
 * next pass's discovery for a few seconds. Count them as booting for a grace period so the next
 * pass does not launch them again. Only when the fleet reports pass ids (the EC2 adapter does).
 * Records are pruned when the next launch is recorded (launchWorkers), not here: dropping one
 * would cost an SSM write in a pass that otherwise changes nothing.
 */
function inflightPlaceholders(state: ControllerState, workers: readonly FleetWorker[], now: number, graceMs: number): WorkerView[] {
  const out: WorkerView[] = [];
  for (const l of state.inflight) {
    if (now - l.at >= graceMs || l.at > now) continue;
    const poolWorkers = workers.filter((w) => w.pool === l.pool);
    const reportsPassIds = poolWorkers.length === 0 || poolWorkers.some((w) => w.passId !== undefined);
    if (!reportsPassIds) continue;
    // One CreateFleet's instances become visible together in practice; once any is seen, the
    // launch is visible and a missing one was terminated (and must be replaced), not delayed.
    if (poolWorkers.some((w) => w.passId === l.passId)) continue;
    for (let k = 0; k < l.count; k++) out.push({ id: `inflight:${l.passId}:${k}`, pool: l.pool, state: 'booting', launchedAt: l.at, builds: 0 });
  }
  return out;
}

// ---- act -----------------------------------------------------------------------------------

function resumePausedPools(deps: ReconcileDeps, state: ControllerState, trigger: PassInput['trigger'], decide: Decide): void {
  for (const [name, pause] of Object.entries(state.paused)) {
    const pool = deps.config.pools.find((p) => p.name === name);
    if (!pool) {
      delete state.paused[name];
    } else if (poolConfigHash(pool) !== pause.configHash) {
      delete state.paused[name];
      decide(`pool ${name}: configuration changed, launches resume (were paused after ${pause.code})`);
    } else if (trigger === 'manual') {
      delete state.paused[name];
      decide(`pool ${name}: manual pass, launches resume (were paused after ${pause.code})`);
    }
  }
  for (const name of Object.keys(state.backoffs)) if (!deps.config.pools.some((p) => p.name === name)) delete state.backoffs[name];
}

async function launchWorkers(
  deps: ReconcileDeps,
  state: ControllerState,
  pool: Pool,
  { count, forDemand }: { count: number; forDemand?: number },
  reasons: string[],
  launchId: string,
  now: number,
  inflightGraceMs: number,
  decide: Decide,
): Promise<{ launched: number; errors: PoolLaunchError[]; attempted: boolean }> {
  const pause = state.paused[pool.name];
  if (pause) {
    decide(
      `pool ${pool.name}: launch of ${count} refused: paused since ${new Date(pause.since).toISOString()} after an invalid request (${pause.code}: ${pause.message}); fix the pool's config or launch template, then change the config or run a manual pass`,
      'error',
    );
    return { launched: 0, errors: [], attempted: false };
  }
  const backoff = state.backoffs[pool.name];
  if (backoff && backoff.until > now) {
    decide(
      `pool ${pool.name}: launch of ${count} held: ${backoff.class} backoff after ${backoff.code} until ${new Date(backoff.until).toISOString()} (failure ${backoff.failures})`,
      backoff.class === 'quota' ? 'error' : 'warn',
    );
    return { launched: 0, errors: [], attempted: false };
  }
  const avoid: CapacityPool[] = state.cooldowns
    .filter((c) => c.pool === pool.name && c.until > now)
    .map((c) => ({ instanceType: c.instanceType, subnet: c.subnet, market: c.market }));

  const clientToken = launchClientToken(deps.config.deployment, deps.stage, pool.name, state.epoch, state.generation);
  let result;
  try {
    result = await deps.fleet.launch({ pool, count, passId: launchId, clientToken, avoid, ...(forDemand !== undefined ? { forDemand } : {}) });
  } catch (e) {
    result = { launched: [], errors: [{ class: 'other' as LaunchErrorClass, code: (e as Error).name || 'Error', message: (e as Error).message }] };
  }
  const n = result.launched.length;
  // Same token, other parameters: a pass that died before saving used this generation's token
  // (its instances may not be visible yet). Launch nothing more for the pool, hold the rest of the
  // shortfall as in flight under the same launch id (its instances carry it), and let the next
  // pass, with a new generation, launch what is still missing.
  const mismatch = result.errors.find((e) => e.code === IDEMPOTENT_MISMATCH);
  const errors: PoolLaunchError[] = result.errors.filter((e) => e.code !== IDEMPOTENT_MISMATCH).map((e) => ({ ...e, pool: pool.name }));
  const held = mismatch ? count - n : 0;
  if (n > 0 || held > 0) {
    state.inflight = state.inflight.filter((l) => now - l.at < inflightGraceMs && l.at <= now);
    state.inflight.push({ pool: pool.name, passId: launchId, at: now, count: n + held });
  }
  if (n > 0) decide(`pool ${pool.name}: launched ${n}${n < count ? ` of ${count}` : ''} (${reasons.join(', ')}) as launch ${launchId}`);
  if (mismatch)
    decide(
      `pool ${pool.name}: a launch from an earlier pass that did not save its state may be in flight (CreateFleet ${IDEMPOTENT_MISMATCH} for launch ${launchId}); ${held} held as booting for ${Math.round(inflightGraceMs / 1000)} s, nothing more launched this pass`,
      'warn',
    );

  // Capacity: cool the failing type/subnet down; the next pass tries the others.
  const capacity = errors.filter((e) => e.class === 'capacity');
  for (const e of capacity) {
    if (e.instanceType && e.subnet)
      addCooldown(state, { pool: pool.name, instanceType: e.instanceType, subnet: e.subnet, market: e.market, until: now + deps.config.capacityCooldown * 1000, reason: e.code });
  }
  if (capacity.length)
    decide(`pool ${pool.name}: no ${capacity.some((e) => e.market === 'on-demand') ? '' : 'spot '}capacity for ${describeOverrides(capacity)}; cooling down ${deps.config.capacityCooldown} s`, 'warn');

  const invalid = errors.find((e) => e.class === 'invalid');
  const quota = errors.find((e) => e.class === 'quota');
  const throttled = errors.find((e) => e.class === 'throttling');
  const other = errors.find((e) => e.class === 'other');
  if (invalid) {
    // A bug or a bad config: retrying cannot help and would hammer the API.
    state.paused[pool.name] = { code: invalid.code, message: invalid.message.slice(0, 300), since: now, configHash: poolConfigHash(pool) };
    delete state.backoffs[pool.name];
    decide(`pool ${pool.name}: launch rejected as invalid (${invalid.code}: ${invalid.message}); pool paused until its config changes or a manual pass`, 'error');
  } else if (quota || throttled || other || (n === 0 && capacity.length > 0 && capacity.every((e) => !e.instanceType || !e.subnet))) {
    const e = quota ?? throttled ?? other ?? capacity[0];
    const cls: Backoff['class'] = quota ? 'quota' : throttled ? 'throttling' : other ? 'other' : 'capacity';
    const failures = (state.backoffs[pool.name]?.failures ?? 0) + 1;
    const until = now + storedBackoffMs(cls, failures);
    state.backoffs[pool.name] = { class: cls, code: e.code, failures, until };
    const what = cls === 'quota' ? 'account quota reached' : cls === 'throttling' ? 'EC2 API throttling persisted' : cls === 'capacity' ? 'no capacity anywhere' : 'launch failed';
    decide(`pool ${pool.name}: ${what} (${e.code}: ${e.message}); no launch until ${new Date(until).toISOString()} (failure ${failures})`, cls === 'quota' || cls === 'other' ? 'error' : 'warn');
  } else if (n > 0) {
    delete state.backoffs[pool.name];
  }
  return { launched: n, errors, attempted: true };
}

function describeOverrides(errors: readonly LaunchError[]): string {
  const items = [...new Set(errors.map((e) => (e.instanceType ? `${e.instanceType}${e.subnet ? ` in ${e.subnet}` : ''}` : e.code)))];
  return items.length > 4 ? `${items.slice(0, 4).join(', ')} and ${items.length - 4} more` : items.join(', ');
}

async function requestRetirements(fleet: Fleet, retire: Retirement[], decide: Decide): Promise<Retirement[]> {
  if (!retire.length) return [];
  try {
    await fleet.requestRetirement(retire);
  } catch (e) {
    decide(`retirement requests failed, retried next pass: ${(e as Error).message}`, 'error');
    return [];
  }
  for (const r of retire) decide(`retire ${r.id}: ${r.reason}`);
  return retire;
}

async function terminateBehindFence(fleet: Fleet, terminate: Termination[], decide: Decide): Promise<Termination[]> {
  if (!terminate.length) return [];
  try {
    await fleet.terminate(terminate);
  } catch (e) {
    decide(`terminations failed, retried next pass: ${(e as Error).message}`, 'error');
    return [];
  }
  for (const t of terminate) decide(`terminate ${t.id} (${t.kind}): ${t.reason}`);
  return terminate;
}

// ---- interruption --------------------------------------------------------------------------

export interface InterruptionDeps {
  fleet: InstanceMarker;
  clock: Clock;
  log: Logger;
}

export interface InterruptionNotice {
  instanceId: string;
  kind: 'interruption' | 'rebalance' | 'state-change';
  /** For state-change events: the new EC2 state (pending, running, stopping, stopped, shutting-down, terminated). */
  state?: string;
}

export interface InterruptionOutcome {
  instanceId: string;
  action: MarkOutcome | 'ignored';
  /** True when capacity may need replacing now: the caller should queue a reconcile pass (trigger 'interruption'). */
  wakeReconcile: boolean;
  reason: string;
}

/**
 * What the interruption Lambda does with an EventBridge EC2 event. It only tags the instance
 * (EC2); the reconcile pass, the single SSM writer, reads the tag at its next discovery, replaces
 * the capacity and cools the instance type / subnet down.
 *  - interruption (Spot Instance Interruption Warning, ~2 min ahead): tag `interrupted`.
 *  - rebalance (Rebalance Recommendation): tag `interrupted=rebalance …` and `retire`, so the
 *    worker finishes its job and leaves before AWS reclaims it.
 *  - state-change: nothing to tag (discovery sees EC2's state); wake the controller when a worker
 *    stops or goes away.
 */
export async function markInterrupted(deps: InterruptionDeps, notice: InterruptionNotice): Promise<InterruptionOutcome> {
  const { instanceId, kind } = notice;
  if (!/^i-[0-9a-f]{8,17}$/.test(instanceId)) throw new Error(`markInterrupted: "${instanceId}" is not an EC2 instance id (expected i- followed by 8 or 17 hex digits)`);
  const now = deps.clock.now();
  if (kind === 'state-change') {
    const gone = ['stopping', 'stopped', 'shutting-down', 'terminated'].includes(notice.state ?? '');
    return { instanceId, action: 'ignored', wakeReconcile: gone, reason: `state ${notice.state ?? '(none)'}: ${gone ? 'capacity may need replacing' : 'nothing to do'}` };
  }
  if (kind !== 'interruption' && kind !== 'rebalance') throw new Error(`markInterrupted: unknown kind "${String(kind)}" (accepted: interruption, rebalance, state-change)`);
  const tags: Record<string, string> = { [TAGS.interrupted]: formatInterrupted(kind, now) };
  if (kind === 'rebalance') tags[TAGS.retire] = new Date(now).toISOString();
  const action = await deps.fleet.markInstance(instanceId, tags);
  const reason = action === 'tagged' ? `${kind}: tagged` : action === 'gone' ? `${kind}: instance already gone` : `${kind}: not an instance of this deployment and stage, left alone`;
  deps.log.info('interruption notice handled', { instanceId, kind, action });
  return { instanceId, action, wakeReconcile: action === 'tagged', reason };
}
