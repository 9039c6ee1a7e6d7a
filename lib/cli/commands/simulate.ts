/**
 * `simulate`: replays a job trace through the real planner and reconcile pass against a simulated
 * cloud, beside docker+machine on the same trace, and prints what it would cost and how long jobs
 * wait. With no arguments it runs the shipped sample (samples/config.yaml + samples/trace.jsonl):
 * that is `npm start`. docs/simulation.md describes the model and every option.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { DEFAULT_AUTOSCALER } from '../../sim/autoscaler';
import { renderChart } from '../../sim/chart';
import { DEFAULT_CLOUD } from '../../sim/cloud';
import { DEFAULT_PRICES, mergePrices, PriceError } from '../../sim/prices';
import { formatReport } from '../../sim/report';
import { simulate } from '../../sim/simulate';
import { parseTrace, TraceError } from '../../sim/trace';
import { defineCommand, runner } from '../command';
import { loadConfigFile, UsageError } from './common';

/** The package root holds samples/: found from this file, bundled (dist/) or not (lib/cli/commands/). */
export function findSamples(): { config: string; trace: string } | undefined {
  let dir = __dirname;
  for (let i = 0; i < 6; i++) {
    const config = join(dir, 'samples', 'config.yaml');
    const trace = join(dir, 'samples', 'trace.jsonl');
    if (existsSync(config) && existsSync(trace)) return { config, trace };
    dir = dirname(dir);
  }
  return undefined;
}

