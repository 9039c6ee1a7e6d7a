/**
 * Never terminate a worker that may have taken a job since the snapshot (issue 9; reproduction:
 * ../shared/repro/kill-races.test.ts). The real Ec2Fleet and reconcilePass run over an in-memory
 * EC2 behind the SDK (test/helpers/fake-aws.ts). Each instance has a runner whose truth the test
 * owns; the runner takes a job in the middle of the pass — after discovery, before the actions —
 * exactly when an idle runner polling GitLab can. "Killed" means TerminateInstances reached an
 * instance whose runner was running a job at that moment.
 *
 * Every path that ends an instance is checked: orphans (idle and draining), boot timeouts,
 * impaired workers, a changed template, a pool over its limit, IdleTime, interruptions, ignored
 * retirements, and passes that die half-way.
 */
import { EC2Client } from '@aws-sdk/client-ec2';
import { Ec2Fleet } from '../../lib/aws/ec2-fleet';
import { FENCE, REPORTING } from '../../lib/planner';
import { reconcilePass, type PassReport } from '../../lib/controller/reconcile';
import { decodeReport, encodeReport, ReportMemory, type WorkerReport } from '../../lib/controller/reports';
import { MemoryStateStore } from '../../lib/controller/state';
import { TAGS } from '../../lib/controller/tags';
import type { PoolHold, ReportedState } from '../../lib/model';
import type { JobEvent } from '../../lib/controller/ports';
import { FakeAws, type FakeInstance } from '../helpers/fake-aws';
import { ManualClock, MemoryLogger, testConfig } from './fixtures';

const ROLE = 'AROAWORKERROLE0000001';
const noWait = { sleep: async () => {}, random: () => 0 };

interface Runner {
  /** What the runner really does (the test's truth, which the controller never sees directly). */
  job: boolean;
  seq: number;
  builds: number;
}

/** One pool that keeps no idle worker (so the pass launches nothing the test did not ask for). */
const onePool = (extra: Record<string, unknown> = {}, worker: Record<string, unknown> = {}) =>
  testConfig({}, [{ name: 'docker', runUntagged: true, IdleCount: 0, IdleTime: 600, ...extra, worker: { instanceTypes: ['m6i.large'], subnets: ['subnet-0a'], ami: 'ami-0123456789abcdef0', ...worker } }]);

