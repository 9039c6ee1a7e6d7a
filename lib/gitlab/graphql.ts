/**
 * The GitLab API over GraphQL (POST /api/graphql): many projects per request.
 *
 * Shapes and limits, from GitLab's schema (app/graphql): `Query.projects(ids: [ID!])` takes global
 * ids (gid://gitlab/Project/N); `Project.pipelines(scope: RUNNING|PENDING, first:)` and
 * `Pipeline.jobs(statuses: [CiJobStatus!], first:)` can be nested under it for many projects at
 * once, whereas `Project.jobs` "can only be resolved for one project in any single request" (it is
 * used for one busy project at a time: activeJobsPage). `CiJob` gives `status`, `tags`, `queuedAt`
 * (also `stage`, `needs`). Pages hold at most 100 nodes (default_max_page_size); a query may cost
 * at most 250 complexity points for a user, 300 for an admin (GitlabSchema AUTHENTICATED_MAX_COMPLEXITY),
 * where each field costs about one point and a connection of `first: n` adds n % of its subtree.
 * The batched listing below (four pipeline listings a project) costs about 108 x (1 + n/100)
 * points for n projects by that rule, 135 for 25: below the limit, and a "complexity" answer
 * halves the batch anyway.
 *
 * A pipeline with a pending job has status `pending` or `running` (Ci composite status), so the
 * active pipelines of both scopes, newest first, with their pending and running jobs are all of a
 * project's active jobs unless a page limit cut them short (20 pipelines per scope, 100 jobs per
 * pipeline): `complete` says which. `Project.pipelines` leaves child pipelines out unless asked
 * for `source: "parent_pipeline"` (Ci::PipelinesFinder#prefiltered_pipelines, GitLab 17.0,
 * gitlab!149839; before, that filter answered nothing), so child pipelines get two scopes of their
 * own, and a GitLab older than 17.0 is served by REST, which lists every job of a project. Without
 * them every job of a child pipeline was absent from a "complete" listing and dropped as ended.
 * `Pipeline.jobs` is `pipeline.statuses`: trigger jobs (Ci::Bridge, no runner) and external commit
 * statuses (GenericCommitStatus) too; only `gid://gitlab/Ci::Build/N` ids are runner jobs.
 * `Query.jobs(statuses:)` lists the whole instance for administrators and answers nothing to others.
 */
import { GitLabApiError, type GitLabClient, type GraphQLAnswer } from './client';
import { idOf, type ApiJob, type GitLabApi, type Outcome, type Page, type ProjectActivity } from './api';
import { RestApi } from './rest';

/** Statuses asked for: waiting for a runner, and on one. (PREPARING comes before PENDING: not on a runner.) */
const STATUSES = '[PENDING, RUNNING]';
/** Active pipelines per scope and project in the batched listing. */
export const PIPELINES_PER_SCOPE = 20;
/** Projects per batched request (halved when GitLab says a query is too complex). */
export const PROJECTS_PER_REQUEST = 25;

const JOB_FIELDS = '... on CiJob { id status tags queuedAt }';
/** The aliases of the pipeline listings in ACTIVE_JOBS_QUERY: two scopes, of top-level and of child pipelines. */
export const PIPELINE_LISTINGS = ['running', 'pending', 'childRunning', 'childPending'] as const;
const PIPELINES = (alias: string, scope: string, child: boolean) =>
  `${alias}: pipelines(scope: ${scope}${child ? ', source: "parent_pipeline"' : ''}, first: ${PIPELINES_PER_SCOPE}) { pageInfo { hasNextPage } nodes { id jobs(statuses: ${STATUSES}, first: 100) { pageInfo { hasNextPage } nodes { ${JOB_FIELDS} } } } }`;

