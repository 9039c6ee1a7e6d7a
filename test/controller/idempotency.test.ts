/**
 * A pass that dies after CreateFleet and before its save must not launch twice, and a slow GitLab
 * must not keep a pass from launching and saving.
 *
 * Moto ignores ClientToken (facts.md), so the token behaviour is tested here with
 * aws-sdk-client-mock and a CreateFleet fake that honours tokens as EC2 documents it ("Ensuring
 * idempotency"): the same token with the same parameters returns the first answer, the same token
 * with other parameters fails with IdempotentParameterMismatch.
 */
import { mockClient } from 'aws-sdk-client-mock';
import { CreateFleetCommand, DescribeInstancesCommand, DescribeInstanceStatusCommand, DescribeLaunchTemplateVersionsCommand, EC2Client, type CreateFleetCommandInput, type Instance } from '@aws-sdk/client-ec2';
import { Ec2Fleet } from '../../lib/aws/ec2-fleet';
import { launchClientToken, reconcilePass, type ReconcileDeps } from '../../lib/controller/reconcile';
import { emptyState, MemoryStateStore, type ControllerState } from '../../lib/controller/state';
import type { JobEvent } from '../../lib/controller/ports';
import { FakeGitLabApi, gitlabSide } from '../helpers/gitlab';
import { TAGS } from '../../lib/controller/tags';
import { ManualClock, MemoryLogger, testConfig, launchTemplateVersions } from './fixtures';

const ec2Mock = mockClient(EC2Client);
const GOOD_TEMPLATE = launchTemplateVersions(3);

/** CreateFleet as EC2 answers it with respect to ClientToken; instances stay invisible until `reveal()`. */
class TokenHonouringEc2 {
  fleets = new Map<string, { params: string; instanceIds: string[]; tags: Record<string, string> }>();
  visible = false;
  private next = 1;
  install(): void {
    ec2Mock.on(DescribeLaunchTemplateVersionsCommand).resolves(GOOD_TEMPLATE);
    ec2Mock.on(DescribeInstanceStatusCommand).resolves({ InstanceStatuses: [] });
    ec2Mock.on(CreateFleetCommand).callsFake((input: CreateFleetCommandInput) => {
      const { ClientToken, ...rest } = input;
      const params = JSON.stringify(rest);
      const seen = this.fleets.get(ClientToken!);
      if (seen && seen.params !== params)
        throw Object.assign(new Error('The client token you have provided is associated with a request that has different parameters.'), { name: 'IdempotentParameterMismatch' });
      if (seen) return { FleetId: 'fleet-1', Instances: [{ InstanceIds: seen.instanceIds, Lifecycle: 'spot' }] };
      const n = input.TargetCapacitySpecification!.TotalTargetCapacity!;
      const instanceIds = Array.from({ length: n }, () => `i-${(this.next++).toString(16).padStart(17, '0')}`);
      const tags = Object.fromEntries(input.TagSpecifications![0].Tags!.map((t) => [t.Key!, t.Value!]));
      this.fleets.set(ClientToken!, { params, instanceIds, tags });
      return { FleetId: `fleet-${this.fleets.size}`, Instances: [{ InstanceIds: instanceIds, Lifecycle: 'spot' }] };
    });
    ec2Mock.on(DescribeInstancesCommand).callsFake(() => ({
      Reservations: this.visible
        ? [...this.fleets.values()].map((f) => ({
            Instances: f.instanceIds.map(
              (id): Instance => ({
                InstanceId: id,
                State: { Name: 'pending' },
                InstanceType: 'm6i.large',
                InstanceLifecycle: 'spot',
                Tags: Object.entries(f.tags).map(([Key, Value]) => ({ Key, Value })),
              }),
            ),
          }))
        : [],
    }));
  }
  instances(): number {
    return [...this.fleets.values()].reduce((n, f) => n + f.instanceIds.length, 0);
  }
}

/** A state store whose next save dies, as a Lambda killed between CreateFleet and PutParameter. */
class CrashingStore extends MemoryStateStore {
  crashNextSave = false;
  override async save(s: ControllerState): Promise<{ writes: number }> {
    if (this.crashNextSave) {
      this.crashNextSave = false;
      throw new Error('Task timed out after 60.00 seconds');
    }
    return super.save(s);
  }
}

function setup() {
  const config = testConfig();
  const clock = new ManualClock();
  const log = new MemoryLogger();
  const store = new CrashingStore(log);
  const ec2 = new TokenHonouringEc2();
  ec2.install();
  const fleet = new Ec2Fleet({ ec2: new EC2Client({ region: 'us-east-1' }), config, stage: 'test', now: () => clock.now(), retryEnv: { sleep: async () => {}, random: () => 0.5 } });
  const deps: ReconcileDeps = { config, stage: 'test', fleet, store, clock, log };
  let n = 0;
  const pass = () => reconcilePass(deps, { events: [], trigger: 'schedule', passId: `p${++n}` });
  const tokens = () => ec2Mock.commandCalls(CreateFleetCommand).map((c) => c.args[0].input.ClientToken);
  return { config, clock, log, store, ec2, pass, tokens };
}

