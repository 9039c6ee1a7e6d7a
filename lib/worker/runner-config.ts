/**
 * The gitlab-runner config.toml a worker of a pool writes (docs/worker.md, "The runner's
 * config.toml"): what this project decides (name, url, token, executor docker, the managed cache,
 * the CA file) plus the pool's own gitlab-runner settings (`runner:`) verbatim, and references
 * `{{ssm:/name}}` where a secret goes (the runner token, `runnerSecrets`). The worker replaces each
 * reference with the parameter's value at boot, escaped for a TOML string; nothing secret is here.
 *
 * `gitlab-spot-autoscaler worker-config` prints exactly this text. Pure: no AWS, no I/O.
 */
import { stringify as toToml } from 'smol-toml';
import { cachePath, parameterNames, runnerCacheIsExternal, usesDeploymentCache, type Config, type Pool } from '../config';

export { usesDeploymentCache } from '../config';

export interface RunnerConfigOptions {
  config: Config;
  pool: Pool;
  stage: string;
  /** Region of the managed S3 cache; unset = the worker fills in its own region at boot (__GSA_REGION__). */
  region?: string;
  /**
   * The deployment's cache bucket, used when the pool names none (worker.cache.bucketName). Unset:
   * DEPLOYMENT_CACHE_PLACEHOLDER, which the worker replaces at boot with its cache-bucket tag.
   */
  cacheBucket?: string;
}

/**
 * Where the deployment's cache bucket name goes in config.toml when it is not known here (it is
 * not at deploy time: CloudFormation generates it). The worker puts the name from its instance's
 * cache-bucket tag (lib/controller/tags.ts) in its place at boot, or shuts down without it.
 */
export const DEPLOYMENT_CACHE_PLACEHOLDER = '__DEPLOYMENT_CACHE_BUCKET__';

/** Where the worker keeps config.toml and the CA file (root only, 0700): no job volume may expose it (lib/host-paths.ts refuses it). */
export const WORKER_CONFIG_DIR = '/etc/gsa-worker';
export const WORKER_CA_FILE = `${WORKER_CONFIG_DIR}/ca.crt`;
/** Filled in by the worker from instance metadata when the region is not known when rendering. */
export const REGION_PLACEHOLDER = '__GSA_REGION__';

/** A secret's place in config.toml: the worker replaces it with the SSM parameter's value. */
export function secretReference(parameter: string): string {
  return `{{ssm:${parameter}}}`;
}
export const SECRET_REFERENCE = /\{\{ssm:(\/[A-Za-z0-9_.\-/]+)\}\}/g;

export function runnerNameFor(config: Config, stage: string, pool: Pool): string {
  return `${config.deployment}-${stage}-${pool.name}`;
}

/** The SSM parameters a worker of the pool reads at boot besides its token, with the setting each fills. */
export function runnerSecretParameters(config: Config, stage: string, pool: Pool): { setting: string; parameter: string }[] {
  const names = parameterNames(config, stage);
  return pool.runnerSecrets.map((s) => ({ setting: s.setting, parameter: names.runnerSecret(pool, s) }));
}

type Table = Record<string, unknown>;
const isTable = (x: unknown): x is Table => typeof x === 'object' && x !== null && !Array.isArray(x) && !(x instanceof Date);

function setPath(root: Table, path: string[], value: unknown): void {
  let t = root;
  for (const key of path.slice(0, -1)) {
    if (!isTable(t[key])) t[key] = {};
    t = t[key] as Table;
  }
  t[path[path.length - 1]] = value;
}

/** The [[runners]] entry of the worker's config.toml, as an object. */
export function workerRunnerTable(opts: RunnerConfigOptions): Table {
  const { config, pool, stage } = opts;
  const docker = pool.worker.docker;
  // The pool's carried settings, deep-copied: the project's keys are added around them (the
  // config validator refuses a carried key the project owns, so nothing is overwritten).
  const carried = structuredClone(pool.runner ?? {}) as Table;
  const runner: Table = {
    name: runnerNameFor(config, stage, pool),
    url: config.gitlab.url.replace(/\/+$/, ''),
    token: secretReference(parameterNames(config, stage).runnerToken(pool)),
    executor: 'docker',
  };
  if (pool.worker.caCertificate) runner['tls-ca-file'] = WORKER_CA_FILE;
  Object.assign(runner, carried);
  runner.docker = { image: docker.image, privileged: docker.privileged, volumes: docker.volumes, disable_cache: docker.disableCache, ...(isTable(carried.docker) ? carried.docker : {}) };

  if (!runnerCacheIsExternal(pool)) {
    const bucket = pool.worker.cache.bucketName ?? (usesDeploymentCache(pool) ? (opts.cacheBucket ?? DEPLOYMENT_CACHE_PLACEHOLDER) : undefined);
    const extra = isTable(carried.cache) ? carried.cache : {};
    delete runner.cache;
    if (bucket) {
      runner.cache = {
        Type: 's3',
        // The pool's own key prefix: its workers may touch nothing else in the bucket (IAM, lib/deploy/stack.ts).
        Path: cachePath(pool),
        Shared: pool.worker.cache.shared,
        ...extra,
        // AuthenticationType iam: the instance profile's credentials, so no key is ever written here.
        s3: {
          ServerAddress: 's3.amazonaws.com',
          BucketName: bucket,
          BucketLocation: opts.region ?? config.region ?? REGION_PLACEHOLDER,
          AuthenticationType: 'iam',
          ...(isTable(extra.s3) ? extra.s3 : {}),
        },
      };
    }
  }

  for (const { setting, parameter } of runnerSecretParameters(config, stage, pool)) {
    const ref = secretReference(parameter);
    const env = /^environment\.(.+)$/.exec(setting);
    if (env) runner.environment = [...((runner.environment as string[] | undefined) ?? []), `${env[1]}=${ref}`];
    else setPath(runner, setting.split('.'), ref);
  }
  return runner;
}

/**
 * The worker's config.toml. `concurrent = 1`: run-single runs builds one after another (it reads
 * no global setting; the line documents it). Keys are gitlab-runner's; compare it as TOML.
 */
export function workerConfigToml(opts: RunnerConfigOptions): string {
  return toToml({ concurrent: 1, runners: [workerRunnerTable(opts)] });
}
