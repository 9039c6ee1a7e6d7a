/**
 * The controller at 500, 2,000 and 5,000 workers running 5-minute jobs (issue 9): AWS calls per
 * pass by API, per minute and per job, SSM writes per pass, events drained per minute, and pass
 * time in memory, with assumed AWS latencies, and against moto.
 *
 * Steady state: N workers, 80 % busy; N/5 jobs start a minute, each job sends 3 webhooks
 * (pending, running, success), so 3N/5 events a minute; each job is 2 worker transitions.
 *
 * THIS VERSION MEASURES THE DESIGN AS LANDED BEFORE ISSUE 9: an SQS event source mapping hands the
 * reconcile function batches of at most 25 events (reserved concurrency 1), plus one scheduled
 * pass a minute; workers tag themselves on every transition (CreateTags, 2 per job).
 *
 * Run: npm run bench -- scale      (SCALE_MOTO=0 skips moto; SCALE_MOTO_MAX=2000 bounds it)
 */
import { DescribeImagesCommand, EC2Client, RunInstancesCommand } from '@aws-sdk/client-ec2';
import { SSMClient } from '@aws-sdk/client-ssm';
import { validateConfig, type Config } from '../lib/config';
import { Ec2Fleet, ensureLaunchTemplate } from '../lib/aws/ec2-fleet';
import { SsmStateStore } from '../lib/aws/ssm-state-store';
import { reconcilePass, type PassInput } from '../lib/controller/reconcile';
import { TAGS } from '../lib/controller/tags';
import type { JobEvent, Logger } from '../lib/controller/ports';
import { FakeAws } from '../test/helpers/fake-aws';
import { motoClientConfig, startMoto } from '../test/helpers/moto';

const SIZES = [500, 2000, 5000];
const BATCH = 25; // the SQS event source mapping's batch size (lib/deploy/stack.ts SIZING before issue 9)
const quiet: Logger = { info() {}, warn() {}, error() {} };
const noWait = { sleep: async () => {}, random: () => 0 };

/**
 * ASSUMED AWS latencies (ms). AWS publishes none; these are round figures of the order seen in
 * practice, used only to turn counted calls into a pass duration. The counts are exact.
 */
const ASSUMED: Record<string, (n: number) => number> = {
  DescribeInstances: (n) => 150 + 1.2 * n,
  DescribeInstanceStatus: (n) => 150 + 0.2 * n,
  DescribeLaunchTemplateVersions: () => 100,
  CreateFleet: () => 2500,
  CreateTags: () => 150,
  TerminateInstances: () => 300,
  GetParametersByPath: () => 40,
  PutParameter: () => 60,
};
const assumedLatency = (api: string, n: number) => ASSUMED[api]?.(n) ?? 30;

function makeConfig(subnets = ['subnet-0a', 'subnet-0b', 'subnet-0c'], ami = 'ami-0123456789abcdef0'): Config {
  return validateConfig({
    deployment: 'bench',
    gitlab: { url: 'https://gitlab.example.com' },
    pools: [{ name: 'docker', runUntagged: true, IdleCount: 20, IdleTime: 1800, worker: { instanceTypes: ['m6i.large', 'm5.large', 'm6a.large', 'm7i.large'], subnets, ami } }],
  });
}

const T0 = Date.parse('2026-11-30T10:00:00Z');

/** Tags of a steady worker k: ready an hour ago, 80 % busy. */
function workerTags(k: number, now: number): Record<string, string> {
  const busy = k % 5 !== 0;
  return {
    [TAGS.deployment]: 'bench',
    [TAGS.stage]: 'bench',
    [TAGS.pool]: 'docker',
    [TAGS.pass]: 'e0-g0',
    [TAGS.launchedAt]: new Date(now - 3_700_000).toISOString(),
    [TAGS.templateVersion]: '1',
    [TAGS.ready]: new Date(now - 3_600_000).toISOString(),
    [TAGS.state]: busy ? 'busy' : 'idle',
    [TAGS.idleSince]: new Date(now - 60_000).toISOString(),
    [TAGS.builds]: String(k % 11),
  };
}

