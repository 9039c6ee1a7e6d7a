import { mockClient } from 'aws-sdk-client-mock';
import {
  CreateFleetCommand,
  CreateTagsCommand,
  DescribeInstancesCommand,
  DescribeInstanceStatusCommand,
  DescribeLaunchTemplateVersionsCommand,
  EC2Client,
  TerminateInstancesCommand,
  type Instance,
} from '@aws-sdk/client-ec2';
import { classifyLaunchError, Ec2Fleet, launchTemplateProblems, workerFromInstance } from '../../lib/aws/ec2-fleet';
import { reconcilePass } from '../../lib/controller/reconcile';
import { MemoryStateStore } from '../../lib/controller/state';
import { TAGS } from '../../lib/controller/tags';
import type { RetryEnv } from '../../lib/aws/retry';
import { ManualClock, MemoryLogger, testConfig, launchTemplateVersions } from './fixtures';

const ec2Mock = mockClient(EC2Client);
const config = testConfig();
const pool = config.pools[0];
const GOOD_TEMPLATE = launchTemplateVersions(7);

function throttle(): Error {
  return Object.assign(new Error('Request limit exceeded.'), { name: 'RequestLimitExceeded', $metadata: { httpStatusCode: 503 } });
}

function fleetUnderTest(sleeps: number[] = []) {
  const env: RetryEnv = { sleep: async (ms) => void sleeps.push(ms), random: () => 0.5 };
  const stats = { attempts: 0, waitedMs: 0 };
  const fleet = new Ec2Fleet({ ec2: new EC2Client({ region: 'us-east-1' }), config, stage: 'test', retryEnv: env, now: () => Date.parse('2025-03-03T10:00:00Z'), stats });
  return { fleet, stats, sleeps };
}

const req = (count: number, avoid: { instanceType: string; subnet: string; market?: 'spot' | 'on-demand' }[] = []) => ({ pool, count, passId: 'p1', clientToken: 'p1-docker', avoid });

beforeEach(() => {
  ec2Mock.reset();
  ec2Mock.on(DescribeLaunchTemplateVersionsCommand).resolves(GOOD_TEMPLATE);
});

describe('error classes', () => {
  test.each([
    ['InsufficientInstanceCapacity', 'capacity'],
    ['UnfulfillableCapacity', 'capacity'],
    ['MaxSpotInstanceCountExceeded', 'capacity'],
    ['VcpuLimitExceeded', 'quota'],
    ['InstanceLimitExceeded', 'quota'],
    ['RequestLimitExceeded', 'throttling'],
    ['InvalidParameterValue', 'invalid'],
    ['InvalidLaunchTemplateName.NotFoundException', 'invalid'],
    ['UnauthorizedOperation', 'invalid'],
    ['InternalError', 'other'],
  ])('%s is %s', (code, cls) => expect(classifyLaunchError(code)).toBe(cls));
});

