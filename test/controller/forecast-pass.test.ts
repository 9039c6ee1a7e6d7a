/**
 * The forecast inside the reconcile pass (issue 13): created hooks and pipeline graphs become
 * launches tagged as for demand, before the jobs are pending; nothing is launched for work that is
 * not coming; what is learnt is stored in one parameter, within the write budget.
 */
import { reconcilePass, type ReconcileDeps } from '../../lib/controller/reconcile';
import { MemoryStateStore, PARAMS } from '../../lib/controller/state';
import type { GitLabPass, GitLabPassReport, GitLabSide, JobEvent } from '../../lib/controller/ports';
import { ForecastMemory, LEARN_AFTER_MS, LEARNED_WRITE_EVERY_MS } from '../../lib/forecast';
import type { PipelineLearnPass, PipelineLearnReport } from '../../lib/gitlab/pipelines';
import type { PipelineGraph } from '../../lib/gitlab/pipeline-api';
import { FakeFleet, ManualClock, MemoryLogger, testConfig } from './fixtures';

const POOL = (name: string, tags: string[], extra: Record<string, unknown> = {}) => ({
  name,
  tags,
  runUntagged: name === 'docker',
  IdleCount: 0,
  IdleTime: 600,
  limit: 20,
  worker: { instanceTypes: ['m6i.large'], subnets: ['subnet-0a'], ami: 'ami-0123456789abcdef0' },
  ...extra,
});

/** A GitLab side that routes nothing itself and answers pipeline-graph listings from `graphs`. */
class FakeGitLab implements GitLabSide {
  graphs: PipelineGraph[] = [];
  asked: number[][] = [];
  async syncJobs(_pass: GitLabPass): Promise<GitLabPassReport> {
    return { mode: 'fake', requests: 0, byKind: { route: 0, confirm: 0, discover: 0 }, wanted: { route: 0, confirm: 0, discover: 0 }, routed: 0, confirmed: 0, removed: 0, discovered: 0, refused: 0, projectsListed: 0, isolated: 0, outOfTime: false } as GitLabPassReport;
  }
  async learnPipelines(pass: PipelineLearnPass): Promise<PipelineLearnReport> {
    this.asked.push([...pass.projects]);
    return { requests: 1, listed: [...pass.projects], graphs: this.graphs.filter((g) => pass.projects.includes(g.projectId)), failed: 0, deferred: 0 };
  }
}

function setup(pools = [POOL('docker', ['docker'])], gitlab?: GitLabSide) {
  const config = testConfig({}, pools);
  const clock = new ManualClock();
  const fleet = new FakeFleet(clock);
  const log = new MemoryLogger();
  const store = new MemoryStateStore(log);
  const forecast = new ForecastMemory();
  const deps: ReconcileDeps = { config, stage: 'test', fleet, store, clock, log, forecast, ...(gitlab ? { gitlab } : {}) };
  let n = 0;
  const pass = (events: JobEvent[] = [], trigger: 'queue' | 'schedule' = 'queue') => reconcilePass(deps, { events, trigger, passId: `p${++n}` });
  return { clock, fleet, store, deps, pass, forecast, log };
}

const ev = (jobId: number, status: string, at: number, extra: Partial<JobEvent> = {}): JobEvent => ({ jobId, projectId: 42, pipelineId: 500, status, receivedAt: at, ...extra });
/** A two-stage pipeline announced by its created hooks: build, then 3 test shards. */
const createdHooks = (at: number, pipelineId = 500, base = 1): JobEvent[] => [
  ev(base, 'created', at, { name: 'build', stage: 'build', pipelineId }),
  ...[1, 2, 3].map((i) => ev(base + i, 'created', at, { name: `test ${i}/3`, stage: 'test', pipelineId })),
];

