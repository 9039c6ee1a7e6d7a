/**
 * The simulation's boot model (lib/sim/boot.ts): each pool's workers boot for the steps of their
 * worker image, a base image's first job pulls what a pre-built one holds, docker+machine boots
 * from the base AMI, and the report gives boot p50/p95 per pool for both policies.
 */
import { bootSteps, firstPullStep, sampleBoot, sampleFirstPull, triangular } from '../../lib/sim/boot';
import { CapacityModel, DEFAULT_CLOUD, SimFleet, World, type CloudOptions } from '../../lib/sim/cloud';
import { DEFAULT_PRICES } from '../../lib/sim/prices';
import { formatReport } from '../../lib/sim/report';
import { Rng } from '../../lib/sim/rng';
import { percentile, simulate } from '../../lib/sim/simulate';
import type { TraceJob } from '../../lib/sim/trace';
import { makeConfig, poolInput } from '../helpers/config';

const T0 = Date.parse('2025-03-04T10:00:00Z');
const poolWith = (image: 'prebuilt' | 'base') => {
  const p = poolInput();
  return { ...p, worker: { ...(p.worker as object), image } };
};
const quiet: CloudOptions = { ...DEFAULT_CLOUD, interruptionsPerHour: 0, capacityOutagesPerDay: 0 };

describe('the boot model', () => {
  test('triangular: min at 0, max at 1, the mode splits it at (mode - min) / (max - min)', () => {
    const s = { min: 2, mode: 5, max: 14 };
    expect(triangular(s, 0)).toBe(2);
    expect(triangular(s, 1 - 1e-12)).toBeCloseTo(14, 3);
    expect(triangular(s, 0.25)).toBeCloseTo(5, 10);
    expect(triangular({ min: 3, mode: 3, max: 3 }, 0.7)).toBe(3);
  });

  test('every step has a source; the pre-built image skips the installs and its first job pulls nothing', () => {
    for (const image of ['base', 'prebuilt'] as const) for (const s of bootSteps(image)) expect(s.source.length).toBeGreaterThan(20), expect(s.min <= s.mode && s.mode <= s.max).toBe(true);
    expect(bootSteps('base').map((s) => s.name)).toEqual(expect.arrayContaining(['dnf install docker', 'gitlab-runner download + sha256']));
    expect(bootSteps('prebuilt').map((s) => s.name).join()).not.toMatch(/install|download/);
    expect(firstPullStep('prebuilt')).toBeUndefined();
    const rng = new Rng(7);
    const draw = (image: 'base' | 'prebuilt') => Array.from({ length: 4000 }, () => sampleBoot(image, rng)).sort((a, b) => a - b);
    const base = draw('base');
    const pre = draw('prebuilt');
    // p50 and p95 as docs/simulation.md states them (seed-independent to a second).
    expect(percentile(base, 0.5)).toBeGreaterThan(65);
    expect(percentile(base, 0.5)).toBeLessThan(75);
    expect(percentile(pre, 0.5)).toBeGreaterThan(36);
    expect(percentile(pre, 0.5)).toBeLessThan(43);
    expect(percentile(pre, 0.95)).toBeLessThan(percentile(base, 0.5));
    expect(sampleFirstPull('prebuilt', rng)).toBe(0);
    expect(sampleFirstPull('base', rng)).toBeGreaterThanOrEqual(3);
  });
});

describe('simulated workers boot from their image', () => {
  const trace: TraceJob[] = [{ id: '1', at: T0, duration: 100, tags: [], project: 1 }];
  async function firstJob(image: 'prebuilt' | 'base', baseImageOnly = false) {
    const config = makeConfig([poolWith(image)]);
    const w = new World({ config, cloud: quiet, prices: DEFAULT_PRICES, rng: new Rng(3), maxRunning: 0, baseImageOnly }, trace, T0);
    await new SimFleet(w, new CapacityModel(1, quiet, T0)).launch({ pool: config.pools[0], count: 1, passId: 'p', clientToken: 't', avoid: [] });
    const worker = [...w.workers.values()][0];
    const pull = worker.firstPull;
    await w.runUntil(T0 + 3_600_000, () => w.finishedCount === 1);
    return { worker, pull, ready: w.stats.boots[0], finishedAfterStart: (w.now - worker.readyAt) / 1000 };
  }

  test('a pre-built worker runs its first job for its duration; a base one pulls first; docker+machine always boots the base', async () => {
    const pre = await firstJob('prebuilt');
    expect(pre.worker.image).toBe('prebuilt');
    expect(pre.pull).toBe(0);
    expect(pre.finishedAfterStart).toBeCloseTo(100, 3);
    expect(pre.ready).toMatchObject({ pool: 'docker', image: 'prebuilt' });
    const base = await firstJob('base');
    expect(base.pull).toBeGreaterThan(0);
    expect(base.finishedAfterStart).toBeCloseTo(100 + base.pull, 3);
    expect(base.ready.seconds).toBeGreaterThan(pre.ready.seconds);
    const machine = await firstJob('prebuilt', true);
    expect(machine.worker.image).toBe('base');
  });

  test('--boot-seconds keeps the old uniform model for every image (no pull)', async () => {
    const config = makeConfig([poolWith('base')]);
    const w = new World({ config, cloud: { ...quiet, bootSeconds: [60, 60] }, prices: DEFAULT_PRICES, rng: new Rng(3), maxRunning: 0 }, trace, T0);
    await new SimFleet(w, new CapacityModel(1, quiet, T0)).launch({ pool: config.pools[0], count: 1, passId: 'p', clientToken: 't', avoid: [] });
    const worker = [...w.workers.values()][0];
    expect(worker.readyAt - worker.launchedAt).toBe(60_000);
    expect(worker.firstPull).toBe(0);
  });

  test('the report gives boot p50/p95 per pool for both policies', async () => {
    const jobs: TraceJob[] = Array.from({ length: 40 }, (_, i) => ({ id: String(i), at: T0 + i * 90_000, duration: 240, tags: [], project: 1 }));
    const config = makeConfig([poolWith('prebuilt')]);
    const { report } = await simulate({ config, trace: { start: T0, jobs }, seed: 5, cloud: { interruptionsPerHour: 0, capacityOutagesPerDay: 0 } });
    const a = report.autoscaler.boot.docker;
    const b = report.baseline.boot.docker;
    expect(a.image).toBe('prebuilt');
    expect(b.image).toBe('base');
    expect(a.n).toBeGreaterThan(0);
    expect(a.p50).toBeLessThan(b.p50);
    expect(a.p95).toBeGreaterThanOrEqual(a.p50);
    expect(formatReport(report)).toContain(`Boot to ready, pool docker: spot autoscaler p50 ${a.p50} s, p95 ${a.p95} s (prebuilt); docker+machine p50 ${b.p50} s, p95 ${b.p95} s (base).`);
  });
});