async function seed(store: MemoryStateStore, epoch: string, generation: number) {
  const s = emptyState();
  s.epoch = epoch;
  s.generation = generation;
  await store.save(s);
}

beforeEach(() => ec2Mock.reset());

describe('a pass that dies after CreateFleet and before its save', () => {
  test('its re-run sends the same ClientToken; EC2 answers IdempotentParameterMismatch and no second fleet is launched', async () => {
    const { clock, store, ec2, pass, tokens, log } = setup();
    await seed(store, 'm1', 5);

    store.crashNextSave = true;
    await expect(pass()).rejects.toThrow(/timed out/);
    expect(ec2.instances()).toBe(2); // IdleCount 2, launched, state not saved

    // Redelivery / next tick from the same stored state; DescribeInstances does not show the launch yet.
    clock.advance(60);
    const r = await pass();
    expect(tokens()).toHaveLength(2);
    expect(tokens()[1]).toBe(tokens()[0]);
    expect(tokens()[0]).toBe(launchClientToken('ci', 'test', 'docker', 'm1', 5));
    expect(ec2.instances()).toBe(2);
    expect(r.launched).toEqual({});
    expect(r.launchErrors).toEqual([]); // not a launch failure: no backoff, no pause
    expect(r.decisions.join('\n')).toMatch(/pool docker: a launch from an earlier pass that did not save its state may be in flight \(CreateFleet IdempotentParameterMismatch for launch m1-g5\); 2 held as booting/);
    expect(log.at('warn').some((m) => /may be in flight/.test(m))).toBe(true);
    const saved = await store.load();
    expect(saved.generation).toBe(6);
    expect(saved.backoffs).toEqual({});
    expect(saved.inflight).toEqual([{ pool: 'docker', passId: 'm1-g5', at: clock.now(), count: 2 }]);

    // Still invisible: the guard holds, nothing is launched.
    clock.advance(60);
    expect((await pass()).launched).toEqual({});
    expect(tokens()).toHaveLength(2);

    // The crashed pass's instances appear, tagged with its launch id: adopted, nothing launched.
    ec2.visible = true;
    clock.advance(60);
    const adopted = await pass();
    expect(adopted.launched).toEqual({});
    expect(adopted.plan.pools[0].launch).toBe(0);
    expect(tokens()).toHaveLength(2);
    expect(ec2.instances()).toBe(2);
  });

  test('a re-run sending exactly the same request gets the first fleet back from EC2', async () => {
    const { store, ec2, pass, tokens } = setup();
    await seed(store, 'm1', 5);
    store.crashNextSave = true;
    await expect(pass()).rejects.toThrow(/timed out/);
    // Same clock, same state: the same parameters (tags included), so EC2 returns the first fleet.
    const r = await pass();
    expect(tokens()).toEqual([tokens()[0], tokens()[0]]);
    expect(ec2.instances()).toBe(2);
    expect(r.launched).toEqual({ docker: 2 });
    expect((await store.load()).inflight).toEqual([expect.objectContaining({ passId: 'm1-g5', count: 2 })]);
  });

  test('after a successful save the next launch uses a new token; passes that launch nothing keep the generation and write nothing', async () => {
    const { clock, store, ec2, pass, tokens } = setup();
    await seed(store, 'm1', 5);
    await pass();
    expect((await store.load()).generation).toBe(6);
    ec2.visible = true;
    clock.advance(30);
    const quiet = await pass();
    expect(quiet.stateWrites).toBe(0);
    expect((await store.load()).generation).toBe(6);
    // The workers vanish (terminated behind our back): the replacement launch gets a new token.
    ec2.fleets.clear();
    clock.advance(300);
    await pass();
    expect(tokens()).toHaveLength(2);
    expect(tokens()[1]).toBe(launchClientToken('ci', 'test', 'docker', 'm1', 6));
    expect(tokens()[1]).not.toBe(tokens()[0]);
    expect((await store.load()).generation).toBe(7);
  });

  test('instances of another pass launched within the grace are counted: a pass that lost its in-flight record adopts them', async () => {
    const { clock, store, ec2, pass, tokens } = setup();
    await seed(store, 'm1', 5);
    store.crashNextSave = true;
    await expect(pass()).rejects.toThrow(/timed out/);
    ec2.visible = true; // discovery shows the crashed pass's instances, tagged with its launch id
    clock.advance(20);
    const r = await pass();
    expect(r.plan.pools[0].launch).toBe(0);
    expect(tokens()).toHaveLength(1);
    expect(ec2.instances()).toBe(2);
  });

  test('a fresh state starts an epoch from the clock, so tokens of an earlier state lifetime are not reused', async () => {
    const { clock, pass, tokens, store } = setup();
    const r = await pass();
    const s = await store.load();
    expect(s.epoch).toBe(clock.now().toString(36));
    expect(r.launchId).toBe(`${s.epoch}-g0`);
    expect(tokens()[0]).toBe(launchClientToken('ci', 'test', 'docker', s.epoch, 0));
    expect(tokens()[0]!.length).toBeLessThanOrEqual(61); // 64-character limit with the adapter's "-od"
    expect(ec2Mock.commandCalls(CreateFleetCommand)[0].args[0].input.TagSpecifications![0].Tags).toContainEqual({ Key: TAGS.pass, Value: r.launchId });
  });
});

