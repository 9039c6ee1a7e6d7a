/**
 * Generates the sample trace: a working week of CI for a ~40-developer team in one time zone.
 * Deterministic for a seed. Regenerate the shipped file with:
 *
 *   npx tsx lib/sim/trace-gen.ts > samples/trace.jsonl
 *
 * The shape (not the figures of any one company): pipelines arrive as a Poisson process whose rate
 * follows the working day — a morning ramp, a lunch dip, an afternoon peak, an evening tail, quiet
 * nights and a quiet weekend — plus nightly scheduled pipelines and bursts of parallel pipelines
 * (a dependency bot opening merge requests across projects, a merge train). Each pipeline is a few
 * stages of parallel jobs; a stage's jobs become pending when the previous stage would have finished.
 * The trace is open-loop: it records when jobs became pending and does not re-time later stages
 * when the simulated fleet makes earlier ones wait (docs/simulation.md).
 */
import { DateTime } from 'luxon';
import { Rng } from './rng';
import { formatTrace, type Trace, type TraceJob } from './trace';

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

interface JobSpec {
  duration: number;
  tags: string[];
}

const GENERAL_TAGS: string[][] = [[], [], ['docker'], ['docker', 'linux'], ['linux']];

function general(rng: Rng, median: number): JobSpec {
  return { duration: clampDuration(rng.logNormal(median, 0.6)), tags: rng.pick(GENERAL_TAGS) };
}
function heavy(rng: Rng, median: number): JobSpec {
  return { duration: clampDuration(rng.logNormal(median, 0.5)), tags: ['heavy'] };
}
function clampDuration(s: number): number {
  return Math.max(10, Math.min(3600, Math.round(s)));
}
function times<T>(n: number, f: () => T): T[] {
  return Array.from({ length: n }, f);
}

/** One pipeline as stages of parallel jobs. */
function pipeline(rng: Rng, kind: 'mr' | 'main' | 'docs' | 'nightly'): JobSpec[][] {
  switch (kind) {
    case 'docs':
      return [[general(rng, 45)]];
    case 'mr':
      return [
        [general(rng, 150), ...(rng.chance(0.3) ? [general(rng, 60)] : [])],
        [...times(rng.int(3, 8), () => general(rng, 240)), ...(rng.chance(0.2) ? [heavy(rng, 600)] : [])],
      ];
    case 'main':
      return [
        [...times(rng.int(1, 2), () => general(rng, 150)), heavy(rng, 480)],
        times(rng.int(4, 10), () => general(rng, 240)),
        [general(rng, 120)],
      ];
    case 'nightly':
      return [[heavy(rng, 900), heavy(rng, 900)], [...times(12, () => general(rng, 400)), heavy(rng, 1500)]];
  }
}

export function generateTrace(options: TraceGenOptions = {}): Trace {
  const zone = options.zone ?? 'Europe/Berlin';
  const days = options.days ?? 7;
  const scale = options.scale ?? 1;
  const rng = new Rng(options.seed ?? 2025);
  const day0 = DateTime.fromISO(options.startDate ?? '2025-03-03', { zone }).startOf('day');
  if (!day0.isValid) throw new Error(`startDate ${options.startDate} is not a date in zone ${zone}`);
  const jobs: TraceJob[] = [];
  let nextId = 1;
  const emit = (startMs: number, stages: JobSpec[][], project: number) => {
    let t = startMs;
    for (const stage of stages) {
      for (const j of stage) jobs.push({ id: String(nextId++), at: Math.round(t / 1000) * 1000, duration: j.duration, tags: j.tags, project });
      // The next stage starts when this one's slowest job would have ended, plus GitLab's scheduling lag.
      t += Math.max(...stage.map((j) => j.duration)) * 1000 + rng.int(2, 15) * 1000;
    }
  };
  const pickKind = () => {
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
      emit(day.plus({ seconds: Math.round(hour * 3600) }).toMillis(), pipeline(rng, pickKind()), rng.int(1, 40));
    }
    // Scheduled nightly pipelines at 02:00 local.
    for (let n = 0; n < 3; n++) emit(day.set({ hour: 2, minute: n * 5 }).toMillis(), pipeline(rng, 'nightly'), 100 + n);
    // Bursts on working days: many pipelines within two minutes.
    if (!weekend) {
      const bursts = day.weekday === 1 ? 3 : 2;
      for (let b = 0; b < bursts; b++) {
        const at = day.plus({ hours: 9 + rng.next() * 8 });
        const size = Math.round(rng.int(8, 20) * scale);
        for (let p = 0; p < size; p++) emit(at.plus({ seconds: rng.int(0, 120) }).toMillis(), pipeline(rng, 'mr'), rng.int(1, 40));
      }
    }
  }
  jobs.sort((a, b) => a.at - b.at || Number(a.id) - Number(b.id));
  // Ids in arrival order read better in reports than ids in generation order.
  jobs.forEach((j, i) => (j.id = String(i + 1)));
  return { start: day0.toUTC().toMillis(), jobs };
}

// Only when this file itself is run (tsx); never when bundled into the CLI.
if (require.main === module && /trace-gen\.ts$/.test(require.main.filename)) {
  process.stdout.write(formatTrace(generateTrace()));
}
