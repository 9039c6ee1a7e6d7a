/**
 * pause / drain / resume against moto, end to end: the CLI writes the hold (its ARN from moto's STS),
 * and the real reconcile handler (handlers/reconcile.ts, env pointing at moto) reads it at its next
 * pass. Pending jobs wait while the pool is paused; resume launches; drain asks every worker to
 * retire through the retire tag and terminates nothing; running a command twice changes nothing.
 *
 * Each pass runs as a fresh container (resetForTests): a container caches the holds for 5 s
 * (lib/aws/operator-holds.ts), which the last test checks on its own.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateTagsCommand, DescribeImagesCommand, DescribeInstancesCommand, DescribeSubnetsCommand, EC2Client, type Instance } from '@aws-sdk/client-ec2';
import { GetParameterCommand, PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { CreateQueueCommand, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { stringify } from 'yaml';
import { parameterNames, validateConfig } from '../../lib/config';
import { ensureLaunchTemplate } from '../../lib/aws/ec2-fleet';
import { SsmOperatorHolds, writeHold } from '../../lib/aws/operator-holds';
import { decodeHold, encodeHold } from '../../lib/controller/holds';
import { TAGS } from '../../lib/controller/tags';
import { encodeQueueMessage } from '../../lib/webhook/job-hook';
import { handler as reconcile, resetForTests } from '../../handlers/reconcile';
import { clearConfigCache } from '../../lib/lambda/runtime';
import { resetGitlabForTests } from '../../lib/lambda/gitlab';
import { MemoryLogger } from '../controller/fixtures';
import { runCli } from '../helpers/cli';
import { motoClientConfig, startMoto, type MotoServer } from '../helpers/moto';

jest.setTimeout(60_000);

const STAGE = 'ops';
const MOTO_ARN = 'arn:aws:sts::123456789012:user/moto'; // moto's STS GetCallerIdentity
let moto: MotoServer;
let ec2: EC2Client;
let ssm: SSMClient;
let sqs: SQSClient;
let dir: string;
let file: string;
let queueUrl: string;
let config: ReturnType<typeof validateConfig>;
const env0 = { ...process.env };
const logs: string[] = [];
let spy: jest.SpyInstance | undefined;

beforeAll(async () => {
  moto = await startMoto();
  ec2 = new EC2Client(motoClientConfig(moto.endpoint));
  ssm = new SSMClient(motoClientConfig(moto.endpoint));
  sqs = new SQSClient(motoClientConfig(moto.endpoint));
  const subnets = ((await ec2.send(new DescribeSubnetsCommand({}))).Subnets ?? []).map((s) => s.SubnetId!).slice(0, 2);
  const ami = (await ec2.send(new DescribeImagesCommand({ Owners: ['amazon'] }))).Images![0].ImageId!;
  config = validateConfig({ deployment: 'holds', region: 'us-east-1', gitlab: { url: 'https://gitlab.example.com' }, pools: [{ name: 'docker', runUntagged: true, IdleCount: 0, worker: { instanceTypes: ['m6i.large'], subnets, ami } }] });
  dir = mkdtempSync(join(tmpdir(), 'gsa-holds-'));
  file = join(dir, 'config.yaml');
  writeFileSync(file, stringify(config));
  await ensureLaunchTemplate(ec2, { config, stage: STAGE, pool: config.pools[0], userData: '#!/bin/bash\n', instanceProfile: 'worker' });
  queueUrl = (await sqs.send(new CreateQueueCommand({ QueueName: `gsa-holds-${STAGE}-events` }))).QueueUrl!;
  Object.assign(process.env, { AWS_ENDPOINT_URL: moto.endpoint, AWS_REGION: 'us-east-1', AWS_ACCESS_KEY_ID: 'testing', AWS_SECRET_ACCESS_KEY: 'testing', STAGE, CONFIG_FILE: file, QUEUE_URL: queueUrl });
  for (const k of ['CONFIG_PARAMETER', 'AWS_SESSION_TOKEN', 'REPORT_QUEUE_URL', 'WORKER_ROLE_IDS']) delete process.env[k];
}, 60_000);

afterAll(async () => {
  process.env = env0;
  for (const c of [ec2, ssm, sqs]) c?.destroy();
  await moto?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const cli = (command: string, ...extra: string[]) => runCli([command, '--stage', STAGE, '--config', file, '--endpoint', moto.endpoint, ...extra]);
const pendingJobs = async (ids: number[]) => {
  for (const jobId of ids)
    await sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: encodeQueueMessage({ v: 1, type: 'job', event: { jobId, projectId: 7, status: 'pending', receivedAt: Date.now() } }) }));
};
/** One manual pass of the real handler, as a fresh container; its log lines are kept. */
async function pass(): Promise<{ decisions: string[]; launched: Record<string, number> }> {
  resetForTests(() => {});
  clearConfigCache();
  resetGitlabForTests();
  spy = jest.spyOn(process.stdout, 'write').mockImplementation(((c: any) => (logs.push(String(c)), true)) as any);
  try {
    return (await reconcile({ trigger: 'manual' }, { awsRequestId: 'holds', getRemainingTimeInMillis: () => 60_000 } as any)) as any;
  } finally {
    spy.mockRestore();
  }
}
const instances = async (): Promise<Instance[]> =>
  ((await ec2.send(new DescribeInstancesCommand({ Filters: [{ Name: `tag:${TAGS.stage}`, Values: [STAGE] }] }))).Reservations ?? []).flatMap((r) => r.Instances ?? []).filter((i) => i.State?.Name !== 'terminated');