/** Job events of one steady batch: new jobs pending, earlier ones running / finishing. */
let nextJob = 10_000_000;
function events(n: number, now: number): JobEvent[] {
  const statuses = ['pending', 'running', 'success'];
  return Array.from({ length: n }, (_, k) => ({ jobId: nextJob++, projectId: 100 + (k % 20), status: statuses[k % 3], receivedAt: now, tags: ['docker'] }));
}

const fmt = (o: Record<string, number>) =>
  Object.entries(o)
    .map(([k, v]) => `${k} ${Number.isInteger(v) ? v : v.toFixed(1)}`)
    .join(', ') || '-';

async function inMemory(n: number): Promise<void> {
  const aws = new FakeAws();
  try {
    const config = makeConfig();
    let now = T0;
    const clock = { now: () => now };
    for (let k = 0; k < n; k++) aws.add(workerTags(k, now), { instanceType: 'm6i.large', subnet: 'subnet-0a' });
    const ec2 = new EC2Client({ region: 'eu-west-1' });
    const ssm = new SSMClient({ region: 'eu-west-1' });
    const fleet = new Ec2Fleet({ ec2, config, stage: 'bench', now: clock.now, retryEnv: noWait });
    const pass = (input: PassInput) => reconcilePass({ config, stage: 'bench', fleet, store: new SsmStateStore({ ssm, config, stage: 'bench', retryEnv: noWait }), clock, log: quiet }, input);
    // Warm up: the running jobs of the busy workers are known.
    const running = Math.round(n * 0.8);
    await pass({ trigger: 'queue', events: Array.from({ length: running }, (_, k) => ({ jobId: 5_000_000 + k, projectId: 100 + (k % 20), status: 'running', receivedAt: now, tags: ['docker'] })) });
    now += 20_000;

    const measure = async (input: PassInput, latency: boolean) => {
      aws.latency = latency ? assumedLatency : () => 0;
      const before = aws.snapshot();
      const t = performance.now();
      const r = await pass(input);
      const ms = performance.now() - t;
      now += 3_000;
      return { ms, calls: aws.since(before), writes: r.stateWrites };
    };
    const queue = await measure({ trigger: 'queue', events: events(BATCH, now) }, false);
    const schedule = await measure({ trigger: 'schedule', events: [] }, false);
    const queueLat = await measure({ trigger: 'queue', events: events(BATCH, now) }, true);

    const eventsPerMinute = (3 * n) / 5;
    const jobsPerMinute = n / 5;
    const passesPossible = 60_000 / queueLat.ms;
    const drained = Math.min(eventsPerMinute, BATCH * passesPossible);
    const queuePasses = drained / BATCH;
    const perMinute: Record<string, number> = {};
    for (const [api, c] of Object.entries(queue.calls)) perMinute[api] = (perMinute[api] ?? 0) + c * queuePasses;
    for (const [api, c] of Object.entries(schedule.calls)) perMinute[api] = (perMinute[api] ?? 0) + c;
    // Workers tag themselves: one CreateTags at job start, one at its end.
    const workerTagsPerMinute = 2 * jobsPerMinute;
    console.log(`\n  ${n.toLocaleString('en')} workers, ${eventsPerMinute.toLocaleString('en')} events/min, ${jobsPerMinute} jobs/min`);
    console.log(`    queue pass (${BATCH} events): ${fmt(queue.calls)}; SSM writes ${queue.writes}; in memory ${queue.ms.toFixed(0)} ms; with assumed AWS latency ${queueLat.ms.toFixed(0)} ms`);
    console.log(`    schedule pass: ${fmt(schedule.calls)}; SSM writes ${schedule.writes}; in memory ${schedule.ms.toFixed(0)} ms`);
    console.log(`    events drained/min: ${Math.round(drained).toLocaleString('en')} of ${eventsPerMinute.toLocaleString('en')} arriving (${BATCH} per pass, ${passesPossible.toFixed(1)} passes/min at the assumed latency)${drained < eventsPerMinute ? ' -> the queue grows without bound' : ''}`);
    console.log(`    controller calls/min: ${fmt(perMinute)}`);
    console.log(`    worker CreateTags/min: ${workerTagsPerMinute} (2 per job; the account's CreateTags bucket refills 600/min)`);
    const perJob: Record<string, number> = { CreateTags: (workerTagsPerMinute + (perMinute.CreateTags ?? 0)) / jobsPerMinute };
    for (const [api, c] of Object.entries(perMinute)) if (api !== 'CreateTags') perJob[api] = c / jobsPerMinute;
    console.log(`    per job: ${fmt(Object.fromEntries(Object.entries(perJob).map(([k, v]) => [k, Math.round(v * 100) / 100])))}`);
  } finally {
    aws.restore();
  }
}

