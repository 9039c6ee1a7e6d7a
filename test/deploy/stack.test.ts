import { readFileSync } from 'node:fs';
import { CADENCE, scheduleRate } from '../../lib/controller/loop';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { parseConfig } from '../../lib/config';
import { buildStack, logicalName, rootDeviceName, StackError, type StackOptions } from '../../lib/deploy/stack';
import { DEPLOYMENT_CACHE_PLACEHOLDER, renderUserData } from '../../lib/worker/userdata';
import { reportQueueName, TAGS } from '../../lib/controller/tags';
import { REPORTING } from '../../lib/planner';

const sample = parseConfig(readFileSync(join(__dirname, '../../samples/config.yaml'), 'utf8'), 'samples/config.yaml');
const opts = (over: Partial<StackOptions> = {}): StackOptions => ({ config: sample, stage: 'prod', region: 'eu-central-1', vpcId: 'vpc-0123456789abcdef0', renderUserData, ...over });
const stack = buildStack(opts());
const R = stack.resources as Record<string, any>;

function statements(roleId: string): any[] {
  return R[roleId].Properties.Policies.flatMap((p: any) => p.PolicyDocument.Statement);
}
const actions = (st: any[]) => st.flatMap((s) => ([] as string[]).concat(s.Action));

describe('IAM: least privilege', () => {
  const roles = Object.keys(R).filter((k) => R[k].Type === 'AWS::IAM::Role');

  it('has one role per function, one per pool, and one for the scheduler', () => {
    // The pre-built worker images (lib/deploy/image.ts): the build instance, the build trigger, the image lifecycle.
    expect(roles.sort()).toEqual(['ImageBuilderRole', 'ImageBuildsRole', 'ImageLifecycleRole', 'InterruptionRole', 'ReconcileRole', 'SchedulerRole', 'WebhookRole', 'WorkerRoleGeneral', 'WorkerRoleHeavy']);
  });

  it('grants no wildcard action anywhere', () => {
    for (const id of roles) for (const a of actions(statements(id).filter((s) => s.Effect === 'Allow'))) expect(a).not.toMatch(/\*/);
  });

  it('gives the webhook no EC2 permission, only its secret and SendMessage', () => {
    const a = actions(statements('WebhookRole'));
    expect(a.filter((x) => x.startsWith('ec2:'))).toEqual([]);
    expect(a.sort()).toEqual(['logs:CreateLogStream', 'logs:PutLogEvents', 'sqs:SendMessage', 'ssm:GetParameter']);
    const secret = statements('WebhookRole').find((s) => s.Sid === 'WebhookSecret');
    expect(secret.Resource['Fn::Sub']).toMatch(/parameter\/gitlab-spot-autoscaler\/acme-ci\/prod\/secrets\/webhook-secret$/);
  });

  const P = 'arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter/gitlab-spot-autoscaler/acme-ci/prod';
  const resources = (st: any) => ([] as any[]).concat(st.Resource).map((r) => (typeof r === 'string' ? r : r['Fn::Sub']));
  const grantsOf = (role: string, action: string) => statements(role).filter((x) => actions([x]).includes(action));

  it('lets reconcile terminate and tag only instances carrying this deployment and stage', () => {
    const st = statements('ReconcileRole');
    const own = { [`aws:ResourceTag/${TAGS.deployment}`]: 'acme-ci', [`aws:ResourceTag/${TAGS.stage}`]: 'prod' };
    const terminate = grantsOf('ReconcileRole', 'ec2:TerminateInstances');
    expect(terminate).toHaveLength(1);
    expect(terminate[0].Condition).toEqual({ StringEquals: own });
    // Launch grants on instances: test/deploy/stack-security.test.ts.
    for (const launch of st.filter((x) => JSON.stringify(x.Resource).includes(':instance/*') && actions([x]).some((a) => a === 'ec2:CreateFleet' || a === 'ec2:RunInstances')))
      expect(launch.Condition.StringEquals[`aws:RequestTag/${TAGS.deployment}`]).toBe('acme-ci');
  });

  it('lets reconcile tag existing workers with the retire key and the reported state only, and other tags only at launch', () => {
    const createTags = grantsOf('ReconcileRole', 'ec2:CreateTags');
    expect(createTags.map((s) => s.Sid).sort()).toEqual(['RetireAndRecordOwnWorkers', 'TagOnLaunch']);
    const retire = createTags.find((s) => s.Sid === 'RetireAndRecordOwnWorkers');
    // Every key a request may set must be the retire key or a reported-state key: the
    // deployment/stage/pool tags that the other grants key on cannot be rewritten on an existing instance.
    expect(retire.Condition['ForAllValues:StringEquals']['aws:TagKeys'].sort()).toEqual([TAGS.retire, TAGS.ready, TAGS.state, TAGS.builds, TAGS.idleSince, TAGS.stoppedAt].sort());
    expect(retire.Condition['ForAllValues:StringEquals']['aws:TagKeys']).not.toContain(TAGS.pool);
    expect(retire.Condition.StringEquals).toEqual({ [`aws:ResourceTag/${TAGS.deployment}`]: 'acme-ci', [`aws:ResourceTag/${TAGS.stage}`]: 'prod' });
    const atLaunch = createTags.find((s) => s.Sid === 'TagOnLaunch');
    expect(atLaunch.Condition).toEqual({ StringEquals: { 'ec2:CreateAction': ['CreateFleet', 'RunInstances'] } });
  });

  it('grants reconcile only the EC2 calls the code makes (no DeleteTags, DescribeSubnets, ...)', () => {
    const ec2 = actions(statements('ReconcileRole')).filter((a) => a.startsWith('ec2:'));
    expect([...new Set(ec2)].sort()).toEqual(['ec2:CreateFleet', 'ec2:CreateTags', 'ec2:DescribeInstanceStatus', 'ec2:DescribeInstances', 'ec2:DescribeLaunchTemplateVersions', 'ec2:RunInstances', 'ec2:TerminateInstances']);
  });

  it('grants reconcile only the SQS calls its invocation loop makes (ReceiveMessage, DeleteMessageBatch)', () => {
    const sqs = actions(statements('ReconcileRole')).filter((a) => a.startsWith('sqs:'));
    expect([...new Set(sqs)].sort()).toEqual(['sqs:DeleteMessage', 'sqs:ReceiveMessage']);
  });

  it('narrows reconcile SSM access: read config and API token, read state by path, write only state, delete nothing', () => {
    const ssm = actions(statements('ReconcileRole')).filter((a) => a.startsWith('ssm:'));
    expect([...new Set(ssm)].sort()).toEqual(['ssm:GetParameter', 'ssm:GetParameters', 'ssm:GetParametersByPath', 'ssm:PutParameter']);
    const [get] = grantsOf('ReconcileRole', 'ssm:GetParameter');
    expect(resources(get).sort()).toEqual([`${P}/config`, `${P}/secrets/gitlab-api-token`]);
    const [byPath] = grantsOf('ReconcileRole', 'ssm:GetParametersByPath');
    expect(resources(byPath)).toEqual([`${P}/state`, `${P}/state/*`]);
    const put = grantsOf('ReconcileRole', 'ssm:PutParameter');
    expect(put).toHaveLength(1);
    expect(resources(put[0])).toEqual([`${P}/state/*`]);
    for (const st of statements('ReconcileRole')) expect(actions([st]).every((a) => !a.startsWith('ssm:Delete'))).toBe(true);
    // ssm:GetParameters only for what the pools' AMIs resolve from (launching from a template with
    // `resolve:ssm:` needs it): the sample's pools are pre-built, their templates read the image
    // parameters (lib/deploy/image.ts); with worker.image: base, AWS's public parameter, whose ARN has no account.
    const amis = grantsOf('ReconcileRole', 'ssm:GetParameters');
    expect(amis.map((x) => x.Sid)).toEqual(['ResolveWorkerAmis']);
    expect(resources(amis[0])).toEqual(['arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter/imagebuilder/gitlab-spot-autoscaler/acme-ci/prod/ami/*']);
    const base = parseConfig(readFileSync(join(__dirname, '../../samples/config.yaml'), 'utf8'), 'samples/config.yaml');
    for (const p of base.pools) p.worker.image = 'base';
    const B = buildStack(opts({ config: base })).resources as Record<string, any>;
    const baseAmis = B.ReconcileRole.Properties.Policies[0].PolicyDocument.Statement.filter((x: any) => x.Sid === 'ResolveWorkerAmis');
    expect(resources(baseAmis[0])).toEqual(['arn:${AWS::Partition}:ssm:${AWS::Region}::parameter/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64']);
  });

  it('grants the API token read where the config points, outside the deployment path too', () => {
    const cfg = { ...sample, gitlab: { ...sample.gitlab, apiTokenParameter: '/shared/gitlab/api-token' } };
    const st = (buildStack(opts({ config: cfg })).resources as any).ReconcileRole.Properties.Policies[0].PolicyDocument.Statement;
    const get = st.find((x: any) => actions([x]).includes('ssm:GetParameter'));
    expect(resources(get)).toContain('arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter/shared/gitlab/api-token');
    expect(resources(get)).not.toContain(`${P}/secrets/gitlab-api-token`);
  });

  it('lets the interruption function tag only the interruption and retire tags of own instances', () => {
    const s = statements('InterruptionRole').find((x) => x.Sid === 'MarkOwnWorkers');
    expect(s.Condition['ForAllValues:StringEquals']['aws:TagKeys'].sort()).toEqual([TAGS.interrupted, TAGS.retire].sort());
    expect(s.Condition.StringEquals[`aws:ResourceTag/${TAGS.stage}`]).toBe('prod');
    expect(actions(statements('InterruptionRole'))).not.toContain('ec2:TerminateInstances');
  });

  it("lets a worker read only its own pool's runner token and use only the cache bucket", () => {
    const g = statements('WorkerRoleGeneral');
    expect(g.find((s) => s.Sid === 'OwnRunnerToken').Resource['Fn::Sub']).toMatch(/runner-token\/general$/);
    expect(JSON.stringify(g.filter((s) => s.Effect === 'Allow'))).not.toContain('runner-token/heavy');
    const s3 = g.filter((s) => actions([s]).some((a) => a.startsWith('s3:')));
    for (const s of s3) expect(JSON.stringify(s.Resource)).toContain('CacheBucket');
    // Workers report to the report queue only; they never tag (CreateTags is the account's bucket).
    expect(actions(g).filter((a) => a.startsWith('ec2:'))).toEqual([]);
    const report = g.find((s) => s.Sid === 'ReportState');
    expect(report).toMatchObject({ Action: ['sqs:SendMessage', 'sqs:GetQueueUrl'], Resource: { 'Fn::GetAtt': ['WorkerReportQueue', 'Arn'] } });
  });

  it('lets reconcile read and delete from the job-event and report queues only, and trust reports from the worker roles', () => {
    const consume = statements('ReconcileRole').find((s) => s.Sid === 'ConsumeEventsAndReports');
    expect(consume.Action).toEqual(['sqs:ReceiveMessage', 'sqs:DeleteMessage']);
    expect(consume.Resource).toEqual([{ 'Fn::GetAtt': ['EventQueue', 'Arn'] }, { 'Fn::GetAtt': ['WorkerReportQueue', 'Arn'] }]);
    expect(stack.env.reconcile.WORKER_ROLE_IDS).toEqual({ 'Fn::Join': [',', [{ 'Fn::GetAtt': ['WorkerRoleGeneral', 'RoleId'] }, { 'Fn::GetAtt': ['WorkerRoleHeavy', 'RoleId'] }]] });
    expect(stack.env.reconcile.REPORT_QUEUE_URL).toEqual({ Ref: 'WorkerReportQueue' });
  });
});

