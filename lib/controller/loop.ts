/**
 * One invocation of the reconcile function: passes back to back for most of its time, each one
 * fed by the job-event queue and the worker-report queue, which the function reads itself
 * (docs/architecture.md, "Event throughput").
 *
 *   wait for an event (long polling) or the tick -> drain both queues (parallel receives) ->
 *   reconcilePass -> delete what the pass applied -> again, until too little time is left
 *
 * - A webhook event starts a pass within about a second while the loop runs: it waits for events
 *   with long polling, which returns as soon as one arrives.
 * - While events keep coming, passes start at most every minPassIntervalMs, and each takes what
 *   arrived since the last one (up to maxEventsPerPass): a level-triggered pass costs the same
 *   for one event or thousands, so the drain rate is bounded by the queue, not by batch sizes.
 * - Without events a pass still runs every tickIntervalMs, for the reports, timeouts and IdleTime.
 * - Job events are deleted once the pass that applied them saved its state; reports once their
 *   tags are written (the pass says which); unreadable messages are never deleted, so the queue's
 *   redrive policy moves them to the dead-letter queue. A pass that fails deletes nothing: its
 *   messages come back after their visibility timeout.
 * - No pass starts with less than stopReserveMs + twice the longest pass so far left, so the last
 *   pass ends (and saves) well inside the Lambda timeout; nor after loopForMs, so the loop ends
 *   about when the next scheduled invocation starts.
 */
import type { Inbox, InboxMessage, JobEvent, Logger } from './ports';
import type { PassInput, PassReport } from './reconcile';
import { decodeReport, ReportError, type WorkerReport } from './reports';
import { decodeQueueMessage, dedupeEvents, type RecentDeliveries } from '../webhook/job-hook';

export interface LoopDeps {
  pass(input: PassInput): Promise<PassReport>;
  events: Inbox;
  reports?: Inbox;
  /** Wall-clock ms this invocation has left. */
  remainingMs(): number;
  log: Logger;
  /** Wall clock and sleep (real ones by default; the bench and tests bring their own). */
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
  /** Idempotency-Keys earlier passes took: a redelivery that reaches a later pass is dropped (lib/webhook/job-hook.ts). */
  recentDeliveries?: RecentDeliveries;
}

export interface LoopOptions {
  /** At most this many passes (a manual invocation runs one). Default unlimited. */
  maxPasses?: number;
  /** While events keep arriving, a pass starts at most this often. Default 5,000 ms: each pass costs a discovery (DescribeInstances pages) and usually a state write (PutParameter, ~3 TPS for the whole account). */
  minPassIntervalMs?: number;
  /** Without events, a pass still runs this often (reports, timeouts, IdleTime; none of them urgent). Default 30,000 ms. */
  tickIntervalMs?: number;
  /** Job events taken into one pass, at most. Default 5,000. */
  maxEventsPerPass?: number;
  /** Worker reports taken into one pass, at most. Default 10,000. */
  maxReportsPerPass?: number;
  /**
   * No pass starts with less than this (+ twice the longest pass so far) left. Default 15,000 ms:
   * the time a pass keeps for a launch and the save that records it (reconcile.ts launchReserveMs),
   * so a pass the loop starts always may launch.
   */
  stopReserveMs?: number;
  /** No pass starts later than this after the loop started (the schedule's period, minus a little). Default unlimited. */
  loopForMs?: number;
  /** Consecutive failed passes after which the invocation gives up with the last error. Default 3. */
  maxConsecutiveFailures?: number;
}

export interface LoopReport {
  passes: number;
  failedPasses: number;
  /** Job events and reports the passes took. */
  events: number;
  reports: number;
  /** Messages left for the dead-letter queue. */
  unreadable: number;
  passMs: number[];
  last?: PassReport;
}

/**
 * How the deployment drives the reconcile function, in ONE place: the stack's schedule
 * (lib/deploy/stack.ts), the handler's loop (handlers/reconcile.ts) and the simulation
 * (lib/sim/autoscaler.ts DEFAULT_AUTOSCALER) all read it, so the simulated controller waits for
 * events exactly as the deployed one does (test/sim/cadence.test.ts).
 *  - scheduleEveryMs: EventBridge Scheduler starts an invocation this often (`rate(1 minute)`);
 *  - loopForMs: the invocation starts passes for this long: the schedule's period less a few
 *    seconds, so it ends about when the next one starts (the function's timeout, 90 s, leaves its
 *    last pass room to finish);
 *  - minPassIntervalMs: the batching window: while events keep arriving, a pass starts at most
 *    this often, and takes everything that arrived since the last one;
 *  - tickIntervalMs: without events a pass still runs this often.
 */
export const CADENCE = { scheduleEveryMs: 60_000, loopForMs: 55_000, minPassIntervalMs: 5_000, tickIntervalMs: 30_000 } as const;

/** The schedule expression of CADENCE.scheduleEveryMs (whole minutes: EventBridge's rate unit). */
export function scheduleRate(everyMs: number = CADENCE.scheduleEveryMs): string {
  const minutes = everyMs / 60_000;
  if (!Number.isInteger(minutes) || minutes < 1) throw new Error(`schedule period ${everyMs} ms is not a whole number of minutes`);
  return `rate(${minutes} minute${minutes === 1 ? '' : 's'})`;
}

