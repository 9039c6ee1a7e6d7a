/**
 * The part of GitLab's GraphQL schema the adapter uses, as GitLab defines it, so that a test can
 * refuse a query GitLab would refuse: a field, argument or enum value GitLab does not have, a page
 * larger than 100. The canned answers of the tests never show such mistakes; GitLab answers them
 * with "Field 'x' doesn't exist on type 'Y'" and the whole query fails.
 *
 * Sources (gitlab-org/gitlab, app/graphql): types/query_type.rb, resolvers/projects_resolver.rb,
 * types/project_type.rb, resolvers/concerns/resolves_pipelines.rb (Project.pipelines: status,
 * scope, ref, ref_type, sha, source, updated_after, updated_before, username),
 * resolvers/ci/jobs_resolver.rb (Pipeline.jobs: statuses, retried, security_report_types,
 * when_executed, job_kind), resolvers/project_jobs_resolver.rb, resolvers/ci/all_jobs_resolver.rb,
 * types/ci/pipeline_type.rb, types/ci/job_type.rb, types/ci/job_status_enum.rb,
 * types/ci/pipeline_scope_enum.rb, types/metadata_type.rb; default_max_page_size 100 (gitlab_schema.rb).
 */

type Field = { type: string; args?: Record<string, string> };
const PAGING = { first: 'Int', after: 'String', last: 'Int', before: 'String' };

const TYPES: Record<string, Record<string, Field>> = {
  Query: {
    projects: { type: 'ProjectConnection', args: { ids: '[ID!]', fullPaths: '[String!]', membership: 'Boolean', search: 'String', sort: 'String', ...PAGING } },
    project: { type: 'Project', args: { fullPath: 'ID!' } },
    jobs: { type: 'CiJobConnection', args: { statuses: '[CiJobStatus!]', runnerTypes: '[CiRunnerType!]', ...PAGING } },
    metadata: { type: 'Metadata' },
  },
  Metadata: { version: { type: 'String' }, revision: { type: 'String' } },
  ProjectConnection: { nodes: { type: 'Project' }, pageInfo: { type: 'PageInfo' }, count: { type: 'Int' } },
  PipelineConnection: { nodes: { type: 'Pipeline' }, pageInfo: { type: 'PageInfo' }, count: { type: 'Int' } },
  CiJobConnection: { nodes: { type: 'CiJob' }, pageInfo: { type: 'PageInfo' }, count: { type: 'Int' } },
  PageInfo: { hasNextPage: { type: 'Boolean' }, hasPreviousPage: { type: 'Boolean' }, endCursor: { type: 'String' }, startCursor: { type: 'String' } },
  Project: {
    id: { type: 'ID' },
    fullPath: { type: 'ID' },
    pipelines: {
      type: 'PipelineConnection',
      args: { status: 'PipelineStatusEnum', scope: 'PipelineScopeEnum', ref: 'String', sha: 'String', source: 'String', updatedAfter: 'Time', updatedBefore: 'Time', username: 'String', ...PAGING },
    },
    jobs: { type: 'CiJobConnection', args: { statuses: '[CiJobStatus!]', withArtifacts: 'Boolean', ...PAGING } },
  },
  Pipeline: {
    id: { type: 'ID' },
    iid: { type: 'String' },
    status: { type: 'PipelineStatusEnum' },
    source: { type: 'String' },
    jobs: { type: 'CiJobConnection', args: { statuses: '[CiJobStatus!]', retried: 'Boolean', securityReportTypes: '[SecurityReportTypeEnum!]', whenExecuted: '[String!]', jobKind: 'CiJobKind', ...PAGING } },
  },
  CiJob: {
    id: { type: 'JobID' },
    name: { type: 'String' },
    status: { type: 'CiJobStatus' },
    tags: { type: 'String' },
    queuedAt: { type: 'Time' },
    kind: { type: 'CiJobKind' },
    project: { type: 'Project' },
    pipeline: { type: 'Pipeline' },
  },
};

const ENUMS: Record<string, string[]> = {
  CiJobStatus: ['CANCELED', 'CANCELING', 'CREATED', 'FAILED', 'MANUAL', 'PENDING', 'PREPARING', 'RUNNING', 'SCHEDULED', 'SKIPPED', 'SUCCESS', 'WAITING_FOR_CALLBACK', 'WAITING_FOR_RESOURCE'],
  PipelineScopeEnum: ['RUNNING', 'PENDING', 'FINISHED', 'BRANCHES', 'TAGS'],
  CiJobKind: ['BUILD', 'BRIDGE'],
};

