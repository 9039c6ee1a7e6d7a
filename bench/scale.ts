/**
 * The controller at 500, 2,000 and 5,000 workers running 5-minute jobs (issue 9): AWS calls per
 * pass by API, per minute and per job, SSM writes per pass, events drained per minute, the
 * webhook-to-CreateFleet latency, and pass time in memory, with assumed AWS latencies, and against moto.
 *
 * Steady state: N workers, 80 % busy; N/5 jobs start a minute; each job sends 3 webhooks (pending,
 * running, success): 3N/5 events a minute, and 2 worker reports (busy, idle); every worker also
 * repeats its state every 10 minutes (N/10 heartbeats a minute). On top, the event
 * stream is pushed to 6,000 a minute to show the drain rate the issue asks for (>= 5,000).
 *
 * What runs is the deployed code path: the invocation loop (lib/controller/loop.ts) reading both
 * queues through the SQS adapter, reconcilePass, Ec2Fleet, the SSM state store, over an in-memory
 * EC2/SSM/SQS behind the real SDK clients (test/helpers/fake-aws.ts) that counts every call and
 * waits an ASSUMED latency per call (printed; AWS publishes none). Then the same against moto.
 *
 * The figures of the design before issue 9 (SQS trigger of 25 events a pass, workers tagging
 * themselves) were measured by this file at commit fce5218 and are in docs/controller.md.
 *
 * Run: npm run bench -- scale   (SCALE_SECONDS=30 per loop run; SCALE_MOTO=0 skips moto; SCALE_MOTO_MAX=2000 bounds it;
 *      SCALE_PARTS=memory,latency,moto picks parts; drain alone: SCALE_PARTS=drain)
 */
import { DescribeImagesCommand, EC2Client, RunInstancesCommand } from '@aws-sdk/client-ec2';
import { SSMClient } from '@aws-sdk/client-ssm';
import { CreateQueueCommand, SendMessageBatchCommand, SQSClient } from '@aws-sdk/client-sqs';
import { parameterNames, validateConfig, type Config } from '../lib/config';
import { SsmOperatorHolds, writeHold } from '../lib/aws/operator-holds';
import { Ec2Fleet, ensureLaunchTemplate } from '../lib/aws/ec2-fleet';
import { SsmStateStore } from '../lib/aws/ssm-state-store';
import { SqsInbox } from '../lib/aws/sqs-inbox';
import { reconcilePass, type PassInput, type PassReport } from '../lib/controller/reconcile';
import { CADENCE, LOOP_DEFAULTS, runLoop } from '../lib/controller/loop';
import { encodeReport, ReportMemory } from '../lib/controller/reports';
import { reportQueueName, TAGS } from '../lib/controller/tags';
import type { Logger } from '../lib/controller/ports';
import { FakeAws } from '../test/helpers/fake-aws';
import { motoClientConfig, startMoto } from '../test/helpers/moto';

const SIZES = [500, 2000, 5000];
const SECONDS = Number(process.env.SCALE_SECONDS ?? 30);
const ROLE = 'AROABENCHWORKERROLE01';
const quiet: Logger = { info() {}, warn() {}, error() {} };
const noWait = { sleep: async () => {}, random: () => 0 };
const EVENTS_URL = 'https://sqs.eu-west-1.amazonaws.com/123456789012/events';
const REPORTS_URL = 'https://sqs.eu-west-1.amazonaws.com/123456789012/reports';

/**
 * ASSUMED AWS latencies (ms). AWS publishes none; round figures of the order seen in practice,
 * used to make passes take time. The call counts are exact.
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
  ReceiveMessage: () => 20,
  DeleteMessageBatch: () => 20,
};
const assumedLatency = (api: string, n: number) => ASSUMED[api]?.(n) ?? 30;

function makeConfig(idleCount = 20, subnets = ['subnet-0a', 'subnet-0b', 'subnet-0c'], ami = 'ami-0123456789abcdef0', ssmPrefix = '/gitlab-spot-autoscaler'): Config {
  return validateConfig({
    deployment: 'bench',
    ssmPrefix,
    gitlab: { url: 'https://gitlab.example.com' },
    pools: [{ name: 'docker', tags: ['docker'], runUntagged: true, IdleCount: idleCount, IdleTime: 1800, worker: { instanceTypes: ['m6i.large', 'm5.large', 'm6a.large', 'm7i.large'], subnets, ami } }],
  });
}

/** Tags of a steady worker k, as the controller recorded them: ready an hour ago, 80 % busy. */
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
  };
}

