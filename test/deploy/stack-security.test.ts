/**
 * The template's security properties (issue 11), checked two ways: the statements themselves (each
 * condition named in docs/deployment.md is there), and requests evaluated against them with a small
 * IAM evaluator (test/helpers/iam.ts): a legitimate instant CreateFleet passes every resource it
 * touches, and each way a compromised reconcile function or a worker's stolen credentials could
 * reach further is denied.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseConfig, type Config } from '../../lib/config';
import { buildStack, SIZING, StackError, type StackOptions } from '../../lib/deploy/stack';
import { TAGS } from '../../lib/controller/tags';
import { LAUNCH_STATEMENTS } from '../../lib/deploy/names';
import { renderUserData } from '../../lib/worker/userdata';
import { evaluate, resolve, type AwsRequest, type Context, type TemplateEnv } from '../helpers/iam';
import { ACCOUNT, SAMPLE_ENV } from '../helpers/stack-env';

const sampleText = readFileSync(join(__dirname, '../../samples/config.yaml'), 'utf8');
const sample = parseConfig(sampleText, 'samples/config.yaml');
const withChanges = (change: (raw: any) => void): Config => {
  const raw = JSON.parse(JSON.stringify(sample));
  change(raw);
  return parseConfig(JSON.stringify(raw), 'inline');
};
const opts = (over: Partial<StackOptions> = {}): StackOptions => ({ config: sample, stage: 'prod', region: 'eu-central-1', vpcId: 'vpc-0123456789abcdef0', renderUserData, ...over });

const env: TemplateEnv = SAMPLE_ENV;
const ec2 = (what: string) => `arn:aws:ec2:eu-central-1:${ACCOUNT}:${what}`;
const LT = { general: ec2('launch-template/lt-0general'), heavy: ec2('launch-template/lt-0heavy') };

/** A role's statements: its inline policies and the stack's own managed policies it attaches. */
function roleStatements(config: Config, role: string): Record<string, any>[] {
  const resources = buildStack(opts({ config })).resources as Record<string, any>;
  const props = resources[role].Properties;
  const managed = (props.ManagedPolicyArns ?? []).filter((a: any) => a?.Ref && resources[a.Ref]?.Type === 'AWS::IAM::ManagedPolicy').map((a: any) => resources[a.Ref].Properties.PolicyDocument);
  return resolve([...props.Policies.map((p: any) => p.PolicyDocument), ...managed].flatMap((d: any) => d.Statement), env) as Record<string, any>[];
}

/**
 * The authorization requests of one instant CreateFleet from pool `pool`'s template, per the EC2
 * Service Authorization Reference: ec2:CreateFleet on every resource (its instance resource offers
 * ec2:InstanceType and request tags, no ec2:LaunchTemplate), and ec2:RunInstances for what the fleet
 * launches (which offers ec2:LaunchTemplate on every resource).
 */
function fleetLaunch(o: { template?: string; type?: string; subnet?: string; group?: string; image?: string; tags?: Record<string, string>; runInstancesTemplate?: string | null } = {}): AwsRequest[] {
  const template = o.template ?? LT.general;
  const tags: Context = Object.fromEntries(Object.entries(o.tags ?? { [TAGS.deployment]: 'acme-ci', [TAGS.stage]: 'prod', [TAGS.pool]: 'general' }).map(([k, v]) => [`aws:RequestTag/${k}`, v]));
  const instance = { ...tags, 'aws:TagKeys': Object.keys(tags).map((k) => k.slice('aws:RequestTag/'.length)), 'ec2:InstanceType': o.type ?? 'm6i.large' };
  const rt = o.runInstancesTemplate === null ? {} : { 'ec2:LaunchTemplate': o.runInstancesTemplate ?? template };
  const others = [
    template,
    ec2(`subnet/${o.subnet ?? 'subnet-0a1b2c3d4e5f60001'}`),
    ec2(`security-group/${o.group ?? 'sg-0own'}`),
    `arn:aws:ec2:eu-central-1::image/${o.image ?? 'ami-0aaaaaaaaaaaaaaaa'}`,
    ec2('volume/*'),
    ec2('network-interface/*'),
  ];
  return [
    { action: 'ec2:CreateFleet', resource: ec2('fleet/fleet-1'), context: {} },
    { action: 'ec2:CreateFleet', resource: ec2('instance/*'), context: instance },
    // Karpenter's policy grants CreateFleet on spot requests too: whether EC2 asks is not documented.
    ...[...others, ec2('spot-instances-request/*')].map((resource) => ({ action: 'ec2:CreateFleet', resource, context: {} })),
    { action: 'ec2:RunInstances', resource: ec2('instance/*'), context: { ...instance, ...rt } },
    ...[...others, ec2('spot-instances-request/*')].map((resource) => ({ action: 'ec2:RunInstances', resource, context: { ...rt } })),
    { action: 'ec2:CreateTags', resource: ec2('instance/*'), context: { 'ec2:CreateAction': 'CreateFleet' } },
    { action: 'ec2:CreateTags', resource: ec2('volume/*'), context: { 'ec2:CreateAction': 'CreateFleet' } },
    { action: 'iam:PassRole', resource: env.refs['WorkerRoleGeneral.Arn'], context: { 'iam:PassedToService': 'ec2.amazonaws.com' } },
  ];
}
const denied = (statements: Record<string, any>[], reqs: AwsRequest[]) => reqs.filter((r) => evaluate(statements, r) !== 'allow');

