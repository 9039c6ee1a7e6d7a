/**
 * The instance tag protocol between the controller, the interruption handler and the workers
 * (docs/controller.md, "Tag protocol"). Pure names and value formats: the worker's user data, the
 * EC2 adapter and the tests all read them from here, so the two sides cannot drift apart.
 *
 * Tag keys avoid "/" and spaces: instance-metadata tags (IMDS `tags/instance/<key>`) accept only
 * letters, digits and `+ - = . , _ : @` in keys (EC2 user guide, "Work with instance tags in
 * instance metadata").
 */
export const TAG_PREFIX = 'gitlab-spot-autoscaler';

export const TAGS = {
  // ---- set by the controller at launch (CreateFleet TagSpecifications) -------------------------
  /** Deployment name (config.deployment). Discovery filters on it. */
  deployment: `${TAG_PREFIX}:deployment`,
  /** Stage (dev, prod, ...). Discovery filters on it. */
  stage: `${TAG_PREFIX}:stage`,
  /** Pool name; a value not in the config makes the instance an orphan. */
  pool: `${TAG_PREFIX}:pool`,
  /** Id of the reconcile pass that launched it (adoption after a crash, in-flight accounting). */
  pass: `${TAG_PREFIX}:pass`,
  /** ISO 8601 instant the controller launched it (the controller's clock, not EC2's LaunchTime). */
  launchedAt: `${TAG_PREFIX}:launched-at`,
  /** Launch template version (a number) it was launched from; idle workers of an older version are retired. */
  templateVersion: `${TAG_PREFIX}:template-version`,
  /**
   * The time limits it runs with, `boot=<s>,job=<s>,life=<s>` (bootTimeout, jobTimeout,
   * maxLifetime at launch). The worker reads them at boot and the fence counts with them, so a
   * config change since the launch cannot make the controller end it before it would leave.
   */
  limits: `${TAG_PREFIX}:limits`,
  /**
   * The deployment's shared cache bucket (an S3 bucket name), on workers of pools that use it
   * (lib/config.ts usesDeploymentCache). CloudFormation generates the name, so it is
   * not in the user data (which must stay gzip to fit EC2's 16 KB): the worker reads it at boot and
   * puts it into its runner's config.toml, and shuts down without it (docs/worker.md, "The cache").
   */
  cacheBucket: `${TAG_PREFIX}:cache-bucket`,
  /** `<demand>/<count>`: of the instances its launch asked for, how many were for demand (pending or forecast jobs) rather than the idle target. */
  launchedFor: `${TAG_PREFIX}:launched-for`,

  // ---- set by the controller later ------------------------------------------------------------
  /** Retirement request: ISO 8601 instant of the request. The worker finishes its job, then leaves. */
  retire: `${TAG_PREFIX}:retire`,

  // ---- set by the interruption handler (markInterrupted) --------------------------------------
  /** `interruption <ISO>` or `rebalance <ISO>`: AWS is (or may soon be) reclaiming the instance. */
  interrupted: `${TAG_PREFIX}:interrupted`,

  // ---- written by the controller from the worker's reports (lib/controller/reports.ts) ---------
  // Workers send reports to an SQS queue and never tag themselves; the controller records what
  // they said here, in a few batched CreateTags calls per pass, so the fleet can be rebuilt from
  // EC2 alone. Values are rounded to the minute so that many workers share one call.
  /** ISO 8601 minute the worker reported gitlab-runner ready (rounded down). Absent = never reported ready (booting). */
  ready: `${TAG_PREFIX}:ready`,
  /** The worker's latest reported state: `idle` | `busy` | `draining` | `stopped` (model.ts ReportedState). */
  state: `${TAG_PREFIX}:state`,
  /** Builds run so far: written by earlier releases with `draining` and `stopped`, still read, no longer written (docs/controller.md, "Tag protocol"; MaxBuilds is the worker's runner's own limit). */
  builds: `${TAG_PREFIX}:builds`,
  /** ISO 8601 minute the worker last became idle (rounded up, so IdleTime is never cut short). */
  idleSince: `${TAG_PREFIX}:idle-since`,
  /** ISO 8601 minute the worker reported its runner stopped for good (rounded up; SQS's clock). */
  stoppedAt: `${TAG_PREFIX}:stopped-at`,
} as const;

/** Values of TAGS.state (model.ts ReportedState). */
export const WORKER_STATES = ['idle', 'busy', 'draining', 'stopped'] as const;
export type WorkerReportedState = (typeof WORKER_STATES)[number];

