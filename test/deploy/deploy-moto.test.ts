/**
 * A deployment, as an admin makes it, into moto: the secrets in SSM first, then the real
 * `serverless package` + `serverless deploy` (the same template as production, validated by
 * moto's ValidateTemplate, which runs cfn-lint and fails on warnings too: the template has none,
 * lib/deploy/serverless-plugin.js), then the deployed functions with the environment
 * CloudFormation gave them (read back with Lambda GetFunctionConfiguration) turn a GitLab Job Hook
 * into an instance launched from the stack's launch template; then `serverless remove`.
 *
 * What moto does not emulate, and how the test deals with it (marked MOTO where it happens):
 *  - Lambda invocation needs docker, which these machines lack: the handlers run in this process,
 *    with the function's environment from GetFunctionConfiguration and AWS_ENDPOINT_URL -> moto.
 *  - Queue URLs from moto's CloudFormation are AWS-shaped (https://sqs.<region>.amazonaws.com/...),
 *    and the SQS client sends to a queue URL's host: each is mapped to moto's URL of the same queue.
 *  - HTTP API (AWS::ApiGatewayV2::*) and EventBridge Scheduler resources are skipped by moto's
 *    CloudFormation (no HTTP endpoint, no schedule): the webhook is called as API Gateway would
 *    call it, the reconcile function as the Scheduler's manual input does.
 *  - Instances do not boot (no user data runs): the launch is the end of the story here; the worker
 *    side has its own tests (test/worker).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CloudFormationClient, DescribeStackResourcesCommand, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { DescribeImagesCommand, DescribeInstancesCommand, DescribeLaunchTemplatesCommand, DescribeSubnetsCommand, EC2Client } from '@aws-sdk/client-ec2';
import { GetFunctionConfigurationCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { GetParameterCommand, PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { GetQueueUrlCommand, SQSClient } from '@aws-sdk/client-sqs';
import { stringify } from 'yaml';
import { TAGS } from '../../lib/controller/tags';
import { handler as webhook, resetForTests as resetWebhook } from '../../handlers/webhook';
import { handler as reconcile, resetForTests as resetReconcile } from '../../handlers/reconcile';
import { clearConfigCache } from '../../lib/lambda/runtime';
import { resetGitlabForTests } from '../../lib/lambda/gitlab';
import { clearSecretCache } from '../../lib/aws/ssm-state-store';
import { motoClientConfig, startMoto, type MotoServer } from '../helpers/moto';
import { ROOT, serverless } from '../helpers/serverless';

jest.setTimeout(150_000);

const root = ROOT;
const REGION = 'us-east-1';
const STAGE = 'moto';
const DEPLOYMENT = 'deploytest';
const STACK = `gitlab-spot-autoscaler-${DEPLOYMENT}-${STAGE}`;
const SECRET = 'deploy-test-webhook-secret-0123456789abcdef';
let moto: MotoServer;
let dir: string;
let configFile: string;
let vpc: string;
const env0 = { ...process.env };
const timings: Record<string, number> = {};

/** The real `serverless` against moto (test/helpers/serverless.ts); fails the test with its output when it fails. */
async function sls(args: string[]): Promise<string> {
  const started = Date.now();
  try {
    const r = await serverless(args, { endpoint: moto.endpoint, env: { GSA_ESBUILD_DIR: '.esbuild-deploy-test' }, timeoutMs: 120_000 });
    if (r.code !== 0) throw new Error(`serverless ${args.join(' ')} failed (${r.code}):\n${r.out}`);
    return r.out;
  } finally {
    timings[args[0]] = (timings[args[0]] ?? 0) + (Date.now() - started);
  }
}

