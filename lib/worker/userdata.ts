/**
 * The user data a worker of a pool boots with: one bash script, rendered from the pool's config.
 *
 * The script (script.ts) is the same for every pool; this module puts the pool's values in front
 * of it as shell variables and renders the gitlab-runner config.toml it writes (without the
 * token: the worker reads that from SSM at boot). What the worker does, and why, is in
 * docs/worker.md. Pure: no AWS, no I/O.
 */
import { stringify as toToml } from 'smol-toml';
import { DEFAULTS, parameterNames, type Config, type Pool } from '../config';
import { TAG_PREFIX } from '../controller/tags';
import { WORKER_SCRIPT } from './script';

export interface UserDataOptions {
  config: Config;
  pool: Pool;
  stage: string;
  /** Region for the AWS CLI and the S3 cache; default config.region, else the instance's own (IMDS). */
  region?: string;
  /** The deployment's cache bucket, used when the pool names none (worker.cache.bucketName). */
  cacheBucket?: string;
  /** Seconds after which the worker stops taking jobs and leaves; default the pool's worker.maxLifetime. */
  maxLifetime?: number;
  /** gitlab-runner release downloaded when the AMI has none: "latest" or "v17.8.3". */
  runnerVersion?: string;
}

export const WORKER_DEFAULTS = {
  runnerVersion: 'latest',
};

/** EC2 refuses user data over 16 KB (before base64): RunInstances / CreateLaunchTemplate UserData. */
export const USER_DATA_LIMIT_BYTES = 16 * 1024;

/** Where the worker keeps config.toml (root only, 0700): no job volume may expose it. */
export const WORKER_CONFIG_DIR = '/etc/gsa-worker';

export class UserDataError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UserDataError';
  }
}

/** Single-quoted for bash: nothing inside is expanded. */
export function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * gitlab-runner run-single's --wait-timeout: the longest IdleTime the pool can be in (the root
 * value and every autoscaling section; a section that leaves IdleTime out has 0, as in
 * periods.ts). 0 means "no timeout": the worker then leaves when the controller asks it to, or at
 * its max lifetime. The controller retires idle workers sooner when a shorter period is active; the
 * worker's own timeout is the backstop for when the controller cannot.
 */
export function waitTimeoutFor(pool: Pool): number {
  const all = [pool.IdleTime, ...pool.autoscaling.map((s) => s.IdleTime ?? 0)];
  return all.includes(0) ? 0 : Math.max(...all);
}

export function runnerNameFor(config: Config, stage: string, pool: Pool): string {
  return `${config.deployment}-${stage}-${pool.name}`;
}

function poolPath(config: Config, pool: Pool): string {
  const i = config.pools.indexOf(pool);
  return i >= 0 ? `pools[${i}]` : `pool "${pool.name}"`;
}

/** A job volume whose host side is the worker's config directory or one of its parents would hand the token to every job. */
function checkVolumes(config: Config, pool: Pool): void {
  pool.worker.docker.volumes.forEach((v, i) => {
    const parts = v.split(':');
    if (parts.length < 2 || !parts[0].startsWith('/')) return; // a container-only or named volume
    const host = parts[0].replace(/\/+$/, '') + '/';
    if ((WORKER_CONFIG_DIR + '/').startsWith(host))
      throw new UserDataError(
        `${poolPath(config, pool)}.worker.docker.volumes[${i}]: "${v}" mounts ${parts[0]} into every job, which exposes the runner token in ${WORKER_CONFIG_DIR}; mount a narrower host path`,
      );
  });
}

/**
 * The config.toml the worker writes, with two placeholders it fills in at boot:
 * __GSA_RUNNER_TOKEN__ (from SSM) and __GSA_REGION__ (when the region is not known here).
 */
export function runnerConfigToml(opts: UserDataOptions): string {
  const { config, pool, stage } = opts;
  const docker = pool.worker.docker;
  const runner: Record<string, unknown> = {
    name: runnerNameFor(config, stage, pool),
    url: config.gitlab.url.replace(/\/+$/, ''),
    token: '__GSA_RUNNER_TOKEN__',
    executor: 'docker',
    docker: { image: docker.image, privileged: docker.privileged, volumes: docker.volumes, disable_cache: docker.disableCache },
  };
  const bucket = pool.worker.cache.bucketName ?? opts.cacheBucket;
  if (bucket) {
    runner.cache = {
      Type: 's3',
      Shared: pool.worker.cache.shared,
      // AuthenticationType iam: the instance profile's credentials, so no key is ever written here.
      s3: { ServerAddress: 's3.amazonaws.com', BucketName: bucket, BucketLocation: opts.region ?? config.region ?? '__GSA_REGION__', AuthenticationType: 'iam' },
    };
  }
  // One job at a time: run-single runs builds one after another; concurrent only documents it.
  return toToml({ concurrent: 1, runners: [runner] });
}

