import { applyApiJob, demandByPool, expireJobs, observeJob, statusKind, TOMBSTONE_TTL_MS } from '../../lib/controller/jobs';
import { emptyState } from '../../lib/controller/state';
import { testConfig } from './fixtures';

const T = Date.parse('2025-03-03T10:00:00Z');
const twoPools = testConfig({}, [
  { name: 'docker', tags: ['docker'], runUntagged: true, worker: { instanceTypes: ['m6i.large'], subnets: ['subnet-0a'], ami: 'ami-0123456789abcdef0' } },
  { name: 'arm', tags: ['arm64'], jobTimeout: 600, worker: { instanceTypes: ['m7g.large'], subnets: ['subnet-0a'], ami: 'ami-0123456789abcdef0' } },
]);

test.each([
  ['pending', 'pending'],
  ['preparing', 'running'],
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

test('unrouted jobs count for the only pool, and for none when there are several', () => {
  const s = emptyState();
  observeJob(s, 1, 9, 'pending', T, '');
  expect(demandByPool(testConfig(), s)).toEqual({ docker: { pending: 1, running: 0 } });
  expect(demandByPool(twoPools, s)).toEqual({ docker: { pending: 0, running: 0 }, arm: { pending: 0, running: 0 } });
});

test('the API routes by tag_list and may move a requeued job back to pending', () => {
  const s = emptyState();
  observeJob(s, 1, 9, 'running', T, 'arm');
  expect(applyApiJob(twoPools, s, 1, 9, { id: 1, status: 'pending', tagList: ['arm64'] }, T + 1000)).toBe('added');
  expect(s.jobs.get(1)).toMatchObject({ status: 'pending', pool: 'arm' });
  expect(applyApiJob(twoPools, s, 1, 9, { id: 1, status: 'pending', tagList: ['gpu'] }, T + 2000)).toBe('no-pool');
  expect(s.jobs.has(1)).toBe(false);
});

test('tombstones expire after their TTL; running jobs after the pool jobTimeout', () => {
  const s = emptyState();
  observeJob(s, 1, 9, 'success', T, 'docker');
  observeJob(s, 2, 9, 'running', T, 'arm');
  observeJob(s, 3, 9, 'running', T, 'docker');
  expect(observeJob(s, 1, 9, 'pending', T + 5000, 'docker')).toBe('ignored');
  const e = expireJobs(twoPools, s, T + Math.max(TOMBSTONE_TTL_MS, 600_000) + 1);
  expect(e).toEqual({ pending: 0, running: 1, tombstones: 1 });
  expect([...s.jobs.keys()]).toEqual([3]);
});
