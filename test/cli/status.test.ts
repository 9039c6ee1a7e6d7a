/**
 * `status` against a live (moto) deployment: a real reconcile pass creates workers and state,
 * then the command reads them back through the real SDK clients with an endpoint override.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DescribeImagesCommand, DescribeSubnetsCommand, EC2Client } from '@aws-sdk/client-ec2';
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
