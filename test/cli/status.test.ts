/**
 * `status` against a live (moto) deployment: a real reconcile pass creates workers and state,
 * then the command reads them back through the real SDK clients with an endpoint override.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateTagsCommand, DescribeImagesCommand, DescribeInstancesCommand, DescribeSubnetsCommand, EC2Client } from '@aws-sdk/client-ec2';
import { CloudWatchLogsClient, CreateLogGroupCommand, CreateLogStreamCommand, PutLogEventsCommand } from '@aws-sdk/client-cloudwatch-logs';
import { PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { stringify } from 'yaml';
import { parseConfig } from '../../lib/config';
import { Ec2Fleet, ensureLaunchTemplate } from '../../lib/aws/ec2-fleet';
import { SsmStateStore } from '../../lib/aws/ssm-state-store';
import { reconcilePass } from '../../lib/controller/reconcile';
import { runCli } from '../helpers/cli';
import { startMoto, motoClientConfig, type MotoServer } from '../helpers/moto';
import { ManualClock, MemoryLogger } from '../controller/fixtures';

jest.setTimeout(60_000);

let moto: MotoServer;
let file: string;
const saved = { ...process.env };


beforeAll(async () => {
  moto = await startMoto();
  Object.assign(process.env, { AWS_ACCESS_KEY_ID: 'testing', AWS_SECRET_ACCESS_KEY: 'testing', AWS_SESSION_TOKEN: 'testing' });
  const ec2 = new EC2Client(motoClientConfig(moto.endpoint));
  const ssm = new SSMClient(motoClientConfig(moto.endpoint));
  const subnets = ((await ec2.send(new DescribeSubnetsCommand({}))).Subnets ?? []).map((s) => s.SubnetId!).slice(0, 2);
  const ami = (await ec2.send(new DescribeImagesCommand({ Owners: ['amazon'] }))).Images![0].ImageId!;
  const text = stringify({
    deployment: 'ci',
    region: 'us-east-1',
    gitlab: { url: 'https://gitlab.example.com' },
    pools: [{ name: 'docker', runUntagged: true, IdleCount: 2, limit: 10, worker: { instanceTypes: ['m6i.large', 'm5.large'], subnets, ami } }],
  });
  file = join(mkdtempSync(join(tmpdir(), 'gsa-status-')), 'config.yaml');
  writeFileSync(file, text);
  const config = parseConfig(text, file);
  await ensureLaunchTemplate(ec2, { config, stage: 'live', pool: config.pools[0], userData: '#!/bin/bash\n', instanceProfile: 'gitlab-worker' });
  const clock = new ManualClock(Date.now());
  const log = new MemoryLogger();
  await reconcilePass(
    { config, stage: 'live', fleet: new Ec2Fleet({ ec2, config, stage: 'live', now: () => clock.now() }), store: new SsmStateStore({ ssm, config, stage: 'live' }), clock, log },
    { events: [1, 2, 3].map((id) => ({ jobId: id, projectId: 7, status: 'pending', receivedAt: clock.now() })), trigger: 'queue' },
  );
  // What `serverless deploy` stores (lib/deploy/stack.ts ConfigParameter).
  await ssm.send(new PutParameterCommand({ Name: '/gitlab-spot-autoscaler/ci/live/config', Type: 'String', Value: JSON.stringify(config) }));
  ec2.destroy();
  ssm.destroy();
});

afterAll(async () => {
  process.env = saved;
  await moto?.stop();
});

test('--json shows workers, jobs, settings and the last pass of the live stage', async () => {
  const r = await runCli(['status', '--stage', 'live', '--config', file, '--endpoint', moto.endpoint, '--json']);
  expect(r.err).toMatch(/status: finding instances tagged for ci\/live/);
  expect(r.code).toBe(0);
  const report = JSON.parse(r.out);
  const pool = report.pools[0];
  expect(pool).toMatchObject({ name: 'docker', pending: 3, running: 0, idleTarget: 2, limit: 10, settings: { activePeriod: null, IdleCount: 2 } });
  // 3 pending jobs + IdleCount 2; moto starts spot instances running at once, so they are "booting" until the worker reports ready.
  expect(pool.workers.booting + pool.workers.idle).toBe(5);
  expect(pool.instances).toHaveLength(5);
  expect(report.lastPass.decisions.join('\n')).toMatch(/launched 5/);
});

test('text output is readable; another stage is empty', async () => {
  const live = await runCli(['status', '--stage', 'live', '--config', file, '--endpoint', moto.endpoint]);
  expect(live.out).toMatch(/^ci \/ live at /);
  expect(live.out).toMatch(/pool docker: 5 booting, 0 idle, 0 busy, 0 retiring \(limit 10\); jobs 3 pending, 0 running/);
  expect(live.out).toMatch(/settings: root values — IdleCount 2, IdleTime 600 s/);
  const other = await runCli(['status', '--stage', 'nothing-here', '--config', file, '--endpoint', moto.endpoint]);
  expect(other.code).toBe(0);
  expect(other.out).toMatch(/pool docker: 0 booting, 0 idle, 0 busy, 0 retiring/);
  expect(other.out).toMatch(/no pass recorded yet/);
});

test('--deployment reads the deployed config from SSM', async () => {
  const r = await runCli(['status', '--stage', 'live', '--deployment', 'ci', '--region', 'us-east-1', '--endpoint', moto.endpoint, '--json']);
  expect(r.code).toBe(0);
  expect(JSON.parse(r.out).pools[0]).toMatchObject({ name: 'docker', pending: 3 });
  const missing = await runCli(['status', '--stage', 'nope', '--deployment', 'ci', '--region', 'us-east-1', '--endpoint', moto.endpoint]);
  expect(missing.code).toBe(2);
  expect(missing.err).toMatch(/no deployed config at \/gitlab-spot-autoscaler\/ci\/nope\/config/);
});

test('usage errors name what is missing', async () => {
  expect((await runCli(['status', '--config', file])).err).toMatch(/--stage NAME is required/);
  expect((await runCli(['status', '--stage', 'live'])).err).toMatch(/pass --deployment NAME .* or --config FILE/);
});

describe('status --worker: one worker\'s story', () => {
  const group = '/gitlab-spot-autoscaler/ci/live/workers/docker';
  let id: string;
  let ip: string;
  beforeAll(async () => {
    const ec2 = new EC2Client(motoClientConfig(moto.endpoint));
    const instance = ((await ec2.send(new DescribeInstancesCommand({ Filters: [{ Name: 'tag:gitlab-spot-autoscaler:stage', Values: ['live'] }] }))).Reservations ?? []).flatMap((r) => r.Instances ?? [])[0];
    id = instance.InstanceId!;
    ip = instance.PrivateIpAddress!;
    await ec2.send(new CreateTagsCommand({ Resources: [id], Tags: [{ Key: 'gitlab-spot-autoscaler:retire', Value: '2026-11-30T10:05:00.000Z' }] }));
    ec2.destroy();
    // What the worker shipped (lib/worker/script.ts): its stream, and one another instance wrote under its id.
    const logs = new CloudWatchLogsClient(motoClientConfig(moto.endpoint));
    await logs.send(new CreateLogGroupCommand({ logGroupName: group }));
    const put = async (stream: string, lines: string[]) => {
      await logs.send(new CreateLogStreamCommand({ logGroupName: group, logStreamName: stream }));
      await logs.send(new PutLogEventsCommand({ logGroupName: group, logStreamName: stream, logEvents: lines.map((message, k) => ({ timestamp: Date.now() - 60_000 + k, message })) }));
    };
    await put(`${id}/${ip}`, ['2026-11-30T10:00:00Z gsa-worker: starting: pool docker of ci/live', 'Checking for jobs... received job=1001', '2026-11-30T10:06:00Z gsa-worker: shutting down: retirement requested (2026-11-30T10:05:00.000Z)']);
    await put(`${id}/10.99.99.99`, ['forged line']);
    logs.destroy();
  });

  test('tags, EC2 state, the controller\'s view, its log lines (the foreign stream flagged) and the Logs Insights query', async () => {
    const r = await runCli(['status', '--stage', 'live', '--config', file, '--endpoint', moto.endpoint, '--worker', id, '--lines', '2']);
    expect(r.code).toBe(0);
    expect(r.out).toContain(`worker ${id} of ci / live, pool docker`);
    expect(r.out).toMatch(/EC2: running; .*spot|EC2: running; /);
    expect(r.out).toMatch(/controller: retiring, no report yet, 0 build\(s\), asked to retire at 2026-11-30T10:05:00.000Z/);
    expect(r.out).toMatch(/gitlab-spot-autoscaler:retire = 2026-11-30T10:05:00.000Z/);
    expect(r.out).toContain(`log ${group} ${id}/${ip}:`);
    // --lines 2: the last two of three
    expect(r.out).not.toContain('starting: pool docker');
    expect(r.out).toMatch(/Checking for jobs\.\.\. received job=1001\n.*shutting down: retirement requested/);
    expect(r.out).toMatch(new RegExp(`log ${group} ${id}/10\\.99\\.99\\.99  \\[address is not the instance's`));
    expect(r.out).toContain(`filter @logStream like /^${id}\\//`);
    const json = JSON.parse((await runCli(['status', '--stage', 'live', '--config', file, '--endpoint', moto.endpoint, '--worker', id, '--json'])).out);
    expect(json.logs.map((l: any) => [l.stream, l.trusted])).toEqual([
      [`${id}/${ip}`, true],
      [`${id}/10.99.99.99`, false],
    ]);
  });

  test('an instance EC2 no longer lists: its logs are looked for in every pool\'s group', async () => {
    const r = await runCli(['status', '--stage', 'live', '--config', file, '--endpoint', moto.endpoint, '--worker', 'i-0123456789abcdef0']);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/EC2: not listed/);
    expect(r.out).toMatch(/logs: no stream for i-0123456789abcdef0 in \/gitlab-spot-autoscaler\/ci\/live\/workers\/docker/);
  });

  test('an instance of another stage, or not an instance id, is a usage error', async () => {
    const other = await runCli(['status', '--stage', 'nothing-here', '--config', file, '--endpoint', moto.endpoint, '--worker', id]);
    expect(other.code).toBe(2);
    expect(other.err).toMatch(new RegExp(`instance ${id} is not a worker of ci/nothing-here \\(its tags say deployment ci, stage live\\)`));
    const bad = await runCli(['status', '--stage', 'live', '--config', file, '--worker', 'web-1']);
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/--worker "web-1": expected an EC2 instance id/);
  });
});
