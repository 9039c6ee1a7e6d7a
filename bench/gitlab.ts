/**
 * The GitLab side on held-out workloads (lib/sim/workloads.ts), several seeds each, against the
 * goals of issue 10:
 *  1. 20 % of deliveries lost and 10 % duplicated: the longest wait grows by at most 180 s over
 *     the lossless run (300 quiet projects, a week);
 *  2. a 2,000-job two-pool burst from 200 projects in a minute: wait p95 within 15 s of
 *     docker+machine's in the same run;
 *  3. the busiest minute of GitLab requests within the configured budget (every run);
 *  4. 20 stuck jobs (pending for ever, no runner takes them) add under 3 % worker-hours;
 *  and the design load (the brief): 20,000 jobs an hour from 500 projects, two pools, 20 % of
 *  deliveries lost and 10 % duplicated: requests per pass and in the busiest minute.
 *
 *   npm run bench -- gitlab            (all seeds: a few minutes)
 *   npx tsx bench/gitlab.ts --seeds 1  (one seed)
 */
import { simulate, type SimulationReport } from '../lib/sim/simulate';
import { burst, burstConfig, quietConfig, quietProjects, withStuck } from '../lib/sim/workloads';

const seedsArg = process.argv.indexOf('--seeds');
const SEEDS = Array.from({ length: seedsArg > 0 ? Number(process.argv[seedsArg + 1]) : 3 }, (_, i) => 101 + i);
const ok = (b: boolean) => (b ? 'ok ' : 'MISS');
let misses = 0;
const check = (b: boolean) => {
  if (!b) misses++;
  return ok(b);
};

function line(name: string, r: SimulationReport): string {
  const a = r.autoscaler;
  return `    ${name.padEnd(24)} jobs ${String(r.jobs).padStart(5)}  wait p50 ${String(r.waitP50).padStart(6)} s  p95 ${String(r.waitP95).padStart(6)} s  max ${String(r.waitMax).padStart(7)} s  unserved ${r.jobsUnserved}  stuck ${r.jobsStuck}  worker-h ${String(r.workerHours).padStart(7)}  GitLab ${a.gitlabApiCalls} req, busiest minute ${r.gitlabApiCallsPerMinuteMax}/${a.gitlabRequestsPerMinute}  webhooks lost ${a.webhooksLost}, duplicated ${a.webhooksDuplicated} (${a.duplicatesDropped} dropped)`;
}

async function main() {
  const started = Date.now();
  console.log(`Held-out workloads, seeds ${SEEDS.join(', ')} (cloud: defaults; the trace seed and the run seed are the same)`);
  for (const seed of SEEDS) {
    console.log(`\n  seed ${seed}`);
    // 1 + 3: a quiet week, lossless vs lossy
    const config = quietConfig();
    const trace = quietProjects({ seed });
    const lossless = (await simulate({ config, trace, seed, autoscaler: { webhookLossRate: 0, webhookDuplicateRate: 0 } })).report;
    const lossy = (await simulate({ config, trace, seed, autoscaler: { webhookLossRate: 0.2, webhookDuplicateRate: 0.1 } })).report;
    console.log(line('quiet week, lossless', lossless));
    console.log(line('quiet week, 20 % lost 10 % dup', lossy));
    const grew = Math.round((lossy.waitMax - lossless.waitMax) * 10) / 10;
    console.log(`    [${check(grew <= 180)}] longest wait grew by ${grew} s (goal <= 180 s)`);
    console.log(`    [${check(lossless.jobsUnserved === 0 && lossy.jobsUnserved === 0)}] nothing unserved`);
    // 4: 20 stuck jobs in the same week
    const stuck = (await simulate({ config, trace: withStuck(trace, 20, seed), seed, autoscaler: { webhookLossRate: 0, webhookDuplicateRate: 0 } })).report;
    console.log(line('quiet week, 20 stuck jobs', stuck));
    const extra = Math.round((1000 * (stuck.workerHours - lossless.workerHours)) / lossless.workerHours) / 10;
    console.log(`    [${check(extra < 3)}] 20 stuck jobs added ${extra} % worker-hours (${Math.round((stuck.workerHours - lossless.workerHours) * 10) / 10} h; goal < 3 %)`);
    // 2 + 3: the burst
    const b = (await simulate({ config: burstConfig(), trace: burst({ seed }), seed, autoscaler: { webhookLossRate: 0, webhookDuplicateRate: 0 } })).report;
    const bl = (await simulate({ config: burstConfig(), trace: burst({ seed }), seed, autoscaler: { webhookLossRate: 0.2, webhookDuplicateRate: 0.1 } })).report;
    console.log(line('burst', b));
    console.log(`    ${'  docker+machine'.padEnd(24)} wait p50 ${String(b.baseline.waitP50).padStart(6)} s  p95 ${String(b.baseline.waitP95).padStart(6)} s  max ${String(b.baseline.waitMax).padStart(7)} s`);
    console.log(line('burst, 20 % lost 10 % dup', bl));
    console.log(`    [${check(b.waitP95 <= b.baseline.waitP95 + 15)}] burst p95 ${b.waitP95} s vs docker+machine ${b.baseline.waitP95} s (goal <= +15 s)`);
    // The design load: an hour of 20,000 lone jobs from 500 projects (then the run drains).
    const hour = (await simulate({ config: burstConfig(), trace: burst({ seed, jobs: 20_000, projects: 500, seconds: 3600 }), seed, autoscaler: { webhookLossRate: 0.2, webhookDuplicateRate: 0.1 } })).report;
    const passes = hour.autoscaler.passes.queue + hour.autoscaler.passes.schedule + hour.autoscaler.passes.interruption;
    console.log(line('20,000 jobs/h, 500 proj.', hour));
    console.log(`    ${''.padEnd(24)} ${passes} passes, ${Math.round((100 * hour.autoscaler.gitlabApiCalls) / passes) / 100} GitLab requests a pass; docker+machine p95 ${hour.baseline.waitP95} s`);
    console.log(`    [${check(hour.jobsUnserved === 0)}] design load: nothing unserved`);
    for (const [name, r] of [['quiet lossless', lossless], ['quiet lossy', lossy], ['quiet stuck', stuck], ['burst', b], ['burst lossy', bl], ['design load', hour]] as const)
      if (r.gitlabApiCallsPerMinuteMax > r.autoscaler.gitlabRequestsPerMinute) console.log(`    [${check(false)}] ${name}: busiest minute ${r.gitlabApiCallsPerMinuteMax} over ${r.autoscaler.gitlabRequestsPerMinute}`);
    console.log(`    [${check(true)}] busiest minutes within the budget unless listed above`);
  }
  console.log(`\n${misses ? `${misses} goal(s) missed` : 'every goal met'} (${Math.round((Date.now() - started) / 1000)} s)`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
