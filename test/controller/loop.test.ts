/**
 * The reconcile function's invocation loop (lib/controller/loop.ts) over in-memory queues with
 * SQS's visibility semantics, on a virtual clock: draining, deleting only what was applied,
 * unreadable messages left for the dead-letter queue, failures, pacing and the time budget.
 */
import { runLoop, type LoopDeps } from '../../lib/controller/loop';
import type { Inbox, InboxMessage } from '../../lib/controller/ports';
import type { PassInput, PassReport } from '../../lib/controller/reconcile';
import { encodeReport } from '../../lib/controller/reports';
import { MemoryLogger } from './fixtures';

/** A queue with SQS's behaviour: a received message is hidden until deleted or its visibility timeout ends. */
class MemoryQueue implements Inbox {
  private msgs: { m: InboxMessage; visibleAt: number; receives: number }[] = [];
  receives = 0;
  waited: number[] = [];
  private n = 0;
  constructor(private readonly clock: { t: number }, private readonly visibilityMs = 120_000) {}
  send(body: string, sender?: string): string {
    const id = `m${++this.n}`;
    this.msgs.push({ m: { id, body, sender, sentAt: this.clock.t }, visibleAt: this.clock.t, receives: 0 });
    return id;
  }
  async receive(max: number, waitSeconds: number): Promise<InboxMessage[]> {
    this.receives++;
    let out = this.take(max);
    if (out.length === 0 && waitSeconds > 0) {
      // Long polling: nothing arrives while the test's clock stands still, so the wait runs out.
      this.waited.push(waitSeconds);
      this.clock.t += waitSeconds * 1000;
      out = this.take(max);
    }
    return out;
  }
  private take(max: number): InboxMessage[] {
    const out: InboxMessage[] = [];
    for (const x of this.msgs)
      if (out.length < max && x.visibleAt <= this.clock.t) {
        x.visibleAt = this.clock.t + this.visibilityMs;
        x.receives++;
        out.push({ ...x.m, receiveCount: x.receives });
      }
    return out;
  }
  async delete(ids: readonly string[]): Promise<void> {
    this.msgs = this.msgs.filter((x) => !ids.includes(x.m.id));
  }
  get size(): number {
    return this.msgs.length;
  }
}

const job = (id: number, status = 'pending') => JSON.stringify({ v: 1, type: 'job', event: { jobId: id, projectId: 1, status, receivedAt: 0, deliveryId: `d${id}-${status}` } });

function fakePass(clock: { t: number }, opts: { ms?: number; fail?: (n: number) => boolean; settle?: (input: PassInput) => { settled: string[]; retry: string[] } } = {}) {
  const inputs: PassInput[] = [];
  const pass = async (input: PassInput): Promise<PassReport> => {
    inputs.push(input);
    clock.t += opts.ms ?? 500;
    if (opts.fail?.(inputs.length)) throw new Error(`pass ${inputs.length} failed`);
    const reports = opts.settle?.(input) ?? { settled: (input.reports ?? []).map((r) => r.id), retry: [] };
    return { passId: `p${inputs.length}`, decisions: [], launched: {}, reports: { ...reports, counts: { applied: 0, unchanged: 0, stale: 0, refused: 0, unknown: 0 }, tagWrites: 0 } } as unknown as PassReport;
  };
  return { pass, inputs };
}

function setup(budgetMs = 60_000, passOpts: Parameters<typeof fakePass>[1] = {}) {
  const clock = { t: 1_000_000 };
  const start = clock.t;
  const events = new MemoryQueue(clock);
  const reports = new MemoryQueue(clock);
  const log = new MemoryLogger();
  const { pass, inputs } = fakePass(clock, passOpts);
  const deps: LoopDeps = {
    pass,
    events,
    reports,
    log,
    remainingMs: () => budgetMs - (clock.t - start),
    now: () => clock.t,
    sleep: async (ms) => {
      clock.t += ms;
    },
  };
  return { clock, events, reports, log, deps, inputs };
}

