/**
 * `[runners.cache]` -> the managed cache (AWS S3 in this account, reached with the worker role:
 * worker.cache, plus the runner.cache keys the project does not own) or a cache of the pool's own
 * (S3-compatible servers, GCS, Azure, S3 with keys: runner.cache verbatim, keys from SSM).
 */
import { canonicalKey, RUNNER_SCHEMA, type Schema } from '../worker/runner-schema';
import { carryTable, isTable, show, type CarryContext } from './runner-settings';

type Table = Record<string, unknown>;
const CACHE_SCHEMA = RUNNER_SCHEMA.cache.type as Schema;
const S3_SCHEMA = CACHE_SCHEMA.s3.type as Schema;

/** Flat S3 keys of gitlab-runner before 12.0 (now only read under [runners.cache.s3]). */
const LEGACY_FLAT = ['ServerAddress', 'AccessKey', 'SecretKey', 'BucketName', 'BucketLocation', 'Insecure'];

export interface CacheResult {
  /** worker.cache (managed). */
  worker?: Table;
  /** runner.cache. */
  runner?: Table;
  /** Where the cache bucket was (BucketLocation), for the region checks. */
  location?: string;
}

/** Canonical keys at the cache level and in its s3 table, with legacy flat keys moved into s3. */
function normalise(cache: Table, at: string, ctx: CarryContext): { top: Table; s3: Table; s3At: Record<string, string> } {
  const top: Table = {};
  const s3: Table = {};
  const s3At: Record<string, string> = {};
  for (const [key, value] of Object.entries(cache)) {
    const c = canonicalKey(CACHE_SCHEMA, key);
    if (c === 's3' && isTable(value)) {
      for (const [k, v] of Object.entries(value)) {
        const ck = canonicalKey(S3_SCHEMA, k) ?? k;
        s3[ck] = v;
        s3At[ck] = `${at}.${key}.${k}`;
      }
    } else if (!c && LEGACY_FLAT.includes(canonicalKey(S3_SCHEMA, key) ?? '')) {
      const ck = canonicalKey(S3_SCHEMA, key)!;
      if (s3[ck] === undefined) {
        s3[ck] = value;
        s3At[ck] = `${at}.${key}`;
      } else ctx.report.dropped(`${at}.${key}`, `set in [runners.cache.s3] too, which is the one gitlab-runner reads`);
    } else top[key] = value;
  }
  return { top, s3, s3At };
}