beforeAll(async () => {
  moto = await startMoto();
  dir = mkdtempSync(join(tmpdir(), 'gsa-deploy-'));
  const ec2 = new EC2Client(motoClientConfig(moto.endpoint, REGION));
  const subnet = (await ec2.send(new DescribeSubnetsCommand({}))).Subnets![0];
  vpc = subnet.VpcId!;
  const ami = (await ec2.send(new DescribeImagesCommand({ Owners: ['amazon'] }))).Images![0].ImageId!;
  ec2.destroy();
  configFile = join(dir, 'config.yaml');
  writeFileSync(
    configFile,
    stringify({ deployment: DEPLOYMENT, region: REGION, gitlab: { url: 'https://gitlab.example.com' }, pools: [{ name: 'docker', runUntagged: true, limit: 5, worker: { instanceTypes: ['t3.medium', 't3a.medium'], subnets: [subnet.SubnetId], ami } }] }),
  );
  // Step 2 of docs/deployment.md: the admin stores the secrets; the stack only reads them.
  const ssm = new SSMClient(motoClientConfig(moto.endpoint, REGION));
  await ssm.send(new PutParameterCommand({ Name: `/gitlab-spot-autoscaler/${DEPLOYMENT}/${STAGE}/secrets/webhook-secret`, Type: 'SecureString', Value: SECRET }));
  await ssm.send(new PutParameterCommand({ Name: `/gitlab-spot-autoscaler/${DEPLOYMENT}/${STAGE}/secrets/runner-token/docker`, Type: 'SecureString', Value: 'glrt-deploy-test-not-a-token' }));
  ssm.destroy();
}, 60_000);

afterAll(async () => {
  process.env = env0;
  await moto?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
  rmSync(join(root, '.esbuild-deploy-test'), { recursive: true, force: true });
  process.stderr.write(`deploy into moto: ${Object.entries(timings).map(([k, v]) => `${k} ${(v / 1000).toFixed(1)} s`).join(', ')}\n`);
});

