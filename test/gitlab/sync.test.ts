/**
 * The GitLab side of the pass (lib/gitlab/sync.ts) through the real reconcile pass: routing in
 * batches, the request budget across passes, lost-success repair under load, poisoned projects,
 * GitLab outages, forged deliveries, discovery of jobs whose every webhook was lost.
 */
import { reconcilePass, type ReconcileDeps } from '../../lib/controller/reconcile';
import { emptyState, MemoryStateStore, type ControllerState } from '../../lib/controller/state';
import type { JobEvent } from '../../lib/controller/ports';
import { ADMIN_CHECK_EVERY_MS, ADMIN_RETRY_MS, GitLabDemand, DISCOVER_EVERY_MS } from '../../lib/gitlab/sync';
import { FakeAdminGitLabApi, FakeGitLabApi, FakeGroupsGitLabApi, gitlabSide } from '../helpers/gitlab';
import { FakeFleet, ManualClock, MemoryLogger, testConfig } from '../controller/fixtures';

const worker = { instanceTypes: ['m6i.large'], subnets: ['subnet-0a'], ami: 'ami-0123456789abcdef0' };
const twoPools = (extra: Record<string, unknown> = {}, limit = 0) =>
  testConfig(extra, [
    { name: 'docker', tags: ['docker'], runUntagged: true, IdleCount: 0, limit, worker },
    { name: 'arm', tags: ['arm64'], IdleCount: 0, limit, worker: { ...worker, instanceTypes: ['m7g.large'] } },
  ]);
const onePool = (extra: Record<string, unknown> = {}, limit = 20) => testConfig(extra, [{ name: 'docker', tags: ['docker'], runUntagged: true, IdleCount: 0, limit, worker }]);

function setup(config = twoPools(), api?: FakeGitLabApi, side?: GitLabDemand) {
  const clock = new ManualClock();
  const fleet = new FakeFleet(clock);
  const log = new MemoryLogger();
  const store = new MemoryStateStore(log);
  const fake = api ?? new FakeGitLabApi(clock);
  const gitlab = side ?? gitlabSide(fake);
  const deps: ReconcileDeps = { config, stage: 'test', fleet, store, clock, log, gitlab };
  let n = 0;
  const pass = (events: JobEvent[] = [], trigger: 'queue' | 'schedule' = 'schedule') => reconcilePass(deps, { events, trigger, passId: `p${++n}` });
  return { clock, fleet, log, store, deps, pass, api: fake, gitlab };
}

const pending = (jobId: number, projectId: number, at: number): JobEvent => ({ jobId, projectId, status: 'pending', receivedAt: at });

async function seed(store: MemoryStateStore, fill: (s: ControllerState) => void) {
  await store.load();
  const s = emptyState();
  fill(s);
  s.epoch = 'e1';
  await store.save(s);
}

describe('routing', () => {
  test('a 2,000-job burst from 200 projects, half for each pool, is routed with 8 requests in the pass that receives it', async () => {
    const { pass, api, clock } = setup();
    const events: JobEvent[] = [];
    for (let k = 0; k < 2000; k++) {
      const projectId = 1000 + (k % 200);
      api.add(k + 1, { projectId, status: 'pending', tags: k % 2 ? ['arm64'] : ['docker'] });
      events.push(pending(k + 1, projectId, clock.now() - 5000));
    }
    const r = await pass(events, 'queue');
    expect(api.requests).toBe(8);
    expect(r.gitlab).toMatchObject({ requests: 8, routed: 2000, byKind: { route: 8, confirm: 0, discover: 0 } });
    expect(r.launched).toEqual({ docker: 1000, arm: 1000 });
  });

  test('a single pool confirms new jobs before they hold capacity; jobs whose tags no pool serves are dropped', async () => {
    const { pass, api, clock, store } = setup(onePool());
    api.add(1, { projectId: 5, status: 'pending', tags: ['docker'] }).add(2, { projectId: 5, status: 'pending', tags: ['gpu'] });
    const r = await pass([pending(1, 5, clock.now() - 5000), pending(2, 5, clock.now() - 5000)], 'queue');
    expect(r.launched).toEqual({ docker: 1 });
    expect([...(await store.load()).jobs.keys()]).toEqual([1]);
  });
});

