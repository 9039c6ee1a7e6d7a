/**
 * Pipeline graphs for the forecast: the GraphQL query's answer read into graphs (stages in order,
 * needs, manual, tags), and the learner that spends only what routing leaves of the budget.
 */
import { GitLabClient } from '../../lib/gitlab/client';
import { RequestBudget } from '../../lib/gitlab/budget';
import { GraphQLPipelineApi, PIPELINE_GRAPHS_QUERY } from '../../lib/gitlab/pipeline-graphql';
import { PipelineLearner, RETRY_AFTER_MS } from '../../lib/gitlab/pipelines';
import type { Outcome } from '../../lib/gitlab/api';
import type { PipelineApi, PipelineListing } from '../../lib/gitlab/pipeline-api';
import type { Logger } from '../../lib/controller/ports';

const quiet: Logger = { info() {}, warn() {}, error() {} };

function clientAnswering(answer: (body: { query: string; variables: Record<string, unknown> }) => unknown, status = 200) {
  const bodies: { query: string; variables: Record<string, unknown> }[] = [];
  const fetch = (async (_url: string, init: RequestInit) => {
    const body = JSON.parse(String(init.body));
    bodies.push(body);
    return new Response(JSON.stringify(answer(body)), { status, headers: { 'content-type': 'application/json' } });
  }) as unknown as typeof globalThis.fetch;
  return { client: new GitLabClient({ url: 'https://gitlab.example.com', token: 'glpat-x', fetch, maxAttempts: 1 }), bodies };
}

const job = (id: number, name: string, stage: string, extra: Record<string, unknown> = {}) => ({
  id: `gid://gitlab/Ci::Build/${id}`,
  name,
  status: 'CREATED',
  tags: ['docker'],
  manualJob: false,
  allowFailure: false,
  schedulingType: 'stage',
  stage: { name: stage },
  needs: { nodes: [] },
  ...extra,
});

describe('GraphQLPipelineApi', () => {
  it('reads each project\'s active pipelines with their whole job graph in one request', async () => {
    const { client, bodies } = clientAnswering(() => ({
      data: {
        projects: {
          nodes: [
            {
              id: 'gid://gitlab/Project/42',
              running: {
                pageInfo: { hasNextPage: false },
                nodes: [
                  {
                    id: 'gid://gitlab/Ci::Pipeline/500',
                    status: 'RUNNING',
                    stages: { nodes: [{ name: 'build' }, { name: 'test' }, { name: 'deploy' }] },
                    jobs: {
                      pageInfo: { hasNextPage: false },
                      nodes: [
                        job(1, 'build', 'build', { status: 'RUNNING' }),
                        job(2, 'unit', 'test', { schedulingType: 'dag', needs: { nodes: [{ name: 'build' }] }, tags: ['heavy'] }),
                        job(3, 'deploy', 'deploy', { status: 'MANUAL', manualJob: true }),
                      ],
                    },
                  },
                ],
              },
              pending: { pageInfo: { hasNextPage: true }, nodes: [] },
            },
          ],
        },
      },
    }));
    const api = new GraphQLPipelineApi(client);
    const out = await api.activePipelines([42, 43]);
    expect(bodies).toHaveLength(1);
    expect(bodies[0].query).toBe(PIPELINE_GRAPHS_QUERY);
    expect(bodies[0].variables).toEqual({ ids: ['gid://gitlab/Project/42', 'gid://gitlab/Project/43'], n: 2 });
    const p42 = out.get(42) as Extract<Outcome<PipelineListing>, { ok: true }>;
    expect(p42.ok).toBe(true);
    expect(p42.value!.complete).toBe(false); // the pending scope had another page
    const g = p42.value!.pipelines[0];
    expect(g).toMatchObject({ id: 500, projectId: 42, status: 'running', stages: ['build', 'test', 'deploy'], complete: true });
    expect(g.jobs).toEqual([
      { id: 1, name: 'build', stage: 'build', status: 'running', tags: ['docker'], manual: false, allowFailure: false },
      { id: 2, name: 'unit', stage: 'test', status: 'created', tags: ['heavy'], manual: false, allowFailure: false, needs: ['build'] },
      { id: 3, name: 'deploy', stage: 'deploy', status: 'manual', tags: ['docker'], manual: true, allowFailure: false },
    ]);
    // Not in the answer: not visible to the token.
    expect(out.get(43)).toEqual({ ok: true, value: null });
  });

  it('says GitLab cannot run the query (an older schema), and halves the batch when it is too complex', async () => {
    const old = new GraphQLPipelineApi(clientAnswering(() => ({ errors: [{ message: "Field 'manualJob' doesn't exist on type 'CiJob'" }] })).client);
    await expect(old.activePipelines([1])).rejects.toThrow(/cannot run the pipeline query/);
    const big = new GraphQLPipelineApi(clientAnswering(() => ({ errors: [{ message: 'Query has complexity of 400, which exceeds max complexity of 250' }] })).client);
    const out = await big.activePipelines([1, 2]);
    expect(out.get(1)).toMatchObject({ ok: false });
    expect(big.pipelineProjectsPerRequest).toBe(5);
  });
});

