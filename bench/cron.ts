/**
 * Period evaluation speed: cron matches() and next() per call, across zones (the planner asks
 * once per pool and autoscaling section per pass; the simulation asks far more often).
 */
import { parseCron } from '../lib/cron';

const exprs = ['* * 9-17 * * mon-fri *', '0 */15 8-18 ? * 1-5 *', '0 0 0 L * * *', '* * 0-7,20-23 * * * *', '0 0 * * 6#5'].map((e) => parseCron(e));
const zones = ['UTC', 'Europe/Berlin', 'America/New_York', 'Australia/Sydney'];
const base = Date.UTC(2025, 0, 1);
const instants = Array.from({ length: 2000 }, (_, i) => new Date(base + ((i * 7919) % 2000) * 3_600_000 + i * 137));

function run(kind: 'matches' | 'next'): number {
  const t0 = process.hrtime.bigint();
  let n = 0;
  for (const e of exprs)
    for (const z of zones)
      for (const at of instants) {
        if (kind === 'matches') e.matches(at, z);
        else e.next(at, z);
        n++;
      }
  return Number(process.hrtime.bigint() - t0) / 1000 / n;
}

for (const kind of ['matches', 'next'] as const) {
  run(kind); // warm the zone-offset caches and the JIT
  const times = [run(kind), run(kind), run(kind), run(kind), run(kind)].sort((a, b) => a - b);
  console.log(`cron ${kind}(): median ${times[2].toFixed(2)} µs per call, best ${times[0].toFixed(2)} µs (${exprs.length} expressions x ${zones.length} zones x ${instants.length} instants; goal < 50 µs)`);
}