describe('the request budget', () => {
  test('5,000 pending jobs in 200 projects and passes every 3 s: requests stay within the budget in every minute, and every job stays confirmed', async () => {
    const config = onePool({}, 2000);
    const { pass, api, clock, store, fleet } = setup(config);
    for (let k = 0; k < 2000; k++) fleet.add({ pool: 'docker', state: 'busy', launchedAt: clock.now() - 3_600_000 });
    await seed(store, (s) => {
      for (let k = 0; k < 5000; k++) {
        const projectId = 1000 + (k % 200);
        s.jobs.set(5_000_000 + k, { projectId, pool: 'docker', status: 'pending', seenAt: clock.now() - 10 * 60_000, since: clock.now() - 10 * 60_000 });
        api.add(5_000_000 + k, { projectId, status: 'pending', tags: [] });
      }
    });
    const start = clock.now();
    for (let p = 0; p < 100; p++) {
      const id = 9_000_000 + p;
      api.add(id, { projectId: 1001, status: 'pending', tags: [] });
      await pass([pending(id, 1001, clock.now() - 1000)], 'queue');
      clock.advance(3);
    }
    expect(api.busiestMinute()).toBeLessThanOrEqual(120);
    const s = await store.load();
    const waiting = [...s.jobs.values()].filter((j) => j.status === 'pending');
    expect(waiting).toHaveLength(5100);
    // Confirmed within the last few minutes: none of them is near its pendingJobTtl.
    expect(Math.min(...waiting.map((j) => j.seenAt))).toBeGreaterThanOrEqual(Math.floor(start / 60_000) * 60_000);
  });

  test('lost `success` deliveries are repaired within minutes while 1,000 pending jobs wait: `concurrent` is not blocked', async () => {
    // concurrent 500; 400 jobs finished in GitLab but their success webhook was lost (GitLab
    // disables a failing hook for a while); 1,000 real pending jobs, in one busy project.
    const config = onePool({ concurrent: 500 }, 2000);
    const { pass, api, clock, store } = setup(config);
    await seed(store, (s) => {
      for (let k = 0; k < 400; k++) s.jobs.set(100_000 + k, { projectId: 7, pool: 'docker', status: 'running', seenAt: clock.now() - 20 * 60_000 });
      for (let k = 0; k < 1000; k++) {
        s.jobs.set(200_000 + k, { projectId: 8, pool: 'docker', status: 'pending', seenAt: clock.now() - 5 * 60_000 });
        api.add(200_000 + k, { projectId: 8, status: 'pending' });
      }
    });
    api.visible = new Set([7, 8]);
    let last;
    for (let m = 0; m < 3; m++) {
      last = await pass();
      clock.advance(60);
    }
    const s = await store.load();
    expect([...s.jobs.values()].filter((j) => j.status === 'running')).toHaveLength(0);
    expect([...s.jobs.values()].filter((j) => j.status === 'pending')).toHaveLength(1000);
    const counts = last!.plan.pools[0].counts;
    expect(Math.min(counts.pending, 500 - counts.running)).toBe(500);
  });

  test('fair shares: routing at full demand does not starve the repair of lost `success` deliveries', async () => {
    const config = twoPools();
    const clock0 = new ManualClock();
    const api = new FakeGitLabApi(clock0);
    const { pass, clock, store } = setup(config, api, new GitLabDemand({ api, perMinute: 30, start: 'full' }));
    clock.t = clock0.t;
    Object.assign(clock0, { now: () => clock.now() });
    await seed(store, (s) => {
      for (let k = 0; k < 300; k++) s.jobs.set(100_000 + k, { projectId: 7, pool: 'docker', status: 'running', seenAt: clock.now() - 20 * 60_000 });
    });
    api.visible = new Set([7]);
    let nextProject = 10_000;
    let repairedAfter: number | undefined;
    const byKind = { route: 0, confirm: 0, discover: 0 };
    for (let p = 0; p < 12 * 3; p++) {
      // Each pass brings 100 jobs of 100 projects never seen: routing wants 4 requests a pass, 48 a minute.
      const events: JobEvent[] = [];
      for (let k = 0; k < 100; k++) {
        const projectId = nextProject++;
        api.visible.add(projectId);
        api.add(projectId, { projectId, status: 'pending', tags: ['docker'] });
        events.push(pending(projectId, projectId, clock.now() - 1000));
      }
      const r = await pass(events, 'queue');
      for (const k of ['route', 'confirm', 'discover'] as const) byKind[k] += r.gitlab!.byKind[k];
      const s = await store.load();
      if (repairedAfter === undefined && [...s.jobs.values()].every((j) => j.status !== 'running')) repairedAfter = p * 5;
      clock.advance(5);
    }
    expect(repairedAfter).toBeDefined();
    expect(repairedAfter!).toBeLessThanOrEqual(60); // seconds
    // Routing kept most of the budget (its share and what the others did not need), and the budget held.
    const total = byKind.route + byKind.confirm + byKind.discover;
    expect(byKind.route / total).toBeGreaterThanOrEqual(0.5);
    expect(api.busiestMinute()).toBeLessThanOrEqual(30);
  });

  test('requests the client retried count: a burst whose every request is answered on the third attempt stays within the budget in any 60 s', async () => {
    const config = twoPools();
    const clock0 = new ManualClock();
    const api = new FakeGitLabApi(clock0);
    const { pass, clock } = setup(config, api, new GitLabDemand({ api, perMinute: 120, start: 'full' }));
    clock.t = clock0.t;
    Object.assign(clock0, { now: () => clock.now() });
    let nextProject = 10_000;
    const newJobs = (projects: number) => {
      const events: JobEvent[] = [];
      for (let k = 0; k < projects; k++) {
        const projectId = nextProject++;
        api.add(projectId, { projectId, status: 'pending', tags: ['docker'] });
        events.push(pending(projectId, projectId, clock.now() - 1000));
      }
      return events;
    };
    // A burst takes the full bucket (30 requests); a little routing while it refills...
    await pass(newJobs(750), 'queue');
    for (let p = 0; p < 10; p++) {
      clock.advance(5);
      await pass(newJobs(25), 'queue');
    }
    // ... then a second burst, while GitLab answers each request only on its third attempt (502, 502, 200).
    clock.advance(5);
    api.retriesPerCall = 2;
    const r = await pass(newJobs(750), 'queue');
    expect(r.gitlab!.routed).toBeGreaterThan(0);
    // Before: the second burst sent 30 x 3 = 90 requests on top of the 40 of the minute before.
    expect(api.busiestWindow()).toBeLessThanOrEqual(120);
  });

  test('a cold container starts with an empty bucket and waits a moment for its first routing request', async () => {
    const clock = new ManualClock();
    const api = new FakeGitLabApi(clock);
    api.add(1, { projectId: 3, status: 'pending', tags: ['arm64'] });
    const waits: number[] = [];
    const cold = new GitLabDemand({ api, perMinute: 120, start: 'empty', waitMs: 2000, sleep: async (ms) => void waits.push(ms) });
    const { pass } = setup(twoPools(), api, cold);
    const r = await pass([pending(1, 3, clock.now() - 5000)], 'queue');
    expect(waits).toEqual([667]); // 90 tokens a minute refill a 120-a-minute budget (a quarter is the burst)
    expect(r.launched).toEqual({ arm: 1 });
    // Without the wait, the job waits for the next pass.
    const api2 = new FakeGitLabApi(clock);
    api2.add(1, { projectId: 3, status: 'pending', tags: ['arm64'] });
    const r2 = await setup(twoPools(), api2, new GitLabDemand({ api: api2, perMinute: 120, start: 'empty' })).pass([pending(1, 3, clock.now() - 5000)], 'queue');
    expect(r2.launched).toEqual({});
  });
});

