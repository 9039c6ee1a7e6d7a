/**
 * Planner speed: one plan() over a large snapshot. Goal (issue 2): under 5 ms for 1,000 workers /
 * 10,000 pending jobs and under 50 ms for 10,000 workers / 100,000 pending jobs on 2 cores.
 * Pending jobs reach the planner as counts per pool, so their number costs nothing; the workers
 * are what it walks.
 */
import { plan } from '../lib/planner';
import { validateConfig } from '../lib/config';
import type { WorkerView, WorkerState } from '../lib/model';

const T0 = Date.parse('2026-11-02T10:00:00Z');
const POOLS = ['docker', 'large', 'gpu', 'arm'];
const config = validateConfig({
  deployment: 'bench',
  gitlab: { url: 'https://gitlab.example.com' },
  concurrent: 0,
  pools: POOLS.map((name, i) => ({
    name,
    tags: [name],
    runUntagged: i === 0,
    IdleCount: 20,
    IdleTime: 1800,
    MaxBuilds: 50,
    limit: 0,
    autoscaling: [{ Periods: ['* * 0-8,18-23 * * mon-fri *', '* * * * * sat,sun *'], Timezone: 'Europe/Berlin', IdleCount: 2, IdleTime: 600 }],
    worker: { instanceTypes: ['m6i.large', 'm5.large', 'm6a.large'], subnets: ['subnet-0a', 'subnet-0b', 'subnet-0c'], ami: 'ami-0123abcd' },
  })),
}, 'bench');

function snapshot(workers: number, pending: number) {
  const states: WorkerState[] = ['booting', 'idle', 'busy', 'busy', 'busy', 'retiring'];
  let seed = 42;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
  const list: WorkerView[] = [];
  for (let i = 0; i < workers; i++) {
    const state = states[Math.floor(rnd() * states.length)];
    list.push({ id: `i-${(0x10000000 + i).toString(16)}`, pool: POOLS[i % POOLS.length], state, launchedAt: T0 - Math.floor(rnd() * 3600_000), builds: Math.floor(rnd() * 60), idleSince: state === 'idle' ? T0 - Math.floor(rnd() * 3600_000) : undefined });
  }
  const demand = Object.fromEntries(POOLS.map((p) => [p, { pending: Math.floor(pending / POOLS.length), running: Math.floor(workers / 2 / POOLS.length) }]));
  return { workers: list, demand };
}

function measure(workers: number, pending: number) {
  const snap = snapshot(workers, pending);
  const at = new Date(T0);
  for (let i = 0; i < 20; i++) plan(config, at, snap); // warm up the JIT
  const times: number[] = [];
  for (let i = 0; i < 200; i++) {
    const t = process.hrtime.bigint();
    plan(config, at, snap);
    times.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  times.sort((a, b) => a - b);
  const q = (p: number) => times[Math.min(times.length - 1, Math.floor(p * times.length))].toFixed(3);
  return { median: q(0.5), p95: q(0.95), max: times[times.length - 1].toFixed(3) };
}

for (const [workers, pending, goal] of [[1_000, 10_000, 5], [10_000, 100_000, 50]] as const) {
  const r = measure(workers, pending);
  console.log(`planner: ${workers} workers / ${pending} pending jobs: median ${r.median} ms, p95 ${r.p95} ms, max ${r.max} ms (goal < ${goal} ms)`);
}
