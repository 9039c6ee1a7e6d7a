/**
 * The deployment configuration: what a docker+machine `config.toml` was, in one YAML or JSON file.
 *
 * gitlab-runner's knob names are kept verbatim (IdleCount, IdleTime, MaxBuilds, limit,
 * concurrent, IdleCountMin, IdleScaleFactor, MaxGrowthRate, autoscaling Periods + Timezone) and
 * mean what they meant there (docs.gitlab.com/runner/configuration/autoscale/). Every default
 * lives in DEFAULTS below and nowhere else.
 *
 * Secrets never live in this file: it names the SSM parameters that hold them.
 */
import { z } from 'zod';
import { LineCounter, parseDocument, visit } from 'yaml';
import { describeYamlError, locateProblem } from './source-frame';
import { parseCron, isValidTimeZone, CronSyntaxError } from './cron';
import { checkRunnerTable, dotted, own, secretSettingProblem, RUNNER_SCHEMA_VERSION } from './worker/runner-schema';
import { containerBoundaryProblems, hostPathProblems } from './host-paths';
import { managedPolicyProblem, statementProblems } from './worker/iam';
import { isSecretEnvEntry, looksSecretList, looksSecretValue } from './migrate/secrets';

/** Every default, in one place. The README's settings table lists the same values (test/readme.test.ts checks). */
export const DEFAULTS = {
  concurrent: 0, // 0 = no global cap on running jobs, as in gitlab-runner
  limit: 0, // 0 = unlimited, as in gitlab-runner
  IdleCount: 0,
  IdleTime: 600, // seconds; gitlab-runner's default
  MaxBuilds: 0, // 0 = unlimited
  IdleCountMin: 0,
  IdleScaleFactor: 0,
  MaxGrowthRate: 0, // 0 = unlimited
  Timezone: 'UTC', // gitlab-runner uses the host's zone; a Lambda's host zone is UTC
  runUntagged: false, // gitlab-runner's run_untagged default when tags are set
  market: 'spot' as const,
  onDemandFallback: true,
  rootVolumeSize: 30, // GiB
  rootVolumeType: 'gp3' as const,
  dockerImage: 'alpine:latest',
  // A pre-built worker image per pool (docs/worker.md, "Pre-built images"): about 30 s less per boot
  // for well under a dollar a month per pool; the base AMI launches until the first image exists.
  workerImage: 'prebuilt' as const,
  privileged: false,
  bootTimeout: 600, // seconds a worker may take to report ready before it is repaired
  maxLifetime: 24 * 3600, // seconds; a worker retires itself after this, so no instance lives forever
  jobTimeout: 3 * 3600, // seconds a running job holds capacity without a confirming event
  pendingJobTtl: 3600, // seconds a pending job holds capacity without a confirming event
  capacityCooldown: 300, // seconds an instance type / zone rests after a capacity error
  ssmPrefix: '/gitlab-spot-autoscaler',
  pinWorkerCredentials: false, // true needs VPC endpoints for every AWS service a worker calls (docs/worker.md)
  requireLaunchTemplateKey: true, // false only after a refused launch shows EC2 leaves ec2:LaunchTemplate out (docs/deployment.md)
  // GitLab API requests a minute for routing, confirmation and discovery together: 6 % of
  // gitlab.com's 2,000 per user, 10 % of the smallest GitLab Dedicated's 1,200 (lib/gitlab/budget.ts)
  requestsPerMinute: 120,
  api: 'auto' as const, // GraphQL, falling back to REST where GitLab cannot run it
  workerLogRetentionDays: 30, // days CloudWatch Logs keeps workers' logs (one group per pool); 0 = workers ship none
};

/** The root volume of a pre-built worker image (lib/deploy/image.ts): room for docker and the pulled images; a snapshot stores only used blocks. */
export const PREBUILT_ROOT_GIB = 16;
/** The retention periods CloudWatch Logs accepts (PutRetentionPolicy / AWS::Logs::LogGroup RetentionInDays). */
export const LOG_RETENTION_DAYS = [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653] as const;

/** Durations a pass acts on: 0 would make every worker or job expire at once, so a floor applies. */
const seconds = (what: string, min: number) =>
  z.number({ invalid_type_error: `${what} must be a number of seconds` }).int(`${what} must be a whole number of seconds`).min(min, `${what} must be >= ${min} seconds`);

const nonNegInt = (what: string) =>
  z.number({ invalid_type_error: `${what} must be a number` }).int(`${what} must be a whole number`).min(0, `${what} must be >= 0`);

const cronString = z.string().superRefine((s, ctx) => {
  try {
    parseCron(s);
  } catch (e) {
    ctx.addIssue({
      code: z.ZodIssueCode.custom,
      message: `cron expression ${JSON.stringify(s)} does not parse: ${(e as Error).message} (accepted: gorhill/cronexpr syntax, e.g. "* * 9-17 * * mon-fri *")`,
    });
    if (!(e instanceof CronSyntaxError)) throw e;
  }
});

const timeZone = z.string().refine(isValidTimeZone, (s) => ({
  message: `unknown time zone ${JSON.stringify(s)} (accepted: an IANA name such as "UTC", "Europe/Berlin", "America/New_York")`,
}));

const ssmParameterName = z
  .string()
  .regex(/^\/[A-Za-z0-9_.\-/]+$/, 'must be an SSM parameter name starting with "/" (letters, digits, _ . - /)');

/** A `[[runners.machine.autoscaling]]` section. As in gitlab-runner, a value left out is 0 while the section is active (periods.ts). */
export const AutoscalingSchema = z
  .object({
    Periods: z.array(cronString).min(1, 'Periods needs at least one cron expression'),
    Timezone: timeZone.optional(),
    IdleCount: nonNegInt('IdleCount').optional(),
    IdleTime: nonNegInt('IdleTime').optional(),
    IdleCountMin: nonNegInt('IdleCountMin').optional(),
    IdleScaleFactor: z.number().min(0, 'IdleScaleFactor must be >= 0').optional(),
  })
  .strict();

