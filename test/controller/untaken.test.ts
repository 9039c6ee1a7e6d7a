/**
 * Demand no runner will take is not demand: pending jobs that idle workers of their pool do not
 * take (the runner is paused in GitLab, not enabled for the project, protected) stop holding
 * workers, and the decisions and `status` say which jobs and why.
 */
import { reconcilePass, type ReconcileDeps } from '../../lib/controller/reconcile';
import { holdBackUntakenJobs } from '../../lib/controller/jobs';
import { emptyState, MemoryStateStore } from '../../lib/controller/state';
import type { JobEvent } from '../../lib/controller/ports';
import { buildStatus, formatStatus } from '../../lib/status';
import { FakeGitLabApi, gitlabSide } from '../helpers/gitlab';
import { FakeFleet, ManualClock, MemoryLogger, testConfig } from './fixtures';

const worker = { instanceTypes: ['m6i.large'], subnets: ['subnet-0a'], ami: 'ami-0123456789abcdef0' };

function setup(pool: Record<string, unknown>) {
  const config = testConfig({}, [{ name: 'docker', runUntagged: true, worker, ...pool }]);
  const clock = new ManualClock();
  const log = new MemoryLogger();
  const store = new MemoryStateStore(log);
  const fleet = new FakeFleet(clock);
  const api = new FakeGitLabApi(clock);
  const deps: ReconcileDeps = { config, stage: 'test', fleet, store, clock, log, gitlab: gitlabSide(api) };
  let n = 0;
  const pass = (events: JobEvent[] = []) => reconcilePass(deps, { events, trigger: events.length ? 'queue' : 'schedule', passId: `p${++n}` });
  return { config, clock, log, store, fleet, api, pass };
}

test('20 pending jobs no worker takes: after five minutes they stop holding the 20 idle workers, which leave after IdleTime', async () => {
  const { clock, fleet, api, pass, store, config } = setup({ IdleCount: 1, IdleTime: 600, limit: 20 });
  // GitLab keeps them pending for ever: the pool's runner is paused.
  for (let k = 0; k < 20; k++) api.add(500 + k, { projectId: 3, status: 'pending', tags: [] });
  await pass(Array.from({ length: 20 }, (_, k): JobEvent => ({ jobId: 500 + k, projectId: 3, status: 'pending', receivedAt: clock.now() - 2000 })));
  expect(fleet.workers.size).toBe(20);
  clock.advance(120);
  for (const w of fleet.workers.values()) Object.assign(w, { state: 'idle', reported: 'idle', readyAt: clock.now(), idleSince: clock.now() });
  const decisions: string[] = [];
  let retired = 0;
  for (let m = 0; m < 180; m++) {
    const r = await pass();
    decisions.push(...r.decisions);
    retired += r.retired.length;
    clock.advance(60);
  }
  const idle = [...fleet.workers.values()].filter((w) => w.state === 'idle').length;
  expect({ afterThreeHours: { idleWorkers: idle, retired } }).toEqual({ afterThreeHours: { idleWorkers: 1, retired: 19 } });
  expect(decisions.find((d) => /did not take/.test(d))).toMatch(
    /^pool docker: 20 jobs \(500, 501, 502, 503, 504, …\) of project 3 pending [78] min, 20 idle worker\(s\) did not take them: is the pool's runner enabled for project 3, not paused, not limited to protected branches, with tags \[\] and run-untagged\? Not counted as demand any more$/,
  );
  // `status` lists them with the reason.
  const report = buildStatus(config, 'test', new Date(clock.now()), await fleet.discover(), await store.load());
  expect(report.heldBack).toHaveLength(20);
  expect(report.heldBack[0]).toMatchObject({ projectId: 3, pool: 'docker', status: 'stuck' });
  expect(formatStatus(report)).toMatch(/20 job\(s\) held back \(stuck: not counted as demand; refused: not confirmed\):\n {2}job 500 \(project 3\) stuck, waiting 3h0\dm: idle workers of pool docker did not take it/);
});

test('jobs that idle workers take are never held back', async () => {
  const { clock, fleet, api, pass } = setup({ IdleCount: 2, IdleTime: 600 });
  api.add(1, { projectId: 3, status: 'pending', tags: [] });
  await pass([{ jobId: 1, projectId: 3, status: 'pending', receivedAt: clock.now() - 1000 }]);
  clock.advance(60);
  for (const w of fleet.workers.values()) Object.assign(w, { state: 'idle', reported: 'idle', readyAt: clock.now(), idleSince: clock.now() });
  // A worker took it within seconds (its `running` delivery arrives): nothing to hold back.
  api.jobs.get(1)!.status = 'running';
  const r = await pass([{ jobId: 1, projectId: 3, status: 'running', receivedAt: clock.now() }]);
  clock.advance(600);
  const later = await pass();
  expect([...r.decisions, ...later.decisions].some((d) => /did not take/.test(d))).toBe(false);
  expect(later.heldBack).toEqual({ stuck: 0, refused: 0 });
});

