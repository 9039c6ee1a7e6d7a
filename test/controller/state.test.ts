import fc from 'fast-check';
import {
  decodeState,
  emptyState,
  encodeState,
  encodeCooldowns,
  MAX_COOLDOWN_PARAMS,
  MAX_JOB_SHARDS,
  MAX_PARAMETER_BYTES,
  expireProjects,
  MAX_PROJECTS,
  MemoryParameterBackend,
  MemoryStateStore,
  PARAMS,
  PROJECT_TTL_MS,
  touchProject,
  type ControllerState,
  type JobEntry,
} from '../../lib/controller/state';
import { MemoryLogger } from './fixtures';

const T0 = Date.parse('2025-03-03T10:00:00Z');

function lcg(seed: number) {
  let s = seed;
  return () => (s = (s * 1103515245 + 12345) % 2147483648) / 2147483648;
}

/** `pending` pending jobs and `running` running jobs (one per busy worker). */
function bigState(opts: { pending: number; running: number; idSpread: number; projects: number; minutes: number; pools: string[]; seed?: number }): ControllerState {
  const s = emptyState();
  const rnd = lcg(opts.seed ?? 7);
  let id = 4_000_000_000;
  const total = opts.pending + opts.running;
  for (let x = 0; x < total; x++) {
    id += 1 + Math.floor(rnd() * opts.idSpread);
    s.jobs.set(id, {
      projectId: 100 + Math.floor(rnd() * opts.projects),
      pool: opts.pools[Math.floor(rnd() * opts.pools.length)],
      status: x < opts.running ? 'running' : 'pending',
      seenAt: T0 - Math.floor(rnd() * opts.minutes * 60_000),
    });
  }
  s.cooldowns = Array.from({ length: 12 }, (_, i) => ({ pool: 'docker', instanceType: `m6i.${i}xlarge`, subnet: 'subnet-0abc', market: 'spot' as const, until: T0 + 300_000, reason: 'InsufficientInstanceCapacity' }));
  s.backoffs = { docker: { class: 'quota', code: 'VcpuLimitExceeded', failures: 3, until: T0 + 480_000 } };
  return s;
}

const atMinute = (ms: number) => Math.floor(ms / 60_000) * 60_000;
function normalised(s: ControllerState) {
  return [...s.jobs].map(([id, j]) => [id, { ...j, seenAt: atMinute(j.seenAt) }] as const).sort((a, b) => a[0] - b[0]);
}

