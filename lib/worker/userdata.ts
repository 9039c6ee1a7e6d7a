/**
 * The user data a worker of a pool boots with: one bash script, rendered from the pool's config.
 *
 * The script (script.ts) is the same for every pool; this module puts the pool's values in front
 * of it as shell variables and renders the gitlab-runner config.toml it writes (without the
 * token: the worker reads that from SSM at boot). What the worker does, and why, is in
 * docs/worker.md. Pure: no AWS, no I/O.
 */
import { USER_DATA_LIMIT_BYTES, userDataFits } from './limits';
import { gzipUserData } from './encode';
import { DEFAULTS, parameterNames, type Config, type Pool } from '../config';
import { DEPLOYMENT_CACHE_PLACEHOLDER, runnerNameFor, runnerSecretParameters, workerConfigToml, type RunnerConfigOptions } from './runner-config';
import { hostPathProblems } from '../host-paths';
import { reportQueueName, TAG_PREFIX, TAGS, workerLogGroupName } from '../controller/tags';
import type { ActiveSettings } from '../periods';
import { idleTarget, REPORTING } from '../planner';
import { WORKER_SCRIPT } from './script';

export interface UserDataOptions extends RunnerConfigOptions {
  /** Region for the AWS CLI and the S3 cache; default config.region, else the instance's own (IMDS). */
  region?: string;
  /** Seconds after which the worker stops taking jobs and leaves; default the pool's worker.maxLifetime. */
  maxLifetime?: number;
  /** gitlab-runner release downloaded (and checked against its release.sha256) when the AMI has none, e.g. "v18.3.1"; default the pool's worker.runnerVersion, else WORKER_DEFAULTS. */
  runnerVersion?: string;
}

export const WORKER_DEFAULTS = {
  // Pinned: the worker parses this release's log lines (docs/worker.md, "Job start and end"), and a
  // pinned release is what the checksum check verifies. v18.3.1: released 2025-09 (gitlab-runner
  // CHANGELOG); run-single -c/-r needs 17.1+.
  runnerVersion: 'v18.3.1',
};

export { USER_DATA_LIMIT_BYTES, userDataFits } from './limits';
export { encodeUserData, gzipUserData } from './encode';
export { DEPLOYMENT_CACHE_PLACEHOLDER, runnerNameFor, usesDeploymentCache, WORKER_CONFIG_DIR } from './runner-config';

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

/** Every idle setting the pool can be in: the root values and each autoscaling section (a value a section leaves out is 0, as in periods.ts). */
function allIdleSettings(pool: Pool): ActiveSettings[] {
  return [
    { activePeriod: null, IdleCount: pool.IdleCount, IdleTime: pool.IdleTime, IdleCountMin: pool.IdleCountMin, IdleScaleFactor: pool.IdleScaleFactor },
    ...pool.autoscaling.map((s, i) => ({ activePeriod: i, IdleCount: s.IdleCount ?? 0, IdleTime: s.IdleTime ?? 0, IdleCountMin: s.IdleCountMin ?? 0, IdleScaleFactor: s.IdleScaleFactor ?? 0 })),
  ];
}

/**
 * gitlab-runner run-single's --wait-timeout (seconds; 0 = the runner never leaves on its own when
 * idle). Pure, shared with the simulation (lib/sim).
 *
 * docker+machine keeps IdleCount machines idle indefinitely; only the surplus above the idle
 * target is removed after IdleTime. Here the controller applies that rule (planner: idleTimeExceeded
 * while the idle target is exceeded) and retires the surplus with a graceful retire tag. A worker
 * that exited after IdleTime on its own would leave the idle target short, be relaunched, and churn
 * every IdleTime + boot time. So the worker times itself out only when the pool never keeps an
 * idle worker: the idle target is 0 in every setting the pool can be in. The idle target is
 * min(IdleCount, max(IdleCountMin|1, InUse x IdleScaleFactor)) when IdleScaleFactor > 0, else
 * IdleCount (planner.idleTarget): IdleCount is its upper bound, so IdleCountMin and IdleScaleFactor
 * cannot keep a worker idle when IdleCount is 0. Checked through idleTarget itself, at an
 * unbounded number of busy workers (where the target is largest), so this follows the planner.
 *
 * Then the timeout is the longest IdleTime among those settings: the controller retires sooner
 * while a shorter IdleTime is in force; the worker's own timeout is the backstop for when the
 * controller is down. A setting with IdleTime 0 means "retire as soon as idle" to the controller
 * (planner) but "never" to run-single, so it contributes nothing; all 0 gives 0. With 0, an idle
 * worker ends by the controller's retire request, or at the latest at maxLifetime.
 */
