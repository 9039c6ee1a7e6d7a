/**
 * Pre-built worker images in the stack (lib/deploy/image.ts): the template is cfn-lint clean, the
 * AMI parameter is wired from the stack (base AMI first) through Image Builder's distribution to the
 * launch template and the reconcile role, an image is rebuilt exactly when what it holds changes,
 * the roles are least privilege (the build instance reads no secret; workers cannot touch the
 * pipelines or the parameter), and the deploy-time trigger never fails a deployment.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { parseConfig, validateConfig, type Config } from '../../lib/config';
import { buildStack, type StackOptions } from '../../lib/deploy/stack';
import { COMPONENT_DATA_LIMIT, IMAGE_BUILDS_HANDLER, IMAGE_TAG, componentDocument, imageParameterName, ImageError, imageProblems } from '../../lib/deploy/image';
import { renderImageBuildScript, renderUserData } from '../../lib/worker/userdata';
import { migrateConfigToml } from '../../lib/migrate/migrate';
import { evaluate, resolve, type TemplateEnv } from '../helpers/iam';
import { ACCOUNT, SAMPLE_ENV } from '../helpers/stack-env';

const sample = parseConfig(readFileSync(join(__dirname, '../../samples/config.yaml'), 'utf8'), 'samples/config.yaml');
const changed = (change: (raw: any) => void, base: Config = sample): Config => {
  const raw = JSON.parse(JSON.stringify(base));
  change(raw);
  return parseConfig(JSON.stringify(raw), 'inline');
};
const opts = (over: Partial<StackOptions> = {}): StackOptions => ({ config: sample, stage: 'prod', region: 'eu-central-1', vpcId: 'vpc-0123456789abcdef0', renderUserData, ...over });
const stack = (config: Config = sample, over: Partial<StackOptions> = {}) => buildStack(opts({ config, ...over })).resources as Record<string, any>;

const PARAM = '/imagebuilder/gitlab-spot-autoscaler/acme-ci/prod/ami/general';
const env: TemplateEnv = SAMPLE_ENV;
const ssmArn = (name: string) => `arn:aws:ssm:eu-central-1:${ACCOUNT}:parameter${name}`;
const SECRETS = ['secrets/runner-token/general', 'secrets/runner-token/heavy', 'secrets/webhook-secret', 'secrets/gitlab-api-token', 'config', 'state/meta'].map((n) => ssmArn(`/gitlab-spot-autoscaler/acme-ci/prod/${n}`));

/** A role's own statements (inline, and the stack's managed policies it attaches; AWS managed ones are not modelled). */
function statementsOf(resources: Record<string, any>, role: string): Record<string, any>[] {
  const props = resources[role].Properties;
  const managed = (props.ManagedPolicyArns ?? []).filter((a: any) => a?.Ref && resources[a.Ref]?.Type === 'AWS::IAM::ManagedPolicy').map((a: any) => resources[a.Ref].Properties.PolicyDocument);
  return resolve([...(props.Policies ?? []).map((p: any) => p.PolicyDocument), ...managed].flatMap((d: any) => d.Statement), env) as Record<string, any>[];
}
/** As if an AWS managed policy attached to the role (AmazonSSMManagedInstanceCore, an extra on a worker) allowed everything. */
const allowEverything = { Effect: 'Allow', Action: '*', Resource: '*' };