describe('state encoding', () => {
  test.each([
    ['a burst from a few projects', { idSpread: 3, projects: 20, minutes: 10 }],
    ['steady traffic from 200 projects over an hour', { idSpread: 100, projects: 200, minutes: 60 }],
    ['worst case: random ids, 1,000 projects, an hour of spread', { idSpread: 1000, projects: 1000, minutes: 60 }],
  ])('10,000 pending jobs + 1,000 running on 1,000 workers (%s): every parameter < 4 KB, fixed shard count, lossless', (_name, shape) => {
    const s = bigState({ pending: 10_000, running: 1_000, pools: ['docker', 'large', 'arm'], ...shape });
    const warnings: string[] = [];
    const values = encodeState(s, (m) => warnings.push(m));
    expect(warnings).toEqual([]);
    for (const [name, v] of values) {
      expect(Buffer.byteLength(v, 'utf8')).toBeLessThanOrEqual(MAX_PARAMETER_BYTES);
      expect(name).toMatch(/^(meta|last-pass|projects|jobs\/\d\d|cooldowns\/\d)$/);
    }
    expect([...values.keys()].filter((k) => k.startsWith('jobs/')).length).toBeLessThanOrEqual(MAX_JOB_SHARDS);
    const back = decodeState(values);
    expect(normalised(back)).toEqual(normalised(s));
    const byType = (a: { instanceType: string }, b: { instanceType: string }) => (a.instanceType < b.instanceType ? -1 : 1);
    expect([...back.cooldowns].sort(byType)).toEqual([...s.cooldowns].sort(byType));
    expect(back.backoffs).toEqual(s.backoffs);
  });

  test('a realistic burst of 10,000 jobs needs few parameters', () => {
    const values = encodeState(bigState({ pending: 10_000, running: 1_000, idSpread: 3, projects: 20, minutes: 10, pools: ['docker'] }));
    expect(values.size).toBeLessThanOrEqual(10);
  });

  test('round-trips arbitrary states (property)', () => {
    const job = fc.record<JobEntry>({
      projectId: fc.integer({ min: 1, max: 2 ** 40 }),
      pool: fc.constantFrom('', 'docker', 'arm-64', 'gpu'),
      status: fc.constantFrom('pending', 'running', 'finished'),
      seenAt: fc.integer({ min: T0 - 86_400_000, max: T0 }),
    });
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.integer({ min: 1, max: 2 ** 45 }), job), { maxLength: 300 }), (entries) => {
        const s = emptyState();
        for (const [id, j] of entries) s.jobs.set(id, j);
        expect(normalised(decodeState(encodeState(s)))).toEqual(normalised(s));
      }),
      { numRuns: 200 },
    );
  });

  test('more jobs than 32 parameters hold: the oldest are forgotten with a warning, never an oversized parameter', () => {
    const s = bigState({ pending: 40_000, running: 0, idSpread: 5000, projects: 5000, minutes: 60, pools: ['a', 'b', 'c'] });
    const warnings: string[] = [];
    const values = encodeState(s, (m) => warnings.push(m));
    expect(warnings.join('\n')).toMatch(/forgetting the \d+ oldest/);
    for (const v of values.values()) expect(v.length).toBeLessThanOrEqual(MAX_PARAMETER_BYTES);
    const kept = decodeState(values).jobs;
    expect(kept.size).toBeGreaterThan(10_000);
    expect(kept.size).toBeLessThan(40_000);
  });

  test.each([
    ['meta is not JSON', (v: Map<string, string>) => v.set(PARAMS.meta, '{nope')],
    ['a shard is not base64', (v: Map<string, string>) => v.set(PARAMS.shard(0), '%%%')],
    ['a shard is truncated', (v: Map<string, string>) => v.set(PARAMS.shard(0), v.get(PARAMS.shard(0))!.slice(0, 20))],
    ['a shard is random bytes', (v: Map<string, string>) => v.set(PARAMS.shard(0), Buffer.from('hello world, not deflate').toString('base64'))],
    ['last-pass is garbage', (v: Map<string, string>) => v.set(PARAMS.lastPass, '[1,2]')],
    ['meta names an impossible shard count', (v: Map<string, string>) => v.set(PARAMS.meta, JSON.stringify({ v: 1, shards: 3 }))],
  ])('corrupt state (%s) is rebuilt with a warning, never a throw', (_n, corrupt) => {
    const s = bigState({ pending: 50, running: 5, idSpread: 3, projects: 2, minutes: 5, pools: ['docker'] });
    s.lastPass = { passId: 'p', at: new Date(T0).toISOString(), trigger: 'queue', launched: {}, retired: 0, terminated: 0, errors: [], decisions: ['x'] };
    const values = encodeState(s);
    corrupt(values);
    const warnings: string[] = [];
    const back = decodeState(values, (m) => warnings.push(m));
    expect(warnings.length).toBeGreaterThan(0);
    expect(back.jobs.size).toBeLessThanOrEqual(s.jobs.size);
  });

  test('capacity cooldowns are never dropped to fit: 10 pools x 10 types x 6 subnets, both markets, all cooling down', () => {
    const rnd = lcg(11);
    const hex = (n: number) => Array.from({ length: n }, () => Math.floor(rnd() * 16).toString(16)).join('');
    const types = ['m6i.large', 'm6a.large', 'm5.large', 'm5a.large', 'm7i.large', 'm7a.large', 'c6i.xlarge', 'c6a.xlarge', 'c5.xlarge', 'r6i.large'];
    const s = emptyState();
    for (let p = 0; p < 10; p++) {
      // Each pool its own subnets (random ids do not compress), each cooldown its own end.
      const subnets = Array.from({ length: 6 }, () => `subnet-${hex(17)}`);
      for (const instanceType of types)
        for (const subnet of subnets)
          for (const market of ['spot', 'on-demand'] as const)
            s.cooldowns.push({ pool: `pool-${p}`, instanceType, subnet, market, until: T0 + 1000 * Math.floor(rnd() * 300), reason: rnd() < 0.9 ? 'InsufficientInstanceCapacity' : `interruption of i-${hex(17)}` });
    }
    for (const count of [600, 1200]) {
      const warnings: string[] = [];
      const parts = encodeCooldowns(s.cooldowns.slice(0, count), (m) => warnings.push(m));
      expect(warnings).toEqual([]);
      expect(parts.length).toBeLessThanOrEqual(count === 600 ? 1 : 2);
      for (const v of parts) expect(Buffer.byteLength(v)).toBeLessThanOrEqual(MAX_PARAMETER_BYTES);
    }
    const warnings: string[] = [];
    const values = encodeState(s, (m) => warnings.push(m));
    expect(warnings).toEqual([]);
    const back = decodeState(values);
    const key = (c: (typeof s.cooldowns)[number]) => JSON.stringify([c.pool, c.instanceType, c.subnet, c.market, c.until, c.reason]);
    expect(back.cooldowns.map(key).sort()).toEqual(s.cooldowns.map(key).sort());
  });

  test('cooldowns beyond what 8 parameters hold: the soonest-ending are dropped and it is said, never silently', () => {
    const s = emptyState();
    for (let k = 0; k < 20_000; k++) s.cooldowns.push({ pool: `pool-${k % 50}`, instanceType: `x${k}.large`, subnet: `subnet-${(k * 7919).toString(16).padStart(17, '0')}`, until: T0 + k * 1000, reason: 'InsufficientInstanceCapacity' });
    const errors: string[] = [];
    const parts = encodeCooldowns(s.cooldowns, (m) => errors.push(m));
    expect(parts.length).toBe(MAX_COOLDOWN_PARAMS);
    expect(errors.length).toBeGreaterThan(0);
    expect(errors[0]).toMatch(/capacity cooldowns do not fit 8 parameters of 4 KB; the \d+ ending soonest are dropped/);
  });

  test('cooldowns written in meta by an earlier release are still read', () => {
    const values = new Map([[PARAMS.meta, JSON.stringify({ v: 1, shards: 1, cooldowns: [{ pool: 'docker', instanceType: 'm5.large', subnet: 'subnet-0a', until: T0, reason: 'x' }], backoffs: {}, paused: {}, inflight: [] })]]);
    expect(decodeState(values).cooldowns).toEqual([{ pool: 'docker', instanceType: 'm5.large', subnet: 'subnet-0a', until: T0, reason: 'x' }]);
  });

  test('missing state is empty without warnings', () => {
    const warnings: string[] = [];
    expect(decodeState(new Map(), (m) => warnings.push(m)).jobs.size).toBe(0);
    expect(warnings).toEqual([]);
  });
});