describe('the reconcile pass with a forecast', () => {
  it('launches for the first stage on its created hooks, before any job is pending, tagged as for demand', async () => {
    const { pass, fleet, clock } = setup();
    const r = await pass(createdHooks(clock.now()));
    expect(r.forecast?.pools.docker.expected).toBeCloseTo(0.95, 5);
    expect(fleet.launches).toHaveLength(1);
    expect(fleet.launches[0]).toMatchObject({ count: 1, forDemand: 1 });
    expect(r.decisions.join('\n')).toMatch(/1 for jobs forecast within \d+ s/);
  });

  it('launches for the next stage when the stage before it is about to end (learnt durations), not earlier', async () => {
    const { pass, fleet, clock } = setup();
    // An earlier pipeline teaches the durations: build 200 s, tests 120 s.
    const t = clock.now();
    await pass([ev(90, 'success', t, { name: 'build', stage: 'build', duration: 200, pipelineId: 400 }), ev(91, 'success', t, { name: 'test 1/3', stage: 'test', duration: 120, pipelineId: 400 })]);
    const before = fleet.launches.length;
    await pass([...createdHooks(clock.now()), ev(1, 'running', clock.now(), { name: 'build', stage: 'build' })]);
    expect(fleet.launches.length).toBe(before); // build runs (on a worker we do not model here); tests are 200 s away
    clock.advance(60);
    expect((await pass()).launched).toEqual({});
    clock.advance(60); // 80 s left of build: within the default boot time (90 s) and its margin
    const r = await pass();
    expect(r.forecast?.pools.docker.expected).toBeCloseTo(2.85, 5);
    expect(r.launched).toEqual({ docker: 3 });
    expect(fleet.launches.at(-1)).toMatchObject({ count: 3, forDemand: 3 });
  });

  it('launches nothing for a canceled pipeline, nor for manual jobs or jobs the graph routes elsewhere', async () => {
    const gitlab = new FakeGitLab();
    const { pass, fleet, clock } = setup([POOL('docker', ['docker']), POOL('heavy', ['heavy'])], gitlab);
    const t = clock.now();
    // Pipeline 500 is canceled right after it was created.
    await pass([...createdHooks(t), ev(4, 'canceled', t + 1000, { name: 'test 3/3', stage: 'test' })]);
    expect(fleet.launches).toHaveLength(0);
    // Pipeline 600: the graph says its only job is manual, and pipeline 700's job is tagged heavy.
    gitlab.graphs = [
      { id: 600, projectId: 42, status: 'running', stages: ['deploy'], complete: true, jobs: [{ id: 10, name: 'deploy', stage: 'deploy', status: 'manual', tags: ['docker'], manual: true }] },
      { id: 700, projectId: 42, status: 'created', stages: ['image'], complete: true, jobs: [{ id: 20, name: 'image', stage: 'image', status: 'created', tags: ['heavy'], manual: false }] },
    ];
    await pass([ev(10, 'created', clock.now(), { name: 'deploy', stage: 'deploy', pipelineId: 600 }), ev(20, 'created', clock.now(), { name: 'image', stage: 'image', pipelineId: 700 })]);
    // Before the graph (asked for once the pipeline is LEARN_AFTER_MS old) hooks alone cannot tell: with two pools nothing is routed.
    expect(fleet.launches).toHaveLength(0);
    clock.advance(LEARN_AFTER_MS / 1000);
    const r = await pass();
    expect(gitlab.asked).toEqual([[42]]);
    expect(r.forecast?.pools.docker.expected).toBe(0);
    expect(fleet.launches.map((l) => [l.pool.name, l.count, l.forDemand])).toEqual([['heavy', 1, 1]]);
  });

  it('stores what it learnt in one parameter, at most every 10 minutes, and a cold start reads it back', async () => {
    const { pass, store, clock, deps } = setup();
    const t = clock.now();
    const r1 = await pass([ev(90, 'success', t, { name: 'build', stage: 'build', duration: 200, pipelineId: 400 })]);
    const stored = (await store.load()).learned;
    expect(stored).toBeDefined();
    expect(stored!.length).toBeLessThanOrEqual(4000);
    expect(r1.stateWrites).toBeGreaterThanOrEqual(1);
    // More learning within 10 minutes: the stored table stays as it was (an unchanged parameter is not written).
    for (let i = 0; i < 5; i++) {
      clock.advance(60);
      await pass([ev(100 + i, 'success', clock.now(), { name: 'build', stage: 'build', duration: 100, pipelineId: 401 + i })]);
      expect((await store.load()).learned).toBe(stored);
    }
    clock.advance(LEARNED_WRITE_EVERY_MS / 1000);
    await pass([ev(200, 'success', clock.now(), { name: 'lint', stage: 'build', duration: 30, pipelineId: 410 })]);
    const later = (await store.load()).learned;
    expect(later).not.toBe(stored);
    // A new container: the durations come back from the parameter.
    const cold = new ForecastMemory();
    const deps2: ReconcileDeps = { ...deps, forecast: cold };
    await reconcilePass(deps2, { events: [], trigger: 'schedule', passId: 'cold' });
    expect(cold.durations.known(42, 'build')).toBe(true);
    expect(cold.durations.estimate(42, 'lint')).toBeGreaterThan(25);
    expect(PARAMS.learned).toBe('learned');
  });

  it('without a forecast memory the pass plans from pending jobs alone (as before)', async () => {
    const { deps, fleet, clock } = setup();
    const r = await reconcilePass({ ...deps, forecast: undefined }, { events: createdHooks(clock.now()), trigger: 'queue', passId: 'x' });
    expect(r.forecast).toBeUndefined();
    expect(fleet.launches).toHaveLength(0);
  });
});