describe('failures', () => {
  const poisoned = async (wholeRequestFails: boolean) => {
    const api = new FakeGitLabApi();
    api.wholeRequestFails = wholeRequestFails;
    const { pass, clock, store, log, gitlab } = setup(twoPools(), api);
    // 500 arm64 job hooks from 50 projects; project 1 fails for ever (a GitLab bug, a project the token may not read).
    const events: JobEvent[] = [];
    for (let k = 0; k < 500; k++) {
      const projectId = 1 + (k % 50);
      api.add(300_000 + k, { projectId, status: 'pending', tags: ['arm64'] });
      events.push(pending(300_000 + k, projectId, clock.now() - 5000));
    }
    api.failProjects.add(1);
    const routed: number[] = [];
    const reports = [];
    for (let p = 0; p < 5; p++) {
      reports.push(await pass(p === 0 ? events : [], p === 0 ? 'queue' : 'schedule'));
      routed.push([...(await store.load()).jobs.values()].filter((j) => j.pool === 'arm').length);
      clock.advance(60);
    }
    return { routed, reports, log, api, gitlab, store, clock, pass };
  };

  test('a project that always fails is isolated after a few tries, counted and logged, and never blocks the others', async () => {
    const { routed, reports, api, gitlab, store, clock, pass } = await poisoned(false);
    expect(routed[0]).toBe(490); // everything else in the first pass
    const isolation = reports.flatMap((r) => r.decisions).find((d) => /isolated/.test(d));
    expect(isolation).toMatch(/GitLab API keeps failing for project 1 \(GitLab GraphQL, project 1: Internal server error\): isolated for 10 min, its 10 waiting job\(s\) are not confirmed meanwhile \(they count as last known\)/);
    expect(reports[4].heldBack).toEqual({ stuck: 0, refused: 10 });
    expect(reports[4].gitlab!.isolated).toBe(1);
    expect(gitlab.isolated(clock.now())).toEqual(['p:1']);
    // Isolated: not asked again until the isolation ends.
    const asked = api.calls.filter((c) => c.projects.includes(1)).length;
    await pass();
    expect(api.calls.filter((c) => c.projects.includes(1)).length).toBe(asked);
    // GitLab answers again: after the isolation its jobs are pending again.
    api.failProjects.clear();
    clock.advance(11 * 60);
    await pass();
    const s = await store.load();
    expect([...s.jobs.values()].filter((j) => j.pool === 'arm' && j.status === 'pending')).toHaveLength(500);
  });

  test('a project that fails whole requests is pinned down by smaller batches, then alone', async () => {
    const { routed, reports, api } = await poisoned(true);
    expect(routed[0]).toBe(250); // the batch without it
    expect(routed[1]).toBeGreaterThanOrEqual(420); // quarters, three of four answer
    expect(routed[routed.length - 1]).toBe(490);
    expect(reports.flatMap((r) => r.decisions).some((d) => /project 1 .*isolated/.test(d))).toBe(true);
    expect(api.requests).toBeLessThan(30); // discovery of the 49 healthy projects included
  });

  test('when GitLab is down, nobody is blamed: no isolation, a warning, and few requests a pass', async () => {
    const api = new FakeGitLabApi();
    const { pass, clock } = setup(twoPools(), api);
    const events = Array.from({ length: 300 }, (_, k) => pending(k + 1, k + 1, clock.now() - 5000));
    for (let k = 0; k < 300; k++) api.add(k + 1, { projectId: k + 1, status: 'pending', tags: ['docker'] });
    api.down = true;
    let r;
    for (let p = 0; p < 6; p++) {
      const before = api.requests;
      r = await pass(p === 0 ? events : []);
      expect(api.requests - before).toBeLessThanOrEqual(8); // two rounds of four, then it waits
      clock.advance(60);
    }
    expect(r!.gitlab).toMatchObject({ isolated: 0, unavailable: expect.stringMatching(/ECONNREFUSED/) });
    expect(r!.decisions.join('\n')).toMatch(/GitLab API unavailable .*wait for the next pass/);
    api.down = false;
    const back = await pass();
    expect(back.launched).toEqual({ docker: 300 });
  });
});

