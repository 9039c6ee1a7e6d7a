/**
 * The GitLab API over REST (/api/v4): the fallback where GraphQL is unavailable (an old GitLab,
 * a proxy that blocks /api/graphql). One project per request:
 *
 *  - activeJobs / activeJobsPage: `GET /projects/:id/jobs?scope[]=pending&scope[]=running&per_page=100&page=N`
 *    (GitLab orders jobs by id, newest first; a page shorter than 100 is the last one);
 *  - groupProjects: `GET /groups/:id/projects?include_subgroups=true&simple=true&archived=false&per_page=100&page=N`;
 *  - isAdmin: `GET /user` (`is_admin` is only shown to administrators).
 * There is no instance-wide job listing in REST (gitlab#323316): admins get it through GraphQL only.
 */
import { GitLabApiError, type GitLabClient } from './client';
import type { ApiJob, GitLabApi, Outcome, Page, ProjectActivity } from './api';

/** GitLab's largest page size. */
export const PAGE = 100;

interface RawJob {
  id?: unknown;
  status?: unknown;
  tag_list?: unknown;
  queued_duration?: unknown;
}

export function jobFromRest(projectId: number, j: RawJob | null, now: number): ApiJob | undefined {
  // A malformed entry is skipped, not fatal: the rest of the page is still useful.
  if (!j || typeof j.id !== 'number' || !Number.isSafeInteger(j.id) || j.id <= 0 || typeof j.status !== 'string') return undefined;
  const job: ApiJob = { id: j.id, projectId, status: j.status, tags: Array.isArray(j.tag_list) ? j.tag_list.filter((t): t is string => typeof t === 'string') : [] };
  if (j.status === 'pending' && typeof j.queued_duration === 'number' && Number.isFinite(j.queued_duration) && j.queued_duration >= 0)
    job.queuedAt = Math.round(now - j.queued_duration * 1000);
  return job;
}

function failure(e: unknown): { ok: false; error: string; status?: number; answered?: true } {
  const status = e instanceof GitLabApiError ? e.status : undefined;
  // A 4xx other than 429 for this one project: GitLab answered, and refused this project.
  return { ok: false, error: (e as Error).message, status, ...(status !== undefined && status >= 400 && status < 500 && status !== 429 ? { answered: true as const } : {}) };
}

function positive(id: number, what: string): void {
  if (!Number.isSafeInteger(id) || id <= 0) throw new GitLabApiError(`${what} must be a positive integer (got ${id})`);
}

export class RestApi implements GitLabApi {
  readonly mode = 'rest';
  readonly projectsPerRequest = 1;
  constructor(
    private readonly client: GitLabClient,
    private readonly clock: () => number = Date.now,
  ) {}

  get requests(): number {
    return this.client.requests;
  }

  rateLimitedUntil(): number | undefined {
    return this.client.rateLimitedUntil();
  }

  async activeJobs(projectIds: readonly number[]): Promise<Map<number, Outcome<ProjectActivity>>> {
    if (projectIds.length !== 1) throw new GitLabApiError(`REST lists one project per request (got ${projectIds.length})`);
    const [id] = projectIds;
    const page = await this.activeJobsPage(id);
    const out = new Map<number, Outcome<ProjectActivity>>();
    if (!page.ok) out.set(id, page);
    else out.set(id, { ok: true, value: page.value === null ? null : { jobs: page.value.items, complete: page.value.next === undefined } });
    return out;
  }

  async activeJobsPage(projectId: number, cursor?: string): Promise<Outcome<Page<ApiJob>>> {
    try {
      positive(projectId, 'project id');
      const page = cursor ? Number(cursor) : 1;
      if (!Number.isSafeInteger(page) || page < 1) throw new GitLabApiError(`bad page cursor ${JSON.stringify(cursor)}`);
      const path = `/projects/${projectId}/jobs?scope[]=pending&scope[]=running&per_page=${PAGE}&page=${page}`;
      const list = await this.client.get<unknown>(path);
      if (list === undefined) return { ok: true, value: null };
      if (!Array.isArray(list)) throw new GitLabApiError(`GET ${path}: expected a JSON array of jobs`);
      const now = this.clock();
      const items = (list as (RawJob | null)[]).map((j) => jobFromRest(projectId, j, now)).filter((j): j is ApiJob => j !== undefined);
      return { ok: true, value: { items, ...(list.length >= PAGE ? { next: String(page + 1) } : {}) } };
    } catch (e) {
      return failure(e);
    }
  }

  async isAdmin(): Promise<boolean> {
    const me = await this.client.get<{ is_admin?: unknown }>('/user');
    return me?.is_admin === true;
  }

  async groupProjects(group: string | number, cursor?: string): Promise<Outcome<Page<number>>> {
    try {
      const page = cursor ? Number(cursor) : 1;
      const path = `/groups/${encodeURIComponent(String(group))}/projects?include_subgroups=true&simple=true&archived=false&per_page=${PAGE}&page=${page}`;
      const list = await this.client.get<unknown>(path);
      if (list === undefined) return { ok: true, value: null };
      if (!Array.isArray(list)) throw new GitLabApiError(`GET ${path}: expected a JSON array of projects`);
      const items = (list as { id?: unknown }[]).map((p) => p?.id).filter((id): id is number => typeof id === 'number' && Number.isSafeInteger(id) && id > 0);
      return { ok: true, value: { items, ...(list.length >= PAGE ? { next: String(page + 1) } : {}) } };
    } catch (e) {
      return failure(e);
    }
  }
}
