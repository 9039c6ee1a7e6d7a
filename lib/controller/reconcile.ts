/**
 * The reconcile pass: the single writer of controller state (docs/controller.md).
 *
 *   load state -> apply job events -> expire -> (schedule passes) scan recent projects for pending
 *   jobs whose webhook was lost -> route / confirm jobs through the GitLab API (one bounded budget)
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
import { applyApiJob, applyEvent, demandByPool, expireJobs } from './jobs';
import { IDEMPOTENT_MISMATCH, type CapacityPool, type Clock, type Fleet, type FleetWorker, type GitLabJobs, type InstanceMarker, type JobEvent, type LaunchError, type LaunchErrorClass, type Logger, type MarkOutcome } from './ports';
import { expireProjects, touchProject, type Backoff, type ControllerState, type Cooldown, type StateStore } from './state';
import { formatInterrupted, TAGS } from './tags';
import { applyReports, ReportMemory, type ReportsOutcome, type WorkerReport } from './reports';
import { mayRunJob } from '../planner';

export interface ReconcileOptions {
  /**
   * GitLab API calls a pass may make to route and confirm jobs. GitLab rate-limits its API
   * (gitlab.com: 2,000 authenticated API requests a minute per user, docs.gitlab.com
   * user/gitlab_com/rate_limits; self-managed: set by the operator); default 100.
   */
  apiCallsPerPass?: number;
  /** GitLab API requests in flight at once. Default 8. */
  apiConcurrency?: number;
  /** A pending job not confirmed by an event for this long is re-read from the API before it holds capacity. Default 120 s. */
  confirmPendingAfterMs?: number;
  /**
   * A running job no event confirmed for this long is re-read from the API (after the pending
   * ones, within the same budget): a lost `success` delivery would otherwise hold `concurrent`
   * capacity until jobTimeout. Default 15 min.
   */
  confirmRunningAfterMs?: number;
  /** How long a launch that discovery does not show yet still counts as booting. Default 180 s. */
  inflightGraceMs?: number;
  /**
   * Projects whose pending jobs a schedule pass lists (GitLabJobs.listPendingJobs), taken from
   * apiCallsPerPass. Default 10: half for projects with jobs in state, half rotating over the
   * projects seen in the last 24 h.
   */
  projectScansPerPass?: number;
  /**
   * Milliseconds the pass may still take (called several times; wall time, not the pass clock).
   * The reconcile Lambda passes its remaining time minus a margin. Unset: no time limit.
   */
  remainingMs?: () => number;
  /**
   * Share of the time left at the start of the pass that GitLab calls (scans, routing,
   * confirmation) may use; the rest is kept for discovery, launches and the state save. Default 0.4.
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
  gitlab?: GitLabJobs;
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
}

export interface PassInput {
  events: JobEvent[];
  /** Workers' reports received for this pass (lib/controller/reports.ts). */
  reports?: WorkerReport[];
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
  /** GitLab API calls made (project scans, routing and confirmation). */
  apiCalls: number;
  /** Pending jobs found by listing projects' pending jobs that no webhook had announced. */
  jobsRepaired: number;
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
  /** True when launches or other actions were left to the next pass for lack of time. */
  outOfTime: boolean;
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

const DEFAULTS = { apiCallsPerPass: 100, apiConcurrency: 8, confirmPendingAfterMs: 120_000, confirmRunningAfterMs: 900_000, inflightGraceMs: 180_000, projectScansPerPass: 10 };
type Opts = Omit<typeof DEFAULTS & ReconcileOptions, 'remainingMs' | 'gitlabTimeShare' | 'launchReserveMs' | 'actReserveMs'>;
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

/** How much time GitLab calls have left: a share of what the pass had when it started. */
interface TimeBudget {
  leftMs(): number;
  exhausted: boolean;
}

function gitlabTimeBudget(options: ReconcileOptions | undefined): TimeBudget {
  const remaining = options?.remainingMs;
  if (!remaining) return { leftMs: () => Infinity, exhausted: false };
  const share = Math.min(1, Math.max(0, options?.gitlabTimeShare ?? 0.4));
  const reserve = Math.max(0, remaining()) * (1 - share);
  return { leftMs: () => remaining() - reserve, exhausted: false };
}

/**
 * Calls GitLab for each item, `apiConcurrency` at a time, within the time budget, handing each
 * answer to `use`. Stops at the first failed call (the client already retried within its own
 * budget; asking again this pass would only spend the rate limit) and reports it.
 */