const tag = (i: Instance, k: string) => i.Tags?.find((t) => t.Key === k)?.Value;
const holdParam = () => `${parameterNames(config, STAGE).operator}/docker`;

test('pause: pending jobs wait and the pass says who paused the pool; pausing again changes nothing', async () => {
  const p = await cli('pause', '--reason', 'registry outage');
  expect(p.code).toBe(0);
  expect(p.out).toContain(`pool docker: running -> paused (by ${MOTO_ARN} at `);
  expect(p.out).toMatch(/effect: no launch for the pool from the controller's next pass on/);
  const v1 = (await ssm.send(new GetParameterCommand({ Name: holdParam() }))).Parameter!;
  expect(JSON.parse(v1.Value!)).toMatchObject({ v: 1, mode: 'paused', by: MOTO_ARN, reason: 'registry outage' });

  await pendingJobs([101, 102]);
  const r = await pass();
  expect(r.launched).toEqual({});
  expect(r.decisions.join('\n')).toMatch(new RegExp(`pool docker: 2 wanted, held: pool paused by ${MOTO_ARN.replace(/[/.]/g, '\\$&')} since `));
  expect(await instances()).toHaveLength(0);
  expect(logs.join('')).toMatch(/"message":"operator hold in force".*"mode":"paused"/);

  const again = await cli('pause');
  expect(again.code).toBe(0);
  expect(again.out).toMatch(/pool docker: already paused \(paused by arn:aws:sts::123456789012:user\/moto at .* \(registry outage\)\); nothing changed/);
  expect(again.out).toMatch(/nothing changed: no parameter was written/);
  expect((await ssm.send(new GetParameterCommand({ Name: holdParam() }))).Parameter!.Version).toBe(v1.Version);

  const status = await cli('status');
  expect(status.out).toMatch(/HELD: paused by arn:aws:sts::123456789012:user\/moto at .* \(registry outage\); no launch \(undo: resume\)/);
});

test('resume: the next pass launches for the jobs that waited; resuming again changes nothing', async () => {
  const r = await cli('resume');
  expect(r.out).toContain('pool docker: paused -> running');
  const pass2 = await pass();
  expect(pass2.launched).toEqual({ docker: 2 });
  expect(await instances()).toHaveLength(2);
  expect((await cli('resume')).out).toMatch(/pool docker: already running \(resumed by arn:aws:sts::123456789012:user\/moto at .*\); nothing changed/);
});

test('drain: the idle and the busy worker are asked to retire, nothing is terminated, nothing launched; resume lets it launch again', async () => {
  const [a, b] = await instances();
  const minute = new Date(Math.floor(Date.now() / 60_000) * 60_000).toISOString();
  await ec2.send(new CreateTagsCommand({ Resources: [a.InstanceId!], Tags: [{ Key: TAGS.ready, Value: minute }, { Key: TAGS.state, Value: 'idle' }, { Key: TAGS.idleSince, Value: minute }] }));
  await ec2.send(new CreateTagsCommand({ Resources: [b.InstanceId!], Tags: [{ Key: TAGS.ready, Value: minute }, { Key: TAGS.state, Value: 'busy' }] }));
  const d = await cli('drain', '--pool', 'docker');
  expect(d.out).toContain('pool docker: running -> draining');
  expect(d.out).toMatch(/busy ones after their job; nothing is terminated/);
  await pendingJobs([103]);
  const r = await pass();
  expect(r.launched).toEqual({});
  const after = await instances();
  expect(after.map((i) => i.State?.Name)).toEqual(['running', 'running']);
  for (const i of after) expect(tag(i, TAGS.retire)).toBeDefined();
  expect(r.decisions.join('\n')).toMatch(new RegExp(`retire ${b.InstanceId}: pool drained by .* \\(leaves after its job\\)`));
  expect(logs.join('')).toMatch(/"message":"operator hold in force".*"mode":"draining"/);

  expect((await cli('resume')).out).toContain('pool docker: draining -> running');
  const r2 = await pass();
  // The three pending jobs: the drained workers still leave, so they no longer count as available.
  expect(r2.launched).toEqual({ docker: 3 });
  for (const i of (await instances()).filter((x) => x.InstanceId === a.InstanceId || x.InstanceId === b.InstanceId)) expect(tag(i, TAGS.retire)).toBeDefined();
});

test('an unknown pool is a usage error that lists the pools', async () => {
  const r = await cli('pause', '--pool', 'gpu');
  expect(r.code).toBe(2);
  expect(r.err).toMatch(/unknown pool "gpu" \(pools of holds\/ops: docker\)/);
});

test('a hold on a pool no longer in the config: resume lifts it (it would return with the pool), nothing else acts on that pool', async () => {
  const gone = `${parameterNames(config, STAGE).operator}/gpu`;
  await ssm.send(new PutParameterCommand({ Name: gone, Type: 'String', Value: encodeHold({ mode: 'draining', by: MOTO_ARN, at: new Date().toISOString() }) }));
  const noted = await cli('resume');
  expect(noted.code).toBe(0);
  expect(noted.out).toMatch(/holds remain for pools not in the config \(gpu\).*resume --pool NAME/);
  for (const command of ['pause', 'drain']) {
    const r = await cli(command, '--pool', 'gpu');
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/unknown pool "gpu"/);
  }
  const r = await cli('resume', '--pool', 'gpu');
  expect(r.code).toBe(0);
  expect(r.out).toMatch(/pool gpu: draining -> running/);
  expect(decodeHold((await ssm.send(new GetParameterCommand({ Name: gone }))).Parameter!.Value!).mode).toBe('running');
  // Lifted: no longer reported, and resuming it again is a no-op.
  expect((await cli('resume')).out).not.toMatch(/not in the config/);
  expect((await cli('resume', '--pool', 'gpu')).out).toMatch(/pool gpu: already running/);
  // A pool that never existed and was never held stays a usage error for resume too.
  expect((await cli('resume', '--pool', 'nope')).code).toBe(2);
});