class CountingApi implements PipelineApi {
  requests = 0;
  pipelineProjectsPerRequest = 2;
  fail = new Set<number>();
  calls: number[][] = [];
  async activePipelines(ids: readonly number[]) {
    this.requests++;
    this.calls.push([...ids]);
    return new Map(ids.map((id): [number, Outcome<PipelineListing>] => [id, this.fail.has(id) ? { ok: false, error: 'HTTP 500' } : { ok: true, value: { pipelines: [], complete: true } }]));
  }
}

describe('PipelineLearner', () => {
  const T0 = 1_800_000_000_000;

  it('spends only the tokens above a reserve of half the bucket, and charges what it spent', async () => {
    const api = new CountingApi();
    const budget = new RequestBudget({ perMinute: 40, start: 'full' }); // capacity 10, reserve 5
    const learner = new PipelineLearner(api, budget);
    const r = await learner.learn({ projects: Array.from({ length: 20 }, (_, i) => i + 1), now: T0, log: quiet });
    expect(api.requests).toBe(5); // 5 spare tokens, 2 projects a request
    expect(r.listed).toHaveLength(10);
    expect(r.deferred).toBe(10);
    expect(budget.available(T0)).toBe(5);
    // The reserve is never touched.
    const again = await learner.learn({ projects: [30, 31], now: T0, log: quiet });
    expect(again.requests).toBe(0);
    expect(again.deferred).toBe(2);
  });

  it('asks a failing project again only after a minute', async () => {
    const api = new CountingApi();
    api.fail.add(7);
    const learner = new PipelineLearner(api, new RequestBudget({ perMinute: 400, start: 'full' }));
    expect((await learner.learn({ projects: [7], now: T0, log: quiet })).failed).toBe(1);
    expect((await learner.learn({ projects: [7], now: T0 + 1000, log: quiet })).requests).toBe(0);
    expect((await learner.learn({ projects: [7], now: T0 + RETRY_AFTER_MS, log: quiet })).requests).toBe(1);
  });

  it('turns itself off for good when GitLab cannot run the query', async () => {
    const api = new GraphQLPipelineApi(clientAnswering(() => ({}), 404).client);
    const warnings: string[] = [];
    const learner = new PipelineLearner(api, new RequestBudget({ perMinute: 400, start: 'full' }));
    const r = await learner.learn({ projects: [1], now: T0, log: { ...quiet, warn: (m) => warnings.push(m) } });
    expect(r.off).toMatch(/GraphQL/);
    expect(warnings.join()).toMatch(/forecasting from job hooks alone/);
    expect((await learner.learn({ projects: [1], now: T0 + RETRY_AFTER_MS, log: quiet })).requests).toBe(0);
  });
});
