/**
 * The fence against moto, through the real reconcile handler (handlers/reconcile.ts, env pointing
 * at moto; nothing deployed): EC2, SSM and both SQS queues are moto's; workers are played by the
 * test, which sends their reports to the report queue with credentials of their own and owns the
 * truth of what each runner does. Moto stamps every message with one SenderId, so the SQS traffic
 * goes through test/helpers/sender-id-proxy.ts, which stamps the signer's identity as AWS does
 * (`<role id>:<instance id>`); the controller's check runs unchanged.
 *
 * Time passes by moving every time-valued tag back (launched-at, ready, idle-since, retire,
 * stopped-at): the controller reads all its times from tags and its own clock.
 *
 *  A. a fixed fleet: an idle orphan whose runner then takes a job, a worker past bootTimeout, a
 *     worker claiming busy 30 days after launch, a busy worker, and a forged report; over passes.
 *  B. the same checks on fleets and configs generated from seeds (FENCE_SEEDS=1,2,3 to choose):
 *     random pools (bootTimeout, jobTimeout, maxLifetime), random workers (orphans, slow and stuck
 *     boots, busy, idle, hostile, retired), lost reports and random time steps between passes.
 *     After every pass: no TerminateInstances reached an instance whose runner ran a job, except at
 *     its end of life; every termination matches a fence rule by the test's own reading; what must
 *     end does.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateTagsCommand, DescribeImagesCommand, DescribeInstancesCommand, DescribeSubnetsCommand, EC2Client, RunInstancesCommand, TerminateInstancesCommand, type Instance } from '@aws-sdk/client-ec2';
import { CreateQueueCommand, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { stringify } from 'yaml';
import { validateConfig, type Config } from '../../lib/config';
import { ensureLaunchTemplate } from '../../lib/aws/ec2-fleet';
import { encodeReport } from '../../lib/controller/reports';
import { reportQueueName, TAGS } from '../../lib/controller/tags';
import { FENCE } from '../../lib/planner';
import type { ReportedState } from '../../lib/model';
import { Rng } from '../../lib/sim/rng';
import { handler as reconcile, resetForTests } from '../../handlers/reconcile';
import { clearConfigCache } from '../../lib/lambda/runtime';
import { resetGitlabForTests } from '../../lib/lambda/gitlab';
import { motoClientConfig, startMoto, type MotoServer } from '../helpers/moto';
import { startSenderIdProxy, type SenderIdProxy } from '../helpers/sender-id-proxy';

jest.setTimeout(120_000);

const ROLE = 'AROAFENCEWORKERROLE01';
const TIME_TAGS = [TAGS.launchedAt, TAGS.ready, TAGS.idleSince, TAGS.retire, TAGS.stoppedAt];
let moto: MotoServer;
let proxy: SenderIdProxy;
let ec2: EC2Client;
let subnets: string[];
let ami: string;
let dir: string;
const env0 = { ...process.env };
const logs: string[] = [];
let spy: jest.SpyInstance;

beforeAll(async () => {
  moto = await startMoto();
  proxy = await startSenderIdProxy(moto.endpoint);
  ec2 = new EC2Client(motoClientConfig(moto.endpoint));
  subnets = ((await ec2.send(new DescribeSubnetsCommand({}))).Subnets ?? []).map((s) => s.SubnetId!).slice(0, 2);
  ami = (await ec2.send(new DescribeImagesCommand({ Owners: ['amazon'] }))).Images![0].ImageId!;
  dir = mkdtempSync(join(tmpdir(), 'gsa-fence-'));
}, 60_000);

afterAll(async () => {
  process.env = env0;
  ec2?.destroy();
  await proxy?.stop();
  await moto?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

beforeEach(() => {
  spy = jest.spyOn(process.stdout, 'write').mockImplementation(((c: any) => (logs.push(String(c)), true)) as any);
});
afterEach(() => {
  spy.mockRestore();
  if (process.env.FENCE_LOG) writeFileSync(process.env.FENCE_LOG, logs.join(''));
});

interface Worker {
  id: string;
  pool: string;
  /** The runner runs a job (the truth; the controller learns it only from reports). */
  job: boolean;
  /** Reported ready (a worker that never does is stuck booting). */
  ready: boolean;
  /** What it does with a retirement request: a normal worker drains and powers off; a hostile one ignores it. */
  hostile?: boolean;
  /** Its runner has exited for good (it reported `stopped`): it never takes a job again. */
  stopped?: boolean;
  seq: number;
  gone: boolean;
}

