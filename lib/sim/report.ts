/** The simulation report as text: what a platform team reads before switching. */
import type { SimulationReport } from './simulate';

const money = (x: number) => `$${x.toFixed(2)}`;
const secs = (x: number) => `${x} s`;

function fenceLine(kinds: Partial<Record<string, number>>): string {
  const parts = Object.entries(kinds)
    .filter(([, n]) => (n ?? 0) > 0)
    .sort()
    .map(([k, n]) => `${n} ${k}`);
  return parts.length ? parts.join(', ') : 'none';
}

export function formatReport(r: SimulationReport, chartPath?: string): string {
  const a = r.autoscaler;
  const b = r.baseline;
  const rows: [string, string, string][] = [
    ['jobs', String(r.jobs), String(b.jobs)],
    ['queue wait p50', secs(r.waitP50), secs(b.waitP50)],
    ['queue wait p95', secs(r.waitP95), secs(b.waitP95)],
    ['queue wait max', secs(r.waitMax), secs(b.waitMax)],
    ['queue wait mean', secs(a.waitMean), secs(b.waitMean)],
    ['peak workers', String(r.peakWorkers), String(b.peakWorkers)],
    ['worker-hours', String(r.workerHours), String(b.workerHours)],
    ['  running jobs (utilization)', `${a.jobHours} (${Math.round(a.utilization * 1000) / 10} %)`, `${b.jobHours} (${Math.round(b.utilization * 1000) / 10} %)`],
    ['  of which spot', String(a.spotHours), String(b.spotHours)],
    ['  of which on-demand', String(a.onDemandHours), String(b.onDemandHours)],
    ['cost', money(r.spotCost), money(b.cost)],
    ['same hours at on-demand prices', money(r.onDemandCost), money(b.onDemandCost)],
    ['instances launched', String(a.launches), String(b.launches)],
    ['spot interruptions', String(r.interruptions), String(b.interruptions)],
    ['  jobs they hit (retried)', String(r.jobsHitByInterruptions), String(b.jobsHitByInterruptions)],
    ['jobs never served', String(r.jobsUnserved), String(b.jobsUnserved)],
    ...(r.jobsStuck ? ([['jobs no runner takes (stuck)', String(r.jobsStuck), String(r.jobsStuck)]] as [string, string, string][]) : []),
    ['limit violations', String(r.limitViolations), String(b.limitViolations)],
    ['busy workers terminated', String(r.busyTerminations), String(b.busyTerminations)],
  ];
  const w0 = Math.max(...rows.map((x) => x[0].length));
  const w1 = Math.max('spot autoscaler'.length, ...rows.map((x) => x[1].length));
  const lines = [
    `Simulated ${r.start} .. ${r.end}, seed ${r.seed}`,
    '',
    `${''.padEnd(w0)}  ${'spot autoscaler'.padStart(w1)}  docker+machine (on-demand)`,
    ...rows.map(([k, v1, v2]) => `${k.padEnd(w0)}  ${v1.padStart(w1)}  ${v2.padStart(14)}`),
    '',
    `Savings: ${money(r.savings.money)} (${r.savings.moneyPercent}% of the docker+machine bill); queue wait p95 ${r.savings.waitP95 >= 0 ? `${r.savings.waitP95} s shorter` : `${-r.savings.waitP95} s longer`}, p50 ${r.savings.waitP50 >= 0 ? `${r.savings.waitP50} s shorter` : `${-r.savings.waitP50} s longer`}.`,
    `Controller: ${a.passes.schedule} scheduled passes, ${a.passes.queue} more for events and ticks, ${a.passes.interruption} on interruptions; ${a.webhooksLost} of ${a.webhooksSent} webhooks lost${a.webhooksDuplicated ? `, ${a.webhooksDuplicated} delivered twice (${a.duplicatesDropped} dropped)` : ''}; ${a.reportsLost} of ${a.reportsSent} worker reports lost; ${a.launchErrors} launch errors (capacity); ${a.controllerWarnings} warnings, ${a.controllerErrors} errors${a.passErrors ? `, ${a.passErrors} failed passes` : ''}.`,
    `Fence: ${a.retiredWhileBusy} retirement request(s) found the runner just busy (it finished its job first); terminations: ${fenceLine(a.terminationsByKind)}.`,
    `GitLab API: ${a.gitlabApiCalls} requests, busiest minute ${r.gitlabApiCallsPerMinuteMax} (budget ${a.gitlabRequestsPerMinute} a minute).`,
  ];
  for (const pool of Object.keys({ ...a.boot, ...b.boot }).sort()) {
    const f = (x?: { image: string; p50: number; p95: number }) => (x ? `p50 ${x.p50} s, p95 ${x.p95} s (${x.image})` : 'no boots');
    lines.push(`Boot to ready, pool ${pool}: spot autoscaler ${f(a.boot[pool])}; docker+machine ${f(b.boot[pool])}.`);
  }
  const notRun = a.jobsNotRun;
  if (notRun.skipped + notRun.manual + notRun.canceled > 0)
    lines.push(`Pipelines: ${notRun.skipped} job(s) skipped, ${notRun.manual} manual (never played), ${notRun.canceled} canceled before they ran (spot autoscaler's run; docker+machine's: ${b.jobsNotRun.skipped}, ${b.jobsNotRun.manual}, ${b.jobsNotRun.canceled}).`);
  if (r.jobsUnroutable) lines.push(`Warning: ${r.jobsUnroutable} job(s) carry tags no pool serves; neither policy can run them (check the pools' tags and runUntagged).`);
  if (r.jobsStuck) lines.push(`${r.jobsStuck} job(s) stay pending in GitLab and no runner takes them (trace "stuck"); they are left out of the waits and of "jobs never served".`);
  if (r.jobsUnserved) lines.push(`Warning: ${r.jobsUnserved} job(s) never finished within the run (see docs/simulation.md, "Jobs never served").`);
  lines.push('Spot prices are an assumption (lib/sim/prices.ts); pass --prices FILE with yours.');
  if (chartPath) lines.push(`Chart: ${chartPath}`);
  return lines.join('\n') + '\n';
}