test('a 429 with a long Retry-After silences every request until then, across passes (before: up to 8 a pass into the limit)', async () => {
  const { pass, clock, api } = setup(twoPools());
  const events = Array.from({ length: 300 }, (_, k) => pending(k + 1, k + 1, clock.now() - 5000));
  for (let k = 0; k < 300; k++) api.add(k + 1, { projectId: k + 1, status: 'pending', tags: ['docker'] });
  api.rateLimitMs = 120_000; // the token's user is over GitLab's limit (other automation shares it)
  const first = await pass(events, 'queue');
  expect(api.requests).toBe(4); // one round, then silence
  expect(first.gitlab).toMatchObject({ unavailable: expect.stringMatching(/429/) });
  api.rateLimitMs = undefined;
  for (let p = 1; p <= 5; p++) {
    clock.advance(20);
    const r = await pass();
    expect(r.decisions.join('\n')).toMatch(/rate limited by GitLab \(HTTP 429\) until .*no requests until then/);
    expect(r.gitlab).toMatchObject({ requests: 0 });
  }
  expect(api.requests).toBe(4);
  clock.advance(20); // the Retry-After is over
  const back = await pass();
  expect(back.launched).toEqual({ docker: 300 });
});

describe('forged deliveries (with the right secret)', () => {
  test('1,000 forged pending events for a project that does not exist launch nothing and are gone after the first pass', async () => {
    const { pass, clock, store, fleet } = setup(onePool());
    const r = await pass(Array.from({ length: 1000 }, (_, k) => pending(1e12 + k, 999_999_999, clock.now() - 3000)), 'queue');
    expect(r.launched).toEqual({});
    expect(fleet.workers.size).toBe(0);
    expect((await store.load()).jobs.size).toBe(0);
    expect(r.decisions.join('\n')).toMatch(/GitLab project\(s\) 999999999 \(1000 job\(s\)\) not visible to the API token/);
  });

  test('5,000 forged pending events from 5,000 projects, more than one pass can ask about: one pool launches only for the real job', async () => {
    // The webhook secret leaked: every event names another project, so the routing budget (30
    // requests, 750 projects) cannot confirm them all in one pass. Before, one pool counted every
    // unconfirmed job meanwhile and launched its `limit` (200 workers) in the first pass.
    const { pass, clock, api, fleet } = setup(onePool({}, 200));
    api.visible = new Set([5]);
    api.add(42, { projectId: 5, status: 'pending', tags: [] });
    const t = clock.now() - 2000;
    const forged = Array.from({ length: 5000 }, (_, k) => pending(1e12 + k, 5_000_000 + k, t));
    const r = await pass([...forged, pending(42, 5, t)], 'queue');
    expect(r.launched).toEqual({ docker: 1 });
    for (let p = 0; p < 10; p++) {
      clock.advance(60);
      await pass();
    }
    expect(fleet.workers.size).toBe(1);
  });

  test('projects that are not there for the token are forgotten: discovery does not list made-up projects for a week', async () => {
    const { pass, clock, api, store } = setup(onePool({}, 200));
    api.visible = new Set([5]);
    const forged = Array.from({ length: 5000 }, (_, k) => pending(1e12 + k, 5_000_000 + k, clock.now() - 2000));
    await pass(forged, 'queue');
    for (let p = 0; p < 10; p++) {
      clock.advance(60);
      await pass();
    }
    await pass([{ jobId: 41, projectId: 5, status: 'success', receivedAt: clock.now() - 1000 }], 'queue'); // a real project
    const known = [...(await store.load()).projects.keys()];
    expect(known).toEqual([5]);
    // Discovery lists what is real: one request a minute, not 40.
    const before = api.requests;
    for (let p = 0; p < 5; p++) {
      clock.advance(60);
      await pass();
    }
    expect(api.requests - before).toBeLessThanOrEqual(5);
  });

  test('one pool: jobs of events count at once when GitLab cannot be asked (down), as without a token', async () => {
    const { pass, clock, api } = setup(onePool());
    api.down = true;
    const r = await pass([pending(7, 3, clock.now() - 2000)], 'queue');
    expect(r.gitlab?.unavailable).toBeDefined();
    expect(r.launched).toEqual({ docker: 1 });
  });

  test('forged running events do not hold `concurrent`, forged ids in a real project are dropped, and a forged `success` cannot strand a real pending job', async () => {
    const { pass, clock, store, api } = setup(onePool({ concurrent: 10 }));
    api.add(4242, { projectId: 17, status: 'pending', tags: [] });
    const t = clock.now() - 3000;
    const running = Array.from({ length: 1000 }, (_, k): JobEvent => ({ jobId: 1e12 + k, projectId: 999_999_999, status: 'running', receivedAt: t }));
    const fakeIds = Array.from({ length: 50 }, (_, k) => pending(5e11 + k, 17, t));
    const r1 = await pass([...running, ...fakeIds, pending(4242, 17, t)], 'queue');
    expect(r1.launched).toEqual({ docker: 1 });
    expect([...(await store.load()).jobs.keys()]).toEqual([4242]);
    // A forged success for the real job, then its (stale) pending redelivery: the next listing repairs it.
    clock.advance(10);
    await pass([{ jobId: 4242, projectId: 17, status: 'success', receivedAt: clock.now() - 1000 }, pending(4242, 17, clock.now() - 500)], 'queue');
    expect((await store.load()).jobs.get(4242)?.status).toBe('finished');
    clock.advance(DISCOVER_EVERY_MS / 1000);
    await pass();
    expect((await store.load()).jobs.get(4242)).toMatchObject({ status: 'pending', pool: 'docker' });
  });
});