/** The keys the controller writes from reports onto existing workers (IAM: its CreateTags condition). */
export const REPORT_TAG_KEYS = [TAGS.ready, TAGS.state, TAGS.builds, TAGS.idleSince, TAGS.stoppedAt] as const;

export type InterruptionKind = 'interruption' | 'rebalance';

/** The `launched-for` value: how many of a launch's `count` instances were for demand. */
export function formatLaunchedFor(demand: number, count: number): string {
  return `${demand}/${count}`;
}

export function parseLaunchedFor(value: string | undefined): { demand: number; count: number } | undefined {
  const m = /^(\d{1,6})\/(\d{1,6})$/.exec(value ?? '');
  if (!m) return undefined;
  const demand = Number(m[1]);
  const count = Number(m[2]);
  return demand <= count && count > 0 ? { demand, count } : undefined;
}

export function formatInterrupted(kind: InterruptionKind, at: number): string {
  return `${kind} ${new Date(at).toISOString()}`;
}

export function parseInterrupted(value: string | undefined): { kind: InterruptionKind; at: number } | undefined {
  const m = /^(interruption|rebalance) (\S+)$/.exec(value ?? '');
  if (!m) return undefined;
  const at = Date.parse(m[2]);
  return Number.isFinite(at) ? { kind: m[1] as InterruptionKind, at } : undefined;
}

export interface LaunchLimits {
  bootTimeout: number;
  jobTimeout: number;
  maxLifetime: number;
}

export function formatLimits(l: LaunchLimits): string {
  return `boot=${l.bootTimeout},job=${l.jobTimeout},life=${l.maxLifetime}`;
}

/** The `limits` tag's value; undefined when absent or not in that form (the worker then uses the limits of its user data). */
export function parseLimits(value: string | undefined): LaunchLimits | undefined {
  const m = /^boot=(\d{1,9}),job=(\d{1,9}),life=(\d{1,9})$/.exec(value ?? '');
  return m ? { bootTimeout: Number(m[1]), jobTimeout: Number(m[2]), maxLifetime: Number(m[3]) } : undefined;
}

/** An ISO 8601 tag value as epoch ms; undefined when absent or unreadable (a worker bug must not crash a pass). */
export function parseInstant(value: string | undefined): number | undefined {
  if (!value) return undefined;
  const t = Date.parse(value);
  return Number.isFinite(t) ? t : undefined;
}

/** Name of the launch template of a pool; the deployment's CloudFormation creates it under this name. */
export function launchTemplateName(deployment: string, stage: string, pool: string): string {
  return `${TAG_PREFIX}-${deployment}-${stage}-${pool}`;
}

/**
 * Name of the deployment's worker-report queue (the stack creates it under this name): workers find
 * its URL with sqs:GetQueueUrl, so their user data needs no deploy-time value. At most 67 characters
 * (SQS allows 80): deployment <= 31, stage <= 16.
 */
export function reportQueueName(deployment: string, stage: string): string {
  return `gsa-${deployment}-${stage}-worker-reports`;
}

/**
 * The CloudWatch Logs group of a pool's workers (the stack creates it, with retention); each worker
 * writes one stream, `<instance id>/<primary private IPv4>` (lib/worker/script.ts ship_logs: IAM
 * pins the stream to the instance's own address, lib/deploy/stack.ts workerLogStatements).
 */
export function workerLogGroupName(deployment: string, stage: string, pool: string): string {
  return `/${TAG_PREFIX}/${deployment}/${stage}/workers/${pool}`;
}

/**
 * Why `name` is not an S3 general purpose bucket name, or undefined when it is one (S3 user guide,
 * "General purpose bucket naming rules"): 3-63 of a-z, 0-9, "." and "-", starting and ending with
 * a letter or digit, no "..", not an IPv4 address, none of S3's reserved prefixes and suffixes.
 * The worker checks the cache-bucket tag with the same rules (lib/worker/script.ts valid_bucket)
 * before the name goes into config.toml.
 */
export function bucketNameProblem(name: string): string | undefined {
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(name)) return 'must be 3-63 of a-z, 0-9, "." and "-", starting and ending with a letter or digit';
  if (name.includes('..')) return 'must not hold two adjacent periods';
  if (/^\d{1,3}(\.\d{1,3}){3}$/.test(name)) return 'must not be an IP address';
  if (/^(xn--|sthree-|amzn-s3-demo-)/.test(name)) return 'must not start with xn--, sthree- or amzn-s3-demo- (reserved by S3)';
  if (/(-s3alias|--ol-s3|\.mrap|--x-s3|--table-s3)$/.test(name)) return 'must not end with -s3alias, --ol-s3, .mrap, --x-s3 or --table-s3 (reserved by S3)';
  return undefined;
}
