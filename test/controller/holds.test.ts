/**
 * Operator holds (pause / drain / resume): the record's encoding, what the planner does with a held
 * pool, and a reconcile pass with a hold source that answers, changes and fails. The same against
 * moto through the real handler and the CLI: test/lambda/hold-handler.test.ts.
 */
import fc from 'fast-check';
import { decodeHold, decodeHolds, encodeHold, holdChange, HoldError, type HoldRecord } from '../../lib/controller/holds';
import { plan } from '../../lib/planner';
import type { PoolHold, WorkerView } from '../../lib/model';
import { reconcilePass } from '../../lib/controller/reconcile';
import { MemoryStateStore } from '../../lib/controller/state';
import type { OperatorHolds } from '../../lib/controller/ports';
import { FakeFleet, ManualClock, MemoryLogger, testConfig } from './fixtures';

const AT = '2026-11-30T09:00:00.000Z';
const BY = 'arn:aws:sts::123456789012:assumed-role/ops/alice';
const paused: PoolHold = { mode: 'paused', by: BY, at: AT };
const draining: PoolHold = { mode: 'draining', by: BY, at: AT, reason: 'registry outage' };

describe('the hold record', () => {
  it('round-trips every mode, with and without a reason', () => {
    fc.assert(
      fc.property(fc.constantFrom<HoldRecord['mode']>('paused', 'draining', 'running'), fc.option(fc.string({ maxLength: 500 }), { nil: undefined }), (mode, reason) => {
        const r: HoldRecord = { mode, by: BY, at: AT, ...(reason ? { reason } : {}) };
        expect(decodeHold(encodeHold(r))).toEqual(r);
      }),
    );
  });

  it('refuses what it cannot mean, naming it', () => {
    expect(() => encodeHold({ mode: 'stopped' as never, by: BY, at: AT })).toThrow(/not one of paused, draining, running/);
    expect(() => encodeHold({ mode: 'paused', by: '', at: AT })).toThrow(/who set it/);
    expect(() => encodeHold({ mode: 'paused', by: BY, at: 'yesterday' })).toThrow(/ISO 8601/);
    expect(() => encodeHold({ mode: 'paused', by: BY, at: AT, reason: 'x'.repeat(501) })).toThrow(/at most 500/);
    expect(() => decodeHold('{"v":2,"mode":"paused"}')).toThrow(HoldError);
    expect(() => decodeHold('paused')).toThrow(/not JSON/);
  });

  it('a value that cannot be read holds the pool as paused (the reversible choice), and says so', () => {
    const problems: string[] = [];
    const holds = decodeHolds(
      new Map([
        ['a', encodeHold({ mode: 'draining', by: BY, at: AT })],
        ['b', encodeHold({ mode: 'running', by: BY, at: AT })],
        ['c', 'garbage'],
      ]),
      (pool, m) => problems.push(`${pool}: ${m}`),
    );
    expect(Object.keys(holds).sort()).toEqual(['a', 'c']);
    expect(holds.a.mode).toBe('draining');
    expect(holds.c).toMatchObject({ mode: 'paused', by: expect.stringMatching(/unreadable/) });
    expect(problems).toEqual(['c: not JSON']);
  });

  it('a command that asks for what is already so changes nothing', () => {
    expect(holdChange(undefined, 'running')).toBeUndefined();
    expect(holdChange({ mode: 'paused', by: BY, at: AT }, 'paused')).toBeUndefined();
    expect(holdChange(undefined, 'paused')).toEqual({ from: 'running' });
    expect(holdChange({ mode: 'paused', by: BY, at: AT }, 'draining')).toEqual({ from: 'paused' });
  });
});

const T0 = Date.parse('2026-11-30T10:00:00Z');
const worker = (id: string, state: WorkerView['state'], extra: Partial<WorkerView> = {}): WorkerView => ({
  id,
  pool: 'docker',
  state,
  launchedAt: T0 - 3600_000,
  builds: 1,
  ...(state === 'booting' ? {} : { readyAt: T0 - 3500_000 }),
  ...(state === 'idle' ? { reported: 'idle', idleSince: T0 - 60_000 } : state === 'busy' ? { reported: 'busy' } : {}),
  ...extra,
});

