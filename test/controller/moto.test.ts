/**
 * The controller against moto's EC2 and SSM over real HTTP with the real AWS SDK clients.
 * Each test uses its own stage, so tests share one moto server without seeing each other's
 * instances or state. Moto gaps (facts.md) shape a few checks: CreateFleet places every instance
 * on the first override, spot instances are running at once, and ClientToken is not honoured.
 */
import {
  CreateLaunchTemplateCommand,
  CreateTagsCommand,
  DescribeImagesCommand,
  DescribeInstancesCommand,
  DescribeSubnetsCommand,
  EC2Client,
  TerminateInstancesCommand,
  type Instance,
} from '@aws-sdk/client-ec2';
import { SSMClient } from '@aws-sdk/client-ssm';
import { validateConfig, type Config } from '../../lib/config';
import { Ec2Fleet, ensureLaunchTemplate } from '../../lib/aws/ec2-fleet';
import { SsmStateStore } from '../../lib/aws/ssm-state-store';
import { markInterrupted, reconcilePass, type PassReport } from '../../lib/controller/reconcile';
import { launchTemplateName, TAGS } from '../../lib/controller/tags';
import type { JobEvent } from '../../lib/controller/ports';
import { startMoto, motoClientConfig, type MotoServer } from '../helpers/moto';
import { ManualClock, MemoryLogger } from './fixtures';

jest.setTimeout(60_000);

let moto: MotoServer;
let ec2: EC2Client;
let ssm: SSMClient;
let subnets: string[];
let ami: string;
const calls = new Map<string, number>();
const createFleetInputs: { Overrides: { InstanceType?: string; SubnetId?: string }[] }[] = [];

/** Counts HTTP calls by command (every attempt; and keeps CreateFleet overrides), as an SDK middleware. */
const countingMiddleware: Parameters<EC2Client['middlewareStack']['add']>[0] = (next, context) => async (args) => {
  calls.set(context.commandName!, (calls.get(context.commandName!) ?? 0) + 1);
  if (context.commandName === 'CreateFleetCommand') {
    const input = args.input as { LaunchTemplateConfigs: { Overrides: { InstanceType?: string; SubnetId?: string }[] }[] };
    createFleetInputs.push({ Overrides: input.LaunchTemplateConfigs[0].Overrides });
  }
  return next(args);
};
function countCalls(client: EC2Client | SSMClient) {
  (client.middlewareStack as EC2Client['middlewareStack']).add(countingMiddleware, { step: 'deserialize', name: 'countCalls' });
}
const count = (name: string) => calls.get(name) ?? 0;

beforeAll(async () => {
  moto = await startMoto();
  ec2 = new EC2Client(motoClientConfig(moto.endpoint));
  ssm = new SSMClient(motoClientConfig(moto.endpoint));
  countCalls(ec2);
  countCalls(ssm);
  subnets = ((await ec2.send(new DescribeSubnetsCommand({}))).Subnets ?? []).map((s) => s.SubnetId!).slice(0, 3);
  ami = (await ec2.send(new DescribeImagesCommand({ Owners: ['amazon'] }))).Images![0].ImageId!;
});

afterAll(async () => {
  ec2?.destroy();
  ssm?.destroy();
  await moto?.stop();
});

function makeConfig(pools: Record<string, unknown>[]): Config {
  return validateConfig({
    deployment: 'ci',
    gitlab: { url: 'https://gitlab.example.com' },
    pools: pools.map((p) => ({ worker: { instanceTypes: ['m6i.large', 'm5.large'], subnets, ami }, ...p })),
  });
}

/** One deployment stage driven the way the reconcile Lambda drives it: fresh store per pass. */
async function stageUnderTest(stage: string, config: Config) {
  for (const pool of config.pools)
    await ensureLaunchTemplate(ec2, { config, stage, pool, userData: '#!/bin/bash\necho worker\n', instanceProfile: 'gitlab-worker' });
  const clock = new ManualClock(Date.now());
  const log = new MemoryLogger();
  const fleet = new Ec2Fleet({ ec2, config, stage, log, now: () => clock.now() });
  const pass = async (events: JobEvent[] = [], trigger: 'queue' | 'schedule' | 'manual' = 'schedule'): Promise<PassReport> => {
    const store = new SsmStateStore({ ssm, config, stage, log });
    return reconcilePass({ config, stage, fleet, store, clock, log }, { events, trigger });
  };
  const instances = async (): Promise<Instance[]> => {
    const out = await ec2.send(
      new DescribeInstancesCommand({
        Filters: [
          { Name: `tag:${TAGS.stage}`, Values: [stage] },
          { Name: 'instance-state-name', Values: ['pending', 'running'] },
        ],
      }),
    );
    return (out.Reservations ?? []).flatMap((r) => r.Instances ?? []);
  };
  return { clock, log, fleet, pass, instances };
}

