/**
 * Controller figures against moto (started here, stopped by PID at the end):
 *  - a 1,000-job burst in one pass: EC2 and SSM API calls, SSM writes, pass time;
 *  - the passes after it (nothing to do): calls, writes, time;
 *  - the same burst without job tags and two pools: GitLab API calls per pass (budget);
 *  - state encoding time and size at 10,000 pending + 1,000 running jobs.
 * Run: npx tsx bench/controller.ts
 */
import { DescribeImagesCommand, DescribeSubnetsCommand, EC2Client } from '@aws-sdk/client-ec2';
import { SSMClient } from '@aws-sdk/client-ssm';
import { validateConfig, type Config } from '../lib/config';
import { Ec2Fleet, ensureLaunchTemplate } from '../lib/aws/ec2-fleet';
import { SsmStateStore } from '../lib/aws/ssm-state-store';
import { reconcilePass } from '../lib/controller/reconcile';
import { decodeState, emptyState, encodeState } from '../lib/controller/state';
import type { GitLabSide, JobEvent, Logger } from '../lib/controller/ports';
import { motoClientConfig, startMoto } from '../test/helpers/moto';

const quiet: Logger = { info() {}, warn() {}, error() {} };
const calls = new Map<string, number>();
const countingMiddleware: Parameters<EC2Client['middlewareStack']['add']>[0] = (next, context) => async (args) => {
  calls.set(context.commandName!, (calls.get(context.commandName!) ?? 0) + 1);
  return next(args);
};
function snapshotCalls(): Map<string, number> {
  return new Map(calls);
}
function diff(before: Map<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of calls) if (v - (before.get(k) ?? 0) > 0) out[k.replace(/Command$/, '')] = v - (before.get(k) ?? 0);
  return out;
}