let nextJob = 10_000_000;
const statuses = ['pending', 'running', 'success'];
function jobMessage(k: number): string {
  return JSON.stringify({ v: 1, type: 'job', event: { jobId: nextJob++, projectId: 100 + (k % 20), status: statuses[k % 3], receivedAt: Date.now(), tags: ['docker'] } });
}

const fmt = (o: Record<string, number>, digits = 1) =>
  Object.entries(o)
    .sort()
    .map(([k, v]) => `${k} ${Number.isInteger(v) ? v : v.toFixed(digits)}`)
    .join(', ') || '-';
const per = (o: Record<string, number>, d: number) => Object.fromEntries(Object.entries(o).map(([k, v]) => [k, v / d]));

interface Deployment {
  aws: FakeAws;
  config: Config;
  fleet: Ec2Fleet;
  ids: string[];
  seq: Map<string, number>;
  pass(input: PassInput): Promise<PassReport>;
  inbox(): { events: SqsInbox; reports: SqsInbox };
}

/** N steady workers in an in-memory AWS, and the controller's pieces over it, as the handler wires them. */
function deployment(n: number, idleCount = 20): Deployment {
  const aws = new FakeAws();
  const config = makeConfig(idleCount);
  const now = Date.now();
  const ids: string[] = [];
  for (let k = 0; k < n; k++) ids.push(aws.add(workerTags(k, now), { instanceType: 'm6i.large', subnet: 'subnet-0a' }).id);
  const ec2 = new EC2Client({ region: 'eu-west-1' });
  const ssm = new SSMClient({ region: 'eu-west-1' });
  const sqs = new SQSClient({ region: 'eu-west-1' });
  const fleet = new Ec2Fleet({ ec2, config, stage: 'bench', retryEnv: noWait });
  const memory = new ReportMemory();
  const store = new SsmStateStore({ ssm, config, stage: 'bench', retryEnv: noWait, cacheMs: Infinity });
  const holds = new SsmOperatorHolds({ ssm, path: parameterNames(config, 'bench').operator, retryEnv: noWait });
  const clock = { now: () => Date.now() };
  return {
    aws,
    config,
    fleet,
    ids,
    seq: new Map(),
    // The operators' holds, read each pass as the handler does (cached 5 s): counted like every other call.
    pass: (input) => reconcilePass({ config, stage: 'bench', fleet, store, clock, log: quiet, reportMemory: memory, workerRoleIds: [ROLE], holds }, input),
    inbox: () => ({ events: new SqsInbox({ sqs, queueUrl: EVENTS_URL }), reports: new SqsInbox({ sqs, queueUrl: REPORTS_URL }) }),
  };
}

/** A worker's report of a job start or end (what lib/worker/script.ts sends), signed by its instance. */
function workerReport(d: Deployment, k: number): void {
  const id = d.ids[(k * 7919) % d.ids.length];
  const seq = (d.seq.get(id) ?? 1) + 1;
  d.seq.set(id, seq);
  const now = Date.now();
  // A transition: a job starts on an idle worker, or ends on a busy one.
  const state = d.aws.instances.get(id)?.tags.get(TAGS.state) === 'busy' ? 'idle' : 'busy';
  d.aws.send(REPORTS_URL, encodeReport({ instanceId: id, seq, state, builds: seq, at: now, readyAt: now - 3_600_000, idleSince: state === 'idle' ? now : undefined }), `${ROLE}:${id}`);
}

