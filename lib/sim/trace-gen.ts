/**
 * Generates the sample trace: a working week of CI for a ~40-developer team in one time zone.
 * Deterministic for a seed. Regenerate the shipped file with:
 *
 *   npx tsx lib/sim/trace-gen.ts > samples/trace.jsonl
 *
 * The shape (not the figures of any one company): pipelines arrive as a Poisson process whose rate
 * follows the working day — a morning ramp, a lunch dip, an afternoon peak, an evening tail, quiet
 * nights and a quiet weekend — plus nightly scheduled pipelines and bursts of parallel pipelines
 * (a dependency bot opening merge requests across projects, a merge train). Each of the 40 team
 * projects has its own .gitlab-ci.yml, drawn once: merge-request pipelines (build, lint, a project's
 * fixed number of parallel rspec jobs, sometimes a heavy container scan), main-branch pipelines (a
 * heavy docker image, tests, publish, a manual production deploy), docs pipelines; some projects
 * use `needs`. Three nightly pipelines build heavy images and run end-to-end tests, with an
 * on_failure notification. A job's duration repeats from run to run within tens of percent (a
 * project's rspec shard is about as long every time); a few jobs fail (their later stages are
 * skipped) and 12 % of merge-request pipelines are canceled by a newer push. Pipelines are
 * closed loop (trace `stage` / `needs`): the simulation queues a stage when the previous one has
 * ended, however long the fleet made it wait (docs/simulation.md).
 */
import { DateTime } from 'luxon';
import { Rng } from './rng';
import { formatTrace, type Trace, type TraceCancel, type TraceJob } from './trace';

export interface TraceGenOptions {
  seed?: number;
  /** Local midnight the trace starts at (ISO date), in `zone`. Default: Monday 2025-03-03. */
  startDate?: string;
  days?: number;
  zone?: string;
  /** Multiplies the pipeline rate (1 = the default team size). */
  scale?: number;
}

/** Pipelines per hour on a working day, by local hour (piecewise linear between these points). */
const WEEKDAY_RATE: [number, number][] = [
  [0, 0.3], [6, 0.3], [7, 3], [10, 30], [12, 30], [12.5, 12], [13.5, 12], [14, 32], [16.5, 32],
  [19, 8], [21, 2], [23, 0.3], [24, 0.3],
];
const WEEKEND_RATE: [number, number][] = [[0, 0.2], [9, 0.2], [10, 1.5], [19, 1.5], [20, 0.2], [24, 0.2]];

function rateAt(table: [number, number][], hour: number): number {
  for (let i = 1; i < table.length; i++) {
    const [h1, r1] = table[i];
    const [h0, r0] = table[i - 1];
    if (hour <= h1) return r0 + ((r1 - r0) * (hour - h0)) / (h1 - h0 || 1);
  }
  return table[table.length - 1][1];
}

/** One job of a project's .gitlab-ci.yml: its name, stage, tags, typical duration and how it runs. */
interface JobDef {
  name: string;
  stage: number;
  tags: string[];
  /** Median seconds of this job in this project (runs vary around it). */
  median: number;
  /** Names of the jobs it needs (`needs:`), or undefined for stage order. */
  needs?: string[];
  when?: 'manual' | 'on_failure';
  /** Chance a run fails (its later on_success jobs are then skipped). */
  failRate: number;
}

type Kind = 'mr' | 'main' | 'docs' | 'nightly';

/** A project's pipelines, one job list per kind; drawn once per project so durations repeat run to run, as CI jobs do. */
type ProjectDefs = Partial<Record<Kind, JobDef[]>>;

const GENERAL_TAGS: string[][] = [[], [], ['docker'], ['docker', 'linux'], ['linux']];
/** How much one run of a job differs from the next (log-normal sigma): builds and suites repeat within tens of percent. */
const RUN_SIGMA = 0.25;

function clampDuration(s: number): number {
  return Math.max(10, Math.min(3600, Math.round(s)));
}

function teamProject(rng: Rng): ProjectDefs {
  const dag = rng.chance(0.3);
  const lint = rng.chance(0.4);
  const image = rng.chance(0.25);
  const tags = rng.pick(GENERAL_TAGS);
  const build = (name: string, stage: number, median: number, extra: Partial<JobDef> = {}): JobDef => ({ name, stage, tags, median: clampDuration(rng.logNormal(median, 0.4)), failRate: 0.01, ...extra });
  const parallel = (base: string, n: number, stage: number, median: number): JobDef[] => {
    const m = rng.logNormal(median, 0.4);
    return Array.from({ length: n }, (_, i) => build(`${base} ${i + 1}/${n}`, stage, m * Math.exp(0.1 * rng.normal()), { failRate: 0.03, ...(dag ? { needs: ['build'] } : {}) }));
  };
  const mr: JobDef[] = [build('build', 0, 150), ...(lint ? [build('lint', dag ? 1 : 0, 60, dag ? { needs: [] } : {})] : []), ...parallel('rspec', rng.int(3, 8), 1, 240)];
  if (image) mr.push({ name: 'container-scan', stage: 2, tags: ['heavy'], median: clampDuration(rng.logNormal(600, 0.4)), failRate: 0.01 });
  const main: JobDef[] = [
    build('build', 0, 150),
    { name: 'docker-image', stage: 0, tags: ['heavy'], median: clampDuration(rng.logNormal(480, 0.4)), failRate: 0.01 },
    ...parallel('rspec', rng.int(4, 10), 1, 240),
    build('publish', 2, 120, dag ? { needs: ['docker-image'] } : {}),
    build('deploy-production', 3, 90, { when: 'manual' }),
  ];
  return { mr, main, docs: [build('pages', 0, 45)] };
}