function world(config = onePool()) {
  const aws = new FakeAws();
  const clock = new ManualClock();
  const log = new MemoryLogger();
  const store = new MemoryStateStore(log);
  const memory = new ReportMemory();
  const fleet = new Ec2Fleet({ ec2: new EC2Client({ region: 'eu-west-1' }), config, stage: 'test', log, now: () => clock.now(), retryEnv: noWait });
  const runners = new Map<string, Runner>();
  const killedWhileBusy: string[] = [];
  let midPass: (() => void) | undefined;
  let discovered = false;
  let failReportTags = false;
  aws.beforeCall = (api, input) => {
    if (failReportTags && api === 'CreateTags' && (input.Tags ?? []).some((t: { Key: string }) => t.Key === TAGS.state))
      throw Object.assign(new Error('Request limit exceeded.'), { name: 'RequestLimitExceeded' });
    if (api === 'DescribeInstances') discovered = true;
    else if (discovered && midPass) {
      // The first call after discovery: here the runner takes a job.
      const f = midPass;
      midPass = undefined;
      f();
    }
    if (api === 'TerminateInstances') for (const id of input.InstanceIds ?? []) if (runners.get(id)?.job) killedWhileBusy.push(id);
  };
  /** The worker-report queue: a report received by a pass stays invisible for the visibility timeout unless deleted. */
  let queue: { r: WorkerReport; visibleAt: number }[] = [];

  /** An instance of this deployment, as the controller left it (tags), with a runner. */
  const add = (pool: string, o: { launchedAgo?: number; reported?: ReportedState; job?: boolean; impaired?: boolean; templateVersion?: string; retireAgo?: number; stoppedAgo?: number; tags?: Record<string, string> } = {}): FakeInstance => {
    const now = clock.now();
    const tags: Record<string, string> = {
      [TAGS.deployment]: 'ci',
      [TAGS.stage]: 'test',
      [TAGS.pool]: pool,
      [TAGS.pass]: 'e0-g0',
      [TAGS.templateVersion]: o.templateVersion ?? '1',
      [TAGS.launchedAt]: new Date(now - (o.launchedAgo ?? 3600) * 1000).toISOString(),
    };
    if (o.reported) {
      tags[TAGS.ready] = new Date(now - (o.launchedAgo ?? 3600) * 1000 + 60_000).toISOString();
      tags[TAGS.state] = o.reported;
      if (o.reported === 'idle') tags[TAGS.idleSince] = new Date(now - 60_000).toISOString();
      if (o.reported === 'stopped') tags[TAGS.stoppedAt] = new Date(now - (o.stoppedAgo ?? 0) * 1000).toISOString();
    }
    if (o.retireAgo !== undefined) tags[TAGS.retire] = new Date(now - o.retireAgo * 1000).toISOString();
    Object.assign(tags, o.tags);
    const i = aws.add(tags, { impaired: o.impaired });
    runners.set(i.id, { job: o.job ?? o.reported === 'busy', seq: 1, builds: 0 });
    return i;
  };

  /** The worker's report of its runner's state (what lib/worker/script.ts sends), queued for the next pass. */
  const report = (i: FakeInstance, state: ReportedState, extra: Partial<WorkerReport> = {}) => {
    const r = runners.get(i.id)!;
    r.seq++;
    const body = encodeReport({ instanceId: i.id, seq: r.seq, state, builds: r.builds, at: clock.now(), readyAt: clock.now() - 60_000, idleSince: state === 'idle' ? clock.now() : undefined, ...extra });
    queue.push({ r: decodeReport(`m-${i.id}-${r.seq}`, body, { sender: `${ROLE}:${i.id}`, sentAt: clock.now(), receiveCount: 1 }), visibleAt: clock.now() });
  };

  /** The runner takes a job in the middle of the next pass (between discovery and the actions). */
  const takesJobMidPass = (i: FakeInstance) => {
    discovered = false;
    midPass = () => {
      const r = runners.get(i.id)!;
      r.job = true;
      r.builds++;
    };
  };

  /**
   * One pass. `reportCap`: the pass takes at most this many reports and tells the controller
   * whether it took its cap ('behind'), as the invocation loop does; newest first, since a standard
   * queue promises no order and this is the worst one for a report that waits behind others.
   */
  const pass = async (opts: { crashOnSave?: boolean; failReportTags?: boolean; reportCap?: number; events?: JobEvent[]; holds?: Record<string, PoolHold> } = {}): Promise<PassReport> => {
    discovered = false;
    failReportTags = opts.failReportTags ?? false;
    const now = clock.now();
    const cap = opts.reportCap ?? Infinity;
    const taken: typeof queue = [];
    if (cap !== Infinity) queue.reverse();
    queue = queue.filter((q) => (q.visibleAt <= now && taken.length < cap ? (taken.push(q), false) : true));
    if (cap !== Infinity) queue.reverse();
    const hide = (rs: WorkerReport[]) => queue.push(...rs.map((r) => ({ r, visibleAt: now + REPORTING.visibilitySeconds * 1000 })));
    const reports = taken.map((q) => q.r);
    const real = store.save.bind(store);
    if (opts.crashOnSave) store.save = async () => Promise.reject(new Error('SSM unavailable'));
    try {
      const reportQueue = opts.reportCap === undefined ? undefined : taken.length >= cap ? ('behind' as const) : ('drained' as const);
      const holds = opts.holds;
      const r = await reconcilePass({ config, stage: 'test', fleet, store, clock, log, reportMemory: memory, workerRoleIds: [ROLE], ...(holds ? { holds: { read: async () => holds } } : {}) }, { events: opts.events ?? [], reports, trigger: 'schedule', reportQueue });
      // What the loop does: settled reports are deleted; the others come back after the visibility timeout.
      hide(reports.filter((x) => !r.reports.settled.includes(x.id)));
      return r;
    } catch (e) {
      hide(reports); // a pass that dies deletes nothing
      throw e;
    } finally {
      store.save = real;
      failReportTags = false;
    }
  };
  const tag = (i: FakeInstance, key: string) => i.tags.get(key);
  return { aws, clock, log, add, report, takesJobMidPass, pass, runners, killedWhileBusy, tag, restore: () => aws.restore() };
}

