/**
 * The reconcile and interruption handlers against moto (EC2, SSM, SQS over HTTP) and a loopback
 * GitLab API: an SQS batch with a bad message reports exactly that one in batchItemFailures, the
 * pass launches a worker, EMF lines come out per pool, and no secret appears in any log line.
 */
import { createServer, type Server } from 'node:http';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EC2Client, DescribeInstancesCommand, DescribeLaunchTemplateVersionsCommand, RunInstancesCommand } from '@aws-sdk/client-ec2';
import { SSMClient, PutParameterCommand } from '@aws-sdk/client-ssm';
import { GetQueueAttributesCommand, SQSClient, ReceiveMessageCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import type { SQSRecord } from 'aws-lambda';
import { stringify } from 'yaml';
import { startMoto, motoClientConfig, type MotoServer } from '../helpers/moto';
import { seedMoto, type Seeded } from '../../lib/deploy/dev-seed';
import { parameterNames } from '../../lib/config';
import { handler as reconcile, resetForTests as resetReconcile } from '../../handlers/reconcile';
import { handler as interruption, resetForTests as resetInterruption } from '../../handlers/interruption';
import { clearConfigCache } from '../../lib/lambda/runtime';
import { resetGitlabForTests } from '../../lib/lambda/gitlab';
import { clearSecretCache } from '../../lib/aws/ssm-state-store';

const API_TOKEN = 'glpat-test-api-token-0123456789';
const WEBHOOK_SECRET = 'webhook-secret-for-reconcile-test';
let moto: MotoServer;
let gitlab: Server;
let seeded: Seeded;
let dir: string;
let lines: string[] = [];
const metrics: string[] = [];
const env0 = { ...process.env };
const ctx = () => ({ awsRequestId: 'r-1', getRemainingTimeInMillis: () => 60_000 }) as any;
/** A context whose time runs out after one pass of the loop (SAFETY_MARGIN_MS 5 s + the loop's 15 s stop reserve). */
const shortCtx = () => {
  const t0 = Date.now();
  return { awsRequestId: 'r-2', getRemainingTimeInMillis: () => 20_300 - (Date.now() - t0) } as any;
};
const apiRequests: { url?: string; token?: string | string[] }[] = [];
let pendingInGitLab = [77];

beforeAll(async () => {
  moto = await startMoto();
  // GitLab's GraphQL API: every project asked for has the jobs of `pendingInGitLab` pending, tagged docker.
  gitlab = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      apiRequests.push({ url: req.url, token: req.headers['private-token'] ?? req.headers.authorization?.replace(/^Bearer /, '') });
      res.setHeader('content-type', 'application/json');
      if (req.method !== 'POST' || req.url !== '/api/graphql') return void res.writeHead(404).end('{}');
      const ids: string[] = JSON.parse(body).variables?.ids ?? [];
      const jobs = pendingInGitLab.map((id) => ({ id: `gid://gitlab/Ci::Build/${id}`, status: 'PENDING', tags: ['docker'] }));
      const none = { pageInfo: { hasNextPage: false }, nodes: [] };
      const pending = { pageInfo: { hasNextPage: false }, nodes: [{ id: 'gid://gitlab/Ci::Pipeline/1', jobs: { pageInfo: { hasNextPage: false }, nodes: jobs } }] };
      res.end(JSON.stringify({ data: { projects: { nodes: ids.map((id) => ({ id, running: none, pending, childRunning: none, childPending: none })) } } }));
    });
  });
  await new Promise<void>((r) => gitlab.listen(0, '127.0.0.1', r));
  const gitlabUrl = `http://127.0.0.1:${(gitlab.address() as { port: number }).port}`;
  dir = mkdtempSync(join(tmpdir(), 'gsa-reconcile-'));
  seeded = await seedMoto({ endpoint: moto.endpoint, region: 'us-east-1', stage: 'test', webhookSecret: WEBHOOK_SECRET, configPath: join(dir, 'seed.yaml') });
  const config = { ...seeded.config, gitlab: { url: gitlabUrl } };
  writeFileSync(join(dir, 'config.yaml'), stringify(config));
  await new SSMClient(motoClientConfig(moto.endpoint)).send(
    new PutParameterCommand({ Name: parameterNames(seeded.config, 'test').gitlabApiToken, Value: API_TOKEN, Type: 'SecureString', Overwrite: true }),
  );
  Object.assign(process.env, {
    AWS_ENDPOINT_URL: moto.endpoint,
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'testing',
    AWS_SECRET_ACCESS_KEY: 'testing',
    STAGE: 'test',
    CONFIG_FILE: join(dir, 'config.yaml'),
    QUEUE_URL: seeded.queueUrl,
    REPORT_QUEUE_URL: seeded.reportQueueUrl,
    WORKER_ROLE_IDS: seeded.workerRoleIds.join(','),
    CACHE_BUCKET: 'dev-local-test-cachebucket-1a2b',
  });
  delete process.env.CONFIG_PARAMETER;
}, 60_000);