/** One deployment stage under test: its config, queues and workers, and the handler driven against it. */
async function stageUnderTest(stage: string, config: Config) {
  // Created through the proxy: moto builds queue URLs from the Host header, and the SQS client sends
  // to the queue URL's host, so every SQS call of the handler and the workers goes through the proxy.
  const sqs = new SQSClient(motoClientConfig(proxy.endpoint));
  const reportQueue = (await sqs.send(new CreateQueueCommand({ QueueName: reportQueueName(config.deployment, stage) }))).QueueUrl!;
  const eventQueue = (await sqs.send(new CreateQueueCommand({ QueueName: `gsa-${config.deployment}-${stage}-events` }))).QueueUrl!;
  sqs.destroy();
  for (const pool of config.pools) await ensureLaunchTemplate(ec2, { config, stage, pool, userData: '#!/bin/bash\n', instanceProfile: 'worker' });
  const configFile = join(dir, `${stage}.yaml`);
  writeFileSync(configFile, stringify(config));
  const workers = new Map<string, Worker>();
  const killed: { id: string; job: boolean; ageS: number }[] = [];

  const setEnv = () => {
    Object.assign(process.env, {
      AWS_ENDPOINT_URL: proxy.endpoint,
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: 'testing',
      AWS_SECRET_ACCESS_KEY: 'testing',
      STAGE: stage,
      CONFIG_FILE: configFile,
      QUEUE_URL: eventQueue,
      REPORT_QUEUE_URL: reportQueue,
      WORKER_ROLE_IDS: ROLE,
    });
    delete process.env.CONFIG_PARAMETER;
    delete process.env.AWS_SESSION_TOKEN;
  };
  setEnv();
  resetForTests(() => {});
  clearConfigCache();
  resetGitlabForTests();

  const describe = async (): Promise<Instance[]> =>
    ((await ec2.send(new DescribeInstancesCommand({ Filters: [{ Name: `tag:${TAGS.stage}`, Values: [stage] }] }))).Reservations ?? []).flatMap((r) => r.Instances ?? []);
  const tagsOf = (i: Instance) => new Map((i.Tags ?? []).map((t) => [t.Key!, t.Value!]));

  /** A worker the controller launched `ageS` seconds ago (tags as CreateFleet sets them). */
  const launch = async (pool: string, ageS: number, w: Partial<Worker> = {}, extraTags: Record<string, string> = {}): Promise<Worker> => {
    const tags = {
      [TAGS.deployment]: config.deployment,
      [TAGS.stage]: stage,
      [TAGS.pool]: pool,
      [TAGS.pass]: 'e0-g0',
      [TAGS.templateVersion]: '1',
      [TAGS.launchedAt]: new Date(Date.now() - ageS * 1000).toISOString(),
      ...extraTags,
    };
    const out = await ec2.send(
      new RunInstancesCommand({ ImageId: ami, MinCount: 1, MaxCount: 1, InstanceType: 'm6i.large', SubnetId: subnets[0], TagSpecifications: [{ ResourceType: 'instance', Tags: Object.entries(tags).map(([Key, Value]) => ({ Key, Value })) }] }),
    );
    const worker: Worker = { id: out.Instances![0].InstanceId!, pool, job: false, ready: false, seq: 0, gone: false, ...w };
    workers.set(worker.id, worker);
    return worker;
  };

  /** The worker's report, signed with its own instance credentials (the proxy stamps `<role id>:<instance id>`). */
  const report = async (w: Worker, state: ReportedState, opts: { as?: Worker } = {}) => {
    const signer = opts.as ?? w;
    const key = `ASIA${signer.id.slice(2).toUpperCase()}`;
    proxy.identify(key, `${ROLE}:${signer.id}`);
    const sqs = new SQSClient({ ...motoClientConfig(proxy.endpoint), credentials: { accessKeyId: key, secretAccessKey: 'x' } });
    w.seq++;
    const now = Date.now();
    await sqs.send(new SendMessageCommand({ QueueUrl: reportQueue, MessageBody: encodeReport({ instanceId: w.id, seq: w.seq, state, builds: 1, at: now, readyAt: now - 120_000, idleSince: state === 'idle' ? now : undefined }) }));
    sqs.destroy();
  };

  /** Time passes: every time-valued tag moves back. */
  const elapse = async (seconds: number) => {
    for (const i of await describe()) {
      if (i.State?.Name === 'terminated') continue;
      const t = tagsOf(i);
      const moved = TIME_TAGS.filter((k) => t.has(k)).map((k) => ({ Key: k, Value: new Date(Date.parse(t.get(k)!) - seconds * 1000).toISOString() }));
      if (moved.length) await ec2.send(new CreateTagsCommand({ Resources: [i.InstanceId!], Tags: moved }));
    }
  };

  /** One pass of the real handler; records every TerminateInstances with what the runner was doing. */
  const pass = async () => {
    setEnv();
    const before = proxy.ec2.length;
    const ages = new Map((await describe()).map((i) => [i.InstanceId!, (Date.now() - Date.parse(tagsOf(i).get(TAGS.launchedAt)!)) / 1000]));
    const res: any = await reconcile({ trigger: 'manual' }, { awsRequestId: 'fence', getRemainingTimeInMillis: () => 60_000 } as any);
    for (const call of proxy.ec2.slice(before))
      if (call.action === 'TerminateInstances') for (const id of call.instanceIds) killed.push({ id, job: workers.get(id)?.job ?? false, ageS: ages.get(id) ?? 0 });
    return res as { decisions: string[] };
  };

  /** A worker powering itself off (InstanceInitiatedShutdownBehavior: terminate): not the controller. */
  const powerOff = async (w: Worker) => {
    w.gone = true;
    await ec2.send(new TerminateInstancesCommand({ InstanceIds: [w.id] }));
  };
  const instance = async (w: Worker) => (await describe()).find((i) => i.InstanceId === w.id)!;
  const terminatedByController = (w: Worker) => killed.some((k) => k.id === w.id);
  return { workers, launch, report, elapse, pass, powerOff, instance, tagsOf, killed, terminatedByController };
}

