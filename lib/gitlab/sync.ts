/**
 * The GitLab side of a reconcile pass (the GitLabSide port): brings the controller's jobs up to
 * date with GitLab within a request budget and a time budget, in three kinds of work:
 *
 *  - route:    projects with jobs whose pool is not known yet (a Job Hook carries no job tags) or
 *              whose existence is unconfirmed (a forged delivery with the right secret);
 *  - confirm:  projects with pending jobs no event confirmed for CONFIRM_PENDING_MS or running jobs
 *              for CONFIRM_RUNNING_MS: a lost `success` delivery must stop holding `concurrent`;
 *  - discover: the projects we know of (gitlab.watch, seen in events in the last 7 days, with jobs
 *              in state), least recently listed first, for pending jobs whose every delivery was
 *              lost; or, with an administrator's token, the instance-wide job listing.
 *
 * All three use one request shape: the active (pending and running) jobs of up to 25 projects per
 * GraphQL request (GitLabApi.activeJobs), so a 2,000-job burst from 200 projects is routed with 8
 * requests. A complete listing also says which known jobs are no longer active (their `success`
 * was lost): they are dropped. A project too busy for one listing (more than 20 active pipelines,
 * or 100 jobs in one) is read page by page (activeJobsPage) over the next passes.
 *
 * A unit (a project) that fails while GitLab answers other requests is retried in smaller batches,
 * then alone; after failing alone twice it is isolated for 10 minutes doubling to 2 hours, its
 * waiting jobs are `refused` (not asked about; they count as last known), and a decision says so.
 * When nothing answers at all, GitLab is down: nobody is blamed, the work waits for the next pass.
 */
import type { Config } from '../config';
import { applyApiJob, statusKind, waitingInGitLab } from '../controller/jobs';
import type { GitLabPass, GitLabPassReport, GitLabSide } from '../controller/ports';
import type { ControllerState } from '../controller/state';
import type { ApiJob, GitLabApi, Outcome, Page, ProjectActivity } from './api';
import { REQUEST_KINDS, RequestBudget, type RequestKind } from './budget';
import type { PipelineApi } from './pipeline-api';
import { PipelineLearner, type PipelineLearnPass, type PipelineLearnReport } from './pipelines';

/** A pending job no event or listing confirmed for this long is listed again before it keeps holding capacity. */
export const CONFIRM_PENDING_MS = 60_000;
/** A running job no event or listing confirmed for this long is listed again: its `success` may have been lost. */
export const CONFIRM_RUNNING_MS = 180_000;
/** Every known project is listed for lost pending jobs at most this often. */
export const DISCOVER_EVERY_MS = 60_000;
/** A job absent from a complete listing is gone only if its last news is older than the request by this much (replica lag). */
export const ABSENCE_GRACE_MS = 2_000;
/** A pending job found by a listing that has waited this long without its webhook had it lost (not merely still queued). */
export const LOST_AFTER_MS = 30_000;
/** Pages of one busy project a pass may ask for (100 jobs each). */
export const DEEP_PAGES_PER_PASS = 5;
/** Pages of the instance-wide listing (administrator tokens) a pass may ask for (100 pending jobs each). */
export const INSTANCE_PAGES_PER_PASS = 10;
/** Requests in flight at once. */
export const CONCURRENCY = 4;
/** Group membership (gitlab.watch.groups) is read again this often. */
export const GROUPS_EVERY_MS = 3_600_000;
/** The token's admin status is checked again this often. */
export const ADMIN_CHECK_EVERY_MS = 6 * 3_600_000;
/** After a failed admin question: asked again this soon. */
export const ADMIN_RETRY_MS = 5 * 60_000;

const ISOLATION_BASE_MS = 10 * 60_000;
const ISOLATION_CAP_MS = 2 * 3_600_000;
/** A project that is not visible is named in a decision at most once an hour. */
const NOT_VISIBLE_REPEAT_MS = 3_600_000;

