/**
 * The planner with a forecast (issue 13): launches for jobs coming within a boot time, none for
 * pending jobs a busy worker frees up for sooner, targetWait sizing, and workers that were never
 * the idle target leave once nothing needs them; without targetWait, IdleCount/IdleTime keep
 * docker+machine's meaning.
 */
import { plan, poissonQuantile, waitTarget } from '../lib/planner';
import type { PoolForecast, Snapshot, WorkerView, WorkerState } from '../lib/model';
import { makeConfig, poolInput } from './helpers/config';

const T0 = Date.parse('2026-11-02T10:00:00Z'); // a Monday

function worker(id: string, state: WorkerState, extra: Partial<WorkerView> = {}): WorkerView {
  const ready = state === 'booting' ? {} : { readyAt: T0 - 3500_000, ...(state === 'idle' || state === 'busy' ? { reported: state } : {}) };
  return { id, pool: 'docker', state, launchedAt: T0 - 3600_000, builds: 0, idleSince: state === 'idle' ? T0 - 60_000 : undefined, ...ready, ...extra };
}
const fc = (f: Partial<PoolForecast>): PoolForecast => ({ expected: 0, freeing: 0, bootSeconds: 40, horizonSeconds: 55, ...f });
const planFor = (pool: Record<string, unknown>, snap: Partial<Snapshot>) =>
  plan(makeConfig([poolInput(pool)]), new Date(T0), { workers: [], demand: {}, ...snap }).pools[0];

describe('launching for what is coming', () => {
  it('launches for jobs forecast within a boot time, tagged as for demand', () => {
    const p = planFor({ IdleCount: 0 }, { forecast: { docker: fc({ expected: 2.6 }) } });
    expect(p.launch).toBe(3);
    expect(p.launchForDemand).toBe(3);
    expect(p.launchReasons.join(';')).toMatch(/3 for jobs forecast within 55 s/);
  });

  it('launches nothing when nothing is coming (a forecast of 0 is not pending-only planning)', () => {
    expect(planFor({ IdleCount: 0 }, { forecast: { docker: fc({ expected: 0.4 }) } }).launch).toBe(0);
  });

  it('counts idle and booting workers against forecast jobs', () => {
    const p = planFor({ IdleCount: 0 }, { workers: [worker('i1', 'idle'), worker('b1', 'booting', { launchedAt: T0 - 5_000 })], forecast: { docker: fc({ expected: 3 }) } });
    expect(p.launch).toBe(1);
  });

  it('leaves pending jobs to busy workers that are free before a new worker boots', () => {
    const busy = [worker('a', 'busy'), worker('b', 'busy')];
    const soon = planFor({ IdleCount: 0 }, { workers: busy, demand: { docker: { pending: 3, running: 2 } }, forecast: { docker: fc({ freeing: 2 }) } });
    expect(soon.launch).toBe(1);
    expect(soon.launchReasons.join(';')).toMatch(/2 pending left to busy workers free within 40 s/);
    const later = planFor({ IdleCount: 0 }, { workers: busy, demand: { docker: { pending: 3, running: 2 } }, forecast: { docker: fc({ freeing: 0 }) } });
    expect(later.launch).toBe(3);
    // Without a forecast: every pending job gets a worker, as before.
    expect(planFor({ IdleCount: 0 }, { workers: busy, demand: { docker: { pending: 3, running: 2 } } }).launch).toBe(3);
  });

  it('respects limit and MaxGrowthRate for forecast launches', () => {
    const p = planFor({ IdleCount: 0, limit: 2, MaxGrowthRate: 1 }, { forecast: { docker: fc({ expected: 5 }) } });
    expect(p.launch).toBe(1);
    expect(p.cappedBy.length).toBeGreaterThan(0);
  });
});

