import { CapacityModel, DEFAULT_CLOUD, SimFleet, SimGitLab, World, workerWaitTimeout, type CloudOptions } from '../../lib/sim/cloud';
import { DockerMachineBaseline } from '../../lib/sim/baseline';
import { DEFAULT_PRICES } from '../../lib/sim/prices';
import { Rng } from '../../lib/sim/rng';
import type { TraceJob } from '../../lib/sim/trace';
import type { JobEvent } from '../../lib/controller/ports';
import type { WorkerReport } from '../../lib/controller/reports';
import { makeConfig, poolInput } from '../helpers/config';

const T0 = Date.parse('2025-03-04T10:00:00Z');
const quiet: CloudOptions = { ...DEFAULT_CLOUD, bootSeconds: [60, 60], interruptionsPerHour: 0, capacityOutagesPerDay: 0 };

function job(id: number, atSec: number, duration: number, tags: string[] = []): TraceJob {
  return { id: String(id), at: T0 + atSec * 1000, duration, tags, project: 1 };
}

function world(trace: TraceJob[], poolOverrides: Record<string, unknown> = {}, cloud: CloudOptions = quiet, maxRunning = 0) {
  const config = makeConfig([poolInput(poolOverrides)]);
  return new World({ config, cloud, prices: DEFAULT_PRICES, rng: new Rng(1), maxRunning }, trace, T0);
}

