/**
 * The GitLab transport (lib/gitlab/client.ts) and the two ways of asking (REST and GraphQL, with
 * the fallback between them) against a GitLab stand-in on 127.0.0.1 whose answers each test scripts.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { GitLabClient, retryAfterMs } from '../../lib/gitlab/client';
import { ACTIVE_JOBS_QUERY, GraphQLApi, GraphQLUnsupported, INSTANCE_JOBS_QUERY, PROJECTS_PER_REQUEST, VERSION_QUERY } from '../../lib/gitlab/graphql';
import { GRAPHQL_RETRY_MS, HttpGitLabApi } from '../../lib/gitlab/http-api';
import { RestApi } from '../../lib/gitlab/rest';
import { MemoryLogger } from '../controller/fixtures';
import { GitLabGraphQLModel, gitlabQueryProblems } from '../helpers/gitlab-graphql';

const TOKEN = 'glpat-do-not-leak-1234';

let server: Server;
let base: string;
let handler: (req: IncomingMessage, res: ServerResponse, body: string) => void;
const seen: { method?: string; url: string; token?: string; body: string }[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
      seen.push({ method: req.method, url: req.url ?? '', token: (req.headers['private-token'] as string | undefined) ?? bearer, body });
      handler(req, res, body);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const addr = server.address();
  base = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});
beforeEach(() => {
  seen.length = 0;
});

const json = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
};

function client(extra: Partial<ConstructorParameters<typeof GitLabClient>[0]> = {}) {
  const sleeps: number[] = [];
  const c = new GitLabClient({ url: base, token: TOKEN, sleep: async (ms) => void sleeps.push(ms), random: () => 0.5, ...extra });
  return { c, sleeps };
}

describe('transport', () => {
  test('REST sends PRIVATE-TOKEN, GraphQL a Bearer token; every attempt is counted', async () => {
    handler = (req, res) => (req.method === 'POST' ? json(res, 200, { data: { ok: true } }) : json(res, 200, { id: 1 }));
    const { c } = client();
    expect(await c.get('/projects/7')).toEqual({ id: 1 });
    expect(await c.graphql('query { ok }', { a: 1 })).toEqual({ data: { ok: true } });
    expect(seen.map((s) => [s.method, s.url, s.token])).toEqual([
      ['GET', '/api/v4/projects/7', TOKEN],
      ['POST', '/api/graphql', TOKEN],
    ]);
    expect(JSON.parse(seen[1].body)).toEqual({ query: 'query { ok }', variables: { a: 1 } });
    expect(c.requests).toBe(2);
  });

  test('429 waits Retry-After, then succeeds', async () => {
    let n = 0;
    handler = (_req, res) => (n++ === 0 ? json(res, 429, {}, { 'retry-after': '3' }) : json(res, 200, { data: {} }));
    const { c, sleeps } = client();
    expect(await c.graphql('query { x }')).toEqual({ data: {} });
    expect(sleeps).toEqual([3000]);
    expect(c.requests).toBe(2);
  });

  test('a Retry-After longer than the cap fails at once instead of stalling the pass', async () => {
    handler = (_req, res) => json(res, 429, {}, { 'retry-after': '120' });
    const { c, sleeps } = client();
    await expect(c.get('/x')).rejects.toThrow(/rate limited/);
    expect(sleeps).toEqual([]);
    expect(seen).toHaveLength(1);
  });

  test('after a 429, nothing is sent until its Retry-After has passed (GitLab counts what is sent into its limit)', async () => {
    let t = 1_000_000;
    handler = (_req, res) => json(res, 429, {}, { 'retry-after': '120' });
    const { c } = client({ now: () => t });
    await expect(c.get('/x')).rejects.toThrow(/rate limited/);
    expect(c.rateLimitedUntil()).toBe(t + 120_000);
    t += 60_000;
    const err = (await c.graphql('query { x }').catch((e: Error) => e)) as Error & { status?: number };
    expect(err.message).toMatch(/not sent: rate limited \(HTTP 429\) until 1970-01-01T00:18:40.000Z/);
    expect(err.status).toBe(429);
    expect(seen).toHaveLength(1);
    expect(c.requests).toBe(1);
    t += 60_000;
    expect(c.rateLimitedUntil()).toBeUndefined();
    handler = (_req, res) => json(res, 200, { id: 1 });
    expect(await c.get('/x')).toEqual({ id: 1 });
  });

  test('5xx is retried a bounded number of times with backoff', async () => {
    handler = (_req, res) => json(res, 502, {});
    const { c, sleeps } = client();
    await expect(c.graphql('query { x }')).rejects.toThrow(/HTTP 502/);
    expect(seen).toHaveLength(3);
    expect(sleeps).toEqual([125, 250]);
  });

  test('a hanging server times out', async () => {
    handler = () => {}; // never answers
    const { c } = client({ timeoutMs: 100, maxAttempts: 2 });
    await expect(c.get('/x')).rejects.toThrow(/timed out after 100 ms/);
  });

  test('401 is reported clearly, and the token never appears in any error', async () => {
    handler = (_req, res) => json(res, 401, { message: '401 Unauthorized' });
    for (const call of [(c: GitLabClient) => c.get('/x'), (c: GitLabClient) => c.graphql('query { x }')]) {
      const err = (await call(client().c).catch((e: Error) => e)) as Error;
      expect(err.message).toMatch(/refused the token \(HTTP 401\).*read_api/);
      expect(JSON.stringify({ m: err.message, s: err.stack })).not.toContain(TOKEN);
    }
  });

  test('the token can come from a loader (SSM); a bad URL is refused by name', async () => {
    handler = (_req, res) => json(res, 200, {});
    const { c } = client({ token: async () => 'from-ssm' });
    await c.get('/x');
    expect(seen[0].token).toBe('from-ssm');
    expect(() => new GitLabClient({ url: 'gitlab', token: 'x' })).toThrow(/gitlab.url: "gitlab" is not a URL/);
  });

  test('a redirect is not followed: the token never reaches the host it names, and nothing is taken as absent', async () => {
    // Another origin (another port): what a misconfigured gitlab.url, a proxy or a hostile answer could point at.
    const stolen: (string | undefined)[] = [];
    const other = createServer((req, res) => {
      stolen.push((req.headers['private-token'] as string | undefined) ?? req.headers.authorization ?? 'anonymous');
      json(res, 200, req.method === 'POST' ? { data: { projects: { nodes: [] } } } : []);
    });
    await new Promise<void>((r) => other.listen(0, '127.0.0.1', r));
    const port = (other.address() as { port: number }).port;
    try {
      handler = (req, res) => {
        res.writeHead(req.method === 'POST' ? 307 : 302, { location: `http://localhost:${port}/collect?x=1` });
        res.end();
      };
      const { c } = client();
      const err = (await c.get('/projects/7/jobs').catch((e: Error) => e)) as Error;
      expect(err.message).toMatch(new RegExp(`redirect \\(HTTP 302\\) to http://localhost:${port}, not followed.*gitlab.url`));
      expect(err.message).not.toContain('collect');
      // GraphQL: followed, the query arrived anonymously and every project looked absent (dropped).
      const answers = await new GraphQLApi(client().c).activeJobs([7]);
      expect(answers.get(7)).toMatchObject({ ok: false, error: expect.stringMatching(/HTTP 307/) });
      // REST: a project behind a redirect is not "not there" either.
      expect(await new RestApi(client().c).activeJobsPage(7)).toMatchObject({ ok: false });
      expect(stolen).toEqual([]);
    } finally {
      other.closeAllConnections();
      await new Promise((r) => other.close(r));
    }
  });

  test('a token fetch cannot send is refused without quoting it (fetch quotes the header value in its error)', async () => {
    handler = (_req, res) => json(res, 200, {});
    const bad = 'glpat-do-not-leak\nsecond-line-5678';
    for (const call of [(c: GitLabClient) => c.get('/x'), (c: GitLabClient) => c.graphql('query { x }')]) {
      const err = (await call(client({ token: async () => bad }).c).catch((e: Error) => e)) as Error;
      expect(err.message).toMatch(/token holds white space, control or non-ASCII characters/);
      expect(JSON.stringify({ m: err.message, s: err.stack })).not.toMatch(/do-not-leak|second-line/);
    }
    // As GraphQLApi reports it (the text that becomes a decision stored in SSM).
    const answers = await new GraphQLApi(client({ token: bad }).c).activeJobs([7]);
    expect(JSON.stringify([...answers])).not.toMatch(/do-not-leak|second-line/);
    expect(seen).toEqual([]);
    // A trailing newline (a value stored from a file) is trimmed by fetch and works.
    await client({ token: `${TOKEN}\n` }).c.get('/x');
    expect(seen[0].token).toBe(TOKEN);
  });

  test('a network error never carries the token', async () => {
    const { c } = client({ fetch: (async () => Promise.reject(new TypeError(`connect failed for ${TOKEN}`))) as typeof fetch, maxAttempts: 1 });
    const err = (await c.get('/x').catch((e: Error) => e)) as Error;
    expect(err.message).toMatch(/network error: connect failed for \[REDACTED\]/);
  });

  test('Retry-After accepts seconds and HTTP dates', () => {
    expect(retryAfterMs('7', 0)).toBe(7000);
    expect(retryAfterMs('Wed, 21 Oct 2015 07:28:10 GMT', Date.parse('Wed, 21 Oct 2015 07:28:00 GMT'))).toBe(10_000);
    expect(retryAfterMs('soon', 0)).toBeUndefined();
  });
});

describe('REST', () => {
  const now = Date.parse('2025-03-03T10:00:00Z');

  test('lists a project\'s pending and running jobs, a page of 100, newest first; malformed entries are skipped', async () => {
    handler = (_req, res) =>
      json(res, 200, [
        { id: 91, status: 'pending', tag_list: ['arm64'], queued_duration: 12.5 },
        { id: 90, status: 'running', tag_list: ['docker'] },
        { id: 'x', status: 'pending' },
        { id: 89 },
        null,
      ]);
    const api = new RestApi(client().c, () => now);
    const out = await api.activeJobs([7]);
    expect(out.get(7)).toEqual({
      ok: true,
      value: {
        complete: true,
        jobs: [
          { id: 91, projectId: 7, status: 'pending', tags: ['arm64'], queuedAt: now - 12_500 },
          { id: 90, projectId: 7, status: 'running', tags: ['docker'] },
        ],
      },
    });
    expect(seen[0].url).toBe('/api/v4/projects/7/jobs?scope[]=pending&scope[]=running&per_page=100&page=1');
    await expect(api.activeJobs([1, 2])).rejects.toThrow(/one project per request/);
  });

  test('a full page is not complete and names the next; 404 is a project not there; a body that is not a list fails the unit', async () => {
    handler = (_req, res) => json(res, 200, Array.from({ length: 100 }, (_, k) => ({ id: 1000 - k, status: 'pending' })));
    const api = new RestApi(client().c);
    expect((await api.activeJobs([7])).get(7)).toMatchObject({ ok: true, value: { complete: false } });
    expect(await api.activeJobsPage(7, '2')).toMatchObject({ ok: true, value: { next: '3' } });
    expect(seen[1].url).toMatch(/page=2$/);
    handler = (_req, res) => json(res, 404, { message: '404 Project Not Found' });
    expect((await api.activeJobs([8])).get(8)).toEqual({ ok: true, value: null });
    handler = (_req, res) => json(res, 200, { message: 'unexpected' });
    expect((await api.activeJobs([8])).get(8)).toMatchObject({ ok: false, error: expect.stringMatching(/expected a JSON array of jobs/) });
    expect(await api.activeJobsPage(0)).toMatchObject({ ok: false, error: expect.stringMatching(/positive integer/) });
  });

  test('group projects page by page, and the admin check reads is_admin', async () => {
    handler = (req, res) => (req.url === '/api/v4/user' ? json(res, 200, { id: 1, is_admin: true }) : json(res, 200, [{ id: 4 }, { id: 5 }, { nope: 1 }]));
    const api = new RestApi(client().c);
    expect(await api.groupProjects('acme/platform')).toEqual({ ok: true, value: { items: [4, 5] } });
    expect(seen[0].url).toBe('/api/v4/groups/acme%2Fplatform/projects?include_subgroups=true&simple=true&archived=false&per_page=100&page=1');
    expect(await api.isAdmin()).toBe(true);
  });
});

describe('GraphQL', () => {
  const job = (id: number, status: string, tags: string[] = [], queuedAt?: string) => ({ id: `gid://gitlab/Ci::Build/${id}`, status, tags, ...(queuedAt ? { queuedAt } : {}) });
  const pipelines = (jobs: unknown[], more = false, jobsMore = false) => ({ pageInfo: { hasNextPage: more }, nodes: [{ id: 'gid://gitlab/Ci::Pipeline/1', jobs: { pageInfo: { hasNextPage: jobsMore }, nodes: jobs } }] });
  const none = { pageInfo: { hasNextPage: false }, nodes: [] };
  const project = (id: number, running: unknown, pending: unknown) => ({ id: `gid://gitlab/Project/${id}`, running, pending, childRunning: none, childPending: none });

  test('one request lists many projects: their jobs, whether each list is complete, and the projects not visible', async () => {
    handler = (_req, res) =>
      json(res, 200, {
        data: {
          projects: {
            nodes: [
              project(7, pipelines([job(91, 'RUNNING', ['docker'])]), pipelines([job(92, 'PENDING', ['arm64'], '2025-03-03T09:59:00Z'), { junk: true }])),
              project(8, pipelines([], true), pipelines([])),
              project(9, pipelines([]), pipelines([job(5, 'PENDING')], false, true)),
            ],
          },
        },
      });
    const api = new GraphQLApi(client().c);
    const out = await api.activeJobs([7, 8, 9, 10]);
    expect(out.get(7)).toEqual({
      ok: true,
      value: {
        complete: true,
        jobs: [
          { id: 91, projectId: 7, status: 'running', tags: ['docker'] },
          { id: 92, projectId: 7, status: 'pending', tags: ['arm64'], queuedAt: Date.parse('2025-03-03T09:59:00Z') },
        ],
      },
    });
    expect(out.get(8)).toMatchObject({ ok: true, value: { complete: false } }); // more running pipelines than one page
    expect(out.get(9)).toMatchObject({ ok: true, value: { complete: false } }); // a pipeline with more jobs than one page
    expect(out.get(10)).toEqual({ ok: true, value: null }); // not in the answer: no such project, or no access
    // The version is asked once per adapter (child pipelines are listed from 17.0), then one request.
    expect(seen.map((s) => JSON.parse(s.body).query)).toEqual([VERSION_QUERY, ACTIVE_JOBS_QUERY]);
    await api.activeJobs([7]);
    expect(seen).toHaveLength(3);
    const sent = JSON.parse(seen[1].body);
    expect(sent.variables).toEqual({ ids: [7, 8, 9, 10].map((id) => `gid://gitlab/Project/${id}`), n: 4 });
  });

  test('an error with a path fails only the project it points at; deeper inside it, the project\'s answer is kept but not complete', async () => {
    handler = (_req, res) =>
      json(res, 200, {
        data: { projects: { nodes: [project(7, pipelines([job(1, 'PENDING')]), pipelines([])), null, project(9, null, pipelines([job(2, 'PENDING')]))] } },
        errors: [
          { message: 'Internal server error', path: ['projects', 'nodes', 1] },
          { message: 'Internal server error', path: ['projects', 'nodes', 2, 'running'] },
        ],
      });
    const out = await new GraphQLApi(client().c).activeJobs([7, 8, 9]);
    expect(out.get(7)).toMatchObject({ ok: true, value: { complete: true } });
    expect(out.get(9)).toMatchObject({ ok: true, value: { complete: false, jobs: [{ id: 2 }] } });
    // Node 1 failed and carries no id: an error we cannot place on a project fails the unanswered ones.
    expect(out.get(8)).toMatchObject({ ok: false, error: expect.stringMatching(/Internal server error/) });
  });

  test('a query too complex for GitLab halves the batch; a whole-query failure fails every project of it', async () => {
    handler = (_req, res) => json(res, 200, { errors: [{ message: 'Query has complexity of 301, which exceeds max complexity of 250' }] });
    const api = new GraphQLApi(client().c);
    const out = await api.activeJobs([1, 2]);
    expect([...out.values()].every((o) => !o.ok)).toBe(true);
    expect(api.projectsPerRequest).toBe(Math.floor(PROJECTS_PER_REQUEST / 2));
  });

  test('a GitLab that cannot run the query (older schema, no /api/graphql) makes the adapter fall back to REST for an hour, and says so', async () => {
    let t = Date.parse('2025-03-03T10:00:00Z');
    const log = new MemoryLogger();
    handler = (req, res) =>
      req.method === 'POST'
        ? json(res, 200, { errors: [{ message: "Field 'pipelines' doesn't accept argument 'scope'" }] })
        : json(res, 200, [{ id: 3, status: 'pending', tag_list: [] }]);
    const api = new HttpGitLabApi(client().c, { mode: 'auto', log, clock: () => t });
    expect(api.mode).toBe('graphql');
    expect(api.projectsPerRequest).toBe(PROJECTS_PER_REQUEST);
    const first = await api.activeJobs([3, 4]);
    expect([...first.values()].every((o) => !o.ok)).toBe(true);
    expect(log.at('warn').join()).toMatch(/GitLab GraphQL unavailable: falling back to REST/);
    expect(api.mode).toBe('rest');
    expect(api.projectsPerRequest).toBe(1);
    expect((await api.activeJobs([3])).get(3)).toMatchObject({ ok: true, value: { jobs: [{ id: 3 }] } });
    expect(seen.map((s) => s.method)).toEqual(['POST', 'GET']);
    t += GRAPHQL_RETRY_MS;
    expect(api.mode).toBe('graphql');
    // Pinned to GraphQL: the failure stands, no fallback.
    const pinned = new HttpGitLabApi(client().c, { mode: 'graphql', log, clock: () => t });
    await pinned.activeJobs([3]);
    expect(pinned.mode).toBe('graphql');
    await expect(new GraphQLApi(client().c).activeJobs([3])).rejects.toBeInstanceOf(GraphQLUnsupported);
  });

  test('an instance without /api/graphql (404) is a fallback too', async () => {
    handler = (req, res) => (req.method === 'POST' ? json(res, 404, { message: 'Not found' }) : json(res, 200, []));
    const api = new HttpGitLabApi(client().c, { mode: 'auto' });
    await api.activeJobs([3]);
    expect(api.mode).toBe('rest');
  });

  test('administrators list the instance 100 jobs a page, with each job\'s project', async () => {
    handler = (_req, res) =>
      json(res, 200, { data: { jobs: { pageInfo: { hasNextPage: true, endCursor: 'abc' }, nodes: [{ ...job(7, 'PENDING', ['docker']), project: { id: 'gid://gitlab/Project/42' } }, job(8, 'PENDING')] } } });
    const page = await new GraphQLApi(client().c).instanceActiveJobs();
    expect(page).toEqual({ ok: true, value: { items: [{ id: 7, projectId: 42, status: 'pending', tags: ['docker'] }], next: 'abc' } });
    expect(JSON.parse(seen[0].body)).toEqual({ query: INSTANCE_JOBS_QUERY, variables: { after: null } });
  });
});

describe('GraphQL against a GitLab that follows its finders (test/helpers/gitlab-graphql.ts)', () => {
  const serve = (model: GitLabGraphQLModel) => {
    handler = (req, res, body) => {
      if (req.method === 'POST') return json(res, 200, model.answer(body));
      const rest = model.rest(req.url ?? '');
      return rest === undefined ? json(res, 404, { message: '404 Not found' }) : json(res, 200, rest);
    };
  };

  test('every query the adapter sends is one GitLab\'s schema accepts', async () => {
    const model = new GitLabGraphQLModel();
    model.pipelines.push({ id: 1, projectId: 7, status: 'running', source: 'push', jobs: [{ id: 10, type: 'Ci::Build', status: 'pending' }] });
    serve(model);
    const api = new GraphQLApi(client().c);
    await api.activeJobs([7]);
    await api.activeJobsPage(7);
    await api.instanceActiveJobs();
    expect(model.queries.length).toBeGreaterThanOrEqual(3);
    for (const q of model.queries) expect(gitlabQueryProblems(q)).toEqual([]);
  });

  test('jobs of child pipelines are listed (Project.pipelines leaves them out unless asked for source parent_pipeline)', async () => {
    const model = new GitLabGraphQLModel();
    // A parent pipeline whose trigger job (a bridge) runs while its child pipeline's jobs wait.
    model.pipelines.push(
      { id: 1, projectId: 7, status: 'running', source: 'push', jobs: [{ id: 10, type: 'Ci::Bridge', status: 'running' }, { id: 11, type: 'Ci::Build', status: 'running', tags: ['docker'] }] },
      { id: 2, projectId: 7, status: 'pending', source: 'parent_pipeline', jobs: [{ id: 20, type: 'Ci::Build', status: 'pending', tags: ['arm64'] }, { id: 21, type: 'Ci::Build', status: 'pending', tags: [] }] },
    );
    serve(model);
    const out = await new GraphQLApi(client().c).activeJobs([7]);
    expect(out.get(7)).toMatchObject({ ok: true, value: { complete: true } });
    const listed = out.get(7)!.ok ? (out.get(7) as { value: { jobs: { id: number }[] } }).value.jobs.map((j) => j.id).sort() : [];
    expect(listed).toEqual([11, 20, 21]);
  });

  test('trigger jobs and external commit statuses are not runner jobs: only Ci::Build ids are listed', async () => {
    const model = new GitLabGraphQLModel();
    model.pipelines.push({
      id: 1,
      projectId: 7,
      status: 'pending',
      source: 'push',
      jobs: [
        { id: 30, type: 'GenericCommitStatus', status: 'pending' }, // e.g. an external CI's "pending" status
        { id: 31, type: 'Ci::Bridge', status: 'pending' }, // a trigger job waiting for its downstream pipeline
        { id: 32, type: 'Ci::Build', status: 'pending', tags: [] },
      ],
    });
    serve(model);
    const out = await new GraphQLApi(client().c).activeJobs([7]);
    expect(out.get(7)).toEqual({ ok: true, value: { complete: true, jobs: [{ id: 32, projectId: 7, status: 'pending', tags: [] }] } });
  });

  test('the instance-wide listing asks for pending jobs only: running ones are confirmed per project, and would make a sweep many pages long', async () => {
    const model = new GitLabGraphQLModel();
    model.pipelines.push({ id: 1, projectId: 7, status: 'running', source: 'push', jobs: [{ id: 10, type: 'Ci::Build', status: 'running' }, { id: 11, type: 'Ci::Build', status: 'pending', tags: ['docker'] }] });
    serve(model);
    expect(await new GraphQLApi(client().c).instanceActiveJobs()).toEqual({ ok: true, value: { items: [{ id: 11, projectId: 7, status: 'pending', tags: ['docker'] }] } });
  });

  test('a GitLab older than 17.0 (no child pipelines in Project.pipelines) is served by REST, which lists every job', async () => {
    const model = new GitLabGraphQLModel();
    model.version = '16.11.10-ee';
    model.pipelines.push({ id: 2, projectId: 7, status: 'pending', source: 'parent_pipeline', jobs: [{ id: 20, type: 'Ci::Build', status: 'pending', tags: ['arm64'] }] });
    serve(model);
    const log = new MemoryLogger();
    const api = new HttpGitLabApi(client().c, { mode: 'auto', log });
    const first = await api.activeJobs([7]);
    expect(first.get(7)).toMatchObject({ ok: false });
    expect(JSON.stringify(log.lines.filter((l) => l.level === 'warn'))).toMatch(/16\.11\.10-ee does not list child pipelines/);
    expect(api.mode).toBe('rest');
    expect((await api.activeJobs([7])).get(7)).toMatchObject({ ok: true, value: { complete: true, jobs: [{ id: 20, tags: ['arm64'] }] } });
    // Pinned to GraphQL (gitlab.api: graphql): it keeps working, but no listing is taken as
    // complete, so a child pipeline's job is never dropped as ended; Project.jobs pages decide.
    const pinned = new HttpGitLabApi(client().c, { mode: 'graphql', log });
    expect((await pinned.activeJobs([7])).get(7)).toEqual({ ok: true, value: { complete: false, jobs: [] } });
    expect(await pinned.activeJobsPage(7)).toMatchObject({ ok: true, value: { items: [{ id: 20, tags: ['arm64'] }] } });
  });
});