describe('launch', () => {
  test('one CreateFleet for the whole count: instant, price-capacity-optimized, types x subnets minus cooldowns, ClientToken, tags', async () => {
    ec2Mock.on(CreateFleetCommand).resolves({
      Instances: [{ InstanceIds: ['i-1', 'i-2', 'i-3'], InstanceType: 'm5.large', Lifecycle: 'spot', LaunchTemplateAndOverrides: { Overrides: { InstanceType: 'm5.large', SubnetId: 'subnet-0b' } } }],
    });
    const { fleet } = fleetUnderTest();
    const r = await fleet.launch(req(3, [{ instanceType: 'm6i.large', subnet: 'subnet-0a', market: 'spot' }]));
    expect(r.errors).toEqual([]);
    expect(r.launched.map((w) => [w.id, w.market, w.instanceType, w.state])).toEqual([
      ['i-1', 'spot', 'm5.large', 'booting'],
      ['i-2', 'spot', 'm5.large', 'booting'],
      ['i-3', 'spot', 'm5.large', 'booting'],
    ]);
    const calls = ec2Mock.commandCalls(CreateFleetCommand);
    expect(calls).toHaveLength(1);
    const input = calls[0].args[0].input;
    expect(input.Type).toBe('instant');
    expect(input.ClientToken).toBe('p1-docker');
    expect(input.SpotOptions?.AllocationStrategy).toBe('price-capacity-optimized');
    expect(input.TargetCapacitySpecification).toMatchObject({ TotalTargetCapacity: 3, DefaultTargetCapacityType: 'spot' });
    expect(input.LaunchTemplateConfigs![0].LaunchTemplateSpecification).toEqual({ LaunchTemplateName: 'gitlab-spot-autoscaler-ci-test-docker', Version: '7' });
    expect(input.LaunchTemplateConfigs![0].Overrides!.map((o) => `${o.InstanceType}/${o.SubnetId}`)).toEqual(['m6i.large/subnet-0b', 'm5.large/subnet-0a', 'm5.large/subnet-0b']);
    const tags = Object.fromEntries(input.TagSpecifications![0].Tags!.map((t) => [t.Key, t.Value]));
    expect(tags).toMatchObject({ [TAGS.deployment]: 'ci', [TAGS.stage]: 'test', [TAGS.pool]: 'docker', [TAGS.pass]: 'p1', [TAGS.launchedAt]: '2025-03-03T10:00:00.000Z', [TAGS.templateVersion]: '7' });
    expect(r.launched.every((w) => w.templateVersion === '7')).toBe(true);
    // The version the pool launches from, from the same cached template check: no second call.
    const describes = ec2Mock.commandCalls(DescribeLaunchTemplateVersionsCommand).length;
    expect(await fleet.currentTemplateVersion(req(1, []).pool)).toBe('7');
    expect(ec2Mock.commandCalls(DescribeLaunchTemplateVersionsCommand)).toHaveLength(describes);
  });

  test('partial spot fulfilment: errors classified per override, the remainder on on-demand', async () => {
    ec2Mock
      .on(CreateFleetCommand, { TargetCapacitySpecification: { DefaultTargetCapacityType: 'spot' } } as never)
      .resolves({
        Instances: [{ InstanceIds: ['i-1'], Lifecycle: 'spot', LaunchTemplateAndOverrides: { Overrides: { InstanceType: 'm5.large', SubnetId: 'subnet-0a' } } }],
        Errors: [
          { ErrorCode: 'InsufficientInstanceCapacity', ErrorMessage: 'none', Lifecycle: 'spot', LaunchTemplateAndOverrides: { Overrides: { InstanceType: 'm6i.large', SubnetId: 'subnet-0b' } } },
        ],
      })
      .on(CreateFleetCommand, { TargetCapacitySpecification: { DefaultTargetCapacityType: 'on-demand' } } as never)
      .resolves({ Instances: [{ InstanceIds: ['i-2', 'i-3'], Lifecycle: 'on-demand', LaunchTemplateAndOverrides: { Overrides: { InstanceType: 'm6i.large', SubnetId: 'subnet-0a' } } }] });
    const { fleet } = fleetUnderTest();
    const r = await fleet.launch(req(3));
    expect(r.launched.map((w) => w.market)).toEqual(['spot', 'on-demand', 'on-demand']);
    expect(r.errors).toEqual([{ class: 'capacity', code: 'InsufficientInstanceCapacity', message: 'none', instanceType: 'm6i.large', subnet: 'subnet-0b', market: 'spot' }]);
    const od = ec2Mock.commandCalls(CreateFleetCommand)[1].args[0].input;
    expect(od.TargetCapacitySpecification).toMatchObject({ TotalTargetCapacity: 2, OnDemandTargetCapacity: 2 });
    expect(od.ClientToken).toBe('p1-docker-od');
  });

  test('no on-demand fallback when the pool forbids it, or after an invalid request', async () => {
    ec2Mock.on(CreateFleetCommand).resolves({ Errors: [{ ErrorCode: 'InvalidParameterValue', ErrorMessage: 'bad', Lifecycle: 'spot' }] });
    const { fleet } = fleetUnderTest();
    const r = await fleet.launch(req(2));
    expect(r.errors[0].class).toBe('invalid');
    expect(ec2Mock.commandCalls(CreateFleetCommand)).toHaveLength(1);

    ec2Mock.on(CreateFleetCommand).resolves({ Errors: [{ ErrorCode: 'InsufficientInstanceCapacity', ErrorMessage: 'none', Lifecycle: 'spot' }] });
    const noFallback = new Ec2Fleet({ ec2: new EC2Client({ region: 'us-east-1' }), config: testConfig({}, [{ ...config.pools[0], worker: { ...config.pools[0].worker, onDemandFallback: false } }]), stage: 'test' });
    const p = testConfig({}, [{ ...config.pools[0], worker: { ...config.pools[0].worker, onDemandFallback: false } }]).pools[0];
    await noFallback.launch({ ...req(2), pool: p });
    expect(ec2Mock.commandCalls(CreateFleetCommand)).toHaveLength(2);
  });

  test('throttling is retried with growing, jittered waits within a bounded budget', async () => {
    ec2Mock.on(CreateFleetCommand).rejects(throttle());
    const { fleet, sleeps } = fleetUnderTest();
    const r = await fleet.launch(req(2));
    expect(ec2Mock.commandCalls(CreateFleetCommand)).toHaveLength(4);
    expect(sleeps).toEqual([100, 200, 400]); // random 0.5 x 200 x 2^n
    expect(r.errors).toEqual([expect.objectContaining({ class: 'throttling', code: 'RequestLimitExceeded' })]);
  });

  test('throttling that clears is invisible to the caller', async () => {
    ec2Mock
      .on(CreateFleetCommand)
      .rejectsOnce(throttle())
      .resolves({ Instances: [{ InstanceIds: ['i-9'], Lifecycle: 'spot' }] });
    const { fleet } = fleetUnderTest();
    const r = await fleet.launch(req(1));
    expect(r.launched.map((w) => w.id)).toEqual(['i-9']);
    expect(r.errors).toEqual([]);
  });

  test('a launch template without IMDSv2, shutdown=terminate, encryption or instance profile is refused with every problem named', async () => {
    ec2Mock.on(DescribeLaunchTemplateVersionsCommand).resolves({ LaunchTemplateVersions: [{ VersionNumber: 1, LaunchTemplateData: { BlockDeviceMappings: [{ DeviceName: '/dev/xvda', Ebs: {} }] } }] });
    const { fleet } = fleetUnderTest();
    const r = await fleet.launch(req(1));
    expect(ec2Mock.commandCalls(CreateFleetCommand)).toHaveLength(0);
    expect(r.errors[0]).toMatchObject({ class: 'invalid', code: 'UnsafeLaunchTemplate' });
    // A refused template has no current version: nothing is retired for it.
    expect(await fleet.currentTemplateVersion(req(1).pool)).toBeUndefined();
    for (const what of [/HttpTokens .* must be "required"/, /InstanceInitiatedShutdownBehavior .* must be "terminate"/, /Encrypted must be true/, /IamInstanceProfile is not set/, /InstanceMetadataTags/])
      expect(r.errors[0].message).toMatch(what);
  });

  test('a missing launch template is an invalid error naming it', async () => {
    ec2Mock.on(DescribeLaunchTemplateVersionsCommand).rejects(Object.assign(new Error('not found'), { name: 'InvalidLaunchTemplateName.NotFoundException' }));
    const { fleet } = fleetUnderTest();
    const r = await fleet.launch(req(1));
    expect(r.errors[0]).toMatchObject({ class: 'invalid' });
    expect(r.errors[0].message).toMatch(/gitlab-spot-autoscaler-ci-test-docker does not exist/);
  });

  test('launchTemplateProblems accepts a compliant template', () => {
    expect(launchTemplateProblems(GOOD_TEMPLATE.LaunchTemplateVersions[0].LaunchTemplateData)).toEqual([]);
  });
});