describe('simulated workers', () => {
  it('boot, take the oldest pending job, run it for its duration, and report through webhooks', async () => {
    const w = world([job(1, 0, 100), job(2, 5, 100)]);
    const events: JobEvent[] = [];
    w.onJobEvent = (e) => events.push(e);
    const reports: WorkerReport[] = [];
    w.onReport = (r) => reports.push(r);
    const fleet = new SimFleet(w, new CapacityModel(1, quiet, T0));
    await w.runUntil(T0 + 10_000);
    const r = await fleet.launch({ pool: w.config.pools[0], count: 1, passId: 'p1', clientToken: 't1', avoid: [] });
    expect(r.launched).toHaveLength(1);
    expect(r.launched[0].state).toBe('booting');
    // (The workers' truth; the controller's view is what it recorded from their reports: SimFleet.discover.)
    const truth = () => [...w.workers.values()][0];
    await w.runUntil(T0 + 10_000 + 60_000);
    expect(truth().state).toBe('busy');
    await w.runUntil(T0 + 70_000 + 100_000);
    expect(truth().state).toBe('busy'); // took job 2 right after job 1
    expect(truth().builds).toBe(1);
    // It reported ready (idle), then busy, idle and busy again.
    expect(reports.map((r) => r.state)).toEqual(['idle', 'busy', 'idle', 'busy']);
    expect(w.outcomes[0]).toMatchObject({ wait: 70, finished: true });
    expect(w.outcomes[1]).toMatchObject({ wait: 165, started: true });
    expect(events.map((e) => `${e.jobId}:${e.status}`)).toEqual(['1000:pending', '1001:pending', '1000:running', '1000:success', '1001:running']);
    const listing = (await new SimGitLab(w).activeJobs([1, 2])).get(1);
    expect(listing).toEqual({ ok: true, value: { complete: true, jobs: [{ id: 1001, projectId: 1, status: 'running', tags: [] }] } });
  });

  it("GitLab's API stand-in lists projects' pending and running jobs, 25 projects a request, unroutable and stuck ones included", async () => {
    const trace = [job(1, 0, 100), { ...job(2, 1, 100), project: 2 }, job(3, 2, 100, ['gpu']), job(4, 3, 100), { ...job(5, 4, 100), stuck: true }];
    const w = world(trace);
    const gitlab = new SimGitLab(w);
    const fleet = new SimFleet(w, new CapacityModel(1, quiet, T0));
    await w.runUntil(T0 + 5_000);
    const ids = async (p: number) => ((await gitlab.activeJobs([p])).get(p) as { value: { jobs: { id: number; status: string }[] } }).value.jobs.map((j) => `${j.id}:${j.status}`);
    expect(await ids(1)).toEqual(['1004:pending', '1003:pending', '1002:pending', '1000:pending']);
    expect(await ids(2)).toEqual(['1001:pending']);
    expect(await ids(3)).toEqual([]);
    await fleet.launch({ pool: w.config.pools[0], count: 1, passId: 'p1', clientToken: 't1', avoid: [] });
    await w.runUntil(T0 + 70_000);
    expect(await ids(1)).toEqual(['1000:running', '1004:pending', '1003:pending', '1002:pending']); // running pipelines first
    await w.runUntil(T0 + 200_000);
    expect(await ids(1)).toEqual(['1004:pending', '1003:pending', '1002:pending']); // 1000 is done; the stuck 1004 is never taken
    expect(await ids(2)).toEqual(['1001:running']); // the oldest pending job of the pool went next
    expect(gitlab.requests).toBe(6);
    expect(gitlab.busiestMinute()).toBe(3);
    await expect(gitlab.activeJobs(Array.from({ length: 26 }, (_, k) => k + 1))).rejects.toThrow(/at most 25 projects/);
    gitlab.failProjects.add(2);
    expect((await gitlab.activeJobs([2])).get(2)).toMatchObject({ ok: false });
  });

  it("the stand-in's listing is cut short like GitLab's: 20 active pipelines per scope, 100 jobs per pipeline; pages of 100 list them all", async () => {
    const trace = Array.from({ length: 25 }, (_, k) => ({ ...job(k + 1, k, 100), pipeline: `p${k}` }));
    const big = Array.from({ length: 120 }, (_, k) => ({ ...job(100 + k, 30, 100), project: 2, pipeline: 'big' }));
    const w = world([...trace, ...big]);
    const gitlab = new SimGitLab(w);
    await w.runUntil(T0 + 40_000);
    const one = (await gitlab.activeJobs([1, 2])) as Map<number, { ok: true; value: { complete: boolean; jobs: unknown[] } }>;
    expect(one.get(1)!.value).toMatchObject({ complete: false });
    expect(one.get(1)!.value.jobs).toHaveLength(20);
    expect(one.get(2)!.value).toMatchObject({ complete: false });
    expect(one.get(2)!.value.jobs).toHaveLength(100);
    const p1 = await gitlab.activeJobsPage(2);
    const p2 = await gitlab.activeJobsPage(2, (p1 as { value: { next: string } }).value.next);
    expect(p1).toMatchObject({ ok: true, value: { next: '1' } });
    expect((p2 as { value: { items: unknown[]; next?: string } }).value.items).toHaveLength(20);
    expect((p2 as { value: { next?: string } }).value.next).toBeUndefined();
  });

  it('exit by themselves after MaxBuilds builds and after the wait timeout, and bill at least a minute', async () => {
    const w = world([job(1, 0, 30), job(2, 0, 30)], { MaxBuilds: 1, IdleTime: 300 });
    const fleet = new SimFleet(w, new CapacityModel(1, quiet, T0));
    await fleet.launch({ pool: w.config.pools[0], count: 3, passId: 'p', clientToken: 't', avoid: [] });
    await w.runUntil(T0 + 60_000 + 30_000 + 1_000);
    const states = [...w.workers.values()].map((v) => v.state).sort();
    expect(states).toEqual(['idle', 'leaving', 'leaving']); // two ran their one build
    await w.runUntil(T0 + 60_000 + 300_000 + 31_000);
    expect(await fleet.discover(w.now)).toEqual([]); // the idle one waited IdleTime, then left
    w.close();
    expect(w.stats.instanceSeconds).toBeCloseTo(2 * 120 + 390, 0);
  });

  it('honour a retirement request after the running job, never during it', async () => {
    const w = world([job(1, 0, 600)]);
    const fleet = new SimFleet(w, new CapacityModel(1, quiet, T0));
    const { launched } = await fleet.launch({ pool: w.config.pools[0], count: 1, passId: 'p', clientToken: 't', avoid: [] });
    await w.runUntil(T0 + 120_000);
    await fleet.requestRetirement([{ id: launched[0].id, reason: 'test' }]);
    await w.runUntil(T0 + 600_000);
    expect((await fleet.discover(w.now))[0]).toMatchObject({ state: 'retiring' });
    expect(w.outcomes[0].finished).toBe(false);
    await w.runUntil(T0 + 60_000 + 600_000 + 1);
    expect(w.outcomes[0].finished).toBe(true);
    expect(w.stats.busyTerminations).toBe(0);
  });

  it('are interrupted with a two-minute warning; the running job fails and GitLab retries it as a new job', async () => {
    const w = world([job(1, 0, 3600)]);
    const events: JobEvent[] = [];
    w.onJobEvent = (e) => events.push(e);
    let warned = 0;
    w.onInterruption = () => warned++;
    const fleet = new SimFleet(w, new CapacityModel(1, quiet, T0));
    await fleet.launch({ pool: w.config.pools[0], count: 2, passId: 'p', clientToken: 't', avoid: [] });
    await w.runUntil(T0 + 300_000);
    const busy = [...w.workers.values()].find((x) => x.state === 'busy')!;
    w.interrupt(busy);
    expect(warned).toBe(1);
    expect((await fleet.discover(w.now)).find((v) => v.id === busy.id)).toMatchObject({ problem: 'interrupted', interruptedAt: T0 + 300_000 });
    await w.runUntil(T0 + 300_000 + 119_000);
    expect(busy.state).toBe('busy'); // the warning is not the end: the job may still finish
    await w.runUntil(T0 + 300_000 + 121_000);
    expect(events.map((e) => `${e.jobId}:${e.status}`)).toEqual(['1000:pending', '1000:running', '1000:failed', '1001:pending', '1001:running']);
    expect(w.stats).toMatchObject({ interruptions: 1, jobsHitByInterruptions: 1, busyTerminations: 0 });
    expect(w.outcomes[0]).toMatchObject({ attempts: 2, hitByInterruption: 1, finished: false });
  });
});