async function againstMoto(sizes: number[]): Promise<void> {
  const moto = await startMoto();
  try {
    const ec2 = new EC2Client(motoClientConfig(moto.endpoint));
    const ssm = new SSMClient(motoClientConfig(moto.endpoint));
    const ami = (await ec2.send(new DescribeImagesCommand({ Owners: ['amazon'] }))).Images![0].ImageId!;
    let have = 0;
    for (const n of sizes) {
      const config = makeConfig(['subnet-0a'], ami);
      const stage = 'bench';
      await ensureLaunchTemplate(ec2, { config, stage, pool: config.pools[0], userData: '#!/bin/bash\n', instanceProfile: 'w' });
      let now = Date.now();
      const clock = { now: () => now };
      const t0 = performance.now();
      while (have < n) {
        const k = Math.min(1000, n - have);
        const tags = workerTags(have, now);
        await ec2.send(new RunInstancesCommand({ ImageId: ami, MinCount: k, MaxCount: k, InstanceType: 'm6i.large', TagSpecifications: [{ ResourceType: 'instance', Tags: Object.entries(tags).map(([Key, Value]) => ({ Key, Value })) }] }));
        have += k;
      }
      const fleet = new Ec2Fleet({ ec2, config, stage, now: clock.now });
      const store = () => new SsmStateStore({ ssm, config, stage });
      const passes = n >= 5000 ? 1 : 2;
      const times: number[] = [];
      for (let p = 0; p < passes; p++) {
        const t = performance.now();
        await reconcilePass({ config, stage, fleet, store: store(), clock, log: quiet }, { trigger: 'queue', events: events(BATCH, now) });
        times.push(performance.now() - t);
        now += 3000;
      }
      console.log(`  moto, ${n.toLocaleString('en')} workers: queue pass ${times.map((t) => `${(t / 1000).toFixed(1)} s`).join(', ')} (set-up ${((performance.now() - t0) / 1000 - times.reduce((a, b) => a + b, 0) / 1000).toFixed(0)} s)`);
    }
    ec2.destroy();
    ssm.destroy();
  } finally {
    await moto.stop();
  }
}

async function main() {
  console.log('scale bench: the controller at 500 / 2,000 / 5,000 workers (5-minute jobs)');
  console.log(`  assumed AWS latencies (ms): ${Object.entries(ASSUMED).map(([k, f]) => `${k} ${f(0)}${f(1000) !== f(0) ? `+${(f(1000) - f(0)) / 1000}/item` : ''}`).join(', ')}; anything else 30`);
  for (const n of SIZES) await inMemory(n);
  if (process.env.SCALE_MOTO !== '0') {
    const max = Number(process.env.SCALE_MOTO_MAX ?? 5000);
    console.log('\n  against moto (its DescribeInstances renders ~8 ms per instance: far slower than EC2):');
    await againstMoto(SIZES.filter((n) => n <= max));
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