test('serverless deploy into moto; the deployed functions turn a Job Hook into an instance from the stack\'s launch template; serverless remove', async () => {
  const pkg = join(dir, 'package');
  await sls(['package', '--stage', STAGE, '--param', `config=${configFile}`, '--param', `vpc=${vpc}`, '--package', pkg]);
  const deployed = await sls(['deploy', '--stage', STAGE, '--param', `config=${configFile}`, '--param', `vpc=${vpc}`, '--package', pkg]);
  expect(deployed).toMatch(new RegExp(`Service deployed to stack ${STACK}`));

  const cfn = new CloudFormationClient(motoClientConfig(moto.endpoint, REGION));
  const lambda = new LambdaClient(motoClientConfig(moto.endpoint, REGION));
  const ec2 = new EC2Client(motoClientConfig(moto.endpoint, REGION));
  const ssm = new SSMClient(motoClientConfig(moto.endpoint, REGION));
  const sqs = new SQSClient(motoClientConfig(moto.endpoint, REGION));
  try {
    const stack = (await cfn.send(new DescribeStacksCommand({ StackName: STACK }))).Stacks![0];
    expect(stack.StackStatus).toMatch(/^(CREATE|UPDATE)_COMPLETE$/);
    const resources = (await cfn.send(new DescribeStackResourcesCommand({ StackName: STACK }))).StackResources ?? [];
    const physical = (id: string) => resources.find((r) => r.LogicalResourceId === id)?.PhysicalResourceId;
    expect(physical('Dashboard')).toBe(`gsa-${DEPLOYMENT}-${STAGE}`);
    expect(physical('WorkerLogGroupDocker')).toBe(`/gitlab-spot-autoscaler/${DEPLOYMENT}/${STAGE}/workers/docker`);
    // The config the stack stored for the controller (AWS::SSM::Parameter).
    expect(JSON.parse((await ssm.send(new GetParameterCommand({ Name: `/gitlab-spot-autoscaler/${DEPLOYMENT}/${STAGE}/config` }))).Parameter!.Value!).deployment).toBe(DEPLOYMENT);

    // The environment CloudFormation gave each function.
    const envOf = async (fn: string) => (await lambda.send(new GetFunctionConfigurationCommand({ FunctionName: `gsa-${DEPLOYMENT}-${STAGE}-${fn}` }))).Environment!.Variables!;
    const webhookEnv = await envOf('webhook');
    const reconcileEnv = await envOf('reconcile');
    expect(reconcileEnv).toMatchObject({ STAGE, DEPLOYMENT, CONFIG_PARAMETER: `/gitlab-spot-autoscaler/${DEPLOYMENT}/${STAGE}/config` });
    expect(JSON.parse(reconcileEnv.LAUNCH_TEMPLATES)).toEqual({ docker: `gitlab-spot-autoscaler-${DEPLOYMENT}-${STAGE}-docker` });
    expect(reconcileEnv.WORKER_ROLE_IDS).toMatch(/^AROA[A-Z0-9]+$/);
    expect(webhookEnv.QUEUE_URL).toBe(reconcileEnv.QUEUE_URL);
    // MOTO: its CloudFormation reports AWS-shaped queue URLs; the SQS client sends to a queue URL's host.
    const onMoto = async (url: string) => (await sqs.send(new GetQueueUrlCommand({ QueueName: url.split('/').pop()! }))).QueueUrl!;
    const asDeployed = async (fnEnv: Record<string, string>) => {
      process.env = { ...env0, ...fnEnv, AWS_ENDPOINT_URL: moto.endpoint, AWS_REGION: REGION, AWS_ACCESS_KEY_ID: 'testing', AWS_SECRET_ACCESS_KEY: 'testing' };
      for (const k of ['QUEUE_URL', 'REPORT_QUEUE_URL']) if (fnEnv[k]) process.env[k] = await onMoto(fnEnv[k]);
      delete process.env.AWS_SESSION_TOKEN;
      delete process.env.CONFIG_FILE;
    };
    const silence = jest.spyOn(process.stdout, 'write').mockImplementation(() => true);
    try {
      // The webhook, as API Gateway calls it (MOTO: no HTTP API endpoint).
      await asDeployed(webhookEnv);
      resetWebhook();
      clearSecretCache();
      const event = JSON.parse(readFileSync(join(root, 'events/webhook-job-pending.json'), 'utf8'));
      event.headers['x-gitlab-token'] = SECRET;
      const res: any = await webhook(event, { awsRequestId: 'deploy-test', getRemainingTimeInMillis: () => 9_000 } as any);
      expect(res.statusCode).toBe(202);

      // The reconcile function, as the Scheduler's manual input calls it (MOTO: Lambda needs docker).
      await asDeployed(reconcileEnv);
      resetReconcile(() => {});
      clearConfigCache();
      resetGitlabForTests();
      const out: any = await reconcile({ trigger: 'manual' }, { awsRequestId: 'deploy-test', getRemainingTimeInMillis: () => 60_000 } as any);
      expect(out.launched).toEqual({ docker: 1 });
    } finally {
      silence.mockRestore();
      process.env = { ...env0 };
    }

    // The instance came from the stack's launch template, tagged as the deployment's.
    const template = (await ec2.send(new DescribeLaunchTemplatesCommand({ LaunchTemplateNames: [`gitlab-spot-autoscaler-${DEPLOYMENT}-${STAGE}-docker`] }))).LaunchTemplates![0];
    expect(physical('LaunchTemplateDocker')).toBe(template.LaunchTemplateId);
    const instances = ((await ec2.send(new DescribeInstancesCommand({ Filters: [{ Name: `tag:${TAGS.deployment}`, Values: [DEPLOYMENT] }] }))).Reservations ?? []).flatMap((r) => r.Instances ?? []);
    expect(instances).toHaveLength(1);
    const tags = new Map(instances[0].Tags!.map((t) => [t.Key!, t.Value!]));
    expect(tags.get(TAGS.stage)).toBe(STAGE);
    expect(tags.get(TAGS.pool)).toBe('docker');
    expect(tags.get(TAGS.templateVersion)).toBe(String(template.LatestVersionNumber));
    expect(['t3.medium', 't3a.medium']).toContain(instances[0].InstanceType);
  } finally {
    for (const c of [cfn, lambda, ec2, ssm, sqs]) c.destroy();
  }

  const removed = await sls(['remove', '--stage', STAGE, '--param', `deployment=${DEPLOYMENT}`, '--region', REGION]);
  expect(removed).toMatch(/successfully removed/);
  const cfn2 = new CloudFormationClient(motoClientConfig(moto.endpoint, REGION));
  const left = await cfn2.send(new DescribeStacksCommand({ StackName: STACK })).then(
    (o) => o.Stacks?.[0].StackStatus,
    (e) => e.name,
  );
  cfn2.destroy();
  expect(['DELETE_COMPLETE', 'ValidationError']).toContain(left);
});