export interface GitLabDemandOptions {
  api: GitLabApi;
  /** Requests a minute (config.gitlab.requestsPerMinute). */
  perMinute: number;
  /** 'empty' after a Lambda cold start, 'full' in the simulation and tests (RequestBudget). */
  start: 'full' | 'empty';
  /** How long a pass may wait for its first routing token when the bucket is empty (Lambda: a second or two). Default 0. */
  waitMs?: number;
  /** Pipeline graphs for the forecast (lib/gitlab/pipelines.ts), from what the budget leaves. */
  pipelines?: PipelineApi;
  sleep?: (ms: number) => Promise<void>;
}

interface UnitHealth {
  failures: number;
  soloFailures: number;
  isolations: number;
  until?: number;
  lastError: string;
}

interface DeepScan {
  cursor?: string;
  startedAt: number;
  seen: Set<number>;
  kind: RequestKind;
}

type Request = { kind: RequestKind; run: () => Promise<void> };

/** What a pass found, before it is reported. */
interface Tally {
  routed: number;
  confirmed: number;
  removed: number;
  /** Of which jobs of events GitLab never confirmed: ended before we asked, or never existed (forged). */
  unconfirmed: number;
  discovered: number;
  /** Of which pending for a while already: their webhook was lost (not just still queued). */
  lost: number;
  refused: number;
  /** Pending jobs of the instance-wide listing left out: young, in projects we know nothing of. */
  youngElsewhere: number;
  projectsListed: number;
  succeeded: number;
  failed: number;
  pendingFailures: { key: string; projectId: number; error: string; solo: boolean; answered: boolean }[];
  notVisible: Map<number, number>;
}

export class GitLabDemand implements GitLabSide {
  readonly budget: RequestBudget;
  readonly api: GitLabApi;
  private readonly health = new Map<string, UnitHealth>();
  private readonly lastListed = new Map<number, number>();
  private readonly deep = new Map<number, DeepScan>();
  private readonly notVisibleSaid = new Map<number, number>();
  private admin: { value: boolean; at: number } | undefined;
  private instanceSweep: { cursor?: string; startedAt: number } | undefined;
  private lastInstanceSweepEnd = -Infinity;
  private groups = new Map<string, { projects: Set<number>; at: number; cursor?: string; building: Set<number> }>();
  private readonly waitMs: number;
  private readonly sleep: (ms: number) => Promise<void>;

  private readonly learner?: PipelineLearner;

  constructor(opts: GitLabDemandOptions) {
    this.api = opts.api;
    this.budget = new RequestBudget({ perMinute: opts.perMinute, start: opts.start });
    if (opts.pipelines) this.learner = new PipelineLearner(opts.pipelines, this.budget);
    this.waitMs = opts.waitMs ?? 0;
    this.sleep = opts.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
  }

  /** Units isolated now (for reports and tests): `p:<project>`. */
  isolated(now: number): string[] {
    return [...this.health].filter(([, h]) => h.until !== undefined && h.until > now).map(([k]) => k);
  }