describe('the template', () => {
  const dir = mkdtempSync(join(tmpdir(), 'gsa-image-stack-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test('cfn-lint: no error, no warning in the image resources', () => {
    const config = changed((raw) => {
      // Every kind of pool: AWS's parameter (the sample), an AMI id on Ubuntu with a CA and a proxy, a base one.
      raw.pools[1].worker.ami = 'ami-0123456789abcdef0';
      raw.pools[1].worker.rootDeviceName = '/dev/sda1';
      raw.pools[1].worker.caCertificate = '-----BEGIN CERTIFICATE-----\nMIIB' + 'A'.repeat(1400) + '\n-----END CERTIFICATE-----';
      raw.pools[1].worker.proxy = { http: 'http://proxy.internal:3128', https: 'http://proxy.internal:3128' };
      raw.pools.push({ ...raw.pools[0], name: 'plain', tags: ['plain'], runUntagged: false, worker: { ...raw.pools[0].worker, image: 'base' } });
    });
    const parts = buildStack(opts({ config }));
    const outputs = Object.fromEntries(Object.entries(parts.outputs).filter(([k]) => k !== 'WebhookUrl')); // the framework's HttpApi is not in these parts
    const file = join(dir, 'template.json');
    writeFileSync(file, JSON.stringify({ AWSTemplateFormatVersion: '2010-09-09', Resources: parts.resources, Outputs: outputs }));
    const r = spawnSync('cfn-lint', ['--format', 'parseable', file], { encoding: 'utf8', timeout: 120_000 });
    expect(r.error).toBeUndefined();
    const findings = r.stdout.split('\n').filter(Boolean);
    expect(findings.filter((l) => /:E\d{4}:/.test(l))).toEqual([]);
    const lines = readFileSync(file, 'utf8');
    expect(findings.filter((l) => /:W\d{4}:/.test(l) && /Image|WorkerAmi/.test(l))).toEqual([]);
    expect(lines).toContain('ImagePipelineHeavy');
    expect(Object.keys(parts.resources).filter((k) => k.endsWith('Plain') && /Image|WorkerAmi/.test(k))).toEqual([]);
  }, 150_000);

  test('the SSM parameter: created with the base AMI, read by the launch template, written by the distribution, readable by the reconcile role', () => {
    const res = stack();
    const param = res.WorkerAmiGeneral.Properties;
    expect(param).toMatchObject({ Name: PARAM, Type: 'String', DataType: 'aws:ec2:image', Value: '{{resolve:ssm:/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64}}' });
    expect(res.LaunchTemplateGeneral.Properties.LaunchTemplateData.ImageId).toBe(`resolve:ssm:${PARAM}`);
    const dist = res.ImageDistributionGeneral.Properties.Distributions[0];
    expect(dist.SsmParameterConfigurations).toEqual([{ ParameterName: PARAM, DataType: 'aws:ec2:image' }]);
    // The new image is also a new launch template version: the controller retires the older ones' idle workers.
    expect(dist.LaunchTemplateConfigurations).toEqual([{ LaunchTemplateId: { Ref: 'LaunchTemplateGeneral' }, SetDefaultVersion: true }]);
    expect(dist.AmiDistributionConfiguration.AmiTags).toEqual({ [IMAGE_TAG]: 'acme-ci/prod/general' });
    expect(res.ImagePipelineGeneral.DependsOn).toContain('WorkerAmiGeneral');
    // Image Builder's service-linked role may write only under /imagebuilder/.
    expect(PARAM.startsWith('/imagebuilder/')).toBe(true);
    const reconcile = statementsOf(res, 'ReconcileRole');
    expect(evaluate(reconcile, { action: 'ssm:GetParameters', resource: ssmArn(PARAM) })).toBe('allow');
    expect(evaluate(reconcile, { action: 'ssm:PutParameter', resource: ssmArn(PARAM) })).toBe('implicit-deny');
    // The base is resolved by CloudFormation (and Image Builder), not at launch: the reconcile role no longer reads it.
    expect(evaluate(reconcile, { action: 'ssm:GetParameters', resource: 'arn:aws:ssm:eu-central-1::parameter/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64' })).toBe('implicit-deny');
    // An AMI id as base: written as is.
    const own = stack(changed((raw) => (raw.pools[0].worker.ami = 'ami-0123456789abcdef0')));
    expect(own.WorkerAmiGeneral.Properties.Value).toBe('ami-0123456789abcdef0');
    expect(own.ImageRecipeGeneral.Properties.ParentImage).toBe('ami-0123456789abcdef0');
    expect(stack().ImageRecipeGeneral.Properties.ParentImage).toBe('ssm:/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64');
  });

  test('a base pool, and local development against moto, build no image and launch the AMI as configured', () => {
    const base = stack(changed((raw) => raw.pools.forEach((p: any) => (p.worker.image = 'base'))));
    expect(Object.keys(base).filter((k) => /Image|WorkerAmi/.test(k))).toEqual([]);
    expect(base.LaunchTemplateGeneral.Properties.LaunchTemplateData.ImageId).toBe(sample.pools[0].worker.ami);
    const dev = stack(sample, { dev: { endpoint: 'http://127.0.0.1:5000', queueUrl: 'http://q', configFile: '/tmp/c.yaml' } });
    expect(Object.keys(dev).filter((k) => /Image|WorkerAmi/.test(k))).toEqual([]);
    expect(dev.LaunchTemplateGeneral.Properties.LaunchTemplateData.ImageId).toBe(sample.pools[0].worker.ami);
  });

  test('a rebuild when what the image holds changes (release, job image, base), not when a scaling knob or runner setting does', () => {
    const versions = (config: Config) => {
      const res = stack(config);
      return { component: res.ImageComponentGeneral.Properties.Version, recipe: res.ImageRecipeGeneral.Properties.Version, trigger: JSON.stringify(res.ImageBuildGeneral.Properties) };
    };
    const ref = versions(sample);
    expect(ref.component).toMatch(/^1\.\d+\.\d+$/);
    expect(versions(changed((raw) => Object.assign(raw.pools[0], { IdleCount: 7, IdleTime: 60, MaxBuilds: 2, runner: { environment: ['X=1'] } })))).toEqual(ref);
    for (const change of [(raw: any) => (raw.pools[0].worker.runnerVersion = 'v18.2.0'), (raw: any) => (raw.pools[0].worker.docker.image = 'node:22')]) {
      const v = versions(changed(change));
      expect(v.component).not.toBe(ref.component);
      expect(v.recipe).not.toBe(ref.recipe);
      expect(v.trigger).not.toBe(ref.trigger); // the custom resource's properties change: the deploy starts a build
    }
    const rebased = versions(changed((raw) => (raw.pools[0].worker.ami = 'ami-0123456789abcdef0')));
    expect(rebased.component).toBe(ref.component);
    expect(rebased.recipe).not.toBe(ref.recipe);
    // Weekly builds from the current base; three images kept.
    const res = stack();
    expect(res.ImagePipelineGeneral.Properties.Schedule).toEqual({ ScheduleExpression: 'cron(0 3 ? * sun *)', PipelineExecutionStartCondition: 'EXPRESSION_MATCH_ONLY' });
    expect(res.ImageLifecycleGeneral.Properties).toMatchObject({
      ResourceType: 'AMI_IMAGE',
      PolicyDetails: [{ Action: { Type: 'DELETE', IncludeResources: { Amis: true, Snapshots: true } }, Filter: { Type: 'COUNT', Value: 3 } }],
      ResourceSelection: { Recipes: [{ Name: 'gsa-acme-ci-prod-general', SemanticVersion: 'x.x.x' }] },
    });
  });

  test('the component runs exactly the build script, decoded by bash, and fits Image Builder', () => {
    const pool = sample.pools[0];
    const doc = parse(componentDocument(sample, pool, 'prod'));
    expect(doc.phases.map((p: any) => p.name)).toEqual(['build', 'validate']);
    const build: string = doc.phases[0].steps[0].inputs.commands[0];
    expect(build).toMatch(/bash "\$f" build-image/);
    const dir = mkdtempSync(join(tmpdir(), 'gsa-component-'));
    try {
      const out = join(dir, 'script');
      const r = spawnSync('bash', ['-c', build.replace('bash "$f" build-image', `cp "$f" ${out}`)], { encoding: 'utf8' });
      expect(r.status).toBe(0);
      expect(readFileSync(out, 'utf8')).toBe(renderImageBuildScript({ config: sample, pool, stage: 'prod' }));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    expect(doc.phases[1].steps[0].inputs.commands[0]).toContain('grep -qx "runner=v18.3.1" /etc/gsa-worker-image');
    // A CA bundle of incompressible base64 (like real certificates), 12 KB.
    const noise = createHash('sha512').update('seed').digest('base64');
    const lines = Array.from({ length: 190 }, (_, i) => createHash('sha512').update(noise + i).digest('base64').slice(0, 64));
    const big = changed((raw) => (raw.pools[0].worker.caCertificate = `-----BEGIN CERTIFICATE-----\n${lines.join('\n')}\n-----END CERTIFICATE-----`));
    expect(() => componentDocument(big, big.pools[0], 'prod')).toThrow(ImageError);
    expect(() => componentDocument(big, big.pools[0], 'prod')).toThrow(new RegExp(`over its ${COMPONENT_DATA_LIMIT}`));
    // validate reports it, so a config it passes deploys.
    expect(imageProblems(big)).toEqual([expect.stringMatching(/^pools\[0\] \(general\): the image build of pool "general" is \d+ characters/)]);
    expect(imageProblems(sample)).toEqual([]);
  });

  test('validation: a pre-built pool needs a root volume that holds the image, and a base Image Builder can read', () => {
    const raw = JSON.parse(JSON.stringify(sample));
    raw.pools[0].worker.rootVolumeSize = 12;
    raw.pools[1].worker.ami = 'resolve:ssm:/my-team/golden-ami';
    const problems = (() => {
      try {
        validateConfig(raw, 'inline');
        return [];
      } catch (e) {
        return (e as { problems: string[] }).problems;
      }
    })();
    expect(problems).toEqual([expect.stringMatching(/^pools\[0\]\.worker\.rootVolumeSize: 12 GiB is smaller than the pre-built image's 16 GiB/), expect.stringMatching(/^pools\[1\]\.worker\.ami: .*Image Builder reads only/)]);
    raw.pools.forEach((p: any) => (p.worker.image = 'base'));
    expect(() => validateConfig(raw, 'inline')).not.toThrow();
  });
});

test('migrate: a docker+machine root disk smaller than the image\'s boots its AMI as it is (a valid config)', () => {
  const toml = (size: number) =>
    `concurrent = 4\n[[runners]]\nname = "ci"\nurl = "https://gitlab.example.com"\nexecutor = "docker+machine"\n[runners.docker]\nimage = "alpine"\n[runners.machine]\nMachineDriver = "amazonec2"\nMachineName = "ci-%s"\nMachineOptions = ["amazonec2-region=eu-west-1", "amazonec2-subnet-id=subnet-0abc", "amazonec2-instance-type=m6i.large", "amazonec2-root-size=${size}"]\n`;
  const small = migrateConfigToml(toml(10)).config.pools[0].worker;
  expect(small).toMatchObject({ rootVolumeSize: 10, image: 'base' });
  expect(migrateConfigToml(toml(40)).config.pools[0].worker).toMatchObject({ rootVolumeSize: 40, image: 'prebuilt' });
});

describe('least privilege', () => {
  const res = stack();

  test('the build instance reads none of the deployment\'s secrets, even with AmazonSSMManagedInstanceCore', () => {
    const builder = [...statementsOf(res, 'ImageBuilderRole'), allowEverything];
    for (const secret of SECRETS) expect(`${secret}: ${evaluate(builder, { action: 'ssm:GetParameter', resource: secret })}`).toBe(`${secret}: deny`);
    expect(evaluate(builder, { action: 'ssm:GetParametersByPath', resource: ssmArn('/gitlab-spot-autoscaler') })).toBe('deny');
    // The workers' guard too: no IAM, no workers, no control plane.
    expect(evaluate(builder, { action: 'iam:PassRole', resource: env.refs['WorkerRoleGeneral.Arn'] })).toBe('deny');
    expect(evaluate(builder, { action: 'ssm:PutParameter', resource: ssmArn(PARAM) })).toBe('deny');
    expect(res.ImageBuilderRole.Properties.ManagedPolicyArns).toEqual([
      { 'Fn::Sub': 'arn:${AWS::Partition}:iam::aws:policy/EC2InstanceProfileForImageBuilder' },
      { 'Fn::Sub': 'arn:${AWS::Partition}:iam::aws:policy/AmazonSSMManagedInstanceCore' },
      { Ref: 'WorkerGuard' },
    ]);
    // And it is not a worker: the controller discovers instances by the deployment tag, which the build instance does not carry.
    expect(Object.keys(res.ImageInfrastructureGeneral.Properties.ResourceTags)).toEqual([IMAGE_TAG]);
    expect(res.ImageInfrastructureGeneral.Properties.InstanceMetadataOptions).toEqual({ HttpTokens: 'required', HttpPutResponseHopLimit: 1 });
  });

  test('workers, whatever worker.iam adds, cannot change a pipeline or repoint an AMI parameter', () => {
    for (const role of ['WorkerRoleGeneral', 'WorkerRoleHeavy']) {
      const worker = [...statementsOf(res, role), allowEverything];
      const pipeline = `arn:aws:imagebuilder:eu-central-1:${ACCOUNT}:image-pipeline/gsa-acme-ci-prod-general`;
      expect(evaluate(worker, { action: 'imagebuilder:StartImagePipelineExecution', resource: pipeline })).toBe('deny');
      expect(evaluate(worker, { action: 'imagebuilder:CreateImageRecipe', resource: `arn:aws:imagebuilder:eu-central-1:${ACCOUNT}:image-recipe/gsa-acme-ci-prod-heavy/1.0.0` })).toBe('deny');
      expect(evaluate(worker, { action: 'ssm:PutParameter', resource: ssmArn(PARAM) })).toBe('deny');
      expect(evaluate(worker, { action: 'ssm:PutParameter', resource: ssmArn(PARAM.replace('general', 'heavy')) })).toBe('deny');
      expect(evaluate(worker, { action: 'lambda:UpdateFunctionCode', resource: `arn:aws:lambda:eu-central-1:${ACCOUNT}:function:gsa-acme-ci-prod-images` })).toBe('deny');
    }
  });

  test('the trigger starts only its own pipelines; the lifecycle deletes only images Image Builder made', () => {
    const fn = statementsOf(res, 'ImageBuildsRole');
    const pipeline = (p: string) => `arn:aws:imagebuilder:eu-central-1:${ACCOUNT}:image-pipeline/${p}`;
    expect(evaluate(fn, { action: 'imagebuilder:StartImagePipelineExecution', resource: pipeline('gsa-acme-ci-prod-general') })).toBe('allow');
    expect(evaluate(fn, { action: 'imagebuilder:StartImagePipelineExecution', resource: pipeline('gsa-acme-ci-staging-general') })).toBe('implicit-deny');
    expect(evaluate(fn, { action: 'imagebuilder:UpdateImagePipeline', resource: pipeline('gsa-acme-ci-prod-general') })).toBe('implicit-deny');
    expect(fn.flatMap((s) => [s.Action].flat())).toEqual(['logs:CreateLogStream', 'logs:PutLogEvents', 'imagebuilder:StartImagePipelineExecution']);
    const lifecycle = statementsOf(res, 'ImageLifecycleRole');
    const image = 'arn:aws:ec2:eu-central-1::image/ami-0123';
    expect(evaluate(lifecycle, { action: 'ec2:DeregisterImage', resource: image, context: { 'aws:ResourceTag/CreatedBy': 'EC2 Image Builder' } })).toBe('allow');
    expect(evaluate(lifecycle, { action: 'ec2:DeregisterImage', resource: image, context: {} })).toBe('implicit-deny');
    expect(evaluate(lifecycle, { action: 'imagebuilder:DeleteImage', resource: `arn:aws:imagebuilder:eu-central-1:${ACCOUNT}:image/gsa-acme-ci-prod-general/1.2.3/1` })).toBe('allow');
    expect(evaluate(lifecycle, { action: 'imagebuilder:DeleteImage', resource: `arn:aws:imagebuilder:eu-central-1:${ACCOUNT}:image/someone-else/1.2.3/1` })).toBe('implicit-deny');
  });
});

describe('the deploy-time trigger and build notifications (inline function)', () => {
  type Sent = { input: Record<string, unknown> };
  function load(startFails = false) {
    const sent: Sent[] = [];
    const puts: { url: string; body: any; headers: any }[] = [];
    const lines: any[] = [];
    class StartImagePipelineExecutionCommand {
      constructor(readonly input: Record<string, unknown>) {}
    }
    class ImagebuilderClient {
      async send(c: Sent) {
        sent.push(c);
        if (startFails) throw Object.assign(new Error('pipeline is disabled'), { name: 'InvalidRequestException' });
        return { imageBuildVersionArn: 'arn:aws:imagebuilder:eu-central-1:123456789012:image/gsa-acme-ci-prod-general/1.2.3/1' };
      }
    }
    const module = { exports: {} as Record<string, any> };
    const requireFake = (name: string) => {
      if (name !== '@aws-sdk/client-imagebuilder') throw new Error(`unexpected require ${name}`);
      return { ImagebuilderClient, StartImagePipelineExecutionCommand };
    };
    const processFake = { env: { DEPLOYMENT: 'acme-ci', STAGE: 'prod', NAMESPACE: 'GitLabSpotAutoscaler', RECIPES: JSON.stringify({ 'gsa-acme-ci-prod-general': 'general' }) } };
    const fetchFake = async (url: string, init: any) => {
      puts.push({ url, body: JSON.parse(init.body), headers: init.headers });
      return { ok: true };
    };
    const consoleFake = { log: (s: string) => lines.push(JSON.parse(s)) };
    new Function('module', 'exports', 'require', 'process', 'fetch', 'console', IMAGE_BUILDS_HANDLER)(module, module.exports, requireFake, processFake, fetchFake, consoleFake);
    return { handler: module.exports.handler as (e: unknown) => Promise<void>, sent, puts, lines };
  }
  const cfnEvent = (type: string) => ({ RequestType: type, ResponseURL: 'https://cfn-response.example/put', StackId: 'stack-1', RequestId: '0f3c9a2e-1111-2222-3333-444455556666', LogicalResourceId: 'ImageBuildGeneral', ResourceProperties: { PipelineArn: 'arn:aws:imagebuilder:eu-central-1:123456789012:image-pipeline/gsa-acme-ci-prod-general' } });

  test('Create and Update start the pipeline (idempotent on the request id) and answer SUCCESS; Delete starts nothing', async () => {
    for (const type of ['Create', 'Update']) {
      const f = load();
      await f.handler(cfnEvent(type));
      expect(f.sent.map((c) => c.input)).toEqual([{ imagePipelineArn: 'arn:aws:imagebuilder:eu-central-1:123456789012:image-pipeline/gsa-acme-ci-prod-general', clientToken: '0f3c9a2e-1111-2222-3333-444455556666' }]);
      expect(f.puts).toHaveLength(1);
      expect(f.puts[0].url).toBe('https://cfn-response.example/put');
      expect(f.puts[0].body).toMatchObject({ Status: 'SUCCESS', RequestId: '0f3c9a2e-1111-2222-3333-444455556666', LogicalResourceId: 'ImageBuildGeneral', StackId: 'stack-1', PhysicalResourceId: 'ImageBuildGeneral-build' });
    }
    const del = load();
    await del.handler({ ...cfnEvent('Delete'), PhysicalResourceId: 'ImageBuildGeneral-build' });
    expect(del.sent).toEqual([]);
    expect(del.puts[0].body).toMatchObject({ Status: 'SUCCESS', PhysicalResourceId: 'ImageBuildGeneral-build' });
  });

  test('a build that cannot start never fails the deployment: SUCCESS, with the reason logged as an error', async () => {
    const f = load(true);
    await f.handler(cfnEvent('Update'));
    expect(f.puts[0].body.Status).toBe('SUCCESS');
    expect(f.puts[0].body.Reason).toMatch(/could not start the worker image build .*InvalidRequestException: pipeline is disabled/);
    expect(f.lines).toEqual([expect.objectContaining({ level: 'error' })]);
  });

  test('finished builds are logged and counted per pool; a failure is an error and feeds the alarm; other images are ignored', async () => {
    const f = load();
    const ev = (status: string, recipe = 'gsa-acme-ci-prod-general') => ({ 'detail-type': 'EC2 Image Builder Image State Change', resources: [`arn:aws:imagebuilder:eu-central-1:123456789012:image/${recipe}/1.2.3/4`], detail: { state: { status, reason: 'component failed' } } });
    await f.handler(ev('FAILED'));
    await f.handler(ev('AVAILABLE'));
    await f.handler(ev('BUILDING'));
    await f.handler(ev('FAILED', 'gsa-other-prod-general'));
    expect(f.puts).toEqual([]);
    const metrics = f.lines.filter((l) => l._aws);
    expect(metrics.map((m) => [m.Pool, m.ImageBuilds, m.ImageBuildFailures])).toEqual([
      ['general', 0, 1],
      ['general', 1, 0],
    ]);
    expect(metrics[0]._aws.CloudWatchMetrics[0]).toMatchObject({ Namespace: 'GitLabSpotAutoscaler', Dimensions: [['Deployment', 'Stage', 'Pool'], ['Deployment', 'Stage']] });
    expect(f.lines.filter((l) => l.level === 'error')).toEqual([expect.objectContaining({ pool: 'general', reason: 'component failed' })]);
    // The alarm watches that metric.
    const alarm = res().ImageBuildFailureAlarm.Properties;
    expect(alarm).toMatchObject({ Namespace: 'GitLabSpotAutoscaler', MetricName: 'ImageBuildFailures', AlarmActions: [{ Ref: 'AlarmTopic' }] });
    const rule = res().ImageBuildsRule.Properties.EventPattern;
    expect(rule.detail).toEqual({ state: { status: ['AVAILABLE', 'FAILED'] } });
    expect(resolve(rule.resources, env)).toEqual([{ prefix: `arn:aws:imagebuilder:eu-central-1:${ACCOUNT}:image/gsa-acme-ci-prod-` }]);
  });
  const res = () => stack();

  test('the inline code fits CloudFormation\'s ZipFile (4 KB) and the parameter name is derived in one place', () => {
    expect(Buffer.byteLength(IMAGE_BUILDS_HANDLER)).toBeLessThanOrEqual(4096);
    expect(imageParameterName(sample, 'prod', 'general')).toBe(PARAM);
  });
});