async function callInChunks<T, R>(
  items: readonly T[],
  opts: Opts,
  time: TimeBudget,
  call: (item: T) => Promise<R>,
  use: (item: T, answer: R) => void,
): Promise<{ calls: number; failure?: unknown }> {
  let calls = 0;
  for (let at = 0; at < items.length; at += opts.apiConcurrency) {
    if (outOfTime(time)) break;
    const chunk = items.slice(at, at + opts.apiConcurrency);
    calls += chunk.length;
    const answers = await settleWithin(chunk.map(call), time);
    if (!answers) break;
    let failure: unknown;
    answers.forEach((a, k) => {
      if (a.status === 'rejected') failure ??= a.reason;
      else use(chunk[k], a.value);
    });
    if (failure !== undefined) return { calls, failure };
  }
  return { calls };
}

/**
 * Promise.allSettled, abandoned when the budget runs out first (undefined). A GitLab that hangs
 * costs at most its share of the pass: its late answers are ignored, the jobs stay unrouted or
 * unconfirmed for the next pass. The client's own timeouts end the abandoned requests.
 */
async function settleWithin<T>(work: Promise<T>[], time: TimeBudget): Promise<PromiseSettledResult<T>[] | undefined> {
  const all = Promise.allSettled(work);
  const left = time.leftMs();
  if (left === Infinity) return all;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), Math.max(0, left));
  });
  try {
    const out = await Promise.race([all, timeout]);
    if (out === undefined) time.exhausted = true;
    return out;
  } finally {
    clearTimeout(timer);
  }
}

/** True (and marks the budget) when no new GitLab call may start. */
function outOfTime(time: TimeBudget): boolean {
  if (!time.exhausted && time.leftMs() <= 0) time.exhausted = true;
  return time.exhausted;
}

export async function reconcilePass(deps: ReconcileDeps, input: PassInput): Promise<PassReport> {
  const started = performance.now();
  const { config, fleet, store, clock, log } = deps;
  const { remainingMs: _r, gitlabTimeShare: _s, launchReserveMs: _l, actReserveMs: _a, ...tunables } = deps.options ?? {};
  const remaining = deps.options?.remainingMs ?? (() => Infinity);
  let outOfTime = false;
  const opts: Opts = { ...DEFAULTS, ...tunables };
  const time = gitlabTimeBudget(deps.options);
  const now = clock.now();
  const passId = input.passId ?? newPassId(now);
  const decisions: string[] = [];
  const decide = (line: string, level: 'info' | 'warn' | 'error' = 'info', fields: Record<string, unknown> = {}) => {
    decisions.push(line);
    log[level](line, { passId, ...fields });
  };

  // ---- state -------------------------------------------------------------------------------
  const state = await store.load();
  // A state without an epoch (first pass, or rebuilt after a loss) starts one from the clock: a
  // fresh lifetime never reuses the ClientTokens of an earlier one (tokens stay valid >= 24 h).
  if (!state.epoch) {
    state.epoch = Math.max(0, Math.floor(now)).toString(36);
    state.generation = 0;
  }
  const launchId = `${state.epoch}-g${state.generation}`;

  // ---- demand ------------------------------------------------------------------------------
  applyJobEvents(deps, state, input.events, decide);
  const expired = expireJobs(config, state, now);
  if (expired.pending || expired.running)
    decide(`expired ${expired.pending} pending job(s) unconfirmed for pendingJobTtl ${config.pendingJobTtl} s and ${expired.running} running job(s) past jobTimeout`);
  expireProjects(state, now);
  const scan = input.trigger === 'schedule' || input.trigger === 'manual' ? await scanProjectsForPendingJobs(deps, state, now, opts, decide, time) : { calls: 0, repaired: 0 };
  const apiCalls = scan.calls + (await routeAndConfirmJobs(deps, state, input.events, now, { ...opts, apiCallsPerPass: opts.apiCallsPerPass - scan.calls }, decide, time));
  if (time.exhausted)
    decide(`GitLab API time budget used up (${Math.round((deps.options?.gitlabTimeShare ?? 0.4) * 100)} % of the pass's time); unrouted and unconfirmed jobs wait for the next pass`, 'warn');

  // ---- fleet -------------------------------------------------------------------------------
  const found = (await fleet.discover(now)) as FleetWorker[];
  // What the workers reported since the last pass, applied to what EC2 shows (newest wins).
  const memory = deps.reportMemory ?? new ReportMemory();
  const rep = applyReports(found, input.reports ?? [], { memory, workerRoleIds: deps.workerRoleIds ?? [], tagKeys: REPORT_TAG_KEYS, now });
  if (rep.refusals.length)
    log.warn('worker reports refused: not sent by the instance they speak for', { passId, refused: rep.refusals.length, examples: rep.refusals.slice(0, 5) });
  if (input.reports?.length) log.info('worker reports applied', { passId, reports: input.reports.length, ...rep.counts, tagWrites: rep.writes.length });
  const discovered = rep.workers;
  recordInterruptionCooldowns(config, state, discovered, now);
  pruneCooldowns(state, now);
  const workers: WorkerView[] = [...discovered, ...inflightPlaceholders(state, discovered, now, opts.inflightGraceMs)];

  const templateVersions = await currentTemplateVersions(deps);

  // ---- plan --------------------------------------------------------------------------------
  const demand = demandByPool(config, state);
  const plan = makePlan(config, new Date(now), { workers, demand, templateVersions });

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
    const n = await launchWorkers(deps, state, pool, pp.launch, pp.launchReasons, launchId, now, opts.inflightGraceMs, decide);
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
  const terminate = [...plan.pools.flatMap((p) => p.terminate), ...plan.orphans.terminate].filter((t) => {
    if (t.id.startsWith('inflight:')) return false;
    const w = byId.get(t.id);
    if (!w || !mayRunJob(w)) return true;
    if (t.kind === 'end-of-life' || t.kind === 'stopped-instance') {
      log.warn('terminating a worker that reports a job', { passId, id: t.id, kind: t.kind, reason: t.reason, reported: w.reported });
      return true;
    }
    log.error('refused to terminate a worker that reports a job; asking it to retire instead', { passId, id: t.id, kind: t.kind, reason: t.reason, reported: w.reported });
    if (w.retireRequestedAt === undefined && !retire.some((r) => r.id === t.id)) retire.push({ id: t.id, reason: `${t.reason} (reports ${w.reported}: retire after the current job)` });
    return false;
  });
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
    apiCalls,
    jobsRepaired: scan.repaired,
    templateVersions,
    launchId,
    gitlabOutOfTime: time.exhausted,
    reports,
    outOfTime,
  };
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