describe('the planner with a held pool', () => {
  const config = testConfig(); // IdleCount 2, limit 20
  const fleet = [worker('i-idle', 'idle'), worker('i-busy', 'busy'), worker('i-boot', 'booting', { launchedAt: T0 - 30_000 }), worker('i-leaving', 'retiring', { retireRequestedAt: T0 - 10_000, reported: 'draining' })];

  it('without a hold it would launch for the pending jobs and the idle target', () => {
    const p = plan(config, new Date(T0), { workers: fleet, demand: { docker: { pending: 5, running: 1 } } }).pools[0];
    expect(p.launch).toBeGreaterThan(0);
    expect(p.hold).toBeUndefined();
  });

  it('paused: launches nothing (pending jobs and idle target), retires nothing it would not retire anyway', () => {
    const free = plan(config, new Date(T0), { workers: fleet, demand: { docker: { pending: 5, running: 1 } } }).pools[0];
    const p = plan(config, new Date(T0), { workers: fleet, demand: { docker: { pending: 5, running: 1 } }, holds: { docker: paused } }).pools[0];
    expect(p.launch).toBe(0);
    expect(p.hold).toEqual(paused);
    expect(p.launchReasons).toEqual([`${free.launch} wanted, held: pool paused by ${BY} since ${AT}`]);
    expect(p.cappedBy).toEqual(['pool paused by operator']);
    expect(p.retire).toEqual(free.retire);
    expect(p.terminate).toEqual([]);
    // An empty pool with an idle target: still nothing.
    const empty = plan(config, new Date(T0), { workers: [], demand: {}, holds: { docker: paused } }).pools[0];
    expect(empty.launch).toBe(0);
  });

  it('draining: every worker not yet asked is asked to retire (a busy one after its job); nothing is terminated for it', () => {
    const p = plan(config, new Date(T0), { workers: fleet, demand: { docker: { pending: 5, running: 1 } }, holds: { docker: draining } }).pools[0];
    expect(p.launch).toBe(0);
    expect(p.retire.map((r) => [r.id, r.kind])).toEqual([
      ['i-boot', 'drain'],
      ['i-busy', 'drain'],
      ['i-idle', 'drain'],
    ]);
    expect(p.retire.find((r) => r.id === 'i-busy')!.reason).toBe(`pool drained by ${BY} at ${AT} (leaves after its job)`);
    expect(p.terminate).toEqual([]);
  });

  it('draining keeps the fence: a worker the fence ends is terminated as before, not also asked', () => {
    const stuck = worker('i-stuck', 'booting', { launchedAt: T0 - 3 * 3600_000 }); // never ready, far past bootTimeout + grace
    const p = plan(config, new Date(T0), { workers: [stuck, worker('i-idle', 'idle')], demand: {}, holds: { docker: draining } }).pools[0];
    expect(p.terminate.map((t) => [t.id, t.kind])).toEqual([['i-stuck', 'never-ready']]);
    expect(p.retire.map((r) => r.id)).toEqual(['i-idle']);
  });

  it('a hold on one pool leaves the others alone', () => {
    const two = testConfig({}, [
      { name: 'a', runUntagged: true, IdleCount: 1, worker: { instanceTypes: ['m6i.large'], subnets: ['subnet-0a'], ami: 'ami-0123456789abcdef0' } },
      { name: 'b', tags: ['b'], IdleCount: 1, worker: { instanceTypes: ['m6i.large'], subnets: ['subnet-0a'], ami: 'ami-0123456789abcdef0' } },
    ]);
    const p = plan(two, new Date(T0), { workers: [], demand: {}, holds: { a: paused } });
    expect(p.pools.map((x) => [x.pool, x.launch])).toEqual([
      ['a', 0],
      ['b', 1],
    ]);
  });

  it('a held pool\'s pending jobs do not take `concurrent` from the other pools (only what its own idle workers can run)', () => {
    const pool = (name: string) => ({ name, tags: [name], IdleCount: 0, worker: { instanceTypes: ['m6i.large'], subnets: ['subnet-0a'], ami: 'ami-0123456789abcdef0' } });
    const two = testConfig({ concurrent: 5 }, [pool('a'), pool('b')]);
    const demand = { a: { pending: 4, running: 0 }, b: { pending: 4, running: 0 } };
    // Without a hold, `a` comes first in config order and takes 4 of the 5.
    expect(plan(two, new Date(T0), { workers: [], demand }).pools.map((x) => x.launch)).toEqual([4, 1]);
    // Paused with no worker, none of a's jobs can run: b gets the room (before: 1, and 3 of b's jobs waited for a pool nobody serves).
    expect(plan(two, new Date(T0), { workers: [], demand, holds: { a: paused } }).pools.map((x) => x.launch)).toEqual([0, 4]);
    // Paused with two idle workers: they take two of a's jobs, so two shares stay with a.
    const idleA = [worker('i-a1', 'idle', { pool: 'a' }), worker('i-a2', 'idle', { pool: 'a' })];
    expect(plan(two, new Date(T0), { workers: idleA, demand, holds: { a: paused } }).pools.map((x) => x.launch)).toEqual([0, 3]);
  });
});