test('the controller reads the holds at most once per 5 s per container, and keeps the last ones when SSM fails', async () => {
  let t = Date.now();
  let fail = false;
  const flaky = { send: (c: any) => (fail ? Promise.reject(Object.assign(new Error('throttled'), { name: 'AccessDeniedException' })) : ssm.send(c)) } as unknown as SSMClient;
  const log = new MemoryLogger();
  const holds = new SsmOperatorHolds({ ssm: flaky, path: parameterNames(config, STAGE).operator, now: () => t, log, retryEnv: { sleep: async () => {}, random: () => 0 } });
  await writeHold({ ssm, path: parameterNames(config, STAGE).operator }, 'docker', { mode: 'paused', by: MOTO_ARN, at: new Date().toISOString() });
  expect((await holds.read()).docker?.mode).toBe('paused');
  t += 4_000;
  await holds.read();
  expect(holds.reads).toBe(1);
  t += 1_500;
  fail = true;
  expect((await holds.read()).docker?.mode).toBe('paused'); // the last ones read stay in force
  expect(holds.reads).toBe(2);
  expect(log.at('warn')).toContain('operator holds could not be read; the last ones read stay in force');
  // A cold container that cannot read them fails its pass rather than launch into a paused pool.
  const cold = new SsmOperatorHolds({ ssm: flaky, path: parameterNames(config, STAGE).operator, retryEnv: { sleep: async () => {}, random: () => 0 } });
  await expect(cold.read()).rejects.toThrow(/could not read the operator holds/);
});