describe('ShardedStateStore', () => {
  test('writes only what changed, and nothing when nothing changed', async () => {
    const log = new MemoryLogger();
    const store = new MemoryStateStore(log);
    const s = await store.load();
    expect(await store.save(s)).toEqual({ writes: 1 }); // meta, once
    expect(await store.save(s)).toEqual({ writes: 0 });

    for (let i = 1; i <= 500; i++) s.jobs.set(1000 + i, { projectId: 7, pool: 'docker', status: 'pending', seenAt: T0 });
    const burst = await store.save(s);
    expect(burst.writes).toBeGreaterThanOrEqual(1);
    expect(burst.writes).toBeLessThanOrEqual(3);

    const reloaded = new MemoryStateStore(log, store.backend);
    const again = await reloaded.load();
    expect(again.jobs.size).toBe(500);
    expect(await reloaded.save(again)).toEqual({ writes: 0 });
    again.jobs.get(1001)!.status = 'running';
    expect((await reloaded.save(again)).writes).toBe(1);
  });

  test('at 10,000 jobs one changed job rewrites one shard', async () => {
    const store = new MemoryStateStore();
    const s = bigState({ pending: 10_000, running: 1_000, idSpread: 100, projects: 200, minutes: 60, pools: ['docker', 'large'] });
    await store.load();
    const first = await store.save(s);
    expect(first.writes).toBeLessThanOrEqual(MAX_JOB_SHARDS + 2);
    const id = [...s.jobs.keys()][1234];
    s.jobs.get(id)!.status = 'finished';
    expect(await store.save(s)).toEqual({ writes: 1 });
  });

  test('a corrupt stored state loads empty with a warning; the next save repairs it', async () => {
    const log = new MemoryLogger();
    const store = new MemoryStateStore(log);
    store.backend.values.set('meta', 'garbage');
    store.backend.values.set('jobs/00', 'garbage');
    const s = await store.load();
    expect(s.jobs.size).toBe(0);
    expect(log.at('warn').length).toBe(2);
    await store.save(s);
    expect(JSON.parse(store.backend.values.get('meta')!).shards).toBe(1);
  });

  test('a read failure is an error, not an empty state that would overwrite the stored one', async () => {
    const store = new MemoryStateStore();
    store.backend.readAll = async () => {
      throw new Error('AccessDenied');
    };
    await expect(store.load()).rejects.toThrow(/could not read controller state: AccessDenied/);
  });
});

