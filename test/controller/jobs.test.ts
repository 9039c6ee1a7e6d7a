import { applyApiJob, applyJobEvents, demandByPool, expireJobs, notTakenAfterMs, observeJob, statusKind, stuckProbeDue, STUCK_PROBE_EVERY_MS, STUCK_PROBE_MS, TOMBSTONE_TTL_MS } from '../../lib/controller/jobs';
import { emptyState } from '../../lib/controller/state';
import { testConfig } from './fixtures';

const T = Date.parse('2025-03-03T10:00:00Z');
const twoPools = testConfig({}, [
  { name: 'docker', tags: ['docker'], runUntagged: true, worker: { instanceTypes: ['m6i.large'], subnets: ['subnet-0a'], ami: 'ami-0123456789abcdef0' } },
  { name: 'arm', tags: ['arm64'], jobTimeout: 600, worker: { instanceTypes: ['m7g.large'], subnets: ['subnet-0a'], ami: 'ami-0123456789abcdef0' } },
]);

test.each([
  ['pending', 'pending'],
  ['preparing', 'inactive'],
  ['running', 'running'],
  ['canceling', 'running'],
  ['waiting_for_callback', 'running'],
  ['success', 'finished'],
  ['failed', 'finished'],
  ['canceled', 'finished'],
  ['skipped', 'finished'],
  ['created', 'inactive'],
  ['waiting_for_resource', 'inactive'],
  ['manual', 'inactive'],
  ['scheduled', 'inactive'],
  ['bogus', undefined],
])('build_status %s -> %s', (status, kind) => expect(statusKind(status)).toBe(kind));

const ev = (status: string, at: number, pool: string | undefined) => ({ status, at, pool, source: 'event' as const });
const api = (status: string, at: number, pool: string | undefined) => ({ status, at, pool, source: 'api' as const });

test('unrouted jobs count for the only pool, and for none when there are several', () => {
  const s = emptyState();
  observeJob(s, 1, 9, ev('pending', T, ''));
  expect(demandByPool(testConfig(), s)).toEqual({ docker: { pending: 1, running: 0 } });
  expect(demandByPool(twoPools, s)).toEqual({ docker: { pending: 0, running: 0 }, arm: { pending: 0, running: 0 } });
});

test('the API routes by tags and may move a requeued job back to pending', () => {
  const s = emptyState();
  observeJob(s, 1, 9, ev('running', T, 'arm'));
  expect(applyApiJob(twoPools, s, 1, 9, { id: 1, projectId: 9, status: 'pending', tags: ['arm64'] }, T + 1000)).toBe('added');
  expect(s.jobs.get(1)).toMatchObject({ status: 'pending', pool: 'arm', since: T + 1000 });
  expect(applyApiJob(twoPools, s, 1, 9, { id: 1, projectId: 9, status: 'pending', tags: ['gpu'] }, T + 2000)).toBe('no-pool');
  expect(s.jobs.has(1)).toBe(false);
});

test('tombstones expire after their TTL; running jobs after the pool jobTimeout', () => {
  const s = emptyState();
  observeJob(s, 1, 9, ev('success', T, 'docker'));
  observeJob(s, 2, 9, ev('running', T, 'arm'));
  observeJob(s, 3, 9, ev('running', T, 'docker'));
  expect(observeJob(s, 1, 9, ev('pending', T + 5000, 'docker'))).toBe('ignored');
  const e = expireJobs(twoPools, s, T + Math.max(TOMBSTONE_TTL_MS, 600_000) + 1);
  expect(e).toEqual({ pending: 0, running: 1, tombstones: 1 });
  expect([...s.jobs.keys()]).toEqual([3]);
});

test('a webhook never revives a tombstone; the API does (a forged `success` must not strand a real pending job)', () => {
  const s = emptyState();
  observeJob(s, 4242, 17, ev('pending', T, ''));
  observeJob(s, 4242, 17, ev('success', T + 1000, undefined)); // forged, with the right secret
  expect(observeJob(s, 4242, 17, ev('pending', T + 2000, ''))).toBe('ignored');
  expect(demandByPool(testConfig(), s).docker.pending).toBe(0);
  expect(applyApiJob(testConfig(), s, 4242, 17, { id: 4242, projectId: 17, status: 'pending', tags: [], queuedAt: T }, T + 60_000)).toBe('added');
  expect(s.jobs.get(4242)).toMatchObject({ status: 'pending', pool: 'docker', since: T });
  expect(demandByPool(testConfig(), s).docker.pending).toBe(1);
});