  async syncJobs(pass: GitLabPass): Promise<GitLabPassReport> {
    const { config, state, now } = pass;
    const time = timeBudget(pass.remainingMs, pass.timeShare);
    const tally: Tally = { routed: 0, confirmed: 0, removed: 0, unconfirmed: 0, discovered: 0, lost: 0, refused: 0, youngElsewhere: 0, projectsListed: 0, succeeded: 0, failed: 0, pendingFailures: [], notVisible: new Map() };
    const requestsBefore = this.api.requests;
    const charged: Record<RequestKind, number> = { route: 0, confirm: 0, discover: 0 };

    // GitLab said 429 with a Retry-After that has not passed: nothing is sent (the client would
    // refuse it anyway), and the pass acts on what it knows, as when GitLab is unavailable.
    const limitedUntil = this.api.rateLimitedUntil?.();
    if (limitedUntil !== undefined) {
      this.refuseIsolated(state, now, tally);
      const unavailable = `rate limited by GitLab (HTTP 429) until ${new Date(limitedUntil).toISOString()}`;
      pass.decide(`GitLab API ${unavailable}: no requests until then; routing, confirmation and discovery wait`, 'warn');
      return { mode: this.api.mode, requests: 0, byKind: charged, wanted: { route: 0, confirm: 0, discover: 0 }, routed: 0, confirmed: 0, removed: 0, discovered: 0, refused: tally.refused, projectsListed: 0, isolated: this.isolated(now).length, outOfTime: false, unavailable };
    }

    // ---- what needs asking ------------------------------------------------------------------
    const work = this.plan(config, state, now);
    this.refuseIsolated(state, now, tally);
    const P = Math.max(1, this.api.projectsPerRequest);
    const batches: Record<RequestKind, number[][]> = {
      route: this.batch(work.route, P, now),
      confirm: this.batch(work.confirm, P, now),
      discover: this.batch(work.discover, P, now),
    };
    const deepWork = [...this.deep.entries()].filter(([p]) => !this.isIsolated(p, now));
    const adminWanted = work.instanceListing ? INSTANCE_PAGES_PER_PASS : 0;
    const groupWanted = this.groupPagesDue(config, now);
    // A busy project's pages: a few a pass each (how many remain is unknown until the last).
    const deepWanted = (kind: RequestKind) => deepWork.filter(([, d]) => d.kind === kind).length * DEEP_PAGES_PER_PASS;
    const wanted: Record<RequestKind, number> = {
      route: batches.route.length + deepWanted('route'),
      confirm: batches.confirm.length + deepWanted('confirm'),
      discover: batches.discover.length + adminWanted + groupWanted.length + (this.adminCheckDue(now) ? 1 : 0),
    };
    let allot = this.budget.allot(wanted, now);
    if (wanted.route > 0 && allot.route === 0 && this.waitMs > 0) {
      // Cold start: the bucket starts empty; the first tokens come within a second or two.
      const wait = this.budget.msUntil(1, now);
      if (wait <= this.waitMs && wait < time.leftMs()) {
        await this.sleep(wait);
        allot = this.budget.allot(wanted, now + wait);
      }
    }

    // ---- the requests, in order of urgency ---------------------------------------------------
    // What the client retried (5xx, timeouts, 429) costs what it cost: once the pass has sent what
    // it was allotted, it starts nothing more. Without this, a burst allotted the full bucket and
    // retried twice a request sent three buckets at once; now a 60 s window holds at most
    // perMinute plus the retries of the last round (CONCURRENCY x 2 at three attempts).
    const allotted = REQUEST_KINDS.reduce((n, k) => n + allot[k], 0);
    const spendable = () => allotted - (this.api.requests - requestsBefore);
    const requests: Request[] = [];
    const take = (kind: RequestKind, run: () => Promise<void>) => {
      if (allot[kind] <= 0) return false;
      allot[kind]--;
      requests.push({ kind, run });
      return true;
    };
    for (const kind of ['route', 'confirm'] as const) {
      for (const [projectId, d] of deepWork) if (d.kind === kind) take(kind, () => this.deepPages(config, state, projectId, d, now, tally, allot, time, spendable));
      for (const ids of batches[kind]) take(kind, () => this.listProjects(config, state, ids, kind, now, tally));
    }
    if (this.adminCheckDue(now)) take('discover', () => this.checkAdmin(now));
    for (const g of groupWanted) take('discover', () => this.groupPage(g, now, tally));
    if (work.instanceListing) take('discover', () => this.instancePages(config, state, now, tally, allot, time, spendable));
    for (const ids of batches.discover) take('discover', () => this.listProjects(config, state, ids, 'discover', now, tally));

    let consecutiveFailures = 0;
    for (let at = 0; at < requests.length; ) {
      if (time.outOfTime()) break;
      // During an outage, two failed rounds in a row are enough: the budget is kept for later.
      if (consecutiveFailures >= 2 && tally.succeeded === 0) break;
      // A 429 in the last round with a Retry-After: GitLab asked for silence.
      if (this.api.rateLimitedUntil?.() !== undefined) break;
      const chunk = requests.slice(at, at + Math.min(CONCURRENCY, spendable()));
      if (chunk.length === 0) break;
      at += chunk.length;
      const failedBefore = tally.failed;
      const chargedBefore = this.api.requests;
      const done = await settleWithin(
        chunk.map((r) => r.run()),
        time,
      );
      const spent = this.api.requests - chargedBefore;
      this.budget.charge(spent, now);
      // One request each; what the client retried is put on the first one's kind.
      for (const r of chunk) charged[r.kind]++;
      charged[chunk[0].kind] += Math.max(0, spent - chunk.length);
      if (!done) break;
      consecutiveFailures = tally.failed > failedBefore && tally.failed - failedBefore >= chunk.length ? consecutiveFailures + 1 : 0;
    }

    // ---- failures: blamed when GitLab refused that unit, or answered something else in this pass
    let unavailable: string | undefined;
    if (tally.failed > 0 && tally.succeeded === 0) {
      unavailable = tally.pendingFailures[0]?.error ?? 'no answer';
      pass.decide(`GitLab API unavailable (${unavailable}); routing, confirmation and discovery wait for the next pass`, 'warn');
    } else {
      for (const f of tally.pendingFailures) this.recordFailure(state, f, now, pass, tally);
    }
    this.reportNotVisible(state, tally, now, pass);

    const report: GitLabPassReport = {
      mode: this.api.mode,
      requests: this.api.requests - requestsBefore,
      byKind: charged,
      wanted,
      routed: tally.routed,
      confirmed: tally.confirmed,
      removed: tally.removed,
      discovered: tally.discovered,
      refused: tally.refused,
      projectsListed: tally.projectsListed,
      isolated: this.isolated(now).length,
      outOfTime: time.exhausted,
      ...(unavailable ? { unavailable } : {}),
    };
    if (report.requests || tally.removed || tally.discovered)
      pass.log.info('GitLab API: jobs routed, confirmed and discovered', { ...report, unconfirmed: tally.unconfirmed, lost: tally.lost, youngElsewhere: tally.youngElsewhere, bucket: this.budget.available(now) });
    // A job that ended (or started) while its delivery waits in the queue is dropped (or found) too:
    // normal, so only what points at lost or forged deliveries is a decision.
    if (tally.unconfirmed) pass.decide(`${tally.unconfirmed} job(s) of webhook events are neither pending nor running according to the GitLab API (ended before we asked, or never existed): not counted`);
    if (tally.lost) pass.decide(`${tally.lost} pending job(s) found by listing projects' jobs, waiting ${LOST_AFTER_MS / 1000} s or more without a webhook (lost)`);
    if (time.exhausted)
      pass.decide(`GitLab API time budget used up (${Math.round((pass.timeShare ?? DEFAULT_TIME_SHARE) * 100)} % of the pass's time); unrouted and unconfirmed jobs wait for the next pass`, 'warn');
    return report;
  }