describe('the reconcile role launches only what the deployment defines', () => {
  const reconcile = roleStatements(sample, 'ReconcileRole');

  it('allows every authorization a legitimate instant CreateFleet needs, spot and on-demand, from either pool', () => {
    expect(denied(reconcile, fleetLaunch())).toEqual([]);
    expect(denied(reconcile, fleetLaunch({ template: LT.heavy, type: 'c6i.2xlarge', tags: { [TAGS.deployment]: 'acme-ci', [TAGS.stage]: 'prod', [TAGS.pool]: 'heavy' } }))).toEqual([]);
    // With the deployment cache bucket's name, which the workers of both sample pools read at boot.
    const withBucket = { [TAGS.deployment]: 'acme-ci', [TAGS.stage]: 'prod', [TAGS.pool]: 'general', [TAGS.cacheBucket]: 'acme-ci-prod-cachebucket-1' };
    expect(denied(reconcile, fleetLaunch({ tags: withBucket }))).toEqual([]);
  });

  it.each([
    ['another launch template (another image, user data, instance profile)', { template: ec2('launch-template/lt-0attacker'), runInstancesTemplate: ec2('launch-template/lt-0attacker') }, 'launch-template'],
    ['an instance type no pool configures', { type: 'p5.48xlarge' }, 'instance'],
    ['instances without the deployment tags', { tags: { [TAGS.deployment]: 'other', [TAGS.stage]: 'prod' } }, 'instance'],
    ['a subnet no pool configures', { subnet: 'subnet-0ffffffffffffffff' }, 'subnet'],
    ['a security group no pool configures', { group: 'sg-0open' }, 'security-group'],
  ])('denies a launch with %s', (_what, o, resourceType) => {
    const refused = denied(reconcile, fleetLaunch(o as any));
    // Refused on that resource, for both actions (and nothing else of the launch is what refuses it).
    expect(refused.filter((r) => r.resource.includes(`:${resourceType}/`)).map((r) => r.action).sort()).toEqual(['ec2:CreateFleet', 'ec2:RunInstances']);
  });

  it("reads the operators' holds (pause / drain) and cannot write them: operators do", () => {
    const param = (name: string) => `arn:aws:ssm:eu-central-1:${ACCOUNT}:parameter/gitlab-spot-autoscaler/acme-ci/prod/${name}`;
    expect(evaluate(reconcile, { action: 'ssm:GetParametersByPath', resource: param('operator') })).toBe('allow');
    for (const action of ['ssm:PutParameter', 'ssm:DeleteParameter']) expect(evaluate(reconcile, { action, resource: param('operator/general') })).toBe('implicit-deny');
  });

  it('denies RunInstances without one of the deployment\'s launch templates (the key RunInstances offers)', () => {
    const direct = fleetLaunch({ runInstancesTemplate: null }).filter((r) => r.action === 'ec2:RunInstances' && r.resource.endsWith(':instance/*'));
    expect(denied(reconcile, direct)).toEqual(direct);
    const other = fleetLaunch({ runInstancesTemplate: ec2('launch-template/lt-0attacker') }).filter((r) => r.action === 'ec2:RunInstances' && r.resource.endsWith(':instance/*'));
    expect(denied(reconcile, other)).toEqual(other);
  });

  it('states each condition on the resource it applies to', () => {
    const grants = (action: string, resourceEnd: string) => reconcile.filter((s) => [].concat(s.Action).includes(action as never) && [].concat(s.Resource).some((r: string) => r.endsWith(resourceEnd)));
    const types = [...new Set(sample.pools.flatMap((p) => p.worker.instanceTypes))].sort();
    const tags = { [`aws:RequestTag/${TAGS.deployment}`]: 'acme-ci', [`aws:RequestTag/${TAGS.stage}`]: 'prod' };
    expect(grants('ec2:CreateFleet', ':instance/*').map((s) => s.Condition)).toEqual([{ StringEquals: { ...tags, 'ec2:InstanceType': types } }]);
    expect(grants('ec2:RunInstances', ':instance/*').map((s) => s.Condition)).toEqual([{ StringEquals: { ...tags, 'ec2:InstanceType': types }, ArnEquals: { 'ec2:LaunchTemplate': [LT.general, LT.heavy] } }]);
    // Launch templates, subnets and groups by exact ARN; nothing of these types by wildcard.
    const launchResources = reconcile.filter((s) => [].concat(s.Action).some((a: string) => a === 'ec2:CreateFleet' || a === 'ec2:RunInstances')).flatMap((s) => [].concat(s.Resource)) as string[];
    expect(launchResources.filter((r) => /:(launch-template|subnet|security-group)\//.test(r)).sort()).toEqual(
      [LT.general, LT.heavy, ec2('subnet/subnet-0a1b2c3d4e5f60001'), ec2('subnet/subnet-0a1b2c3d4e5f60002'), ec2('subnet/subnet-0a1b2c3d4e5f60003'), ec2('security-group/sg-0own')].sort(),
    );
    expect(launchResources).not.toContain('*');
    // Only the workers' roles are passed, and only to EC2.
    const pass = reconcile.filter((s) => [].concat(s.Action).includes('iam:PassRole' as never));
    expect(pass).toEqual([expect.objectContaining({ Resource: [env.refs['WorkerRoleGeneral.Arn'], env.refs['WorkerRoleHeavy.Arn']], Condition: { StringEquals: { 'iam:PassedToService': 'ec2.amazonaws.com' } } })]);
  });

  it('has the statements a refused launch names, and docs/deployment.md says how to fix each', () => {
    const sids = reconcile.map((s) => s.Sid);
    const docs = readFileSync(join(__dirname, '../../docs/deployment.md'), 'utf8');
    const section = docs.slice(docs.indexOf('### A refused launch'));
    expect(section.length).toBeLessThan(docs.length);
    for (const sid of Object.values(LAUNCH_STATEMENTS)) {
      expect(sids).toContain(sid);
      expect(section).toContain(sid);
    }
    expect(section).toContain('requireLaunchTemplateKey: false');
  });

  it('drops only the ec2:LaunchTemplate condition with requireLaunchTemplateKey: false (after a refused launch proves EC2 leaves the key out)', () => {
    const off = roleStatements(withChanges((raw) => (raw.requireLaunchTemplateKey = false)), 'ReconcileRole');
    // A fleet whose RunInstances check carries no ec2:LaunchTemplate: refused by default, allowed with the switch.
    expect(denied(reconcile, fleetLaunch({ runInstancesTemplate: null })).map((r) => r.resource)).toEqual([ec2('instance/*')]);
    expect(denied(off, fleetLaunch({ runInstancesTemplate: null }))).toEqual([]);
    // Everything else stays pinned: templates, types, tags, subnets, groups.
    const withoutKey = (o: object) => denied(off, fleetLaunch({ ...o, runInstancesTemplate: null }));
    expect(withoutKey({ template: ec2('launch-template/lt-0attacker') }).length).toBeGreaterThan(0);
    expect(withoutKey({ type: 'p5.48xlarge' }).length).toBeGreaterThan(0);
    expect(withoutKey({ subnet: 'subnet-0ffffffffffffffff' }).length).toBeGreaterThan(0);
    expect(withoutKey({ tags: { [TAGS.deployment]: 'other', [TAGS.stage]: 'prod' } }).length).toBeGreaterThan(0);
    const strip = (st: Record<string, any>[]) => JSON.stringify(st).replace(/,"ArnEquals":\{"ec2:LaunchTemplate":\[[^\]]*\]\}/, '');
    expect(strip(off)).toBe(strip(reconcile));
  });

  it('names the AMIs when every pool gives an id; any image only when a pool resolves its AMI from SSM or is pre-built', () => {
    const pinned = withChanges((raw) => {
      raw.pools[0].worker.ami = 'ami-0aaaaaaaaaaaaaaaa';
      raw.pools[1].worker.ami = 'ami-0bbbbbbbbbbbbbbbb';
      for (const p of raw.pools) p.worker.image = 'base';
    });
    const st = roleStatements(pinned, 'ReconcileRole');
    expect(denied(st, fleetLaunch())).toEqual([]);
    const other = denied(st, fleetLaunch({ image: 'ami-0badbadbadbadbad0' }));
    expect(other.map((r) => `${r.action} ${r.resource}`)).toEqual(['ec2:CreateFleet arn:aws:ec2:eu-central-1::image/ami-0badbadbadbadbad0', 'ec2:RunInstances arn:aws:ec2:eu-central-1::image/ami-0badbadbadbadbad0']);
    // samples/config.yaml's pools are pre-built (their image's id is known only when it is built), and
    // based on AL2023 from SSM: no image id is known when the stack is built.
    expect(denied(reconcile, fleetLaunch({ image: 'ami-0anything00000000' }))).toEqual([]);
    const prebuiltOnIds = withChanges((raw) => {
      raw.pools[0].worker.ami = 'ami-0aaaaaaaaaaaaaaaa';
      raw.pools[1].worker.ami = 'ami-0bbbbbbbbbbbbbbbb';
    });
    expect(denied(roleStatements(prebuiltOnIds, 'ReconcileRole'), fleetLaunch({ image: 'ami-0builtimage00000' }))).toEqual([]);
  });

  it('keeps the reconcile policy under IAM\'s 10,240-character inline limit for 10 pools of 6 types and 3 subnets', () => {
    const big = withChanges((raw) => {
      raw.pools = Array.from({ length: 10 }, (_, i) => ({
        ...raw.pools[0],
        name: `pool-${i}`,
        runUntagged: i === 0,
        tags: [`t${i}`],
        worker: { ...raw.pools[0].worker, instanceTypes: ['m6i', 'm6a', 'm5', 'm7i', 'c6i', 'r6i'].map((f) => `${f}.${['large', 'xlarge'][i % 2]}`), subnets: [1, 2, 3].map((z) => `subnet-0${i}${z}aaaaaaaaaaaaa`) },
      }));
    });
    const refs = { ...env.refs, ...Object.fromEntries(big.pools.map((p, i) => [`LaunchTemplatePool${i}`, `lt-0${String(i).padStart(16, '0')}`])), ...Object.fromEntries(big.pools.map((_, i) => [`WorkerRolePool${i}.Arn`, `arn:aws:iam::${ACCOUNT}:role/gitlab-spot-autoscaler-acme-ci-prod-WorkerRolePool${i}-ABCDEFGHIJKL`])) };
    const res = buildStack(opts({ config: big })).resources as Record<string, any>;
    const doc = resolve(res.ReconcileRole.Properties.Policies[0].PolicyDocument, { ...env, refs });
    // IAM counts the policy without white space.
    expect(JSON.stringify(doc).length).toBeLessThan(10_240);
  });
});