describe('simulated workers follow the worker script (lib/worker/script.ts)', () => {
  it('a boot that outlasts launched-at + bootTimeout never becomes ready: no ready report, no job; one just inside it does', async () => {
    const seen = { late: 0, inTime: 0 };
    for (let seed = 1; seed <= 12; seed++) {
      const config = makeConfig([poolInput({ worker: { instanceTypes: ['m6i.large'], subnets: ['subnet-0a'], ami: 'ami-0123456789abcdef0', bootTimeout: 60 } })]);
      const w = new World({ config, cloud: { ...quiet, slowBootRate: 1 }, prices: DEFAULT_PRICES, rng: new Rng(seed), maxRunning: 0 }, [job(1, 0, 100)], T0);
      const reports: WorkerReport[] = [];
      w.onReport = (r) => reports.push(r);
      const { launched } = await new SimFleet(w, new CapacityModel(1, quiet, T0)).launch({ pool: w.config.pools[0], count: 1, passId: 'p', clientToken: 't', avoid: [] });
      const worker = w.workers.get(launched[0].id)!;
      const late = worker.readyAt - worker.launchedAt >= 60_000;
      await w.runUntil(T0 + 300_000);
      expect(w.stats.slowBoots).toBe(1);
      expect({ late, started: w.outcomes[0].started, ready: reports.some((r) => r.state === 'idle') }).toEqual({ late, started: !late, ready: !late });
      seen[late ? 'late' : 'inTime']++;
    }
    expect(seen.late).toBeGreaterThan(0);
    expect(seen.inTime).toBeGreaterThan(0);
  });

  it('a runner may take a job between the retirement request and the moment its worker sees it; it finishes that job', async () => {
    const w = world([job(1, 125, 300)]);
    const fleet = new SimFleet(w, new CapacityModel(1, quiet, T0));
    const { launched } = await fleet.launch({ pool: w.config.pools[0], count: 1, passId: 'p', clientToken: 't', avoid: [] });
    await w.runUntil(T0 + 120_000); // ready and idle at 60 s
    await fleet.requestRetirement([{ id: launched[0].id, reason: 'idle' }]); // it sees the tag 10 s later
    await w.runUntil(T0 + 126_000);
    expect([...w.workers.values()][0].state).toBe('busy'); // took the job at 125 s
    await w.runUntil(T0 + 500_000);
    expect(w.stats).toMatchObject({ retiredWhileBusy: 1, busyTerminations: 0 });
    expect(w.outcomes[0].finished).toBe(true);
    expect(w.workers.size).toBe(0);
  });

  it('maxLifetime counts from launch: the worker drains then, and leaves', async () => {
    const w = world([], { IdleCount: 1, worker: { instanceTypes: ['m6i.large'], subnets: ['subnet-0a'], ami: 'ami-0123456789abcdef0', maxLifetime: 900 } });
    const fleet = new SimFleet(w, new CapacityModel(1, quiet, T0));
    await fleet.launch({ pool: w.config.pools[0], count: 1, passId: 'p', clientToken: 't', avoid: [] });
    await w.runUntil(T0 + 899_000);
    expect(w.workers.size).toBe(1);
    await w.runUntil(T0 + 960_000);
    expect(w.workers.size).toBe(0);
  });

  it('a failed power-off leaves an instance with no runner until it is terminated; terminating it costs no job', async () => {
    const w = world([job(1, 0, 30)], { MaxBuilds: 1 }, { ...quiet, shutdownFailRate: 1 });
    const fleet = new SimFleet(w, new CapacityModel(1, quiet, T0));
    const { launched } = await fleet.launch({ pool: w.config.pools[0], count: 1, passId: 'p', clientToken: 't', avoid: [] });
    await w.runUntil(T0 + 600_000);
    const worker = w.workers.get(launched[0].id)!;
    expect(worker).toMatchObject({ stuck: true, runnerStopped: true });
    expect((await fleet.discover(w.now))[0]).toMatchObject({ instanceState: 'running' });
    await fleet.terminate([{ id: worker.id, reason: 'test', kind: 'runner-stopped' }]);
    await w.runUntil(T0 + 700_000);
    expect(w.workers.size).toBe(0);
    expect(w.stats).toMatchObject({ busyTerminations: 0, terminationsByKind: { 'runner-stopped': 1 } });
  });
});