export const LOOP_DEFAULTS = { minPassIntervalMs: CADENCE.minPassIntervalMs, tickIntervalMs: CADENCE.tickIntervalMs, maxEventsPerPass: 5_000, maxReportsPerPass: 10_000, stopReserveMs: 15_000, maxConsecutiveFailures: 3, loopForMs: Infinity };

export interface Decoded {
  events: JobEvent[];
  interruption: boolean;
  used: string[];
  unreadable: number;
}

/** Job-event queue messages -> job events, whether one asks for an interruption pass, the ids read; unreadable ones are logged and left (dead-letter queue). */
export function decodeEvents(messages: readonly InboxMessage[], log: Logger): Decoded {
  const out: Decoded = { events: [], interruption: false, used: [], unreadable: 0 };
  for (const m of messages) {
    try {
      const q = decodeQueueMessage(m.body);
      if (q.type === 'job') out.events.push(q.event);
      else out.interruption = true;
      out.used.push(m.id);
    } catch (e) {
      // Left in the queue: after maxReceiveCount deliveries SQS moves it to the dead-letter queue (alarm).
      out.unreadable++;
      log.error('queue message refused', { messageId: m.id, error: (e as Error).message });
    }
  }
  return out;
}

function decodeReports(messages: readonly InboxMessage[], log: Logger): { reports: WorkerReport[]; unreadable: number } {
  const reports: WorkerReport[] = [];
  let unreadable = 0;
  for (const m of messages) {
    try {
      reports.push(decodeReport(m.id, m.body, { sender: m.sender, sentAt: m.sentAt, receiveCount: m.receiveCount }));
    } catch (e) {
      if (!(e instanceof ReportError)) throw e;
      unreadable++;
      log.error('worker report refused', { messageId: m.id, error: e.message });
    }
  }
  return { reports, unreadable };
}

export async function runLoop(deps: LoopDeps, first: PassInput['trigger'], options: LoopOptions = {}): Promise<LoopReport> {
  const o = { ...LOOP_DEFAULTS, ...options };
  const now = deps.now ?? Date.now;
  const sleep = deps.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const report: LoopReport = { passes: 0, failedPasses: 0, events: 0, reports: 0, unreadable: 0, passMs: [] };
  const maxPasses = o.maxPasses ?? Infinity;
  let longest = 0;
  let lastStart = -Infinity;
  let failures = 0;
  let trigger = first;
  let waiting: InboxMessage[] = [];
  const loopStart = now();
  const room = () => Math.min(deps.remainingMs() - o.stopReserveMs - 2 * longest, loopStart + o.loopForMs - now());

  while (report.passes < maxPasses) {
    if (report.passes > 0) {
      if (room() <= 0) break;
      const since = now() - lastStart;
      if (waiting.length === 0 && since < o.tickIntervalMs) {
        // Nothing to do yet: wait for an event (long polling returns at once when one arrives), or the tick.
        const waitMs = Math.min(20_000, o.tickIntervalMs - since, room());
        if (waitMs >= 1000) waiting = await deps.events.receive(o.maxEventsPerPass, Math.floor(waitMs / 1000));
        else await sleep(Math.max(0, waitMs));
        if (waiting.length === 0) continue;
      }
      const gap = o.minPassIntervalMs - (now() - lastStart);
      if (gap > 0) await sleep(gap);
    }

    // Drain both queues; the pass costs the same for one event or thousands.
    if (waiting.length < o.maxEventsPerPass) waiting.push(...(await deps.events.receive(o.maxEventsPerPass - waiting.length, 0)));
    const reportMessages = deps.reports ? await deps.reports.receive(o.maxReportsPerPass, 0) : [];
    const ev = decodeEvents(waiting, deps.log);
    const rep = decodeReports(reportMessages, deps.log);
    waiting = [];
    report.unreadable += ev.unreadable + rep.unreadable;
    const events = dedupeEvents(ev.events, deps.recentDeliveries, now());
    const input: PassInput = { events, reports: rep.reports, trigger: report.passes === 0 ? first : ev.interruption ? 'interruption' : trigger };
    // Took its cap: more reports wait, and one of them may be the one a termination waits for.
    if (deps.reports) input.reportQueue = reportMessages.length >= o.maxReportsPerPass ? 'behind' : 'drained';

    const started = now();
    lastStart = started;
    report.passes++;
    try {
      const r = await deps.pass(input);
      failures = 0;
      report.last = r;
      report.events += events.length;
      report.reports += rep.reports.length;
      deps.recentDeliveries?.remember(events, now());
      await deps.events.delete(ev.used);
      if (deps.reports && r.reports.settled.length) await deps.reports.delete(r.reports.settled);
    } catch (e) {
      failures++;
      report.failedPasses++;
      deps.log.error('pass failed; its messages come back after their visibility timeout', { error: e, events: ev.used.length, reports: rep.reports.length, consecutiveFailures: failures });
      if (failures >= o.maxConsecutiveFailures || report.passes >= maxPasses) throw e;
    } finally {
      deps.events.release?.();
      deps.reports?.release?.();
      const ms = now() - started;
      report.passMs.push(ms);
      longest = Math.max(longest, ms);
    }
    trigger = 'queue';
  }
  return report;
}
