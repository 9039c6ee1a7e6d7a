/**
 * The real `serverless` commands an operator runs against a deployed stack, with only `--stage`
 * and the deployment's name (no config file): `info`, `logs`, `invoke` and `remove` run against
 * moto (AWS_ENDPOINT_URL, dummy credentials), where the test created what a deployment would have
 * left: its stack and a function's log group. A command that builds the stack (`deploy`) must refuse
 * before it does anything; the other refusals are serverless-plugin.test.ts's, the names
 * serverless-vars.test.ts's (each real command costs about 2 s of CPU).
 */
import { CloudFormationClient, CreateStackCommand, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { CloudWatchLogsClient, CreateLogGroupCommand, CreateLogStreamCommand, PutLogEventsCommand } from '@aws-sdk/client-cloudwatch-logs';
import { startMoto, motoClientConfig, type MotoServer } from '../helpers/moto';
import { serverless } from '../helpers/serverless';

jest.setTimeout(90_000);

const REGION = 'eu-central-1';
const STACK = 'gitlab-spot-autoscaler-acme-ci-prod';
let moto: MotoServer;

const sls = (args: string[], env: Record<string, string> = {}) => serverless(args, { endpoint: moto.endpoint, env });

const byName = ['--stage', 'prod', '--param', 'deployment=acme-ci', '--region', REGION];

beforeAll(async () => {
  moto = await startMoto();
  const cfn = new CloudFormationClient(motoClientConfig(moto.endpoint, REGION));
  await cfn.send(
    new CreateStackCommand({
      StackName: STACK,
      TemplateBody: JSON.stringify({ Resources: { EventQueue: { Type: 'AWS::SQS::Queue' } }, Outputs: { EventQueueUrl: { Value: { Ref: 'EventQueue' } } } }),
    }),
  );
  const logs = new CloudWatchLogsClient(motoClientConfig(moto.endpoint, REGION));
  const group = '/aws/lambda/gsa-acme-ci-prod-reconcile';
  await logs.send(new CreateLogGroupCommand({ logGroupName: group }));
  await logs.send(new CreateLogStreamCommand({ logGroupName: group, logStreamName: '2026/11/30/[$LATEST]0' }));
  await logs.send(new PutLogEventsCommand({ logGroupName: group, logStreamName: '2026/11/30/[$LATEST]0', logEvents: [{ timestamp: Date.now(), message: 'pool docker: launched 3 (3 for pending jobs)' }] }));
  cfn.destroy();
  logs.destroy();
});

afterAll(async () => {
  await moto?.stop();
});

test('info, logs and invoke find the deployment by name alone; deploy refuses', async () => {
  const [info, logs, invoke, deploy] = await Promise.all([
    sls(['info', ...byName]),
    sls(['logs', '-f', 'reconcile', ...byName]),
    sls(['invoke', '-f', 'webhook', '-d', '{}', ...byName]),
    sls(['deploy', ...byName]),
  ]);
  expect(info.code).toBe(0);
  expect(info.out).toMatch(new RegExp(`stack: ${STACK}`));
  expect(info.out).toMatch(/region: eu-central-1/);
  expect(info.out).toMatch(/reconcile: gsa-acme-ci-prod-reconcile/);

  expect(logs.code).toBe(0);
  expect(logs.out).toContain('pool docker: launched 3 (3 for pending jobs)');

  // moto runs no Lambda functions here: the error names the function serverless asked for.
  expect(invoke.out).toMatch(/function:gsa-acme-ci-prod-webhook/);

  expect(deploy.code).not.toBe(0);
  expect(deploy.out).toContain('`serverless deploy` builds the stack from the config file, and none was given (only --param deployment=acme-ci): pass --param config=');
  // The refused deploy changed nothing.
  const cfn = new CloudFormationClient(motoClientConfig(moto.endpoint, REGION));
  expect((await cfn.send(new DescribeStacksCommand({ StackName: STACK }))).Stacks?.[0].StackStatus).toBe('CREATE_COMPLETE');
  cfn.destroy();
});

test('remove deletes the stack by name, with the region from AWS_REGION', async () => {
  const r = await sls(['remove', '--stage', 'prod', '--param', 'deployment=acme-ci'], { AWS_REGION: REGION });
  expect(r.out).toMatch(/successfully removed/);
  expect(r.code).toBe(0);
  const cfn = new CloudFormationClient(motoClientConfig(moto.endpoint, REGION));
  const left = await cfn.send(new DescribeStacksCommand({ StackName: STACK })).then(
    (o) => o.Stacks?.[0].StackStatus,
    (e) => e.name,
  );
  expect(['DELETE_COMPLETE', 'ValidationError']).toContain(left);
  cfn.destroy();
});

test('without a config or a deployment name every command says what to pass', async () => {
  const r = await sls(['info', '--stage', 'prod', '--region', REGION]);
  expect(r.code).not.toBe(0);
  expect(r.out).toMatch(/no config file given: pass --param config=.*--param deployment=NAME/);
  expect(r.out).not.toMatch(/NodeVersionSupportWarning/);
});