afterAll(async () => {
  process.env = env0;
  await new Promise((r) => gitlab.close(r));
  await moto.stop();
  rmSync(dir, { recursive: true, force: true });
});

let spy: jest.SpyInstance;
beforeEach(() => {
  resetReconcile((l) => metrics.push(l));
  resetInterruption((l) => metrics.push(l));
  clearConfigCache();
  clearSecretCache();
  resetGitlabForTests();
  spy = jest.spyOn(process.stdout, 'write').mockImplementation(((c: any) => (lines.push(String(c)), true)) as any);
});
afterEach(() => spy.mockRestore());

const record = (id: string, body: string): SQSRecord => ({
  messageId: id,
  receiptHandle: id,
  body,
  attributes: { ApproximateReceiveCount: '1', SentTimestamp: String(Date.now()), SenderId: 'AIDAEXAMPLE', ApproximateFirstReceiveTimestamp: String(Date.now()) },
  messageAttributes: {},
  md5OfBody: '',
  eventSource: 'aws:sqs',
  eventSourceARN: 'arn:aws:sqs:us-east-1:123456789012:q',
  awsRegion: 'us-east-1',
});
const ec2 = () => new EC2Client(motoClientConfig(moto.endpoint));
const instances = async () => (await ec2().send(new DescribeInstancesCommand({}))).Reservations?.flatMap((r) => r.Instances ?? []) ?? [];