  /** Pipeline graphs for the forecast, with the tokens routing, confirmation and discovery left. */
  async learnPipelines(pass: PipelineLearnPass): Promise<PipelineLearnReport> {
    if (!this.learner) return { requests: 0, listed: [], graphs: [], failed: 0, deferred: 0, off: 'no pipeline API' };
    return this.learner.learn(pass);
  }

  // ---- planning ------------------------------------------------------------------------------

  private plan(config: Config, state: ControllerState, now: number): { route: number[]; confirm: number[]; discover: number[]; instanceListing: boolean } {
    const routeAge = new Map<number, number>();
    const confirmOverdue = new Map<number, number>();
    for (const j of state.jobs.values()) {
      if (j.status === 'finished' || this.deep.has(j.projectId)) continue;
      if (j.pool === '' && j.status !== 'refused') {
        routeAge.set(j.projectId, Math.max(routeAge.get(j.projectId) ?? 0, now - j.seenAt));
        continue;
      }
      const due = waitingInGitLab(j.status) ? CONFIRM_PENDING_MS : CONFIRM_RUNNING_MS;
      const overdue = now - j.seenAt - due;
      if (overdue >= 0) confirmOverdue.set(j.projectId, Math.max(confirmOverdue.get(j.projectId) ?? -Infinity, overdue));
    }
    const usable = (p: number) => !this.isIsolated(p, now);
    const route = [...routeAge].filter(([p]) => usable(p)).sort((a, b) => b[1] - a[1] || a[0] - b[0]).map(([p]) => p);
    const routed = new Set(route);
    const confirm = [...confirmOverdue].filter(([p]) => usable(p) && !routed.has(p)).sort((a, b) => b[1] - a[1] || a[0] - b[0]).map(([p]) => p);
    const instanceListing = this.admin?.value === true && this.api.instanceActiveJobs !== undefined && (this.instanceSweep !== undefined || now - this.lastInstanceSweepEnd >= DISCOVER_EVERY_MS);
    if (instanceListing) return { route, confirm, discover: [], instanceListing };
    const taken = new Set([...route, ...confirm]);
    const known = this.knownProjects(config, state);
    const discover = [...known]
      .filter((p) => !taken.has(p) && usable(p) && !this.deep.has(p) && now - (this.lastListed.get(p) ?? -Infinity) >= DISCOVER_EVERY_MS)
      .sort((a, b) => (this.lastListed.get(a) ?? -Infinity) - (this.lastListed.get(b) ?? -Infinity) || (state.projects.get(b) ?? 0) - (state.projects.get(a) ?? 0) || a - b);
    return { route, confirm, discover, instanceListing };
  }