describe('workers', () => {
  it('launch templates require IMDSv2, expose tags, encrypt the root volume, terminate on shutdown', () => {
    for (const pool of ['General', 'Heavy']) {
      const d = R[`LaunchTemplate${pool}`].Properties.LaunchTemplateData;
      expect(d.MetadataOptions).toMatchObject({ HttpTokens: 'required', InstanceMetadataTags: 'enabled', HttpPutResponseHopLimit: 1 });
      expect(d.InstanceInitiatedShutdownBehavior).toBe('terminate');
      expect(d.BlockDeviceMappings[0].Ebs).toMatchObject({ Encrypted: true, DeleteOnTermination: true });
      expect(d.UserData).toBeDefined();
      expect(d.TagSpecifications[0].Tags).toEqual(expect.arrayContaining([{ Key: TAGS.pool, Value: pool.toLowerCase() }]));
    }
    expect(R.LaunchTemplateHeavy.Properties.LaunchTemplateData.BlockDeviceMappings[0].Ebs.VolumeSize).toBe(100);
    expect(R.LaunchTemplateGeneral.Properties.LaunchTemplateName).toBe('gitlab-spot-autoscaler-acme-ci-prod-general');
  });

  it("hands the cache bucket's generated name to the controller (which tags it on the workers), not to the user data", () => {
    expect(stack.env.reconcile.CACHE_BUCKET).toEqual({ Ref: 'CacheBucket' });
    for (const id of ['General', 'Heavy']) expect(JSON.stringify(R[`LaunchTemplate${id}`].Properties.LaunchTemplateData.UserData)).not.toContain('CacheBucket');
  });

  it('gzips the user data of every pool: gunzip gives exactly the rendered script, the placeholder included on the shared cache', () => {
    const own = parseConfig(readFileSync(join(__dirname, '../../samples/config.yaml'), 'utf8'), 'samples/config.yaml');
    for (const p of own.pools) p.worker.cache.bucketName = `own-${p.name}`;
    const S = buildStack(opts({ config: own })).resources as Record<string, any>;
    for (const [config, res] of [[sample, R], [own, S]] as const)
      for (const p of config.pools) {
        const ud = res[`LaunchTemplate${logicalName(p.name)}`].Properties.LaunchTemplateData.UserData;
        expect(typeof ud).toBe('string');
        const gz = Buffer.from(ud, 'base64');
        expect(gz.subarray(0, 2).toString('hex')).toBe('1f8b');
        // 10.6 KB for the sample's pools (the boot timeline, image check, log shipper and the
        // cache-bucket tag read included); EC2 allows 16 KB, so about 5.8 KB are left for a
        // pool's runner settings, runnerSecrets, userScript, CA ...
        expect(gz.length).toBeLessThan(11_000);
        const script = gunzipSync(gz).toString('utf8');
        expect(script).toBe(renderUserData({ config, pool: p, stage: 'prod', region: 'eu-central-1' }));
        expect(script.includes(`BucketName = "${DEPLOYMENT_CACHE_PLACEHOLDER}"`)).toBe(config === sample);
      }
  });

  it('deploys a pool whose script is over 16 KB when it fits compressed (250 docker volumes)', () => {
    const big = parseConfig(readFileSync(join(__dirname, '../../samples/config.yaml'), 'utf8'), 'samples/config.yaml');
    big.pools[0].worker.docker.volumes = Array.from({ length: 250 }, (_, i) => `/srv/v${i}:/v${i}:ro`);
    const script = renderUserData({ config: big, pool: big.pools[0], stage: 'prod', region: 'eu-central-1' });
    expect(Buffer.byteLength(script)).toBeGreaterThan(2 * 16 * 1024);
    const S = buildStack(opts({ config: big })).resources as Record<string, any>;
    const ud = S[`LaunchTemplate${logicalName(big.pools[0].name)}`].Properties.LaunchTemplateData.UserData;
    // 12.1 KB; until the cache bucket's name became a tag it did not deploy (16.5 KB as sent).
    expect(Buffer.from(ud, 'base64').length).toBeLessThan(12_500);
  });

  it('creates a security group with no inbound rule, and an encrypted private cache bucket that expires', () => {
    expect(R.WorkerSecurityGroup.Properties.SecurityGroupIngress).toBeUndefined();
    expect(R.WorkerSecurityGroup.Properties.VpcId).toBe('vpc-0123456789abcdef0');
    const b = R.CacheBucket.Properties;
    expect(b.PublicAccessBlockConfiguration).toEqual({ BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true });
    expect(b.BucketEncryption.ServerSideEncryptionConfiguration[0].ServerSideEncryptionByDefault.SSEAlgorithm).toBe('AES256');
    expect(b.LifecycleConfiguration.Rules[0].ExpirationInDays).toBeGreaterThan(0);
  });

  it('picks the root device by AMI family', () => {
    expect(rootDeviceName('resolve:ssm:/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64')).toBe('/dev/xvda');
    expect(rootDeviceName('resolve:ssm:/aws/service/canonical/ubuntu/server/24.04/stable/current/amd64/hvm/ebs-gp3/ami-id')).toBe('/dev/sda1');
  });
});