export function migrateCache(cache: Table, at: string, ctx: CarryContext & { keepCacheKeys?: boolean; pi: number }): CacheResult {
  const { report } = ctx;
  const { top, s3, s3At } = normalise(cache, at, ctx);
  const typeKey = Object.keys(top).find((k) => k.toLowerCase() === 'type');
  const type = typeKey ? top[typeKey] : undefined;
  const hasS3 = Object.keys(s3).length > 0;
  const location = typeof s3.BucketLocation === 'string' ? s3.BucketLocation : undefined;
  const server = typeof s3.ServerAddress === 'string' ? s3.ServerAddress : '';
  const onAws = server === '' || /(^|\.)amazonaws\.com(\.cn)?(:443)?$/.test(server);
  const hasKeys = typeof s3.AccessKey === 'string' && s3.AccessKey !== '' && !/[<>]|x{3,}|your[ _-]/i.test(s3.AccessKey);
  const flat = Object.keys(s3At).filter((k) => !/\.s3\./i.test(s3At[k]));
  if (flat.length) ctx.warn(at, `${flat.join(', ')}: pre-12.0 flat keys; gitlab-runner reads them only under [runners.cache.s3], so they were read as that`);

  if (type !== undefined && typeof type !== 'string') {
    report.dropped(`${at}.${typeKey}`, 'Type must be a string');
    return {};
  }
  const s3Type = type === undefined || type === 's3' || type === 's3v2';
  if (type === undefined && !hasS3) {
    // No distributed cache configured: gitlab-runner had none; the pool gets the managed one.
    for (const k of Object.keys(top)) carryManagedTop(k, top[k], at, ctx);
    return { worker: managedWorker(top, at, ctx) };
  }
  if (type !== undefined && !['s3', 's3v2', 'gcs', 'gcsv2', 'azure'].includes(type)) {
    report.dropped(at, `cache Type "${type}" is not one gitlab-runner has (s3, s3v2, gcs, gcsv2, azure); the pool uses the managed S3 cache`);
    return {};
  }
  if (s3Type && onAws && !(hasKeys && ctx.keepCacheKeys)) {
    // Managed: the deployment's bucket or the one named, reached with the worker role.
    if (typeKey) report.mapped(`${at}.${typeKey}`, `pools[${ctx.pi}].worker.cache`, 'AWS S3, reached with the worker role');
    const worker = managedWorker(top, at, ctx);
    const runner: Table = {};
    for (const k of Object.keys(top)) if (k !== typeKey && k.toLowerCase() !== 'shared' && k.toLowerCase() !== 's3') carryManagedTop(k, top[k], at, ctx, runner);
    const s3Out: Table = {};
    for (const [k, v] of Object.entries(s3)) {
      const a = s3At[k];
      if (k === 'BucketName') {
        if (typeof v === 'string' && /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(v)) {
          worker.bucketName = v;
          report.mapped(a, `pools[${ctx.pi}].worker.cache.bucketName`, 'the worker role gets access to this bucket; if it is in another account, its bucket policy must allow the worker roles (or rerun migrate with --keep-cache-keys)');
        } else report.dropped(a, `${JSON.stringify(v)} is not a bucket name; the deployment's cache bucket is used`);
      } else if (k === 'BucketLocation') report.replaced(a, 'region', 'the managed cache is in the deployment\'s region');
      else if (k === 'ServerAddress') report.replaced(a, 'the region\'s S3 endpoint', 'the managed cache is AWS S3');
      else if (k === 'AuthenticationType') report.replaced(a, 'AuthenticationType iam', 'the worker role; no keys');
      else if (['AccessKey', 'SecretKey', 'SessionToken'].includes(k))
        report.replaced(a, 'the worker role', 'not copied (secret): workers reach the cache with their role; delete the IAM user\'s key once migrated');
      else if (k === 'Insecure') report.replaced(a, 'HTTPS', 'the managed cache is reached over HTTPS only');
      else {
        carryTable({ [k]: v }, S3_SCHEMA, ['cache', 's3'], a.slice(0, a.lastIndexOf('.')), s3Out, ctx);
        if (k === 'ServerSideEncryptionKeyID' || (k === 'ServerSideEncryption' && /kms/i.test(show(v))))
          ctx.warn(a, 'a KMS-encrypted cache: allow the worker role kms:GenerateDataKey and kms:Decrypt on the key (worker.iam.statements)');
        if (k === 'RoleARN' || k === 'UploadRoleARN') ctx.warn(a, `the runner assumes ${show(v)} for the cache: allow the worker role sts:AssumeRole on it (worker.iam.statements) and let its trust policy name the worker role`);
      }
    }
    for (const k of ['gcs', 'azure']) {
      const key = Object.keys(top).find((x) => x.toLowerCase() === k);
      if (key) report.dropped(`${at}.${key}`, `not used with Type ${show(type ?? 's3')}`);
    }
    if (Object.keys(s3Out).length) runner.s3 = s3Out;
    if (worker.shared === false && worker.bucketName === undefined) {
      // Here `shared: false` without a bucket of its own means no cache at all; gitlab-runner's
      // Shared = false only kept this runner's objects apart (under runner/<token>/).
      delete worker.shared;
      const entry = report.entries.find((e) => e.at.toLowerCase() === `${at}.shared`.toLowerCase());
      if (entry)
        Object.assign(entry, {
          outcome: 'replaced',
          to: `pools[${ctx.pi}].worker.cache`,
          why: 'Shared = false kept this runner\'s cache objects apart from other runners\' (under runner/<token>/) in the same bucket; worker.cache.shared: false without a bucketName would leave the pool without a cache, so it uses the deployment\'s bucket (set worker.cache.bucketName to keep it in a bucket of its own)',
        });
    }
    return { worker, runner: Object.keys(runner).length ? runner : undefined, location };
  }

  // A cache of the pool's own: runner.cache verbatim; its keys come from SSM.
  const runner: Table = {};
  const input: Table = { ...top };
  const s3Key = Object.keys(top).find((k) => k.toLowerCase() === 's3');
  if (hasS3) {
    if (s3Key) delete input[s3Key];
    input.s3 = s3;
  }
  carryTable(input, CACHE_SCHEMA, ['cache'], at, runner, ctx);
  if (type === undefined) {
    runner.Type = 's3';
    report.mapped(`${at} (no Type)`, `pools[${ctx.pi}].runner.cache.Type`, 'S3 keys without a Type: written Type = "s3"');
  }
  if (hasKeys && onAws) ctx.warn(at, 'kept with its keys (--keep-cache-keys): the worker reads them from SSM; the deployment creates no cache bucket for this pool');
  else if (s3Type) ctx.warn(at, `${server || 'an S3 server'} is not AWS S3 in this account: the pool keeps this cache, its keys come from SSM`);
  return { runner, location };
}

/** Shared -> worker.cache.shared; Path -> worker.cache.path (the pool's prefix, which runners that shared a Path keep sharing). */
function managedWorker(top: Table, at: string, ctx: CarryContext & { pi: number }): Table {
  const worker: Table = {};
  const path = Object.keys(top).find((k) => k.toLowerCase() === 'path');
  if (path) {
    const v = top[path];
    if (typeof v === 'string' && /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/.test(v)) {
      worker.path = v;
      ctx.report.mapped(`${at}.${path}`, `pools[${ctx.pi}].worker.cache.path`, 'the pool\'s key prefix, and the only one its workers may touch; runners that shared it keep sharing');
    } else ctx.report.replaced(`${at}.${path}`, `pools[${ctx.pi}].worker.cache.path`, `${JSON.stringify(show(v))} is not one path segment (1-63 of letters, digits, _ . -): the pool's own prefix (its name) is used`);
  }
  const shared = Object.keys(top).find((k) => k.toLowerCase() === 'shared');
  if (shared) {
    if (typeof top[shared] === 'boolean') {
      worker.shared = top[shared];
      ctx.report.mapped(`${at}.${shared}`, `pools[${ctx.pi}].worker.cache.shared`);
    } else ctx.report.dropped(`${at}.${shared}`, 'must be true or false');
  }
  return worker;
}

function carryManagedTop(key: string, value: unknown, at: string, ctx: CarryContext, out: Table = {}): void {
  const k = key.toLowerCase();
  if (k === 'shared' || k === 'type' || k === 's3' || k === 'path') return;
  if (k === 'gcs' || k === 'azure') ctx.report.dropped(`${at}.${key}`, 'no cache Type selects it');
  else carryTable({ [key]: value }, CACHE_SCHEMA, ['cache'], at, out, ctx);
}