/** A worker's heartbeat (every 10 minutes): its current state again, as its tags already say (no tag write; SQS calls only). */
function heartbeat(d: Deployment, k: number): void {
  const id = d.ids[(k * 104_729) % d.ids.length];
  const tags = d.aws.instances.get(id)!.tags;
  const seq = (d.seq.get(id) ?? 1) + 1;
  d.seq.set(id, seq);
  const state = tags.get(TAGS.state) === 'busy' ? 'busy' : 'idle';
  const idleSince = state === 'idle' ? Date.parse(tags.get(TAGS.idleSince) ?? '') || undefined : undefined;
  d.aws.send(REPORTS_URL, encodeReport({ instanceId: id, seq, state, builds: seq, at: Date.now(), readyAt: Date.parse(tags.get(TAGS.ready)!), idleSince }), `${ROLE}:${id}`);
}

/** The invocation loop for `seconds`, fed with `eventsPerMinute` job events, the workers' 2N/5 reports a minute and their N/10 heartbeats. */
async function loopRun(d: Deployment, n: number, seconds: number, eventsPerMinute: number) {
  d.aws.latency = assumedLatency;
  let sentEvents = 0;
  let sentReports = 0;
  let sentHeartbeats = 0;
  const reportsPerMinute = (2 * n) / 5;
  const started = Date.now();
  const producer = setInterval(() => {
    const due = ((Date.now() - started) / 60_000) * eventsPerMinute;
    while (sentEvents < due) d.aws.send(EVENTS_URL, jobMessage(sentEvents++));
    const dueReports = ((Date.now() - started) / 60_000) * reportsPerMinute;
    while (sentReports < dueReports) workerReport(d, sentReports++);
    const dueHeartbeats = ((Date.now() - started) / 60_000) * (n / 10);
    while (sentHeartbeats < dueHeartbeats) heartbeat(d, sentHeartbeats++);
  }, 50);
  const before = d.aws.snapshot();
  const taggedBefore = d.aws.taggedResources;
  const passes: PassReport[] = [];
  const starts: { at: number; events: number }[] = [];
  const { events, reports } = d.inbox();
  const t0 = Date.now();
  const loop = await runLoop(
    {
      pass: async (input) => {
        starts.push({ at: Date.now(), events: input.events.length });
        const r = await d.pass(input);
        passes.push(r);
        return r;
      },
      events,
      reports,
      remainingMs: () => seconds * 1000 + 60_000 - (Date.now() - t0),
      log: quiet,
    },
    'schedule',
    { loopForMs: seconds * 1000 },
  );
  clearInterval(producer);
  const minutes = (Date.now() - t0) / 60_000;
  const calls = d.aws.since(before);
  // Sustained drain: each pass takes what arrived since the one before, so the events of passes 2..k
  // over the time from the first to the last start is the rate the queue is emptied at.
  const span = starts.length > 1 ? (starts[starts.length - 1].at - starts[0].at) / 60_000 : NaN;
  const sustained = starts.slice(1).reduce((n, x) => n + x.events, 0) / span;
  return { loop, passes, minutes, calls, tagged: d.aws.taggedResources - taggedBefore, sentEvents, left: d.aws.queued(EVENTS_URL), sustained, largest: Math.max(...starts.map((x) => x.events)) };
}