/** Minute passes of the real reconcile pass over an Ec2Fleet on the mocked EC2 (no instances); the log they wrote. */
async function minutePasses(passes: number, cfg = config): Promise<MemoryLogger> {
  ec2Mock.on(DescribeInstancesCommand).resolves({ Reservations: [] });
  const clock = new ManualClock();
  const log = new MemoryLogger();
  const fleet = new Ec2Fleet({ ec2: new EC2Client({ region: 'us-east-1' }), config: cfg, stage: 'test', now: () => clock.now(), retryEnv: { sleep: async () => {}, random: () => 0.5 } });
  const deps = { config: cfg, stage: 'test', fleet, store: new MemoryStateStore(log), clock, log };
  for (let i = 0; i < passes; i++) {
    await reconcilePass(deps, { events: [], trigger: 'schedule' });
    clock.advance(60);
  }
  return log;
}

describe('no retry loops across passes', () => {
  test.each([
    ['InvalidParameterValue', 1],
    // Backoff 2, 4, 8, 16, 32 min, then hourly: about 29 calls in a day instead of 1,440.
    ['VcpuLimitExceeded', 30],
  ])('CreateFleet failing with %s for 24 h of minute passes costs at most %i calls', async (code, max) => {
    ec2Mock.on(CreateFleetCommand).resolves({ Errors: [{ ErrorCode: code, ErrorMessage: 'permanent', Lifecycle: 'spot' }] });
    ec2Mock.on(DescribeInstancesCommand).resolves({ Reservations: [] });
    const clock = new ManualClock();
    const log = new MemoryLogger();
    const fleet = new Ec2Fleet({ ec2: new EC2Client({ region: 'us-east-1' }), config: testConfig({}, [{ ...config.pools[0], worker: { ...config.pools[0].worker, onDemandFallback: false } }]), stage: 'test', now: () => clock.now() });
    const deps = { config: testConfig({}, [{ ...config.pools[0], worker: { ...config.pools[0].worker, onDemandFallback: false } }]), stage: 'test', fleet, store: new MemoryStateStore(log), clock, log };
    for (let i = 0; i < 24 * 60; i++) {
      await reconcilePass(deps, { events: [], trigger: 'schedule' });
      clock.advance(60);
    }
    const calls = ec2Mock.commandCalls(CreateFleetCommand).length;
    expect(calls).toBeGreaterThanOrEqual(1);
    expect(calls).toBeLessThanOrEqual(max);
  });

  test('permanent throttling of CreateFleet is bounded per pass and backed off across passes', async () => {
    ec2Mock.on(CreateFleetCommand).rejects(throttle());
    await minutePasses(60);
    // Backoff 30 s, 60, 120, 240, 480, 900, 900 ... in one hour of minute passes at most 9 passes
    // try, 4 attempts each, instead of 60 x 4.
    expect(ec2Mock.commandCalls(CreateFleetCommand).length).toBeLessThanOrEqual(9 * 4);
  });
});