  /** Projects we know of: watched, seen in job events in the last week, or with jobs in state. */
  private knownProjects(config: Config, state: ControllerState): Set<number> {
    const known = new Set<number>([...this.watched(config), ...state.projects.keys()]);
    for (const j of state.jobs.values()) if (j.status !== 'finished') known.add(j.projectId);
    return known;
  }

  /** Projects named in gitlab.watch, with the members of the watched groups read so far. */
  private watched(config: Config): Set<number> {
    const out = new Set<number>(config.gitlab.watch?.projects ?? []);
    for (const g of this.groups.values()) for (const p of g.projects) out.add(p);
    return out;
  }

  /**
   * Batches of project ids: healthy projects `size` at a time; a project that failed recently goes
   * in smaller batches (a quarter, then alone), so that one bad project cannot fail a whole batch
   * twice and is pinned down in a few requests.
   */
  private batch(projects: readonly number[], size: number, now: number): number[][] {
    const bySize = new Map<number, number[]>();
    for (const p of projects) {
      if (this.isIsolated(p, now)) continue;
      const f = this.health.get(`p:${p}`)?.failures ?? 0;
      const s = f === 0 ? size : f === 1 ? Math.max(1, Math.ceil(size / 4)) : 1;
      bySize.set(s, [...(bySize.get(s) ?? []), p]);
    }
    const out: number[][] = [];
    // Keep the urgency order across sizes: batches are formed in order, each size on its own.
    for (const [s, list] of bySize) for (let i = 0; i < list.length; i += s) out.push(list.slice(i, i + s));
    const rank = new Map(projects.map((p, i) => [p, i]));
    return out.sort((a, b) => rank.get(a[0])! - rank.get(b[0])!);
  }

  private isIsolated(projectId: number, now: number): boolean {
    const h = this.health.get(`p:${projectId}`);
    return h?.until !== undefined && h.until > now;
  }

  /** Pending and unrouted jobs of isolated projects are refused: not asked about until GitLab answers for them. */
  private refuseIsolated(state: ControllerState, now: number, tally: Tally): void {
    for (const [id, j] of state.jobs) {
      if (!this.isIsolated(j.projectId, now)) continue;
      if (j.status === 'pending' || (j.pool === '' && j.status === 'running')) {
        state.jobs.set(id, { ...j, status: 'refused' });
        tally.refused++;
      }
    }
  }

  // ---- the requests --------------------------------------------------------------------------

  private async listProjects(config: Config, state: ControllerState, ids: number[], kind: RequestKind, now: number, tally: Tally): Promise<void> {
    let answers: Map<number, Outcome<ProjectActivity>>;
    try {
      answers = await this.api.activeJobs(ids);
    } catch (e) {
      answers = new Map(ids.map((id) => [id, { ok: false, error: (e as Error).message }]));
    }
    for (const id of ids) {
      const a = answers.get(id) ?? { ok: false as const, error: 'no answer for this project' };
      this.lastListed.set(id, now);
      if (!a.ok) {
        tally.failed++;
        tally.pendingFailures.push({ key: `p:${id}`, projectId: id, error: a.error, solo: ids.length === 1, answered: a.answered === true });
        if (a.answered) tally.succeeded++; // GitLab answered the request: it works
        continue;
      }
      tally.succeeded++;
      this.health.delete(`p:${id}`);
      if (a.value === null) {
        this.dropProject(state, id, tally);
        continue;
      }
      tally.projectsListed++;
      this.applyListing(config, state, id, a.value.jobs, now, tally);
      if (a.value.complete) this.dropAbsent(state, id, new Set(a.value.jobs.map((j) => j.id)), now, tally);
      else if (!this.deep.has(id)) this.deep.set(id, { startedAt: now, seen: new Set(), kind: kind === 'discover' ? 'confirm' : kind });
    }
  }