test('100,000 forged `success` events for jobs nobody knows leave nothing in the state', async () => {
  const { pass, clock, store } = setup(onePool());
  const r = await pass(Array.from({ length: 100_000 }, (_, k): JobEvent => ({ jobId: 5_000_000 + k, projectId: 17, status: 'success', receivedAt: clock.now() - 1000 })), 'queue');
  expect(r.stateWrites).toBeLessThanOrEqual(2); // the project list and last-pass, no job shard
  expect((await store.load()).jobs.size).toBe(0);
});

describe('discovery of jobs whose every delivery was lost', () => {
  test('in 300 projects seen in events: each is listed within a minute, and the job gets capacity', async () => {
    const { pass, clock, api, store } = setup(twoPools());
    // 300 projects each sent one success in the last hours; then job 77 of project 250 became pending and all its hooks were lost.
    const seen = Array.from({ length: 300 }, (_, k): JobEvent => ({ jobId: 10_000 + k, projectId: 1 + k, status: 'success', receivedAt: clock.now() - 3_600_000 }));
    for (const e of seen) api.add(e.jobId, { projectId: e.projectId, status: 'success' }); // GitLab has these projects (and their finished jobs)
    await pass(seen, 'queue');
    clock.advance(120);
    api.add(77, { projectId: 250, status: 'pending', tags: ['arm64'], queuedAt: clock.now() - 1000 });
    let found: number | undefined;
    for (let p = 0; p < 12 && found === undefined; p++) {
      const r = await pass();
      if (r.launched.arm) found = p * 10;
      clock.advance(10);
    }
    expect(found).toBeDefined();
    expect(found!).toBeLessThanOrEqual(60);
    expect((await store.load()).jobs.get(77)).toMatchObject({ pool: 'arm', status: 'pending' });
  });

  test('in projects named in gitlab.watch, and in the projects of watched groups, never seen in an event', async () => {
    const api = new FakeGroupsGitLabApi();
    api.groups.set('acme/platform', [501, 502]);
    api.add(1, { projectId: 42, status: 'pending', tags: ['docker'] }).add(2, { projectId: 502, status: 'pending', tags: ['arm64'] });
    const { pass } = setup(twoPools({ gitlab: { url: 'https://gitlab.example.com', watch: { projects: [42], groups: ['acme/platform'] } } }), api);
    const r1 = await pass();
    expect(r1.launched).toEqual({ docker: 1 }); // the group's members are known once its first page is read
    const r2 = await pass();
    expect(r2.launched).toEqual({ arm: 1 });
  });

  test('with an administrator token, the instance-wide listing finds them in any project', async () => {
    const api = new FakeAdminGitLabApi();
    api.add(9, { projectId: 123_456, status: 'pending', tags: ['docker'] });
    const { pass } = setup(twoPools(), api);
    await pass(); // learns the token is an administrator's
    const r = await pass();
    expect(r.launched).toEqual({ docker: 1 });
    expect(api.calls.some((c) => c.kind === 'instance')).toBe(true);
    expect(api.calls.filter((c) => c.kind === 'activeJobs')).toHaveLength(0);
  });

  test('an admin question that fails (network, GitLab down) is asked again within minutes, not after ADMIN_CHECK_EVERY_MS', async () => {
    const api = new FakeAdminGitLabApi();
    let failures = 1;
    const isAdmin = api.isAdmin.bind(api);
    api.isAdmin = async () => {
      if (failures-- > 0) throw new Error('connect ECONNRESET');
      return isAdmin();
    };
    api.add(9, { projectId: 123_456, status: 'pending', tags: ['docker'] });
    const { pass, clock } = setup(twoPools(), api);
    await pass(); // the question fails: project listings meanwhile
    expect(api.calls.some((c) => c.kind === 'instance')).toBe(false);
    clock.advance(ADMIN_RETRY_MS / 1000);
    await pass(); // asked again: an administrator's token
    const r = await pass();
    expect(r.launched).toEqual({ docker: 1 });
    expect(api.calls.some((c) => c.kind === 'instance')).toBe(true);
    expect(ADMIN_RETRY_MS).toBeLessThan(ADMIN_CHECK_EVERY_MS);
  });

  test('with an administrator token, a young pending job of a project we know nothing of is not launched for: it is most likely another runner job', async () => {
    // Other runners' jobs are pending a few seconds before they are taken; each sweep saw some.
    // Before: each launched a worker that idled for IdleTime, and the job, confirmed running
    // elsewhere, counted against `concurrent`.
    const api = new FakeAdminGitLabApi();
    const { pass, clock } = setup(twoPools({ concurrent: 4 }), api);
    api.add(1, { projectId: 42, status: 'success' });
    await pass([{ jobId: 1, projectId: 42, status: 'success', receivedAt: clock.now() }], 'queue'); // project 42 is ours; learns the admin token
    clock.advance(60);
    api.add(7, { projectId: 900, status: 'pending', tags: ['docker'], queuedAt: clock.now() - 5000 }); // another team's project
    api.add(8, { projectId: 42, status: 'pending', tags: ['arm64'], queuedAt: clock.now() - 5000 }); // ours, its delivery still queued
    const r1 = await pass();
    expect(r1.launched).toEqual({ arm: 1 });
    // Another runner takes job 7: it is never ours. Had it stayed pending 30 s, its hooks were lost (or it is ours to serve).
    api.add(7, { projectId: 900, status: 'running', tags: ['docker'] });
    api.add(9, { projectId: 901, status: 'pending', tags: ['docker'], queuedAt: clock.now() - 5000 });
    clock.advance(60);
    const r2 = await pass();
    expect(r2.launched).toEqual({ docker: 1 }); // job 9 waited 65 s
    expect(r2.plan.pools.find((p) => p.pool === 'docker')!.counts).toMatchObject({ pending: 1, running: 0 });
  });

  test('with an administrator token on a busy instance, a lost job deep in the listing is found within two passes', async () => {
    // 1,500 jobs of other runners wait (tags no pool serves); ours is old (its pipeline was created
    // long ago, its stage just started), so it comes last in the newest-first listing.
    const api = new FakeAdminGitLabApi();
    for (let k = 0; k < 1500; k++) api.add(100_000 + k, { projectId: 500 + (k % 60), status: 'pending', tags: ['windows'] });
    api.add(9, { projectId: 123_456, status: 'pending', tags: ['docker'] });
    const { pass, clock } = setup(twoPools(), api);
    await pass(); // learns the token is an administrator's
    let launchedAfter: number | undefined;
    for (let p = 1; p <= 16 && launchedAfter === undefined; p++) {
      clock.advance(60);
      if ((await pass()).launched.docker) launchedAfter = p;
    }
    // Before: one page of 100 a pass, 16 passes.
    expect(launchedAfter).toBeLessThanOrEqual(2);
  });
});

