/**
 * Controller state in SSM Parameter Store (encoding: lib/controller/state.ts), and secrets.
 *
 * SSM's budget is small and account-wide (facts.md): GetParameter* share 40 TPS,
 * GetParametersByPath returns at most 10 parameters a page, PutParameter is reported at 3 TPS and
 * throttles with ThrottlingException / TooManyUpdates. Reads are paginated; every call is retried
 * with backoff and jitter within a bounded budget (retry.ts); writes are counted.
 */
import { GetParameterCommand, GetParametersByPathCommand, PutParameterCommand, type SSMClient } from '@aws-sdk/client-ssm';
import type { Config } from '../config';
import type { Logger } from '../controller/ports';
import { ShardedStateStore, type ParameterBackend, type StoreCacheOptions } from '../controller/state';
import { errorCode, realRetryEnv, THROTTLE_POLICY, withRetry, type RetryEnv, type RetryPolicy, type RetryStats } from './retry';
import { parameterNames } from '../config';

export interface SsmOptions {
  ssm: SSMClient;
  retryEnv?: RetryEnv;
  retryPolicy?: RetryPolicy;
  stats?: RetryStats;
}

/** Parameters under one path (the state prefix), names relative to it. */
export class SsmParameterBackend implements ParameterBackend {
  /** PutParameter calls that succeeded. */
  writes = 0;
  /** GetParametersByPath pages read. */
  reads = 0;
  private readonly path: string;

  constructor(
    private readonly opts: SsmOptions,
    path: string,
  ) {
    this.path = path.replace(/\/$/, '');
  }

  private call<T>(fn: () => Promise<T>): Promise<T> {
    return withRetry(fn, { policy: this.opts.retryPolicy ?? THROTTLE_POLICY, env: this.opts.retryEnv ?? realRetryEnv, stats: this.opts.stats });
  }

  async readAll(): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    let token: string | undefined;
    do {
      const page = await this.call(() => this.opts.ssm.send(new GetParametersByPathCommand({ Path: this.path, Recursive: true, MaxResults: 10, NextToken: token })));
      this.reads++;
      for (const p of page.Parameters ?? []) if (p.Name && p.Value !== undefined) out.set(p.Name.slice(this.path.length + 1), p.Value);
      token = page.NextToken;
    } while (token);
    return out;
  }

  async write(name: string, value: string): Promise<void> {
    // Standard tier: free and 4 KB; the encoding keeps every value under that (state.ts).
    await this.call(() => this.opts.ssm.send(new PutParameterCommand({ Name: `${this.path}/${name}`, Value: value, Type: 'String', Tier: 'Standard', Overwrite: true })));
    this.writes++;
  }
}

/** The reconcile pass's StateStore in AWS: `<ssmPrefix>/<deployment>/<stage>/state/...`. */
export class SsmStateStore extends ShardedStateStore {
  readonly parameters: SsmParameterBackend;
  constructor(opts: SsmOptions & StoreCacheOptions & { config: Config; stage: string; log?: Logger }) {
    const backend = new SsmParameterBackend(opts, parameterNames(opts.config, opts.stage).state);
    super(backend, opts.log, { cacheMs: opts.cacheMs, now: opts.now });
    this.parameters = backend;
  }
}

// ---- secrets -------------------------------------------------------------------------------

const SECRET_TTL_MS = 5 * 60_000;
const secretCache = new Map<string, { value: string; at: number }>();

/**
 * Reads a SecureString (decrypted), cached for a few minutes per Lambda container so a burst of
 * passes does not spend the shared 40 TPS read budget; a rotated secret is picked up after the
 * cache expires. The value is never logged; errors name the parameter, not the value.
 */
export async function loadSecret(ssm: SSMClient, name: string, opts: { now?: () => number; ttlMs?: number; retryEnv?: RetryEnv } = {}): Promise<string> {
  const now = (opts.now ?? Date.now)();
  const cached = secretCache.get(name);
  if (cached && now - cached.at < (opts.ttlMs ?? SECRET_TTL_MS)) return cached.value;
  let value: string | undefined;
  try {
    const out = await withRetry(() => ssm.send(new GetParameterCommand({ Name: name, WithDecryption: true })), { env: opts.retryEnv });
    value = out.Parameter?.Value;
  } catch (e) {
    const code = errorCode(e);
    if (code === 'ParameterNotFound') throw new Error(`secret ${name} does not exist in SSM Parameter Store; create it as a SecureString (aws ssm put-parameter --type SecureString --name ${name} --value ...)`);
    throw new Error(`could not read secret ${name} from SSM (${code})`, { cause: e });
  }
  if (!value) throw new Error(`secret ${name} is empty`);
  secretCache.set(name, { value, at: now });
  return value;
}

/** Tests and key rotation: forget cached secrets. */
export function clearSecretCache(): void {
  secretCache.clear();
}
