/**
 * lib/forecast.ts: what is coming, from created/pending/finished hooks and pipeline graphs, with
 * learnt durations; and what is not coming (canceled, failed, manual, on_failure).
 */
import {
  BootTimes,
  decodeLearned,
  DEFAULT_BOOT_SECONDS,
  Durations,
  encodeLearned,
  expectedEnd,
  ForecastMemory,
  forecastPools,
  HORIZON_MARGIN_SECONDS,
  LEARNED_WRITE_EVERY_MS,
  NOT_QUEUED_AFTER_MS,
  PipelineBook,
  type JobNews,
} from '../lib/forecast';
import type { PipelineGraph } from '../lib/gitlab/pipeline-api';
import { makeConfig, poolInput } from './helpers/config';

const T0 = Date.parse('2026-11-02T10:00:00Z');
const config = makeConfig([poolInput({ name: 'general', tags: ['docker'] }), poolInput({ name: 'heavy', tags: ['heavy'], runUntagged: false })]);
const single = makeConfig([poolInput({ name: 'general' })]);
const PROJECT = 7;

/** Durations learnt from earlier runs: build 100 s, test 200 s, deploy 60 s. */
function learnt(): Durations {
  const d = new Durations();
  for (let i = 0; i < 3; i++) {
    d.observe(PROJECT, 'build', 'general', 100, T0 - 86_400_000);
    d.observe(PROJECT, 'test 1/2', 'general', 200, T0 - 86_400_000);
    d.observe(PROJECT, 'deploy', 'general', 60, T0 - 86_400_000);
  }
  return d;
}

/** Boot times seen for a pool (three samples make an estimate). */
function boots(pool: string, seconds: number): BootTimes {
  const b = new BootTimes();
  for (let i = 0; i < 3; i++) b.observe(pool, seconds);
  return b;
}

const hook = (jobId: number, name: string, stage: string, status: string, at: number, extra: Partial<JobNews> = {}): JobNews => ({ jobId, projectId: PROJECT, pipelineId: 100, name, stage, status, at, ...extra });

/** A three-stage pipeline as GitLab announces it: a created hook for every job at pipeline creation. */
function created(book: PipelineBook, d: Durations, at = T0): void {
  const poolOf = () => undefined;
  book.observe(hook(1, 'build', 'build', 'created', at), d, poolOf);
  book.observe(hook(2, 'test 1/2', 'test', 'created', at), d, poolOf);
  book.observe(hook(3, 'test 2/2', 'test', 'created', at), d, poolOf);
  book.observe(hook(4, 'deploy', 'deploy', 'created', at), d, poolOf);
}

const run = (book: PipelineBook, d: Durations, b: BootTimes, now: number, cfg = single) => forecastPools(book, d, b, { config: cfg, now, poolOfJob: () => undefined });