const pools = (list: Record<string, unknown>[]) =>
  validateConfig({ deployment: 'fence', gitlab: { url: 'https://gitlab.example.com' }, pools: list.map((p) => ({ runUntagged: false, IdleCount: 0, ...p, worker: { instanceTypes: ['m6i.large'], subnets, ami, ...(p.worker as object) } })) });

test('A: an idle orphan, a worker past bootTimeout, a worker busy 30 days after launch, a forged report — over several passes', async () => {
  const config = pools([{ name: 'docker', runUntagged: true, worker: { bootTimeout: 600, maxLifetime: 86400 } }]);
  const s = await stageUnderTest('fence-a', config);
  const orphan = await s.launch('old-pool', 3600, { ready: true });
  await s.report(orphan, 'idle');
  const late = await s.launch('docker', 630); // booting, past bootTimeout 600 s
  const forever = await s.launch('docker', 30 * 86400, { ready: true, job: true, hostile: true });
  await s.report(forever, 'busy');
  const busy = await s.launch('docker', 3600, { ready: true, job: true });
  await s.report(busy, 'busy');
  // A job on `busy` (it has that instance's credentials) claims the orphan's runner stopped.
  await s.report(orphan, 'stopped', { as: busy });

  const r1 = await s.pass();
  expect(s.tagsOf(await s.instance(orphan)).get(TAGS.retire)).toBeDefined();
  expect(s.tagsOf(await s.instance(late)).get(TAGS.retire)).toBeDefined();
  expect(s.terminatedByController(forever)).toBe(true);
  expect(r1.decisions.join('\n')).toMatch(new RegExp(`terminate ${forever.id} \\(end-of-life\\)`));
  expect(s.terminatedByController(orphan) || s.terminatedByController(late) || s.terminatedByController(busy)).toBe(false);
  expect(s.tagsOf(await s.instance(busy)).get(TAGS.state)).toBe('busy');
  expect(s.tagsOf(await s.instance(orphan)).get(TAGS.state)).toBe('idle'); // the forged "stopped" was refused
  expect(logs.join('')).toMatch(/worker reports refused/);

  // The orphan's runner took a job before it saw the request: it drains, the controller waits.
  orphan.job = true;
  await s.report(orphan, 'draining');
  await s.elapse(1800);
  await s.pass();
  expect(s.terminatedByController(orphan)).toBe(false);
  expect(s.tagsOf(await s.instance(orphan)).get(TAGS.state)).toBe('draining');

  // Job done, runner gone; its power-off fails: the fence ends it FENCE.stoppedGrace later.
  orphan.job = false;
  await s.report(orphan, 'stopped');
  await s.pass();
  expect(s.terminatedByController(orphan)).toBe(false);
  await s.elapse(FENCE.stoppedGrace + 60);
  await s.pass();
  expect(s.terminatedByController(orphan)).toBe(true);

  // The late worker never reported ready: ended once bootTimeout + grace has passed.
  expect(s.terminatedByController(late)).toBe(true); // 630 + 1800 + 180 s > 600 + 900 s
  expect(s.terminatedByController(busy)).toBe(false);
  expect(s.killed.filter((k) => k.job)).toEqual([expect.objectContaining({ id: forever.id })]);
});

