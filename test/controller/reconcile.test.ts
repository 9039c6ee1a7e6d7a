import { reconcilePass, markInterrupted, poolConfigHash, type ReconcileDeps } from '../../lib/controller/reconcile';
import { MemoryStateStore } from '../../lib/controller/state';
import type { GitLabSide, InstanceMarker, JobEvent, LaunchRequest } from '../../lib/controller/ports';
import { TAGS } from '../../lib/controller/tags';
import { FakeFleet, ManualClock, MemoryLogger, testConfig } from './fixtures';

function setup(config = testConfig(), gitlab?: GitLabSide) {
  const clock = new ManualClock();
  const fleet = new FakeFleet(clock);
  const log = new MemoryLogger();
  const store = new MemoryStateStore(log);
  const deps: ReconcileDeps = { config, stage: 'test', fleet, store, clock, log, gitlab };
  let n = 0;
  const pass = (events: JobEvent[] = [], trigger: 'queue' | 'schedule' | 'manual' = 'schedule') => reconcilePass(deps, { events, trigger, passId: `p${++n}` });
  return { clock, fleet, log, store, deps, pass };
}

const pending = (jobId: number, at: number, extra: Partial<JobEvent> = {}): JobEvent => ({ jobId, projectId: 42, status: 'pending', receivedAt: at, ...extra });