const tagOf = (i: Instance, key: string) => i.Tags?.find((t) => t.Key === key)?.Value;

/** What a worker does on its own instance (docs/controller.md): ready + idle, or busy. */
async function reportAs(ids: string[], state: 'idle' | 'busy', at: number) {
  const iso = new Date(at).toISOString();
  await ec2.send(
    new CreateTagsCommand({
      Resources: ids,
      Tags: [
        { Key: TAGS.ready, Value: iso },
        { Key: TAGS.state, Value: state },
        { Key: TAGS.idleSince, Value: iso },
        { Key: TAGS.builds, Value: state === 'busy' ? '1' : '0' },
      ],
    }),
  );
}

test('from an empty account to IdleCount workers; a second pass changes nothing; a worker terminated behind our back is replaced', async () => {
  const config = makeConfig([{ name: 'docker', runUntagged: true, IdleCount: 3, limit: 10 }]);
  const s = await stageUnderTest('idle', config);
  const r1 = await s.pass();
  expect(r1.launched).toEqual({ docker: 3 });
  let live = await s.instances();
  expect(live).toHaveLength(3);
  for (const i of live) {
    expect(tagOf(i, TAGS.pool)).toBe('docker');
    expect(tagOf(i, TAGS.deployment)).toBe('ci');
    expect(tagOf(i, TAGS.pass)).toBe(r1.launchId);
    expect(tagOf(i, TAGS.launchedAt)).toBe(new Date(s.clock.now()).toISOString());
  }

  // Second pass: the workers are booting (IdleCount is counted over booting + idle): nothing to do.
  const fleetsBefore = count('CreateFleetCommand');
  const putsBefore = count('PutParameterCommand');
  s.clock.advance(30);
  const r2 = await s.pass();
  expect(r2.launched).toEqual({});
  expect(r2.decisions).toEqual([]);
  expect(count('CreateFleetCommand')).toBe(fleetsBefore);
  expect(count('PutParameterCommand')).toBe(putsBefore);
  expect(r2.stateWrites).toBe(0);

  // Workers report ready; one is terminated behind the controller's back.
  await reportAs(live.map((i) => i.InstanceId!), 'idle', s.clock.now());
  await ec2.send(new TerminateInstancesCommand({ InstanceIds: [live[0].InstanceId!] }));
  s.clock.advance(30);
  const r3 = await s.pass();
  expect(r3.launched).toEqual({ docker: 1 });
  live = await s.instances();
  expect(live).toHaveLength(3);
});

test('500 pending jobs in one pass: one CreateFleet per pool, a handful of SSM writes, limit never exceeded', async () => {
  const config = makeConfig([
    { name: 'docker', tags: ['docker'], runUntagged: true, limit: 40 },
    { name: 'arm', tags: ['arm64'], limit: 25, worker: { instanceTypes: ['m7g.large', 'c7g.large'], subnets, ami } },
  ]);
  const s = await stageUnderTest('burst', config);
  const t = s.clock.now();
  const events: JobEvent[] = Array.from({ length: 500 }, (_, k) => ({
    jobId: 9_000_000 + k,
    projectId: 12,
    status: 'pending',
    receivedAt: t - 1000,
    tags: k % 5 === 0 ? ['arm64'] : ['docker'],
  }));
  const fleetsBefore = count('CreateFleetCommand');
  const putsBefore = count('PutParameterCommand');
  const r = await s.pass(events, 'queue');
  expect(count('CreateFleetCommand') - fleetsBefore).toBe(2);
  expect(r.launched).toEqual({ docker: 40, arm: 25 });
  const writes = count('PutParameterCommand') - putsBefore;
  expect(writes).toBe(r.stateWrites);
  expect(writes).toBeGreaterThanOrEqual(1);
  expect(writes).toBeLessThanOrEqual(4);

  // More passes while the jobs still wait: the limits hold.
  for (let k = 0; k < 3; k++) {
    s.clock.advance(20);
    const again = await s.pass();
    expect(again.launched).toEqual({});
  }
  const live = await s.instances();
  expect(live.filter((i) => tagOf(i, TAGS.pool) === 'docker')).toHaveLength(40);
  expect(live.filter((i) => tagOf(i, TAGS.pool) === 'arm')).toHaveLength(25);

  // State survived in SSM: a fresh store sees the 500 jobs.
  const store = new SsmStateStore({ ssm, config, stage: 'burst' });
  expect((await store.load()).jobs.size).toBe(500);
});