function nightlyProject(rng: Rng): ProjectDefs {
  const heavy = (name: string, stage: number, median: number): JobDef => ({ name, stage, tags: ['heavy'], median: clampDuration(rng.logNormal(median, 0.3)), failRate: 0.02 });
  return {
    nightly: [
      heavy('build-amd64', 0, 900),
      heavy('build-arm64', 0, 900),
      ...Array.from({ length: 12 }, (_, i): JobDef => ({ name: `e2e ${i + 1}/12`, stage: 1, tags: [], median: clampDuration(rng.logNormal(400, 0.3)), failRate: 0.02 })),
      heavy('performance', 1, 1500),
      { name: 'notify-failure', stage: 2, tags: [], median: 20, when: 'on_failure', failRate: 0 },
    ],
  };
}

export function generateTrace(options: TraceGenOptions = {}): Trace {
  const zone = options.zone ?? 'Europe/Berlin';
  const days = options.days ?? 7;
  const scale = options.scale ?? 1;
  const rng = new Rng(options.seed ?? 2025);
  const day0 = DateTime.fromISO(options.startDate ?? '2025-03-03', { zone }).startOf('day');
  if (!day0.isValid) throw new Error(`startDate ${options.startDate} is not a date in zone ${zone}`);
  const defs = new Map<number, ProjectDefs>();
  for (let p = 1; p <= 40; p++) defs.set(p, teamProject(rng.fork(`project-${p}`)));
  for (let p = 100; p <= 102; p++) defs.set(p, nightlyProject(rng.fork(`project-${p}`)));
  const jobs: TraceJob[] = [];
  const cancels: TraceCancel[] = [];
  let nextPipeline = 1;
  let nextId = 1;
  const emit = (startMs: number, kind: Kind, project: number) => {
    const list = defs.get(project)![kind]!;
    const pipeline = `p${nextPipeline++}`;
    const at = Math.round(startMs / 1000) * 1000;
    const ids = new Map(list.map((d) => [d.name, String(nextId++)]));
    for (const d of list) {
      const job: TraceJob = { id: ids.get(d.name)!, at, duration: clampDuration(d.median * Math.exp(RUN_SIGMA * rng.normal())), tags: d.tags, project, pipeline, stage: d.stage, name: d.name };
      if (d.needs) job.needs = d.needs.map((n) => ids.get(n)!).filter((x) => x !== undefined);
      if (d.when) job.when = d.when;
      if (rng.chance(d.failRate)) job.fails = true;
      jobs.push(job);
    }
    // A newer push to the same merge request supersedes its pipeline (auto-cancel of redundant pipelines).
    if (kind === 'mr' && rng.chance(0.12)) cancels.push({ pipeline, at: at + rng.int(60, 600) * 1000 });
  };
  const pickKind = (): Kind => {
    const r = rng.next();
    return r < 0.7 ? 'mr' : r < 0.95 ? 'main' : 'docs';
  };

  for (let d = 0; d < days; d++) {
    const day = day0.plus({ days: d });
    const weekend = day.weekday >= 6;
    const table = weekend ? WEEKEND_RATE : WEEKDAY_RATE;
    // Thinning (Lewis & Shedler) of a Poisson process at the day's peak rate.
    const peak = Math.max(...table.map(([, r]) => r)) * scale;
    let hour = 0;
    for (;;) {
      hour += rng.exponential(1 / peak);
      if (hour >= 24) break;
      if (rng.next() * peak > rateAt(table, hour) * scale) continue;
      emit(day.plus({ seconds: Math.round(hour * 3600) }).toMillis(), pickKind(), rng.int(1, 40));
    }
    // Scheduled nightly pipelines at 02:00 local.
    for (let n = 0; n < 3; n++) emit(day.set({ hour: 2, minute: n * 5 }).toMillis(), 'nightly', 100 + n);
    // Bursts on working days: many pipelines within two minutes.
    if (!weekend) {
      const bursts = day.weekday === 1 ? 3 : 2;
      for (let b = 0; b < bursts; b++) {
        const at = day.plus({ hours: 9 + rng.next() * 8 });
        const size = Math.round(rng.int(8, 20) * scale);
        for (let p = 0; p < size; p++) emit(at.plus({ seconds: rng.int(0, 120) }).toMillis(), 'mr', rng.int(1, 40));
      }
    }
  }
  // Ids in creation order read better in reports than ids in generation order; needs follow.
  const order = jobs.map((j, k) => ({ j, k })).sort((a, b) => a.j.at - b.j.at || a.k - b.k);
  const renumber = new Map(order.map(({ j }, i) => [j.id, String(i + 1)]));
  const out = order.map(({ j }) => ({ ...j, id: renumber.get(j.id)!, ...(j.needs ? { needs: j.needs.map((n) => renumber.get(n)!) } : {}) }));
  return { start: day0.toUTC().toMillis(), jobs: out, cancels: cancels.sort((a, b) => a.at - b.at) };
}

// Only when this file itself is run (tsx); never when bundled into the CLI.
if (require.main === module && /trace-gen\.ts$/.test(require.main.filename)) {
  process.stdout.write(formatTrace(generateTrace()));
}
