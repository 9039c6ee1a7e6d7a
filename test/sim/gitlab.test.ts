/**
 * The simulated GitLab and what the report says about it: stuck jobs, duplicated deliveries, the
 * busiest minute of requests, the held-out workload generators.
 */
import { simulate } from '../../lib/sim/simulate';
import { burst, burstConfig, quietProjects, withStuck } from '../../lib/sim/workloads';
import { formatReport } from '../../lib/sim/report';
import { parseTrace, formatTrace, type Trace } from '../../lib/sim/trace';
import { makeConfig, poolInput } from '../helpers/config';

const START = Date.parse('2025-03-04T09:00:00Z');

function trace(jobs: { at: number; duration?: number; project?: number; tags?: string[]; stuck?: boolean }[]): Trace {
  return { start: START, jobs: jobs.map((j, i) => ({ id: String(i + 1), at: START + j.at * 1000, duration: j.duration ?? 120, tags: j.tags ?? [], project: j.project ?? 1, ...(j.stuck ? { stuck: true } : {}) })) };
}

test('stuck jobs are counted as such, left out of waits and of jobsUnserved, and stop holding workers', async () => {
  const config = makeConfig([poolInput({ IdleCount: 0, IdleTime: 600, limit: 10 })]);
  const jobs = [...Array.from({ length: 6 }, (_, k) => ({ at: k * 60 })), ...Array.from({ length: 3 }, (_, k) => ({ at: 30 + k, stuck: true }))];
  const lines: string[] = [];
  const { report } = await simulate({ config, trace: trace(jobs), seed: 3, autoscaler: { webhookLossRate: 0 }, tailMinutes: 60, echo: (l) => lines.push(l) });
  expect(report.jobsStuck).toBe(3);
  expect(report.jobsUnserved).toBe(0);
  expect(report.jobs).toBe(9);
  expect(report.waitMax).toBeLessThan(300);
  expect(report.baseline.jobsUnserved).toBe(0);
  expect(lines.some((l) => /did not take them: is the pool's runner enabled for project 1/.test(l))).toBe(true);
  expect(formatReport(report)).toMatch(/3 job\(s\) stay pending in GitLab and no runner takes them/);
});

test('duplicated deliveries are dropped by their Idempotency-Key and change nothing that matters', async () => {
  const config = makeConfig([poolInput({ IdleCount: 1, limit: 10 }), poolInput({ name: 'heavy', runUntagged: false, tags: ['heavy'], IdleCount: 0 })]);
  const t = trace(Array.from({ length: 80 }, (_, k) => ({ at: k * 45, project: 1 + (k % 7), tags: k % 3 ? [] : ['heavy'] })));
  const { report } = await simulate({ config, trace: t, seed: 5, autoscaler: { webhookLossRate: 0.1, webhookDuplicateRate: 0.3 } });
  expect(report.autoscaler.webhooksDuplicated).toBeGreaterThan(30);
  expect(report.autoscaler.duplicatesDropped).toBeGreaterThanOrEqual(report.autoscaler.webhooksDuplicated - 2);
  expect(report.jobsUnserved).toBe(0);
  expect(report.limitViolations).toBe(0);
});

test('the busiest minute of GitLab requests stays within a small budget, and the burst is still served', async () => {
  const config = burstConfig(20);
  const { report } = await simulate({ config, trace: burst({ seed: 7, jobs: 400, projects: 100, seconds: 30 }), seed: 7, autoscaler: { webhookLossRate: 0 } });
  expect(report.autoscaler.gitlabRequestsPerMinute).toBe(20);
  expect(report.gitlabApiCallsPerMinuteMax).toBeLessThanOrEqual(20);
  expect(report.gitlabApiCallsPerMinuteMax).toBeGreaterThan(0);
  expect(report.jobsUnserved).toBe(0);
});

test('a project whose listings always fail gets its jobs served by the only pool, and does not hold the others back', async () => {
  const config = makeConfig([poolInput({ IdleCount: 0, limit: 20 })]);
  const t = trace(Array.from({ length: 40 }, (_, k) => ({ at: k * 30, project: 1 + (k % 4) })));
  const lines: string[] = [];
  const { report } = await simulate({ config, trace: t, seed: 2, autoscaler: { webhookLossRate: 0 }, failingProjects: [3], echo: (l) => lines.push(l) });
  expect(report.jobsUnserved).toBe(0);
  expect(lines.some((l) => /GitLab API keeps failing for project 3 .*isolated/.test(l))).toBe(true);
});

describe('held-out workloads', () => {
  test('are made from a seed: the same seed the same trace, and they round-trip through the trace format', () => {
    const a = quietProjects({ seed: 4, projects: 20, days: 2 });
    expect(quietProjects({ seed: 4, projects: 20, days: 2 })).toEqual(a);
    expect(quietProjects({ seed: 5, projects: 20, days: 2 })).not.toEqual(a);
    expect(new Set(a.jobs.map((j) => j.project)).size).toBeGreaterThan(10);
    expect(a.jobs.every((j) => j.pipeline !== undefined)).toBe(true);
    expect(parseTrace(formatTrace(a))).toEqual(a);
    const b = burst({ seed: 1 });
    expect(b.jobs).toHaveLength(2000);
    expect(new Set(b.jobs.map((j) => j.project)).size).toBe(200);
    expect(Math.max(...b.jobs.map((j) => j.at)) - Math.min(...b.jobs.map((j) => j.at))).toBeLessThanOrEqual(60_000);
    expect(b.jobs.filter((j) => j.tags.includes('heavy')).length / 2000).toBeCloseTo(0.5, 1);
    const s = withStuck(b, 20, 1);
    expect(s.jobs.filter((j) => j.stuck)).toHaveLength(20);
    expect(parseTrace(formatTrace(s)).jobs.filter((j) => j.stuck)).toHaveLength(20);
  });
});