type World = ReturnType<typeof world>;
let w: World;
afterEach(() => w?.restore());

describe('no TerminateInstances for an instance that may have taken a job since the snapshot', () => {
  test('an idle orphan whose runner takes a job mid-pass is asked to retire; terminated only after it said its runner stopped', async () => {
    w = world();
    const orphan = w.add('old', { reported: 'idle' }); // pool "old" left the config; its runner still polls GitLab
    w.takesJobMidPass(orphan);
    const r1 = await w.pass();
    expect(r1.terminated).toEqual([]);
    expect(r1.retired.map((x) => x.id)).toEqual([orphan.id]);
    expect(w.tag(orphan, TAGS.retire)).toBeDefined();
    // The job runs on; the worker (SIGQUIT) finishes it, draining.
    w.report(orphan, 'draining', { retireSeen: w.tag(orphan, TAGS.retire) });
    w.clock.advance(1800);
    expect((await w.pass()).terminated).toEqual([]);
    // Job done, runner gone: the worker reports stopped and powers off; if it does not, the fence allows it.
    w.runners.get(orphan.id)!.job = false;
    w.report(orphan, 'stopped');
    expect((await w.pass()).terminated).toEqual([]);
    w.clock.advance(FENCE.stoppedGrace + 60);
    const r4 = await w.pass();
    expect(r4.terminated).toEqual([expect.objectContaining({ id: orphan.id, kind: 'runner-stopped' })]);
    expect(w.killedWhileBusy).toEqual([]);
  });

  test('a worker past bootTimeout that reports ready and takes a job in the same moment is retired, never terminated with its job', async () => {
    w = world();
    // Launched 630 s ago (bootTimeout 600): booting in the snapshot; its ready report is in flight.
    const late = w.add('docker', { launchedAgo: 630 });
    w.takesJobMidPass(late);
    const r1 = await w.pass();
    expect(r1.terminated).toEqual([]);
    expect(r1.retired).toEqual([expect.objectContaining({ id: late.id, kind: 'boot-timeout' })]);
    // Its ready and busy reports arrive with the next pass: it reported, so it is no longer "never ready".
    w.report(late, 'busy');
    w.clock.advance(FENCE.bootGrace + 60);
    const r2 = await w.pass();
    expect(r2.terminated).toEqual([]);
    expect(w.tag(late, TAGS.state)).toBe('busy');
    expect(w.killedWhileBusy).toEqual([]);
  });

  test('a worker that never reports ready is terminated only past launched-at + bootTimeout + grace', async () => {
    w = world();
    const stuck = w.add('docker', { launchedAgo: 700 });
    expect((await w.pass()).terminated).toEqual([]);
    w.clock.advance(FENCE.bootGrace - 200);
    expect((await w.pass()).terminated).toEqual([]);
    w.clock.advance(400);
    expect((await w.pass()).terminated).toEqual([expect.objectContaining({ id: stuck.id, kind: 'never-ready' })]);
  });

  test('an impaired idle worker whose runner takes a job mid-pass is asked to retire, not terminated', async () => {
    w = world();
    const sick = w.add('docker', { reported: 'idle', impaired: true });
    w.takesJobMidPass(sick);
    const r = await w.pass();
    expect(r.terminated).toEqual([]);
    expect(r.retired).toEqual([expect.objectContaining({ id: sick.id, kind: 'impaired' })]);
    expect(w.killedWhileBusy).toEqual([]);
  });

  test('a changed template, a pool over its limit and an idle surplus: retire requests only', async () => {
    w = world(onePool({ IdleTime: 60, limit: 2 }));
    w.aws.templateVersion = 2;
    const ws = [w.add('docker', { reported: 'idle', templateVersion: '1' }), ...[1, 2, 3].map(() => w.add('docker', { reported: 'idle', templateVersion: '2' }))];
    w.takesJobMidPass(ws[1]);
    const r = await w.pass();
    expect(r.terminated).toEqual([]);
    expect(r.retired.map((x) => x.kind).sort()).toEqual(['idle', 'idle', 'limit', 'template']);
    expect(w.killedWhileBusy).toEqual([]);
  });

  test('interruption: an interrupted worker is left to AWS, a rebalance only asks it to retire', async () => {
    w = world();
    const a = w.add('docker', { reported: 'busy' });
    const b = w.add('docker', { reported: 'idle' });
    a.tags.set(TAGS.interrupted, `interruption ${new Date(w.clock.now()).toISOString()}`);
    b.tags.set(TAGS.interrupted, `rebalance ${new Date(w.clock.now()).toISOString()}`);
    b.tags.set(TAGS.retire, new Date(w.clock.now()).toISOString());
    for (let k = 0; k < 3; k++) {
      const r = await w.pass();
      expect(r.terminated).toEqual([]);
      w.clock.advance(600);
    }
    expect(w.aws.count('TerminateInstances')).toBe(0);
  });

  test('a draining orphan is never terminated while it reports its job, even after jobTimeout + grace; the end of life still bounds it', async () => {
    w = world(onePool({ jobTimeout: 600 }, { maxLifetime: 3600 }));
    const orphan = w.add('gone', { reported: 'draining', job: true, retireAgo: 3 * 3600 + FENCE.retirementGrace + 60, launchedAgo: 4 * 3600 });
    const r = await w.pass();
    expect(r.terminated).toEqual([]);
    expect(w.log.at('error').some((m) => /refused to terminate a worker that reports a job/.test(m))).toBe(true);
    // Orphans get the longest limits any pool or the defaults allow: 24 h + 3 h + grace.
    w.clock.advance(24 * 3600);
    expect((await w.pass()).terminated).toEqual([expect.objectContaining({ id: orphan.id, kind: 'end-of-life' })]);
  });

  test('a retirement ignored for jobTimeout + grace: terminated when the worker says nothing, refused while it reports a job', async () => {
    w = world();
    const silent = w.add('docker', { reported: 'idle', retireAgo: 3 * 3600 + FENCE.retirementGrace + 60, job: false });
    const busy = w.add('docker', { reported: 'busy', retireAgo: 3 * 3600 + FENCE.retirementGrace + 60 });
    const r = await w.pass();
    expect(r.terminated).toEqual([expect.objectContaining({ id: silent.id, kind: 'retirement-ignored' })]);
    expect(r.terminated.map((t) => t.id)).not.toContain(busy.id);
    expect(w.killedWhileBusy).toEqual([]);
  });

  test('an operator drains the pool: an idle worker whose runner takes a job mid-pass is only asked to retire; past jobTimeout + grace, still reporting its job, it is refused; ended once it said its runner stopped', async () => {
    w = world(onePool({ IdleCount: 2 }));
    const drain = { docker: { mode: 'draining' as const, by: 'arn:aws:iam::123456789012:user/op', at: '2026-11-30T09:00:00Z' } };
    const idle = w.add('docker', { reported: 'idle' });
    const busy = w.add('docker', { reported: 'busy' });
    w.takesJobMidPass(idle);
    const first = await w.pass({ holds: drain });
    expect(first.retired.map((r) => `${r.id} ${r.kind}`).sort()).toEqual([`${idle.id} drain`, `${busy.id} drain`].sort());
    expect(first.terminated).toEqual([]);
    expect(first.launched).toEqual({});
    w.report(idle, 'busy');
    w.report(idle, 'draining');
    w.report(busy, 'draining');
    const ended: string[] = [];
    for (let t = 0; t < 3 * 3600; t += 300) {
      w.clock.advance(300);
      if (t % 600 === 0) [idle, busy].forEach((i) => w.runners.get(i.id)!.job && w.report(i, 'draining')); // heartbeats while the jobs run
      if (t === 7200) {
        w.runners.get(busy.id)!.job = false; // its job ends; it reports stopped, and its power-off fails
        w.report(busy, 'stopped');
      }
      const r = await w.pass({ holds: drain, reportCap: 10_000 });
      ended.push(...r.terminated.map((x) => `${x.id} ${x.kind}`));
      expect(r.launched).toEqual({});
    }
    expect(w.killedWhileBusy).toEqual([]);
    expect(ended).toEqual([`${busy.id} runner-stopped`]);
  });

  test('a pass that dies after its retire requests and before its save: the next pass terminates nothing early', async () => {
    w = world();
    const orphan = w.add('old', { reported: 'idle' });
    await expect(w.pass({ crashOnSave: true })).rejects.toThrow(/SSM unavailable/);
    expect(w.tag(orphan, TAGS.retire)).toBeDefined(); // the request was sent before the crash
    w.takesJobMidPass(orphan);
    w.clock.advance(30);
    const r = await w.pass();
    expect(r.terminated).toEqual([]);
    expect(r.retired).toEqual([]); // already asked
    expect(w.killedWhileBusy).toEqual([]);
  });

  test('a ready report whose tag write failed: the container remembers it until SQS delivers it again; never ended as never-ready', async () => {
    w = world();
    const late = w.add('docker', { launchedAgo: 590 });
    w.report(late, 'idle'); // ready at 590 s of bootTimeout 600: just in time
    w.takesJobMidPass(late);
    const r0 = await w.pass({ failReportTags: true });
    expect(r0.reports.retry).toHaveLength(1); // not deleted: invisible for the visibility timeout, then delivered again
    expect(w.tag(late, TAGS.ready)).toBeUndefined();
    w.clock.advance(20); // 610 s: past bootTimeout, and the report is out of sight
    const r1 = await w.pass();
    expect(r1.terminated).toEqual([]);
    // The container remembers the report it applied: the worker is ready, not boot-timed-out.
    expect(r1.retired).toEqual([]);
    w.clock.advance(REPORTING.visibilitySeconds);
    await w.pass(); // delivered again, recorded
    expect(w.tag(late, TAGS.ready)).toBeDefined();
    w.clock.advance(FENCE.bootGrace);
    expect((await w.pass()).terminated).toEqual([]);
    expect(w.killedWhileBusy).toEqual([]);
  });

  test('a report sent by another instance, or by no worker role, is refused and changes nothing', async () => {
    w = world();
    const a = w.add('docker', { reported: 'busy' });
    const b = w.add('docker', { reported: 'busy' });
    // A job on b (privileged, it has b's instance credentials) claims that a's runner stopped.
    const forged = decodeReport('m-forged', encodeReport({ instanceId: a.id, seq: 99, state: 'stopped', builds: 0, at: w.clock.now() }), { sender: `${ROLE}:${b.id}`, sentAt: w.clock.now() - 600_000 });
    const foreign = decodeReport('m-foreign', encodeReport({ instanceId: a.id, seq: 100, state: 'stopped', builds: 0, at: w.clock.now() }), { sender: `AROAOTHERROLE00000001:${a.id}` });
    const r = await reconcilePass(
      { config: onePool(), stage: 'test', fleet: new Ec2Fleet({ ec2: new EC2Client({ region: 'eu-west-1' }), config: onePool(), stage: 'test', now: () => w.clock.now(), retryEnv: noWait }), store: new MemoryStateStore(), clock: w.clock, log: w.log, workerRoleIds: [ROLE] },
      { events: [], reports: [forged, foreign], trigger: 'schedule' },
    );
    expect(r.reports.counts.refused).toBe(2);
    expect(r.reports.settled.sort()).toEqual(['m-foreign', 'm-forged']);
    expect(w.tag(a, TAGS.state)).toBe('busy');
    w.clock.advance(FENCE.stoppedGrace * 2);
    expect((await w.pass()).terminated).toEqual([]);
    expect(w.log.at('warn').some((m) => /worker reports refused/.test(m))).toBe(true);
  });
});