describe('a launch IAM refuses', () => {
  // What EC2 answers when the reconcile role's launch grants do not cover a fleet's RunInstances
  // check (for instance if EC2 leaves ec2:LaunchTemplate out of it): per override in Errors, or thrown.
  const denied = 'You are not authorized to perform this operation. Encoded authorization failure message: AbCdEf0123';

  test.each([
    ['in the fleet\'s Errors', () => ec2Mock.on(CreateFleetCommand).resolves({ Errors: [{ ErrorCode: 'UnauthorizedOperation', ErrorMessage: denied, Lifecycle: 'spot' }] })],
    ['thrown by CreateFleet', () => ec2Mock.on(CreateFleetCommand).rejects(Object.assign(new Error(denied), { name: 'UnauthorizedOperation', $metadata: { httpStatusCode: 403 } }))],
  ])('%s: pauses the pool at once, and every pass says which statement and where the fix is', async (_where, arrange) => {
    arrange();
    const log = await minutePasses(3);
    expect(ec2Mock.commandCalls(CreateFleetCommand)).toHaveLength(1); // fast: one refusal, no retry loop
    const errors = log.at('error');
    const first = errors.find((m) => m.includes('launch rejected as invalid'))!;
    expect(first).toContain('RunOnlyTaggedWorkersOfConfiguredTypesFromOwnTemplates');
    expect(first).toContain('docs/deployment.md "A refused launch"');
    expect(first).toContain(denied); // AWS's message whole, with the part to decode
    // The later passes repeat it from the pause, which keeps 300 characters: the pointer must fit.
    const later = errors.filter((m) => m.includes('launch of') && m.includes('refused: paused'));
    expect(later.length).toBeGreaterThanOrEqual(2);
    for (const m of later) expect(m).toContain('docs/deployment.md "A refused launch"');
  });

  test('other launch errors keep their own message', async () => {
    ec2Mock.on(CreateFleetCommand).resolves({ Errors: [{ ErrorCode: 'InvalidParameterValue', ErrorMessage: 'bad', Lifecycle: 'spot' }] });
    const { fleet } = fleetUnderTest();
    expect((await fleet.launch(req(1))).errors[0].message).toBe('bad');
  });
});