describe('queue, schedules, outputs', () => {
  it('has a dead-letter queue with an alarm behind both queues; the report queue has the name the user data looks up', () => {
    for (const q of ['EventQueue', 'WorkerReportQueue']) {
      expect(R[q].Properties.RedrivePolicy.deadLetterTargetArn).toEqual({ 'Fn::GetAtt': ['EventDeadLetterQueue', 'Arn'] });
      expect(R[q].Properties.VisibilityTimeout).toBe(REPORTING.visibilitySeconds);
    }
    expect(R.WorkerReportQueue.Properties.QueueName).toBe(reportQueueName('acme-ci', 'prod'));
    expect(R.DeadLetterAlarm.Properties.Dimensions[0].Value).toEqual({ 'Fn::GetAtt': ['EventDeadLetterQueue', 'QueueName'] });
  });

  it('runs reconcile every minute and at the period boundaries, with no SQS event source (it reads the queues itself)', () => {
    const [tick, ...boundaries] = stack.reconcileEvents as any[];
    expect((stack.reconcileEvents as any[]).some((e) => e.sqs)).toBe(false);
    expect(tick.schedule).toMatchObject({ rate: [scheduleRate(CADENCE.scheduleEveryMs)], method: 'scheduler' });
    expect(scheduleRate(CADENCE.scheduleEveryMs)).toBe('rate(1 minute)');
    expect(boundaries.map((b) => [b.schedule.rate[0], b.schedule.timezone])).toEqual([['cron(0 0,8,19 * * ? *)', 'Europe/Berlin']]);
  });

  it('routes the three EC2 event types to the interruption function', () => {
    const types = (stack.interruptionEvents as any[]).flatMap((e) => e.eventBridge.pattern['detail-type']);
    expect(types.sort()).toEqual(['EC2 Instance Rebalance Recommendation', 'EC2 Instance State-change Notification', 'EC2 Spot Instance Interruption Warning']);
  });

  it('hears only the end states of instances: one ownership lookup (DescribeInstances) per instance that ends, not two', () => {
    const states = (stack.interruptionEvents as any[]).flatMap((e) => e.eventBridge.pattern.detail?.state ?? []);
    expect(states.sort()).toEqual(['stopped', 'terminated']);
  });

  it('stores the validated config and outputs the webhook URL and the secrets to create', () => {
    expect(JSON.parse(R.ConfigParameter.Properties.Value).deployment).toBe('acme-ci');
    expect(R.ConfigParameter.Properties.Name).toBe('/gitlab-spot-autoscaler/acme-ci/prod/config');
    expect(JSON.stringify(stack.outputs.WebhookUrl)).toContain('/webhook');
    expect(stack.secretParameters).toEqual([
      '/gitlab-spot-autoscaler/acme-ci/prod/secrets/webhook-secret',
      '/gitlab-spot-autoscaler/acme-ci/prod/secrets/gitlab-api-token',
      '/gitlab-spot-autoscaler/acme-ci/prod/secrets/runner-token/general',
      '/gitlab-spot-autoscaler/acme-ci/prod/secrets/runner-token/heavy',
    ]);
  });

  it('gives the webhook only what it needs in its environment (no config)', () => {
    expect(Object.keys(stack.env.webhook).sort()).toEqual(['DEPLOYMENT', 'QUEUE_URL', 'STAGE', 'WEBHOOK_SECRET_PARAMETER']);
  });
});

