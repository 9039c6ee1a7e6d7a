/**
 * A scheduled invocation of the real reconcile handler against moto, with an idle job queue: between
 * passes the loop long-polls the queue (ReceiveMessage waits up to 20 s for the first event). The
 * function's SQS client must wait that long: with the webhook's 1.5 s request timeout every idle
 * invocation ended in a TimeoutError (found with `npm run dev`: "reconcile failed ... exceeded the
 * configured 1500 ms requestTimeout").
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DescribeImagesCommand, DescribeSubnetsCommand, EC2Client } from '@aws-sdk/client-ec2';
import { CreateQueueCommand, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { stringify } from 'yaml';
import { validateConfig } from '../../lib/config';
import { encodeQueueMessage } from '../../lib/webhook/job-hook';
import { handler as reconcile, resetForTests, setLoopOptionsForTests } from '../../handlers/reconcile';
import { clearConfigCache } from '../../lib/lambda/runtime';
import { resetGitlabForTests } from '../../lib/lambda/gitlab';
import { motoClientConfig, startMoto, type MotoServer } from '../helpers/moto';

jest.setTimeout(60_000);

let moto: MotoServer;
let dir: string;
const env0 = { ...process.env };

beforeAll(async () => {
  moto = await startMoto();
  dir = mkdtempSync(join(tmpdir(), 'gsa-loop-'));
});
afterAll(async () => {
  process.env = env0;
  setLoopOptionsForTests({});
  await moto?.stop();
  rmSync(dir, { recursive: true, force: true });
});

test('a scheduled invocation waits for events across an idle queue, and takes one that arrives while it waits', async () => {
  const ec2 = new EC2Client(motoClientConfig(moto.endpoint));
  const subnets = ((await ec2.send(new DescribeSubnetsCommand({}))).Subnets ?? []).map((s) => s.SubnetId!).slice(0, 1);
  const ami = (await ec2.send(new DescribeImagesCommand({ Owners: ['amazon'] }))).Images![0].ImageId!;
  ec2.destroy();
  const config = validateConfig({ deployment: 'loop', gitlab: { url: 'https://gitlab.example.com' }, pools: [{ name: 'docker', runUntagged: true, worker: { instanceTypes: ['m6i.large'], subnets, ami } }] });
  const file = join(dir, 'config.yaml');
  writeFileSync(file, stringify(config));
  const sqs = new SQSClient(motoClientConfig(moto.endpoint));
  const queueUrl = (await sqs.send(new CreateQueueCommand({ QueueName: 'gsa-loop-idle-events' }))).QueueUrl!;
  Object.assign(process.env, { AWS_ENDPOINT_URL: moto.endpoint, AWS_REGION: 'us-east-1', AWS_ACCESS_KEY_ID: 'testing', AWS_SECRET_ACCESS_KEY: 'testing', STAGE: 'idle', CONFIG_FILE: file, QUEUE_URL: queueUrl });
  for (const k of ['CONFIG_PARAMETER', 'AWS_SESSION_TOKEN', 'REPORT_QUEUE_URL', 'WORKER_ROLE_IDS']) delete process.env[k];
  resetForTests(() => {});
  clearConfigCache();
  resetGitlabForTests();
  // Passes every 2.5 s for 5 s: the waits between them are long polls of over 2 s, past the old 1.5 s timeout.
  setLoopOptionsForTests({ loopForMs: 5_000, tickIntervalMs: 2_500, minPassIntervalMs: 0, stopReserveMs: 0 });
  const lines: string[] = [];
  const spy = jest.spyOn(process.stdout, 'write').mockImplementation(((c: any) => (lines.push(String(c)), true)) as any);
  const late = setTimeout(() => {
    void sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: encodeQueueMessage({ v: 1, type: 'job', event: { jobId: 7, projectId: 1, status: 'pending', receivedAt: Date.now() } }) }));
  }, 1_000);
  try {
    const out: any = await reconcile({ trigger: 'schedule' }, { awsRequestId: 'loop', getRemainingTimeInMillis: () => 60_000 } as any);
    expect(out.passes).toBeGreaterThanOrEqual(2);
    expect(lines.join('')).not.toMatch(/TimeoutError|invocation failed/);
    // The event sent while the loop waited was taken by a pass and launched for.
    const done = lines.filter((l) => l.includes('"message":"pass done"')).map((l) => JSON.parse(l));
    expect(done.reduce((n, l) => n + l.events, 0)).toBe(1);
  } finally {
    clearTimeout(late);
    spy.mockRestore();
    sqs.destroy();
  }
});