async function inMemory(n: number): Promise<void> {
  const eventsPerMinute = (3 * n) / 5;
  const jobsPerMinute = n / 5;
  console.log(`\n  ${n.toLocaleString('en')} workers: ${eventsPerMinute.toLocaleString('en')} events/min and ${((2 * n) / 5).toLocaleString('en')} reports/min at steady state; ${jobsPerMinute} jobs/min`);

  // The controller's own work, no latency: one pass over a minute's worth of events and reports.
  {
    const d = deployment(n);
    try {
      for (let k = 0; k < (2 * n) / 5; k++) workerReport(d, k);
      for (let k = 0; k < eventsPerMinute; k++) d.aws.send(EVENTS_URL, jobMessage(k));
      const { events, reports } = d.inbox();
      await d.pass({ events: [], reports: [], trigger: 'schedule' }); // warm: state read, template checked
      const t = performance.now();
      await runLoop({ pass: d.pass, events, reports, remainingMs: () => 60_000, log: quiet }, 'queue', { maxPasses: 1 });
      console.log(`    in memory: a pass over a minute of events and reports takes ${(performance.now() - t).toFixed(0)} ms (controller work only)`);
    } finally {
      d.aws.restore();
    }
  }

  // The invocation loop with assumed AWS latencies: at the steady rate (calls), and pushed to 6,000 events a minute (drain).
  for (const [label, rate] of [['steady', eventsPerMinute], ['6,000 events/min', 6000]] as const) {
    const d = deployment(n);
    try {
      const r = await loopRun(d, n, SECONDS, rate);
      const passes = r.loop.passes;
      const perPass = per(r.calls, passes);
      const perMinute = per(r.calls, r.minutes);
      const passMs = r.loop.passMs.slice(1).sort((a, b) => a - b);
      const ssmWrites = r.passes.reduce((s, p) => s + p.stateWrites, 0);
      const tagWrites = r.passes.reduce((s, p) => s + p.reports.tagWrites, 0);
      console.log(
        `    loop, ${label}, ${SECONDS} s: drained ${Math.round(r.sustained).toLocaleString('en')} events/min sustained (largest pass ${r.largest}; a pass takes up to ${LOOP_DEFAULTS.maxEventsPerPass.toLocaleString('en')}: ${Math.round(LOOP_DEFAULTS.maxEventsPerPass * (passes / r.minutes)).toLocaleString('en')}/min at this pass rate); ${Math.round(passes / r.minutes)} passes/min, pass ${passMs[Math.floor(passMs.length / 2)] ?? 0} ms median, ${passMs[passMs.length - 1] ?? 0} ms max`,
      );
      if (label !== 'steady') continue;
      console.log(`      AWS calls per pass: ${fmt(perPass)}; SSM writes per pass ${(ssmWrites / passes).toFixed(2)}`);
      console.log(`      AWS calls per minute: ${fmt(perMinute)}`);
      console.log(
        `      CreateTags per minute: ${(perMinute.CreateTags ?? 0).toFixed(1)} (${(tagWrites / r.minutes).toFixed(1)} worker-state sets for ${Math.round(r.tagged / r.minutes)} instances; the rest retire requests); workers: none (they send ${(2 * n) / 5} reports/min to SQS, plus ${n / 10} heartbeats/min); before (model, not measured here: each worker tagged itself busy and idle per job): ${2 * jobsPerMinute} worker CreateTags/min`,
      );
      const perJob = Object.fromEntries(Object.entries(perMinute).map(([k, v]) => [k, Math.round((v / jobsPerMinute) * 1000) / 1000]));
      console.log(`      per job (at ${jobsPerMinute} jobs/min): ${fmt(perJob, 3)}`);
    } finally {
      d.aws.restore();
    }
  }
}

/**
 * An operator's drain of the whole fleet (or a template change that retires it): the pass that asks
 * every worker to retire, then the pass that records what they answer (a busy one `draining`, an
 * idle one `stopped`), each worker with its own build count. CreateTags calls per pass.
 */
async function drain(n: number): Promise<void> {
  const d = deployment(n);
  try {
    const path = parameterNames(d.config, 'bench').operator;
    await writeHold({ ssm: new SSMClient({ region: 'eu-west-1' }), path, retryEnv: noWait }, 'docker', { mode: 'draining', by: 'arn:aws:iam::123456789012:user/bench', at: new Date().toISOString() });
    const a = d.aws.snapshot();
    const asked = await d.pass({ events: [], reports: [], trigger: 'schedule' });
    const askCalls = d.aws.since(a).CreateTags ?? 0;
    d.ids.forEach((id, k) => {
      const seq = (d.seq.get(id) ?? 1) + 1;
      d.seq.set(id, seq);
      const state = d.aws.instances.get(id)?.tags.get(TAGS.state) === 'busy' ? 'draining' : 'stopped';
      d.aws.send(REPORTS_URL, encodeReport({ instanceId: id, seq, state, builds: k % 150, at: Date.now(), readyAt: Date.now() - 3_600_000, why: 'retirement requested' }), `${ROLE}:${id}`);
    });
    const b = d.aws.snapshot();
    const { events, reports } = d.inbox();
    const r = await runLoop({ pass: d.pass, events, reports, remainingMs: () => 60_000, log: quiet }, 'schedule', { maxPasses: 1 });
    console.log(
      `    drain of ${n.toLocaleString('en')} workers (build counts 0-149): CreateTags ${askCalls} in the pass that asks ${asked.retired.length} to retire, ${d.aws.since(b).CreateTags ?? 0} in the pass that records ${r.reports} answers (${r.last?.reports.tagWrites ?? 0} tag sets); EC2's documented CreateTags bucket holds 100 and refills 10/s`,
    );
  } finally {
    d.aws.restore();
  }
}