test('a project too busy for one listing is read a page at a time; then the jobs it no longer shows are dropped', async () => {
  const { pass, api, clock, store } = setup(twoPools());
  await seed(store, (s) => {
    for (let k = 0; k < 250; k++) s.jobs.set(1000 + k, { projectId: 8, pool: 'docker', status: 'pending', seenAt: clock.now() - 5 * 60_000 });
  });
  for (let k = 0; k < 240; k++) api.add(1000 + k, { projectId: 8, status: 'pending', tags: ['docker'] }); // 10 of them ended, unannounced
  await pass(); // a cut-short listing: a page scan starts
  await pass(); // pages 1-3
  const s = await store.load();
  expect([...s.jobs.values()].filter((j) => j.projectId === 8)).toHaveLength(240);
  expect(api.calls.filter((c) => c.kind === 'page')).toHaveLength(3);
});

test('a duplicate delivery in a later batch neither launches nor counts twice', async () => {
  const { pass, api, clock } = setup(twoPools());
  api.add(5, { projectId: 3, status: 'pending', tags: ['arm64'] });
  const r1 = await pass([pending(5, 3, clock.now() - 2000)], 'queue');
  clock.advance(20);
  const r2 = await pass([pending(5, 3, clock.now() - 20_000)], 'queue');
  expect(r1.launched).toEqual({ arm: 1 });
  expect(r2.launched).toEqual({});
  expect(r2.plan.pools.find((p) => p.pool === 'arm')!.counts.pending).toBe(1);
});
