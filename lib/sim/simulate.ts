/**
 * One simulation run: the trace replayed twice, through the real controller on simulated spot
 * capacity and through the docker+machine baseline on on-demand machines, and the report of both.
 */
import type { Config } from '../config';
import { MemoryStateStore } from '../controller/state';
import { GitLabDemand } from '../gitlab/sync';
import { DockerMachineBaseline } from './baseline';
import { CapacityModel, DEFAULT_CLOUD, SIM_WORKER_ROLE, SimFleet, SimGitLab, World, type CloudOptions, type Sample } from './cloud';
import { ReportMemory } from '../controller/reports';
import { ForecastMemory } from '../forecast';
import type { TerminationKind } from '../model';
import { CountingLogger, DEFAULT_AUTOSCALER, SimulatedAutoscaler, type AutoscalerOptions } from './autoscaler';
import { DEFAULT_PRICES, missingPrices, PriceError, type PriceTable } from './prices';
import { Rng } from './rng';
import type { Trace } from './trace';

export interface SimulationOptions {
  config: Config;
  trace: Trace;
  seed: number;
  prices?: PriceTable;
  cloud?: Partial<CloudOptions>;
  autoscaler?: Partial<AutoscalerOptions>;
  /** Hours after the last arrival the run may go on for jobs to finish; what is left is unserved. */
  drainHours?: number;
  /** Minutes to keep simulating after both policies finished every job (to watch the fleet settle). */
  tailMinutes?: number;
  /** Receives every controller log line (for --verbose). */
  echo?: (line: string) => void;
  /** GitLab projects whose API requests fail for ever (poisoned-project runs). */
  failingProjects?: readonly number[];
  /** The controller's forecast of pipelines (lib/forecast.ts); false plans from pending jobs alone, to compare. Default true. */
  forecast?: boolean;
}

/** The figures of one policy. Waits in seconds, money in USD. */
export interface PolicyFigures {
  jobs: number;
  waitP50: number;
  waitP95: number;
  waitMax: number;
  waitMean: number;
  peakWorkers: number;
  workerHours: number;
  cost: number;
  onDemandCost: number;
  spotHours: number;
  onDemandHours: number;
  launches: number;
  interruptions: number;
  jobsHitByInterruptions: number;
  jobsUnserved: number;
  limitViolations: number;
  busyTerminations: number;
  /** The controller's terminations by kind (the fence), and retirement requests that found the runner busy (it finished its job first). */
  terminationsByKind: Partial<Record<TerminationKind, number>>;
  retiredWhileBusy: number;
  /** Seconds from launch to ready per pool (the image it booted from, workers that became ready, percentiles). */
  boot: Record<string, { image: string; n: number; p50: number; p95: number }>;
  /** Hours workers spent running jobs, and their share of the worker-hours (job-hours / worker-hours). */
  jobHours: number;
  utilization: number;
  /** Trace jobs that never ran because GitLab skipped them, they were manual, or their pipeline was canceled first. */
  jobsNotRun: { skipped: number; manual: number; canceled: number };
}

export interface SimulationReport {
  // ---- the fields the issue names, for the spot autoscaler ----
  jobs: number;
  waitP50: number;
  waitP95: number;
  waitMax: number;
  peakWorkers: number;
  workerHours: number;
  /** Job-hours / worker-hours of the spot autoscaler's fleet (docker+machine's: baseline.utilization). */
  utilization: number;
  /** What the autoscaler's fleet cost (spot hours at spot prices, fallback hours at on-demand). */
  spotCost: number;
  /** The same instance hours at on-demand prices. */
  onDemandCost: number;
  interruptions: number;
  jobsUnserved: number;
  limitViolations: number;
  // ---- more ----
  jobsHitByInterruptions: number;
  /** Jobs whose tags match no pool: never served by either policy (not counted as unserved). */
  jobsUnroutable: number;
  /** Jobs GitLab keeps pending that no runner takes (trace `stuck: true`): excluded from waits and from jobsUnserved. */
  jobsStuck: number;
  /** GitLab API requests in the busiest minute of the run (a batched request counts one). */
  gitlabApiCallsPerMinuteMax: number;
  busyTerminations: number;
  seed: number;
  start: string;
  end: string;
  autoscaler: PolicyFigures & {
    passes: { queue: number; schedule: number; interruption: number };
    passErrors: number;
    webhooksSent: number;
    webhooksLost: number;
    reportsSent: number;
    reportsLost: number;
    slowBoots: number;
    impairments: number;
    webhooksDuplicated: number;
    duplicatesDropped: number;
    launchErrors: number;
    fleetCalls: Record<string, number>;
    gitlabApiCalls: number;
    /** The request budget the controller ran with (config gitlab.requestsPerMinute). */
    gitlabRequestsPerMinute: number;
    controllerWarnings: number;
    controllerErrors: number;
    recentWarnings: string[];
  };
  baseline: PolicyFigures;
  savings: { money: number; moneyPercent: number; waitP50: number; waitP95: number; waitMax: number };
  settings: { cloud: CloudOptions; autoscaler: AutoscalerOptions };
}

