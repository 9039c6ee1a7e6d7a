/**
 * GitLab for the controller's tests: an in-memory GitLabApi with the same batch limits and page
 * sizes as the GraphQL adapter, a request counter per minute of the test clock, projects that fail
 * for ever, and requests that never answer.
 */
import type { ApiJob, GitLabApi, Outcome, Page, ProjectActivity } from '../../lib/gitlab/api';
import { PROJECTS_PER_REQUEST } from '../../lib/gitlab/graphql';
import { GitLabDemand } from '../../lib/gitlab/sync';
import type { Clock } from '../../lib/controller/ports';

export interface FakeJob {
  projectId: number;
  status: string;
  tags?: string[];
  queuedAt?: number;
}

export class FakeGitLabApi implements GitLabApi {
  readonly mode = 'fake';
  projectsPerRequest = PROJECTS_PER_REQUEST;
  requests = 0;
  readonly jobs = new Map<number, FakeJob>();
  /** Projects that exist for the token; undefined = every project a job names, plus `extraProjects`. */
  visible?: Set<number>;
  readonly failProjects = new Set<number>();
  /** A request holding a failing project fails as a whole (HTTP 500 for the query), not just that project. */
  wholeRequestFails = false;
  /** Every request fails (GitLab down). */
  down = false;
  /** Group -> project ids, for gitlab.watch.groups. */
  readonly groups = new Map<string, number[]>();
  /** How many active jobs one batched listing shows per project before it is cut short (GraphQL: 20 pipelines x 100). */
  listLimit = 100;
  /** Requests after this many never answer (a GitLab stuck behind a load balancer). */
  hangAfter = Infinity;
  readonly calls: { kind: 'activeJobs' | 'page' | 'instance'; projects: number[] }[] = [];
  readonly perMinute = new Map<number, number>();
  /** Test-clock time of every request sent (retries included). */
  readonly sentAt: number[] = [];
  adminToken = false;
  /** GitLab answers 429 with this Retry-After (ms) to every request while set (the token's user is over its rate limit). */
  rateLimitMs?: number;
  private limitedUntil = -Infinity;
  rateLimitedUntil(): number | undefined {
    return this.limitedUntil > (this.clock?.now() ?? 0) ? this.limitedUntil : undefined;
  }
  /** HTTP requests each call costs beyond the first: what the client retried (5xx, timeouts, 429) before it got its answer. */
  retriesPerCall = 0;

  constructor(private readonly clock?: Clock) {}

  add(id: number, job: FakeJob): this {
    this.jobs.set(id, job);
    return this;
  }

  private count(kind: 'activeJobs' | 'page' | 'instance', projects: number[]): Promise<void> | undefined {
    this.requests += 1 + this.retriesPerCall;
    this.calls.push({ kind, projects });
    const m = Math.floor((this.clock?.now() ?? 0) / 60_000);
    this.perMinute.set(m, (this.perMinute.get(m) ?? 0) + 1 + this.retriesPerCall);
    for (let k = 0; k <= this.retriesPerCall; k++) this.sentAt.push(this.clock?.now() ?? 0);
    return this.requests > this.hangAfter ? new Promise<void>(() => {}) : undefined;
  }

  busiestMinute(): number {
    return Math.max(0, ...this.perMinute.values());
  }

  /** The most requests in any 60 s (a sliding window over the test clock, not epoch minutes). */
  busiestWindow(ms = 60_000): number {
    const t = [...this.sentAt].sort((a, b) => a - b);
    let best = 0;
    for (let i = 0, j = 0; i < t.length; i++) {
      while (t[i] - t[j] >= ms) j++;
      best = Math.max(best, i - j + 1);
    }
    return best;
  }

  private exists(projectId: number): boolean {
    if (this.visible) return this.visible.has(projectId);
    for (const j of this.jobs.values()) if (j.projectId === projectId) return true;
    return false;
  }

  private active(projectId: number): ApiJob[] {
    const out: ApiJob[] = [];
    for (const [id, j] of this.jobs)
      if (j.projectId === projectId && ['pending', 'running'].includes(j.status)) out.push({ id, projectId, status: j.status, tags: j.tags ?? [], ...(j.queuedAt !== undefined ? { queuedAt: j.queuedAt } : {}) });
    return out.sort((a, b) => b.id - a.id);
  }

