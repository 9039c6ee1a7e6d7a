/**
 * The spot autoscaler under simulation: the REAL reconcile pass (lib/controller/reconcile.ts) with
 * the real state store encoding and report handling, driven the way the deployment drives it
 * (lib/controller/loop.ts, handlers/reconcile.ts):
 *  - EventBridge Scheduler starts an invocation every minute; it runs passes for loopSeconds of it,
 *    the first a 'schedule' pass (the one that repairs lost webhooks through the GitLab API
 *    stand-in), then one whenever job events wait (at most every minPassIntervalSeconds, a
 *    moment after the event: long polling) and at least every tickSeconds; between the end of a
 *    loop and the next tick, events wait in the queue;
 *  - workers' reports go to the report queue (delayed, sometimes lost: cloud.ts); each pass takes
 *    what is visible; a report the pass did not settle comes back after the visibility timeout;
 *  - an interruption warning queues a nudge: the next pass is an interruption pass.
 * Passes never overlap (reserved concurrency 1): a pass asked for while one runs (inside its race
 * window, when the world runs on) starts when it ends. A webhook delivery is lost with probability
 * webhookLossRate: it never reaches any pass. A delivered one arrives a second time with
 * probability webhookDuplicateRate, 1-60 s later, with the same Idempotency-Key (GitLab's "Resend
 * Request", or a 5xx of ours that the sender retried): the pass's events are de-duplicated as the
 * reconcile Lambda does (dedupeEvents with a RecentDeliveries memory).
 */
import type { JobEvent, Logger } from '../controller/ports';
import { reconcilePass, type PassInput, type ReconcileDeps } from '../controller/reconcile';
import type { WorkerReport } from '../controller/reports';
import { REPORTING } from '../planner';
import { CADENCE } from '../controller/loop';
import { decodeQueueMessage, dedupeEvents, encodeQueueMessage, IGNORED_STATUSES, RecentDeliveries } from '../webhook/job-hook';
import type { World } from './cloud';
import type { Rng } from './rng';

export interface AutoscalerOptions {
  /** Seconds between scheduled invocations (EventBridge Scheduler: every minute). */
  scheduleEverySeconds: number;
  /** Seconds of each invocation during which passes start (handlers/reconcile.ts LOOP_FOR_MS). */
  loopSeconds: number;
  /** While events keep arriving, a pass starts at most this often (loop.ts minPassIntervalMs). */
  minPassIntervalSeconds: number;
  /** Without events, a pass still runs this often within the loop (loop.ts tickIntervalMs). */
  tickSeconds: number;
  /** Seconds from an event's arrival in the queue to the pass it starts (long polling, the pass's own start). */
  pickupSeconds: number;
  webhookLossRate: number;
  webhookDuplicateRate: number;
}

/** The deployment's own cadence (lib/controller/loop.ts CADENCE: the stack's schedule, the handler's loop), never a copy of it. */
export const DEFAULT_AUTOSCALER: AutoscalerOptions = {
  scheduleEverySeconds: CADENCE.scheduleEveryMs / 1000,
  loopSeconds: CADENCE.loopForMs / 1000,
  minPassIntervalSeconds: CADENCE.minPassIntervalMs / 1000,
  tickSeconds: CADENCE.tickIntervalMs / 1000,
  pickupSeconds: 1,
  webhookLossRate: 0.02,
  webhookDuplicateRate: 0,
};

/** Counts what the controller logged, keeps the last few warnings and errors for the report. */
export class CountingLogger implements Logger {
  counts = { info: 0, warn: 0, error: 0 };
  readonly recent: string[] = [];
  constructor(private readonly echo?: (line: string) => void) {}
  private note(level: 'info' | 'warn' | 'error', message: string, fields?: Record<string, unknown>) {
    this.counts[level]++;
    const line = `${level} ${message}${fields ? ' ' + JSON.stringify(fields) : ''}`;
    if (level !== 'info') {
      this.recent.push(line);
      if (this.recent.length > 20) this.recent.shift();
    }
    this.echo?.(line);
  }
  info(m: string, f?: Record<string, unknown>) {
    this.note('info', m, f);
  }
  warn(m: string, f?: Record<string, unknown>) {
    this.note('warn', m, f);
  }
  error(m: string, f?: Record<string, unknown>) {
    this.note('error', m, f);
  }
}

const RANK: Record<PassInput['trigger'], number> = { queue: 0, interruption: 1, schedule: 2, manual: 3 };

export class SimulatedAutoscaler {
  readonly passes = { queue: 0, schedule: 0, interruption: 0 };
  webhooksLost = 0;
  webhooksDelivered = 0;
  webhooksDuplicated = 0;
  duplicatesDropped = 0;
  private readonly recent = new RecentDeliveries();
  reportsLost = 0;
  passErrors = 0;
  private events: JobEvent[] = [];
  private reports: { r: WorkerReport; visibleAt: number }[] = [];
  private passCount = 0;
  private running = false;
  private invocationStart = -Infinity;
  private lastPassStart = -Infinity;
  /** The next pass asked for: when, and what kind (the strongest asked wins). */
  private next?: { at: number; trigger: PassInput['trigger']; token: number };
  private token = 0;