const tagName = z
  .string()
  .min(1, 'a tag cannot be empty')
  .regex(/^[A-Za-z0-9_.:\-/+ ]+$/, 'tags may hold letters, digits, space and _ . : - / +');

// ---- what docker+machine users set on the machines themselves (issue 12; docs/worker.md) -------

const noUserInfo = (u: string) => !/^[a-z]+:\/\/[^/]*@/i.test(u);
const proxyUrl = z
  .string()
  .regex(/^https?:\/\/[A-Za-z0-9.\-\[\]:@]+\/?$/, 'must be a proxy URL such as "http://proxy.internal:3128" (no path, no % or spaces)')
  .refine(noUserInfo, 'must not hold credentials (user:password@): they would be readable in the launch template; use a proxy that authorises the workers\' subnets');
const registryHost = z.string().regex(/^([A-Za-z0-9.-]+(:\d+)?|\d+\.\d+\.\d+\.\d+\/\d+)$/, 'must be a registry host[:port] or a CIDR such as "10.0.0.0/8"');
const iamArn = z
  .string()
  .regex(/^arn:aws(-cn|-us-gov)?:iam::(aws|\d{12}):policy\/[\w+=,.@/-]+$/, 'must be an IAM policy ARN such as "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly"')
  .superRefine((arn, ctx) => {
    const problem = managedPolicyProblem(arn);
    if (problem) ctx.addIssue({ code: z.ZodIssueCode.custom, message: problem });
  });
const oneOrMany = z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]);
// NotAction / NotResource are refused by .strict(): "everything but" cannot be checked against the control plane.
const iamStatement = z
  .object({
    Sid: z.string().regex(/^[A-Za-z0-9]+$/, 'Sid: letters and digits only').optional(),
    Effect: z.enum(['Allow', 'Deny']),
    Action: oneOrMany,
    Resource: oneOrMany,
    Condition: z.record(z.record(z.unknown())).optional(),
  })
  .strict()
  .superRefine((st, ctx) => {
    for (const message of statementProblems(st)) ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['Action'], message });
  });

/** gitlab-runner releases workers may install (run-single -c/-r needs 17.1+); a pinned tag, verified by its release.sha256. */
export const RUNNER_VERSION_RE = /^v(\d+)\.(\d+)\.(\d+)$/;

