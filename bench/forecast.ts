/**
 * Issue 13's proof: the spot autoscaler beside docker+machine in the same run (the simulator's
 * baseline sees only pending jobs), on the sample week and on held-out pipeline weeks generated
 * with other seeds and team sizes (lib/sim/trace-gen.ts; never tuned on). Per workload:
 *  - knobs as written: worker-hours <= 1.0 x docker+machine's, wait p95 <= 0.75 x its;
 *  - every pool with `targetWait` = docker+machine's achieved p95 in that run: worker-hours <= 0.8 x its;
 *  - for reference, the same knobs without the forecast (pending jobs only).
 *
 *   npm run bench -- forecast              (sample week + 3 held-out weeks: about 4-5 minutes)
 *   npx tsx bench/forecast.ts --only sample
 */
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { validateConfig, type Config } from '../lib/config';
import { simulate, type SimulationReport } from '../lib/sim/simulate';
import { parseTrace, type Trace } from '../lib/sim/trace';
import { generateTrace } from '../lib/sim/trace-gen';

const only = process.argv.includes('--only') ? process.argv[process.argv.indexOf('--only') + 1] : undefined;
const sampleConfig = (): Config => validateConfig(parseYaml(readFileSync('samples/config.yaml', 'utf8')));
/** Held out: seeds and team sizes the policy was never tuned on. */
const HELD_OUT: { name: string; seed: number; scale: number }[] = [
  { name: 'held-out seed 7', seed: 7, scale: 1 },
  { name: 'held-out seed 8 (team x0.5)', seed: 8, scale: 0.5 },
  { name: 'held-out seed 9 (team x2)', seed: 9, scale: 2 },
];

let misses = 0;
const check = (ok: boolean) => {
  if (!ok) misses++;
  return ok ? 'ok  ' : 'MISS';
};
const r2 = (x: number) => Math.round(x * 100) / 100;

function row(name: string, wh: number, p95: number, util: number): string {
  return `    ${name.padEnd(34)} worker-h ${wh.toFixed(1).padStart(8)}  wait p95 ${p95.toFixed(1).padStart(6)} s  utilization ${(100 * util).toFixed(1).padStart(5)} %`;
}

async function workload(name: string, config: Config, trace: Trace, seed: number): Promise<void> {
  const t0 = Date.now();
  const asWritten = (await simulate({ config, trace, seed })).report;
  const noForecast = (await simulate({ config, trace, seed, forecast: false })).report;
  const dm = asWritten.baseline;
  const target = Math.max(1, Math.round(dm.waitP95));
  const targeted = structuredClone(config);
  for (const p of targeted.pools) p.targetWait = target;
  const withTarget = (await simulate({ config: targeted, trace, seed })).report;
  console.log(`\n  ${name}: ${asWritten.jobs} jobs (${Math.round((Date.now() - t0) / 1000)} s)`);
  console.log(row('docker+machine', dm.workerHours, dm.waitP95, dm.utilization));
  console.log(row('spot autoscaler, knobs as written', asWritten.workerHours, asWritten.waitP95, asWritten.utilization));
  console.log(row('  same, without the forecast', noForecast.workerHours, noForecast.waitP95, noForecast.utilization));
  console.log(row(`  targetWait ${target} s (d+m's p95)`, withTarget.workerHours, withTarget.waitP95, withTarget.utilization));
  const wh = r2(asWritten.workerHours / dm.workerHours);
  const p95 = r2(asWritten.waitP95 / Math.max(dm.waitP95, 1e-9));
  const whT = r2(withTarget.workerHours / dm.workerHours);
  console.log(`    [${check(wh <= 1.0)}] knobs as written: worker-hours ${wh} x docker+machine (goal <= 1.0)`);
  console.log(`    [${check(p95 <= 0.75)}] knobs as written: wait p95 ${p95} x docker+machine (goal <= 0.75)`);
  console.log(`    [${check(whT <= 0.8)}] targetWait ${target} s: worker-hours ${whT} x docker+machine (goal <= 0.8), its wait p95 ${withTarget.waitP95} s`);
  for (const r of [asWritten, noForecast, withTarget]) if (r.jobsUnserved) console.log(`    [${check(false)}] ${r.jobsUnserved} job(s) never served`);
}

async function main() {
  const started = Date.now();
  if (!only || only === 'sample') {
    const trace = parseTrace(readFileSync('samples/trace.jsonl', 'utf8'), 'samples/trace.jsonl');
    await workload('sample week (samples/)', sampleConfig(), trace, 1);
  }
  for (const h of HELD_OUT) {
    if (only && !h.name.includes(only)) continue;
    await workload(h.name, sampleConfig(), generateTrace({ seed: h.seed, scale: h.scale }), h.seed);
  }
  console.log(`\n  ${misses === 0 ? 'all goals met' : `${misses} goal(s) missed`} (${Math.round((Date.now() - started) / 1000)} s)`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
