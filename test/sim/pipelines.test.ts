/**
 * GitLab's pipeline processing in the simulation (lib/sim/pipelines.ts): closed loop, the hooks
 * GitLab sends (created for every job, none for skipped or manual ones), failures, manual and
 * on_failure jobs, cancels, and the pipeline graphs the simulated API lists.
 */
import { CapacityModel, DEFAULT_CLOUD, SimFleet, SimGitLab, World, type CloudOptions } from '../../lib/sim/cloud';
import { DEFAULT_PRICES } from '../../lib/sim/prices';
import { Rng } from '../../lib/sim/rng';
import { parseTrace, formatTrace, type Trace } from '../../lib/sim/trace';
import type { JobEvent } from '../../lib/controller/ports';
import { simulate } from '../../lib/sim/simulate';
import { makeConfig, poolInput } from '../helpers/config';

const quiet: CloudOptions = { ...DEFAULT_CLOUD, bootSeconds: [60, 60], interruptionsPerHour: 0, capacityOutagesPerDay: 0 };

function trace(lines: object[]): Trace {
  return parseTrace([{ start: '2025-03-04T10:00:00Z' }, ...lines].map((l) => JSON.stringify(l)).join('\n'));
}

function world(t: Trace) {
  const config = makeConfig([poolInput({ IdleCount: 0 })]);
  const w = new World({ config, cloud: quiet, prices: DEFAULT_PRICES, rng: new Rng(1), maxRunning: 0, cancels: t.cancels }, t.jobs, t.start);
  const events: JobEvent[] = [];
  w.onJobEvent = (e) => events.push(e);
  const fleet = new SimFleet(w, new CapacityModel(1, quiet, t.start));
  return { w, events, fleet, pool: config.pools[0] };
}

const seq = (events: JobEvent[]) => events.map((e) => `${e.name}:${e.status}`);