const STAGE = /^[a-z0-9][a-z0-9-]{0,30}$/;
const RUNNER_VERSION = /^(latest|v\d+\.\d+\.\d+)$/;

/** The exact user data (a bash script) for a worker of `pool`. Throws UserDataError on bad input. */
export function renderUserData(opts: UserDataOptions): string {
  const { config, pool, stage } = opts;
  if (!config.pools.some((p) => p.name === pool.name))
    throw new UserDataError(`pool "${pool.name}" is not in the config (pools: ${config.pools.map((p) => p.name).join(', ')})`);
  if (!STAGE.test(stage)) throw new UserDataError(`stage "${stage}": must be 1-31 of a-z, 0-9 and "-", starting with a letter or digit`);
  const region = opts.region ?? config.region ?? '';
  if (region && !/^[a-z]{2}(-[a-z]+)+-\d$/.test(region)) throw new UserDataError(`region "${region}": must be an AWS region such as "eu-west-1"`);
  const runnerVersion = opts.runnerVersion ?? WORKER_DEFAULTS.runnerVersion;
  if (!RUNNER_VERSION.test(runnerVersion)) throw new UserDataError(`runnerVersion "${runnerVersion}": must be "latest" or a release tag such as "v17.8.3"`);
  // A worker retires itself after maxLifetime (finishing its job), so no instance lives forever
  // even with IdleTime 0 and a controller that is down.
  const maxLifetime = opts.maxLifetime ?? pool.worker.maxLifetime;
  if (!Number.isInteger(maxLifetime) || maxLifetime < 60) throw new UserDataError(`maxLifetime ${maxLifetime}: must be a whole number of seconds >= 60`);
  checkVolumes(config, pool);

  const toml = runnerConfigToml({ ...opts, region: region || undefined });
  if (/^GSA_TOML$/m.test(toml)) throw new UserDataError('the runner config contains the line "GSA_TOML", which ends the embedded document');
  const values: [string, string | number][] = [
    ['POOL', pool.name],
    ['DEPLOYMENT', config.deployment],
    ['STAGE', stage],
    ['GITLAB_URL', config.gitlab.url.replace(/\/+$/, '')],
    ['TOKEN_PARAM', parameterNames(config, stage).runnerToken(pool)],
    ['REGION', region],
    ['TAG_PREFIX', TAG_PREFIX],
    ['RUNNER_NAME', runnerNameFor(config, stage, pool)],
    ['RUNNER_VERSION', runnerVersion],
    ['MAX_BUILDS', pool.MaxBuilds],
    ['WAIT_TIMEOUT', waitTimeoutFor(pool)],
    // 0 would mean "no time at all"; the planner's defaults are the sensible reading.
    ['BOOT_TIMEOUT', pool.worker.bootTimeout || DEFAULTS.bootTimeout],
    ['JOB_TIMEOUT', pool.jobTimeout || DEFAULTS.jobTimeout],
    ['MAX_LIFETIME', maxLifetime],
  ];
  const header = [
    '#!/bin/bash',
    `# gitlab-spot-autoscaler worker: pool "${pool.name}" of deployment "${config.deployment}", stage "${stage}".`,
    `# Print it: gitlab-spot-autoscaler user-data --config FILE --pool ${pool.name} --stage ${stage}`,
    '# Design and failure handling: docs/worker.md. The runner token is read from SSM at boot.',
    ...values.map(([k, v]) => `${k}=${typeof v === 'number' ? String(v) : shellQuote(v)}`),
    '# gitlab-runner config.toml; the worker fills in the token (SSM) and, if empty here, the region.',
    'runner_toml() {',
    "  cat <<'GSA_TOML'",
    toml.replace(/\n+$/, ''),
    'GSA_TOML',
    '}',
  ].join('\n');
  const body = WORKER_SCRIPT.split('\n')
    .filter((line) => !/^\s*##/.test(line))
    .join('\n');
  const script = `${header}\n${body}`;
  const size = Buffer.byteLength(script, 'utf8');
  if (size >= USER_DATA_LIMIT_BYTES)
    throw new UserDataError(`the user data for pool "${pool.name}" is ${size} bytes, over EC2's limit of ${USER_DATA_LIMIT_BYTES} bytes`);
  return script;
}
