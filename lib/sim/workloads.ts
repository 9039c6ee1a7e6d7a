/**
 * Held-out workloads for the GitLab side (issue 10): traces the controller was not tuned on, made
 * from a seed, with the configs they run under. `npm run bench -- gitlab` runs them
 * (bench/gitlab.ts) and prints the goals.
 *
 *  - quietProjects: a week of many quiet projects (default 300), each with its own small, bursty
 *    pipeline rate during its team's working hours and almost nothing at night. Pipelines have
 *    1-4 stages of 1-6 jobs; about a fifth of the jobs are tagged for the second pool. Many
 *    projects go hours without an event, which is what breaks discovery by "recently seen".
 *  - burst: N lone jobs (each its own pipeline) from P projects within S seconds, half of them
 *    tagged for the second pool (a dependency bot, a monorepo split, a mass retry).
 *  - withStuck: marks jobs of a trace `stuck` (GitLab keeps them pending, no runner takes them).
 */
import { validateConfig, type Config } from '../config';
import { Rng } from './rng';
import type { Trace, TraceJob } from './trace';

const HOUR = 3_600_000;
const MONDAY = Date.parse('2025-03-03T00:00:00Z');

export interface QuietProjectsOptions {
  seed: number;
  projects?: number;
  days?: number;
  /** Pipelines a working day of the median project. */
  medianPipelinesPerDay?: number;
}

/** A team's working day in UTC: starts between 06:00 and 10:00, lasts 9 hours; weekends nearly silent. */
function activity(hourOfWeek: number, startHour: number): number {
  const day = Math.floor(hourOfWeek / 24);
  const h = hourOfWeek % 24;
  if (day >= 5) return 0.03;
  return h >= startHour && h < startHour + 9 ? 1 : 0.02;
}

export function quietProjects(opts: QuietProjectsOptions): Trace {
  const rng = new Rng(opts.seed);
  const projects = opts.projects ?? 300;
  const days = opts.days ?? 7;
  const median = opts.medianPipelinesPerDay ?? 1;
  const jobs: TraceJob[] = [];
  let pipelineSeq = 0;
  let jobSeq = 0;
  for (let p = 0; p < projects; p++) {
    const prng = rng.fork(`project-${p}`);
    const projectId = 10_000 + p * 37;
    const perDay = prng.logNormal(median, 0.9);
    const startHour = 6 + prng.int(0, 4);
    const heavyShare = prng.chance(0.3) ? 0.5 : 0.05;
    // Pipelines: Poisson in working hours at perDay / 9 an hour, a trickle otherwise.
    for (let hour = 0; hour < days * 24; hour++) {
      const rate = (perDay / 9) * activity(hour % 168, startHour);
      let t = hour * HOUR + prng.exponential(HOUR / Math.max(rate, 1e-9));
      while (t < (hour + 1) * HOUR) {
        const pipeline = `p${++pipelineSeq}`;
        const stages = prng.int(1, 4);
        let at = t;
        for (let s = 0; s < stages; s++) {
          const width = prng.int(1, 6);
          let longest = 0;
          for (let k = 0; k < width; k++) {
            const heavy = prng.chance(heavyShare);
            const duration = Math.max(10, Math.min(3600, Math.round(prng.logNormal(heavy ? 420 : 150, 0.6))));
            longest = Math.max(longest, duration);
            jobs.push({ id: `q${++jobSeq}`, at: MONDAY + Math.round(at / 1000) * 1000, duration, tags: heavy ? ['heavy'] : [], project: projectId, pipeline });
          }
          at += longest * 1000 + 5000;
        }
        t += prng.exponential(HOUR / Math.max(rate, 1e-9));
      }
    }
  }
  jobs.sort((a, b) => a.at - b.at || (a.id < b.id ? -1 : 1));
  return { start: MONDAY, jobs };
}

export interface BurstOptions {
  seed: number;
  jobs?: number;
  projects?: number;
  /** Seconds over which the jobs arrive. */
  seconds?: number;
  /** Share tagged for the second pool. */
  tagged?: number;
}

export function burst(opts: BurstOptions): Trace {
  const rng = new Rng(opts.seed);
  const n = opts.jobs ?? 2000;
  const projects = opts.projects ?? 200;
  const seconds = opts.seconds ?? 60;
  const start = MONDAY + 9 * HOUR;
  const jobs: TraceJob[] = [];
  for (let i = 0; i < n; i++) {
    const heavy = rng.chance(opts.tagged ?? 0.5);
    jobs.push({
      id: `b${i + 1}`,
      at: start + Math.round(rng.next() * seconds) * 1000,
      duration: Math.max(30, Math.round(rng.logNormal(heavy ? 300 : 180, 0.4))),
      tags: heavy ? ['heavy'] : [],
      project: 20_000 + rng.int(0, projects - 1) * 11,
    });
  }
  jobs.sort((a, b) => a.at - b.at || (a.id < b.id ? -1 : 1));
  return { start: MONDAY, jobs };
}

/** The trace with `count` of its jobs (picked by the seed, spread over the run) GitLab keeps pending for ever. */
export function withStuck(trace: Trace, count: number, seed: number): Trace {
  const rng = new Rng(seed);
  const picked = new Set<number>();
  while (picked.size < Math.min(count, trace.jobs.length)) picked.add(rng.int(0, trace.jobs.length - 1));
  return { start: trace.start, jobs: trace.jobs.map((j, i) => (picked.has(i) ? { ...j, stuck: true } : j)) };
}

const WORKER = (types: string[]) => ({ instanceTypes: types, subnets: ['subnet-0a1b2c3d4e5f60001', 'subnet-0a1b2c3d4e5f60002', 'subnet-0a1b2c3d4e5f60003'], ami: 'ami-0123456789abcdef0' });

/** Two pools as a migrating team runs them (untagged `general` with an idle worker by day, `heavy` on demand). */
export function quietConfig(requestsPerMinute?: number): Config {
  return validateConfig(
    {
      deployment: 'heldout',
      gitlab: { url: 'https://gitlab.example.com', ...(requestsPerMinute ? { requestsPerMinute } : {}) },
      concurrent: 0,
      pools: [
        { name: 'general', runUntagged: true, tags: ['docker'], limit: 200, IdleCount: 2, IdleTime: 600, worker: WORKER(['m6i.large', 'm5.large', 'm6a.large']) },
        { name: 'heavy', tags: ['heavy'], limit: 100, IdleCount: 0, IdleTime: 300, worker: WORKER(['c6i.2xlarge', 'c5.2xlarge', 'c6a.2xlarge']) },
      ],
    },
    'quietConfig',
  );
}

/** The burst's config: two pools, no limits, nothing idle (docker+machine then creates a machine per job). */
export function burstConfig(requestsPerMinute?: number): Config {
  return validateConfig(
    {
      deployment: 'burst',
      gitlab: { url: 'https://gitlab.example.com', ...(requestsPerMinute ? { requestsPerMinute } : {}) },
      pools: [
        { name: 'general', runUntagged: true, IdleCount: 0, IdleTime: 300, worker: WORKER(['m6i.large', 'm5.large', 'm6a.large']) },
        { name: 'heavy', tags: ['heavy'], IdleCount: 0, IdleTime: 300, worker: WORKER(['c6i.2xlarge', 'c5.2xlarge', 'c6a.2xlarge']) },
      ],
    },
    'burstConfig',
  );
}