test('a busy worker is never terminated or asked to retire; idle ones past IdleTime are asked to retire', async () => {
  const config = makeConfig([{ name: 'docker', runUntagged: true, IdleCount: 0, IdleTime: 300, limit: 10 }]);
  const s = await stageUnderTest('busy', config);
  const t = s.clock.now();
  await s.pass([1, 2, 3].map((k) => ({ jobId: 100 + k, projectId: 5, status: 'pending', receivedAt: t })), 'queue');
  const live = await s.instances();
  expect(live).toHaveLength(3);
  const [busy, idle1, idle2] = live.map((i) => i.InstanceId!);
  await reportAs([busy], 'busy', t);
  await reportAs([idle1, idle2], 'idle', t);
  // Job 101 runs on the busy worker; the two others finished.
  s.clock.advance(600);
  const later = s.clock.now();
  const r = await s.pass(
    [
      { jobId: 101, projectId: 5, status: 'running', receivedAt: later },
      { jobId: 102, projectId: 5, status: 'success', receivedAt: later },
      { jobId: 103, projectId: 5, status: 'success', receivedAt: later },
    ],
    'queue',
  );
  expect(r.retired.map((x) => x.id).sort()).toEqual([idle1, idle2].sort());
  expect(r.terminated).toEqual([]);
  const after = await s.instances();
  const busyNow = after.find((i) => i.InstanceId === busy)!;
  expect(busyNow.State?.Name).toBe('running');
  expect(tagOf(busyNow, TAGS.retire)).toBeUndefined();
  for (const id of [idle1, idle2]) expect(tagOf(after.find((i) => i.InstanceId === id)!, TAGS.retire)).toBe(new Date(later).toISOString());

  // The pool is removed from the config while the worker is busy: still not terminated.
  const other = makeConfig([{ name: 'other', runUntagged: true, IdleCount: 0 }]);
  await ensureLaunchTemplate(ec2, { config: other, stage: 'busy', pool: other.pools[0], userData: '#!/bin/bash\n', instanceProfile: 'gitlab-worker' });
  const r2 = await reconcilePass(
    { config: other, stage: 'busy', fleet: new Ec2Fleet({ ec2, config: other, stage: 'busy' }), store: new SsmStateStore({ ssm, config: other, stage: 'busy' }), clock: s.clock, log: s.log },
    { events: [], trigger: 'schedule' },
  );
  expect(r2.terminated.map((x) => x.id)).not.toContain(busy);
  expect((await s.instances()).find((i) => i.InstanceId === busy)?.State?.Name).toBe('running');
});

test('an interrupted worker is replaced and CreateFleet leaves its instance type / subnet out while it cools down', async () => {
  const config = makeConfig([{ name: 'docker', runUntagged: true, IdleCount: 2, limit: 10 }]);
  const s = await stageUnderTest('interrupt', config);
  await s.pass();
  const live = await s.instances();
  await reportAs(live.map((i) => i.InstanceId!), 'idle', s.clock.now());
  const victim = live[0];
  const out = await markInterrupted({ fleet: s.fleet, clock: s.clock, log: s.log }, { instanceId: victim.InstanceId!, kind: 'interruption' });
  expect(out).toMatchObject({ action: 'tagged', wakeReconcile: true });
  const before = createFleetInputs.length;
  s.clock.advance(10);
  const r = await s.pass([], 'schedule');
  expect(r.launched).toEqual({ docker: 1 });
  const overrides = createFleetInputs[before].Overrides.map((o) => `${o.InstanceType}/${o.SubnetId}`);
  expect(overrides).not.toContain(`${victim.InstanceType}/${victim.SubnetId}`);
  expect(overrides.length).toBe(2 * subnets.length - 1);

  // Instances of another stage are not ours to tag.
  const foreign = await markInterrupted({ fleet: new Ec2Fleet({ ec2, config, stage: 'elsewhere' }), clock: s.clock, log: s.log }, { instanceId: victim.InstanceId!, kind: 'interruption' });
  expect(foreign.action).toBe('not-ours');
});

