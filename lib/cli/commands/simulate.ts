/**
 * `simulate`: replays a job trace through the real planner and reconcile pass against a simulated
 * cloud, beside docker+machine on the same trace, and prints what it would cost and how long jobs
 * wait. With no arguments it runs the shipped sample (samples/config.yaml + samples/trace.jsonl):
 * that is `npm start`. docs/simulation.md describes the model and every option.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { renderChart } from '../../sim/chart';
import { DEFAULT_PRICES, mergePrices, PriceError } from '../../sim/prices';
import { formatReport } from '../../sim/report';
import { simulate } from '../../sim/simulate';
import { parseTrace, TraceError } from '../../sim/trace';
import { guarded, loadConfigFile, parseOptions, UsageError } from './common';

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

function number(name: string, text: string | undefined, min: number, max: number): number | undefined {
  if (text === undefined) return undefined;
  const v = Number(text);
  if (text.trim() === '' || !Number.isFinite(v) || v < min || v > max) throw new UsageError(`--${name} ${JSON.stringify(text)}: expected a number from ${min} to ${max}`);
  return v;
}

function readText(what: string, path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    throw new UsageError(`cannot read ${what} ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

export const USAGE = `simulate [--config FILE --trace FILE] [--seed N] [--json] [--chart FILE | --no-chart] [--prices FILE]
         [--boot-seconds MIN-MAX] [--interruptions-per-hour X] [--capacity-outages-per-day X]
         [--webhook-loss X] [--batch-window S] [--verbose]`;

export function run(argv: string[]): Promise<number> {
  return guarded(async () => {
    const opts = parseOptions(argv, {
      config: { type: 'string' },
      trace: { type: 'string' },
      seed: { type: 'string' },
      json: { type: 'boolean' },
      chart: { type: 'string' },
      'no-chart': { type: 'boolean' },
      prices: { type: 'string' },
      'boot-seconds': { type: 'string' },
      'interruptions-per-hour': { type: 'string' },
      'capacity-outages-per-day': { type: 'string' },
      'webhook-loss': { type: 'string' },
      'batch-window': { type: 'string' },
      verbose: { type: 'boolean' },
    });
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
    const seed = number('seed', opts.seed, 0, 2 ** 32 - 1) ?? 1;
    if (!Number.isInteger(seed)) throw new UsageError('--seed must be a whole number');
    let boot: [number, number] | undefined;
    if (opts['boot-seconds'] !== undefined) {
      const m = /^(\d+(?:\.\d+)?)(?:-(\d+(?:\.\d+)?))?$/.exec(opts['boot-seconds']);
      if (!m) throw new UsageError(`--boot-seconds ${JSON.stringify(opts['boot-seconds'])}: expected SECONDS or MIN-MAX, e.g. 60-120`);
      boot = [Number(m[1]), Number(m[2] ?? m[1])];
      if (boot[0] > boot[1]) throw new UsageError('--boot-seconds: MIN must not exceed MAX');
    }
    const config = loadConfigFile(configPath);
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
        seed,
        prices,
        cloud: {
          ...(boot && { bootSeconds: boot }),
          ...(opts['interruptions-per-hour'] !== undefined && { interruptionsPerHour: number('interruptions-per-hour', opts['interruptions-per-hour'], 0, 100) }),
          ...(opts['capacity-outages-per-day'] !== undefined && { capacityOutagesPerDay: number('capacity-outages-per-day', opts['capacity-outages-per-day'], 0, 1440) }),
        },
        autoscaler: {
          ...(opts['webhook-loss'] !== undefined && { webhookLossRate: number('webhook-loss', opts['webhook-loss'], 0, 1) }),
          ...(opts['batch-window'] !== undefined && { batchWindowSeconds: number('batch-window', opts['batch-window'], 0, 300) }),
        },
        echo: opts.verbose ? (line) => process.stderr.write(line + '\n') : undefined,
      });
    } catch (e) {
      if (e instanceof PriceError) throw new UsageError(e.message);
      throw e;
    }
    let chartPath: string | undefined;
    if (!opts['no-chart']) {
      chartPath = resolve(opts.chart ?? join('out', 'simulation.svg'));
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
  });
}