export const ACTIVE_JOBS_QUERY = `query ActiveJobs($ids: [ID!], $n: Int) { projects(ids: $ids, first: $n) { nodes { id ${PIPELINES('running', 'RUNNING', false)} ${PIPELINES('pending', 'PENDING', false)} ${PIPELINES('childRunning', 'RUNNING', true)} ${PIPELINES('childPending', 'PENDING', true)} } } }`;
export const VERSION_QUERY = 'query Version { metadata { version } }';
/** The first GitLab whose Project.pipelines lists child pipelines (source: "parent_pipeline"). */
export const CHILD_PIPELINES_SINCE: readonly [number, number] = [17, 0];
export const PROJECT_JOBS_QUERY = `query ProjectJobs($ids: [ID!], $after: String) { projects(ids: $ids, first: 1) { nodes { id jobs(statuses: ${STATUSES}, first: 100, after: $after) { pageInfo { hasNextPage endCursor } nodes { ${JOB_FIELDS} } } } } }`;
/**
 * Pending jobs only: the instance-wide listing finds jobs whose `pending` delivery was lost. Running
 * jobs (of every runner of the instance, most of them not ours) would make a sweep many pages long;
 * ours are confirmed by their projects' listings.
 */
export const INSTANCE_JOBS_QUERY = `query InstanceJobs($after: String) { jobs(statuses: [PENDING], first: 100, after: $after) { pageInfo { hasNextPage endCursor } nodes { ... on CiJob { id status tags queuedAt project { id } } } } }`;

/** GitLab cannot run our query at all (an older schema, no GraphQL): use REST. */
export class GraphQLUnsupported extends GitLabApiError {
  override name = 'GraphQLUnsupported';
}

export const UNSUPPORTED = /doesn't exist on type|doesn't accept argument|isn't a defined input type|Unknown type|has an invalid value|is not defined on|Field must have selections|no GraphQL API/i;
export const TOO_BIG = /complexity|too many|exceeds max|Timeout|timed out/i;

export type Obj = Record<string, unknown>;
export const obj = (x: unknown): Obj | undefined => (x && typeof x === 'object' && !Array.isArray(x) ? (x as Obj) : undefined);
export const list = (x: unknown): unknown[] => (Array.isArray(x) ? x : []);

/**
 * CiJob ids name the record's class (JobType#id: `gid://gitlab/<type>/<id>`): Ci::Build is a job a
 * runner takes; Ci::Bridge (a trigger job) and GenericCommitStatus (an external status set through
 * the API) never reach a runner and are not demand, though `Pipeline.jobs` lists them pending or running.
 */
function isRunnerJob(gid: unknown): boolean {
  return typeof gid !== 'string' || !gid.startsWith('gid://') || /^gid:\/\/gitlab\/Ci::Build\/\d+$/.test(gid);
}

function jobFrom(projectId: number, node: unknown): ApiJob | undefined {
  const n = obj(node);
  const id = idOf(n?.id);
  if (!n || id === undefined || typeof n.status !== 'string' || !isRunnerJob(n.id)) return undefined;
  const job: ApiJob = { id, projectId, status: n.status.toLowerCase(), tags: list(n.tags).filter((t): t is string => typeof t === 'string') };
  const q = typeof n.queuedAt === 'string' ? Date.parse(n.queuedAt) : NaN;
  if (Number.isFinite(q)) job.queuedAt = q;
  return job;
}

export function hasNext(conn: Obj | undefined): boolean {
  return obj(conn?.pageInfo)?.hasNextPage === true;
}

function fail(error: string, status?: number): { ok: false; error: string; status?: number } {
  return { ok: false, error, status };
}

/**
 * Runs a query; a whole-query failure is thrown: GraphQLUnsupported when GitLab cannot run it at all
 * (no GraphQL endpoint, a field or argument it does not know), else a GitLabApiError. `tooBig` is
 * called when GitLab refuses the query as too complex (the caller asks for fewer projects next time).
 */
export async function runGraphQL(client: GitLabClient, query: string, variables: Record<string, unknown>, what: string, tooBig: () => void): Promise<GraphQLAnswer> {
  let answer: GraphQLAnswer;
  try {
    answer = await client.graphql(query, variables);
  } catch (e) {
    if (e instanceof GitLabApiError && e.status === 404) throw new GraphQLUnsupported(e.message, 404);
    throw e;
  }
  const errors = list(answer.errors).map((x) => obj(x)).filter((x): x is Obj => !!x);
  if (!obj(answer.data) && errors.length) {
    const message = errors.map((x) => String(x.message ?? '')).join('; ').slice(0, 400);
    if (UNSUPPORTED.test(message)) throw new GraphQLUnsupported(`GitLab GraphQL cannot run ${what}: ${message}`);
    if (TOO_BIG.test(message)) tooBig();
    throw new GitLabApiError(`GitLab GraphQL: ${message}`);
  }
  return answer;
}