const WORKER_HOST_SETTINGS = {
  // gitlab-runner release installed when the AMI has none; default WORKER_DEFAULTS.runnerVersion.
  runnerVersion: z
    .string()
    .regex(RUNNER_VERSION_RE, 'must be a release tag such as "v18.3.1" (a pinned release, so its checksum can be checked)')
    .refine((v) => {
      const [, major, minor] = RUNNER_VERSION_RE.exec(v)!.map(Number);
      return major > 17 || (major === 17 && minor >= 1);
    }, 'must be v17.1.0 or later (run-single -c FILE -r NAME)')
    .optional(),
  // dockerd's daemon.json: docker-machine's engine-registry-mirror / engine-insecure-registry.
  registryMirrors: z.array(z.string().regex(/^https?:\/\/[A-Za-z0-9.\-\[\]:]+(\/[^\s]*)?$/, 'must be an http(s) URL such as "https://mirror.gcr.io"')).default([]),
  insecureRegistries: z.array(registryHost).default([]),
  // HTTP(S) proxy for dockerd (image pulls), gitlab-runner (GitLab, the cache) and the worker's
  // downloads. Jobs get a proxy from runner.environment, as with docker+machine.
  proxy: z
    .object({ http: proxyUrl.optional(), https: proxyUrl.optional(), noProxy: z.array(z.string().regex(/^[A-Za-z0-9.*\-/:]+$/, 'a host, domain (.example.com) or CIDR')).default([]) })
    .strict()
    .optional(),
  // PEM of the CA that signs a self-managed GitLab (or registries): installed in the system trust
  // store, and the runner's tls-ca-file.
  caCertificate: z
    .string()
    .regex(/^\s*-----BEGIN CERTIFICATE-----[\s\S]+-----END CERTIFICATE-----\s*$/, 'must be PEM: -----BEGIN CERTIFICATE----- ... -----END CERTIFICATE-----')
    .refine((pem) => !/PRIVATE KEY/.test(pem), 'holds a private key, which would be readable in the launch template: give the CA certificates only')
    .optional(),
  // A script the worker runs as root before docker and gitlab-runner start (docker-machine's
  // amazonec2-userdata); a failure powers the worker off.
  userScript: z.string().regex(/^#!/, 'must start with "#!" (e.g. #!/bin/bash): the worker runs it as a program').optional(),
  // EC2 detailed (1-minute) monitoring: amazonec2-monitoring.
  detailedMonitoring: z.boolean().default(false),
  // Extra permissions of the pool's worker role (amazonec2-iam-instance-profile): for the worker
  // host (ECR pulls through a credential helper, the cache, userScript). Job containers cannot
  // reach the role (IMDS hop limit 1): jobs use GitLab OIDC (id_tokens) for AWS.
  iam: z.object({ managedPolicyArns: z.array(iamArn).default([]), statements: z.array(iamStatement).default([]) }).strict().default({}),
};

function checkRunnerBlock(runner: Record<string, unknown>, ctx: z.RefinementCtx): void {
  for (const issue of checkRunnerTable(runner)) {
    ctx.addIssue({ code: z.ZodIssueCode.custom, path: issue.path.map((p) => (/^\d+$/.test(p) ? Number(p) : p)), message: runnerIssueMessage(issue.kind, issue.message, issue.canonical) });
  }
}

function runnerIssueMessage(kind: string, message: string, canonical?: string): string {
  if (kind === 'spelling') return `write "${canonical}" (gitlab-runner's spelling; this file is case-sensitive)`;
  if (kind === 'renamed') return `${message}: write "${canonical}"`;
  if (kind === 'unknown') return `${message.replace(/; gitlab-runner ignores it$/, '')} (keys are gitlab-runner ${RUNNER_SCHEMA_VERSION}'s [[runners]] keys)`;
  if (kind === 'project') return `not a pool runner setting: ${message}`;
  if (kind === 'refused') return `not accepted on a worker: ${message}`;
  return message;
}

function checkSecretSetting(setting: string, ctx: z.RefinementCtx): void {
  const problem = secretSettingProblem(setting);
  if (problem) ctx.addIssue({ code: z.ZodIssueCode.custom, message: `${JSON.stringify(setting)}: ${problem}` });
}

export const WorkerSchema = z
  .object({
    instanceTypes: z
      .array(z.string().regex(/^[a-z0-9-]+\.[a-z0-9-]+$/, 'must be an EC2 instance type such as "m6i.large"'))
      .min(1, 'a pool needs at least one instance type (several are better: spot capacity is per type and zone)'),
    subnets: z.array(z.string().regex(/^subnet-[0-9a-f]+$/, 'must be a subnet id such as "subnet-0abc123"')).min(1, 'a pool needs at least one subnet'),
    market: z.enum(['spot', 'on-demand']).default(DEFAULTS.market),
    onDemandFallback: z.boolean().default(DEFAULTS.onDemandFallback),
    maxPrice: z.number().positive('maxPrice must be > 0 (USD per hour); leave it out to pay at most the on-demand price').optional(),
    ami: z
      .string()
      .regex(/^(ami-[0-9a-f]+|resolve:ssm:\/.+)$/, 'must be an AMI id ("ami-0abc...") or "resolve:ssm:/aws/service/..."'),
    rootVolumeSize: z.number().int().min(8, 'rootVolumeSize must be >= 8 GiB').max(16384).default(DEFAULTS.rootVolumeSize),
    rootVolumeType: z.enum(['gp3', 'gp2', 'io1', 'io2']).default(DEFAULTS.rootVolumeType),
    // The AMI's root device, so the encrypted volume replaces the root rather than adding a disk.
    // Amazon Linux: /dev/xvda; Ubuntu/Debian: /dev/sda1. Unset: read from the AMI where the API can
    // (the controller's own template check), else guessed from an SSM AMI path (the stack).
    rootDeviceName: z.string().regex(/^\/dev\/[a-z0-9]+$/, 'must be a device name such as "/dev/xvda" (Amazon Linux) or "/dev/sda1" (Ubuntu)').optional(),
    securityGroups: z.array(z.string().regex(/^sg-[0-9a-f]+$/, 'must be a security group id such as "sg-0abc123"')).default([]),
    tags: z.record(z.string()).default({}),
    docker: z
      .object({
        image: z.string().min(1).default(DEFAULTS.dockerImage),
        privileged: z.boolean().default(DEFAULTS.privileged),
        volumes: z.array(z.string()).default([]),
        disableCache: z.boolean().default(false),
      })
      .strict()
      .default({}),
    cache: z
      .object({
        shared: z.boolean().default(true),
        bucketName: z.string().optional(), // the deployment's cache bucket when unset
        // gitlab-runner's [runners.cache] Path: the key prefix of this pool's cache objects, and the
        // only prefix its workers may touch (IAM). Default: the pool name. Pools that name the same
        // path share a cache; nothing else does (docs/worker.md, "Security notes").
        path: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/, 'must be 1-63 of letters, digits, _ . - (one path segment)').optional(),
      })
      .strict()
      .default({}),
    bootTimeout: seconds('bootTimeout', 60).default(DEFAULTS.bootTimeout),
    // prebuilt: the stack builds an image of `ami` with docker, the pinned gitlab-runner and the job
    // and helper images (EC2 Image Builder, lib/deploy/image.ts); base: `ami` as it is.
    image: z.enum(['prebuilt', 'base'], { errorMap: () => ({ message: 'must be "prebuilt" (an image the stack builds from ami) or "base" (ami as it is)' }) }).default(DEFAULTS.workerImage),
    // Hard cap on a worker's life (seconds): after it the worker retires itself after its job.
    maxLifetime: seconds('maxLifetime', 600).default(DEFAULTS.maxLifetime),
    ...WORKER_HOST_SETTINGS,
  })
  .strict();

export const PoolSchema = z
  .object({
    name: z.string().regex(/^[a-z0-9][a-z0-9-]{0,30}$/, 'pool names are 1-31 of a-z, 0-9 and "-", starting with a letter or digit'),
    tags: z.array(tagName).default([]),
    runUntagged: z.boolean().default(DEFAULTS.runUntagged),
    runnerTokenParameter: ssmParameterName.optional(),
    limit: nonNegInt('limit').default(DEFAULTS.limit),
    IdleCount: nonNegInt('IdleCount').default(DEFAULTS.IdleCount),
    IdleTime: nonNegInt('IdleTime').default(DEFAULTS.IdleTime),
    MaxBuilds: nonNegInt('MaxBuilds').default(DEFAULTS.MaxBuilds),
    IdleCountMin: nonNegInt('IdleCountMin').default(DEFAULTS.IdleCountMin),
    IdleScaleFactor: z.number().min(0, 'IdleScaleFactor must be >= 0').default(DEFAULTS.IdleScaleFactor),
    MaxGrowthRate: nonNegInt('MaxGrowthRate').default(DEFAULTS.MaxGrowthRate),
    // Opt-in: the p95 queue wait (seconds) the pool aims for. The controller then sizes idle and
    // pre-launched capacity itself from forecast demand, with IdleCount as a floor and IdleTime as
    // the longest an idle worker stays (docs/architecture.md, "Spending idle capacity").
    targetWait: nonNegInt('targetWait').max(86_400, 'targetWait must be <= 86400 seconds').optional(),
    Timezone: timeZone.default(DEFAULTS.Timezone),
    autoscaling: z.array(AutoscalingSchema).default([]),
    jobTimeout: seconds('jobTimeout', 60).default(DEFAULTS.jobTimeout),
    // gitlab-runner's own [[runners]] settings, in its spelling, written into the worker's
    // config.toml as given (lib/worker/runner-schema.ts says which keys, of which types).
    runner: z.record(z.unknown()).superRefine(checkRunnerBlock).optional(),
    // Settings of `runner` whose value the worker reads from SSM at boot (never in this file).
    runnerSecrets: z
      .array(z.object({ setting: z.string().superRefine(checkSecretSetting), parameter: ssmParameterName.optional() }).strict())
      .default([]),
    worker: WorkerSchema,
  })
  .strict();

