/**
 * Pipeline graphs over GraphQL: the active pipelines of up to PIPELINE_PROJECTS_PER_REQUEST
 * projects, every job of each with what the forecast needs, in ONE request.
 *
 * Shapes, from GitLab's schema (app/graphql/types/ci): `Project.pipelines(scope: RUNNING|PENDING,
 * first:)` as in the job listing (graphql.ts); `Pipeline.stages` in the order they run;
 * `Pipeline.jobs(retried: false, first: 100)` (the latest attempt of each job, GitLab 15.2+,
 * gitlab!90649) with `CiJob` `name`, `status`, `tags`, `manualJob`, `allowFailure`,
 * `schedulingType` ("dag" when the job uses `needs`, "stage" otherwise), `stage { name }` and
 * `needs { nodes { name } }`. A pipeline waiting between two stages has status running, so the
 * two scopes hold every pipeline with work still to come.
 *
 * Cost: GitLab charges about a point per field and a connection `first: n` n % of its subtree
 * (graphql.ts); a pipeline here is about 25 points, 40 pipelines a project, 10 projects a request:
 * within the 250 points a user's query may cost, and a "complexity" answer halves the batch. The
 * request budget counts it as one request like any other (lib/gitlab/budget.ts).
 */
import { GitLabApiError, type GitLabClient } from './client';
import { idOf, type Outcome } from './api';
import { GraphQLUnsupported, hasNext, list, obj, runGraphQL } from './graphql';
import { PIPELINE_PROJECTS_PER_REQUEST, type GraphJob, type PipelineApi, type PipelineGraph, type PipelineListing } from './pipeline-api';

/** Active pipelines per scope and project: the same page as the job listing (graphql.ts PIPELINES_PER_SCOPE). */
export const GRAPH_PIPELINES_PER_SCOPE = 20;

const GRAPH_JOB = 'id name status tags manualJob allowFailure schedulingType stage { name } needs { nodes { name } }';
const SCOPE = (scope: string) =>
  `${scope.toLowerCase()}: pipelines(scope: ${scope}, first: ${GRAPH_PIPELINES_PER_SCOPE}) { pageInfo { hasNextPage } nodes { id status stages { nodes { name } } jobs(retried: false, first: 100) { pageInfo { hasNextPage } nodes { ${GRAPH_JOB} } } } }`;
export const PIPELINE_GRAPHS_QUERY = `query PipelineGraphs($ids: [ID!], $n: Int) { projects(ids: $ids, first: $n) { nodes { id ${SCOPE('RUNNING')} ${SCOPE('PENDING')} } } }`;

function graphJob(node: unknown): GraphJob | undefined {
  const n = obj(node);
  const id = idOf(n?.id);
  if (!n || id === undefined || typeof n.name !== 'string' || typeof n.status !== 'string') return undefined;
  const job: GraphJob = {
    id,
    name: n.name,
    stage: typeof obj(n.stage)?.name === 'string' ? (obj(n.stage)!.name as string) : '',
    status: n.status.toLowerCase(),
    tags: list(n.tags).filter((t): t is string => typeof t === 'string'),
    manual: n.manualJob === true,
  };
  if (typeof n.allowFailure === 'boolean') job.allowFailure = n.allowFailure;
  if (n.schedulingType === 'dag') job.needs = list(obj(n.needs)?.nodes).flatMap((x) => (typeof obj(x)?.name === 'string' ? [obj(x)!.name as string] : []));
  return job;
}

function pipelineFrom(projectId: number, node: unknown): PipelineGraph | undefined {
  const n = obj(node);
  const id = idOf(n?.id);
  if (!n || id === undefined) return undefined;
  const jobsConn = obj(n.jobs);
  return {
    id,
    projectId,
    status: typeof n.status === 'string' ? n.status.toLowerCase() : 'running',
    stages: list(obj(n.stages)?.nodes).flatMap((s) => (typeof obj(s)?.name === 'string' ? [obj(s)!.name as string] : [])),
    jobs: list(jobsConn?.nodes).map(graphJob).filter((j): j is GraphJob => j !== undefined),
    complete: !!jobsConn && !hasNext(jobsConn),
  };
}

export class GraphQLPipelineApi implements PipelineApi {
  pipelineProjectsPerRequest = PIPELINE_PROJECTS_PER_REQUEST;
  constructor(private readonly client: GitLabClient) {}

  get requests(): number {
    return this.client.requests;
  }

  async activePipelines(projectIds: readonly number[]): Promise<Map<number, Outcome<PipelineListing>>> {
    const out = new Map<number, Outcome<PipelineListing>>();
    const failAll = (error: string, status?: number) => {
      for (const id of projectIds) out.set(id, { ok: false, error, status });
      return out;
    };
    let answer;
    try {
      answer = await runGraphQL(this.client, PIPELINE_GRAPHS_QUERY, { ids: projectIds.map((id) => `gid://gitlab/Project/${id}`), n: projectIds.length }, 'the pipeline query', () => {
        if (this.pipelineProjectsPerRequest > 1) this.pipelineProjectsPerRequest = Math.max(1, Math.floor(this.pipelineProjectsPerRequest / 2));
      });
    } catch (e) {
      if (e instanceof GraphQLUnsupported) throw e;
      return failAll((e as Error).message, (e as GitLabApiError).status);
    }
    const errors = list(answer.errors).map(obj).filter((x) => x !== undefined);
    const nodes = list(obj(obj(answer.data)?.projects)?.nodes);
    // An error inside a project's answer leaves the rest of it usable but not complete.
    const cut = new Set<number>();
    for (const e of errors) {
      const path = list(e.path);
      if (path[0] === 'projects' && path[1] === 'nodes' && typeof path[2] === 'number') cut.add(path[2]);
    }
    nodes.forEach((node, i) => {
      const n = obj(node);
      const id = idOf(n?.id);
      if (!n || id === undefined || !projectIds.includes(id)) return;
      const pipelines: PipelineGraph[] = [];
      let complete = !cut.has(i);
      for (const scope of ['running', 'pending']) {
        const conn = obj(n[scope]);
        if (!conn || hasNext(conn)) complete = false;
        for (const p of list(conn?.nodes)) {
          const g = pipelineFrom(id, p);
          if (g) pipelines.push(g);
        }
      }
      out.set(id, { ok: true, value: { pipelines, complete } });
    });
    // Not in the answer: not visible to the token (or no such project).
    for (const id of projectIds) if (!out.has(id)) out.set(id, { ok: true, value: null });
    return out;
  }
}