  async activeJobs(projectIds: readonly number[]): Promise<Map<number, Outcome<ProjectActivity>>> {
    if (projectIds.length > this.projectsPerRequest) throw new Error(`at most ${this.projectsPerRequest} projects per request, got ${projectIds.length}`);
    const hang = this.count('activeJobs', [...projectIds]);
    if (hang) await hang;
    const out = new Map<number, Outcome<ProjectActivity>>();
    if (this.rateLimitMs !== undefined) {
      this.limitedUntil = (this.clock?.now() ?? 0) + this.rateLimitMs;
      for (const p of projectIds) out.set(p, { ok: false, error: `GitLab API POST /api/graphql failed: rate limited (HTTP 429, Retry-After ${this.rateLimitMs / 1000})` });
      return out;
    }
    if (this.down || (this.wholeRequestFails && projectIds.some((p) => this.failProjects.has(p)))) {
      for (const p of projectIds) out.set(p, { ok: false, error: this.down ? 'GitLab API POST /api/graphql failed: network error: ECONNREFUSED' : 'GitLab API POST /api/graphql failed: HTTP 500', status: 500 });
      return out;
    }
    for (const p of projectIds) {
      if (this.failProjects.has(p)) out.set(p, { ok: false, error: `GitLab GraphQL, project ${p}: Internal server error`, answered: true });
      else if (!this.exists(p)) out.set(p, { ok: true, value: null });
      else {
        const all = this.active(p);
        out.set(p, { ok: true, value: { jobs: all.slice(0, this.listLimit), complete: all.length <= this.listLimit } });
      }
    }
    return out;
  }

  async activeJobsPage(projectId: number, cursor?: string): Promise<Outcome<Page<ApiJob>>> {
    const hang = this.count('page', [projectId]);
    if (hang) await hang;
    if (this.down || this.failProjects.has(projectId)) return { ok: false, error: `GitLab API answered HTTP 500 for project ${projectId}`, status: 500 };
    if (!this.exists(projectId)) return { ok: true, value: null };
    const page = cursor ? Number(cursor) : 0;
    const all = this.active(projectId);
    return { ok: true, value: { items: all.slice(page * 100, page * 100 + 100), ...(all.length > page * 100 + 100 ? { next: String(page + 1) } : {}) } };
  }
}

/** A fake whose token can expand watched groups. */
export class FakeGroupsGitLabApi extends FakeGitLabApi {
  async groupProjects(group: string | number, cursor?: string): Promise<Outcome<Page<number>>> {
    this.requests++;
    const all = this.groups.get(String(group));
    if (!all) return { ok: true, value: null };
    const page = cursor ? Number(cursor) : 0;
    return { ok: true, value: { items: all.slice(page * 100, page * 100 + 100), ...(all.length > page * 100 + 100 ? { next: String(page + 1) } : {}) } };
  }
}

/** An admin token's view: the instance-wide listing works. */
export class FakeAdminGitLabApi extends FakeGitLabApi {
  override adminToken = true;
  async isAdmin(): Promise<boolean> {
    this.requests++;
    return true;
  }
  async instanceActiveJobs(cursor?: string): Promise<Outcome<Page<ApiJob>> | undefined> {
    this.requests++;
    this.calls.push({ kind: 'instance', projects: [] });
    const all: ApiJob[] = [];
    for (const [id, j] of this.jobs) if (j.status === 'pending') all.push({ id, projectId: j.projectId, status: j.status, tags: j.tags ?? [], ...(j.queuedAt !== undefined ? { queuedAt: j.queuedAt } : {}) });
    all.sort((a, b) => b.id - a.id);
    const page = cursor ? Number(cursor) : 0;
    return { ok: true, value: { items: all.slice(page * 100, page * 100 + 100), ...(all.length > page * 100 + 100 ? { next: String(page + 1) } : {}) } };
  }
}

/** The GitLab side over a fake API, with a full bucket (a warm container). */
export function gitlabSide(api: GitLabApi, perMinute = 120): GitLabDemand {
  return new GitLabDemand({ api, perMinute, start: 'full' });
}
