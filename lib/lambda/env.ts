/**
 * What a Lambda reads from its environment, in one place, with errors that name the variable.
 * serverless.yml (via lib/deploy/stack.ts) sets these; scripts/dev.mjs sets them for moto.
 */
import { readFileSync } from 'node:fs';
import { bucketNameProblem } from '../controller/tags';

export class EnvError extends Error {
  override name = 'EnvError';
}

export type Env = Record<string, string | undefined>;

export function requireEnv(env: Env, name: string, what: string): string {
  const v = env[name];
  if (v === undefined || v.trim() === '') throw new EnvError(`environment variable ${name} is not set (${what}); serverless.yml sets it — was the function deployed by this project's serverless.yml?`);
  return v;
}

export function intEnv(env: Env, name: string, fallback: number, min = 0): number {
  const v = env[name];
  if (v === undefined || v === '') return fallback;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < min) throw new EnvError(`environment variable ${name}=${JSON.stringify(v)} must be a whole number >= ${min}`);
  return n;
}

/** Environment of the webhook Lambda: deliberately tiny, so it loads no config code. */
export interface WebhookEnv {
  queueUrl: string;
  webhookSecretParameter: string;
  secretCacheSeconds: number;
  maxBodyBytes: number;
}

export function webhookEnv(env: Env = process.env): WebhookEnv {
  return {
    queueUrl: requireEnv(env, 'QUEUE_URL', 'the SQS queue job events are sent to'),
    webhookSecretParameter: requireEnv(env, 'WEBHOOK_SECRET_PARAMETER', 'the SSM SecureString parameter holding the GitLab webhook secret'),
    // A rotated secret takes effect within this many seconds; 0 reads SSM on every delivery.
    secretCacheSeconds: intEnv(env, 'WEBHOOK_SECRET_CACHE_SECONDS', 300),
    maxBodyBytes: intEnv(env, 'WEBHOOK_MAX_BODY_BYTES', 256 * 1024, 1024),
  };
}

/** Environment of the reconcile and interruption Lambdas. */
export interface ControllerEnv {
  stage: string;
  /** Where the validated config comes from: an SSM parameter (deployed) or a file (dev, tests). */
  configSource: { kind: 'ssm'; name: string } | { kind: 'file'; path: string };
  queueUrl?: string;
  /** The worker-report queue the reconcile function reads (workers send their state there). */
  reportQueueUrl?: string;
  /** Unique ids of the worker roles (AROA...): a report must come from one of them (lib/controller/reports.ts). */
  workerRoleIds: string[];
  /** Launch template name per pool (the stack creates one per pool). */
  launchTemplates: Record<string, string>;
  /** The deployment's cache bucket (CACHE_BUCKET): tagged on the workers of pools that use it (lib/aws/ec2-fleet.ts). */
  cacheBucket?: string;
}

