/**
 * pause / drain / resume / status when AWS refuses the caller (no permission, expired credentials):
 * a usage error on stderr, exit code 2, with what to fix, and nothing written. AWS is mocked at the
 * SDK boundary (moto does not enforce IAM); the working paths run against moto in
 * test/lambda/hold-handler.test.ts.
 */
import { mockClient } from 'aws-sdk-client-mock';
import { GetParametersByPathCommand, PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { join } from 'node:path';
import { runCli } from '../helpers/cli';

const ssm = mockClient(SSMClient);
const sts = mockClient(STSClient);
const CONFIG = join(__dirname, '../../samples/config.yaml');
const awsError = (name: string, message: string) => Object.assign(new Error(message), { name, $metadata: {} });

beforeEach(() => {
  ssm.reset();
  sts.reset();
  ssm.on(GetParametersByPathCommand).resolves({ Parameters: [] });
  sts.on(GetCallerIdentityCommand).resolves({ Arn: 'arn:aws:iam::111122223333:user/ops' });
});
afterAll(() => {
  ssm.restore();
  sts.restore();
});

const hold = (command: string) => runCli([command, '--stage', 'prod', '--config', CONFIG, '--pool', 'general', '--region', 'eu-central-1']);

test('a refused PutParameter is a usage error naming the docs section with the policy, exit 2', async () => {
  ssm.on(PutParameterCommand).rejects(awsError('AccessDeniedException', 'User: arn:aws:iam::111122223333:user/ops is not authorized to perform: ssm:PutParameter'));
  const r = await hold('pause');
  expect(r.code).toBe(2);
  expect(r.err).toMatch(/AWS refused the call \(AccessDeniedException: User: .* ssm:PutParameter\); docs\/deployment\.md, "What an operator needs \(IAM\)"/);
  expect(r.out).toBe('');
});

test('expired credentials are a usage error that says to refresh them, exit 2, nothing written', async () => {
  sts.on(GetCallerIdentityCommand).rejects(awsError('ExpiredToken', 'The security token included in the request is expired'));
  const r = await hold('drain');
  expect(r.code).toBe(2);
  expect(r.err).toMatch(/AWS did not accept your credentials \(ExpiredToken: .*\); refresh them/);
  expect(ssm.commandCalls(PutParameterCommand)).toHaveLength(0);
});

test('status: a refused read is the same usage error', async () => {
  ssm.on(GetParametersByPathCommand).rejects(awsError('AccessDeniedException', 'not authorized to perform: ssm:GetParametersByPath'));
  const r = await runCli(['status', '--stage', 'prod', '--config', CONFIG, '--region', 'eu-central-1']);
  expect(r.code).toBe(2);
  expect(r.err).toMatch(/AWS refused the call \(AccessDeniedException/);
});

test('status: an outage (AWS unreachable) names the command and exits 1, not a usage error', async () => {
  ssm.on(GetParametersByPathCommand).rejects(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9'), { code: 'ECONNREFUSED' }));
  const r = await runCli(['status', '--stage', 'prod', '--config', CONFIG, '--region', 'eu-central-1']);
  expect(r.code).toBe(1);
  expect(r.err).toMatch(/^(.*\n)*gitlab-spot-autoscaler status: could not read controller state: connect ECONNREFUSED 127\.0\.0\.1:9\n$/);
  expect(r.out).toBe('');
});