describe('a store that reuses what it read and saved (one invocation\'s passes)', () => {
  test('reads the parameters once, then serves its own saves; a failed save makes the next load read again', async () => {
    const backend = new MemoryParameterBackend();
    const store = new MemoryStateStore(undefined, backend, { cacheMs: Infinity });
    const s = await store.load();
    s.jobs.set(1, { projectId: 1, pool: 'docker', status: 'pending', seenAt: T0 });
    await store.save(s);
    const again = await store.load();
    expect(again.jobs.get(1)).toMatchObject({ status: 'pending' });
    again.jobs.set(2, { projectId: 1, pool: 'docker', status: 'pending', seenAt: T0 });
    expect((await store.load()).jobs.has(2)).toBe(false); // a copy: an unsaved change is not kept
    expect(store.reads).toBe(1);
    backend.write = async () => Promise.reject(new Error('throttled'));
    await expect(store.save(again)).rejects.toThrow('throttled');
    await store.load();
    expect(store.reads).toBe(2);
  });
});

describe('recently seen projects', () => {
  const HOUR = 3_600_000;

  test('events from the same projects within an hour change nothing, so they cost no write', async () => {
    const store = new MemoryStateStore();
    const s = await store.load();
    expect(touchProject(s, 42, T0 + 1000)).toBe(true);
    expect(touchProject(s, 7, T0 + 2000)).toBe(true);
    expect(await store.save(s)).toEqual({ writes: 2 }); // meta (first save) + projects
    for (let m = 1; m < 50; m++) {
      expect(touchProject(s, 42, T0 + m * 60_000)).toBe(false);
      expect(touchProject(s, 7, T0 + m * 60_000 + 5)).toBe(false);
      expect(await store.save(s)).toEqual({ writes: 0 });
    }
    // A new project, or a known one seen in a new hour, is one write.
    expect(touchProject(s, 99, T0 + 51 * 60_000)).toBe(true);
    expect(await store.save(s)).toEqual({ writes: 1 });
    expect(touchProject(s, 42, T0 + HOUR)).toBe(true);
    expect(await store.save(s)).toEqual({ writes: 1 });
  });

  test('an empty project list is never written; projects age out after a week (one write)', async () => {
    const store = new MemoryStateStore();
    const s = await store.load();
    await store.save(s);
    expect(store.backend.values.has(PARAMS.projects)).toBe(false);
    touchProject(s, 5, T0);
    touchProject(s, 6, T0 + 3 * HOUR);
    await store.save(s);
    expect(expireProjects(s, T0 + PROJECT_TTL_MS - 1)).toBe(0);
    expect(expireProjects(s, T0 + 2 * HOUR + PROJECT_TTL_MS)).toBe(1);
    expect([...s.projects.keys()]).toEqual([6]);
    expect(await store.save(s)).toEqual({ writes: 1 });
    const reloaded = new MemoryStateStore(undefined, store.backend);
    const back = await reloaded.load();
    expect([...back.projects]).toEqual([[6, Math.floor((T0 + 3 * HOUR) / HOUR) * HOUR]]);
    // The last one ages out: the stored list is emptied (one write), then left alone.
    expect(expireProjects(back, T0 + 4 * HOUR + PROJECT_TTL_MS)).toBe(1);
    expect(await reloaded.save(back)).toEqual({ writes: 1 });
    expect(await reloaded.save(back)).toEqual({ writes: 0 });
    expect((await new MemoryStateStore(undefined, store.backend).load()).projects.size).toBe(0);
  });

  test(`keeps at most ${MAX_PROJECTS} projects (least recently seen dropped) in one parameter under 4 KB`, () => {
    const s = emptyState();
    // 16-digit ids (the largest safe integers) seen over a day.
    const id = (i: number) => 9_000_000_000_000_000 + i * 7919;
    for (let i = 0; i < 50; i++) touchProject(s, id(i), T0);
    for (let i = 50; i < MAX_PROJECTS + 50; i++) touchProject(s, id(i), T0 + (1 + (i % 23)) * HOUR);
    expect(s.projects.size).toBe(MAX_PROJECTS);
    for (let i = 0; i < 50; i++) expect(s.projects.has(id(i))).toBe(false);
    const values = encodeState(s);
    expect(values.get(PARAMS.projects)!.length).toBeLessThanOrEqual(MAX_PARAMETER_BYTES);
    expect(decodeState(values).projects).toEqual(s.projects);
  });

  test('an unreadable project list is dropped with a warning, the rest of the state survives', () => {
    const s = emptyState();
    s.jobs.set(1, { projectId: 3, pool: 'docker', status: 'pending', seenAt: T0 });
    const values = encodeState(s);
    values.set(PARAMS.projects, '{"v":1,"h":[["x"]]}');
    const warnings: string[] = [];
    const back = decodeState(values, (m) => warnings.push(m));
    expect(back.projects.size).toBe(0);
    expect(back.jobs.size).toBe(1);
    expect(warnings.join()).toMatch(/"projects" is unreadable/);
  });
});