export function workerWaitTimeout(pool: Pool): number {
  const settings = allIdleSettings(pool);
  if (settings.some((s) => idleTarget(s, Number.MAX_SAFE_INTEGER) > 0)) return 0;
  return Math.max(0, ...settings.map((s) => s.IdleTime));
}

function poolPath(config: Config, pool: Pool): string {
  const i = config.pools.indexOf(pool);
  return i >= 0 ? `pools[${i}]` : `pool "${pool.name}"`;
}

/**
 * Host paths handed to jobs (docker volumes): the same check as `validate` (lib/host-paths.ts), so
 * a config built without validateConfig cannot hand out the runner token either.
 */
function checkVolumes(config: Config, pool: Pool): void {
  const problems = hostPathProblems(
    pool.worker.docker.volumes.map((spec, i) => ({ at: `${poolPath(config, pool)}.worker.docker.volumes[${i}]`, spec, kind: 'volume' as const })),
    { privileged: pool.worker.docker.privileged },
  );
  if (problems.length) throw new UserDataError(problems.join('\n'));
}

/**
 * The config.toml the worker writes (runner-config.ts), with references it fills in at boot: the
 * token and runnerSecrets as {{ssm:NAME}}, __GSA_REGION__ when the region is not known here.
 */
export function runnerConfigToml(opts: UserDataOptions): string {
  return workerConfigToml(opts);
}

/** dockerd's daemon.json keys the worker merges into /etc/docker/daemon.json ('' = none). */
function dockerdSettings(pool: Pool): string {
  const w = pool.worker;
  const out: Record<string, string[]> = {};
  if (w.registryMirrors.length) out['registry-mirrors'] = w.registryMirrors;
  if (w.insecureRegistries.length) out['insecure-registries'] = w.insecureRegistries;
  return Object.keys(out).length ? JSON.stringify(out) : '';
}

const STAGE = /^[a-z0-9][a-z0-9-]{0,30}$/;
const RUNNER_VERSION = /^v\d+\.\d+\.\d+$/;