/** Problems GitLab would answer the query with; [] when it would run it. Variables are typed from the operation's header. */
export function gitlabQueryProblems(query: string): string[] {
  const problems: string[] = [];
  const tokens = query.match(/\.\.\.|"(?:[^"\\]|\\.)*"|\$?[A-Za-z_][A-Za-z0-9_]*|-?\d+|[{}():,![\]=]/g) ?? [];
  let i = 0;
  const peek = () => tokens[i];
  const next = () => tokens[i++];
  const expect = (t: string) => {
    if (next() !== t) throw new Error(`expected ${t} at token ${i}`);
  };
  const variables = new Map<string, string>();
  // query Name($a: [ID!], $b: Int) {
  if (peek() === 'query') {
    next();
    if (peek() !== '(' && peek() !== '{') next();
    if (peek() === '(') {
      next();
      while (peek() !== ')') {
        const name = next();
        expect(':');
        let type = '';
        while (peek() !== ',' && peek() !== ')' && peek() !== '=' && !(peek()?.startsWith('$') ?? true)) type += next();
        if (peek() === '=') (next(), next());
        variables.set(name, type);
        if (peek() === ',') next();
      }
      next();
    }
  }
  const argType = (field: string, arg: string, declared: string | undefined, value: string[]) => {
    if (!declared) return problems.push(`Field '${field}' doesn't accept argument '${arg}'`);
    if (value.length === 1 && value[0].startsWith('$')) {
      const v = variables.get(value[0]);
      if (v === undefined) problems.push(`Variable ${value[0]} is used by ${field} but not declared`);
      else if (v.replace(/!$/, '') !== declared.replace(/!$/, '') && !(declared === 'ID!' && v === 'ID!')) problems.push(`Type mismatch on variable ${value[0]} and argument ${arg} (${v} / ${declared})`);
      return;
    }
    const base = declared.replace(/[[\]!]/g, '');
    if (ENUMS[base]) for (const v of value.filter((x) => /^[A-Z_]+$/.test(x))) if (!ENUMS[base].includes(v)) problems.push(`Argument '${arg}' on Field '${field}' has an invalid value (${v}). Expected type '${declared}'`);
    if ((arg === 'first' || arg === 'last') && Number(value[0]) > 100) problems.push(`${field}: ${arg} ${value[0]} is over the maximum page size of 100`);
  };
  const selection = (type: string) => {
    expect('{');
    while (peek() !== '}') {
      if (peek() === '...') {
        next();
        expect('on');
        const on = next();
        if (on !== type) problems.push(`Fragment on ${on} can't be spread inside ${type}`);
        selection(on);
        continue;
      }
      let name = next();
      if (peek() === ':') {
        next();
        name = next();
      }
      const field = TYPES[type]?.[name];
      if (!field) problems.push(`Field '${name}' doesn't exist on type '${type}'`);
      if (peek() === '(') {
        next();
        while (peek() !== ')') {
          const arg = next();
          expect(':');
          const value: string[] = [];
          let depth = 0;
          while (depth > 0 || (peek() !== ',' && peek() !== ')' && !(depth === 0 && tokens[i + 1] === ':' && value.length > 0))) {
            const t = next();
            if (t === '[') depth++;
            if (t === ']') depth--;
            if (t !== '[' && t !== ']' && t !== ',') value.push(t);
          }
          if (peek() === ',') next();
          if (field) argType(name, arg, field.args?.[arg], value);
        }
        next();
      }
      if (peek() === '{') {
        if (field && !TYPES[field.type]) problems.push(`Selections can't be made on ${field.type} (field '${name}')`);
        selection(field?.type ?? '?');
      } else if (field && TYPES[field.type]) problems.push(`Field '${name}' of type '${field.type}' must have a selection of subfields`);
    }
    next();
  };
  try {
    selection('Query');
  } catch (e) {
    problems.push(`syntax: ${(e as Error).message}`);
  }
  return problems;
}

/** A record of GitLab's `p_ci_builds` table (CommitStatus): its class decides what it is. */
export interface ModelJob {
  id: number;
  type: 'Ci::Build' | 'Ci::Bridge' | 'GenericCommitStatus';
  status: string;
  tags?: string[];
}

export interface ModelPipeline {
  id: number;
  projectId: number;
  /** Composite status (pending, running, success, ...). */
  status: string;
  /** Ci::Pipeline source: push, merge_request_event, parent_pipeline (a child pipeline), ... */
  source: string;
  jobs: ModelJob[];
}

/**
 * A GitLab answering POST /api/graphql the way GitLab does for the queries the adapter sends, over
 * a small world of pipelines: it refuses what the schema does not have (gitlabQueryProblems), and
 * follows GitLab's finders where the canned answers would be lenient:
 *  - `Project.pipelines` leaves child pipelines out unless `source: "parent_pipeline"` is asked
 *    (Ci::PipelinesFinder#prefiltered_pipelines; before 17.0 that filter found nothing);
 *  - `Pipeline.jobs` is every CommitStatus of the pipeline (builds, bridges, external statuses),
 *    with ids `gid://gitlab/<class>/<id>`; `Project.jobs` and `Query.jobs` are builds only;
 *  - `metadata { version }` tells the version.
 * Aliases are read from the query text (`alias: pipelines(...)`); paging is not modelled (first page only).
 */
