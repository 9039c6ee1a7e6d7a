/**
 * What the GitLab side of the controller asks GitLab, in the batched shapes GitLab offers. Every
 * method call is ONE HTTP request (the budget charges each), whatever the number of units in it:
 *
 *  - activeJobs(projects): the pending and running jobs of several projects. GraphQL: one query
 *    over `projects(ids:)` with each project's active pipelines and their jobs (tags, status,
 *    queuedAt); REST: one project per request.
 *  - activeJobsPage(project, cursor): one project's active jobs, a page of 100 at a time, for
 *    projects too busy for the batched form (more than 20 active pipelines or 100 jobs in one).
 *  - instanceActiveJobs(cursor): every pending job of the instance, 100 a page (admin tokens only;
 *    running jobs are confirmed per project).
 *  - groupProjects(group, cursor): the projects of a group and its subgroups (config gitlab.watch).
 *
 * Implementations: GraphQL with a REST fallback (lib/gitlab/http-api.ts) for Lambda; the simulated
 * GitLab (lib/sim/cloud.ts); fakes in the tests.
 */

/** A job as the API reports it. `status` is GitLab's build status in lower case (`pending`, `running`, ...). */
export interface ApiJob {
  id: number;
  projectId: number;
  status: string;
  tags: string[];
  /** Epoch ms the job became pending (GraphQL queuedAt; REST: now - queued_duration), when known. */
  queuedAt?: number;
}

/** The active jobs of one project. */
export interface ProjectActivity {
  jobs: ApiJob[];
  /**
   * True when `jobs` is every pending and running job of the project: a job of the project that is
   * absent is then neither pending nor running. False when a page limit cut the answer short.
   */
  complete: boolean;
}

/** A page of a paged listing; `next` is the cursor of the following page, absent on the last. */
export interface Page<T> {
  items: T[];
  next?: string;
}

/**
 * The answer for one unit of a batched request. `value: null` means the thing is not there (or not
 * visible to the token). A failure is `answered` when GitLab did answer the request and refused this
 * unit alone (a GraphQL error pointing at it, a 4xx for it): proof that GitLab works and the unit
 * does not. Without it (network, timeout, 5xx, 429) GitLab itself may be down.
 */
export type Outcome<T> = { ok: true; value: T | null } | { ok: false; error: string; status?: number; answered?: true };

export interface GitLabApi {
  /** What the adapter speaks now: 'graphql', 'rest' (fallback), 'simulated'... For logs and reports. */
  readonly mode: string;
  /** Projects per activeJobs request. 1 for REST. */
  readonly projectsPerRequest: number;
  /** HTTP requests sent so far (retries included): the budget charges the difference after each call. */
  readonly requests: number;
  /** Until when (epoch ms, the pass's clock) GitLab asked for no requests (429 Retry-After); undefined when it did not. */
  rateLimitedUntil?(): number | undefined;
  activeJobs(projectIds: readonly number[]): Promise<Map<number, Outcome<ProjectActivity>>>;
  activeJobsPage(projectId: number, cursor?: string): Promise<Outcome<Page<ApiJob>>>;
  /** The instance's pending jobs, one page. undefined when the token cannot list the instance (not an administrator) or the API cannot. */
  instanceActiveJobs?(cursor?: string): Promise<Outcome<Page<ApiJob>> | undefined>;
  /** True when the token's user is an administrator (instance-wide listing works). One request. */
  isAdmin?(): Promise<boolean>;
  /** Project ids of a group (id or full path) and its subgroups, one page. null: no such group visible. */
  groupProjects?(group: string | number, cursor?: string): Promise<Outcome<Page<number>>>;
}

/** GraphQL global ids end with the numeric id: gid://gitlab/Project/42, gid://gitlab/Ci::Build/7. */
export function idOf(gid: unknown): number | undefined {
  if (typeof gid === 'number') return Number.isSafeInteger(gid) && gid > 0 ? gid : undefined;
  if (typeof gid !== 'string') return undefined;
  const m = /(\d+)$/.exec(gid);
  if (!m) return undefined;
  const n = Number(m[1]);
  return Number.isSafeInteger(n) && n > 0 ? n : undefined;
}