test('a launch template without IMDSv2 is refused: no CreateFleet, the pool is paused and says why', async () => {
  const config = makeConfig([{ name: 'docker', runUntagged: true, IdleCount: 1 }]);
  const stage = 'unsafe';
  await ec2.send(
    new CreateLaunchTemplateCommand({
      LaunchTemplateName: launchTemplateName('ci', stage, 'docker'),
      LaunchTemplateData: { ImageId: ami, InstanceInitiatedShutdownBehavior: 'terminate', IamInstanceProfile: { Name: 'w' }, BlockDeviceMappings: [{ DeviceName: '/dev/xvda', Ebs: { Encrypted: true } }] },
    }),
  );
  const clock = new ManualClock(Date.now());
  const log = new MemoryLogger();
  const fleet = new Ec2Fleet({ ec2, config, stage, now: () => clock.now() });
  const before = count('CreateFleetCommand');
  for (let k = 0; k < 5; k++) {
    await reconcilePass({ config, stage, fleet, store: new SsmStateStore({ ssm, config, stage, log }), clock, log }, { events: [], trigger: 'schedule' });
    clock.advance(60);
  }
  expect(count('CreateFleetCommand')).toBe(before);
  expect(log.at('error').join('\n')).toMatch(/HttpTokens .* must be "required" \(IMDSv2\)/);
  expect(log.at('error').join('\n')).toMatch(/pool docker: launch of 1 refused: paused/);
});

test('a changed launch template: idle workers get the retire tag, replacements launch from the new version, busy workers are untouched', async () => {
  const config = makeConfig([{ name: 'docker', runUntagged: true, IdleCount: 3, IdleTime: 3600, limit: 10 }]);
  const s = await stageUnderTest('template', config);
  const r1 = await s.pass();
  expect(r1.launched).toEqual({ docker: 3 });
  expect(r1.templateVersions).toEqual({ docker: '1' });
  const first = await s.instances();
  expect(first.map((i) => tagOf(i, TAGS.templateVersion))).toEqual(['1', '1', '1']);
  const [busy, idle1, idle2] = first.map((i) => i.InstanceId!);
  await reportAs([busy], 'busy', s.clock.now());
  await reportAs([idle1, idle2], 'idle', s.clock.now());

  // Same template: nothing to do.
  s.clock.advance(30);
  const r2 = await s.pass();
  expect(r2.retired).toEqual([]);
  expect(r2.launched).toEqual({ docker: 1 }); // the busy worker no longer counts for IdleCount 3

  // New user data: a new template version, made the default.
  const pool = config.pools[0];
  const updated = await ensureLaunchTemplate(ec2, { config, stage: 'template', pool, userData: '#!/bin/bash\necho worker v2\n', instanceProfile: 'gitlab-worker' });
  expect(updated).toMatchObject({ action: 'updated', version: 2 });
  s.clock.advance(61); // past the fleet's template cache
  const r3 = await s.pass();
  expect(r3.templateVersions).toEqual({ docker: '2' });
  expect(r3.retired.map((r) => r.id).sort()).toEqual([idle1, idle2].sort());
  expect(r3.retired[0].reason).toMatch(/launch template changed \(version 1, now 2\)/);
  expect(r3.launched.docker).toBeGreaterThanOrEqual(2);

  const live = await s.instances();
  const byId = new Map(live.map((i) => [i.InstanceId!, i]));
  for (const id of [idle1, idle2]) expect(tagOf(byId.get(id)!, TAGS.retire)).toBeDefined();
  expect(tagOf(byId.get(busy)!, TAGS.retire)).toBeUndefined();
  expect(tagOf(byId.get(busy)!, TAGS.templateVersion)).toBe('1');
  const replacements = live.filter((i) => tagOf(i, TAGS.pass) === r3.launchId);
  expect(replacements).toHaveLength(r3.launched.docker);
  for (const i of replacements) expect(tagOf(i, TAGS.templateVersion)).toBe('2');

  // Discovery reads the version back; the busy worker is retired only once it is idle.
  const seen = await s.fleet.discover();
  expect(seen.find((w) => w.id === busy)).toMatchObject({ state: 'busy', templateVersion: '1' });
  await reportAs([busy], 'idle', s.clock.now());
  s.clock.advance(30);
  const r4 = await s.pass();
  expect(r4.retired.map((r) => r.id)).toEqual([busy]);
});