type Decide = (line: string, level?: 'info' | 'warn' | 'error', fields?: Record<string, unknown>) => void;

// ---- demand --------------------------------------------------------------------------------

function applyJobEvents(deps: ReconcileDeps, state: ControllerState, events: readonly JobEvent[], decide: Decide): void {
  const counts = { added: 0, updated: 0, removed: 0, ignored: 0, 'unknown-status': 0, 'no-pool': 0 };
  const badStatuses = new Set<string>();
  // Projects are remembered only when they can be scanned: otherwise they would cost writes for nothing.
  const rememberProjects = typeof deps.gitlab?.listPendingJobs === 'function';
  // Oldest first, so that a batch holding pending then running for a job ends running.
  for (const ev of [...events].sort((a, b) => a.receivedAt - b.receivedAt)) {
    if (!Number.isSafeInteger(ev.jobId) || ev.jobId <= 0 || !Number.isSafeInteger(ev.projectId) || ev.projectId <= 0) {
      deps.log.warn('job event ignored: jobId and projectId must be positive integers', { jobId: ev.jobId, projectId: ev.projectId });
      counts.ignored++;
      continue;
    }
    if (rememberProjects && Number.isFinite(ev.receivedAt)) touchProject(state, ev.projectId, Math.min(ev.receivedAt, deps.clock.now()));
    const outcome = applyEvent(deps.config, state, ev);
    counts[outcome]++;
    if (outcome === 'unknown-status') badStatuses.add(ev.status);
  }
  if (badStatuses.size) deps.log.warn('job events with an unknown build_status ignored', { statuses: [...badStatuses] });
  if (events.length) deps.log.info('job events applied', { events: events.length, ...counts });
  if (counts['no-pool']) decide(`${counts['no-pool']} job event(s) carry tags no pool serves; not counted`);
}

/**
 * Which projects this pass lists: every known one when they fit the budget; else half the budget
 * for the projects with the most recent jobs in state (a lost `pending` delivery is most likely in
 * a pipeline that is running now), the other half rotating over all the others (projects with
 * jobs in state and projects seen in job events in the last 24 h). The rotation is driven by the
 * clock (one step a minute), so it needs no stored cursor and no SSM write.
 */