describe("a worker reaches only its own pool's token and cache", () => {
  const general = roleStatements(sample, 'WorkerRoleGeneral');
  const param = (name: string) => `arn:aws:ssm:eu-central-1:${ACCOUNT}:parameter/gitlab-spot-autoscaler/acme-ci/prod/${name}`;
  const object = (key: string) => `arn:aws:s3:::acme-ci-prod-cachebucket-1/${key}`;

  it('reads its own runner token and no other parameter of the deployment', () => {
    expect(evaluate(general, { action: 'ssm:GetParameter', resource: param('secrets/runner-token/general') })).toBe('allow');
    for (const other of ['secrets/runner-token/heavy', 'secrets/webhook-secret', 'secrets/gitlab-api-token', 'config', 'state/meta'])
      for (const action of ['ssm:GetParameter', 'ssm:GetParameters', 'ssm:GetParametersByPath', 'ssm:PutParameter'])
        expect(`${action} ${other}: ${evaluate(general, { action, resource: param(other) })}`).not.toBe(`${action} ${other}: allow`);
    // No Allow names an SSM resource by wildcard.
    expect(JSON.stringify(general.filter((s) => s.Effect === 'Allow' && [].concat(s.Action).some((a: string) => a.startsWith('ssm:'))).flatMap((s) => s.Resource))).not.toContain('*');
  });

  it('ships its log only into its own stream of its own pool\'s group (named by its address, which IAM knows), and deletes no log', () => {
    const group = (pool: string) => `arn:aws:logs:eu-central-1:${ACCOUNT}:log-group:/gitlab-spot-autoscaler/acme-ci/prod/workers/${pool}`;
    const me = { 'aws:EC2InstanceSourcePrivateIPv4': '10.0.1.23' };
    const put = (resource: string, context: Context = me) => evaluate(general, { action: 'logs:PutLogEvents', resource, context });
    expect(put(`${group('general')}:log-stream:i-0aaaaaaaaaaaaaaaa/10.0.1.23`)).toBe('allow');
    expect(evaluate(general, { action: 'logs:CreateLogStream', resource: `${group('general')}:log-stream:i-0aaaaaaaaaaaaaaaa/10.0.1.23`, context: me })).toBe('allow');
    // Another worker's stream (another address), in its pool or another pool's group; without the key (not instance credentials).
    expect(put(`${group('general')}:log-stream:i-0bbbbbbbbbbbbbbbb/10.0.2.7`)).toBe('implicit-deny');
    expect(put(`${group('general')}:log-stream:i-0bbbbbbbbbbbbbbbb/110.0.1.23`)).toBe('implicit-deny');
    expect(put(`${group('heavy')}:log-stream:i-0aaaaaaaaaaaaaaaa/10.0.1.23`)).toBe('implicit-deny');
    expect(put(`${group('general')}:log-stream:i-0aaaaaaaaaaaaaaaa/10.0.1.23`, {})).toBe('implicit-deny');
    // Whatever worker.iam adds (CloudWatchAgentServerPolicy: logs:* on *), no worker deletes or re-routes the deployment's logs.
    const generous = [...general, { Effect: 'Allow', Action: ['logs:*'], Resource: '*' }];
    for (const action of ['logs:DeleteLogGroup', 'logs:DeleteLogStream', 'logs:PutRetentionPolicy', 'logs:PutSubscriptionFilter', 'logs:DisassociateKmsKey'])
      expect(`${action} ${evaluate(generous, { action, resource: `${group('heavy')}:*`, context: me })}`).toBe(`${action} deny`);
    expect(evaluate(generous, { action: 'logs:DeleteLogGroup', resource: `arn:aws:logs:eu-central-1:${ACCOUNT}:log-group:/aws/lambda/gsa-acme-ci-prod-reconcile`, context: me })).toBe('deny');
    expect(evaluate(generous, { action: 'logs:PutLogEvents', resource: `arn:aws:logs:eu-central-1:${ACCOUNT}:log-group:/aws/lambda/gsa-acme-ci-prod-reconcile:log-stream:x`, context: me })).toBe('deny');
  });

  it("reads, writes and lists only its pool's cache prefix", () => {
    for (const action of ['s3:GetObject', 's3:PutObject', 's3:DeleteObject']) {
      expect(evaluate(general, { action, resource: object('general/project/17/cache-key') })).toBe('allow');
      expect(evaluate(general, { action, resource: object('heavy/project/17/cache-key') })).toBe('implicit-deny');
      expect(evaluate(general, { action, resource: object('generalx/project/17/cache-key') })).toBe('implicit-deny');
      expect(evaluate(general, { action, resource: object('project/17/cache-key') })).toBe('implicit-deny');
    }
    const list = (prefix?: string) => evaluate(general, { action: 's3:ListBucket', resource: 'arn:aws:s3:::acme-ci-prod-cachebucket-1', context: prefix === undefined ? {} : { 's3:prefix': prefix } });
    expect(list('general/project/')).toBe('allow');
    expect(list('heavy/')).toBe('implicit-deny');
    expect(list('')).toBe('implicit-deny');
    expect(list()).toBe('implicit-deny');
  });

  it('shares a prefix only between pools that name the same cache.path', () => {
    const shared = withChanges((raw) => {
      raw.pools[0].worker.cache = { path: 'common' };
      raw.pools[1].worker.cache = { path: 'common' };
    });
    for (const role of ['WorkerRoleGeneral', 'WorkerRoleHeavy']) {
      const st = roleStatements(shared, role);
      expect(evaluate(st, { action: 's3:PutObject', resource: object('common/project/1/k') })).toBe('allow');
      expect(evaluate(st, { action: 's3:PutObject', resource: object('general/project/1/k') })).toBe('implicit-deny');
    }
  });

  it('keeps other pools\' secrets and caches out of reach whatever the pool\'s worker.iam adds (AmazonSSMManagedInstanceCore reads every parameter)', () => {
    const generous = withChanges((raw) => {
      raw.pools[0].worker.iam = { statements: [{ Effect: 'Allow', Action: ['ssm:GetParameter', 'ssm:GetParameters', 'ssm:GetParametersByPath', 's3:*'], Resource: '*' }] };
      raw.pools[1].runnerSecrets = [{ setting: 'environment.NPM_TOKEN' }];
    });
    const role = roleStatements(generous, 'WorkerRoleGeneral');
    const bucketPolicy = resolve((buildStack(opts({ config: generous })).resources as any).CacheBucketPolicy.Properties.PolicyDocument.Statement, env) as Record<string, any>[];
    const asGeneral = (req: AwsRequest) => evaluate([...role, ...bucketPolicy], { ...req, context: { 'aws:PrincipalArn': env.refs['WorkerRoleGeneral.Arn'], 'aws:SecureTransport': 'true', ...req.context } });
    expect(asGeneral({ action: 'ssm:GetParameter', resource: param('secrets/runner-token/general') })).toBe('allow');
    for (const other of ['secrets/runner-token/heavy', 'secrets/runner/heavy/environment/NPM_TOKEN', 'secrets/webhook-secret', 'secrets/gitlab-api-token', 'config', 'state/meta'])
      expect(`${other}: ${asGeneral({ action: 'ssm:GetParameter', resource: param(other) })}`).toBe(`${other}: deny`);
    expect(asGeneral({ action: 'ssm:GetParametersByPath', resource: param('secrets') })).toBe('deny');
    expect(asGeneral({ action: 's3:GetObject', resource: object('general/project/1/k') })).toBe('allow');
    expect(asGeneral({ action: 's3:PutObject', resource: object('heavy/project/1/k') })).toBe('deny');
    expect(asGeneral({ action: 's3:ListBucket', resource: 'arn:aws:s3:::acme-ci-prod-cachebucket-1', context: { 's3:prefix': 'heavy/' } })).toBe('deny');
    expect(asGeneral({ action: 's3:ListBucket', resource: 'arn:aws:s3:::acme-ci-prod-cachebucket-1', context: { 's3:prefix': 'general/' } })).toBe('allow');
  });

  it('shuts a pool without the deployment cache out of the deployment bucket, whatever it is granted', () => {
    const own = withChanges((raw) => {
      raw.pools[0].worker.cache = { bucketName: 'acme-own-cache' };
      raw.pools[0].worker.iam = { statements: [{ Effect: 'Allow', Action: ['s3:*'], Resource: '*' }] };
    });
    const bucketPolicy = resolve((buildStack(opts({ config: own })).resources as any).CacheBucketPolicy.Properties.PolicyDocument.Statement, env) as Record<string, any>[];
    const role = roleStatements(own, 'WorkerRoleGeneral');
    expect(evaluate([...role, ...bucketPolicy], { action: 's3:GetObject', resource: object('heavy/project/1/k'), context: { 'aws:PrincipalArn': env.refs['WorkerRoleGeneral.Arn'], 'aws:SecureTransport': 'true' } })).toBe('deny');
  });

  it("scopes a pool's own bucket (cache.bucketName) to its prefix too", () => {
    const own = withChanges((raw) => (raw.pools[0].worker.cache = { bucketName: 'acme-own-cache' }));
    const st = roleStatements(own, 'WorkerRoleGeneral');
    expect(evaluate(st, { action: 's3:GetObject', resource: 'arn:aws:s3:::acme-own-cache/general/project/1/k' })).toBe('allow');
    expect(evaluate(st, { action: 's3:GetObject', resource: 'arn:aws:s3:::acme-own-cache/other/k' })).toBe('implicit-deny');
    expect(evaluate(st, { action: 's3:GetObject', resource: object('general/project/1/k') })).toBe('implicit-deny'); // not the deployment's bucket
  });

  it('tags nothing, not even its own instance: it reports its state to the report queue', () => {
    const own = `arn:aws:ec2:eu-central-1:${ACCOUNT}:instance/i-0own`;
    const tag = (resource: string, keys: string[]) => evaluate(general, { action: 'ec2:CreateTags', resource, context: { 'aws:ARN': resource, 'ec2:SourceInstanceARN': own, 'aws:TagKeys': keys } });
    expect(tag(own, [TAGS.state, TAGS.builds])).not.toBe('allow');
    expect(tag(`arn:aws:ec2:eu-central-1:${ACCOUNT}:instance/i-0other`, [TAGS.state])).not.toBe('allow');
    expect(tag(own, [TAGS.retire])).not.toBe('allow');
    expect(tag(own, [TAGS.cacheBucket])).not.toBe('allow');
    const send = (resource: string) => evaluate(general, { action: 'sqs:SendMessage', resource });
    expect(send(`arn:aws:sqs:eu-central-1:${ACCOUNT}:gsa-acme-ci-prod-worker-reports`)).toBe('allow');
    expect(send(`arn:aws:sqs:eu-central-1:${ACCOUNT}:events`)).not.toBe('allow');
  });

  it('refuses a config in which a pool reads another pool\'s token, or the webhook secret, as its runner token', () => {
    const sharedToken = withChanges((raw) => {
      raw.pools[0].runnerTokenParameter = '/ci/token';
      raw.pools[1].runnerTokenParameter = '/ci/token';
    });
    expect(() => buildStack(opts({ config: sharedToken }))).toThrow(StackError);
    expect(() => buildStack(opts({ config: sharedToken }))).toThrow(/pool "heavy" reads its runner token from \/ci\/token, which is also pool "general"'s runner token/);
    const webhook = withChanges((raw) => (raw.pools[1].runnerTokenParameter = '/gitlab-spot-autoscaler/acme-ci/prod/secrets/webhook-secret'));
    expect(() => buildStack(opts({ config: webhook }))).toThrow(/which is also the webhook secret/);
  });

  it('refuses an AMI resolved from a secret (the reconcile role would be allowed to read it)', () => {
    const ami = withChanges((raw) => Object.assign(raw.pools[0].worker, { ami: 'resolve:ssm:/gitlab-spot-autoscaler/acme-ci/prod/secrets/runner-token/heavy', image: 'base' }));
    expect(() => buildStack(opts({ config: ami }))).toThrow(/pool "general" resolves its AMI from .*runner-token\/heavy, which is pool "heavy"'s runner token/);
  });
});

describe('a worker whose pool adds broad extras (worker.iam) still cannot reach past its pool', () => {
  // The pool's extras as the broadest managed policy would grant them (AdministratorAccess, or
  // AmazonSSMReadOnlyAccess + AmazonEC2FullAccess + AmazonS3FullAccess): the guards are Denies.
  const everything = { Effect: 'Allow', Action: '*', Resource: '*' };
  const custom = withChanges((raw) => {
    raw.pools[1].runnerTokenParameter = '/ci/tokens/heavy';
    raw.pools[1].runnerSecrets = [{ setting: 'environment.NPM_TOKEN', parameter: '/ci/secrets/heavy/npm' }];
  });
  const stack = buildStack(opts({ config: custom }));
  const bucketPolicy = resolve((stack.resources as any).CacheBucketPolicy.Properties.PolicyDocument.Statement, env) as Record<string, any>[];
  const general = [...roleStatements(custom, 'WorkerRoleGeneral'), everything, ...bucketPolicy];
  const self = ec2('instance/i-0own');
  const base = { 'aws:PrincipalArn': env.refs['WorkerRoleGeneral.Arn'], 'aws:SecureTransport': 'true', 'ec2:SourceInstanceARN': self };
  const as = (action: string, resource: string, context: Context = {}) => evaluate(general, { action, resource, context: { ...base, ...context } });
  const ssmArn = (name: string) => `arn:aws:ssm:eu-central-1:${ACCOUNT}:parameter${name}`;
  const tagged = { [`aws:ResourceTag/${TAGS.deployment}`]: 'acme-ci', [`aws:ResourceTag/${TAGS.stage}`]: 'prod', [`aws:ResourceTag/${TAGS.pool}`]: 'heavy' };

  it('still does what a worker does: its token, its cache, its reports', () => {
    expect(as('ssm:GetParameter', ssmArn('/gitlab-spot-autoscaler/acme-ci/prod/secrets/runner-token/general'))).toBe('allow');
    expect(as('s3:PutObject', 'arn:aws:s3:::acme-ci-prod-cachebucket-1/general/project/1/k')).toBe('allow');
    expect(as('s3:ListBucket', 'arn:aws:s3:::acme-ci-prod-cachebucket-1', { 's3:prefix': 'general/' })).toBe('allow');
    expect(as('sqs:SendMessage', env.refs['WorkerReportQueue.Arn'])).toBe('allow');
    expect(as('sqs:GetQueueUrl', env.refs['WorkerReportQueue.Arn'])).toBe('allow');
  });

  it.each(['/', '/gitlab-spot-autoscaler', '/gitlab-spot-autoscaler/acme-ci', '/gitlab-spot-autoscaler/acme-ci/prod', '/gitlab-spot-autoscaler/acme-ci/prod/secrets', '/ci', '/ci/tokens', '/ci/secrets/heavy'])(
    'cannot read secrets by path from %s (GetParametersByPath is authorized on the path and returns all below it)',
    (path) => expect(as('ssm:GetParametersByPath', ssmArn(path === '/' ? '/' : path))).toBe('deny'),
  );

  it.each([
    ['ssm:GetParameter', '/ci/tokens/heavy'],
    ['ssm:GetParameter', '/ci/secrets/heavy/npm'],
    ['ssm:PutParameter', '/gitlab-spot-autoscaler/acme-ci/prod/config'],
    ['ssm:PutParameter', '/gitlab-spot-autoscaler/acme-ci/prod/state/meta'],
    // An operator's pause or drain: a worker that could rewrite it could resume its own pool.
    ['ssm:PutParameter', '/gitlab-spot-autoscaler/acme-ci/prod/operator/general'],
    ['ssm:DeleteParameter', '/gitlab-spot-autoscaler/acme-ci/prod/operator/heavy'],
    ['ssm:PutParameter', '/ci/tokens/heavy'],
    ['ssm:DeleteParameter', '/gitlab-spot-autoscaler/acme-ci/prod/secrets/webhook-secret'],
    ['ssm:LabelParameterVersion', '/gitlab-spot-autoscaler/acme-ci/prod/config'],
  ])('cannot %s %s', (action, name) => expect(as(action, ssmArn(name))).toBe('deny'));

  it.each([
    ['iam:PassRole', env.refs['WorkerRoleHeavy.Arn'], { 'iam:PassedToService': 'ec2.amazonaws.com' }],
    ['iam:PutRolePolicy', env.refs['WorkerRoleGeneral.Arn'], {}],
    ['ec2:TerminateInstances', ec2('instance/i-0heavy'), tagged],
    ['ec2:StopInstances', ec2('instance/i-0heavy'), tagged],
    ['ec2:ModifyInstanceAttribute', self, tagged],
    ['ec2:ReplaceIamInstanceProfileAssociation', self, tagged],
    ['ec2:CreateSnapshot', ec2('volume/vol-0heavy'), tagged],
    ['ec2:CreateImage', ec2('instance/i-0heavy'), tagged],
    ['ec2:CreateLaunchTemplateVersion', LT.heavy, tagged],
    ['ec2:RunInstances', LT.heavy, tagged],
    ['ec2:DeleteTags', self, tagged],
    ['ec2:CreateTags', ec2('instance/i-0heavy'), { ...tagged, 'aws:ARN': ec2('instance/i-0heavy'), 'aws:TagKeys': [TAGS.state] }],
    ['ec2:CreateTags', self, { ...tagged, 'aws:ARN': self, 'aws:TagKeys': [TAGS.launchedAt] }],
    // The bucket its runner's cache goes to is the controller's to name (the tag it reads at boot).
    ['ec2:CreateTags', self, { ...tagged, 'aws:ARN': self, 'aws:TagKeys': [TAGS.cacheBucket] }],
    // The reported state is the controller's to write, from SenderId-checked reports: even on itself.
    ['ec2:CreateTags', self, { ...tagged, 'aws:ARN': self, 'aws:TagKeys': [TAGS.ready, TAGS.state, TAGS.idleSince, TAGS.builds] }],
    ['ec2:CreateTags', ec2('instance/i-0notours'), { 'aws:ARN': ec2('instance/i-0notours'), 'aws:TagKeys': [TAGS.deployment, TAGS.stage] }],
    ['ssm:SendCommand', ec2('instance/i-0heavy'), { [`ssm:resourceTag/${TAGS.deployment}`]: 'acme-ci' }],
    ['ssm:StartSession', ec2('instance/i-0heavy'), { [`ssm:resourceTag/${TAGS.deployment}`]: 'acme-ci' }],
    ['ec2-instance-connect:SendSerialConsoleSSHPublicKey', ec2('instance/i-0heavy'), tagged],
    ['lambda:UpdateFunctionCode', `arn:aws:lambda:eu-central-1:${ACCOUNT}:function:gsa-acme-ci-prod-reconcile`, {}],
    ['sqs:SendMessage', env.refs['EventQueue.Arn'], {}],
    ['sqs:PurgeQueue', env.refs['EventDeadLetterQueue.Arn'], {}],
    ['cloudformation:UpdateStack', `arn:aws:cloudformation:eu-central-1:${ACCOUNT}:stack/gitlab-spot-autoscaler-acme-ci-prod/0a1b`, {}],
    ['s3:PutBucketPolicy', 'arn:aws:s3:::acme-ci-prod-cachebucket-1', {}],
    ['s3:DeleteBucketPolicy', 'arn:aws:s3:::acme-ci-prod-cachebucket-1', {}],
    ['s3:ListBucketVersions', 'arn:aws:s3:::acme-ci-prod-cachebucket-1', {}],
  ])('cannot %s on %s', (action, resource, context) => expect(as(action, resource, context as Context)).toBe('deny'));

  it('shares one guard policy, which stays under the 6,144 characters of a managed policy', () => {
    const res = stack.resources as Record<string, any>;
    expect(res.WorkerRoleGeneral.Properties.ManagedPolicyArns).toEqual([{ Ref: 'WorkerGuard' }]);
    expect(res.WorkerRoleHeavy.Properties.ManagedPolicyArns).toEqual([{ Ref: 'WorkerGuard' }]);
    expect(JSON.stringify(resolve(res.WorkerGuard.Properties.PolicyDocument, env)).length).toBeLessThan(6_144);
  });
});

describe('limits the guard brings', () => {
  it('refuses a pool with more than 9 managed policies of its own (IAM attaches 10 per role by default, 1 is the guard)', () => {
    const arns = Array.from({ length: 10 }, (_, i) => `arn:aws:iam::aws:policy/Policy${i}`);
    const many = withChanges((raw) => (raw.pools[0].worker.iam = { managedPolicyArns: arns }));
    expect(() => buildStack(opts({ config: many }))).toThrow(/pools\.general\.worker\.iam\.managedPolicyArns lists 10 policies; .* list at most 9/);
    const nine = withChanges((raw) => (raw.pools[0].worker.iam = { managedPolicyArns: arns.slice(0, 9) }));
    expect((buildStack(opts({ config: nine })).resources as any).WorkerRoleGeneral.Properties.ManagedPolicyArns).toHaveLength(10);
  });
});

describe('pinWorkerCredentials: worker credentials only from their own instance', () => {
  const pinned = roleStatements(
    withChanges((raw) => (raw.pinWorkerCredentials = true)),
    'WorkerRoleGeneral',
  );
  const token = { action: 'ssm:GetParameter', resource: `arn:aws:ssm:eu-central-1:${ACCOUNT}:parameter/gitlab-spot-autoscaler/acme-ci/prod/secrets/runner-token/general` };
  const issued = { 'ec2:SourceInstanceARN': `arn:aws:ec2:eu-central-1:${ACCOUNT}:instance/i-0own`, 'aws:Ec2InstanceSourceVpc': 'vpc-0123', 'aws:Ec2InstanceSourcePrivateIPv4': '10.0.1.17' };

  it('allows the instance itself through a VPC endpoint', () => {
    expect(evaluate(pinned, { ...token, context: { ...issued, 'aws:SourceVpc': 'vpc-0123', 'aws:VpcSourceIp': '10.0.1.17' } })).toBe('allow');
  });
  it.each([
    ['from another VPC', { 'aws:SourceVpc': 'vpc-0999', 'aws:VpcSourceIp': '10.0.1.17' }],
    ['from another instance in the same VPC', { 'aws:SourceVpc': 'vpc-0123', 'aws:VpcSourceIp': '10.0.1.99' }],
    ['from the internet (no VPC endpoint: why the setting needs endpoints)', { 'aws:SourceIp': '198.51.100.7' }],
  ])('denies the credentials used %s', (_what, where) => {
    expect(evaluate(pinned, { ...token, context: { ...issued, ...where } })).toBe('deny');
  });
  it('does not get in the way of calls AWS makes on the worker\'s behalf (SSM decrypting with KMS)', () => {
    expect(evaluate(pinned, { action: 'kms:Decrypt', resource: '*', context: { ...issued, 'aws:ViaAWSService': 'true' } })).toBe('implicit-deny'); // not denied; not granted either (aws/ssm needs no grant)
  });
  it('is off by default (it needs VPC endpoints), and then adds no statement', () => {
    const pins = (st: Record<string, any>[]) => st.filter((s) => s.Effect === 'Deny' && /^Credentials/.test(s.Sid)).map((s) => s.Sid);
    expect(pins(roleStatements(sample, 'WorkerRoleGeneral'))).toEqual([]);
    expect(pins(pinned)).toEqual(['CredentialsOnlyInTheirVpc', 'CredentialsOnlyOnTheirInstance']);
  });
});

describe('the public webhook is bounded', () => {
  const stack = buildStack(opts());
  it(`throttles the HTTP API stage (${SIZING.webhookThrottle.rateLimit}/s, burst ${SIZING.webhookThrottle.burstLimit}) and reserves ${SIZING.webhookThrottle.reservedConcurrency} concurrent webhooks`, () => {
    expect(stack.extensions.HttpApiStage).toEqual({ Properties: { DefaultRouteSettings: { DetailedMetricsEnabled: false, ThrottlingRateLimit: 100, ThrottlingBurstLimit: 500 } } });
    expect(stack.webhookReservedConcurrency).toBe(50);
  });
  it('serves the stage limit from the reserved containers, so a flood meets API Gateway\'s 429 before Lambda\'s throttle', () => {
    const { rateLimit, reservedConcurrency } = SIZING.webhookThrottle;
    const coldSeconds = 0.25; // a cold delivery, measured: bench/webhook.ts (212 ms median cold total)
    expect(reservedConcurrency / coldSeconds).toBeGreaterThanOrEqual(rateLimit);
    // Sized for 20,000 jobs an hour at about 4 job hooks each: 22 a second on average.
    expect(rateLimit).toBeGreaterThanOrEqual((20_000 * 4) / 3600 * 4);
  });
});

describe('launch templates', () => {
  it('keep IMDS on IPv4 only, so the hop limit is the only way to it', () => {
    const R = buildStack(opts()).resources as Record<string, any>;
    expect(R.LaunchTemplateGeneral.Properties.LaunchTemplateData.MetadataOptions).toEqual({ HttpEndpoint: 'enabled', HttpTokens: 'required', HttpPutResponseHopLimit: 1, HttpProtocolIpv6: 'disabled', InstanceMetadataTags: 'enabled' });
  });
});

it('parses the sample (sanity of the fixture)', () => expect(sampleText.length).toBeGreaterThan(0));