describe('reconcile handler', () => {
  it('reports only the unreadable message as failed, launches for the pending job, emits per-pool metrics', async () => {
    const job = { v: 1, type: 'job', event: { jobId: 77, projectId: 5, status: 'pending', receivedAt: Date.now(), deliveryId: 'd-1' } };
    const res = await reconcile({ Records: [record('m-ok', JSON.stringify(job)), record('m-dup', JSON.stringify(job)), record('m-bad', '{"v":9}')] }, ctx());
    expect(res).toEqual({ batchItemFailures: [{ itemIdentifier: 'm-bad' }] });
    expect(await instances()).toHaveLength(1);
    // The pool uses the deployment's cache bucket: its name is a launch tag, which the worker reads at boot.
    expect((await instances())[0].Tags).toContainEqual({ Key: 'gitlab-spot-autoscaler:cache-bucket', Value: 'dev-local-test-cachebucket-1a2b' });
    const pool = metrics.map((l) => JSON.parse(l)).find((m) => m.Pool === 'docker');
    expect(pool).toMatchObject({ Deployment: 'dev-local', Stage: 'test', Launches: 1, PendingJobs: 1 });
    expect(pool._aws.CloudWatchMetrics[0].Dimensions).toEqual([['Deployment', 'Stage', 'Pool']]);
    const logs = lines.join('').split('\n').filter(Boolean).map((l) => JSON.parse(l));
    expect(logs.find((l) => l.message === 'pass done')).toMatchObject({ trigger: 'queue', events: 1, launched: { docker: 1 } });
    expect(logs.every((l) => l.correlationId === 'm-ok')).toBe(true);
  });

  it('runs a scheduled pass and returns its decisions', async () => {
    const res: any = await reconcile({ trigger: 'schedule', reason: 'tick' }, shortCtx());
    expect(res.passId).toMatch(/^\d{8}T\d{6}Z-/);
    expect(res.passes).toBeGreaterThanOrEqual(1);
    expect(Array.isArray(res.decisions)).toBe(true);
  });

  it('a scheduled invocation reads the job-event queue itself: applied events are deleted, an unreadable one is left for the dead-letter queue', async () => {
    const sqs = new SQSClient(motoClientConfig(moto.endpoint));
    const job = (id: number) => JSON.stringify({ v: 1, type: 'job', event: { jobId: id, projectId: 5, status: 'pending', receivedAt: Date.now(), deliveryId: `q-${id}` } });
    // One pool: jobs of events count once GitLab confirms them (it can be asked here).
    pendingInGitLab = [501, 502];
    for (const body of [job(501), job(502), '{"v":9}']) await sqs.send(new SendMessageCommand({ QueueUrl: seeded.queueUrl, MessageBody: body }));
    const before = (await instances()).length;
    const res: any = await reconcile({ trigger: 'schedule' }, shortCtx());
    expect(res.passes).toBeGreaterThanOrEqual(1);
    expect((await instances()).length).toBeGreaterThan(before);
    const logs = lines.join('').split('\n').filter(Boolean).map((l) => JSON.parse(l));
    expect(logs.some((l) => l.message === 'queue message refused')).toBe(true);
    expect(logs.filter((l) => l.message === 'pass done').reduce((n, l) => n + l.events, 0)).toBeGreaterThanOrEqual(2);
    // Only the unreadable message is left (it comes back after its visibility timeout).
    const left = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: seeded.queueUrl, AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'] }));
    expect(Number(left.Attributes!.ApproximateNumberOfMessages) + Number(left.Attributes!.ApproximateNumberOfMessagesNotVisible)).toBe(1);
    sqs.destroy();
  });

  it('keeps one Ec2Fleet per container: the launch template check is cached across invocations', async () => {
    const send = jest.spyOn(EC2Client.prototype, 'send');
    const templateChecks = () => send.mock.calls.filter(([cmd]) => cmd instanceof DescribeLaunchTemplateVersionsCommand).length;
    try {
      await reconcile({ trigger: 'manual' }, ctx());
      const first = templateChecks();
      expect(first).toBeGreaterThan(0);
      await reconcile({ trigger: 'manual' }, ctx());
      expect(templateChecks()).toBe(first);
    } finally {
      send.mockRestore();
    }
  });

  it('never logs a secret it used (GitLab API token, webhook secret, runner token)', async () => {
    pendingInGitLab = [78];
    const job = { v: 1, type: 'job', event: { jobId: 78, projectId: 5, status: 'pending', receivedAt: Date.now() - 10 * 60_000 } };
    await reconcile({ Records: [record('m-2', JSON.stringify(job))] }, ctx());
    expect(apiRequests.length).toBeGreaterThan(0); // the token was really used
    expect(apiRequests.every((r) => r.token === API_TOKEN)).toBe(true);
    const all = lines.join('') + metrics.join('');
    for (const secret of [API_TOKEN, WEBHOOK_SECRET, 'glrt-dev-not-a-real-token']) expect(all).not.toContain(secret);
  });
});