describe('discover', () => {
  const inst = (id: string, state: string, tags: Record<string, string>, extra: Partial<Instance> = {}): Instance => ({
    InstanceId: id,
    State: { Name: state as 'running' },
    InstanceType: 'm5.large',
    SubnetId: 'subnet-0a',
    Placement: { AvailabilityZone: 'us-east-1a' },
    InstanceLifecycle: 'spot',
    LaunchTime: new Date('2025-03-03T09:00:00Z'),
    Tags: Object.entries({ [TAGS.deployment]: 'ci', [TAGS.stage]: 'test', [TAGS.pool]: 'docker', ...tags }).map(([Key, Value]) => ({ Key, Value })),
    ...extra,
  });

  test('maps worker-reported tags to states', () => {
    const none = new Set<string>();
    expect(workerFromInstance(inst('i-1', 'pending', {}), none).state).toBe('booting');
    expect(workerFromInstance(inst('i-1', 'running', {}), none).state).toBe('booting');
    const idle = workerFromInstance(inst('i-1', 'running', { [TAGS.ready]: '2025-03-03T09:01:00Z', [TAGS.state]: 'idle', [TAGS.idleSince]: '2025-03-03T09:30:00Z', [TAGS.builds]: '4' }), none);
    expect(idle).toMatchObject({ state: 'idle', idleSince: Date.parse('2025-03-03T09:30:00Z'), builds: 4, market: 'spot', zone: 'us-east-1a', subnet: 'subnet-0a' });
    expect(workerFromInstance(inst('i-1', 'running', { [TAGS.ready]: 'x', [TAGS.state]: 'busy' }), none).state).toBe('booting'); // unreadable ready
    expect(workerFromInstance(inst('i-1', 'running', { [TAGS.ready]: '2025-03-03T09:01:00Z', [TAGS.state]: 'busy' }), none).state).toBe('busy');
    const retiring = workerFromInstance(inst('i-1', 'running', { [TAGS.ready]: '2025-03-03T09:01:00Z', [TAGS.state]: 'busy', [TAGS.retire]: '2025-03-03T09:40:00Z' }), none);
    expect(retiring).toMatchObject({ state: 'retiring', retireRequestedAt: Date.parse('2025-03-03T09:40:00Z') });
    expect(workerFromInstance(inst('i-1', 'stopped', {}), none).problem).toBe('stopped');
    expect(workerFromInstance(inst('i-1', 'running', {}), new Set(['i-1'])).problem).toBe('impaired');
    const intr = workerFromInstance(inst('i-1', 'running', { [TAGS.interrupted]: 'interruption 2025-03-03T09:50:00Z' }), none);
    expect(intr).toMatchObject({ problem: 'interrupted', interruptedAt: Date.parse('2025-03-03T09:50:00Z'), interruptionKind: 'interruption' });
    expect(workerFromInstance(inst('i-1', 'running', {}, { InstanceLifecycle: undefined }), none).market).toBe('on-demand');
    expect(workerFromInstance(inst('i-1', 'running', { [TAGS.builds]: '-3' }), none).builds).toBe(0);
    expect(workerFromInstance(inst('i-1', 'running', { [TAGS.templateVersion]: '12' }), none).templateVersion).toBe('12');
    // Not a version number (a worker cannot set this tag, but never trust a tag): as if absent.
    expect(workerFromInstance(inst('i-1', 'running', { [TAGS.templateVersion]: '$Latest' }), none).templateVersion).toBeUndefined();
    expect(workerFromInstance(inst('i-1', 'running', {}), none).templateVersion).toBeUndefined();
  });

  test('reads every page, filters by deployment and stage tags, and checks status of running instances', async () => {
    ec2Mock
      .on(DescribeInstancesCommand)
      .resolvesOnce({ Reservations: [{ Instances: [inst('i-1', 'running', {})] }], NextToken: 'n1' })
      .resolvesOnce({ Reservations: [{ Instances: [inst('i-2', 'pending', {}), inst('i-3', 'running', {})] }] });
    // Moto ignores the status filters and answers with every status: the adapter checks them itself.
    ec2Mock.on(DescribeInstanceStatusCommand).resolves({
      InstanceStatuses: [
        { InstanceId: 'i-1', InstanceStatus: { Status: 'ok' }, SystemStatus: { Status: 'ok' } },
        { InstanceId: 'i-3', InstanceStatus: { Status: 'impaired' }, SystemStatus: { Status: 'ok' } },
      ],
    });
    const { fleet } = fleetUnderTest();
    const ws = await fleet.discover();
    expect(ws.map((w) => [w.id, w.problem])).toEqual([
      ['i-1', undefined],
      ['i-2', undefined],
      ['i-3', 'impaired'],
    ]);
    const first = ec2Mock.commandCalls(DescribeInstancesCommand)[0].args[0].input;
    expect(first.Filters).toEqual(
      expect.arrayContaining([
        { Name: `tag:${TAGS.deployment}`, Values: ['ci'] },
        { Name: `tag:${TAGS.stage}`, Values: ['test'] },
      ]),
    );
    expect(ec2Mock.commandCalls(DescribeInstancesCommand)[1].args[0].input.NextToken).toBe('n1');
    const status = ec2Mock.commandCalls(DescribeInstanceStatusCommand).map((c) => c.args[0].input);
    expect(status).toEqual([
      { Filters: [{ Name: 'instance-status.status', Values: ['impaired'] }], MaxResults: 1000, NextToken: undefined },
      { Filters: [{ Name: 'system-status.status', Values: ['impaired'] }], MaxResults: 1000, NextToken: undefined },
    ]);
  });

  test('2,000 workers: DescribeInstances in pages of 1000 and two filtered status calls, not one per 100 ids; the statuses are reused for a minute', async () => {
    const instances = Array.from({ length: 2000 }, (_, k) => inst(`i-${k.toString(16).padStart(17, '0')}`, 'running', { [TAGS.ready]: '2025-03-03T09:00:00Z', [TAGS.state]: 'busy' }));
    ec2Mock.on(DescribeInstancesCommand).callsFake((input: { NextToken?: string; MaxResults?: number }) => {
      const from = input.NextToken ? Number(input.NextToken) : 0;
      const to = from + (input.MaxResults ?? 1000);
      return { Reservations: [{ Instances: instances.slice(from, to) }], NextToken: to < instances.length ? String(to) : undefined };
    });
    ec2Mock.on(DescribeInstanceStatusCommand).callsFake((input: { Filters?: { Name: string }[] }) => ({
      InstanceStatuses: input.Filters?.[0].Name === 'system-status.status' ? [{ InstanceId: instances[5].InstanceId, InstanceStatus: { Status: 'ok' }, SystemStatus: { Status: 'impaired' } }] : [],
    }));
    let now = Date.parse('2025-03-03T10:00:00Z');
    const fleet = new Ec2Fleet({ ec2: new EC2Client({ region: 'us-east-1' }), config, stage: 'test', now: () => now });
    const ws = await fleet.discover();
    expect(ws).toHaveLength(2000);
    expect(ws.filter((w) => w.problem === 'impaired').map((w) => w.id)).toEqual([instances[5].InstanceId]);
    expect({ DescribeInstances: ec2Mock.commandCalls(DescribeInstancesCommand).length, DescribeInstanceStatus: ec2Mock.commandCalls(DescribeInstanceStatusCommand).length }).toEqual({ DescribeInstances: 2, DescribeInstanceStatus: 2 });
    now += 30_000;
    await fleet.discover();
    expect(ec2Mock.commandCalls(DescribeInstanceStatusCommand)).toHaveLength(2);
    now += 31_000;
    await fleet.discover();
    expect(ec2Mock.commandCalls(DescribeInstanceStatusCommand)).toHaveLength(4);
  });
});