export class GraphQLApi implements GitLabApi {
  readonly mode = 'graphql';
  projectsPerRequest = PROJECTS_PER_REQUEST;
  private readonly rest: RestApi;
  /** The version question, asked once per adapter: concurrent listings share the one in flight (a failure is asked again). */
  private versionCheck: Promise<void> | undefined;
  /** False on a GitLab older than CHILD_PIPELINES_SINCE whose GraphQL was pinned (`gitlab.api: graphql`). */
  private listsChildPipelines = true;

  /**
   * `olderGitLab`: what a GitLab older than 17.0 gets. 'unsupported' (the default, `gitlab.api:
   * auto`): GraphQLUnsupported, and the adapter uses REST. 'incomplete' (GraphQL pinned): every
   * batched listing says it is not complete, so busy-project paging (`Project.jobs`, which holds
   * child pipelines' jobs) decides what ended.
   */
  constructor(
    private readonly client: GitLabClient,
    private readonly opts: { olderGitLab?: 'unsupported' | 'incomplete' } = {},
  ) {
    this.rest = new RestApi(client);
  }

  get requests(): number {
    return this.client.requests;
  }

  rateLimitedUntil(): number | undefined {
    return this.client.rateLimitedUntil();
  }

  private run(query: string, variables: Record<string, unknown>): Promise<GraphQLAnswer> {
    return runGraphQL(this.client, query, variables, 'our query', () => {
      if (this.projectsPerRequest > 1) this.projectsPerRequest = Math.max(1, Math.floor(this.projectsPerRequest / 2));
    });
  }

  /**
   * Whether this GitLab lists child pipelines (17.0+), asked once (`metadata { version }`, any
   * signed-in user). An older one makes the whole adapter unsupported (REST lists every job), or
   * its listings incomplete (see `olderGitLab`). When the version cannot be read (a proxy, an odd
   * version string) the query is trusted.
   */
  private checkVersion(): Promise<void> {
    this.versionCheck ??= this.askVersion().catch((e: unknown) => {
      this.versionCheck = undefined;
      throw e;
    });
    return this.versionCheck;
  }

  private async askVersion(): Promise<void> {
    const answer = await this.run(VERSION_QUERY, {});
    const version = obj(obj(answer.data)?.metadata)?.version;
    const m = typeof version === 'string' ? /^(\d+)\.(\d+)/.exec(version) : null;
    if (m) {
      const [major, minor] = [Number(m[1]), Number(m[2])];
      const [wantMajor, wantMinor] = CHILD_PIPELINES_SINCE;
      if (major < wantMajor || (major === wantMajor && minor < wantMinor)) {
        if (this.opts.olderGitLab !== 'incomplete')
          throw new GraphQLUnsupported(`GitLab ${String(version).slice(0, 40)} does not list child pipelines in GraphQL (needs ${wantMajor}.${wantMinor}): their jobs would look ended`);
        this.listsChildPipelines = false;
      }
    }
  }

