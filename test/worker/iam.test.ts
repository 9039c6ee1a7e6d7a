/**
 * worker.iam cannot hand the worker role the deployment's control plane: a privileged job (or one
 * on the host network, or with the docker socket) can use the role. Wildcards that reach IAM,
 * assuming any role, acting on other workers, AWS managed policies that grant all of that, and
 * a job secret or token parameter naming the controller's or another pool's.
 */
import { ConfigError, validateConfig } from '../../lib/config';
import { buildStack, StackError } from '../../lib/deploy/stack';
import { iamGlob } from '../../lib/worker/iam';
import { renderUserData } from '../../lib/worker/userdata';
import { makeConfig, poolInput } from '../helpers/config';

const worker = (extra: Record<string, unknown>) => ({ worker: { ...(poolInput().worker as object), ...extra } });

function problemsOf(pools: Record<string, unknown>[], globals: Record<string, unknown> = {}): string[] {
  try {
    validateConfig({ deployment: 'ci', gitlab: { url: 'https://gitlab.example.com' }, pools, ...globals }, 'test.yaml');
  } catch (e) {
    if (e instanceof ConfigError) return e.problems;
    throw e;
  }
  return [];
}
const statement = (Action: unknown, Resource: unknown = '*') => problemsOf([poolInput(worker({ iam: { statements: [{ Effect: 'Allow', Action, Resource }] } }))]);