describe('interruption handler', () => {
  const sqs = () => new SQSClient(motoClientConfig(moto.endpoint));
  const warning = (instanceId: string) => {
    const event = JSON.parse(readFileSync(join(__dirname, '../../events/spot-interruption-warning.json'), 'utf8'));
    event.detail['instance-id'] = instanceId;
    return event;
  };
  const stateChange = (instanceId: string, state: string) => {
    const event = JSON.parse(readFileSync(join(__dirname, '../../events/instance-state-change.json'), 'utf8'));
    event.detail = { 'instance-id': instanceId, state };
    return event;
  };
  const drain = async () => {
    const out: any[] = [];
    for (;;) {
      const msgs = await sqs().send(new ReceiveMessageCommand({ QueueUrl: seeded.queueUrl, MaxNumberOfMessages: 10, VisibilityTimeout: 600 }));
      if (!msgs.Messages?.length) return out;
      out.push(...msgs.Messages.map((m) => JSON.parse(m.Body!)));
    }
  };
  /** An instance with no tags of ours (another team's workload in the same account). */
  const foreignInstance = async () => {
    const [own] = await instances();
    const out = await ec2().send(new RunInstancesCommand({ ImageId: own.ImageId!, MinCount: 1, MaxCount: 1, InstanceType: 't3.micro', TagSpecifications: [{ ResourceType: 'instance', Tags: [{ Key: 'team', Value: 'other' }] }] }));
    return out.Instances![0].InstanceId!;
  };
  const describeCalls = (spy: jest.SpyInstance) => spy.mock.calls.filter(([cmd]) => cmd instanceof DescribeInstancesCommand).length;

  it('marks a worker of this deployment with one EC2 lookup, queues a reconcile nudge, counts it', async () => {
    await drain();
    const [inst] = await instances();
    const send = jest.spyOn(EC2Client.prototype, 'send');
    try {
      const res = await interruption(warning(inst.InstanceId!), ctx());
      expect(res).toMatchObject({ action: 'tagged', queued: true });
      // markInterrupted -> Ec2Fleet.markInstance does the ownership lookup; the handler adds none.
      expect(describeCalls(send)).toBe(1);
    } finally {
      send.mockRestore();
    }
    const tags = (await instances()).find((i) => i.InstanceId === inst.InstanceId)!.Tags ?? [];
    expect(tags.find((t) => t.Key === 'gitlab-spot-autoscaler:interrupted')?.Value).toMatch(/^interruption /);
    expect((await drain()).some((b) => b.type === 'interruption' && b.instanceId === inst.InstanceId)).toBe(true);
    const line = metrics.map((l) => JSON.parse(l)).find((m) => m.Interruptions === 1);
    expect(line).toMatchObject({ Deployment: 'dev-local', Stage: 'test' });
  });

  it('leaves instances of other deployments alone: no tag, nothing queued, not counted', async () => {
    await drain();
    const id = await foreignInstance();
    metrics.length = 0;
    expect(await interruption(warning(id), ctx())).toMatchObject({ action: 'not-ours', queued: false });
    const tags = (await instances()).find((i) => i.InstanceId === id)!.Tags ?? [];
    expect(tags.map((t) => t.Key)).toEqual(['team']);
    expect(await drain()).toEqual([]);
    expect(metrics).toEqual([]);
  });

  it('answers "gone" for an instance that no longer exists and queues nothing', async () => {
    await drain();
    expect(await interruption(warning('i-0123456789abcdef0'), ctx())).toMatchObject({ action: 'gone', queued: false });
    expect(await drain()).toEqual([]);
  });

  it('wakes reconcile when an own worker stops, not when another instance of the account does', async () => {
    await drain();
    const [own] = await instances();
    metrics.length = 0;
    expect(await interruption(stateChange(own.InstanceId!, 'shutting-down'), ctx())).toMatchObject({ queued: true });
    expect((await drain()).some((b) => b.type === 'interruption' && b.instanceId === own.InstanceId)).toBe(true);
    // Its end comes as two events (shutting-down, terminated): the dashboard's "workers gone" counts it once.
    await interruption(stateChange(own.InstanceId!, 'terminated'), ctx());
    await drain();
    expect(metrics.map((l) => JSON.parse(l)).reduce((n, m) => n + (m.WorkersGone ?? 0), 0)).toBe(1);
    const id = await foreignInstance();
    expect(await interruption(stateChange(id, 'terminated'), ctx())).toMatchObject({ action: 'not-ours', queued: false });
    expect(await drain()).toEqual([]);
  });

  it('ignores event types it does not handle', async () => {
    const event = { ...warning('i-0123456789abcdef0'), 'detail-type': 'Something Else' };
    expect(await interruption(event, ctx())).toMatchObject({ action: 'ignored', queued: false });
  });
});