  async activeJobs(projectIds: readonly number[]): Promise<Map<number, Outcome<ProjectActivity>>> {
    const out = new Map<number, Outcome<ProjectActivity>>();
    let answer: GraphQLAnswer;
    try {
      await this.checkVersion();
      answer = await this.run(ACTIVE_JOBS_QUERY, { ids: projectIds.map((id) => `gid://gitlab/Project/${id}`), n: projectIds.length });
    } catch (e) {
      if (e instanceof GraphQLUnsupported) throw e;
      for (const id of projectIds) out.set(id, fail((e as Error).message, (e as GitLabApiError).status));
      return out;
    }
    const nodes = list(obj(obj(answer.data)?.projects)?.nodes);
    // Errors with a path point at the project node they belong to (projects.nodes.<i>...): at the
    // node itself, the project failed; deeper (a scope, a pipeline, a job), the rest of its answer
    // is good but not complete.
    const failedAt = new Map<number, string>();
    const cutAt = new Set<number>();
    let unplaced: string | undefined;
    for (const e of list(answer.errors).map((x) => obj(x)).filter((x): x is Obj => !!x)) {
      const path = list(e.path);
      const i = path[0] === 'projects' && path[1] === 'nodes' && typeof path[2] === 'number' ? path[2] : undefined;
      // A failed node without its id cannot be placed: the projects missing from the answer may be it.
      if (i === undefined || idOf(obj(nodes[i])?.id) === undefined) unplaced ??= String(e.message ?? 'error');
      else if (path.length <= 3) failedAt.set(i, String(e.message ?? 'error'));
      else cutAt.add(i);
    }
    nodes.forEach((node, i) => {
      const n = obj(node);
      const id = idOf(n?.id);
      if (!n || id === undefined || !projectIds.includes(id)) return;
      if (failedAt.has(i)) {
        out.set(id, { ok: false, error: `GitLab GraphQL, project ${id}: ${failedAt.get(i)}`, answered: true });
        return;
      }
      const jobs = new Map<number, ApiJob>();
      let complete = !cutAt.has(i) && this.listsChildPipelines;
      for (const scope of PIPELINE_LISTINGS) {
        const conn = obj(n[scope]);
        if (!conn) {
          complete = false;
          continue;
        }
        if (hasNext(conn)) complete = false;
        for (const p of list(conn.nodes)) {
          const jobsConn = obj(obj(p)?.jobs);
          if (!jobsConn || hasNext(jobsConn)) complete = false;
          for (const j of list(jobsConn?.nodes)) {
            const job = jobFrom(id, j);
            // A pipeline changing scope between the listings of one query may show a job twice.
            if (job && !jobs.has(job.id)) jobs.set(job.id, job);
          }
        }
      }
      out.set(id, { ok: true, value: { jobs: [...jobs.values()], complete } });
    });
    for (const id of projectIds) {
      if (out.has(id)) continue;
      // Not in the answer: no such project, or not visible to the token; unless an error we could
      // not place may be about it.
      out.set(id, unplaced ? fail(`GitLab GraphQL: ${unplaced}`) : { ok: true, value: null });
    }
    return out;
  }

  async activeJobsPage(projectId: number, cursor?: string): Promise<Outcome<Page<ApiJob>>> {
    try {
      const answer = await this.run(PROJECT_JOBS_QUERY, { ids: [`gid://gitlab/Project/${projectId}`], after: cursor ?? null });
      if (list(answer.errors).length) return { ok: false, error: `GitLab GraphQL, project ${projectId}: ${String(obj(list(answer.errors)[0])?.message ?? 'error')}`, answered: true };
      const node = obj(list(obj(obj(answer.data)?.projects)?.nodes)[0]);
      if (!node) return { ok: true, value: null };
      const conn = obj(node.jobs);
      const items = list(conn?.nodes).map((j) => jobFrom(projectId, j)).filter((j): j is ApiJob => !!j);
      const end = obj(conn?.pageInfo)?.endCursor;
      return { ok: true, value: { items, ...(hasNext(conn) && typeof end === 'string' ? { next: end } : {}) } };
    } catch (e) {
      if (e instanceof GraphQLUnsupported) throw e;
      return fail((e as Error).message, (e as GitLabApiError).status);
    }
  }

  async instanceActiveJobs(cursor?: string): Promise<Outcome<Page<ApiJob>> | undefined> {
    try {
      const answer = await this.run(INSTANCE_JOBS_QUERY, { after: cursor ?? null });
      const conn = obj(obj(answer.data)?.jobs);
      if (!conn) return undefined;
      const items: ApiJob[] = [];
      for (const j of list(conn.nodes)) {
        const projectId = idOf(obj(obj(j)?.project)?.id);
        const job = projectId !== undefined ? jobFrom(projectId, j) : undefined;
        if (job) items.push(job);
      }
      const end = obj(conn.pageInfo)?.endCursor;
      return { ok: true, value: { items, ...(hasNext(conn) && typeof end === 'string' ? { next: end } : {}) } };
    } catch (e) {
      if (e instanceof GraphQLUnsupported) return undefined;
      return fail((e as Error).message, (e as GitLabApiError).status);
    }
  }

  isAdmin(): Promise<boolean> {
    return this.rest.isAdmin();
  }

  groupProjects(group: string | number, cursor?: string): Promise<Outcome<Page<number>>> {
    return this.rest.groupProjects(group, cursor);
  }
}