describe('bad input', () => {
  it('refuses a stage that does not fit in resource names', () => {
    expect(() => buildStack(opts({ stage: 'Prod_1' }))).toThrow(StackError);
    expect(() => buildStack(opts({ stage: 'x'.repeat(17) }))).toThrow(/1-16/);
  });
  it('asks for the VPC when a pool lists no security group, and takes it from the config', () => {
    expect(() => buildStack(opts({ vpcId: undefined }))).toThrow(/set vpcId in the config or pass --param vpc=vpc-/);
    const withVpc = parseConfig(JSON.stringify({ ...sample, vpcId: 'vpc-0feedfacecafe0000' }), 'inline');
    expect((buildStack(opts({ config: withVpc, vpcId: undefined })).resources as Record<string, any>).WorkerSecurityGroup.Properties.VpcId).toBe('vpc-0feedfacecafe0000');
  });
  it('puts the encrypted volume on the root device the config names (an Ubuntu AMI id)', () => {
    const raw = JSON.parse(JSON.stringify(sample));
    raw.pools[0].worker.ami = 'ami-0123456789abcdef0';
    raw.pools[0].worker.rootDeviceName = '/dev/sda1';
    const res = buildStack(opts({ config: parseConfig(JSON.stringify(raw), 'inline') })).resources as Record<string, any>;
    const lt = Object.values(res).find((r: any) => r.Type === 'AWS::EC2::LaunchTemplate' && r.Properties.LaunchTemplateData.BlockDeviceMappings[0].DeviceName === '/dev/sda1');
    expect(lt).toBeDefined();
  });
  it('refuses a region that contradicts the config', () => {
    expect(() => buildStack(opts({ region: 'us-east-1' }))).toThrow(/eu-central-1/);
  });
  it('refuses user data over 16 KB compressed, saying both sizes', () => {
    // Random bytes in hex do not compress below half their size.
    const noise = (n: number) => require('node:crypto').randomBytes(n).toString('hex') as string;
    const own = parseConfig(readFileSync(join(__dirname, '../../samples/config.yaml'), 'utf8'), 'samples/config.yaml');
    for (const p of own.pools) p.worker.cache.bucketName = `own-${p.name}`;
    // The same for a pool on its own bucket and one on the deployment's: nothing is added around the gzip.
    for (const config of [own, sample])
      expect(() => buildStack(opts({ config, renderUserData: () => `#!/bin/bash\n# ${noise(20000)}\n` }))).toThrow(
        /the worker user data of pool "general" is \d+ bytes gzip-compressed \(40015 bytes as a script\), over EC2's limit of 16384 bytes/,
      );
    expect(() => buildStack(opts({ renderUserData: () => 'x'.repeat(16 * 1024 + 1) }))).not.toThrow();
  });
  it('maps pool names to CloudFormation ids', () => {
    expect(logicalName('docker-amd64')).toBe('DockerAmd64');
  });
});