describe('the forecast follows a pipeline stage by stage', () => {
  it('expects the next stage when the stage before it is due to end within a boot time, not before', () => {
    const d = learnt();
    const book = new PipelineBook();
    created(book, d);
    book.observe(hook(1, 'build', 'build', 'running', T0 + 5_000), d, () => 'general');
    // build started at +5 s and takes ~100 s: the tests become pending at ~+108 s.
    const fast = boots('general', 30); // horizon 45 s
    expect(run(book, d, fast, T0 + 10_000).general.expected).toBe(0);
    const nearEnd = run(book, d, fast, T0 + 80_000).general;
    expect(nearEnd.horizonSeconds).toBe(30 + HORIZON_MARGIN_SECONDS);
    expect(nearEnd.expected).toBeCloseTo(1.9, 5); // two shards, each with the default 95 % chance of running
    // Without boot reports the default boot time is the horizon: the tests are already in it at +10 s.
    const cold = run(book, d, new BootTimes(), T0 + 10_000).general;
    expect(cold.bootSeconds).toBe(DEFAULT_BOOT_SECONDS);
    expect(cold.expected).toBeCloseTo(1.9, 5);
    // deploy waits for both tests (another 200 s): not within any horizon yet.
    expect(run(book, d, new BootTimes(), T0 + 80_000).general.expected).toBeCloseTo(1.9, 5);
  });

  it('counts nothing for a canceled pipeline', () => {
    const d = learnt();
    const book = new PipelineBook();
    created(book, d);
    book.observe(hook(4, 'deploy', 'deploy', 'canceled', T0 + 2_000), d, () => undefined);
    expect(run(book, d, new BootTimes(), T0 + 3_000).general.expected).toBe(0);
  });

  it('counts nothing after a failure (on_success jobs are skipped)', () => {
    const d = learnt();
    const book = new PipelineBook();
    created(book, d);
    book.observe(hook(1, 'build', 'build', 'running', T0 + 1_000), d, () => 'general');
    book.observe(hook(1, 'build', 'build', 'failed', T0 + 50_000, { duration: 49 }), d, () => 'general');
    expect(run(book, d, new BootTimes(), T0 + 51_000).general.expected).toBe(0);
  });

  it('learns durations from build_duration of finished jobs, per project and job name (parallel shards share one)', () => {
    const d = new Durations();
    const book = new PipelineBook();
    book.observe(hook(1, 'rspec 1/3', 'test', 'created', T0), d, () => undefined);
    book.observe(hook(1, 'rspec 1/3', 'test', 'running', T0 + 1_000), d, () => 'general');
    book.observe(hook(1, 'rspec 1/3', 'test', 'success', T0 + 400_000, { duration: 399 }), d, () => 'general');
    expect(d.estimate(PROJECT, 'rspec 3/3')).toBeCloseTo(399, 0);
    expect(d.known(PROJECT, 'rspec 2/3')).toBe(true);
    expect(d.known(PROJECT + 1, 'rspec 2/3')).toBe(false);
    // A job name never seen in the project falls back to the project's jobs.
    expect(d.estimate(PROJECT, 'lint')).toBeCloseTo(399, 0);
  });

  it('counts busy workers free before a new one would boot, from learnt durations only', () => {
    const d = learnt();
    const book = new PipelineBook();
    created(book, d);
    book.observe(hook(1, 'build', 'build', 'running', T0), d, () => 'general');
    const poolOfJob = (id: number) => (id === 1 ? 'general' : undefined);
    const b = boots('general', 40);
    // build ends at ~+100 s: free within a 40 s boot from +70 s on, not at +10 s.
    expect(forecastPools(book, d, b, { config: single, now: T0 + 10_000, poolOfJob }).general.freeing).toBe(0);
    expect(forecastPools(book, d, b, { config: single, now: T0 + 70_000, poolOfJob }).general.freeing).toBe(1);
    // A job whose duration was never learnt says nothing about when its worker is free.
    const unknown = new Durations();
    expect(forecastPools(book, unknown, b, { config: single, now: T0 + 70_000, poolOfJob }).general.freeing).toBe(0);
  });

  it('a running job far past its typical duration gives no end time', () => {
    expect(expectedEnd(T0, 100_000, T0 + 50_000)).toBe(T0 + 100_000);
    expect(expectedEnd(T0, 100_000, T0 + 150_000)).toBeGreaterThan(T0 + 150_000);
    expect(expectedEnd(T0, 100_000, T0 + 201_000)).toBeUndefined();
  });
});

describe('the pipeline graph from the API: tags -> pool, needs, manual jobs', () => {
  const graph = (jobs: PipelineGraph['jobs'], status = 'running'): PipelineGraph => ({ id: 100, projectId: PROJECT, status, stages: ['build', 'test', 'deploy'], jobs, complete: true });
  const job = (id: number, name: string, stage: string, extra: Partial<PipelineGraph['jobs'][number]> = {}) => ({ id, name, stage, status: 'created', tags: [], manual: false, ...extra });

  it('routes forecast jobs to the pool their tags select', () => {
    const d = learnt();
    const book = new PipelineBook();
    book.applyGraph(graph([job(1, 'build', 'build', { tags: ['heavy'] }), job(2, 'test 1/2', 'test', { tags: ['docker'] })]), config, d, T0);
    const f = run(book, d, new BootTimes(), T0 + 1_000, config);
    expect(f.heavy.expected).toBeCloseTo(0.95, 5); // build is due now
    expect(f.general.expected).toBeCloseTo(0.95, 5); // test after ~100 s, within the default horizon of 105 s
  });

  it('never counts a manual job, nor a job that needs one', () => {
    const d = learnt();
    const book = new PipelineBook();
    book.applyGraph(graph([job(1, 'build', 'build', { status: 'success' }), job(4, 'deploy', 'deploy', { manual: true, status: 'manual' }), job(5, 'smoke', 'deploy', { needs: ['deploy'] })]), single, d, T0);
    expect(run(book, d, new BootTimes(), T0 + 1_000).general.expected).toBe(0);
  });

  it('a failure allowed to fail does not stop the pipeline', () => {
    const d = learnt();
    const book = new PipelineBook();
    book.applyGraph(graph([job(1, 'build', 'build', { allowFailure: true }), job(2, 'test 1/2', 'test')]), single, d, T0);
    book.observe(hook(1, 'build', 'build', 'failed', T0 + 10_000, { duration: 9 }), d, () => 'general');
    expect(run(book, d, new BootTimes(), T0 + 11_000).general.expected).toBeCloseTo(0.95, 5);
  });

  it('follows needs rather than stage order (DAG)', () => {
    const d = learnt();
    const book = new PipelineBook();
    // test needs nothing: pending at once, although build (stage before) runs for 100 s more.
    book.applyGraph(graph([job(1, 'build', 'build', { status: 'running' }), job(2, 'test 1/2', 'test', { needs: [] })]), single, d, T0);
    const f = run(book, d, boots('general', 20), T0 + 1_000);
    expect(f.general.expected).toBeCloseTo(0.95, 5);
  });

  it('learns that a job name does not run (when: on_failure in a pipeline that succeeded, rules) and stops counting it', () => {
    const d = learnt();
    const book = new PipelineBook();
    book.applyGraph(graph([job(1, 'build', 'build', { status: 'success' }), job(9, 'notify-failure', 'test', {})]), single, d, T0);
    // GitLab sends no hook for a skipped job: it is due now, and still counted once ...
    expect(run(book, d, new BootTimes(), T0 + 1_000).general.expected).toBeCloseTo(0.95, 5);
    // ... but when it is not queued long after it was due, the forecast learns it was skipped.
    expect(run(book, d, new BootTimes(), T0 + NOT_QUEUED_AFTER_MS + 10_000).general.expected).toBe(0);
    expect(d.runShare(PROJECT, 'notify-failure')).toBeLessThan(0.05);
    // The next pipeline's notify-failure is not counted at all.
    const next = new PipelineBook();
    next.applyGraph({ ...graph([job(11, 'build', 'build', { status: 'success' }), job(19, 'notify-failure', 'test', {})]), id: 101 }, single, d, T0 + 600_000);
    expect(run(next, d, new BootTimes(), T0 + 601_000).general.expected).toBeLessThan(0.05);
  });
});

