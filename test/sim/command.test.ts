import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findSamples, run } from '../../lib/cli/commands/simulate';
import { offPeakIntervals } from '../../lib/sim/chart';
import { parseConfig } from '../../lib/config';
import { formatTrace } from '../../lib/sim/trace';
import { generateTrace } from '../../lib/sim/trace-gen';
import { captureStdio, type CapturedStdio } from '../helpers/cli';

const REQUIRED = ['jobs', 'waitP50', 'waitP95', 'waitMax', 'peakWorkers', 'workerHours', 'spotCost', 'onDemandCost', 'interruptions', 'jobsUnserved', 'limitViolations', 'gitlabApiCallsPerMinuteMax', 'jobsStuck'];

describe('simulate command', () => {
  let dir: string;
  let io: CapturedStdio;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'simulate-'));
    io = captureStdio();
  });
  afterEach(() => {
    io.restore();
    rmSync(dir, { recursive: true, force: true });
  });

  it('finds the shipped samples from its own location', () => {
    const s = findSamples();
    expect(s).toBeDefined();
    expect(parseConfig(readFileSync(s!.config, 'utf8')).pools.map((p) => p.name)).toEqual(['general', 'heavy']);
  });

  it('prints one JSON object with the documented fields and writes the chart it names', async () => {
    const trace = join(dir, 'day.jsonl');
    writeFileSync(trace, formatTrace(generateTrace({ days: 1, seed: 9, scale: 0.2 })));
    const chart = join(dir, 'charts', 'sim.svg');
    const code = await run(['--config', findSamples()!.config, '--trace', trace, '--seed', '3', '--json', '--chart', chart, '--webhook-loss', '0.2', '--webhook-duplicates', '0.1']);
    expect(io.err()).toBe('');
    expect(code).toBe(0);
    const lines = io.out().trim().split('\n');
    expect(lines).toHaveLength(1);
    const report = JSON.parse(lines[0]);
    for (const k of REQUIRED) expect(typeof report[k]).toBe('number');
    expect(report.jobsUnserved).toBe(0);
    expect(report.limitViolations).toBe(0);
    expect(report.jobsStuck).toBe(0);
    expect(report.gitlabApiCallsPerMinuteMax).toBeLessThanOrEqual(report.autoscaler.gitlabRequestsPerMinute);
    expect(report.autoscaler.webhooksDuplicated).toBeGreaterThan(0);
    expect(report.baseline.cost).toBeGreaterThan(0);
    expect(report.chart).toBe(chart);
    const svg = readFileSync(chart, 'utf8');
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg).toContain('docker+machine');
    expect(svg).not.toMatch(/<script|href=/);
  });

  it('prints a text report naming the chart path', async () => {
    const trace = join(dir, 'day.jsonl');
    writeFileSync(trace, formatTrace(generateTrace({ days: 1, seed: 9, scale: 0.1 })));
    const code = await run(['--config', findSamples()!.config, '--trace', trace, '--chart', join(dir, 'c.svg')]);
    expect(code).toBe(0);
    const text = io.out();
    expect(text).toMatch(/queue wait p95 +[\d.]+ s +[\d.]+ s/);
    expect(text).toContain(`Chart: ${join(dir, 'c.svg')}`);
    expect(existsSync(join(dir, 'c.svg'))).toBe(true);
  });

  it('prints worker-hours, wait and utilization side by side; --target-wait trades idle workers for waits up to the target', async () => {
    const trace = join(dir, 'day.jsonl');
    writeFileSync(trace, formatTrace(generateTrace({ days: 1, seed: 9, scale: 0.15 })));
    const base = ['--config', findSamples()!.config, '--trace', trace, '--json', '--no-chart'];
    expect(await run(base)).toBe(0);
    expect(await run([...base, '--target-wait', '120'])).toBe(0);
    const [asWritten, targeted] = io.out().trim().split('\n').map((l) => JSON.parse(l));
    for (const r of [asWritten, targeted]) {
      expect(r.utilization).toBeGreaterThan(0);
      expect(r.baseline.utilization).toBeGreaterThan(0);
      expect(r.jobsUnserved).toBe(0);
    }
    expect(targeted.workerHours).toBeLessThan(asWritten.workerHours);
    expect(targeted.baseline.workerHours).toBe(asWritten.baseline.workerHours); // the baseline ignores targetWait
    expect(await run([...base, '--target-wait', '-1'])).toBe(2);
  });

  it('rejects bad arguments with a message naming them', async () => {
    expect(await run(['--config', 'x.yaml'])).toBe(2);
    expect(await run(['--seed', 'abc'])).toBe(2);
    expect(await run(['--webhook-duplicates', '2'])).toBe(2);
    const bad = join(dir, 'bad.jsonl');
    writeFileSync(bad, '{"id":1,"at":0}\n');
    expect(await run(['--config', findSamples()!.config, '--trace', bad, '--no-chart'])).toBe(2);
    const text = io.err();
    expect(text).toMatch(/--config FILE and --trace FILE go together/);
    expect(text).toMatch(/--seed "abc": expected a number/);
    expect(text).toMatch(/--webhook-duplicates "2": expected a number from 0 to 1/);
    expect(text).toMatch(/line 1: "duration" must be a positive number/);
  });
});

describe('chart shading', () => {
  it('shades the sample config off-peak: weekday nights and the weekend, in Berlin time', () => {
    const config = parseConfig(readFileSync(findSamples()!.config, 'utf8'));
    const start = Date.parse('2025-03-07T00:00:00Z'); // Friday
    const iv = offPeakIntervals(config, start, start + 3 * 86_400_000, 60_000);
    // Friday 08:00 Berlin = 07:00 UTC on-peak until 19:00 Berlin = 18:00 UTC, then off-peak through Sunday.
    expect(iv[0]).toEqual([start, Date.parse('2025-03-07T07:00:00Z')]);
    expect(iv[1]).toEqual([Date.parse('2025-03-07T18:00:00Z'), start + 3 * 86_400_000]);
  });
});