export function projectsToScan(state: ControllerState, now: number, budget: number): number[] {
  if (budget <= 0) return [];
  const lastActive = new Map<number, number>();
  for (const j of state.jobs.values()) lastActive.set(j.projectId, Math.max(lastActive.get(j.projectId) ?? 0, j.seenAt));
  const active = [...lastActive].sort((a, b) => b[1] - a[1] || a[0] - b[0]).map(([id]) => id);
  const known = new Set([...active, ...state.projects.keys()]);
  if (known.size <= budget) return [...known];
  const top = active.slice(0, Math.ceil(budget / 2));
  const picked = new Set(top);
  const rest = [...known].filter((id) => !picked.has(id)).sort((a, b) => a - b);
  const n = budget - top.length;
  const start = (Math.floor(now / 60_000) * n) % rest.length;
  return [...top, ...Array.from({ length: n }, (_, k) => rest[(start + k) % rest.length])];
}

/**
 * Repairs lost `pending` webhooks (facts.md: webhooks are lossy): lists the pending jobs of a few
 * recently seen projects (`GET /projects/:id/jobs?scope[]=pending`, one page of 100, newest first)
 * and adds the ones nobody announced, routed by their tag_list. Known pending jobs are confirmed
 * only when they are due for confirmation anyway, so a scan changes state (and costs an SSM
 * write) only when it finds something. A job's absence from the list proves nothing (one page),
 * so nothing is removed here; confirmation through getJob does that.
 */