/**
 * Webhook -> CreateFleet (issue 13): a pending job no worker covers, from the moment it is in the
 * queue to the CreateFleet request (EC2's own time after that is excluded). Sampled on the paths an
 * event can take, each with the assumed AWS latencies and with none (the controller's own time):
 *  - warm, quiet: the loop long-polls when the event arrives;
 *  - warm, busy: other events keep arriving, so passes start every batching window (CADENCE.minPassIntervalMs);
 *  - cold: the first pass of an invocation (state read, template check);
 *  - the whole minute: arrival times uniform over the schedule's minute; an event in its last
 *    (scheduleEveryMs - loopForMs) waits for the next invocation and its first (cold) pass.
 */
async function latency(n: number): Promise<void> {
  const SAMPLES = Number(process.env.SCALE_LATENCY_SAMPLES ?? 6);
  const pct = (xs: number[], p: number) => {
    const s = [...xs].sort((a, b) => a - b);
    return s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))];
  };
  const show = (xs: number[]) => `p50 ${(pct(xs, 0.5) / 1000).toFixed(2)} s, p95 ${(pct(xs, 0.95) / 1000).toFixed(2)} s (n ${xs.length})`;
  const pending = (id: number) => JSON.stringify({ v: 1, type: 'job', event: { jobId: id, projectId: 1, status: 'pending', receivedAt: Date.now(), tags: ['docker'] } });
  const other = (id: number) => JSON.stringify({ v: 1, type: 'job', event: { jobId: id, projectId: 2, status: 'running', receivedAt: Date.now(), tags: ['docker'] } });
  /** A deployment whose workers are all busy (a pending job needs a new one), recording CreateFleet request times. */
  const busyDeployment = (lat: typeof assumedLatency) => {
    const d = deployment(n, 0);
    d.aws.latency = lat;
    for (const i of d.aws.instances.values()) i.tags.set(TAGS.state, 'busy');
    const launches: number[] = [];
    d.aws.beforeCall = (api) => {
      if (api === 'CreateFleet') launches.push(Date.now());
    };
    return { d, launches };
  };
  console.log(`    webhook -> CreateFleet request at ${n.toLocaleString('en')} workers, batching window ${CADENCE.minPassIntervalMs / 1000} s, loop ${CADENCE.loopForMs / 1000} s of every ${CADENCE.scheduleEveryMs / 1000} s:`);
  for (const [label, lat] of [
    ['assumed AWS latencies', assumedLatency],
    ['controller only (AWS answers at once)', () => 0],
  ] as const) {
    // Cold: the event waits when the invocation starts; each sample a fresh container (state read, template check).
    const cold: number[] = [];
    for (let k = 0; k < SAMPLES; k++) {
      const { d, launches } = busyDeployment(lat);
      try {
        const sent = Date.now();
        d.aws.send(EVENTS_URL, pending(1));
        const { events, reports } = d.inbox();
        await runLoop({ pass: d.pass, events, reports, remainingMs: () => 60_000, log: quiet }, 'schedule', { maxPasses: 1 });
        if (!launches.length) throw new Error('no launch for the pending job');
        cold.push(launches[0] - sent);
      } finally {
        d.aws.restore();
      }
    }
    // Warm: one invocation running; pending events at random moments, quiet or among a stream of other events.
    const warm = async (stream: boolean) => {
      const { d, launches } = busyDeployment(lat);
      const out: number[] = [];
      try {
        const { events, reports } = d.inbox();
        const sent: number[] = [];
        let id = 100;
        const t0 = Date.now();
        let at = 3_000;
        const timers: NodeJS.Timeout[] = [];
        for (let k = 0; k < SAMPLES; k++) {
          at += 5_500 + Math.random() * 2_500; // not in step with the batching window
          timers.push(setTimeout(() => {
            sent.push(Date.now());
            d.aws.send(EVENTS_URL, pending(id++));
          }, at));
        }
        const background = stream ? setInterval(() => d.aws.send(EVENTS_URL, other(1_000_000 + id++)), 200) : undefined;
        await runLoop({ pass: d.pass, events, reports, remainingMs: () => at + 30_000 - (Date.now() - t0), log: quiet }, 'schedule', { loopForMs: at + 6_000 });
        if (background) clearInterval(background);
        timers.forEach(clearTimeout);
        // Each pending event's latency: the first CreateFleet request after it was queued.
        for (const s of sent) {
          const l = launches.find((x) => x >= s);
          if (l !== undefined) out.push(l - s);
        }
      } finally {
        d.aws.restore();
      }
      return out;
    };
    const quietWarm = await warm(false);
    const busyWarm = await warm(true);
    // The whole minute: arrival phase uniform over the schedule's period (deterministic draw).
    let seed = 12345;
    const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const minute = (warmSamples: number[]) =>
      Array.from({ length: 20_000 }, () => {
        const phase = rand() * CADENCE.scheduleEveryMs;
        if (phase < CADENCE.loopForMs) return warmSamples[Math.floor(rand() * warmSamples.length)];
        return CADENCE.scheduleEveryMs - phase + cold[Math.floor(rand() * cold.length)];
      });
    console.log(`      ${label}:`);
    console.log(`        cold (first pass of an invocation)      ${show(cold)}`);
    console.log(`        warm, quiet (the loop long-polls)       ${show(quietWarm)}`);
    console.log(`        warm, busy (passes every window)        ${show(busyWarm)}`);
    console.log(`        whole minute, quiet: ${show(minute(quietWarm))}; busy: ${show(minute(busyWarm))}  (goal: p95 < 3 s excluding EC2)`);
  }
}