class ScriptedHolds implements OperatorHolds {
  reads = 0;
  constructor(public value: Record<string, PoolHold> | Error) {}
  async read() {
    this.reads++;
    if (this.value instanceof Error) throw this.value;
    return this.value;
  }
}

describe('a reconcile pass with operator holds', () => {
  const setup = (holds: ScriptedHolds) => {
    const clock = new ManualClock(T0);
    const fleet = new FakeFleet(clock);
    const store = new MemoryStateStore();
    const log = new MemoryLogger();
    const deps = { config: testConfig(), stage: 'ci', fleet, store, clock, log, holds };
    const pending = (ids: number[]) => ids.map((jobId) => ({ jobId, projectId: 7, status: 'pending', receivedAt: clock.now() }));
    return { clock, fleet, store, log, deps, pending };
  };

  it('paused: pending jobs wait, the decision says who paused it; resumed: the next pass launches', async () => {
    const holds = new ScriptedHolds({ docker: paused });
    const s = setup(holds);
    const r1 = await reconcilePass(s.deps, { events: s.pending([1, 2, 3]), trigger: 'queue' });
    expect(s.fleet.launches).toHaveLength(0);
    expect(r1.decisions).toContain(`pool docker: 5 wanted, held: pool paused by ${BY} since ${AT}`);
    holds.value = {};
    const r2 = await reconcilePass(s.deps, { events: [], trigger: 'schedule' });
    expect(r2.launched).toEqual({ docker: 5 }); // 3 pending + IdleCount 2
    expect(holds.reads).toBe(2); // one read a pass
  });

  it('draining: idle, busy and booting workers are asked to retire through the fleet; none is terminated', async () => {
    const s = setup(new ScriptedHolds({ docker: draining }));
    const idle = s.fleet.add({ pool: 'docker', state: 'idle', idleSince: T0 });
    const busy = s.fleet.add({ pool: 'docker', state: 'busy' });
    const boot = s.fleet.add({ pool: 'docker', state: 'booting' });
    const r = await reconcilePass(s.deps, { events: s.pending([1]), trigger: 'queue' });
    expect(s.fleet.retired.map((x) => x.id).sort()).toEqual([idle.id, busy.id, boot.id].sort());
    expect(s.fleet.terminated).toEqual([]);
    expect(s.fleet.launches).toEqual([]);
    expect(r.decisions.filter((d) => d.startsWith('retire ')).length).toBe(3);
    // The next pass asks nobody twice.
    await reconcilePass(s.deps, { events: [], trigger: 'schedule' });
    expect(s.fleet.retired).toHaveLength(3);
  });

  it('holds that cannot be read fail the pass before anything is launched (as unreadable state does)', async () => {
    const s = setup(new ScriptedHolds(new Error('could not read the operator holds under /x: ThrottlingException')));
    await expect(reconcilePass(s.deps, { events: s.pending([1]), trigger: 'queue' })).rejects.toThrow(/operator holds/);
    expect(s.fleet.launches).toEqual([]);
  });
});