/** The exact user data (a bash script) for a worker of `pool`. Throws UserDataError on bad input. */
export function renderUserData(opts: UserDataOptions): string {
  const { config, pool, stage } = opts;
  if (!config.pools.some((p) => p.name === pool.name))
    throw new UserDataError(`pool "${pool.name}" is not in the config (pools: ${config.pools.map((p) => p.name).join(', ')})`);
  if (!STAGE.test(stage)) throw new UserDataError(`stage "${stage}": must be 1-31 of a-z, 0-9 and "-", starting with a letter or digit`);
  const region = opts.region ?? config.region ?? '';
  if (region && !/^[a-z]{2}(-[a-z]+)+-\d$/.test(region)) throw new UserDataError(`region "${region}": must be an AWS region such as "eu-west-1"`);
  const runnerVersion = opts.runnerVersion ?? pool.worker.runnerVersion ?? WORKER_DEFAULTS.runnerVersion;
  if (!RUNNER_VERSION.test(runnerVersion)) throw new UserDataError(`runnerVersion "${runnerVersion}": must be a release tag such as "v18.3.1" (a pinned release, so its checksum can be checked)`);
  // A worker retires itself after maxLifetime (finishing its job), so no instance lives forever
  // even with IdleTime 0 and a controller that is down.
  const maxLifetime = opts.maxLifetime ?? pool.worker.maxLifetime;
  if (!Number.isInteger(maxLifetime) || maxLifetime < 60) throw new UserDataError(`maxLifetime ${maxLifetime}: must be a whole number of seconds >= 60`);
  checkVolumes(config, pool);

  const toml = runnerConfigToml({ ...opts, region: region || undefined });
  if (/^GSA_TOML$/m.test(toml)) throw new UserDataError('the runner config contains the line "GSA_TOML", which ends the embedded document');
  // The deployment's bucket, named at boot from the instance's tag (script.ts read_cache_bucket).
  const cacheTag = toml.includes(DEPLOYMENT_CACHE_PLACEHOLDER);
  const proxy = pool.worker.proxy;
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
    ['WAIT_TIMEOUT', workerWaitTimeout(pool)],
    // 0 would mean "no time at all"; the planner's defaults are the sensible reading.
    ['BOOT_TIMEOUT', pool.worker.bootTimeout || DEFAULTS.bootTimeout],
    ['JOB_TIMEOUT', pool.jobTimeout || DEFAULTS.jobTimeout],
    ['MAX_LIFETIME', maxLifetime],
    // Host settings (docs/worker.md, "Before the runner starts"); empty = not used.
    ['SECRET_PARAMS', runnerSecretParameters(config, stage, pool).map((s) => s.parameter).join('\n')],
    ['PROXY_HTTP', proxy?.http ?? ''],
    ['PROXY_HTTPS', proxy?.https ?? ''],
    ['PROXY_NO', proxy?.noProxy.join(',') ?? ''],
    ['DOCKERD_JSON', dockerdSettings(pool)],
    ['CA_PEM', pool.worker.caCertificate?.trim() ?? ''],
    ['USER_SCRIPT', pool.worker.userScript ?? ''],
    // Reports go to this SQS queue (docs/worker.md, "Reports"); repeated every HEARTBEAT seconds.
    ['REPORT_QUEUE', reportQueueName(config.deployment, stage)],
    ['HEARTBEAT', REPORTING.heartbeatSeconds],
    // Compared with what a pre-built image pulled (docs/worker.md, "Pre-built images").
    ['JOB_IMAGE', poolJobImage(pool)],
    // The pool's CloudWatch Logs group the worker ships its log to ('' = none: workerLogRetentionDays 0).
    ['LOG_GROUP', config.workerLogRetentionDays > 0 ? workerLogGroupName(config.deployment, stage, pool.name) : ''],
  ];
  const header = [
    '#!/bin/bash',
    `# gitlab-spot-autoscaler worker: pool "${pool.name}" of deployment "${config.deployment}", stage "${stage}".`,
    `# Print it: gitlab-spot-autoscaler user-data --config FILE --pool ${pool.name} --stage ${stage}`,
    '# Design and failure handling: docs/worker.md. The runner token is read from SSM at boot.',
    ...values.map(([k, v]) => `${k}=${typeof v === 'number' ? String(v) : shellQuote(v)}`),
    '# gitlab-runner config.toml (gitlab-spot-autoscaler worker-config prints it); the worker replaces each',
    '# {{ssm:NAME}} with that SSM parameter (the token, runnerSecrets) and, if empty here, the region.',
    ...(cacheTag ? [`# ${DEPLOYMENT_CACHE_PLACEHOLDER}: the deployment's cache bucket, from the instance tag ${TAGS.cacheBucket}.`] : []),
    'runner_toml() {',
    "  cat <<'GSA_TOML'",
    toml.replace(/\n+$/, ''),
    'GSA_TOML',
    '}',
  ].join('\n');
  const script = `${header}\n${scriptBody({ cacheTag })}`;
  // EC2 gets the script gzip-compressed (encode.ts: cloud-init decompresses it), so the limit
  // applies to the compressed bytes; the plain script may be larger than 16 KB. The same bytes for
  // every pool: the deployment's cache bucket name is not in them (the worker reads it at boot).
  const size = Buffer.byteLength(script, 'utf8');
  const gz = gzipUserData(script);
  if (!userDataFits(gz.length))
    throw new UserDataError(`the user data for pool "${pool.name}" is ${gz.length} bytes gzip-compressed (${size} bytes as a script), over EC2's limit of ${USER_DATA_LIMIT_BYTES} bytes`);
  return script;
}

/**
 * WORKER_SCRIPT without its maintainers' "##" lines, and with only the sections ("##@NAME" to
 * "##@end") this script needs: the image build's code ("build") only in the image pipeline's
 * script, the cache-bucket tag read ("cache-tag") only where config.toml holds its placeholder.
 * The user data stays small: a pool that does not need a section does not pay for it.
 */
