/**
 * The spot autoscaler under simulation: the REAL reconcile pass (lib/controller/reconcile.ts) with
 * the real state store encoding, driven the way the deployment drives it:
 *  - webhook deliveries go into a queue (SQS); the first message opens a batching window and one
 *    pass takes the whole batch when it closes (the SQS trigger's MaximumBatchingWindowInSeconds);
 *  - a schedule pass every minute, on the minute (EventBridge Scheduler), with no events: it is
 *    what repairs lost webhooks, by confirming recorded jobs through the GitLab API stand-in;
 *  - an interruption pass when a spot interruption warning arrives (the interruption handler).
 * Passes never overlap (reserved concurrency 1): in the simulation a pass takes no simulated time.
 * A delivery is lost with probability webhookLossRate: it never reaches any pass.
 */
import type { JobEvent, Logger } from '../controller/ports';
import { reconcilePass, type PassInput, type ReconcileDeps } from '../controller/reconcile';
import type { World } from './cloud';
import type { Rng } from './rng';


export interface AutoscalerOptions {
  batchWindowSeconds: number;
  scheduleEverySeconds: number;
  webhookLossRate: number;
}

export const DEFAULT_AUTOSCALER: AutoscalerOptions = { batchWindowSeconds: 10, scheduleEverySeconds: 60, webhookLossRate: 0.02 };

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

export class SimulatedAutoscaler {
  readonly passes = { queue: 0, schedule: 0, interruption: 0 };
  webhooksLost = 0;
  webhooksDelivered = 0;
  passErrors = 0;
  private queued: JobEvent[] = [];
  private passCount = 0;
  private batchOpen = false;

  constructor(
    private readonly world: World,
    private readonly deps: Omit<ReconcileDeps, 'clock'>,
    private readonly opts: AutoscalerOptions,
    private readonly lossRng: Rng,
  ) {}

  start(): void {
    const world = this.world;
    world.onJobEvent = (e) => {
      if (this.lossRng.chance(this.opts.webhookLossRate)) {
        this.webhooksLost++;
        return;
      }
      this.webhooksDelivered++;
      this.queued.push(e);
      if (!this.batchOpen) {
        this.batchOpen = true;
        world.at(world.now + this.opts.batchWindowSeconds * 1000, () => {
          this.batchOpen = false;
          const events = this.queued;
          this.queued = [];
          return this.pass('queue', events);
        });
      }
    };
    world.onInterruption = () => world.at(world.now, () => this.pass('interruption', []));
    const every = this.opts.scheduleEverySeconds * 1000;
    const tick = () => {
      world.at(world.now + every, tick);
      return this.pass('schedule', []);
    };
    world.at(Math.ceil(world.now / every) * every, tick);
  }

  private async pass(trigger: PassInput['trigger'], events: JobEvent[]): Promise<void> {
    if (trigger !== 'manual') this.passes[trigger]++;
    const world = this.world;
    const passId = `sim-${(++this.passCount).toString().padStart(6, '0')}`;
    try {
      await reconcilePass({ ...this.deps, clock: { now: () => world.now } }, { events, trigger, passId });
    } catch (e) {
      // A pass that throws is retried by Lambda (SQS redelivers the batch): put the events back.
      this.passErrors++;
      this.deps.log.error('reconcile pass failed', { error: (e as Error).message, trigger });
      if (events.length) {
        this.queued.unshift(...events);
        if (!this.batchOpen) {
          this.batchOpen = true;
          world.at(world.now + this.opts.batchWindowSeconds * 1000, () => {
            this.batchOpen = false;
            const again = this.queued;
            this.queued = [];
            return this.pass('queue', again);
          });
        }
      }
    }
  }
}