export interface SimulationResult {
  report: SimulationReport;
  samples: { autoscaler: Sample[]; baseline: Sample[] };
}

const HOUR = 3_600_000;

/** Nearest-rank percentile of sorted values; 0 for none. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))];
}

const r1 = (x: number) => Math.round(x * 10) / 10;
const r2 = (x: number) => Math.round(x * 100) / 100;

function figures(world: World): PolicyFigures {
  // Jobs that got a worker and ended (a job canceled while it ran waited too).
  const waits = world.outcomes.filter((o) => o.started && o.end !== undefined).map((o) => o.wait).sort((a, b) => a - b);
  const s = world.stats;
  const notRun = { skipped: 0, manual: 0, canceled: 0 };
  for (const o of world.outcomes) if (!o.started && (o.end === 'skipped' || o.end === 'manual' || o.end === 'canceled')) notRun[o.end]++;
  return {
    jobs: world.outcomes.length,
    waitP50: r1(percentile(waits, 0.5)),
    waitP95: r1(percentile(waits, 0.95)),
    waitMax: r1(waits.length ? waits[waits.length - 1] : 0),
    waitMean: r1(waits.length ? waits.reduce((a, b) => a + b, 0) / waits.length : 0),
    peakWorkers: s.peakWorkers,
    workerHours: r1(s.instanceSeconds / 3600),
    cost: r2(s.cost),
    onDemandCost: r2(s.onDemandCostOfSameHours),
    spotHours: r1(s.byMarket.spot / 3600),
    onDemandHours: r1(s.byMarket['on-demand'] / 3600),
    launches: s.launches,
    interruptions: s.interruptions,
    jobsHitByInterruptions: s.jobsHitByInterruptions,
    jobsUnserved: world.routable - world.finishedCount,
    limitViolations: s.limitViolations,
    busyTerminations: s.busyTerminations,
    terminationsByKind: { ...s.terminationsByKind },
    retiredWhileBusy: s.retiredWhileBusy,
    boot: bootFigures(s.boots),
    jobHours: r1(s.jobSeconds / 3600),
    utilization: s.instanceSeconds > 0 ? Math.round((1000 * s.jobSeconds) / s.instanceSeconds) / 1000 : 0,
    jobsNotRun: notRun,
  };
}

function bootFigures(boots: World['stats']['boots']): PolicyFigures['boot'] {
  const byPool = new Map<string, { images: Set<string>; seconds: number[] }>();
  for (const b of boots) {
    if (!byPool.has(b.pool)) byPool.set(b.pool, { images: new Set(), seconds: [] });
    const g = byPool.get(b.pool)!;
    g.images.add(b.image);
    g.seconds.push(b.seconds);
  }
  const out: PolicyFigures['boot'] = {};
  for (const [pool, g] of byPool) {
    const sorted = g.seconds.sort((a, b) => a - b);
    out[pool] = { image: [...g.images].sort().join('+'), n: sorted.length, p50: r1(percentile(sorted, 0.5)), p95: r1(percentile(sorted, 0.95)) };
  }
  return out;
}

export async function simulate(opts: SimulationOptions): Promise<SimulationResult> {
  const { config, trace, seed } = opts;
  const prices = opts.prices ?? DEFAULT_PRICES;
  const missing = missingPrices(prices, config.pools.flatMap((p) => p.worker.instanceTypes));
  if (missing.length)
    throw new PriceError(`no price for ${missing.join(', ')}: add them with --prices FILE, e.g. {"${missing[0]}": {"onDemand": 0.2, "spot": 0.07}}`);
  const cloud: CloudOptions = { ...DEFAULT_CLOUD, ...opts.cloud };
  const auto: AutoscalerOptions = { ...DEFAULT_AUTOSCALER, ...opts.autoscaler };
  const rng = new Rng(seed);
  const lastArrival = trace.jobs[trace.jobs.length - 1].at;
  const horizon = lastArrival + (opts.drainHours ?? 6) * HOUR;

  // The spot autoscaler: the real reconcile pass against the simulated cloud.
  const spotWorld = new World({ config, cloud, prices, rng: rng.fork('autoscaler-world'), maxRunning: 0, cancels: trace.cancels }, trace.jobs, trace.start);
  const capacity = new CapacityModel(rng.fork('capacity').nextUint32(), cloud, trace.start);
  // Streams of their own (not forked from `rng`), so the baseline's run is the same as before they existed.
  const raceAndReports = new Rng((seed ^ 0x9e3779b9) >>> 0);
  const fleet = new SimFleet(spotWorld, capacity, raceAndReports.fork('race'));
  const gitlabApi = new SimGitLab(spotWorld);
  for (const p of opts.failingProjects ?? []) gitlabApi.failProjects.add(p);
  // One warm container for the whole run: the budget starts full (a fresh process has spent nothing).
  const gitlab = new GitLabDemand({ api: gitlabApi, perMinute: config.gitlab.requestsPerMinute, start: 'full', pipelines: gitlabApi });
  const log = new CountingLogger(opts.echo);
  // The real encoding, written every pass; read back only once (the controller is the only writer).
  const store = new MemoryStateStore(log, undefined, { cacheMs: Infinity, now: () => spotWorld.now });
  const autoscaler = new SimulatedAutoscaler(
    spotWorld,
    { config, stage: 'sim', fleet, store, gitlab, log, reportMemory: new ReportMemory(), workerRoleIds: [SIM_WORKER_ROLE], ...(opts.forecast !== false ? { forecast: new ForecastMemory() } : {}) },
    auto,
    rng.fork('webhook-loss'),
    raceAndReports.fork('reports'),
  );
  autoscaler.start();

  // docker+machine on on-demand machines: no interruptions, no capacity outages.
  const baseCloud: CloudOptions = { ...cloud, interruptionsPerHour: 0, capacityOutagesPerDay: 0 };
  // docker-machine provisions its machines from the base AMI: it cannot use the pre-built image (boot.ts).
  const baseWorld = new World({ config, cloud: baseCloud, prices, rng: rng.fork('baseline-world'), maxRunning: config.concurrent, baseImageOnly: true, cancels: trace.cancels }, trace.jobs, trace.start);
  new DockerMachineBaseline(baseWorld, config).start();

  await spotWorld.runUntil(horizon, () => spotWorld.allDone() && spotWorld.now >= lastArrival);
  await baseWorld.runUntil(horizon, () => baseWorld.allDone() && baseWorld.now >= lastArrival);
  // Both are billed up to the same instant, so neither gains from stopping first.
  const end = Math.max(spotWorld.now, baseWorld.now) + (opts.tailMinutes ?? 0) * 60_000;
  await spotWorld.runUntil(end);
  await baseWorld.runUntil(end);
  spotWorld.now = baseWorld.now = end;
  spotWorld.close();
  baseWorld.close();

  const a = figures(spotWorld);
  const b = figures(baseWorld);
  const report: SimulationReport = {
    jobs: a.jobs,
    waitP50: a.waitP50,
    waitP95: a.waitP95,
    waitMax: a.waitMax,
    peakWorkers: a.peakWorkers,
    workerHours: a.workerHours,
    utilization: a.utilization,
    spotCost: a.cost,
    onDemandCost: a.onDemandCost,
    interruptions: a.interruptions,
    jobsUnserved: a.jobsUnserved,
    limitViolations: a.limitViolations,
    jobsHitByInterruptions: a.jobsHitByInterruptions,
    jobsUnroutable: spotWorld.unroutable,
    jobsStuck: spotWorld.stuck,
    gitlabApiCallsPerMinuteMax: gitlabApi.busiestMinute(),
    busyTerminations: a.busyTerminations,
    seed,
    start: new Date(trace.start).toISOString(),
    end: new Date(end).toISOString(),
    autoscaler: {
      ...a,
      passes: { ...autoscaler.passes },
      passErrors: autoscaler.passErrors,
      webhooksSent: spotWorld.stats.webhooksSent,
      webhooksLost: autoscaler.webhooksLost,
      reportsSent: spotWorld.stats.reportsSent,
      reportsLost: autoscaler.reportsLost,
      slowBoots: spotWorld.stats.slowBoots,
      impairments: spotWorld.stats.impairments,
      webhooksDuplicated: autoscaler.webhooksDuplicated,
      duplicatesDropped: autoscaler.duplicatesDropped,
      launchErrors: fleet.launchErrors,
      fleetCalls: { ...fleet.calls },
      gitlabApiCalls: gitlabApi.requests,
      gitlabRequestsPerMinute: config.gitlab.requestsPerMinute,
      controllerWarnings: log.counts.warn,
      controllerErrors: log.counts.error,
      recentWarnings: [...log.recent],
    },
    baseline: b,
    savings: {
      money: r2(b.cost - a.cost),
      moneyPercent: b.cost > 0 ? r1((100 * (b.cost - a.cost)) / b.cost) : 0,
      waitP50: r1(b.waitP50 - a.waitP50),
      waitP95: r1(b.waitP95 - a.waitP95),
      waitMax: r1(b.waitMax - a.waitMax),
    },
    settings: { cloud, autoscaler: auto },
  };
  return { report, samples: { autoscaler: spotWorld.samples, baseline: baseWorld.samples } };
}