async function main() {
  const moto = await startMoto();
  try {
    const ec2 = new EC2Client(motoClientConfig(moto.endpoint));
    const ssm = new SSMClient(motoClientConfig(moto.endpoint));
    ec2.middlewareStack.add(countingMiddleware, { step: 'deserialize', name: 'count' });
    (ssm.middlewareStack as unknown as EC2Client['middlewareStack']).add(countingMiddleware, { step: 'deserialize', name: 'count' });
    const subnets = ((await ec2.send(new DescribeSubnetsCommand({}))).Subnets ?? []).map((s) => s.SubnetId!).slice(0, 3);
    const ami = (await ec2.send(new DescribeImagesCommand({ Owners: ['amazon'] }))).Images![0].ImageId!;
    const config: Config = validateConfig({
      deployment: 'bench',
      gitlab: { url: 'https://gitlab.example.com' },
      pools: [
        { name: 'docker', tags: ['docker'], runUntagged: true, limit: 400, worker: { instanceTypes: ['m6i.large', 'm5.large', 'm6a.large'], subnets, ami } },
        { name: 'arm', tags: ['arm64'], limit: 200, worker: { instanceTypes: ['m7g.large', 'c7g.large'], subnets, ami } },
      ],
    });
    const stage = 'bench';
    for (const pool of config.pools) await ensureLaunchTemplate(ec2, { config, stage, pool, userData: '#!/bin/bash\necho worker\n', instanceProfile: 'worker' });
    let now = Date.now();
    const clock = { now: () => now };
    const fleet = new Ec2Fleet({ ec2, config, stage, now: () => now });
    // Time spent in discovery (DescribeInstances + DescribeInstanceStatus), to tell moto's share.
    let discoverMs = 0;
    const discover = fleet.discover.bind(fleet);
    fleet.discover = async () => {
      const t0 = performance.now();
      try {
        return await discover();
      } finally {
        discoverMs = performance.now() - t0;
      }
    };
    const pass = (events: JobEvent[], gitlab?: GitLabSide) =>
      reconcilePass({ config, stage, fleet, store: new SsmStateStore({ ssm, config, stage }), clock, log: quiet, gitlab }, { events, trigger: events.length ? 'queue' : 'schedule' });

    console.log('controller bench (moto over HTTP on 127.0.0.1; real AWS SDK clients)');
    const burst: JobEvent[] = Array.from({ length: 1000 }, (_, k) => ({ jobId: 50_000_000 + k, projectId: 40 + (k % 7), status: 'pending', receivedAt: now, tags: k % 4 === 0 ? ['arm64'] : ['docker'] }));
    let before = snapshotCalls();
    let t = performance.now();
    let r = await pass(burst);
    console.log(`  1,000-job burst, one pass: ${(performance.now() - t).toFixed(0)} ms; launched ${JSON.stringify(r.launched)}; SSM writes ${r.stateWrites}; API calls ${JSON.stringify(diff(before))}`);

    for (let k = 1; k <= 3; k++) {
      now += 30_000;
      before = snapshotCalls();
      t = performance.now();
      r = await pass([]);
      console.log(`  steady pass ${k} (600 workers, 1,000 jobs): ${(performance.now() - t).toFixed(0)} ms (discovery ${discoverMs.toFixed(0)} ms); launched ${JSON.stringify(r.launched)}; SSM writes ${r.stateWrites}; API calls ${JSON.stringify(diff(before))}`);
    }

    // Untagged events with several pools: routed through the GitLab API, 25 projects a request.
    const { FakeGitLabApi, gitlabSide } = await import('../test/helpers/gitlab');
    const api = new FakeGitLabApi();
    now += 30_000;
    const untagged: JobEvent[] = Array.from({ length: 1000 }, (_, k) => ({ jobId: 60_000_000 + k, projectId: 9 + (k % 40), status: 'pending', receivedAt: now - 5000 }));
    for (const e of untagged) api.add(e.jobId, { projectId: e.projectId, status: 'pending', tags: e.jobId % 2 ? ['arm64'] : ['docker'] });
    before = snapshotCalls();
    t = performance.now();
    r = await pass(untagged, gitlabSide(api));
    console.log(`  1,000 untagged jobs from 40 projects, two pools: ${(performance.now() - t).toFixed(0)} ms; GitLab API requests ${api.requests} (25 projects a request); launched ${JSON.stringify(r.launched)}; SSM writes ${r.stateWrites}`);

    // The controller's own work, without moto's rendering time: the same shape in memory.
    {
      const { FakeFleet, ManualClock } = await import('../test/controller/fixtures');
      const { MemoryStateStore } = await import('../lib/controller/state');
      const mclock = new ManualClock(now);
      const mfleet = new FakeFleet(mclock);
      const mstore = new MemoryStateStore();
      const deps = { config, stage, fleet: mfleet, store: mstore, clock: mclock, log: quiet };
      const burstMem = burst.map((e) => ({ ...e, receivedAt: mclock.now() }));
      let tm = performance.now();
      await reconcilePass(deps, { events: burstMem, trigger: 'queue' });
      const first = performance.now() - tm;
      mclock.advance(30);
      tm = performance.now();
      await reconcilePass(deps, { events: [], trigger: 'schedule' });
      console.log(`  in memory (controller work only): burst pass ${first.toFixed(1)} ms, steady pass ${(performance.now() - tm).toFixed(1)} ms (600 workers, 1,000 jobs)`);
    }

    // State encoding at the scale.
    const s = emptyState();
    let id = 4_000_000_000;
    for (let k = 0; k < 11_000; k++) {
      id += 1 + (k * 7919) % 97;
      s.jobs.set(id, { projectId: 100 + (k % 200), pool: k % 3 ? 'docker' : 'arm', status: k < 1000 ? 'running' : 'pending', seenAt: now - ((k * 104729) % 3_600_000) });
    }
    encodeState(s);
    t = performance.now();
    const values = encodeState(s);
    const enc = performance.now() - t;
    t = performance.now();
    decodeState(values);
    const dec = performance.now() - t;
    const sizes = [...values.values()].map((v) => v.length);
    console.log(
      `  state at 10,000 pending + 1,000 running jobs: ${values.size} parameters, largest ${Math.max(...sizes)} B, total ${sizes.reduce((a, b) => a + b, 0)} B; encode ${enc.toFixed(0)} ms, decode ${dec.toFixed(0)} ms`,
    );
    ec2.destroy();
    ssm.destroy();
  } finally {
    await moto.stop();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