export class GitLabGraphQLModel {
  readonly pipelines: ModelPipeline[] = [];
  version = '18.6.0-ee';
  readonly queries: string[] = [];

  answer(body: string): unknown {
    const { query } = JSON.parse(body) as { query: string; variables: Record<string, unknown> };
    const variables = (JSON.parse(body) as { variables?: Record<string, unknown> }).variables ?? {};
    this.queries.push(query);
    const problems = gitlabQueryProblems(query);
    if (problems.length) return { errors: problems.map((message) => ({ message })) };
    if (/metadata\s*\{/.test(query)) return { data: { metadata: { version: this.version } } };
    const gid = (j: ModelJob) => `gid://gitlab/${j.type}/${j.id}`;
    const jobNode = (j: ModelJob, projectId?: number) => ({ id: gid(j), status: j.status.toUpperCase(), tags: j.type === 'Ci::Build' ? (j.tags ?? []) : null, queuedAt: null, ...(projectId ? { project: { id: `gid://gitlab/Project/${projectId}` } } : {}) });
    const statuses = (args: string) => (/statuses:\s*\[([^\]]*)\]/.exec(args)?.[1] ?? '').split(/[\s,]+/).filter(Boolean).map((s) => s.toLowerCase());
    if (/^\s*query\s+InstanceJobs|\{\s*jobs\(/.test(query)) {
      const want = statuses(/jobs\(([^)]*)\)/.exec(query)?.[1] ?? '');
      const nodes = this.pipelines.flatMap((p) => p.jobs.filter((j) => j.type === 'Ci::Build' && want.includes(j.status)).map((j) => jobNode(j, p.projectId)));
      return { data: { jobs: { pageInfo: { hasNextPage: false, endCursor: null }, nodes } } };
    }
    const ids = ((variables.ids as string[] | undefined) ?? []).map((g) => Number(/(\d+)$/.exec(g)?.[1]));
    const projects = [...new Set(this.pipelines.map((p) => p.projectId))].filter((p) => ids.includes(p));
    const listings = [...query.matchAll(/(\w+):\s*pipelines\(([^)]*)\)\s*\{[^]*?jobs\(([^)]*)\)/g)].map((m) => ({ alias: m[1], args: m[2], jobArgs: m[3] }));
    const projectJobs = /nodes\s*\{\s*id\s+jobs\(([^)]*)\)/.exec(query);
    const nodes = projects.map((projectId) => {
      const node: Record<string, unknown> = { id: `gid://gitlab/Project/${projectId}` };
      const mine = this.pipelines.filter((p) => p.projectId === projectId).sort((a, b) => b.id - a.id);
      if (projectJobs) {
        const want = statuses(projectJobs[1]);
        node.jobs = { pageInfo: { hasNextPage: false, endCursor: null }, nodes: mine.flatMap((p) => p.jobs.filter((j) => j.type === 'Ci::Build' && want.includes(j.status)).map((j) => jobNode(j))) };
      }
      for (const l of listings) {
        const scope = /scope:\s*(\w+)/.exec(l.args)?.[1]?.toLowerCase();
        const source = /source:\s*"([^"]*)"/.exec(l.args)?.[1];
        const childrenToo = source === 'parent_pipeline' && !/^(1[0-6]|[0-9])\./.test(this.version);
        const found = mine.filter((p) => (p.source !== 'parent_pipeline' || childrenToo) && (!scope || p.status === scope) && (!source || p.source === source));
        const want = statuses(l.jobArgs);
        node[l.alias] = {
          pageInfo: { hasNextPage: false },
          nodes: found.map((p) => ({ id: `gid://gitlab/Ci::Pipeline/${p.id}`, jobs: { pageInfo: { hasNextPage: false }, nodes: p.jobs.filter((j) => want.includes(j.status)).map((j) => jobNode(j)) } })),
        };
      }
      return node;
    });
    return { data: { projects: { nodes } } };
  }

  /** GET /api/v4/projects/:id/jobs?scope[]=...: the project's builds, of every pipeline (child ones too), newest first. */
  rest(url: string): unknown {
    const m = /^\/api\/v4\/projects\/(\d+)\/jobs\?(.*)$/.exec(url);
    if (!m) return undefined;
    const scopes = [...m[2].matchAll(/scope\[\]=(\w+)/g)].map((x) => x[1]);
    return this.pipelines
      .filter((p) => p.projectId === Number(m[1]))
      .flatMap((p) => p.jobs.filter((j) => j.type === 'Ci::Build' && scopes.includes(j.status)))
      .sort((a, b) => b.id - a.id)
      .map((j) => ({ id: j.id, status: j.status, tag_list: j.tags ?? [] }));
  }
}