async function scanProjectsForPendingJobs(deps: ReconcileDeps, state: ControllerState, now: number, opts: Opts, decide: Decide, time: TimeBudget): Promise<{ calls: number; repaired: number }> {
  const gitlab = deps.gitlab;
  if (!gitlab?.listPendingJobs) return { calls: 0, repaired: 0 };
  const projects = projectsToScan(state, now, Math.min(opts.projectScansPerPass, opts.apiCallsPerPass));
  let repaired = 0;
  let noPool = 0;
  const { calls, failure } = await callInChunks(projects, opts, time, (projectId) => gitlab.listPendingJobs!(projectId), (projectId, jobs) => {
    for (const job of jobs) {
      if (!Number.isSafeInteger(job.id) || job.id <= 0 || job.status !== 'pending') continue;
      const known = state.jobs.get(job.id);
      if (known && known.status === 'pending' && known.pool !== '' && now - known.seenAt < opts.confirmPendingAfterMs) continue;
      const outcome = applyApiJob(deps.config, state, job.id, projectId, job, now);
      if (outcome === 'added' && !known) repaired++;
      if (outcome === 'no-pool' && !known) noPool++;
    }
  });
  if (failure !== undefined) decide(`GitLab API unavailable, pending-job scan deferred: ${(failure as Error).message}`, 'warn');
  if (calls) deps.log.info('GitLab API: projects scanned for pending jobs', { calls, repaired, noPool, projectsKnown: state.projects.size });
  if (repaired) decide(`${repaired} pending job(s) found by listing projects' pending jobs (their webhook was lost)`);
  return { calls, repaired };
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

/**
 * Routes jobs nobody could route (no tags in the event) and re-reads pending jobs no event
 * confirmed lately, within a per-pass budget of API calls: GitLab rate-limits its API, and a
 * thousand-job burst must not become a thousand calls in one pass. Oldest first.
 */
async function routeAndConfirmJobs(deps: ReconcileDeps, state: ControllerState, events: readonly JobEvent[], now: number, opts: Opts, decide: Decide, time: TimeBudget): Promise<number> {
  const gitlab = deps.gitlab;
  if (!gitlab) return 0;
  const byPipeline = await routeByPipeline(deps, state, events, now, opts, decide, time);
  if (byPipeline.failed || time.exhausted) return byPipeline.calls;
  opts = { ...opts, apiCallsPerPass: opts.apiCallsPerPass - byPipeline.calls };
  const unrouted: [number, number, number][] = [];
  const stale: [number, number, number][] = [];
  const staleRunning: [number, number, number][] = [];
  for (const [id, j] of state.jobs) {
    if (j.status === 'finished') continue;
    if (j.pool === '') unrouted.push([id, j.projectId, j.seenAt]);
    else if (j.status === 'pending' && now - j.seenAt >= opts.confirmPendingAfterMs) stale.push([id, j.projectId, j.seenAt]);
    else if (j.status === 'running' && now - j.seenAt >= opts.confirmRunningAfterMs) staleRunning.push([id, j.projectId, j.seenAt]);
  }
  const byAge = (a: [number, number, number], b: [number, number, number]) => a[2] - b[2] || a[0] - b[0];
  const work = [...unrouted.sort(byAge), ...stale.sort(byAge), ...staleRunning.sort(byAge)].slice(0, Math.max(0, opts.apiCallsPerPass));
  const outcome = { routed: 0, removed: 0, confirmed: 0 };
  // A few requests in flight at once keep a 100-call pass around a second against a typical GitLab.
  const { calls, failure } = await callInChunks(work, opts, time, ([id, projectId]) => gitlab.getJob(projectId, id), ([id, projectId], job) => {
    const before = state.jobs.get(id);
    const result = applyApiJob(deps.config, state, id, projectId, job, now);
    const after = state.jobs.get(id);
    if (!after || after.status === 'finished') outcome.removed++;
    else if (before?.pool === '' && after.pool) outcome.routed++;
    else if (result !== 'no-pool') outcome.confirmed++;
  });
  if (failure !== undefined) decide(`GitLab API unavailable, routing and confirmation deferred: ${(failure as Error).message}`, 'warn');
  if (calls) deps.log.info('GitLab API: jobs routed and confirmed', { calls, ...outcome, unroutedLeft: Math.max(0, unrouted.length - calls) });
  if (outcome.removed) decide(`${outcome.removed} job(s) no longer pending according to the GitLab API`);
  return byPipeline.calls + calls;
}

/**
 * The Job Hook carries pipeline_id: when two or more unrouted jobs of this pass's events share a
 * pipeline, one `GET /projects/:id/pipelines/:pipeline_id/jobs?per_page=100` routes all of them
 * (and finds the pipeline's pending jobs whose webhook was lost) instead of one getJob each.
 * Biggest pipelines first, within the pass's API budget; jobs the page does not show (pipelines of
 * more than 100 jobs) fall through to getJob. Pipeline ids are not stored: jobs left unrouted by an
 * exhausted budget are routed one by one by later passes.
 */
async function routeByPipeline(
  deps: ReconcileDeps,
  state: ControllerState,
  events: readonly JobEvent[],
  now: number,
  opts: Opts,
  decide: Decide,
  time: TimeBudget,
): Promise<{ calls: number; failed: boolean }> {
  const gitlab = deps.gitlab;
  if (!gitlab?.listPipelineJobs || opts.apiCallsPerPass <= 0) return { calls: 0, failed: false };
  const groups = new Map<string, { projectId: number; pipelineId: number; jobs: Set<number> }>();
  for (const ev of events) {
    if (ev.pipelineId === undefined || !Number.isSafeInteger(ev.pipelineId) || ev.pipelineId <= 0) continue;
    const j = state.jobs.get(ev.jobId);
    if (!j || j.pool !== '' || j.status === 'finished') continue;
    const key = `${ev.projectId}:${ev.pipelineId}`;
    const g = groups.get(key) ?? { projectId: ev.projectId, pipelineId: ev.pipelineId, jobs: new Set<number>() };
    g.jobs.add(ev.jobId);
    groups.set(key, g);
  }
  const work = [...groups.values()].filter((g) => g.jobs.size >= 2).sort((a, b) => b.jobs.size - a.jobs.size || a.pipelineId - b.pipelineId).slice(0, opts.apiCallsPerPass);
  const outcome = { routed: 0, repaired: 0 };
  const { calls, failure } = await callInChunks(work, opts, time, (g) => gitlab.listPipelineJobs!(g.projectId, g.pipelineId), ({ projectId }, jobs) => {
    for (const job of jobs) {
      const known = state.jobs.get(job.id);
      // Only what this call is for: unrouted jobs, and pending jobs nobody announced.
      if (known ? known.pool !== '' || known.status === 'finished' : job.status !== 'pending') continue;
      const result = applyApiJob(deps.config, state, job.id, projectId, job, now);
      if (known && state.jobs.get(job.id)?.pool) outcome.routed++;
      else if (!known && result === 'added') outcome.repaired++;
    }
  });
  if (failure !== undefined) {
    decide(`GitLab API unavailable, routing and confirmation deferred: ${(failure as Error).message}`, 'warn');
    return { calls, failed: true };
  }
  if (calls) deps.log.info('GitLab API: jobs routed by pipeline', { calls, ...outcome });
  if (outcome.repaired) decide(`${outcome.repaired} pending job(s) found in their pipeline's job list (their webhook was lost)`);
  return { calls, failed: false };
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
  count: number,
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
    result = await deps.fleet.launch({ pool, count, passId: launchId, clientToken, avoid });
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