// ---- seeded fleets and configs ----------------------------------------------------------------

const seeds = (process.env.FENCE_SEEDS ?? '20261130').split(',').map((x) => Number(x.trim())).filter((x) => Number.isFinite(x));

test.each(seeds)('B: a generated config and fleet (seed %i): no job is ever killed short of its end of life, and what must end does', async (seed) => {
  const rng = new Rng(seed);
  const poolList = Array.from({ length: rng.int(1, 3) }, (_, k) => ({
    name: `p${k}`,
    tags: [`t${k}`],
    runUntagged: k === 0,
    jobTimeout: rng.int(60, 4 * 3600),
    worker: { bootTimeout: rng.int(60, 1200), maxLifetime: rng.int(600, 2 * 86400) },
  }));
  const config = pools(poolList);
  const s = await stageUnderTest(`fence-b${seed % 100000}`, config);
  const limitsOf = (pool: string) => {
    const p = config.pools.find((x) => x.name === pool);
    const all = [...config.pools.map((x) => ({ b: x.worker.bootTimeout, j: x.jobTimeout, l: x.worker.maxLifetime })), { b: 600, j: 10800, l: 86400 }];
    return p ? { b: p.worker.bootTimeout, j: p.jobTimeout, l: p.worker.maxLifetime } : { b: Math.max(...all.map((x) => x.b)), j: Math.max(...all.map((x) => x.j)), l: Math.max(...all.map((x) => x.l)) };
  };
  const endOfLife = (pool: string) => {
    const l = limitsOf(pool);
    return l.l + l.j + FENCE.endOfLifeGrace;
  };
  // The fleet: each worker a random role.
  const n = rng.int(8, 14);
  for (let k = 0; k < n; k++) {
    const pool = rng.chance(0.2) ? 'gone-pool' : poolList[rng.int(0, poolList.length - 1)].name;
    const l = limitsOf(pool);
    const role = rng.int(0, 5);
    if (role === 0) await s.launch(pool, rng.int(0, l.b + FENCE.bootGrace + 600)); // booting, maybe stuck
    else if (role === 1) {
      const w = await s.launch(pool, rng.int(0, endOfLife(pool) + 3 * 86400), { ready: true, job: true, hostile: rng.chance(0.5) }); // busy, maybe for ever
      await s.report(w, 'busy');
    } else if (role === 2) {
      const w = await s.launch(pool, rng.int(600, 6 * 3600), { ready: true });
      await s.report(w, 'idle');
    } else if (role === 3) {
      // Asked to retire a while ago; drains its job, or (hostile) claims one for ever.
      const w = await s.launch(pool, rng.int(3600, 8 * 3600), { ready: true, job: true, hostile: rng.chance(0.5) }, { [TAGS.retire]: new Date(Date.now() - rng.int(0, l.j + FENCE.retirementGrace + 1200) * 1000).toISOString() });
      await s.report(w, 'draining');
    } else if (role === 4) {
      const w = await s.launch(pool, rng.int(600, 6 * 3600), { ready: true, stopped: true });
      await s.report(w, 'stopped'); // runner gone, its power-off failed
    } else {
      // Ready and idle as an earlier pass recorded; every report since was lost (the heartbeat repairs that, later).
      const age = rng.int(600, 6 * 3600);
      const at = (s: number) => new Date(Date.now() - s * 1000).toISOString();
      await s.launch(pool, age, { ready: true }, { [TAGS.ready]: at(age - 60), [TAGS.state]: 'idle', [TAGS.idleSince]: at(age - 60) });
    }
  }

  const passes = rng.int(3, 5);
  for (let p = 0; p < passes; p++) {
    await s.pass();
    // After each pass, what a real worker would do, and time passes.
    const live = [...s.workers.values()].filter((w) => !w.gone);
    for (const w of live) {
      const tags = s.tagsOf(await s.instance(w));
      if (tags.get(TAGS.retire) !== undefined && !w.hostile) {
        if (!w.ready) await s.powerOff(w); // a booting worker asked to leave just goes
        else if (!w.job) {
          w.stopped = true;
          if (rng.chance(0.7)) await s.report(w, 'stopped');
          if (rng.chance(0.8)) await s.powerOff(w);
        } else {
          if (rng.chance(0.7)) await s.report(w, 'draining'); // reports may be lost
          if (rng.chance(0.4)) w.job = false; // its job ends
        }
      } else if (w.ready && !w.hostile && !w.stopped && rng.chance(0.3)) {
        w.job = !w.job; // takes a job or finishes one; the report may be lost
        if (rng.chance(0.8)) await s.report(w, w.job ? 'busy' : 'idle');
      } else if (w.hostile && w.ready && rng.chance(0.8)) await s.report(w, 'busy');
    }
    await s.elapse(rng.int(60, 1800));
  }
  await s.pass();

  // (I1) No TerminateInstances reached a runner with a job, except at its end of life. (Ages are
  // read just before each pass; the pass reads its own clock a moment later: 5 s of tolerance.)
  for (const k of s.killed) if (k.job) expect({ id: k.id, pastEndOfLife: k.ageS > endOfLife(s.workers.get(k.id)!.pool) - 5 }).toEqual({ id: k.id, pastEndOfLife: true });
  // Every termination has a reason the fence accepts, by the test's own knowledge of the runner.
  for (const k of s.killed) {
    const w = s.workers.get(k.id)!;
    expect({ id: k.id, why: k.ageS > endOfLife(w.pool) - 5 ? 'end-of-life' : w.stopped ? 'runner-stopped' : !w.ready ? 'never-ready' : !k.job ? 'retirement-ignored' : 'none' }).not.toEqual({ id: k.id, why: 'none' });
  }
  // (I2) What must end did: every worker past its end of life, and every one that never reported ready past bootTimeout + grace.
  for (const w of s.workers.values()) {
    if (w.gone) continue;
    const i = await s.instance(w);
    const age = (Date.now() - Date.parse(s.tagsOf(i).get(TAGS.launchedAt)!)) / 1000;
    if (age > endOfLife(w.pool) + 60) expect({ id: w.id, age, ended: s.terminatedByController(w) }).toEqual({ id: w.id, age, ended: true });
    if (!w.ready && age > limitsOf(w.pool).b + FENCE.bootGrace + 60) expect({ id: w.id, neverReady: true, ended: s.terminatedByController(w) }).toEqual({ id: w.id, neverReady: true, ended: true });
    // (I3) Every orphan still there was asked to retire.
    if (w.pool === 'gone-pool' && !s.terminatedByController(w)) expect(s.tagsOf(i).get(TAGS.retire)).toBeDefined();
  }
});