describe('what is learnt survives a cold start in one SSM parameter', () => {
  it('round-trips durations, run shares, boot times and arrival history within 4 KB, written at most every 10 minutes', () => {
    const m = new ForecastMemory();
    for (let p = 0; p < 400; p++) for (const name of ['build', 'test', 'lint']) m.durations.observe(p, name, 'general', 30 + p, T0 + p * 60_000);
    m.durations.observeRun(3, 'lint', false, T0);
    for (let i = 0; i < 5; i++) m.boots.observe('general', 42);
    m.arrivals.observe('general', 'UTC', T0);
    m.arrivals.observe('general', 'UTC', T0 + 3_600_000); // closes the first hour
    const text = m.toStore(T0 + 3_600_000)!;
    expect(text.length).toBeLessThanOrEqual(4000);
    expect(m.toStore(T0 + 3_600_000 + 60_000)).toBeUndefined(); // not again within LEARNED_WRITE_EVERY_MS
    m.durations.observe(1, 'build', 'general', 31, T0);
    expect(m.toStore(T0 + 3_600_000 + LEARNED_WRITE_EVERY_MS)).toBeDefined();

    const back = new ForecastMemory();
    expect(decodeLearned(text, back)).toBe(true);
    // The most recently used entries are kept (lossy: the table is full long before 1,200 names).
    expect(back.durations.estimate(399, 'build')).toBeGreaterThan(429 * 0.97);
    expect(back.durations.estimate(399, 'build')).toBeLessThan(429 * 1.03);
    expect(back.durations.known(0, 'build')).toBe(false);
    expect(back.boots.estimate('general')).toBe(42);
    expect(back.arrivals.history.get('general')?.some((r) => r > 0)).toBe(true);
  });

  it('ignores an unreadable table (learnt again)', () => {
    const m = new ForecastMemory();
    expect(decodeLearned('{"v":1,"b":"!!"}', m)).toBe(false);
    expect(decodeLearned('not json', m)).toBe(false);
    m.load('garbage');
    expect(m.durations.entries.size).toBe(0);
  });

  it('writes nothing when nothing was learnt', () => {
    expect(new ForecastMemory().toStore(T0)).toBeUndefined();
  });
});

describe('the memory a pass keeps', () => {
  it('counts pending jobs nobody forecast (first stages) as arrivals of a targetWait pool', () => {
    const cfg = makeConfig([poolInput({ name: 'general', targetWait: 60 })]);
    const m = new ForecastMemory();
    const news = Array.from({ length: 30 }, (_, i): JobNews => ({ jobId: i + 1, projectId: 1, pipelineId: 1000 + i, name: 'build', stage: 'build', status: 'pending', at: T0 + i * 10_000 }));
    m.observeEvents(news, () => 'general');
    const f = m.forecast(cfg, T0 + 300_000, () => 'general');
    // 30 in the last 15 minutes' window: 30 / 900 s.
    expect(f.general.arrivalRate).toBeCloseTo(30 / 900, 4);
    // A pool without targetWait gets no arrival rate (its idle capacity is IdleCount's).
    expect(new ForecastMemory().forecast(single, T0, () => undefined).general.arrivalRate).toBeUndefined();
  });
});