export const ConfigSchema = z
  .object({
    deployment: z.string().regex(/^[a-z0-9][a-z0-9-]{0,30}$/, 'deployment names are 1-31 of a-z, 0-9 and "-"'),
    region: z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d$/, 'must be an AWS region such as "eu-west-1"').optional(),
    // The VPC of the pools' subnets: the stack creates the workers' security group (no inbound rules) in it.
    vpcId: z.string().regex(/^vpc-[0-9a-f]+$/, 'must be a VPC id such as "vpc-0abc123"').optional(),
    ssmPrefix: ssmParameterName.default(DEFAULTS.ssmPrefix),
    gitlab: z
      .object({
        url: z
          .string()
          .url('must be the GitLab base URL, e.g. "https://gitlab.example.com"')
          .refine((u) => /^https?:\/\//.test(u), 'must start with https:// (or http:// for a lab)')
          // The URL is written into every worker's config.toml and user data, and printed: no place
          // for a password. GitLab authenticates runners by their token (SSM) and the controller by
          // gitlab.apiTokenParameter.
          .refine((u) => !urlHasCredentials(u), 'must not carry credentials ("https://user:password@host"): the URL goes into every worker\'s user data and config; remove them (runners authenticate with their token, stored in SSM)'),
        apiTokenParameter: ssmParameterName.optional(),
        webhookSecretParameter: ssmParameterName.optional(),
        // Counted over any 60 s; the floor keeps a bucket that can route at all, the ceiling is gitlab.com's per-user limit.
        requestsPerMinute: z
          .number({ invalid_type_error: 'requestsPerMinute must be a number' })
          .int('requestsPerMinute must be a whole number')
          .min(10, 'requestsPerMinute must be >= 10 (routing needs a few requests a minute)')
          .max(2000, 'requestsPerMinute must be <= 2000 (gitlab.com allows 2,000 a minute per user, shared with everything else the token does)')
          .default(DEFAULTS.requestsPerMinute),
        api: z.enum(['auto', 'graphql', 'rest']).default(DEFAULTS.api),
        // Projects listed for pending jobs whose every webhook was lost, besides the projects seen in job events (docs/controller.md).
        watch: z
          .object({
            projects: z.array(z.number().int().positive('project ids are positive integers')).default([]),
            groups: z.array(z.union([z.number().int().positive(), z.string().regex(/^[A-Za-z0-9_.][A-Za-z0-9_.\-/]*$/, 'must be a group id or full path such as "acme/platform"')])).default([]),
          })
          .strict()
          .default({}),
      })
      .strict(),
    concurrent: nonNegInt('concurrent').default(DEFAULTS.concurrent),
    pendingJobTtl: seconds('pendingJobTtl', 60).default(DEFAULTS.pendingJobTtl),
    capacityCooldown: seconds('capacityCooldown', 10).default(DEFAULTS.capacityCooldown),
    pools: z.array(PoolSchema).min(1, 'at least one pool is needed'),
    // Deny every worker call made with the worker's credentials from anywhere but the instance
    // they were issued to (aws:ec2InstanceSourceVPC / aws:ec2InstanceSourcePrivateIPv4). Needs VPC
    // endpoints for every AWS service a worker calls: docs/worker.md, "Security notes".
    pinWorkerCredentials: z.boolean().default(DEFAULTS.pinWorkerCredentials),
    // The reconcile role's ec2:RunInstances grant on instances requires ec2:LaunchTemplate = one of
    // the deployment's templates. No AWS document says EC2 puts that key into the RunInstances check
    // of an instant CreateFleet; if a launch is refused for it, false drops that one condition
    // (docs/deployment.md, "A refused launch").
    requireLaunchTemplateKey: z.boolean().default(DEFAULTS.requireLaunchTemplateKey),
    // Workers ship their boot steps, gitlab-runner's output and why they shut down to one
    // CloudWatch Logs group per pool, kept this many days (docs/worker.md, "Logs"); 0 ships nothing.
    workerLogRetentionDays: z
      .number()
      .int()
      .refine((d) => d === 0 || (LOG_RETENTION_DAYS as readonly number[]).includes(d), `workerLogRetentionDays must be 0 (no worker logs) or a period CloudWatch Logs accepts: ${LOG_RETENTION_DAYS.join(', ')}`)
      .default(DEFAULTS.workerLogRetentionDays),
  })
  .strict();

export type Config = z.infer<typeof ConfigSchema>;
export type Pool = z.infer<typeof PoolSchema>;
export type Autoscaling = z.infer<typeof AutoscalingSchema>;
export type WorkerShape = z.infer<typeof WorkerSchema>;