describe('time budget of a pass', () => {
  const twoPools = () =>
    testConfig({}, [
      { name: 'docker', tags: ['docker'], IdleCount: 0, worker: { instanceTypes: ['m6i.large'], subnets: ['subnet-0a'], ami: 'ami-0123456789abcdef0' } },
      { name: 'arm', tags: ['arm64'], IdleCount: 0, worker: { instanceTypes: ['m7g.large'], subnets: ['subnet-0a'], ami: 'ami-0123456789abcdef0' } },
    ]);

  afterEach(() => jest.useRealTimers());

  test('a GitLab that hangs uses at most its share of the time: the pass still launches for routed demand and saves', async () => {
    jest.useFakeTimers();
    const { FakeFleet } = await import('./fixtures');
    const clock = new ManualClock();
    const log = new MemoryLogger();
    const store = new MemoryStateStore(log);
    const fleet = new FakeFleet(clock);
    // 150 untagged jobs in 150 projects: six listing requests of 25 projects, four at a time. The
    // first answers; the others never do (a GitLab stuck behind a load balancer).
    const api = new FakeGitLabApi(clock);
    for (let p = 1; p <= 150; p++) api.add(p, { projectId: p, status: 'pending', tags: ['docker'] });
    api.hangAfter = 1;
    const deadline = Date.now() + 55_000;
    const deps: ReconcileDeps = { config: twoPools(), stage: 'test', fleet, store, clock, log, gitlab: gitlabSide(api), options: { remainingMs: () => deadline - Date.now() } };
    const ev = (jobId: number, projectId: number, tags?: string[]): JobEvent => ({ jobId, projectId, status: 'pending', receivedAt: clock.now() - 5000, ...(tags ? { tags } : {}) });
    const events = [...Array.from({ length: 150 }, (_, k) => ev(k + 1, k + 1)), ev(1000, 999, ['arm64'])];
    const running = reconcilePass(deps, { events, trigger: 'queue', passId: 'p1' });
    let done = false;
    void running.finally(() => (done = true));
    await jest.advanceTimersByTimeAsync(21_000);
    expect(done).toBe(false); // within 40 % of 55 s, the pass waits for GitLab
    await jest.advanceTimersByTimeAsync(1_000);
    const r = await running;
    expect(api.requests).toBe(4); // the first four; none started once the budget was used
    expect(r.gitlabOutOfTime).toBe(true);
    expect(r.launched).toEqual({ docker: 25, arm: 1 });
    expect(r.decisions.join('\n')).toMatch(/GitLab API time budget used up \(40 % of the pass's time\)/);
    const s = await store.load();
    expect(s.jobs.get(1)?.pool).toBe('docker');
    expect([26, 100, 150].map((id) => s.jobs.get(id)?.pool)).toEqual(['', '', '']); // unrouted, for the next pass
  });

  test('with time to spare, a prompt GitLab is never cut short', async () => {
    const { FakeFleet } = await import('./fixtures');
    const clock = new ManualClock();
    const log = new MemoryLogger();
    const api = new FakeGitLabApi(clock);
    for (const id of [1, 2, 3]) api.add(id, { projectId: 9, status: 'pending', tags: ['arm64'] });
    const deps: ReconcileDeps = { config: twoPools(), stage: 'test', fleet: new FakeFleet(clock), store: new MemoryStateStore(log), clock, log, gitlab: gitlabSide(api), options: { remainingMs: () => 50_000 } };
    const r = await reconcilePass(deps, { events: [1, 2, 3].map((jobId) => ({ jobId, projectId: 9, status: 'pending', receivedAt: clock.now() })), trigger: 'queue' });
    expect(r.gitlabOutOfTime).toBe(false);
    expect(r.launched).toEqual({ arm: 3 });
    expect(api.requests).toBe(1);
  });
});
