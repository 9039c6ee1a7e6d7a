/**
 * Operator holds in SSM Parameter Store (lib/controller/holds.ts): `<base>/operator/<pool>`.
 *
 * The controller reads them at the start of every pass, so the read must be cheap in SSM's
 * account-wide budget (GetParameter* share 40 TPS, facts.md): one GetParametersByPath (10
 * parameters a page, so one call for up to 10 held pools), at most once per `cacheMs` per Lambda
 * container. The loop starts a pass at most every 5 s (lib/controller/loop.ts), and the cache is
 * 5 s: at most 12 reads a minute per deployment, under 1 % of the 40 TPS. A hold takes effect at
 * the first pass that starts 5 s after it was written.
 */
import { PutParameterCommand, type SSMClient } from '@aws-sdk/client-ssm';
import type { PoolHold } from '../model';
import type { Logger, OperatorHolds } from '../controller/ports';
import { decodeHold, decodeHolds, encodeHold, holdParameter, type HoldRecord } from '../controller/holds';
import { SsmParameterBackend } from './ssm-state-store';
import { realRetryEnv, THROTTLE_POLICY, withRetry, type RetryEnv } from './retry';

export const HOLDS_CACHE_MS = 5_000;

export interface SsmHoldsOptions {
  ssm: SSMClient;
  /** `parameterNames(config, stage).operator`. */
  path: string;
  cacheMs?: number;
  now?: () => number;
  log?: Logger;
  retryEnv?: RetryEnv;
}

/** Every pool's raw hold value under the path (pool name -> value), all pages, retried on throttling. */
export async function readHoldValues(opts: { ssm: SSMClient; path: string; retryEnv?: RetryEnv }): Promise<Map<string, string>> {
  return new SsmParameterBackend({ ssm: opts.ssm, retryEnv: opts.retryEnv }, opts.path).readAll();
}

/** The records, for the CLI and `status` (a value that cannot be decoded is reported as such). */
export async function readHoldRecords(opts: { ssm: SSMClient; path: string; retryEnv?: RetryEnv }): Promise<Map<string, HoldRecord | { error: string }>> {
  const out = new Map<string, HoldRecord | { error: string }>();
  for (const [pool, value] of await readHoldValues(opts)) {
    try {
      out.set(pool, decodeHold(value));
    } catch (e) {
      out.set(pool, { error: (e as Error).message });
    }
  }
  return out;
}

/** Writes one pool's hold (PutParameter, standard tier, overwriting: the parameter keeps its history). Returns the new version. */
export async function writeHold(opts: { ssm: SSMClient; path: string; retryEnv?: RetryEnv }, pool: string, record: HoldRecord): Promise<number | undefined> {
  const out = await withRetry(
    () =>
      opts.ssm.send(
        new PutParameterCommand({
          Name: holdParameter(opts.path, pool),
          Value: encodeHold(record),
          Type: 'String',
          Tier: 'Standard',
          Overwrite: true,
          Description: `gitlab-spot-autoscaler operator hold of pool ${pool} (pause / drain / resume); history: aws ssm get-parameter-history`,
        }),
      ),
    { policy: THROTTLE_POLICY, env: opts.retryEnv ?? realRetryEnv },
  );
  return out.Version;
}

/** The controller's reader: cached briefly; on a failed read the last holds read stay in force. */
export class SsmOperatorHolds implements OperatorHolds {
  private last?: { holds: Record<string, PoolHold>; at: number };
  private seen = new Map<string, string>();
  /** GetParametersByPath reads made (not served from the cache). */
  reads = 0;
  constructor(private readonly opts: SsmHoldsOptions) {}

  async read(): Promise<Readonly<Record<string, PoolHold>>> {
    const now = (this.opts.now ?? Date.now)();
    if (this.last && now - this.last.at < (this.opts.cacheMs ?? HOLDS_CACHE_MS)) return this.last.holds;
    this.reads++;
    let values: Map<string, string>;
    try {
      values = await readHoldValues(this.opts);
    } catch (e) {
      if (!this.last) throw new Error(`could not read the operator holds under ${this.opts.path}: ${(e as Error).message}`, { cause: e });
      this.opts.log?.warn('operator holds could not be read; the last ones read stay in force', { path: this.opts.path, error: (e as Error).message, readAt: new Date(this.last.at).toISOString() });
      return this.last.holds;
    }
    const holds = decodeHolds(values, (pool, message) => this.opts.log?.error('operator hold unreadable; the pool is held as paused', { pool, parameter: holdParameter(this.opts.path, pool), error: message }));
    // Who changed what, once per change and container: the audit trail in the function's logs.
    const first = !this.last;
    for (const [pool, value] of values) {
      if (this.seen.get(pool) === value || (first && !holds[pool])) continue;
      let record: HoldRecord | undefined;
      try {
        record = decodeHold(value);
      } catch {
        record = undefined; // logged above
      }
      this.opts.log?.info(first ? 'operator hold in force' : 'operator hold changed', { pool, ...(record ?? { mode: 'paused', unreadable: true }) });
    }
    this.seen = new Map(values);
    this.last = { holds, at: now };
    return holds;
  }
}