describe('SimFleet.launch (CreateFleet instant)', () => {
  const cloud: CloudOptions = { ...quiet, capacityOutagesPerDay: 0 };

  it('is idempotent per client token', async () => {
    const w = world([job(1, 0, 10)]);
    const fleet = new SimFleet(w, new CapacityModel(1, cloud, T0));
    const req = { pool: w.config.pools[0], count: 2, passId: 'p', clientToken: 'same', avoid: [] };
    const a = await fleet.launch(req);
    const b = await fleet.launch(req);
    expect(b).toBe(a);
    expect(w.workers.size).toBe(2);
  });

  it('reports capacity errors per instance type and subnet, skips avoided pools, and falls back to on-demand', async () => {
    const outage: CloudOptions = { ...quiet, capacityOutagesPerDay: 1e6, capacityOutageMinutes: 60 }; // always out
    const w = world([job(1, 0, 10)], { worker: { instanceTypes: ['m6i.large', 'm5.large'], subnets: ['subnet-0a', 'subnet-0b'], ami: 'ami-0123456789abcdef0' } }, outage);
    const fleet = new SimFleet(w, new CapacityModel(1, outage, T0));
    await w.runUntil(T0 + 1000);
    const r = await fleet.launch({ pool: w.config.pools[0], count: 2, passId: 'p', clientToken: 't', avoid: [{ instanceType: 'm5.large', subnet: 'subnet-0b' }] });
    expect(r.errors.map((e) => `${e.class} ${e.instanceType} ${e.subnet}`).sort()).toEqual([
      'capacity m5.large subnet-0a',
      'capacity m6i.large subnet-0a',
      'capacity m6i.large subnet-0b',
    ]);
    expect(r.launched.map((v) => v.market)).toEqual(['on-demand', 'on-demand']);
  });

  it('launches nothing past the spot failures when the pool has no on-demand fallback', async () => {
    const outage: CloudOptions = { ...quiet, capacityOutagesPerDay: 1e6, capacityOutageMinutes: 60 };
    const w = world([job(1, 0, 10)], { worker: { instanceTypes: ['m6i.large'], subnets: ['subnet-0a'], ami: 'ami-0123456789abcdef0', onDemandFallback: false } }, outage);
    await w.runUntil(T0 + 1000);
    const r = await new SimFleet(w, new CapacityModel(1, outage, T0)).launch({ pool: w.config.pools[0], count: 1, passId: 'p', clientToken: 't', avoid: [] });
    expect(r.launched).toEqual([]);
    expect(r.errors).toHaveLength(1);
  });
});

describe('docker+machine baseline', () => {
  it('keeps IdleCount idle machines, and with IdleCount > 0 a job waits for an idle machine', async () => {
    const w = world([job(1, 120, 60), job(2, 121, 60), job(3, 122, 60)], { IdleCount: 2, IdleTime: 3600 });
    new DockerMachineBaseline(w, w.config).start();
    await w.runUntil(T0 + 100_000);
    expect([...w.workers.values()].map((x) => x.state)).toEqual(['idle', 'idle']);
    await w.runUntil(T0 + 400_000);
    // jobs 1 and 2 ran at once on the idle machines; job 3 waited for a replacement created once
    // a machine was taken (at 120 s or the next 3 s check) and booting for 60 s.
    expect(w.outcomes[0].wait).toBe(0);
    expect(w.outcomes[1].wait).toBe(0);
    expect(w.outcomes[2].wait).toBeGreaterThanOrEqual(55);
    expect(w.outcomes[2].wait).toBeLessThanOrEqual(65);
    expect(w.stats.byMarket.spot).toBe(0);
  });

  it('with IdleCount 0 creates a machine per job, within limit', async () => {
    const w = world([job(1, 0, 60), job(2, 0, 60), job(3, 0, 60)], { IdleCount: 0, limit: 2 });
    new DockerMachineBaseline(w, w.config).start();
    await w.runUntil(T0 + 10_000);
    expect(w.workers.size).toBe(2);
    await w.runUntil(T0 + 3600_000);
    expect(w.outcomes.every((o) => o.finished)).toBe(true);
    expect(w.stats.limitViolations).toBe(0);
  });
});

describe('run-single wait timeout', () => {
  it('is the worker rule: the longest IdleTime for a pool that keeps no idle worker, 0 when IdleTime is 0', () => {
    const config = makeConfig([poolInput({ IdleTime: 600, autoscaling: [{ Periods: ['* * * * * sat *'], IdleTime: 1800 }] })]);
    expect(workerWaitTimeout(config.pools[0])).toBe(1800);
    expect(workerWaitTimeout(makeConfig([poolInput({ IdleTime: 0 })]).pools[0])).toBe(0);
  });
});