describe('simulated pipelines (closed loop)', () => {
  it('creates every job with its pipeline, queues a stage when the previous one ended, and sends GitLab hooks', async () => {
    const t = trace([
      { id: 'a', at: 0, duration: 100, pipeline: 'p', stage: 0, name: 'build' },
      { id: 'b', at: 0, duration: 50, pipeline: 'p', stage: 1, name: 'test 1/2' },
      { id: 'c', at: 0, duration: 50, pipeline: 'p', stage: 1, name: 'test 2/2' },
      { id: 'd', at: 0, duration: 10, pipeline: 'p', stage: 2, name: 'deploy', when: 'manual' },
    ]);
    const { w, events, fleet, pool } = world(t);
    await w.runUntil(t.start + 10_000);
    expect(seq(events)).toEqual(['build:created', 'test 1/2:created', 'test 2/2:created', 'deploy:created', 'build:pending']);
    expect(events[0]).toMatchObject({ pipelineId: 500_000, stage: 'build' });
    expect(events[1]).toMatchObject({ stage: 'test' });
    // Job ids in stage order at creation; the pending hook keeps the id.
    expect(events[4].jobId).toBe(events[0].jobId);
    await fleet.launch({ pool, count: 2, passId: 'x', clientToken: 't', avoid: [] });
    await w.runUntil(t.start + 200_000);
    // build ran 70 s .. 170 s; the test stage is pending only after it (GitLab's lag 1-4 s), not at `at`.
    const testPending = events.find((e) => e.name === 'test 1/2' && e.status === 'pending')!;
    expect(testPending.receivedAt).toBeGreaterThanOrEqual(t.start + 171_000);
    expect(testPending.receivedAt).toBeLessThanOrEqual(t.start + 174_000);
    expect(events.find((e) => e.name === 'build' && e.status === 'success')).toMatchObject({ duration: 100 });
    await w.runUntil(t.start + 400_000);
    // The manual deploy never runs and sends no further hook.
    expect(events.filter((e) => e.name === 'deploy').map((e) => e.status)).toEqual(['created']);
    expect(w.outcomes.map((o) => o.end)).toEqual(['success', 'success', 'success', 'manual']);
    expect(w.allDone()).toBe(true);
    expect(w.stats.jobSeconds).toBe(200);
  });

  it('skips on_success jobs after a failure and runs on_failure ones; needs run a job as soon as what it names ended', async () => {
    const t = trace([
      { id: 'a', at: 0, duration: 30, pipeline: 'p', stage: 0, name: 'build', fails: true },
      { id: 'lint', at: 0, duration: 20, pipeline: 'p', stage: 1, name: 'lint', needs: [] },
      { id: 'b', at: 0, duration: 20, pipeline: 'p', stage: 1, name: 'test' },
      { id: 'c', at: 0, duration: 20, pipeline: 'p', stage: 2, name: 'notify', when: 'on_failure' },
      { id: 'e', at: 0, duration: 20, pipeline: 'q', stage: 1, name: 'late', needs: ['f'] },
      { id: 'f', at: 0, duration: 20, pipeline: 'q', stage: 0, name: 'early' },
    ]);
    const { w, events, fleet, pool } = world(t);
    await w.runUntil(t.start + 5_000);
    // needs: [] is pending at once, with the first stage.
    expect(seq(events).filter((x) => x.endsWith('pending')).sort()).toEqual(['build:pending', 'early:pending', 'lint:pending']);
    await fleet.launch({ pool, count: 3, passId: 'x', clientToken: 't', avoid: [] });
    await w.runUntil(t.start + 600_000);
    expect(w.outcomes.map((o) => o.end)).toEqual(['failed', 'success', 'skipped', 'success', 'success', 'success']);
    expect(events.filter((e) => e.name === 'test').map((e) => e.status)).toEqual(['created']); // skipped: no hook
    expect(events.find((e) => e.name === 'build' && e.status === 'failed')).toBeDefined();
    expect(w.allDone()).toBe(true);
  });

  it('cancels a pipeline: pending and created jobs end, a running one is stopped on its worker', async () => {
    const t = trace([
      { id: 'a', at: 0, duration: 1000, pipeline: 'p', stage: 0, name: 'long' },
      { id: 'b', at: 0, duration: 1000, pipeline: 'p', stage: 0, name: 'queued' },
      { id: 'c', at: 0, duration: 20, pipeline: 'p', stage: 1, name: 'later' },
      { cancel: 'p', at: 300 },
    ]);
    const { w, events, fleet, pool } = world(t);
    await w.runUntil(t.start + 5_000);
    await fleet.launch({ pool, count: 1, passId: 'x', clientToken: 't', avoid: [] });
    await w.runUntil(t.start + 310_000);
    expect(w.outcomes.map((o) => o.end)).toEqual(['canceled', 'canceled', 'canceled']);
    expect(events.filter((e) => e.status === 'canceled').map((e) => e.name).sort()).toEqual(['later', 'long', 'queued']);
    // The one the worker ran (launched at 5 s, ready at 65 s) ran until the cancel at 300 s.
    const durations = events.filter((e) => e.status === 'canceled' && e.duration !== undefined).map((e) => e.duration);
    expect(durations).toEqual([235]);
    const worker = [...w.workers.values()][0];
    expect(worker.state).toBe('idle');
    expect(w.allDone()).toBe(true);
  });

  it('lists the active pipelines of a project with their graphs, as the GraphQL query reads them', async () => {
    const t = trace([
      { id: 'a', at: 0, duration: 100, pipeline: 'p', stage: 0, name: 'build', tags: ['docker'] },
      { id: 'b', at: 0, duration: 50, pipeline: 'p', stage: 1, name: 'test', needs: ['a'] },
      { id: 'd', at: 0, duration: 10, pipeline: 'p', stage: 2, name: 'deploy', when: 'manual' },
    ]);
    const { w } = world(t);
    await w.runUntil(t.start + 10_000);
    const listing = (await new SimGitLab(w).activePipelines([1])).get(1);
    expect(listing).toEqual({
      ok: true,
      value: {
        complete: true,
        pipelines: [
          {
            id: 500_000,
            projectId: 1,
            status: 'pending',
            stages: ['build', 'test', 'deploy'],
            complete: true,
            jobs: [
              { id: 1000, name: 'build', stage: 'build', status: 'pending', tags: ['docker'], manual: false },
              { id: 1001, name: 'test', stage: 'test', status: 'created', tags: [], manual: false, needs: ['build'] },
              { id: 1002, name: 'deploy', stage: 'deploy', status: 'created', tags: [], manual: true },
            ],
          },
        ],
      },
    });
  });

  it('delays later stages for a slow fleet in both policies alike, and round-trips the trace format', async () => {
    const lines: object[] = [];
    for (let p = 0; p < 6; p++) {
      lines.push({ id: `${p}-b`, at: p * 600, duration: 120, pipeline: `p${p}`, stage: 0, name: 'build' });
      for (let k = 0; k < 3; k++) lines.push({ id: `${p}-t${k}`, at: p * 600, duration: 200, pipeline: `p${p}`, stage: 1, name: `test ${k + 1}/3` });
    }
    const t = trace(lines);
    expect(parseTrace(formatTrace(t))).toEqual(t);
    const config = makeConfig([poolInput({ IdleCount: 0, IdleTime: 300 })]);
    const { report } = await simulate({ config, trace: t, seed: 3, cloud: { interruptionsPerHour: 0, capacityOutagesPerDay: 0 }, autoscaler: { webhookLossRate: 0 } });
    expect(report.jobsUnserved).toBe(0);
    expect(report.baseline.jobsUnserved).toBe(0);
    // Every test job waited for its build (60-120 s boot + 120 s): none could start before 180 s.
    expect(report.utilization).toBeGreaterThan(0);
    expect(report.baseline.utilization).toBeGreaterThan(0);
    expect(report.baseline.jobHours).toBeCloseTo((6 * (120 + 600)) / 3600, 1);
  });

  it('with the forecast the controller launches for the next stage before it is pending: later stages wait less than without it', async () => {
    // The same project's pipeline every 15 minutes: build 120 s, then 4 test shards of 200 s. The
    // first runs teach the durations; later runs' tests find workers booted while build ran.
    const lines: object[] = [];
    for (let p = 0; p < 16; p++) {
      lines.push({ id: `${p}-b`, at: p * 900, duration: 120, pipeline: `p${p}`, stage: 0, name: 'build', project: 5 });
      for (let k = 0; k < 4; k++) lines.push({ id: `${p}-t${k}`, at: p * 900, duration: 200, pipeline: `p${p}`, stage: 1, name: `test ${k + 1}/4`, project: 5 });
    }
    const t = trace(lines);
    const config = makeConfig([poolInput({ IdleCount: 0, IdleTime: 120 })]);
    const opts = { config, trace: t, seed: 5, cloud: { interruptionsPerHour: 0, capacityOutagesPerDay: 0 }, autoscaler: { webhookLossRate: 0 } };
    const withForecast = (await simulate(opts)).report;
    const without = (await simulate({ ...opts, forecast: false })).report;
    expect(withForecast.jobsUnserved).toBe(0);
    // Without it every test shard waits a boot after build ends; with it most find a ready worker.
    expect(without.waitP50).toBeGreaterThan(20);
    expect(withForecast.waitP50).toBeLessThan(without.waitP50 / 2);
    expect(withForecast.workerHours).toBeLessThan(without.workerHours * 1.25);
  });
});