async function againstMoto(sizes: number[]): Promise<void> {
  const moto = await startMoto();
  try {
    const ec2 = new EC2Client(motoClientConfig(moto.endpoint));
    const ssm = new SSMClient(motoClientConfig(moto.endpoint));
    const sqs = new SQSClient(motoClientConfig(moto.endpoint));
    const ami = (await ec2.send(new DescribeImagesCommand({ Owners: ['amazon'] }))).Images![0].ImageId!;
    const stage = 'bench';
    const template = makeConfig(20, ['subnet-0a'], ami);
    await ensureLaunchTemplate(ec2, { config: template, stage, pool: template.pools[0], userData: '#!/bin/bash\n', instanceProfile: 'w' });
    let have = 0;
    for (const n of sizes) {
      // The fleet grows from one size to the next; state and queues are each size's own.
      const config = makeConfig(20, ['subnet-0a'], ami, `/bench-${n}`);
      const eventsUrl = (await sqs.send(new CreateQueueCommand({ QueueName: `bench-events-${n}` }))).QueueUrl!;
      const reportsUrl = (await sqs.send(new CreateQueueCommand({ QueueName: `${reportQueueName('bench', stage)}-${n}` }))).QueueUrl!;
      const t0 = performance.now();
      while (have < n) {
        const k = Math.min(1000, n - have);
        const tags = workerTags(have, Date.now());
        await ec2.send(new RunInstancesCommand({ ImageId: ami, MinCount: k, MaxCount: k, InstanceType: 'm6i.large', TagSpecifications: [{ ResourceType: 'instance', Tags: Object.entries(tags).map(([Key, Value]) => ({ Key, Value })) }] }));
        have += k;
      }
      const setup = (performance.now() - t0) / 1000;
      const fleet = new Ec2Fleet({ ec2, config, stage });
      const store = new SsmStateStore({ ssm, config, stage, cacheMs: Infinity });
      const holds = new SsmOperatorHolds({ ssm, path: parameterNames(config, stage).operator });
      const pass = (input: PassInput) => reconcilePass({ config, stage, fleet, store, clock: { now: () => Date.now() }, log: quiet, workerRoleIds: [ROLE], holds }, input);
      const events = new SqsInbox({ sqs, queueUrl: eventsUrl });
      const reports = new SqsInbox({ sqs, queueUrl: reportsUrl });
      if (n === sizes[0]) {
        // The loop against moto's SQS at the steady rate (moto's SQS scans the whole queue on every
        // receive, so a backlog of thousands measures moto, not the loop).
        const rate = (3 * n) / 5;
        let sent = 0;
        const started = Date.now();
        let sending = Promise.resolve();
        const producer = setInterval(() => {
          const due = Math.floor(((Date.now() - started) / 60_000) * rate);
          const batch: string[] = [];
          while (sent < due) batch.push(jobMessage(sent++));
          for (let i = 0; i < batch.length; i += 10)
            sending = sending.then(() =>
              sqs.send(new SendMessageBatchCommand({ QueueUrl: eventsUrl, Entries: batch.slice(i, i + 10).map((b, k) => ({ Id: String(k), MessageBody: b })) })).then(() => undefined),
            );
        }, 100);
        const t = Date.now();
        const loop = await runLoop({ pass, events, reports, remainingMs: () => SECONDS * 1000 + 120_000 - (Date.now() - t), log: quiet }, 'schedule', { loopForMs: SECONDS * 1000 });
        clearInterval(producer);
        await sending;
        const minutes = (Date.now() - t) / 60_000;
        const ms = [...loop.passMs].sort((a, b) => a - b);
        console.log(`  moto, ${n.toLocaleString('en')} workers, ${rate} events/min: ${loop.events} of ${sent} events taken by ${loop.passes} passes in ${(minutes * 60).toFixed(0)} s; pass median ${(ms[Math.floor(ms.length / 2)] / 1000).toFixed(1)} s, max ${(ms[ms.length - 1] / 1000).toFixed(1)} s (set-up ${setup.toFixed(0)} s)`);
      } else {
        const t = performance.now();
        await pass({ events: [], reports: [], trigger: 'schedule' });
        console.log(`  moto, ${n.toLocaleString('en')} workers: one pass ${((performance.now() - t) / 1000).toFixed(1)} s (set-up ${setup.toFixed(0)} s)`);
      }
    }
    ec2.destroy();
    ssm.destroy();
    sqs.destroy();
  } finally {
    await moto.stop();
  }
}

async function main() {
  console.log('scale bench: the controller at 500 / 2,000 / 5,000 workers (5-minute jobs)');
  console.log(`  assumed AWS latencies (ms): ${Object.entries(ASSUMED).map(([k, f]) => `${k} ${f(0)}${f(1000) !== f(0) ? `+${(f(1000) - f(0)) / 1000}/item` : ''}`).join(', ')}; anything else 30`);
  const parts = (process.env.SCALE_PARTS ?? 'memory,latency,moto').split(',');
  if (parts.includes('memory')) for (const n of SIZES) await inMemory(n);
  if (parts.includes('memory') || parts.includes('drain')) {
    console.log('');
    for (const n of SIZES) await drain(n);
  }
  console.log('');
  if (parts.includes('latency')) await latency(2000);
  if (process.env.SCALE_MOTO !== '0' && parts.includes('moto')) {
    const max = Number(process.env.SCALE_MOTO_MAX ?? 5000);
    console.log('\n  against moto (far slower than EC2: docs/controller.md measured ~8 ms per instance in its DescribeInstances and ~1.5 s per status call; not measured in this run):');
    await againstMoto(SIZES.filter((n) => n <= max));
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