/**
 * Review of issue 9: the view a pass plans from must not forget what a worker said just because
 * the write that records it on the instance failed, or because the report queue is behind.
 */
describe('reports the pass could not record, or has not read yet', () => {
  test('CreateTags throttled for 20 minutes: a worker that reported ready and busy is never ended as never-ready between deliveries', async () => {
    w = world();
    const late = w.add('docker', { launchedAgo: 590 });
    w.report(late, 'idle'); // ready just inside bootTimeout (600 s)
    w.report(late, 'busy'); // and a job at once
    w.runners.get(late.id)!.job = true;
    // The account's CreateTags bucket is empty (someone else's automation): every report write fails,
    // so SQS hides each report for the visibility timeout and delivers it again, pass after pass.
    const terminated: string[] = [];
    for (let t = 0; t < 1500; t += 30) {
      const r = await w.pass({ failReportTags: true });
      terminated.push(...r.terminated.map((x) => `${x.id} ${x.kind}`));
      w.clock.advance(30);
    }
    expect(terminated).toEqual([]);
    expect(w.killedWhileBusy).toEqual([]);
  });

  test('a hostile job floods the report queue: a worker whose ready report sits behind the flood is never ended as never-ready', async () => {
    w = world();
    const hostile = w.add('docker', { reported: 'busy' }); // a privileged job owns it and its credentials
    const late = w.add('docker', { launchedAgo: 590 });
    const flood = (n: number) => {
      for (let k = 0; k < n; k++) w.report(hostile, 'busy');
    };
    flood(3000);
    w.report(late, 'idle'); // ready in time; SQS accepted it, so its runner started...
    w.report(late, 'busy'); // ...and took a job
    w.runners.get(late.id)!.job = true;
    const terminated: string[] = [];
    for (let t = 0; t < 1500; t += 30) {
      flood(1000); // faster than a pass takes them
      const r = await w.pass({ reportCap: 1000 });
      terminated.push(...r.terminated.map((x) => `${x.id} ${x.kind}`));
      w.clock.advance(30);
    }
    expect(terminated).toEqual([]);
    expect(w.killedWhileBusy).toEqual([]);
    expect(w.log.at('warn').some((m) => /report queue is behind/.test(m))).toBe(true);
    expect(w.log.at('error').some((m) => m.includes(`worker ${hostile.id} sent`) && /reports in one pass/.test(m))).toBe(true);
    // The flood stops: the queue drains, the ready report is read, and nothing that must not end does.
    for (let t = 0; t < 300; t += 30) {
      const r = await w.pass({ reportCap: 10_000 });
      expect(r.terminated.map((x) => x.id)).not.toContain(late.id);
      w.clock.advance(30);
    }
    expect(w.tag(late, TAGS.state)).toBe('busy');
  });

  test('a report queue behind holds never-ready until it is read to the end; then a worker that never reported is ended', async () => {
    w = world();
    const stuck = w.add('docker', { launchedAgo: 600 + FENCE.bootGrace + 60 });
    const other = w.add('docker', { reported: 'idle' });
    for (let k = 0; k < 5; k++) w.report(other, 'idle');
    expect((await w.pass({ reportCap: 5 })).terminated).toEqual([]);
    expect((await w.pass({ reportCap: 5 })).terminated).toEqual([expect.objectContaining({ id: stuck.id, kind: 'never-ready' })]);
  });

  test('a draining report whose write failed, just before the retirement deadline: the passes until SQS delivers it again do not take the worker for idle', async () => {
    w = world();
    // Asked to retire jobTimeout + grace - 30 s ago; the tags still say idle. The worker saw the
    // request late, took a job meanwhile, and now reports draining: its job is running.
    const slow = w.add('docker', { reported: 'idle', retireAgo: 3 * 3600 + FENCE.retirementGrace - 30, job: true });
    w.report(slow, 'draining', { retireSeen: w.tag(slow, TAGS.retire) });
    expect((await w.pass({ failReportTags: true })).terminated).toEqual([]);
    w.clock.advance(60); // past the deadline; the report is hidden for the visibility timeout
    const r = await w.pass({ failReportTags: true });
    expect(r.terminated).toEqual([]);
    expect(w.killedWhileBusy).toEqual([]);
  });

  test('a worker gone silent (its script died: no report, no power-off) with its tags saying idle: retired as silent and replaced, so IdleCount means a live worker again', async () => {
    // IdleCount 1: the dead worker met the idle target, so IdleTime never retired it and nothing
    // replaced it: the pool had no live idle worker until its end of life, a day later.
    w = world(onePool({ IdleCount: 1 }));
    const dead = w.add('docker', { reported: 'idle' });
    let launched = 0;
    const retired: string[] = [];
    for (let t = 0; t < 3600 && launched === 0; t += 30) {
      const r = await w.pass();
      launched += r.launched.docker ?? 0;
      retired.push(...r.retired.map((x) => `${x.id} ${x.kind} after ${t} s`));
      w.clock.advance(30);
    }
    expect(launched).toBe(1);
    expect(retired).toEqual([`${dead.id} silent after 1410 s`]); // the first pass past 1,380 s
    expect(w.killedWhileBusy).toEqual([]);
  });

  test('a worker that keeps reporting is never taken for silent, however long it is idle or busy', async () => {
    w = world(onePool({ IdleCount: 1 }));
    const busy = w.add('docker', { reported: 'busy' });
    const idle = w.add('docker', { reported: 'idle' });
    for (let t = 0; t < 7200; t += 60) {
      if (t % 600 === 0) {
        w.report(busy, 'busy'); // heartbeats
        w.report(idle, 'idle', { idleSince: w.clock.now() - t * 1000 });
      }
      const r = await w.pass();
      expect(r.retired).toEqual([]);
      w.clock.advance(60);
    }
  });

  test('the whole fleet goes quiet for 25 minutes (the report queue or the workers\' network is down): no worker is taken for silent, during the outage or while reports come back', async () => {
    // Before: every worker's silence passed 1,380 s together, and the fleet was retired and relaunched wholesale.
    w = world(onePool({ IdleCount: 10, IdleTime: 86_400 }));
    const fleetOf = Array.from({ length: 20 }, (_, k) => w.add('docker', { reported: k % 2 ? 'busy' : 'idle' }));
    const retired: string[] = [];
    const heartbeat = (t: number) => fleetOf.forEach((i, k) => (t - k * 30) % 600 === 0 && w.report(i, k % 2 ? 'busy' : 'idle', { idleSince: w.clock.now() - 3_600_000 })); // phases spread over the heartbeat
    for (let t = 0; t < 6000; t += 30) {
      if (t < 1200 || t >= 2700) heartbeat(t); // quiet from 1,200 s to 2,700 s
      const r = await w.pass({ reportCap: 10_000 });
      retired.push(...r.retired.map((x) => `${x.id} ${x.kind} at ${t} s`));
      expect(r.launched).toEqual({});
      w.clock.advance(30);
    }
    expect(retired).toEqual([]);
    expect(w.log.lines.some((l) => /no worker has reported since .*the reporting path .* looks down/.test(l.message))).toBe(true);
  });

  test('one worker of a reporting fleet goes silent: still retired as silent (the quiet rule is for the whole fleet)', async () => {
    w = world(onePool({ IdleCount: 6, IdleTime: 86_400 }));
    const live = Array.from({ length: 6 }, () => w.add('docker', { reported: 'idle' }));
    const dead = w.add('docker', { reported: 'idle' });
    const retired: string[] = [];
    for (let t = 0; t < 3000; t += 30) {
      live.forEach((i, k) => (t - k * 90) % 600 === 0 && w.report(i, 'idle', { idleSince: w.clock.now() - 3_600_000 }));
      const r = await w.pass({ reportCap: 10_000 });
      retired.push(...r.retired.map((x) => `${x.id} ${x.kind}`));
      w.clock.advance(30);
    }
    expect(retired).toEqual([`${dead.id} silent`]);
  });

  test('a worker whose clock runs a day ahead: its idle time counts from when SQS got the report, so IdleTime still retires it', async () => {
    w = world(onePool({ IdleTime: 600 }));
    const ahead = w.add('docker', { reported: 'busy' });
    const skew = 86_400_000;
    w.report(ahead, 'idle', { at: w.clock.now() + skew, readyAt: w.clock.now() - 3_600_000 + skew, idleSince: w.clock.now() + skew });
    const retired: string[] = [];
    for (let t = 0; t < 1800; t += 60) {
      retired.push(...(await w.pass()).retired.map((x) => `${x.id} ${x.kind}`));
      w.clock.advance(60);
    }
    expect(retired).toEqual([`${ahead.id} idle`]);
  });

  test('a config change shortens maxLifetime and jobTimeout: a worker launched under the old ones keeps them (its limits tag), its job is not cut short by end-of-life', async () => {
    // Launched 10 h ago with maxLifetime 24 h and jobTimeout 3 h; it takes jobs until 24 h after launch.
    const old = { [TAGS.limits]: 'boot=600,job=10800,life=86400' };
    w = world(onePool({ jobTimeout: 3600 }, { maxLifetime: 4 * 3600 }));
    const busy = w.add('docker', { reported: 'busy', launchedAgo: 10 * 3600, tags: old });
    const r = await w.pass();
    expect(r.terminated).toEqual([]);
    expect(w.killedWhileBusy).toEqual([]);
    // Its own end of life still comes: 24 h + 3 h + grace after launch, whatever it reports.
    w.clock.advance(17 * 3600 + FENCE.endOfLifeGrace + 60);
    expect((await w.pass()).terminated).toEqual([expect.objectContaining({ id: busy.id, kind: 'end-of-life' })]);
  });

  test('a launched worker carries the limits it runs with; a longer limit in the config since then is never shortened by the tag', async () => {
    w = world(onePool({ IdleCount: 1, jobTimeout: 1800 }, { bootTimeout: 300, maxLifetime: 7200 }));
    await w.pass();
    const launched = [...w.aws.instances.values()];
    expect(launched).toHaveLength(1);
    expect(launched[0].tags.get(TAGS.limits)).toBe('boot=300,job=1800,life=7200');
    // A tag shorter than the pool's current limits (the config grew since): the pool's win.
    w = world(onePool({}, { bootTimeout: 900 }));
    w.add('docker', { launchedAgo: 300 + FENCE.bootGrace + 60, tags: { [TAGS.limits]: 'boot=300,job=10800,life=86400' } });
    expect((await w.pass()).terminated).toEqual([]);
  });

  test('a worker gone silent whose last report said busy: replaced at once, ended jobTimeout + grace after the retirement request, not a day later', async () => {
    w = world(onePool({ jobTimeout: 1800 }));
    const dead = w.add('docker', { reported: 'busy', job: false }); // its script died with its runner; the machine is up
    const ended: string[] = [];
    let launched = 0;
    for (let t = 0; t < 2 * 3600 && !ended.length; t += 60) {
      const r = await w.pass({ events: t === 0 ? [{ jobId: 5, projectId: 1, status: 'pending', tags: [], receivedAt: w.clock.now(), deliveryId: 'd5' }] : [] });
      launched += r.launched.docker ?? 0;
      ended.push(...r.terminated.filter((x) => x.id === dead.id).map((x) => `${x.id} ${x.kind} after ${t} s`));
      w.clock.advance(60);
    }
    expect(launched).toBeGreaterThanOrEqual(1); // (the replacement, which the test never boots, is ended as never-ready meanwhile)
    expect(ended).toEqual([expect.stringMatching(new RegExp(`^${dead.id} retirement-ignored after (37|38|39)\\d\\d s$`))]);
    // Silence (1,380 s) + jobTimeout (1,800 s) + grace (600 s), give or take a pass.
    expect(w.log.at('error').some((m) => /refused to terminate/.test(m))).toBe(false);
  });

  test('a busy worker that keeps reporting busy past its retirement deadline is still refused (it lies, or its clock does): only its end of life ends it', async () => {
    w = world(onePool({ jobTimeout: 1800 }));
    const liar = w.add('docker', { reported: 'busy', retireAgo: 1800 + FENCE.retirementGrace + 60 });
    for (let t = 0; t < 3600; t += 300) {
      w.report(liar, 'busy');
      expect((await w.pass()).terminated).toEqual([]);
      w.clock.advance(300);
    }
    expect(w.killedWhileBusy).toEqual([]);
  });
});
