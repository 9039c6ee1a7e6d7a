/**
 * Operator holds: `gitlab-spot-autoscaler pause | drain | resume` (lib/cli/commands/hold.ts).
 *
 * One SSM parameter per pool, `<ssmPrefix>/<deployment>/<stage>/operator/<pool>`, written by the
 * operator and only read by the controller. Not in the controller's state: that has one writer
 * (the reconcile function) and no conditional write (facts.md), and an operator writing beside it
 * could lose a pass's save or have its own change overwritten. One parameter per pool, so two
 * operators holding two pools never overwrite each other, and SSM's parameter history (the last
 * 100 versions, each with the IAM identity that wrote it) is the audit trail of each pool.
 *
 * A resume writes `running` instead of deleting the parameter: deleting it would delete its history.
 * Pure: encoding, decoding and what a change means; the SSM adapter is lib/aws/operator-holds.ts.
 */
import type { PoolHold } from '../model';

export type HoldMode = PoolHold['mode'] | 'running';
export const HOLD_MODES: readonly HoldMode[] = ['paused', 'draining', 'running'];

/** What one pool's parameter says. `running` = not held (resumed). */
export interface HoldRecord {
  mode: HoldMode;
  by: string;
  at: string;
  reason?: string;
}

/** The parameter path of a deployment's holds, under its base (`parameterNames(config, stage).operator`). */
export const holdParameter = (operatorPath: string, pool: string) => `${operatorPath.replace(/\/$/, '')}/${pool}`;

/** Reasons are for people; bounded so that a value stays far under SSM's 4 KB standard tier. */
export const MAX_REASON = 500;
const MAX_BY = 2048;

export class HoldError extends Error {
  override name = 'HoldError';
}

export function encodeHold(r: HoldRecord): string {
  if (!HOLD_MODES.includes(r.mode)) throw new HoldError(`hold mode "${r.mode}" is not one of ${HOLD_MODES.join(', ')}`);
  if (!r.by || r.by.length > MAX_BY) throw new HoldError('a hold names who set it (an ARN of at most 2,048 characters)');
  if (Number.isNaN(Date.parse(r.at))) throw new HoldError(`hold time "${r.at}" is not an ISO 8601 instant`);
  if (r.reason !== undefined && r.reason.length > MAX_REASON) throw new HoldError(`a hold's reason is at most ${MAX_REASON} characters (got ${r.reason.length})`);
  return JSON.stringify({ v: 1, mode: r.mode, by: r.by, at: r.at, ...(r.reason ? { reason: r.reason } : {}) });
}

/** The record a parameter holds; throws HoldError naming what is wrong (the controller then keeps the pool held: see decodeHolds). */
export function decodeHold(value: string): HoldRecord {
  let raw: unknown;
  try {
    raw = JSON.parse(value);
  } catch {
    throw new HoldError('not JSON');
  }
  const o = raw as Record<string, unknown>;
  if (!o || typeof o !== 'object' || o.v !== 1) throw new HoldError('not a version-1 hold record');
  if (!HOLD_MODES.includes(o.mode as HoldMode)) throw new HoldError(`mode ${JSON.stringify(o.mode)} is not one of ${HOLD_MODES.join(', ')}`);
  if (typeof o.by !== 'string' || typeof o.at !== 'string') throw new HoldError('"by" and "at" must be strings');
  return { mode: o.mode as HoldMode, by: o.by.slice(0, MAX_BY), at: o.at, ...(typeof o.reason === 'string' ? { reason: o.reason.slice(0, MAX_REASON) } : {}) };
}

/**
 * The holds in force from the parameters read (pool name -> value). A value that cannot be read
 * holds the pool as paused: it was written by someone who wanted to hold it, and pausing is the
 * reversible choice (launches wait; nothing is retired). `problem` reports it.
 */
export function decodeHolds(values: ReadonlyMap<string, string>, problem: (pool: string, message: string) => void = () => {}): Record<string, PoolHold> {
  const out: Record<string, PoolHold> = {};
  for (const [pool, value] of values) {
    let r: HoldRecord;
    try {
      r = decodeHold(value);
    } catch (e) {
      problem(pool, (e as Error).message);
      out[pool] = { mode: 'paused', by: 'unknown (unreadable hold parameter)', at: new Date(0).toISOString(), reason: `the hold parameter cannot be read: ${(e as Error).message}; run resume or pause again` };
      continue;
    }
    if (r.mode !== 'running') out[pool] = { mode: r.mode, by: r.by, at: r.at, ...(r.reason ? { reason: r.reason } : {}) };
  }
  return out;
}

/** What a command asks for, and what it changes: `undefined` when the pool is already so (nothing to write). */
export function holdChange(current: HoldRecord | undefined, wanted: HoldMode): { from: HoldMode } | undefined {
  const from = current?.mode ?? 'running';
  return from === wanted ? undefined : { from };
}

/** "paused by arn:... at 2026-11-30T10:00:00Z (reason)": for logs, decisions and the CLI. */
export function describeHold(h: { mode: HoldMode; by: string; at: string; reason?: string }): string {
  return `${h.mode === 'running' ? 'resumed' : h.mode} by ${h.by} at ${h.at}${h.reason ? ` (${h.reason})` : ''}`;
}