describe('runLoop', () => {
  test('one pass takes thousands of queued events at once; applied messages are deleted', async () => {
    const s = setup(20_000);
    for (let k = 0; k < 4321; k++) s.events.send(job(k + 1));
    const r = await runLoop(s.deps, 'schedule', { maxPasses: 1 });
    expect(r.passes).toBe(1);
    expect(s.inputs[0].events).toHaveLength(4321);
    expect(s.inputs[0].trigger).toBe('schedule');
    expect(s.events.size).toBe(0);
  });

  test('an unreadable message is never deleted: SQS redelivers it and, after maxReceiveCount, moves it to the dead-letter queue', async () => {
    const s = setup(20_000);
    s.events.send(job(1));
    s.events.send('{"v":9}');
    s.reports.send('not json');
    const r = await runLoop(s.deps, 'schedule', { maxPasses: 1 });
    expect(r.unreadable).toBe(2);
    expect(s.events.size).toBe(1);
    expect(s.reports.size).toBe(1);
    expect(s.log.at('error').filter((m) => /refused/.test(m))).toHaveLength(2);
  });

  test('a pass that fails deletes nothing; three failures in a row end the invocation with the error', async () => {
    const s = setup(60_000, { fail: () => true });
    s.events.send(job(1));
    await expect(runLoop(s.deps, 'schedule', { minPassIntervalMs: 0, tickIntervalMs: 0 })).rejects.toThrow(/pass 3 failed/);
    expect(s.inputs).toHaveLength(3);
    expect(s.events.size).toBe(1); // comes back after its visibility timeout
  });

  test('reports: the settled ones are deleted, the ones to retry are left for a later delivery', async () => {
    const s = setup(20_000, { settle: (input) => ({ settled: [input.reports![0].id], retry: [input.reports![1].id] }) });
    const body = (q: number) => encodeReport({ instanceId: 'i-0123456789abcdef0', seq: q, state: 'idle', builds: 0, at: 1_000_000 });
    s.reports.send(body(1), 'AROAX:i-0123456789abcdef0');
    s.reports.send(body(2), 'AROAX:i-0123456789abcdef0');
    await runLoop(s.deps, 'schedule', { maxPasses: 1 });
    expect(s.inputs[0].reports!.map((r) => [r.seq, r.sender])).toEqual([
      [1, 'AROAX:i-0123456789abcdef0'],
      [2, 'AROAX:i-0123456789abcdef0'],
    ]);
    expect(s.reports.size).toBe(1);
  });

  test('a pass that took its cap of reports says the report queue is behind; one that read it to the end, drained', async () => {
    const s = setup(60_000, { settle: () => ({ settled: [], retry: [] }) });
    const body = (q: number) => encodeReport({ instanceId: 'i-0123456789abcdef0', seq: q, state: 'idle', builds: 0, at: 1_000_000 });
    for (let q = 1; q <= 7; q++) s.reports.send(body(q), 'AROAX:i-0123456789abcdef0');
    await runLoop(s.deps, 'schedule', { maxPasses: 2, maxReportsPerPass: 5, minPassIntervalMs: 0, tickIntervalMs: 0 });
    expect(s.inputs.map((i) => [i.reports!.length, i.reportQueue])).toEqual([
      [5, 'behind'],
      [2, 'drained'],
    ]);
  });

  test('passes back to back while time lasts: long polling while idle, a pass per tick, none started without time to finish', async () => {
    const s = setup(90_000);
    const r = await runLoop(s.deps, 'schedule', { tickIntervalMs: 15_000, loopForMs: 55_000 });
    // First pass at 0, then one per tick (15 s) until 55 s: 0, 15, 30, 45 s.
    expect(r.passes).toBe(4);
    expect(s.events.waited.every((w) => w >= 1 && w <= 15)).toBe(true);
    expect(s.clock.t - 1_000_000).toBeLessThan(75_000);
  });

  test('an event starts a pass at once while the loop waits; passes are at least minPassIntervalMs apart', async () => {
    const s = setup(60_000);
    let sent = false;
    const receive = s.events.receive.bind(s.events);
    s.events.receive = async (max, wait) => {
      if (wait > 0 && !sent) {
        sent = true;
        s.clock.t += 3_000; // arrives 3 s into the wait
        s.events.send(job(7));
      }
      return receive(max, wait);
    };
    await runLoop(s.deps, 'schedule', { maxPasses: 2, tickIntervalMs: 15_000 });
    expect(s.inputs[1].events.map((e) => e.jobId)).toEqual([7]);
    expect(s.inputs[1].trigger).toBe('queue');
  });

  test('the stop reserve: no pass starts with less than the reserve plus twice the longest pass left', async () => {
    const s = setup(30_000, { ms: 4_000 });
    const r = await runLoop(s.deps, 'schedule', { tickIntervalMs: 0, minPassIntervalMs: 0, stopReserveMs: 15_000 });
    // 30 s budget: passes at 0 and 4 s (room 30-4-15-8 > 0), then 8 s: 30-8-15-8 < 0.
    expect(r.passes).toBe(2);
    expect(30_000 - (s.clock.t - 1_000_000)).toBeGreaterThanOrEqual(15_000);
  });

  test('an interruption nudge makes the next pass an interruption pass', async () => {
    const s = setup(60_000);
    const receive = s.events.receive.bind(s.events);
    s.events.receive = async (max, wait) => {
      if (wait > 0) s.events.send(JSON.stringify({ v: 1, type: 'interruption', instanceId: 'i-0123456789abcdef0', detailType: 'EC2 Spot Instance Interruption Warning', at: 1 }));
      return receive(max, wait);
    };
    await runLoop(s.deps, 'schedule', { maxPasses: 2 });
    expect(s.inputs.map((i) => i.trigger)).toEqual(['schedule', 'interruption']);
  });
});