test('a job stays stuck when re-announced as pending; running ends it; stuck jobs are not demand, refused ones count as last known', () => {
  const s = emptyState();
  s.jobs.set(1, { projectId: 9, pool: 'docker', status: 'stuck', seenAt: T, since: T - 3_600_000 });
  s.jobs.set(2, { projectId: 9, pool: 'docker', status: 'refused', seenAt: T, since: T });
  expect(observeJob(s, 1, 9, api('pending', T + 60_000, 'docker'))).toBe('updated');
  expect(s.jobs.get(1)).toMatchObject({ status: 'stuck', seenAt: T + 60_000, since: T - 3_600_000 });
  observeJob(s, 2, 9, ev('pending', T + 1000, 'docker'));
  expect(s.jobs.get(2)!.status).toBe('refused'); // a webhook does not end a refusal; an API answer does
  const outsideProbe = T + 2 * 3_600_000;
  expect(demandByPool(twoPools, s, outsideProbe).docker).toEqual({ pending: 1, running: 0 });
  observeJob(s, 2, 9, api('pending', T + 2000, 'docker'));
  expect(s.jobs.get(2)!.status).toBe('pending');
  observeJob(s, 1, 9, ev('running', T + 3000, 'docker'));
  expect(s.jobs.get(1)!.status).toBe('running');
});

test('stuck and refused jobs expire like pending ones when nothing confirms them', () => {
  const s = emptyState();
  s.jobs.set(1, { projectId: 9, pool: 'docker', status: 'stuck', seenAt: T });
  s.jobs.set(2, { projectId: 9, pool: 'docker', status: 'refused', seenAt: T });
  expect(expireJobs(twoPools, s, T + twoPools.pendingJobTtl * 1000 + 1)).toEqual({ pending: 2, running: 0, tombstones: 0 });
});

test('one stuck job per pool counts again during its pool\'s probe window: 15 minutes every 4 hours', () => {
  const s = emptyState();
  for (let k = 0; k < 5; k++) s.jobs.set(10 + k, { projectId: 9, pool: 'docker', status: 'stuck', seenAt: T, since: T });
  let counted = 0;
  for (let m = 0; m < 8 * 60; m++) {
    const t = T + m * 60_000;
    expect(stuckProbeDue('docker', t)).toBe(demandByPool(twoPools, s, t).docker.pending === 1);
    counted += demandByPool(twoPools, s, t).docker.pending;
  }
  expect(counted).toBe(2 * (STUCK_PROBE_MS / 60_000)); // two windows in 8 h, one job each
  expect(STUCK_PROBE_EVERY_MS).toBe(4 * 3_600_000);
});

test('the evidence window is five minutes, but never more than half the shortest IdleTime (a minute at least)', () => {
  const pool = (IdleTime: number, autoscaling: unknown[] = []) =>
    testConfig({}, [{ name: 'p', runUntagged: true, IdleTime, autoscaling, worker: { instanceTypes: ['m6i.large'], subnets: ['subnet-0a'], ami: 'ami-0123456789abcdef0' } }]).pools[0];
  expect(notTakenAfterMs(pool(1800))).toBe(5 * 60_000);
  expect(notTakenAfterMs(pool(300))).toBe(150_000);
  expect(notTakenAfterMs(pool(1800, [{ Periods: ['* * * * * sat *'], IdleTime: 60 }]))).toBe(60_000);
  expect(notTakenAfterMs(pool(0))).toBe(5 * 60_000);
});

test('events received in the future count as received now (an entry must not outlive its TTL)', () => {
  const s = emptyState();
  const log = { info() {}, warn() {}, error() {} };
  applyJobEvents(testConfig(), s, [{ jobId: 5, projectId: 5, status: 'pending', receivedAt: T + 10 * 365 * 86_400_000 }], { now: T, rememberProjects: true, log });
  expect(s.jobs.get(5)).toMatchObject({ seenAt: T, since: T });
  expect(s.projects.get(5)).toBe(Math.floor(T / 3_600_000) * 3_600_000);
  expect(expireJobs(testConfig(), s, T + testConfig().pendingJobTtl * 1000 + 1).pending).toBe(1);
});