  /** Pages of a busy project: one per request, as many as the kind's leftover tokens allow. */
  private async deepPages(config: Config, state: ControllerState, projectId: number, d: DeepScan, now: number, tally: Tally, allot: Record<RequestKind, number>, time: TimeBudget, spendable: () => number): Promise<void> {
    for (;;) {
      const more = await this.deepPage(config, state, projectId, d, now, tally);
      if (!more || allot[d.kind] <= 0 || spendable() <= 0 || time.outOfTime()) return;
      allot[d.kind]--;
    }
  }

  /** One page; true when there are more to read. */
  private async deepPage(config: Config, state: ControllerState, projectId: number, d: DeepScan, now: number, tally: Tally): Promise<boolean> {
    let page: Outcome<Page<ApiJob>>;
    try {
      page = await this.api.activeJobsPage(projectId, d.cursor);
    } catch (e) {
      page = { ok: false, error: (e as Error).message };
    }
    if (!page.ok) {
      tally.failed++;
      tally.pendingFailures.push({ key: `p:${projectId}`, projectId, error: page.error, solo: true, answered: page.answered === true });
      if (page.answered) tally.succeeded++;
      return false;
    }
    tally.succeeded++;
    if (page.value === null) {
      this.deep.delete(projectId);
      this.dropProject(state, projectId, tally);
      return false;
    }
    this.applyListing(config, state, projectId, page.value.items, now, tally);
    for (const j of page.value.items) d.seen.add(j.id);
    if (page.value.next !== undefined) {
      d.cursor = page.value.next;
      return true;
    }
    this.deep.delete(projectId);
    this.lastListed.set(projectId, now);
    tally.projectsListed++;
    this.dropAbsent(state, projectId, d.seen, d.startedAt, tally);
    return false;
  }

  /** Pages of the instance-wide listing: one per request, as many as discovery's leftover tokens allow. */
  private async instancePages(config: Config, state: ControllerState, now: number, tally: Tally, allot: Record<RequestKind, number>, time: TimeBudget, spendable: () => number): Promise<void> {
    for (;;) {
      const more = await this.instancePage(config, state, now, tally);
      if (!more || allot.discover <= 0 || spendable() <= 0 || time.outOfTime()) return;
      allot.discover--;
    }
  }

  /** One page; true when the sweep has more. */
  private async instancePage(config: Config, state: ControllerState, now: number, tally: Tally): Promise<boolean> {
    const sweep = (this.instanceSweep ??= { startedAt: now });
    const page = await this.api.instanceActiveJobs!(sweep.cursor);
    if (page === undefined) {
      // Not an administrator after all (or GraphQL fell back): project listings again.
      this.admin = { value: false, at: now };
      this.instanceSweep = undefined;
      return false;
    }
    if (!page.ok) {
      tally.failed++;
      return false;
    }
    tally.succeeded++;
    const known = this.knownProjects(config, state);
    for (const job of page.value?.items ?? []) {
      // The instance's pending jobs are every runner's. In a project we know nothing of (no event in
      // a week, not watched), a job pending for less than LOST_AFTER_MS is far more likely another
      // runner's about to be taken (or one whose delivery is still in the queue) than one whose
      // every delivery was lost: launching for each (about 28 such jobs in any sweep at 20,000
      // jobs an hour instance-wide, 5 s pending each) idled a worker apiece for IdleTime, and the
      // job then ran elsewhere and counted as ours against `concurrent`. Older ones are added.
      if (!known.has(job.projectId) && !state.jobs.has(job.id) && job.queuedAt !== undefined && now - job.queuedAt < LOST_AFTER_MS) {
        tally.youngElsewhere++;
        continue;
      }
      this.applyListing(config, state, job.projectId, [job], now, tally);
    }
    if (page.value?.next !== undefined) {
      sweep.cursor = page.value.next;
      return true;
    }
    this.instanceSweep = undefined;
    this.lastInstanceSweepEnd = now;
    return false;
  }