describe('workers that were never the idle target', () => {
  // One launch of two instances, both for jobs (launched-for 2/2); both idle now, the idle target (IdleCount 1) met by a third.
  const forJobs = (extra: Partial<WorkerView> = {}) => ({ launchedFor: { launch: 'L1', demand: 2, count: 2 }, readyAt: T0 - 600_000, ...extra });
  const target = worker('t', 'idle', { idleSince: T0 - 30_000 });

  it('with IdleCount > 0 they leave once idle and nothing needs them, used or not, long before IdleTime', () => {
    const used = worker('d1', 'idle', forJobs({ builds: 3, idleSince: T0 - 30_000 }));
    const unused = worker('d2', 'idle', forJobs({ idleSince: T0 - 600_000 }));
    const p = planFor({ IdleCount: 1, IdleTime: 1800 }, { workers: [target, used, unused] });
    expect(p.retire.map((r) => [r.id, r.kind])).toEqual([
      ['d1', 'surplus'],
      ['d2', 'surplus'],
    ]);
  });

  it('stay while jobs are pending or forecast, or while the idle target needs them', () => {
    const three = { launchedFor: { launch: 'L3', demand: 3, count: 3 }, builds: 1 };
    const ws = [worker('d1', 'idle', three), worker('d2', 'idle', three), worker('d3', 'idle', three)];
    // One for the forecast job, one for the idle target: one of three goes.
    expect(planFor({ IdleCount: 1, IdleTime: 1800 }, { workers: ws, forecast: { docker: fc({ expected: 1 }) } }).retire.map((r) => r.id)).toEqual(['d1']);
    expect(planFor({ IdleCount: 1, IdleTime: 1800 }, { workers: ws, demand: { docker: { pending: 2, running: 0 } } }).retire).toEqual([]);
    expect(planFor({ IdleCount: 3, IdleTime: 1800 }, { workers: ws }).retire).toEqual([]);
  });

  it('idle-target workers (no launched-for, or the idle part of a launch) keep IdleTime exactly', () => {
    const plain = [worker('a', 'idle', { idleSince: T0 - 100_000 }), worker('b', 'idle', { idleSince: T0 - 100_000 })];
    expect(planFor({ IdleCount: 1, IdleTime: 1800 }, { workers: plain }).retire).toEqual([]);
    const old = [worker('a', 'idle', { idleSince: T0 - 1900_000 }), worker('b', 'idle', { idleSince: T0 - 100_000 })];
    expect(planFor({ IdleCount: 1, IdleTime: 1800 }, { workers: old }).retire.map((r) => [r.id, r.kind])).toEqual([['a', 'idle']]);
    // A launch of 2 with 1 for jobs whose other instance runs that job: the idle one is the idle target's.
    const mixed = [worker('m1', 'busy', { launchedFor: { launch: 'L2', demand: 1, count: 2 } }), worker('m2', 'idle', { launchedFor: { launch: 'L2', demand: 1, count: 2 } })];
    expect(planFor({ IdleCount: 0, IdleTime: 1800 }, { workers: mixed }).retire).toEqual([]);
  });

  it('with IdleCount = 0 (docker+machine creates a machine per job and keeps it IdleTime) only a never-used one is surplus', () => {
    const used = worker('d1', 'idle', forJobs({ builds: 1, idleSince: T0 - 60_000 }));
    const neverUsed = worker('d2', 'idle', forJobs({ readyAt: T0 - 60_000, idleSince: T0 - 60_000 }));
    const p = planFor({ IdleCount: 0, IdleTime: 1800 }, { workers: [used, neverUsed] });
    expect(p.retire.map((r) => [r.id, r.kind])).toEqual([['d2', 'surplus']]);
  });
});

describe('targetWait', () => {
  it('poissonQuantile is the smallest k with P(N <= k) >= q', () => {
    expect(poissonQuantile(0, 0.95)).toBe(0);
    expect(poissonQuantile(1, 0.95)).toBe(3); // P(N<=2) = 0.920, P(N<=3) = 0.981
    expect(poissonQuantile(4, 0.5)).toBe(4);
  });

  it('keeps IdleCount as a floor, idles for unforecast arrivals when a boot is longer than the target, and none when it is not', () => {
    // 0.05 jobs/s and a 40 s boot: 2 arrive per boot time on average.
    expect(waitTarget(20, fc({ arrivalRate: 0.05 }), 0)).toBe(5); // Poisson(2): P(N<=4) = 0.947, P(N<=5) = 0.983
    expect(waitTarget(600, fc({ arrivalRate: 0.05 }), 0)).toBe(2); // only what a boot time uses anyway
    expect(waitTarget(600, fc({ arrivalRate: 0.001 }), 3)).toBe(3); // the floor
  });

  it('sizes the idle target from the forecast and gives back any idle worker nothing needs', () => {
    const idle = [worker('a', 'idle'), worker('b', 'idle'), worker('c', 'idle')];
    const p = planFor({ IdleCount: 1, IdleTime: 1800, targetWait: 600 }, { workers: idle, forecast: { docker: fc({ arrivalRate: 0 }) } });
    expect(p.idleTarget).toBe(1);
    expect(p.retire.map((r) => r.kind)).toEqual(['surplus', 'surplus']);
    const busy = planFor({ IdleCount: 0, targetWait: 10 }, { forecast: { docker: fc({ arrivalRate: 0.1 }) } });
    expect(busy.idleTarget).toBe(8); // Poisson(4): P(N<=7) = 0.949, P(N<=8) = 0.979
    expect(busy.launch).toBe(busy.idleTarget);
  });

  it('is validated with the path of a bad value', () => {
    expect(makeConfig([poolInput({ targetWait: 90 })]).pools[0].targetWait).toBe(90);
    expect(makeConfig([poolInput()]).pools[0].targetWait).toBeUndefined();
    expect(() => makeConfig([poolInput({ targetWait: -5 })])).toThrow(/pools\[0\]\.targetWait|pools\.0\.targetWait/);
    expect(() => makeConfig([poolInput({ targetWait: 100_000 })])).toThrow(/targetWait must be <= 86400/);
  });

  it('without targetWait the forecast never changes the idle target', () => {
    const p = planFor({ IdleCount: 2 }, { forecast: { docker: fc({ arrivalRate: 5, expected: 0 }) } });
    expect(p.idleTarget).toBe(2);
    expect(p.launch).toBe(2);
  });
});