test('in a pool whose workers leave after IdleTime (IdleCount 0), a stuck job does not relaunch workers over and over', async () => {
  const { clock, fleet, api, pass } = setup({ IdleCount: 0, IdleTime: 300, limit: 10 });
  api.add(7, { projectId: 3, status: 'pending', tags: [] });
  let launched = 0;
  let t = 0;
  const ev: JobEvent[] = [{ jobId: 7, projectId: 3, status: 'pending', receivedAt: clock.now() - 1000 }];
  for (let m = 0; m < 6 * 60; m++) {
    const r = await pass(m === 0 ? ev : []);
    launched += Object.values(r.launched).reduce((a, b) => a + b, 0);
    clock.advance(60);
    t += 60;
    // Workers boot in a minute, then idle; the runner's --wait-timeout (IdleTime) ends them after 300 s.
    for (const w of [...fleet.workers.values()]) {
      if (w.state === 'booting' && clock.now() - w.launchedAt >= 60_000) Object.assign(w, { state: 'idle', reported: 'idle', readyAt: clock.now(), idleSince: clock.now() });
      if (w.state === 'idle' && clock.now() - (w.idleSince ?? 0) >= 300_000) fleet.workers.delete(w.id);
    }
  }
  // One worker for the job, then one per 4-hour probe window: not one every 6 minutes.
  expect(launched).toBeLessThanOrEqual(3);
});

test('a worker that has just become ready is no witness, however long ago it was launched', () => {
  // A slow boot: launched 10 minutes ago, ready 5 s ago, no idle report yet. It has not asked
  // GitLab for a job long enough to say the job is one no runner takes.
  const config = testConfig({}, [{ name: 'docker', runUntagged: true, IdleTime: 120, worker }]);
  const state = emptyState();
  const now = Date.parse('2025-03-03T10:00:00Z');
  state.jobs.set(1, { projectId: 3, pool: 'docker', status: 'pending', seenAt: now, since: now - 10 * 60_000 });
  const fresh = { id: 'i-1', pool: 'docker', state: 'idle' as const, launchedAt: now - 10 * 60_000, readyAt: now - 5000, builds: 0 };
  expect(holdBackUntakenJobs(config, state, [fresh], now)).toEqual([]);
  expect(state.jobs.get(1)?.status).toBe('pending');
  // Ready for longer than the pool's wait (half its IdleTime, at least a minute): a witness.
  expect(holdBackUntakenJobs(config, state, [{ ...fresh, readyAt: now - 61_000 }], now)).toHaveLength(1);
});

test('a worker whose busy report was lost is no witness: a running job of the pool that no busy worker accounts for runs on it', () => {
  // Quiet-week bench, seed 101: the worker took a job, its busy report was lost (the next report
  // is the heartbeat, 10 minutes on), and a job pending behind it was held back as one no runner
  // takes; it waited 432 s, until a worker of the pool ended its job.
  const config = testConfig({}, [{ name: 'docker', runUntagged: true, IdleTime: 300, worker }]);
  const state = emptyState();
  const now = Date.parse('2025-03-04T07:04:37Z');
  state.jobs.set(1, { projectId: 3, pool: 'docker', status: 'pending', seenAt: now - 60_000, since: now - 163_000 });
  state.jobs.set(2, { projectId: 3, pool: 'docker', status: 'running', seenAt: now - 60_000 }); // on the "idle" worker
  state.jobs.set(3, { projectId: 3, pool: 'docker', status: 'running', seenAt: now - 60_000 });
  const looksIdle = { id: 'i-1', pool: 'docker', state: 'idle' as const, launchedAt: now - 50 * 60_000, readyAt: now - 49 * 60_000, idleSince: now - 157_000, builds: 3 };
  const busy = { id: 'i-2', pool: 'docker', state: 'busy' as const, launchedAt: now - 150_000, readyAt: now - 120_000, builds: 0 };
  expect(holdBackUntakenJobs(config, state, [looksIdle, busy], now)).toEqual([]);
  expect(state.jobs.get(1)?.status).toBe('pending');
  // When busy workers account for every running job, an idle worker is a witness again.
  state.jobs.delete(2);
  expect(holdBackUntakenJobs(config, state, [looksIdle, busy], now)).toHaveLength(1);
});