  private adminCheckDue(now: number): boolean {
    return this.api.isAdmin !== undefined && this.api.instanceActiveJobs !== undefined && (this.admin === undefined || now - this.admin.at >= ADMIN_CHECK_EVERY_MS);
  }

  private async checkAdmin(now: number): Promise<void> {
    try {
      this.admin = { value: (await this.api.isAdmin?.()) === true, at: now };
    } catch {
      // Unknown (a network error, GitLab down): keep what was known (project listings if nothing)
      // and ask again in ADMIN_RETRY_MS, not in ADMIN_CHECK_EVERY_MS: one failed answer at a cold
      // start must not turn instance-wide discovery off for hours.
      this.admin = { value: this.admin?.value ?? false, at: now - ADMIN_CHECK_EVERY_MS + ADMIN_RETRY_MS };
    }
  }

  private groupPagesDue(config: Config, now: number): string[] {
    if (!this.api.groupProjects) return [];
    const wanted = (config.gitlab.watch?.groups ?? []).map(String);
    for (const k of [...this.groups.keys()]) if (!wanted.includes(k)) this.groups.delete(k);
    return wanted.filter((g) => {
      const s = this.groups.get(g);
      return !s || s.cursor !== undefined || now - s.at >= GROUPS_EVERY_MS;
    });
  }

  private async groupPage(group: string, now: number, tally: Tally): Promise<void> {
    const s = this.groups.get(group) ?? { projects: new Set<number>(), at: -Infinity, building: new Set<number>() };
    this.groups.set(group, s);
    const page = await this.api.groupProjects!(/^\d+$/.test(group) ? Number(group) : group, s.cursor);
    if (!page.ok) {
      tally.failed++;
      return;
    }
    tally.succeeded++;
    for (const p of page.value?.items ?? []) s.building.add(p);
    if (page.value?.next !== undefined) s.cursor = page.value.next;
    else {
      s.projects = s.building;
      s.building = new Set();
      s.cursor = undefined;
      s.at = now;
    }
  }

  // ---- applying answers ----------------------------------------------------------------------

  /** What a listing says: known jobs are routed or confirmed; unknown pending jobs of our pools are added (their webhook was lost). */
  private applyListing(config: Config, state: ControllerState, projectId: number, jobs: readonly ApiJob[], now: number, tally: Tally): void {
    for (const job of jobs) {
      const known = state.jobs.get(job.id);
      // A running job nobody told us about runs on some runner, maybe not ours: not ours to count.
      if (!known && statusKind(job.status) !== 'pending') continue;
      const wasUnrouted = known !== undefined && known.pool === '';
      const outcome = applyApiJob(config, state, job.id, projectId, job, now);
      const after = state.jobs.get(job.id);
      if (!known) {
        if (outcome === 'added') {
          tally.discovered++;
          if (job.queuedAt === undefined || now - job.queuedAt >= LOST_AFTER_MS) tally.lost++;
        }
      } else if (wasUnrouted && after && after.pool !== '') tally.routed++;
      else if (after) tally.confirmed++;
      else tally.removed++;
    }
  }

  /** Jobs of a completely listed project that the listing does not show are no longer pending or running. */
  private dropAbsent(state: ControllerState, projectId: number, listed: ReadonlySet<number>, requestedAt: number, tally: Tally): void {
    for (const [id, j] of state.jobs) {
      if (j.projectId !== projectId || j.status === 'finished' || listed.has(id)) continue;
      if (j.seenAt > requestedAt - ABSENCE_GRACE_MS) continue;
      state.jobs.delete(id);
      tally.removed++;
      if (j.pool === '') tally.unconfirmed++;
    }
  }