describe('reconcilePass', () => {
  test('from nothing to IdleCount workers; a second pass changes nothing and writes nothing', async () => {
    const { fleet, pass } = setup();
    const r1 = await pass();
    expect(r1.launched).toEqual({ docker: 2 });
    expect(fleet.launches).toHaveLength(1);
    expect(r1.decisions[0]).toMatch(/^pool docker: launched 2 \(2 for the idle target 2\)/);
    const r2 = await pass();
    expect(r2.launched).toEqual({});
    expect(fleet.launches).toHaveLength(1);
    expect(r2.decisions).toEqual([]);
    expect(r2.stateWrites).toBe(0);
  });

  test('500 pending jobs in one pass: one launch for the whole shortfall, within limit, a handful of writes', async () => {
    const { fleet, pass, clock } = setup();
    const events = Array.from({ length: 500 }, (_, i) => pending(1000 + i, clock.now()));
    const r = await pass(events, 'queue');
    expect(fleet.launches).toHaveLength(1);
    expect(fleet.launches[0].count).toBe(20); // limit 20
    expect(r.plan.pools[0].cappedBy).toContain('limit 20');
    expect(r.stateWrites).toBeLessThanOrEqual(3);
  });

  test('duplicate deliveries are idempotent; running and finished transitions; a late pending after success is ignored', async () => {
    const { pass, clock, store } = setup(testConfig({}, [{ name: 'docker', runUntagged: true, IdleCount: 0, worker: { instanceTypes: ['m6i.large'], subnets: ['subnet-0a'], ami: 'ami-0123456789abcdef0' } }]));
    const t = clock.now();
    await pass([pending(1, t), pending(1, t), pending(2, t)], 'queue');
    let s = await store.load();
    expect([...s.jobs.values()].filter((j) => j.status === 'pending')).toHaveLength(2);
    await pass([{ ...pending(1, t + 1000), status: 'running' }, { ...pending(2, t + 1000), status: 'success' }, pending(2, t + 2000)], 'queue');
    s = await store.load();
    expect(s.jobs.get(1)!.status).toBe('running');
    expect(s.jobs.get(2)!.status).toBe('finished');
    // A stale pending delivery for a running job does not make it pending again.
    await pass([pending(1, t + 3000)], 'queue');
    expect((await store.load()).jobs.get(1)!.status).toBe('running');
  });

  test('pending entries expire after pendingJobTtl, running ones after the pool jobTimeout', async () => {
    const cfg = testConfig({ pendingJobTtl: 600 }, [
      { name: 'docker', runUntagged: true, IdleCount: 0, jobTimeout: 1800, worker: { instanceTypes: ['m6i.large'], subnets: ['subnet-0a'], ami: 'ami-0123456789abcdef0' } },
    ]);
    const { pass, clock, store } = setup(cfg);
    await pass([pending(1, clock.now()), { ...pending(2, clock.now()), status: 'running' }], 'queue');
    clock.advance(601);
    const r = await pass();
    expect(r.decisions.join('\n')).toMatch(/expired 1 pending job\(s\).* and 0 running/);
    clock.advance(1200);
    await pass();
    expect((await store.load()).jobs.size).toBe(0);
  });

  test('jobs are routed by tags; tags no pool serves are not counted', async () => {
    const cfg = testConfig({}, [
      { name: 'docker', tags: ['docker'], runUntagged: true, worker: { instanceTypes: ['m6i.large'], subnets: ['subnet-0a'], ami: 'ami-0123456789abcdef0' } },
      { name: 'arm', tags: ['arm64'], worker: { instanceTypes: ['m7g.large'], subnets: ['subnet-0a'], ami: 'ami-0123456789abcdef0' } },
    ]);
    const { pass, clock, fleet } = setup(cfg);
    const r = await pass([pending(1, clock.now(), { tags: ['arm64'] }), pending(2, clock.now(), { tags: ['windows'] }), pending(3, clock.now(), { tags: [] })], 'queue');
    expect(r.launched).toEqual({ arm: 1, docker: 1 });
    expect(fleet.launches.map((l) => l.pool.name).sort()).toEqual(['arm', 'docker']);
    expect(r.decisions.join('\n')).toMatch(/1 job event\(s\) carry tags no pool serves/);
  });

  test('a single pool without an API token counts every pending job for that pool', async () => {
    const { pass, clock } = setup(testConfig({}, [{ name: 'only', tags: ['x'], IdleCount: 0, worker: { instanceTypes: ['m6i.large'], subnets: ['subnet-0a'], ami: 'ami-0123456789abcdef0' } }]));
    const r = await pass([pending(1, clock.now()), pending(2, clock.now())], 'queue');
    expect(r.launched).toEqual({ only: 2 });
  });

  test('capacity errors cool the instance type / subnet down; the next pass avoids it, and retries it after the cooldown', async () => {
    const { pass, fleet, clock } = setup();
    fleet.launchImpl = (req) => ({
      launched: [],
      errors: [{ class: 'capacity', code: 'InsufficientInstanceCapacity', message: 'no', instanceType: 'm6i.large', subnet: 'subnet-0a', market: 'spot' }],
    });
    const r1 = await pass();
    expect(r1.launchErrors).toHaveLength(1);
    expect(r1.decisions.join('\n')).toMatch(/no spot capacity for m6i.large in subnet-0a; cooling down 300 s/);
    clock.advance(60);
    await pass();
    expect(fleet.launches[1].avoid).toEqual([{ instanceType: 'm6i.large', subnet: 'subnet-0a', market: 'spot' }]);
    clock.advance(300);
    fleet.launchImpl = undefined;
    await pass();
    expect(fleet.launches[2].avoid).toEqual([]);
  });

  test('a permanently failing launch (quota) costs a bounded, decreasing number of calls over many passes', async () => {
    const { pass, fleet, clock, log } = setup();
    fleet.launchImpl = () => ({ launched: [], errors: [{ class: 'quota', code: 'VcpuLimitExceeded', message: 'vCPU limit' }] });
    for (let i = 0; i < 24 * 60; i++) {
      await pass();
      clock.advance(60);
    }
    // 24 hours of passes every minute: backoff 2, 4, 8, 16, 32, 60 min ... => about 30 calls, not 1,440.
    expect(fleet.launches.length).toBeLessThanOrEqual(30);
    expect(fleet.launches.length).toBeGreaterThanOrEqual(20);
    expect(log.at('error').some((m) => /account quota reached \(VcpuLimitExceeded/.test(m))).toBe(true);
  });

  test('an invalid request pauses the pool: one call, ever, until the config changes or a manual pass', async () => {
    const { pass, fleet, clock, log, deps } = setup();
    fleet.launchImpl = () => ({ launched: [], errors: [{ class: 'invalid', code: 'InvalidParameterValue', message: 'bad AMI' }] });
    for (let i = 0; i < 200; i++) {
      await pass();
      clock.advance(60);
    }
    expect(fleet.launches).toHaveLength(1);
    expect(log.at('error').filter((m) => /paused/.test(m)).length).toBeGreaterThan(100);
    // Repeating the same refusal every pass costs no SSM write.
    const held = await pass();
    expect(held.decisions.join('\n')).toMatch(/refused: paused/);
    expect(held.stateWrites).toBe(0);
    await pass([], 'manual');
    expect(fleet.launches).toHaveLength(2);
    // Changed config resumes as well.
    const changed = testConfig({}, [{ ...deps.config.pools[0], IdleCount: 1 }]);
    expect(poolConfigHash(changed.pools[0])).not.toBe(poolConfigHash(deps.config.pools[0]));
    deps.config = changed;
    fleet.launchImpl = undefined;
    const r = await pass();
    expect(r.decisions.join('\n')).toMatch(/configuration changed, launches resume/);
    expect(r.launched).toEqual({ docker: 1 });
  });

  test('a busy worker is never terminated, even when broken; what should go is asked to retire first', async () => {
    const { pass, fleet, clock } = setup();
    const busy = fleet.add({ pool: 'docker', state: 'busy', problem: 'impaired' });
    const idleBroken = fleet.add({ pool: 'docker', state: 'idle', problem: 'impaired', idleSince: clock.now() });
    const orphanBusy = fleet.add({ pool: 'gone-pool', state: 'busy' });
    const r = await pass();
    expect(r.terminated).toEqual([]);
    expect(r.retired.map((t) => t.id).sort()).toEqual([idleBroken.id, orphanBusy.id].sort());
    expect(fleet.workers.has(busy.id)).toBe(true);
    expect(fleet.retired.map((t) => t.id)).not.toContain(busy.id);
  });

  test('idle workers past IdleTime above the idle target are asked to retire, not terminated', async () => {
    const { pass, fleet, clock } = setup();
    const ws = [0, 1, 2, 3].map(() => fleet.add({ pool: 'docker', state: 'idle', idleSince: clock.now() }));
    clock.advance(1800);
    const r = await pass();
    expect(r.retired).toHaveLength(2);
    expect(r.terminated).toHaveLength(0);
    expect(r.decisions.some((d) => new RegExp(`^retire ${ws[0].id}: idle 1800 s`).test(d))).toBe(true);
  });

  test('a launch discovery does not show yet counts as booting for the next pass (eventual consistency)', async () => {
    const { pass, fleet } = setup();
    let hidden = true;
    const real = fleet.discover.bind(fleet);
    fleet.discover = async () => (hidden ? (await real()).map((w) => ({ ...w })).filter(() => false) : real());
    await pass();
    expect(fleet.launches).toHaveLength(1);
    await pass();
    expect(fleet.launches).toHaveLength(1);
    hidden = false;
    await pass();
    expect(fleet.launches).toHaveLength(1);
  });

  test('an interrupted worker is replaced and its type / subnet cools down', async () => {
    const { pass, fleet, clock } = setup();
    fleet.add({ pool: 'docker', state: 'idle', idleSince: clock.now() });
    fleet.add({ pool: 'docker', state: 'idle', idleSince: clock.now(), problem: 'interrupted', interruptedAt: clock.now(), interruptionKind: 'interruption', instanceType: 'm5.large', subnet: 'subnet-0b' });
    const r = await pass([], 'schedule');
    expect(r.launched).toEqual({ docker: 1 });
    expect(fleet.launches[0].avoid).toEqual([{ instanceType: 'm5.large', subnet: 'subnet-0b', market: 'spot' }]);
  });

  test('a fleet that throws during launch backs the pool off instead of failing the pass', async () => {
    const { pass, fleet } = setup();
    fleet.launchImpl = () => {
      throw new Error('socket hang up');
    };
    const r = await pass();
    expect(r.launchErrors[0]).toMatchObject({ class: 'other', pool: 'docker' });
    await pass();
    expect(fleet.launches).toHaveLength(1);
  });
});

describe('launch template changes', () => {
  test('idle workers of an older template version are retired and replaced; busy ones are left alone; unknown version retires nothing', async () => {
    const { pass, fleet } = setup();
    let current: string | undefined = '1';
    fleet.currentTemplateVersion = async () => current;
    const idleA = fleet.add({ pool: 'docker', state: 'idle', idleSince: 0, templateVersion: '1' });
    const idleB = fleet.add({ pool: 'docker', state: 'idle', idleSince: 0, templateVersion: '1' });
    const busy = fleet.add({ pool: 'docker', state: 'busy', templateVersion: '1' });
    const r1 = await pass();
    expect(r1.templateVersions).toEqual({ docker: '1' });
    expect(r1.retired).toEqual([]);
    current = undefined; // template refused or unreadable: keep the fleet
    expect((await pass()).retired).toEqual([]);
    current = '2';
    const r3 = await pass();
    expect(r3.retired.map((r) => r.id).sort()).toEqual([idleA.id, idleB.id].sort());
    expect(r3.retired[0].reason).toMatch(/launch template changed \(version 1, now 2\)/);
    expect(fleet.retired.map((r) => r.id)).not.toContain(busy.id);
    expect(r3.launched).toEqual({ docker: 2 }); // replacements for the idle target, in the same pass
  });
});

describe('markInterrupted', () => {
  const clock = new ManualClock();
  const log = new MemoryLogger();
  const tagged: { id: string; tags: Record<string, string> }[] = [];
  const fleet: InstanceMarker = {
    async markInstance(id, tags) {
      tagged.push({ id, tags: { ...tags } });
      return id.endsWith('0') ? 'not-ours' : 'tagged';
    },
  };

  test('interruption tags the instance and asks for a reconcile pass', async () => {
    const r = await markInterrupted({ fleet, clock, log }, { instanceId: 'i-0123456789abcdef1', kind: 'interruption' });
    expect(r).toMatchObject({ action: 'tagged', wakeReconcile: true });
    expect(tagged.at(-1)!.tags).toEqual({ [TAGS.interrupted]: `interruption ${new Date(clock.now()).toISOString()}` });
  });

  test('rebalance also requests retirement', async () => {
    await markInterrupted({ fleet, clock, log }, { instanceId: 'i-0123456789abcdef1', kind: 'rebalance' });
    expect(Object.keys(tagged.at(-1)!.tags).sort()).toEqual([TAGS.interrupted, TAGS.retire].sort());
  });

  test('instances of other deployments are left alone; state changes tag nothing', async () => {
    expect((await markInterrupted({ fleet, clock, log }, { instanceId: 'i-0123456789abcdef0', kind: 'interruption' })).action).toBe('not-ours');
    const n = tagged.length;
    const r = await markInterrupted({ fleet, clock, log }, { instanceId: 'i-0123456789abcdef1', kind: 'state-change', state: 'terminated' });
    expect(r).toMatchObject({ action: 'ignored', wakeReconcile: true });
    expect(tagged.length).toBe(n);
  });

  test('a malformed instance id is an error naming it', async () => {
    await expect(markInterrupted({ fleet, clock, log }, { instanceId: 'bogus', kind: 'interruption' })).rejects.toThrow(/"bogus" is not an EC2 instance id/);
  });
});

// Used in a type position only: keeps LaunchRequest imported for readers of the fake fleet.
export type _L = LaunchRequest;