function scriptBody(sections: { build?: boolean; cacheTag?: boolean } = {}): string {
  const wanted: Record<string, boolean | undefined> = { build: sections.build, 'cache-tag': sections.cacheTag };
  const out: string[] = [];
  let skip = false;
  for (const line of WORKER_SCRIPT.split('\n')) {
    const marker = /^\s*##@([\w-]+)/.exec(line);
    if (marker) skip = marker[1] !== 'end' && !wanted[marker[1]];
    else if (!/^\s*##/.test(line) && !skip) out.push(line);
  }
  return out.join('\n');
}

/** The image a pool's jobs run in when they name none (validation keeps it out of the runner block). */
export function poolJobImage(pool: Pool): string {
  return pool.worker.docker.image;
}

/**
 * The helper image a pool's runner uses, when the pool names one (runner.docker.helper_image);
 * '' for gitlab-runner's default (the build derives it from the CPU and release), 'none' when the
 * name holds runner variables (${CI_RUNNER_VERSION}...) that only the runner expands.
 */
export function poolHelperImage(pool: Pool): string {
  const helper = (pool.runner?.docker as Record<string, unknown> | undefined)?.helper_image;
  if (typeof helper !== 'string' || !helper) return '';
  return helper.includes('$') ? 'none' : helper;
}

/** What a pre-built image of the pool holds; the image is rebuilt when this changes (lib/deploy/image.ts). */
export interface ImageBuildOptions {
  config: Config;
  pool: Pool;
  stage: string;
  runnerVersion?: string;
}

/**
 * The script a pool's image pipeline runs on its build instance (`bash SCRIPT build-image`, the
 * component of lib/deploy/image.ts): the worker script itself, so the image gets exactly the
 * installs a boot would make (the same checksum check), with a header of only what the image
 * depends on: the runner release, the job and helper images, and the host settings that decide
 * whether downloads and pulls work (proxy, CA, registry mirrors). Nothing else of the pool, so a
 * changed IdleTime or runner setting does not rebuild the image; a changed release or job image does.
 */
export function renderImageBuildScript(opts: ImageBuildOptions): string {
  const { config, pool, stage } = opts;
  if (!STAGE.test(stage)) throw new UserDataError(`stage "${stage}": must be 1-31 of a-z, 0-9 and "-", starting with a letter or digit`);
  const runnerVersion = opts.runnerVersion ?? pool.worker.runnerVersion ?? WORKER_DEFAULTS.runnerVersion;
  if (!RUNNER_VERSION.test(runnerVersion)) throw new UserDataError(`runnerVersion "${runnerVersion}": must be a release tag such as "v18.3.1" (a pinned release, so its checksum can be checked)`);
  const proxy = pool.worker.proxy;
  const values: [string, string | number][] = [
    ['POOL', pool.name],
    ['DEPLOYMENT', config.deployment],
    ['STAGE', stage],
    ['REGION', config.region ?? ''],
    ['RUNNER_VERSION', runnerVersion],
    ['JOB_IMAGE', poolJobImage(pool)],
    ['HELPER_IMAGE', poolHelperImage(pool)],
    ['PROXY_HTTP', proxy?.http ?? ''],
    ['PROXY_HTTPS', proxy?.https ?? ''],
    ['PROXY_NO', proxy?.noProxy.join(',') ?? ''],
    ['DOCKERD_JSON', dockerdSettings(pool)],
    ['CA_PEM', pool.worker.caCertificate?.trim() ?? ''],
    ['HEARTBEAT', REPORTING.heartbeatSeconds],
  ];
  return [
    '#!/bin/bash',
    `# gitlab-spot-autoscaler: builds the worker image of pool "${pool.name}" (${config.deployment}/${stage}); run as: bash FILE build-image`,
    ...values.map(([k, v]) => `${k}=${typeof v === 'number' ? String(v) : shellQuote(v)}`),
    scriptBody({ build: true }),
  ].join('\n');
}

/**
 * What keeps a valid config from becoming its workers' user data (the size limit, a job volume
 * over the token's directory ...), one line per pool: `validate` and `migrate` check it, so a
 * config they pass also deploys. Rendered for a stage (names of the SSM parameters) as the stack
 * renders it: the deployment's cache bucket as the placeholder the worker fills in at boot.
 */
export function userDataProblems(config: Config, stage = 'dev'): string[] {
  const problems: string[] = [];
  config.pools.forEach((pool, i) => {
    try {
      renderUserData({ config, pool, stage });
    } catch (e) {
      if (!(e instanceof UserDataError)) throw e;
      problems.push(`pools[${i}] (${pool.name}): ${e.message}`);
    }
  });
  return problems;
}