export function controllerEnv(env: Env = process.env): ControllerEnv {
  const stage = requireEnv(env, 'STAGE', 'the deployment stage, e.g. "prod"');
  const param = env.CONFIG_PARAMETER;
  const file = env.CONFIG_FILE;
  if (!param && !file) throw new EnvError('set CONFIG_PARAMETER (an SSM parameter holding the config) or CONFIG_FILE (a path to config.yaml)');
  let launchTemplates: Record<string, string> = {};
  if (env.LAUNCH_TEMPLATES) {
    try {
      const parsed = JSON.parse(env.LAUNCH_TEMPLATES) as unknown;
      if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed) || Object.values(parsed).some((v) => typeof v !== 'string')) throw new Error('not an object of strings');
      launchTemplates = parsed as Record<string, string>;
    } catch (e) {
      throw new EnvError(`environment variable LAUNCH_TEMPLATES must be a JSON object {"pool": "launch-template-name"}: ${(e as Error).message}`);
    }
  }
  const reportQueueUrl = env.REPORT_QUEUE_URL || undefined;
  const workerRoleIds = (env.WORKER_ROLE_IDS ?? '').split(',').map((x) => x.trim()).filter(Boolean);
  for (const id of workerRoleIds) if (!/^[A-Z0-9]{8,128}$/.test(id)) throw new EnvError(`environment variable WORKER_ROLE_IDS: ${JSON.stringify(id)} is not an IAM role id (AROA...)`);
  // Reports are trusted only from the worker roles: a report queue without them is a deployment error, never a silent downgrade.
  if (reportQueueUrl && workerRoleIds.length === 0)
    throw new EnvError('environment variable WORKER_ROLE_IDS is not set (the worker roles\' ids, comma-separated); REPORT_QUEUE_URL is, and reports are trusted only from those roles');
  // The name goes into a tag and from there into the workers' config.toml: a wrong one must stop the function, not every worker.
  const cacheBucket = env.CACHE_BUCKET || undefined;
  const bucketProblem = cacheBucket === undefined ? undefined : bucketNameProblem(cacheBucket);
  if (bucketProblem) throw new EnvError(`environment variable CACHE_BUCKET: ${JSON.stringify(cacheBucket)} is not an S3 bucket name (${bucketProblem})`);
  return {
    stage,
    configSource: file ? { kind: 'file', path: file } : { kind: 'ssm', name: param! },
    queueUrl: env.QUEUE_URL || undefined,
    reportQueueUrl,
    workerRoleIds,
    launchTemplates,
    cacheBucket,
  };
}

/** Reads the config text from its source. `getParameter` is injected so this file loads no SDK. */
export async function readConfigText(source: ControllerEnv['configSource'], getParameter: (name: string) => Promise<string>): Promise<{ text: string; origin: string }> {
  if (source.kind === 'file') return { text: readFileSync(source.path, 'utf8'), origin: source.path };
  return { text: await getParameter(source.name), origin: `ssm:${source.name}` };
}

/**
 * A value fetched at most once per `ttlMs` and shared by concurrent callers. Used for the webhook
 * secret (rotation takes effect within the TTL) and the config.
 *
 * A failed fetch is remembered for `failureTtlMs` (default 0: not at all): callers within that time
 * get the same error without a new fetch. The webhook uses it so that a flood of requests during an
 * SSM outage costs each container one SSM read per interval, not one (with retries) per request
 * against SSM's account-wide 40 TPS.
 *
 * `staleIfError` (default: never): when a refresh fails with an error it accepts (a throttle, an
 * outage; not a configuration error), callers get the last good value instead while it is younger
 * than `maxAgeMs`, and the failure is still remembered for `failureTtlMs`. So an SSM throttle at the
 * moment a warm container's secret expires does not turn it into 503s for every delivery.
 */
export function cached<T>(
  fetch: () => Promise<T>,
  ttlMs: number,
  clock: () => number = Date.now,
  opts: { failureTtlMs?: number; staleIfError?: { maxAgeMs: number; when(e: unknown): boolean } } = {},
): { get(): Promise<T>; reset(): void } {
  let value: { v: T; at: number } | undefined;
  let failure: { e: unknown; at: number } | undefined;
  let inflight: Promise<T> | undefined;
  const failureTtl = opts.failureTtlMs ?? 0;
  const stale = (e: unknown) => (value && opts.staleIfError && clock() - value.at < opts.staleIfError.maxAgeMs && opts.staleIfError.when(e) ? value : undefined);
  const orStale = (e: unknown): Promise<T> => {
    const s = stale(e);
    return s ? Promise.resolve(s.v) : Promise.reject(e);
  };
  return {
    get() {
      if (value && (ttlMs === Infinity || clock() - value.at < ttlMs)) return Promise.resolve(value.v);
      if (failure && clock() - failure.at < failureTtl) return orStale(failure.e);
      if (!inflight)
        inflight = fetch().then(
          (v) => {
            value = { v, at: clock() };
            failure = undefined;
            inflight = undefined;
            return v;
          },
          (e) => {
            failure = { e, at: clock() };
            inflight = undefined;
            throw e;
          },
        );
      return inflight.catch(orStale);
    },
    reset() {
      value = undefined;
      failure = undefined;
      inflight = undefined;
    },
  };
}