export class ConfigError extends Error {
  constructor(
    readonly source: string,
    readonly problems: string[],
  ) {
    super(`invalid configuration ${source}:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

function pathOf(path: (string | number)[]): string {
  return path.reduce<string>((acc, p) => (typeof p === 'number' ? `${acc}[${p}]` : acc ? `${acc}.${p}` : p), '') || '(root)';
}

/** Whether a URL names a user or password (`https://user:pass@host`). Unparseable is not our call here. */
export function urlHasCredentials(u: string): boolean {
  try {
    const url = new URL(u);
    return url.username !== '' || url.password !== '';
  } catch {
    return false;
  }
}

/** Values that look like secrets are refused wherever they appear: they belong in SSM. */
const SECRET_PATTERNS: [RegExp, string][] = [
  [/^glrt-/, 'a GitLab runner authentication token'],
  [/^GR1348941/, 'a GitLab runner registration token'],
  [/^glpat-/, 'a GitLab personal access token'],
  [/^(AKIA|ASIA)[A-Z0-9]{16}$/, 'an AWS access key id'],
];

/** What token-shaped value `value` is (an environment entry NAME=VALUE is checked by its value too), or undefined. */
function tokenShapes(value: string): string[] {
  const afterEq = /^[A-Za-z_][A-Za-z0-9_]*=/.test(value) ? value.slice(value.indexOf('=') + 1) : undefined;
  return SECRET_PATTERNS.filter(([re]) => re.test(value) || (afterEq !== undefined && re.test(afterEq))).map(([, what]) => what);
}

function findSecrets(value: unknown, path: (string | number)[], out: string[]): void {
  if (typeof value === 'string') {
    for (const what of tokenShapes(value)) out.push(`${pathOf(path)}: looks like ${what}; secrets never go in the config file — store it in SSM Parameter Store (SecureString) and name the parameter instead`);
  } else if (Array.isArray(value)) value.forEach((v, i) => findSecrets(v, [...path, i], out));
  else if (value && typeof value === 'object') for (const [k, v] of Object.entries(value)) findSecrets(v, [...path, k], out);
}

/** Cross-field rules the schema cannot express. */
function crossCheck(config: Config): string[] {
  const problems: string[] = [];
  const names = new Map<string, number>();
  const tagOwner = new Map<string, string>();
  const untagged: string[] = [];
  config.pools.forEach((pool, i) => {
    const at = `pools[${i}]`;
    if (names.has(pool.name)) problems.push(`${at}.name: "${pool.name}" is already used by pools[${names.get(pool.name)}]; pool names must be unique`);
    names.set(pool.name, i);
    // A job runs on a runner whose tags include all the job's tags (GitLab's rule). Two pools
    // sharing a tag could both take a job tagged with it, so the controller could not tell
    // which pool needs capacity: tags must be disjoint, and one pool at most runs untagged jobs.
    for (const tag of new Set(pool.tags)) {
      const owner = tagOwner.get(tag);
      if (owner !== undefined && owner !== pool.name)
        problems.push(`${at}.tags: tag "${tag}" is also served by pool "${owner}"; a job tagged "${tag}" could match both pools — give each pool its own tags`);
      else tagOwner.set(tag, pool.name);
    }
    if (pool.runUntagged) untagged.push(pool.name);
    if (pool.tags.length === 0 && !pool.runUntagged)
      problems.push(`${at}: pool "${pool.name}" has no tags and runUntagged is false, so no job can ever reach it; add tags or set runUntagged: true`);
    if (pool.IdleCountMin > pool.IdleCount && pool.IdleScaleFactor > 0)
      problems.push(`${at}.IdleCountMin: ${pool.IdleCountMin} is above IdleCount ${pool.IdleCount}; IdleCount is the upper bound of the idle target`);
    if (pool.limit > 0 && pool.IdleCount > pool.limit)
      problems.push(`${at}.IdleCount: ${pool.IdleCount} can never be reached with limit ${pool.limit}; lower IdleCount or raise limit`);
    if (pool.worker.image === 'prebuilt' && pool.worker.rootVolumeSize < PREBUILT_ROOT_GIB)
      problems.push(`${at}.worker.rootVolumeSize: ${pool.worker.rootVolumeSize} GiB is smaller than the pre-built image's ${PREBUILT_ROOT_GIB} GiB root volume (worker.image: prebuilt); raise it or set worker.image: base`);
    // Image Builder's service-linked role reads AWS's public parameters and /imagebuilder/... only (lib/deploy/image.ts).
    if (pool.worker.image === 'prebuilt' && pool.worker.ami.startsWith('resolve:ssm:') && !/^resolve:ssm:\/(aws\/service|imagebuilder)\//.test(pool.worker.ami))
      problems.push(`${at}.worker.ami: the pool's image pipeline starts from this parameter (worker.image: prebuilt), and Image Builder reads only AWS's public parameters (/aws/service/...) and /imagebuilder/...; give an AMI id ("ami-...") or such a parameter, or set worker.image: base`);
    if (pool.worker.market === 'on-demand' && pool.worker.maxPrice !== undefined)
      problems.push(`${at}.worker.maxPrice: only applies to spot; remove it or set market: spot`);
    problems.push(...runnerCrossCheck(pool, at), ...parameterCrossCheck(config, pool, at));
    // Host paths handed to jobs, judged on canonical paths (lib/host-paths.ts says what is refused and why).
    problems.push(
      ...hostPathProblems(
        pool.worker.docker.volumes.map((spec, j) => ({ at: `${at}.worker.docker.volumes[${j}]`, spec, kind: 'volume' as const })),
        { privileged: pool.worker.docker.privileged },
      ),
      // gitlab-runner's own docker settings that reach past the container (devices, host network, capabilities ...).
      ...containerBoundaryProblems(pool.runner?.docker, `${at}.runner.docker`, { privileged: pool.worker.docker.privileged }),
    );
  });
  if (untagged.length > 1)
    problems.push(`pools: ${untagged.map((n) => `"${n}"`).join(', ')} all set runUntagged: true; an untagged job would match each of them — allow it on one pool only`);
  return problems;
}

/**
 * The managed cache (no `runner.cache.Type`: the deployment's bucket or worker.cache.bucketName,
 * reached with the worker role) is written by the project; these keys of runner.cache are its.
 */
const MANAGED_CACHE_KEYS: Record<string, string> = {
  Shared: 'worker.cache.shared',
  Path: 'the pool (each pool has its own cache prefix)',
  's3.ServerAddress': 'the region\'s S3 endpoint',
  's3.BucketName': 'worker.cache.bucketName (or the deployment\'s bucket)',
  's3.BucketLocation': 'the deployment\'s region',
  's3.AuthenticationType': 'iam: the worker role, never keys',
  's3.AccessKey': 'the worker role (no keys)',
  's3.SecretKey': 'the worker role (no keys)',
  's3.SessionToken': 'the worker role (no keys)',
  's3.Insecure': 'HTTPS (the bucket refuses plain HTTP)',
  gcs: 'an S3 cache; set runner.cache.Type for a cache of your own',
  azure: 'an S3 cache; set runner.cache.Type for a cache of your own',
};

/** The pool names a cache of its own (runner.cache.Type): the deployment then creates and grants no cache for it. */
export function runnerCacheIsExternal(pool: Pool): boolean {
  const cache = pool.runner?.cache;
  return typeof cache === 'object' && cache !== null && (cache as Record<string, unknown>).Type !== undefined;
}

/**
 * The pool's runners use the deployment's cache bucket: a shared cache, no bucket of its own, and
 * no cache of the pool's own (runner.cache with a Type). The stack creates the bucket when a pool
 * does; the controller tags such a pool's workers with its name (lib/controller/tags.ts cacheBucket).
 * docker's disable_cache (worker.docker.disableCache) turns off the docker executor's local cache
 * volumes only, not the distributed cache (gitlab-runner docs, [runners.docker]; the seed article
 * sets it *because* it uses the S3 cache).
 */
export function usesDeploymentCache(pool: Pool): boolean {
  return !runnerCacheIsExternal(pool) && pool.worker.cache.bucketName === undefined && pool.worker.cache.shared;
}

/** Keys of runner.cache that are credentials whatever their value. */
const CACHE_CREDENTIALS = new Set(['cache.s3.SecretKey', 'cache.s3.SessionToken', 'cache.gcs.PrivateKey', 'cache.azure.AccountKey']);

/**
 * Secrets written into runner: (they would be in the launch template's user data, readable with
 * ec2:DescribeLaunchTemplateVersions), and {{ssm:NAME}} written by hand: the worker replaces those
 * with the parameter's value, so one naming the token parameter would hand every job the token.
 */
function inlineSecrets(value: unknown, path: string[], at: string): string[] {
  const where = `${at}${path.length ? '.' : ''}${dotted(path)}`;
  const move = (setting: string) => `store the value in SSM (SecureString) and list it in runnerSecrets (setting: ${setting}); the worker reads it at boot`;
  if (typeof value === 'string') {
    if (tokenShapes(value).length) return []; // reported by findSecrets
    if (value.includes('{{ssm:')) return [`${where}: holds "{{ssm:", which only the project writes (the worker replaces it with an SSM parameter's value, the runner token included); for a secret, use runnerSecrets`];
    if (value !== '' && (CACHE_CREDENTIALS.has(path.join('.')) || looksSecretValue(value)))
      return [`${where}: looks like a secret; ${path.some((p) => /^\d+$/.test(p)) ? 'a setting inside a list cannot come from SSM: use a masked CI/CD variable in GitLab' : move(path.join('.'))}`];
    return [];
  }
  if (Array.isArray(value)) {
    if (path.join('.') === 'environment' || path[path.length - 1] === 'environment')
      return value.flatMap((e, i) => (typeof e === 'string' && !tokenShapes(e).length && isSecretEnvEntry(e) ? [`${where}[${i}]: ${e.split('=')[0]} looks like a secret; ${move(`environment.${e.split('=')[0]}`)}`] : inlineSecrets(e, [...path, String(i)], at)));
    if (value.every((x) => typeof x === 'string') && !value.some((x) => x.includes('{{ssm:')) && looksSecretList(value)) return [`${where}: looks like a secret; a list cannot come from SSM: use a masked CI/CD variable in GitLab`];
    return value.flatMap((x, i) => inlineSecrets(x, [...path, String(i)], at));
  }
  if (value && typeof value === 'object' && !(value instanceof Date))
    return Object.entries(value).flatMap(([k, v]) => (typeof v === 'string' && looksSecretValue(`${k}=${v}`) && !looksSecretValue(v) ? [`${where}.${k}: looks like a secret; use a masked CI/CD variable in GitLab`] : inlineSecrets(v, [...path, k], at)));
  return [];
}

function runnerCrossCheck(pool: Pool, at: string): string[] {
  const problems: string[] = [];
  const runner = pool.runner ?? {};
  const cache = (runner.cache ?? {}) as Record<string, unknown>;
  const has = (dottedKey: string) => {
    const [a, b] = dottedKey.split('.');
    const v = cache[a];
    return b === undefined ? v !== undefined : typeof v === 'object' && v !== null && (v as Record<string, unknown>)[b] !== undefined;
  };
  if (runnerCacheIsExternal(pool)) {
    if (pool.worker.cache.bucketName !== undefined)
      problems.push(`${at}.worker.cache.bucketName: the pool has a cache of its own (runner.cache.Type); remove bucketName, or remove runner.cache.Type to use the managed S3 cache`);
  } else if (runner.cache !== undefined) {
    if (!pool.worker.cache.shared && pool.worker.cache.bucketName === undefined)
      problems.push(`${at}.runner.cache: the pool has no cache (worker.cache.shared is false and there is no worker.cache.bucketName), so these settings would do nothing; remove them, or give the pool a cache`);
    for (const [key, owner] of Object.entries(MANAGED_CACHE_KEYS))
      if (has(key) && !(key === 's3.Insecure' && (cache.s3 as Record<string, unknown>).Insecure === false))
        problems.push(`${at}.runner.cache.${key}: the managed cache sets it from ${owner}; for a cache of your own (another account, S3-compatible, GCS, Azure) set runner.cache.Type and its keys`);
  }
  problems.push(...inlineSecrets(runner, [], `${at}.runner`));
  const seen = new Set<string>();
  pool.runnerSecrets.forEach((s, i) => {
    const sat = `${at}.runnerSecrets[${i}]`;
    if (seen.has(s.setting)) problems.push(`${sat}.setting: ${s.setting} is listed twice`);
    seen.add(s.setting);
    const env = /^environment\.(.+)$/.exec(s.setting);
    if (env) {
      const list = Array.isArray(runner.environment) ? (runner.environment as string[]) : [];
      if (list.some((e) => e.split('=')[0] === env[1])) problems.push(`${sat}: ${env[1]} is also set in runner.environment; keep it in one place (the secret comes from SSM)`);
      return;
    }
    const path = s.setting.split('.');
    let v: unknown = runner;
    for (const k of path) v = typeof v === 'object' && v !== null ? (v as Record<string, unknown>)[k] : undefined;
    if (v !== undefined) problems.push(`${sat}: runner.${s.setting} is also set in the config; a secret's value lives in SSM only`);
    if (path[0] === 'cache' && !runnerCacheIsExternal(pool) && own(MANAGED_CACHE_KEYS, path.slice(1).join('.')) !== undefined)
      problems.push(`${sat}: the managed cache sets ${s.setting} itself (no keys); a cache with keys of its own needs runner.cache.Type`);
  });
  return problems;
}

const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * What a deployment parameter name is, whatever the stage (validation does not know it): the
 * controller's, or another pool's. undefined for a name of nobody's.
 */
function deploymentParameter(config: Config, name: string, self: Pool): { what: string; pool?: string } | undefined {
  if (name === config.gitlab.apiTokenParameter) return { what: 'the GitLab API token' };
  if (name === config.gitlab.webhookSecretParameter) return { what: 'the webhook secret' };
  const owner = config.pools.find((p) => p !== self && p.runnerTokenParameter === name);
  if (owner) return { what: `pool "${owner.name}"'s runner token`, pool: owner.name };
  const base = `^${escapeRe(config.ssmPrefix.replace(/\/$/, ''))}/${escapeRe(config.deployment)}/[^/]+`;
  const m =
    new RegExp(`${base}/(config|state(/.*)?|secrets/webhook-secret|secrets/gitlab-api-token)$`).exec(name) ??
    new RegExp(`${base}/secrets/runner-token/([^/]+)$`).exec(name) ??
    new RegExp(`${base}/secrets/runner/([^/]+)/`).exec(name);
  if (!m) return undefined;
  if (/\/secrets\/runner-token\//.test(name)) return { what: `pool "${m[1]}"'s runner token`, pool: m[1] };
  if (/\/secrets\/runner\//.test(name)) return { what: `a job secret of pool "${m[1]}"`, pool: m[1] };
  return { what: `the controller's ${m[1].replace(/^secrets\//, '').replace(/\/.*/, '')} parameter` };
}

/**
 * A pool's worker role may read its job secrets (stack: OwnJobSecrets), and a job secret reaches
 * every job of the pool: it may not name a parameter of the controller or of another pool (a job
 * would get the GitLab API token, or another pool's runner token, and could take that pool's jobs),
 * nor the pool's own runner token.
 */
function parameterCrossCheck(config: Config, pool: Pool, at: string): string[] {
  // runnerTokenParameter: the stack refuses a shared or foreign one (checkDistinctSecrets), where the stage is known.
  const problems: string[] = [];
  pool.runnerSecrets.forEach((s, i) => {
    if (s.parameter === undefined) return;
    const p = deploymentParameter(config, s.parameter, pool);
    const ownToken = s.parameter === pool.runnerTokenParameter || (p?.pool === pool.name && /\/secrets\/runner-token\//.test(s.parameter));
    if ((p && p.pool !== pool.name) || ownToken)
      problems.push(`${at}.runnerSecrets[${i}].parameter: ${s.parameter} is ${ownToken ? 'the pool\'s own runner token' : p!.what}; a job secret reaches every job of the pool — give it a parameter of its own (default: under the pool's secrets/runner/${pool.name}/)`);
  });
  return problems;
}

/** Validates an already-parsed object. Every problem is reported at once, each with its path. */
export function validateConfig(raw: unknown, source = '(inline)'): Config {
  const secretProblems: string[] = [];
  findSecrets(raw, [], secretProblems);
  const parsed = ConfigSchema.safeParse(raw);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => {
      let msg = issue.message;
      if (issue.code === z.ZodIssueCode.unrecognized_keys) msg = `unknown setting${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')} (check the spelling; names are case-sensitive, as in gitlab-runner)`;
      else if (issue.code === z.ZodIssueCode.invalid_type && issue.received === 'undefined') msg = `required (expected ${issue.expected})`;
      else if (issue.code === z.ZodIssueCode.invalid_type) msg = `expected ${issue.expected}, got ${issue.received}`;
      else if (issue.code === z.ZodIssueCode.invalid_enum_value) msg = `"${String(issue.received)}" is not accepted (accepted: ${issue.options.map((o) => JSON.stringify(o)).join(', ')})`;
      return `${pathOf(issue.path)}: ${msg}`;
    });
    throw new ConfigError(source, [...secretProblems, ...problems]);
  }
  const problems = [...secretProblems, ...crossCheck(parsed.data)];
  if (problems.length) throw new ConfigError(source, problems);
  return parsed.data;
}

/** Secret-looking text masked before lines of the file are shown; same length, so positions hold. */
function maskSecrets(text: string): string {
  const mask = (_: string, prefix: string, rest: string) => prefix + '*'.repeat(rest.length);
  return text.replace(/\b(glrt-|glpat-|GR1348941)([\w-]+)/g, mask).replace(/\b(AKIA|ASIA)([A-Z0-9]{16})\b/g, mask);
}

/**
 * Parses YAML or JSON text (JSON is YAML) and validates it. Every problem carries its line and a
 * code frame of the file (lib/source-frame.ts), with secret-looking values masked.
 */
export function parseConfig(text: string, source = '(inline)'): Config {
  const masked = maskSecrets(text);
  const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: false });
  // The first syntax error is the one to fix: the parser's later ones are often its consequences.
  if (doc.errors.length)
    throw new ConfigError(source, [describeYamlError(masked, doc.errors[0]) + (doc.errors.length > 1 ? `\n    (${doc.errors.length - 1} more after this one)` : '')]);
  let raw: unknown;
  try {
    raw = doc.toJS();
  } catch (e) {
    throw new ConfigError(source, [`not valid YAML/JSON: ${(e as Error).message.split('\n')[0]}`]);
  }
  try {
    return validateConfig(raw, source);
  } catch (e) {
    if (e instanceof ConfigError) throw new ConfigError(source, e.problems.map((p) => locateProblem(masked, doc, p)));
    throw e;
  }
}

/**
 * Things that are valid but probably not what was meant: cron expressions that cronexpr (and so
 * gitlab-runner) reads differently from how they look, e.g. a zero-padded month "09" is month 0.
 */
export function configWarnings(config: Config): string[] {
  const out: string[] = [];
  if (config.pools.length > 1)
    out.push(
      `pools: ${config.pools.length} pools need a GitLab API token (read_api) to route jobs — job hooks carry no tags — at ${config.gitlab.apiTokenParameter ?? `${config.ssmPrefix}/${config.deployment}/<stage>/secrets/gitlab-api-token`}`,
    );
  config.pools.forEach((pool, i) =>
    pool.autoscaling.forEach((section, j) =>
      section.Periods.forEach((expr, k) => {
        for (const w of parseCron(expr).warnings) out.push(`pools[${i}].autoscaling[${j}].Periods[${k}]: ${JSON.stringify(expr)}: ${w}`);
      }),
    ),
  );
  return out;
}

/**
 * Lines `migrate` marked `# PLACEHOLDER` (a subnet, the region, the GitLab URL, a tag it could not
 * know) and values still holding its PLACEHOLDER tag. They parse, so the schema passes them, but a
 * deploy with them launches into a subnet that does not exist or routes no job: `validate` warns,
 * the stack build (lib/deploy/serverless-vars.js) refuses.
 *
 * Only migrate's own marks count, so a config that merely holds the word is not refused: a
 * `# PLACEHOLDER` YAML comment (not one inside a quoted or block string: a script may well say
 * `sed 's/# PLACEHOLDER/x/'`), and a value that is migrate's tag itself (`PLACEHOLDER` or
 * `PLACEHOLDER-<pool>`, lib/migrate/migrate.ts PLACEHOLDER_TAG), not one that contains the word.
 */
export function placeholderLines(text: string): string[] {
  const lines = text.split(/\r?\n/);
  const marked = new Set<number>();
  const counter = new LineCounter();
  const doc = parseDocument(text, { prettyErrors: false, lineCounter: counter });
  // Where strings are (a `#` inside one is no comment), and migrate's tag as a whole value.
  const strings: [number, number][] = [];
  if (doc.errors.length === 0) {
    visit(doc, {
      Scalar(key, node) {
        if (typeof node.value !== 'string' || !node.range) return;
        if (node.type !== 'PLAIN') strings.push([node.range[0], node.range[1]]);
        if (key !== 'key' && /^PLACEHOLDER(-|$)/.test(node.value)) marked.add(counter.linePos(node.range[0]).line - 1);
      },
    });
  }
  let offset = 0;
  lines.forEach((line, i) => {
    const start = offset;
    offset += line.length + (text.startsWith('\r\n', start + line.length) ? 2 : 1);
    const trimmed = line.trim();
    if (!trimmed || trimmed.startsWith('#')) return;
    for (const m of line.matchAll(/(?:^|\s)#\s*PLACEHOLDER\b/g)) {
      const at = start + m.index + m[0].indexOf('#');
      if (!strings.some(([a, b]) => at >= a && at < b)) marked.add(i);
    }
  });
  return [...marked].sort((a, b) => a - b).map((i) => `line ${i + 1}: still a placeholder from migrate: ${lines[i].trim()}`);
}

/** SSM parameter names of a deployment. Everything a deployment writes lives under `base`. */
export function parameterNames(config: Config, stage: string) {
  const base = `${config.ssmPrefix.replace(/\/$/, '')}/${config.deployment}/${stage}`;
  return {
    base,
    config: `${base}/config`,
    state: `${base}/state`,
    /** Operator holds (pause/drain/resume), one parameter per pool: written by operators, read by the controller (lib/controller/holds.ts). */
    operator: `${base}/operator`,
    webhookSecret: config.gitlab.webhookSecretParameter ?? `${base}/secrets/webhook-secret`,
    gitlabApiToken: config.gitlab.apiTokenParameter ?? `${base}/secrets/gitlab-api-token`,
    runnerToken: (pool: Pool) => pool.runnerTokenParameter ?? `${base}/secrets/runner-token/${pool.name}`,
    /** A job secret of the pool (runnerSecrets): environment.DOCKER_AUTH_CONFIG -> .../secrets/runner/<pool>/environment/DOCKER_AUTH_CONFIG. */
    runnerSecret: (pool: Pool, secret: { setting: string; parameter?: string }) => secret.parameter ?? `${base}/secrets/runner/${pool.name}/${secret.setting.replace(/\./g, '/')}`,
  };
}

/** The key prefix of a pool's cache objects in its bucket (gitlab-runner's cache Path), and of what its workers may touch. */
export function cachePath(pool: Pool): string {
  return pool.worker.cache.path ?? pool.name;
}

/**
 * The pool that serves a job with these tags, following GitLab's matching rule: a runner takes a
 * job when the runner's tags include every job tag, and takes untagged jobs only with run_untagged.
 * Pools have disjoint tags (validated), so at most one pool matches.
 */
export function poolForJobTags(config: Config, jobTags: readonly string[]): Pool | undefined {
  if (jobTags.length === 0) return config.pools.find((p) => p.runUntagged);
  return config.pools.find((p) => jobTags.every((t) => p.tags.includes(t)));
}