describe('pipeline trace lines', () => {
  it('refuses what GitLab would refuse, naming the line', () => {
    const bad = [
      { id: 'a', at: 0, duration: 1, pipeline: 'p', stage: 0, needs: ['z'] },
      { id: 'b', at: 5, duration: 1, pipeline: 'p', stage: 1 },
      { id: 'c', at: 0, duration: 1, pipeline: 'p' },
      { id: 'd', at: 0, duration: 1, pipeline: 'q', stage: 0, needs: ['e'], name: 'x' },
      { id: 'e', at: 0, duration: 1, pipeline: 'q', stage: 0, needs: ['d'], name: 'x' },
      { id: 'f', at: 0, duration: 1, stage: 0 },
      { id: 'g', at: 0, duration: 1, pipeline: 'r', when: 'later' },
      { cancel: 'nope', at: 1 },
    ];
    let msg = '';
    try {
      trace(bad);
    } catch (e) {
      msg = (e as Error).message;
    }
    expect(msg).toMatch(/line 2: "needs" names "z", which is not a job of pipeline "p"/);
    expect(msg).toMatch(/line 3: "at" of a pipeline job is the pipeline's creation/);
    expect(msg).toMatch(/line 4: pipeline "p" has jobs with "stage" or "needs" \(line 2\); every job of it needs a "stage"/);
    expect(msg).toMatch(/line 6: job name "x" is used twice/);
    expect(msg).toMatch(/"needs" form a cycle in pipeline "q"/);
    expect(msg).toMatch(/line 7: "stage", "needs" and "when" need a "pipeline"/);
    expect(msg).toMatch(/line 8: "when" must be "manual" or "on_failure"/);
    expect(msg).toMatch(/line 9: "cancel" names pipeline "nope"/);
  });
});