describe('worker.iam statements', () => {
  test.each([
    ['*:*', /grants iam:\* actions/],
    ['i*:*', /grants iam:\* actions/],
    ['IAM:PassRole', /grants iam:\* actions/],
    ['?am:Create*', /grants iam:\* actions/],
    ['ec2:*Tags', /grants ec2:CreateTags: the worker role must not act on other workers/],
    ['ec2:*', /grants ec2:CreateTags/],
    ['EC2:modifyinstancemetadataoptions', /grants ec2:ModifyInstanceMetadataOptions/],
    ['ec2:CreateLaunchTemplateVersion', /grants ec2:CreateLaunchTemplateVersion/],
    ['ssm:SendCommand', /grants ssm:SendCommand/],
    ['ec2:Terminate*', /grants ec2:TerminateInstances/],
    ['lambda:Update*', /grants lambda:UpdateFunctionCode: .*the controller's functions/],
    ['cloudformation:*', /grants cloudformation:UpdateStack/],
  ])('Action %s is refused with the reason', (action, why) => {
    const problems = statement(action);
    expect(problems).toEqual([expect.stringMatching(/^pools\[0\]\.worker\.iam\.statements\[0\]\.Action: Action /)]);
    expect(problems[0]).toMatch(why);
  });

  test('sts:AssumeRole on any role is refused; on a named role it is accepted', () => {
    expect(statement('sts:AssumeRole', '*')).toEqual([expect.stringMatching(/lets the worker become any role/)]);
    expect(statement('sts:*', ['arn:aws:iam::123456789012:role/cache', 'arn:aws:iam::123456789012:role/*'])).toEqual([expect.stringMatching(/Resource "arn:aws:iam::123456789012:role\/\*"/)]);
    expect(statement('sts:AssumeRole', 'arn:aws:iam::123456789012:role/gitlab-cache-upload')).toEqual([]);
  });

  test('what the worker host needs is accepted, and Deny statements are never refused', () => {
    expect(statement(['ecr:GetAuthorizationToken', 'ecr:BatchGetImage', 'ecr:GetDownloadUrlForLayer'])).toEqual([]);
    expect(statement(['kms:Decrypt', 's3:GetObject'], 'arn:aws:s3:::assets/*')).toEqual([]);
    expect(problemsOf([poolInput(worker({ iam: { statements: [{ Effect: 'Deny', Action: '*', Resource: '*' }] } }))])).toEqual([]);
  });

  test('NotAction and NotResource are refused: "everything but" cannot be checked', () => {
    const problems = problemsOf([poolInput(worker({ iam: { statements: [{ Effect: 'Allow', NotAction: 'iam:*', Resource: '*' }] } }))]);
    expect(problems).toContainEqual(expect.stringMatching(/statements\[0\]: unknown setting "NotAction"/));
  });

  test('AWS managed policies that grant the control plane are refused by name', () => {
    const problems = problemsOf([
      poolInput(worker({ iam: { managedPolicyArns: ['arn:aws:iam::aws:policy/AdministratorAccess', 'arn:aws:iam::aws:policy/AmazonEC2FullAccess', 'arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly'] } })),
    ]);
    expect(problems).toEqual([
      expect.stringMatching(/managedPolicyArns\[0\]: AdministratorAccess grants every action, IAM included/),
      expect.stringMatching(/managedPolicyArns\[1\]: AmazonEC2FullAccess grants every EC2 action/),
    ]);
  });

  test('iamGlob: * and ? as IAM reads them', () => {
    expect(iamGlob('ec2:*Tags', 'ec2:CreateTags')).toBe(true);
    expect(iamGlob('ec2:Describe*', 'ec2:CreateTags')).toBe(false);
    expect(iamGlob('s3:Get?bject', 's3:GetObject')).toBe(true);
    expect(iamGlob('arn:aws:iam::1:role/a.b', 'arn:aws:iam::1:role/aXb', false)).toBe(false);
  });
});

describe('parameters of the controller and of other pools', () => {
  const pools = (a: Record<string, unknown>) => [poolInput({ name: 'a', ...a }), poolInput({ name: 'b', runUntagged: false, tags: ['b'] })];

  test('a job secret may not name the controller\'s parameters, a runner token, or another pool\'s secret', () => {
    expect(problemsOf(pools({ runnerSecrets: [{ setting: 'environment.X', parameter: '/gitlab-spot-autoscaler/ci/prod/secrets/gitlab-api-token' }] }))).toEqual([
      expect.stringMatching(/^pools\[0\]\.runnerSecrets\[0\]\.parameter: .* is the controller's gitlab-api-token parameter; a job secret reaches every job/),
    ]);
    expect(problemsOf(pools({ runnerSecrets: [{ setting: 'environment.X', parameter: '/gitlab-spot-autoscaler/ci/dev/secrets/runner-token/b' }] }))).toEqual([expect.stringMatching(/is pool "b"'s runner token/)]);
    expect(problemsOf(pools({ runnerSecrets: [{ setting: 'environment.X', parameter: '/gitlab-spot-autoscaler/ci/dev/secrets/runner-token/a' }] }))).toEqual([expect.stringMatching(/is the pool's own runner token/)]);
    expect(problemsOf(pools({ runnerSecrets: [{ setting: 'environment.X', parameter: '/gitlab-spot-autoscaler/ci/prod/secrets/runner/b/environment/X' }] }))).toEqual([expect.stringMatching(/is a job secret of pool "b"/)]);
    expect(problemsOf(pools({ runnerSecrets: [{ setting: 'environment.X', parameter: '/ops/api' }] }), { gitlab: { url: 'https://gitlab.example.com', apiTokenParameter: '/ops/api' } })).toEqual([
      expect.stringMatching(/is the GitLab API token/),
    ]);
    // A registry credential shared by pools, outside the deployment's names, is fine.
    expect(problemsOf(pools({ runnerSecrets: [{ setting: 'environment.DOCKER_AUTH_CONFIG', parameter: '/ci/shared/docker-auth' }] }))).toEqual([]);
  });

  test('the Deny on other pools\' parameters grows with the pools: a role over IAM\'s 10,240 characters is refused with why, before CloudFormation', () => {
    const pools = (n: number) =>
      Array.from({ length: n }, (_, i) =>
        poolInput({ name: `team-${String(i).padStart(2, '0')}-builders`, runUntagged: i === 0, tags: i === 0 ? [] : [`t${i}`], runnerSecrets: [{ setting: 'environment.NPM_TOKEN' }], ...worker({ securityGroups: ['sg-0abc'], iam: { managedPolicyArns: ['arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore'] } }) }),
      );
    const build = (n: number) => buildStack({ config: makeConfig(pools(n), { region: 'eu-west-1' }), stage: 'prod', region: 'eu-west-1', renderUserData: (o) => renderUserData(o) });
    expect(() => build(20)).not.toThrow();
    expect(() => build(60)).toThrow(StackError);
    expect(() => build(60)).toThrow(/worker role of pool "team-00-builders" needs \d+ characters of inline policy, over IAM's 10240 per role/);
  });
});

describe('the role\'s Deny on the deployment\'s parameters holds against generous extras', () => {
  // Evaluated with the template tests' IAM evaluator: a pool whose worker.iam allows every SSM
  // read and write (what AmazonSSMManagedInstanceCore / AmazonSSMReadOnlyAccess and a careless
  // statement add).
  const { readFileSync } = require('node:fs') as typeof import('node:fs');
  const { join } = require('node:path') as typeof import('node:path');
  const { parseConfig } = require('../../lib/config') as typeof import('../../lib/config');
  const { evaluate, resolve } = require('../helpers/iam') as typeof import('../helpers/iam');
  const raw = JSON.parse(JSON.stringify(parseConfig(readFileSync(join(__dirname, '../../samples/config.yaml'), 'utf8'))));
  raw.pools[0].worker.iam = { statements: [{ Effect: 'Allow', Action: ['ssm:GetParameter*', 'ssm:PutParameter', 'ssm:DeleteParameter', 'ssm:LabelParameterVersion'], Resource: '*' }] };
  raw.pools[1].runnerSecrets = [{ setting: 'environment.NPM_TOKEN' }];
  const config = parseConfig(JSON.stringify(raw));
  const stack = buildStack({ config, stage: 'prod', region: 'eu-central-1', vpcId: 'vpc-0123456789abcdef0', renderUserData });
  const env = { partition: 'aws', region: 'eu-central-1', account: '123456789012', refs: { 'CacheBucket.Arn': 'arn:aws:s3:::b', 'WorkerReportQueue.Arn': 'arn:aws:sqs:eu-central-1:123456789012:reports' } };
  const role = resolve((stack.resources as any).WorkerRoleGeneral.Properties.Policies.flatMap((p: any) => p.PolicyDocument.Statement), env) as Record<string, any>[];
  const param = (name: string) => `arn:aws:ssm:eu-central-1:123456789012:parameter${name}`;
  const base = '/gitlab-spot-autoscaler/acme-ci/prod';

  test('reading by path from any ancestor of the deployment\'s tree is denied: SSM returns every level below a path one may read', () => {
    for (const path of ['/', '/gitlab-spot-autoscaler', '/gitlab-spot-autoscaler/acme-ci', base, `${base}/secrets`])
      expect(`${path}: ${evaluate(role, { action: 'ssm:GetParametersByPath', resource: param(path === '/' ? '/' : path) })}`).toBe(`${path}: deny`);
    expect(evaluate(role, { action: 'ssm:GetParametersByPath', resource: param('/team-general/tools') })).toBe('allow');
  });

  test('writing the controller\'s config or state, or another pool\'s token, is denied', () => {
    for (const [action, name] of [['ssm:PutParameter', '/config'], ['ssm:PutParameter', '/state/meta'], ['ssm:DeleteParameter', '/secrets/runner-token/heavy'], ['ssm:LabelParameterVersion', '/secrets/gitlab-api-token']])
      expect(`${action} ${name}: ${evaluate(role, { action, resource: param(`${base}${name}`) })}`).toBe(`${action} ${name}: deny`);
    expect(evaluate(role, { action: 'ssm:GetParameter', resource: param(`${base}/secrets/runner-token/general`) })).toBe('allow');
  });
});