  constructor(
    private readonly world: World,
    private readonly deps: Omit<ReconcileDeps, 'clock'>,
    private readonly opts: AutoscalerOptions,
    private readonly lossRng: Rng,
    private readonly reportRng?: Rng,
  ) {}

  private inLoop(at: number): boolean {
    return at < this.invocationStart + this.opts.loopSeconds * 1000;
  }

  /** Asks for a pass at `at` (or sooner, if one is already asked for sooner). */
  private ask(trigger: PassInput['trigger'], at: number): void {
    const world = this.world;
    if (this.next && this.next.at <= at) {
      if (RANK[trigger] > RANK[this.next.trigger]) this.next.trigger = trigger;
      return;
    }
    const t = { at: Math.max(at, world.now), trigger: this.next && RANK[this.next.trigger] > RANK[trigger] ? this.next.trigger : trigger, token: ++this.token };
    this.next = t;
    world.at(t.at, () => (this.next?.token === t.token ? this.run() : undefined));
  }

  /** Events are waiting: a pass a moment later, paced, while the loop runs. */
  private wake(trigger: PassInput['trigger'] = 'queue'): void {
    const at = Math.max(this.world.now + this.opts.pickupSeconds * 1000, this.lastPassStart + this.opts.minPassIntervalSeconds * 1000);
    if (this.inLoop(at)) this.ask(trigger, at);
  }

  start(): void {
    const world = this.world;
    world.onJobEvent = (sent) => {
      if (this.lossRng.chance(this.opts.webhookLossRate)) {
        this.webhooksLost++;
        return;
      }
      this.webhooksDelivered++;
      // What the webhook function queues (lib/webhook/job-hook.ts): statuses it drops, and the fields the queue message carries.
      if (IGNORED_STATUSES.includes(sent.status)) return;
      const decoded = decodeQueueMessage(encodeQueueMessage({ v: 1, type: 'job', event: sent }));
      if (decoded.type !== 'job') return;
      const e = decoded.event;
      this.events.push(e);
      this.wake();
      if (this.opts.webhookDuplicateRate > 0 && this.lossRng.chance(this.opts.webhookDuplicateRate)) {
        this.webhooksDuplicated++;
        world.at(world.now + Math.round(1000 + this.lossRng.next() * 59_000), () => {
          this.events.push({ ...e, receivedAt: world.now });
          this.wake();
        });
      }
    };
    world.onReport = (r, mustArrive) => {
      const rng = this.reportRng;
      if (!mustArrive && rng && rng.chance(world.cloud.reportLossRate)) {
        this.reportsLost++;
        return;
      }
      this.reports.push({ r, visibleAt: world.now + Math.round((rng?.next() ?? 0) * world.cloud.reportDelaySeconds * 1000) });
    };
    world.onInterruption = () => this.wake('interruption');
    const every = this.opts.scheduleEverySeconds * 1000;
    const tick = () => {
      world.at(world.now + every, tick);
      this.invocationStart = world.now;
      this.ask('schedule', world.now);
    };
    world.at(Math.ceil(world.now / every) * every, tick);
  }

  private async run(): Promise<void> {
    const world = this.world;
    const trigger = this.next?.trigger ?? 'queue';
    this.next = undefined;
    if (this.running) {
      // Reserved concurrency 1: the pass waits for the one running (inside its race window).
      this.ask(trigger, world.now + 1);
      return;
    }
    this.running = true;
    this.lastPassStart = world.now;
    const events = dedupeEvents(this.events, this.recent, world.now);
    this.duplicatesDropped += this.events.length - events.length;
    this.events = [];
    const visible = this.reports.filter((x) => x.visibleAt <= world.now);
    this.reports = this.reports.filter((x) => x.visibleAt > world.now);
    const reports = visible.map((x) => x.r);
    this.passes[trigger === 'manual' ? 'schedule' : trigger]++;
    const passId = `sim-${(++this.passCount).toString().padStart(6, '0')}`;
    const hide = (rs: WorkerReport[]) => this.reports.push(...rs.map((r) => ({ r: { ...r, receiveCount: (r.receiveCount ?? 1) + 1 }, visibleAt: world.now + REPORTING.visibilitySeconds * 1000 })));
    try {
      const r = await reconcilePass({ ...this.deps, clock: { now: () => world.now } }, { events, reports, trigger, passId });
      this.recent.remember(events, world.now);
      const settled = new Set(r.reports.settled);
      hide(reports.filter((x) => !settled.has(x.id)));
    } catch (e) {
      // A pass that throws deletes nothing: its events and reports come back after their visibility timeout.
      this.passErrors++;
      this.deps.log.error('reconcile pass failed', { error: (e as Error).message, trigger });
      hide(reports);
      if (events.length) world.at(world.now + REPORTING.visibilitySeconds * 1000, () => {
        this.events.unshift(...events);
        this.wake();
      });
    } finally {
      this.running = false;
    }
    // Within the loop: the next pass for waiting events, or the tick.
    if (this.events.length) this.wake();
    const tickAt = this.lastPassStart + this.opts.tickSeconds * 1000;
    if (this.inLoop(tickAt)) this.ask('queue', tickAt);
  }
}