  /**
   * The project is not there for the token: its jobs cannot be confirmed and are not counted, and
   * it is forgotten for discovery (an event from it makes it known again). Before, 5,000 forged
   * events with the right secret from as many made-up projects filled the 1,000 known projects,
   * and discovery listed them for the week they were remembered (40 requests a minute wanted).
   */
  private dropProject(state: ControllerState, projectId: number, tally: Tally): void {
    state.projects.delete(projectId);
    let n = 0;
    for (const [id, j] of state.jobs)
      if (j.projectId === projectId && j.status !== 'finished') {
        state.jobs.delete(id);
        n++;
      }
    tally.removed += n;
    tally.notVisible.set(projectId, (tally.notVisible.get(projectId) ?? 0) + n);
  }

  private reportNotVisible(_state: ControllerState, tally: Tally, now: number, pass: GitLabPass): void {
    const fresh = [...tally.notVisible].filter(([p, n]) => n > 0 && now - (this.notVisibleSaid.get(p) ?? -Infinity) >= NOT_VISIBLE_REPEAT_MS);
    if (fresh.length === 0) return;
    for (const [p] of fresh) this.notVisibleSaid.set(p, now);
    const named = fresh.slice(0, 5).map(([p, n]) => `${p} (${n} job(s))`).join(', ');
    pass.decide(
      `GitLab project(s) ${named}${fresh.length > 5 ? ` and ${fresh.length - 5} more` : ''} not visible to the API token (no such project, or no access): their jobs are not counted; if they are real, give the token's user Reporter access`,
      'warn',
    );
  }

  private recordFailure(state: ControllerState, f: Tally['pendingFailures'][number], now: number, pass: GitLabPass, tally: Tally): void {
    const h = this.health.get(f.key) ?? { failures: 0, soloFailures: 0, isolations: 0, lastError: '' };
    h.failures++;
    if (f.solo) h.soloFailures++;
    h.lastError = f.error;
    this.health.set(f.key, h);
    if (h.soloFailures < 2 && h.failures < 5) return;
    const wait = Math.min(ISOLATION_CAP_MS, ISOLATION_BASE_MS * 2 ** h.isolations);
    h.isolations++;
    h.until = now + wait;
    h.failures = 0;
    h.soloFailures = 0;
    const before = tally.refused;
    this.refuseIsolated(state, now, tally);
    pass.decide(
      `GitLab API keeps failing for project ${f.projectId} (${f.error.slice(0, 200)}): isolated for ${Math.round(wait / 60_000)} min, its ${tally.refused - before} waiting job(s) are not confirmed meanwhile (they count as last known); other projects are not held up`,
      'warn',
    );
  }
}

// ---- time ----------------------------------------------------------------------------------------

export const DEFAULT_TIME_SHARE = 0.4;

/** How much time GitLab calls have left: a share of what the pass had when it started. */
export interface TimeBudget {
  leftMs(): number;
  outOfTime(): boolean;
  exhausted: boolean;
}

export function timeBudget(remainingMs: (() => number) | undefined, share = DEFAULT_TIME_SHARE): TimeBudget {
  const t: TimeBudget = {
    leftMs: () => Infinity,
    exhausted: false,
    outOfTime() {
      if (!t.exhausted && t.leftMs() <= 0) t.exhausted = true;
      return t.exhausted;
    },
  };
  if (remainingMs) {
    const reserve = Math.max(0, remainingMs()) * (1 - Math.min(1, Math.max(0, share)));
    t.leftMs = () => remainingMs() - reserve;
  }
  return t;
}

/**
 * Promise.allSettled, abandoned when the time runs out first (false). A GitLab that hangs costs at
 * most its share of the pass: late answers are ignored, the work waits for the next pass. The
 * client's own timeouts end the abandoned requests.
 */
export async function settleWithin(work: Promise<unknown>[], time: TimeBudget): Promise<boolean> {
  const all = Promise.allSettled(work);
  const left = time.leftMs();
  if (left === Infinity) {
    await all;
    return true;
  }
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), Math.max(0, left));
  });
  try {
    const out = await Promise.race([all.then(() => true as const), timeout]);
    if (!out) time.exhausted = true;
    return out;
  } finally {
    clearTimeout(timer);
  }
}