function readText(what: string, path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    throw new UsageError(`cannot read ${what} ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

const DEFAULT_CHART = join('out', 'simulation.svg');

export const command = defineCommand({
  name: 'simulate',
  summary: 'replay a job trace through the controller on simulated spot capacity, beside docker+machine; no arguments = the shipped sample week',
  synopsis:
    '[--config FILE --trace FILE] [--seed N] [--json] [--chart FILE | --no-chart] [--prices FILE] [--worker-image prebuilt|base] [--boot-seconds MIN-MAX] ' +
    '[--interruptions-per-hour X] [--capacity-outages-per-day X] [--webhook-loss X] [--webhook-duplicates X] [--batch-window S] [--verbose]',
  description:
    'The real planner and reconcile pass run against a simulated EC2 and GitLab; on the same trace a docker+machine policy runs on on-demand machines. Prints cost, queue waits and worker-hours of both, and draws a chart. A run is deterministic for a seed. docs/simulation.md describes the model.',
  flags: {
    config: { type: 'string', value: 'FILE', description: 'the deployment config (YAML or JSON); goes with --trace', defaultText: 'samples/config.yaml when --trace is left out too' },
    trace: { type: 'string', value: 'FILE', description: 'the job trace, JSON lines (docs/simulation.md, "Trace format"); goes with --config', defaultText: 'samples/trace.jsonl' },
    seed: { type: 'number', value: 'N', integer: true, min: 0, max: 2 ** 32 - 1, default: 1, description: 'seed of every random draw (boot times, outages, interruptions, lost webhooks)' },
    json: { type: 'boolean', description: 'print the report as one JSON object instead of text' },
    chart: { type: 'string', value: 'FILE', default: DEFAULT_CHART, description: 'where to write the SVG chart (the directory is created)' },
    'no-chart': { type: 'boolean', description: 'draw no chart' },
    prices: {
      type: 'string',
      value: 'FILE',
      description: 'JSON prices per instance type, over the built-in ones: {"m6i.large": {"onDemand": 0.096, "spot": 0.031}}',
      defaultText: "AWS's us-east-1 on-demand rates, spot at 35 % of them",
    },
    'worker-image': {
      type: 'string',
      value: 'IMAGE',
      choices: ['prebuilt', 'base'],
      description: "boot every pool's workers from this image (worker.image), to compare: prebuilt or base",
      defaultText: "each pool's worker.image",
    },
    'target-wait': {
      type: 'number',
      value: 'S',
      min: 0,
      max: 86400,
      description: "give every pool this targetWait (p95 queue wait, seconds): the controller sizes idle capacity from the forecast, IdleCount as a floor",
      defaultText: "each pool's targetWait (unset: IdleCount/IdleTime as docker+machine)",
    },
    'boot-seconds': {
      type: 'string',
      value: 'MIN-MAX',
      description: 'seconds from launch until a worker takes a job, uniform in MIN-MAX (or one number), instead of the boot model of each pool\'s worker image',
      defaultText: "the boot model of the pools' worker.image (docs/simulation.md, \"Boot model\")",
    },
    'interruptions-per-hour': {
      type: 'number',
      value: 'X',
      min: 0,
      max: 100,
      description: 'spot interruptions per running spot instance-hour',
      defaultText: String(DEFAULT_CLOUD.interruptionsPerHour),
    },
    'capacity-outages-per-day': {
      type: 'number',
      value: 'X',
      min: 0,
      max: 1440,
      description: `spot capacity outages per day in each instance type × subnet (mean ${DEFAULT_CLOUD.capacityOutageMinutes} min)`,
      defaultText: String(DEFAULT_CLOUD.capacityOutagesPerDay),
    },
    'webhook-loss': { type: 'number', value: 'X', min: 0, max: 1, description: 'share of Job Hook deliveries lost on the way', defaultText: String(DEFAULT_AUTOSCALER.webhookLossRate) },
    'webhook-duplicates': {
      type: 'number',
      value: 'X',
      min: 0,
      max: 1,
      description: 'share of delivered Job Hooks that arrive a second time, 1-60 s later, with the same Idempotency-Key',
      defaultText: String(DEFAULT_AUTOSCALER.webhookDuplicateRate),
    },
    'batch-window': {
      type: 'number',
      value: 'S',
      min: 0,
      max: 300,
      description: 'while events keep arriving, a reconcile pass starts at most this often (seconds)',
      defaultText: String(DEFAULT_AUTOSCALER.minPassIntervalSeconds),
    },
    verbose: { type: 'boolean', description: "print every pass's decisions to stderr" },
  },
  examples: ['simulate', 'simulate --config config.yaml --trace jobs.jsonl --json --no-chart', 'simulate --worker-image base', 'simulate --target-wait 90', 'simulate --webhook-loss 0.3 --boot-seconds 30-45', 'simulate --webhook-loss 0.2 --webhook-duplicates 0.1 --json --no-chart'],
  async run(opts) {
    if (opts['no-chart'] && opts.chart !== DEFAULT_CHART) throw new UsageError('--chart FILE and --no-chart exclude each other; pass one');
    let configPath = opts.config;
    let tracePath = opts.trace;
    if (!configPath && !tracePath) {
      const samples = findSamples();
      if (!samples) throw new UsageError('no --config/--trace given and the bundled samples/ directory was not found; pass --config FILE --trace FILE');
      configPath = samples.config;
      tracePath = samples.trace;
    } else if (!configPath || !tracePath) {
      throw new UsageError('--config FILE and --trace FILE go together (leave both out to run the shipped sample)');
    }
    let boot: [number, number] | undefined;
    if (opts['boot-seconds'] !== undefined) {
      const m = /^(\d+(?:\.\d+)?)(?:-(\d+(?:\.\d+)?))?$/.exec(opts['boot-seconds']);
      if (!m) throw new UsageError(`--boot-seconds ${JSON.stringify(opts['boot-seconds'])}: expected SECONDS or MIN-MAX, e.g. 60-120`);
      boot = [Number(m[1]), Number(m[2] ?? m[1])];
      if (boot[0] > boot[1]) throw new UsageError('--boot-seconds: MIN must not exceed MAX');
    }
    const config = loadConfigFile(configPath);
    if (opts['worker-image']) for (const pool of config.pools) pool.worker.image = opts['worker-image'] as 'prebuilt' | 'base';
    if (opts['target-wait'] !== undefined) for (const pool of config.pools) pool.targetWait = Math.round(opts['target-wait']);
    let trace;
    try {
      trace = parseTrace(readText('trace file', tracePath), tracePath);
    } catch (e) {
      if (e instanceof TraceError) throw new UsageError(e.message);
      throw e;
    }
    let prices = DEFAULT_PRICES;
    if (opts.prices) {
      const text = readText('prices file', opts.prices);
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch (e) {
        throw new UsageError(`prices file ${opts.prices} is not JSON: ${(e as Error).message}`);
      }
      try {
        prices = mergePrices(DEFAULT_PRICES, parsed, opts.prices);
      } catch (e) {
        if (e instanceof PriceError) throw new UsageError(e.message);
        throw e;
      }
    }
    let result;
    try {
      result = await simulate({
        config,
        trace,
        seed: opts.seed,
        prices,
        cloud: {
          ...(boot && { bootSeconds: boot }),
          ...(opts['interruptions-per-hour'] !== undefined && { interruptionsPerHour: opts['interruptions-per-hour'] }),
          ...(opts['capacity-outages-per-day'] !== undefined && { capacityOutagesPerDay: opts['capacity-outages-per-day'] }),
        },
        autoscaler: {
          ...(opts['webhook-loss'] !== undefined && { webhookLossRate: opts['webhook-loss'] }),
          ...(opts['webhook-duplicates'] !== undefined && { webhookDuplicateRate: opts['webhook-duplicates'] }),
          // While events keep coming, passes start at most this often (lib/controller/loop.ts minPassIntervalMs).
          ...(opts['batch-window'] !== undefined && { minPassIntervalSeconds: opts['batch-window'] }),
        },
        echo: opts.verbose ? (line) => process.stderr.write(line + '\n') : undefined,
      });
    } catch (e) {
      if (e instanceof PriceError) throw new UsageError(e.message);
      throw e;
    }
    let chartPath: string | undefined;
    if (!opts['no-chart']) {
      chartPath = resolve(opts.chart);
      try {
        mkdirSync(dirname(chartPath), { recursive: true });
        writeFileSync(chartPath, renderChart(config, result.report, result.samples));
      } catch (e) {
        throw new UsageError(`cannot write the chart to ${chartPath}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
      }
    }
    if (opts.json) process.stdout.write(JSON.stringify({ ...result.report, ...(chartPath && { chart: chartPath }) }) + '\n');
    else process.stdout.write(formatReport(result.report, chartPath));
    return 0;
  },
});

export const run = runner(command);