describe('retire and terminate', () => {
  test('batches of 100; an unknown id in a batch falls back to one by one and is skipped', async () => {
    const ids = Array.from({ length: 150 }, (_, i) => `i-${String(i).padStart(17, '0')}`);
    ec2Mock
      .on(TerminateInstancesCommand)
      .callsFake((input: { InstanceIds: string[] }) => {
        if (input.InstanceIds.includes(ids[120])) throw Object.assign(new Error('gone'), { name: 'InvalidInstanceID.NotFound' });
        return {};
      });
    const { fleet } = fleetUnderTest();
    await fleet.terminate(ids.map((id) => ({ id, reason: 'test', kind: 'stopped-instance' as const })));
    const calls = ec2Mock.commandCalls(TerminateInstancesCommand).map((c) => c.args[0].input.InstanceIds!.length);
    expect(calls).toEqual([100, 50, ...Array(50).fill(1)]);
  });

  test('an unknown id that EC2 names in its message: the batch goes again without it, not one by one', async () => {
    const ids = Array.from({ length: 600 }, (_, i) => `i-${i.toString(16).padStart(17, '0')}`);
    const gone = [ids[7], ids[520]];
    ec2Mock.on(CreateTagsCommand).callsFake((input: { Resources: string[] }) => {
      const missing = input.Resources.filter((id) => gone.includes(id));
      if (missing.length) throw Object.assign(new Error(`The instance IDs '${missing.join(', ')}' do not exist`), { name: 'InvalidInstanceID.NotFound' });
      return {};
    });
    const { fleet } = fleetUnderTest();
    await fleet.requestRetirement(ids.map((id) => ({ id, reason: 'test', kind: 'surplus' as const })));
    const calls = ec2Mock.commandCalls(CreateTagsCommand).map((c) => c.args[0].input.Resources!);
    expect(calls.map((r) => r.length)).toEqual([500, 499, 100, 99]);
    expect(calls.flat().filter((id) => gone.includes(id))).toHaveLength(2); // only in the refused batches
  });

  test('worker reports: one CreateTags per tag set for many instances; a failed set says so', async () => {
    ec2Mock.on(CreateTagsCommand).callsFake((input: { Tags: { Key: string; Value: string }[] }) => {
      if (input.Tags.some((t) => t.Value === 'draining')) throw Object.assign(new Error('slow down'), { name: 'RequestLimitExceeded' });
      return {};
    });
    const { fleet } = fleetUnderTest();
    const busy = Array.from({ length: 700 }, (_, k) => `i-${k.toString(16).padStart(17, '0')}`);
    const ok = await fleet.recordWorkerState([
      { tags: { [TAGS.state]: 'busy' }, ids: busy },
      { tags: { [TAGS.state]: 'draining' }, ids: ['i-1'] },
    ]);
    expect(ok).toEqual([true, false]);
    const calls = ec2Mock.commandCalls(CreateTagsCommand).map((c) => c.args[0].input);
    expect(calls.filter((c) => c.Tags![0].Value === 'busy').map((c) => c.Resources!.length)).toEqual([500, 200]);
  });

  test('retirement is a tag with the request time', async () => {
    ec2Mock.on(CreateTagsCommand).resolves({});
    const { fleet } = fleetUnderTest();
    await fleet.requestRetirement([{ id: 'i-1', reason: 'idle' }, { id: 'i-2', reason: 'idle' }]);
    expect(ec2Mock.commandCalls(CreateTagsCommand)[0].args[0].input).toEqual({ Resources: ['i-1', 'i-2'], Tags: [{ Key: TAGS.retire, Value: '2025-03-03T10:00:00.000Z' }] });
    // A drain of 5,000 workers: 10 calls into CreateTags' account-wide bucket (100 burst), not 50.
    ec2Mock.resetHistory();
    await fleet.requestRetirement(Array.from({ length: 5000 }, (_, k) => ({ id: `i-${k}`, reason: 'drain' })));
    expect(ec2Mock.commandCalls(CreateTagsCommand).map((c) => c.args[0].input.Resources!.length)).toEqual(Array(10).fill(500));
  });

  test('markInstance tags only instances of this deployment and stage', async () => {
    ec2Mock.on(DescribeInstancesCommand, { InstanceIds: ['i-ours'] }).resolves({ Reservations: [{ Instances: [{ InstanceId: 'i-ours', State: { Name: 'running' }, Tags: [{ Key: TAGS.deployment, Value: 'ci' }, { Key: TAGS.stage, Value: 'test' }] }] }] });
    ec2Mock.on(DescribeInstancesCommand, { InstanceIds: ['i-other'] }).resolves({ Reservations: [{ Instances: [{ InstanceId: 'i-other', State: { Name: 'running' }, Tags: [{ Key: TAGS.deployment, Value: 'prod' }] }] }] });
    ec2Mock.on(DescribeInstancesCommand, { InstanceIds: ['i-gone'] }).rejects(Object.assign(new Error('x'), { name: 'InvalidInstanceID.NotFound' }));
    ec2Mock.on(CreateTagsCommand).resolves({});
    const { fleet } = fleetUnderTest();
    expect(await fleet.markInstance('i-ours', { a: 'b' })).toBe('tagged');
    expect(await fleet.markInstance('i-other', { a: 'b' })).toBe('not-ours');
    expect(await fleet.markInstance('i-gone', { a: 'b' })).toBe('gone');
    expect(ec2Mock.commandCalls(CreateTagsCommand)).toHaveLength(1);
  });
});
