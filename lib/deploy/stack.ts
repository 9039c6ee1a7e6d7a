/**
 * The config file -> the parts of serverless.yml that depend on it: function environments and
 * events, per-pool launch templates, instance profiles and IAM, schedules, outputs.
 * Pure: serverless.yml reaches it through lib/deploy/serverless-vars.js, the tests call it directly.
 *
 * IAM follows least privilege (issue 4): no `*` actions; EC2 writes are limited to instances that
 * carry this deployment's and stage's tags (aws:RequestTag at launch, aws:ResourceTag afterwards);
 * SSM access is limited to this deployment's path; the webhook role has no EC2 permission at all.
 * Launches (issue 11): only from this deployment's launch templates, only the configured instance
 * types, subnets, security groups and AMIs (`launchStatements`; docs/deployment.md has the table of
 * which condition applies to which resource and why). Workers reach only their own pool's token
 * and cache prefix (`cacheStatements`), optionally only from their instance (`credentialPinStatements`),
 * and whatever a pool's worker.iam adds, nothing of the deployment beyond that (`otherSecretsDeny`,
 * `workerGuardStatements`, the bucket policy's guards).
 */
import { encodeUserData } from '../worker/encode';
import { createHash } from 'node:crypto';
import type { Config, Pool } from '../config';
import { cachePath, parameterNames, runnerCacheIsExternal, usesDeploymentCache } from '../config';
import { REPORT_TAG_KEYS, reportQueueName, TAGS, launchTemplateName, TAG_PREFIX, workerLogGroupName } from '../controller/tags';
import { dashboardBody, dashboardName } from './dashboard';
import { REPORTING } from '../planner';
import { boundarySchedules, type BoundarySchedule } from './schedules';
import { scheduleRate } from '../controller/loop';
import { deploymentNames, LAUNCH_STATEMENTS, STAGE_RE } from './names';
import { getAtt, lambdaRole, ref, sub, type Cfn } from './cfn';
import { imageBuildsFunctionName, imageName, imageParameterName, imageResources, launchImageId } from './image';

export interface UserDataArgs {
  config: Config;
  pool: Pool;
  stage: string;
  region?: string;
  cacheBucket?: string;
}

export interface DevOverrides {
  /** moto's endpoint, passed to the SDK as AWS_ENDPOINT_URL. */
  endpoint: string;
  queueUrl: string;
  /** The worker-report queue in moto, and the ids of the worker roles created there. */
  reportQueueUrl?: string;
  workerRoleIds?: string[];
  /** The config file the Lambdas read instead of the SSM parameter. */
  configFile: string;
}

export interface StackOptions {
  config: Config;
  stage: string;
  region: string;
  /** VPC of the pools' subnets; needed for the worker security group. */
  vpcId?: string;
  renderUserData: (args: UserDataArgs) => string;
  dev?: DevOverrides;
}


export class StackError extends Error {
  override name = 'StackError';
}

/**
 * Memory and timeouts (justified in docs/deployment.md, "Sizing"). The reconcile function reads
 * both queues itself (no event source mapping: docs/architecture.md, "Event throughput"); each
 * receive hides a message for REPORTING.visibilitySeconds, which the fence counts on (planner.ts).
 * An overlapping scheduled invocation (reserved concurrency 1) is dropped after a minute
 * (maximumEventAge), not queued for hours.
 */
export const SIZING = {
  webhook: { memorySize: 256, timeout: 10 },
  /**
   * The public webhook's flood bounds (docs/deployment.md, "The public webhook: throttling").
   * Sized for 20,000 jobs an hour: about 4 job hooks per job (created, pending, running, finished)
   * is 80,000 an hour, 22 a second on average; 100 a second sustained is 4.5 times that, and a
   * bucket of 500 takes a 500-job pipeline's `created` hooks at once. 50 containers at ~50 ms a
   * delivery serve 1,000 a second warm, 200 a second all cold: above the stage limit, so a flood
   * meets API Gateway's 429 before Lambda's throttle, and costs at most 100 cheap invocations a
   * second. GitLab's own deliveries are bounded by its Sidekiq threads (each waits for our answer).
   */
  webhookThrottle: { rateLimit: 100, burstLimit: 500, reservedConcurrency: 50 },
  reconcile: { memorySize: 512, timeout: 90, maximumEventAge: 60, maximumRetryAttempts: 0 },
  interruption: { memorySize: 256, timeout: 30 },
  queueVisibilityTimeout: REPORTING.visibilitySeconds,
  maxReceiveCount: 10,
  /** Reports older than this repair nothing the next heartbeat does not. */
  reportRetention: 3600,
};

export function logicalName(name: string): string {
  return name
    .split(/[^A-Za-z0-9]+/)
    .filter(Boolean)
    .map((p) => p[0].toUpperCase() + p.slice(1))
    .join('');
}

// Hierarchical names start with "/" and the ARN takes them as is; a flat name needs the separator.
const ssmArn = (name: string) => sub(`arn:\${AWS::Partition}:ssm:\${AWS::Region}:\${AWS::AccountId}:parameter${name.startsWith('/') ? '' : '/'}${name}`);
const ec2Arn = (what: string) => sub(`arn:\${AWS::Partition}:ec2:\${AWS::Region}:\${AWS::AccountId}:${what}`);


/** The root device of the AMI family: Canonical's images use /dev/sda1, Amazon Linux /dev/xvda. */
export function rootDeviceName(ami: string): string {
  return /canonical|ubuntu|debian/i.test(ami) ? '/dev/sda1' : '/dev/xvda';
}

/** ssm:GetParameters on the parameters the pools' AMIs resolve from (`ami: resolve:ssm:/...`). */
function amiParameterStatements(config: Config, imageParameters?: string): Cfn[] {
  // The pools' pre-built image parameters (lib/deploy/image.ts) as one ARN: the policy must stay
  // under IAM's size limit with many pools.
  const collapse = (name: string) => (imageParameters && name.startsWith(imageParameters) ? `${imageParameters}*` : name);
  const names = [...new Set(config.pools.map((p) => p.worker.ami).filter((a) => a.startsWith('resolve:ssm:')).map((a) => collapse(a.slice('resolve:ssm:'.length).replace(/:\d+$/, ''))))].sort();
  if (!names.length) return [];
  const arn = (name: string) =>
    name.startsWith('/aws/service/')
      ? sub(`arn:\${AWS::Partition}:ssm:\${AWS::Region}::parameter${name}`)
      : sub(`arn:\${AWS::Partition}:ssm:\${AWS::Region}:\${AWS::AccountId}:parameter${name.startsWith('/') ? '' : '/'}${name}`);
  return [{ Sid: 'ResolveWorkerAmis', Effect: 'Allow', Action: ['ssm:GetParameters'], Resource: names.map(arn) }];
}

/**
 * The launch template's UserData: base64(gzip(script)) (lib/worker/encode.ts; cloud-init
 * decompresses it), so EC2's 16 KB limit applies to the compressed bytes. The same for every pool:
 * the deployment cache bucket's generated name is not in it (the controller tags it on the pool's
 * workers at launch, lib/controller/tags.ts cacheBucket), so CloudFormation completes nothing here.
 */
function userDataValue(pool: string, text: string): string {
  try {
    return encodeUserData(text, `the worker user data of pool "${pool}"`);
  } catch (e) {
    throw new StackError((e as Error).message);
  }
}

/**
 * The config the controller reads from SSM: without what only workers use, which their launch
 * templates carry (the runner: block, runnerSecrets, userScript, caCertificate). A few pools with scripts and CA
 * certificates would otherwise pass SSM's 8 KB (advanced tier) and fail the deploy; the migrated
 * multi-team fixture is 4.8 KB whole, 3.0 KB without them.
 */
export function controllerConfig(config: Config): Config {
  return {
    ...config,
    pools: config.pools.map(({ runner: _runner, runnerSecrets: _secrets, ...pool }) => ({ ...pool, runnerSecrets: [], worker: { ...pool.worker, userScript: undefined, caCertificate: undefined } })),
  };
}

/**
 * ssm:GetParameter on the pool's job secrets (runnerSecrets), which its workers read at boot:
 * only this pool's, as for the runner token.
 */
function jobSecretStatements(config: Config, stage: string, pool: Pool): Cfn[] {
  const names = parameterNames(config, stage);
  const arns = pool.runnerSecrets.map((s) => ssmArn(names.runnerSecret(pool, s)));
  return arns.length ? [{ Sid: 'OwnJobSecrets', Effect: 'Allow', Action: ['ssm:GetParameter'], Resource: arns }] : [];
}

/**
/** IAM's limit on a role's inline policies together, in characters without white space (IAM user guide, "IAM and AWS STS quotas"). */
const IAM_INLINE_POLICY_LIMIT = 10_240;

/** A role's inline policies as IAM counts them, with Fn::Sub's pseudo parameters at their longest likely values. */
function inlinePolicyChars(policies: unknown, region: string): number {
  return JSON.stringify(policies)
    .replace(/\{"Fn::Sub":("(?:[^"\\]|\\.)*")\}/g, '$1')
    .replace(/\$\{AWS::Partition\}/g, 'aws-us-gov')
    .replace(/\$\{AWS::Region\}/g, region)
    .replace(/\$\{AWS::AccountId\}/g, '123456789012')
    .replace(/\s/g, '').length;
}

/**
 * The pool's own statements (worker.iam.statements, what amazonec2-iam-instance-profile granted), in
 * a policy of their own so the project's `worker` policy stays as reviewed.
 */
function extraWorkerPolicies(pool: Pool): Cfn[] {
  const statements = pool.worker.iam.statements;
  return statements.length ? [{ PolicyName: 'pool-extra', PolicyDocument: { Version: '2012-10-17', Statement: statements } }] : [];
}

export interface StackParts {
  deployment: string;
  stackName: string;
  region: string;
  functionNames: { webhook: string; reconcile: string; interruption: string };
  env: { webhook: Record<string, unknown>; reconcile: Record<string, unknown>; interruption: Record<string, unknown> };
  reconcileEvents: Cfn[];
  interruptionEvents: Cfn[];
  resources: Record<string, Cfn>;
  outputs: Record<string, Cfn>;
  schedules: BoundarySchedule[];
  /** SSM SecureString parameters an admin must create (CloudFormation cannot). */
  secretParameters: string[];
  /** The webhook function's reserved concurrency (serverless.yml). */
  webhookReservedConcurrency: number;
  /** Additions to resources the framework generates (serverless.yml `resources.extensions`): the HTTP API stage's throttling. */
  extensions: Record<string, Cfn>;
}

/** Reused by the reconcile and the worker roles' grants. */
const unique = <T>(xs: readonly T[]): T[] => [...new Set(xs)].sort();

/**
 * Each pool reads its own runner token, and nothing reads a token through another's name: two pools
 * sharing a token parameter would let one pool's workers act as the other's runner, and a token
 * parameter that is the webhook secret or the API token would hand that secret to every worker.
 */
function checkDistinctSecrets(config: Config, names: ReturnType<typeof parameterNames>): void {
  const owners = new Map<string, string>([
    [names.webhookSecret, 'the webhook secret'],
    [names.gitlabApiToken, 'the GitLab API token'],
    [names.config, 'the config'],
  ]);
  const stateClash = (name: string) => (name === names.state || name.startsWith(`${names.state}/`) ? "the controller's state" : undefined);
  for (const pool of config.pools) {
    const name = names.runnerToken(pool);
    const clash = owners.get(name) ?? stateClash(name);
    if (clash) throw new StackError(`pool "${pool.name}" reads its runner token from ${name}, which is also ${clash}; give every pool its own runnerTokenParameter`);
    owners.set(name, `pool "${pool.name}"'s runner token`);
  }
  // (Job secrets that name such a parameter are refused by validation: lib/config.ts parameterCrossCheck.)
  // The reconcile role may read what a pool's AMI resolves from (amiParameterStatements): never a secret.
  for (const pool of config.pools) {
    if (!pool.worker.ami.startsWith('resolve:ssm:')) continue;
    const name = pool.worker.ami.slice('resolve:ssm:'.length).replace(/:\d+$/, '');
    const clash = owners.get(name) ?? stateClash(name) ?? (config.pools.some((p) => p.runnerSecrets.some((x) => names.runnerSecret(p, x) === name)) ? 'a job secret' : undefined);
    if (clash) throw new StackError(`pool "${pool.name}" resolves its AMI from ${name}, which is ${clash}: the reconcile role would be allowed to read it; name the parameter that holds the AMI id`);
  }
}

/**
 * S3 for a worker's cache: only its pool's prefix (cachePath: the pool name unless the config names
 * a path two pools share), in the deployment's bucket or the pool's own. A job that takes its
 * worker over (privileged) holds these credentials: it must not read or poison another pool's cache.
 */
function cacheStatements(pool: Pool, bucketArn: unknown): Cfn[] {
  const path = cachePath(pool);
  const objects = pool.worker.cache.bucketName ? sub(`arn:\${AWS::Partition}:s3:::${pool.worker.cache.bucketName}/${path}/*`) : sub(`\${CacheBucket.Arn}/${path}/*`);
  return [
    // Listing only under the pool's prefix (gitlab-runner's cache Path, written by lib/worker/runner-config.ts).
    { Sid: 'CacheList', Effect: 'Allow', Action: ['s3:ListBucket'], Resource: bucketArn, Condition: { StringLike: { 's3:prefix': [path, `${path}/*`] } } },
    { Sid: 'CacheObjects', Effect: 'Allow', Action: ['s3:GetObject', 's3:PutObject', 's3:DeleteObject'], Resource: objects },
  ];
}

/**
 * With pinWorkerCredentials, a worker's credentials do nothing anywhere but on the instance they
 * were issued to (docs/worker.md, "Security notes", says why this is opt-in). AWS's "credential
 * control properties" (2023): every instance-role credential carries the VPC and primary private IP
 * it was issued to; requests through a VPC endpoint carry the VPC and source IP they came from.
 * Deny when they differ. Calls AWS services make on the worker's behalf (SSM -> KMS) are exempt
 * (aws:ViaAWSService). The Deny covers every action, so also the pool's own extra policies.
 */
function credentialPinStatements(config: Config): Cfn[] {
  if (!config.pinWorkerCredentials) return [];
  const onlyEc2Credentials = { Null: { 'ec2:SourceInstanceARN': 'false' }, BoolIfExists: { 'aws:ViaAWSService': 'false' } };
  return [
    // Policy variables escaped for Fn::Sub (and so the Serverless variable resolver leaves them alone).
    { Sid: 'CredentialsOnlyInTheirVpc', Effect: 'Deny', Action: '*', Resource: '*', Condition: { StringNotEquals: { 'aws:Ec2InstanceSourceVpc': sub('${!aws:SourceVpc}') }, ...onlyEc2Credentials } },
    { Sid: 'CredentialsOnlyOnTheirInstance', Effect: 'Deny', Action: '*', Resource: '*', Condition: { StringNotEquals: { 'aws:Ec2InstanceSourcePrivateIPv4': sub('${!aws:VpcSourceIp}') }, ...onlyEc2Credentials } },
  ];
}

/**
 * The deployment bucket's own guard: a pool's worker role may touch nothing outside the pool's
 * prefix (nothing at all when the pool does not use this bucket), whatever else it is granted
 * (worker.iam extras such as AmazonS3FullAccess): a Deny in the bucket policy, keyed on the role
 * (aws:PrincipalArn), outranks every Allow.
 */
function bucketGuard(pool: Pool, id: string): Cfn[] {
  const role = { ArnEquals: { 'aws:PrincipalArn': getAtt(`WorkerRole${id}`, 'Arn') } };
  if (!usesDeploymentCache(pool)) return [{ Sid: `NotThisBucket${id}`, Effect: 'Deny', Principal: '*', Action: 's3:*', Resource: [getAtt('CacheBucket', 'Arn'), sub('${CacheBucket.Arn}/*')], Condition: role }];
  const path = cachePath(pool);
  return [
    { Sid: `OnlyOwnPrefixObjects${id}`, Effect: 'Deny', Principal: '*', Action: 's3:*', NotResource: [getAtt('CacheBucket', 'Arn'), sub(`\${CacheBucket.Arn}/${path}/*`)], Condition: role },
    { Sid: `OnlyOwnPrefixListing${id}`, Effect: 'Deny', Principal: '*', Action: 's3:ListBucket', Resource: getAtt('CacheBucket', 'Arn'), Condition: { ...role, StringNotLike: { 's3:prefix': [path, `${path}/*`] } } },
  ];
}

/**
 * The deployment's secrets a pool's workers must never read, denied explicitly so that no extra
 * grant (worker.iam: AmazonSSMManagedInstanceCore, attached for Session Manager, allows
 * ssm:GetParameter on every parameter) can open them: other pools' runner tokens and job secrets,
 * the webhook secret, the GitLab API token, the config, the controller's state and the operators'
 * holds (reads and writes); and reading by path from the deployment's tree or above it (a worker reads its own
 * parameters by name).
 */
function otherSecretsDeny(config: Config, names: ReturnType<typeof parameterNames>, pool: Pool | undefined): Cfn[] {
  const others = config.pools.filter((p) => p.name !== pool?.name);
  const own = new Set(pool ? [names.runnerToken(pool), ...pool.runnerSecrets.map((s) => names.runnerSecret(pool, s))] : []);
  // Another pool's job secrets at their default names: one ARN for its whole subtree.
  const secretsOf = (p: Pool) => [...(p.runnerSecrets.some((s) => s.parameter === undefined) ? [`${names.base}/secrets/runner/${p.name}/*`] : []), ...p.runnerSecrets.filter((s) => s.parameter !== undefined).map((s) => names.runnerSecret(p, s))];
  const denied = [...new Set([names.webhookSecret, names.gitlabApiToken, names.config, ...others.flatMap((p) => [names.runnerToken(p), ...secretsOf(p)])])].filter((n) => !own.has(n));
  // Any region and account: a Deny may be broader, and short ARNs keep the role's inline policies
  // under IAM's limit for more pools (inlinePolicyChars).
  const anyArn = (name: string) => sub(`arn:\${AWS::Partition}:ssm:*:*:parameter${name.startsWith('/') ? '' : '/'}${name}`);
  // SSM returns every level below a path one may read by path, whatever Denies the leaves have
  // (SSM user guide, "Restricting access to Parameter Store parameters using IAM policies"): the
  // deployment's tree and every path above it or above a denied name, up to "/", are denied.
  const ancestors = (name: string) => name.split('/').slice(1, -1).map((_, i, parts) => `/${parts.slice(0, i + 1).join('/')}`);
  const inTree = (path: string) => path.startsWith(`${names.base}/`); // covered by base/*
  const paths = unique(['/', names.base, ...ancestors(names.base), ...denied.flatMap(ancestors)].filter((p) => !inTree(p)));
  return [
    {
      Sid: 'NeverOtherSecrets',
      Effect: 'Deny',
      Action: ['ssm:GetParameter', 'ssm:GetParameters', 'ssm:GetParameterHistory', 'ssm:PutParameter', 'ssm:DeleteParameter', 'ssm:DeleteParameters', 'ssm:LabelParameterVersion'],
      // The operators' holds too: a worker that could write them could resume a paused pool.
      Resource: [...denied.map(anyArn), anyArn(names.state), anyArn(`${names.state}/*`), anyArn(names.operator), anyArn(`${names.operator}/*`)],
    },
    { Sid: 'NeverTheDeploymentByPath', Effect: 'Deny', Action: ['ssm:GetParametersByPath'], Resource: [...paths.map(anyArn), anyArn(`${names.base}/*`)] },
  ];
}

const logGroupArn = (group: string) => sub(`arn:\${AWS::Partition}:logs:\${AWS::Region}:\${AWS::AccountId}:log-group:${group}`);

/**
 * A worker ships its log to its pool's group, into one stream named `<instance id>/<primary private
 * IPv4>` (lib/worker/script.ts). IAM has no policy variable that holds the bare instance id
 * (aws:userid is `<role id>:<instance id>`, and stream names cannot contain ":"), but every request
 * signed with instance-profile credentials carries aws:EC2InstanceSourcePrivateIPv4, the instance's
 * own primary address (AWS security blog, "How to use policies to restrict where EC2 instance
 * credentials can be used from"; global condition keys work as policy variables, IAM user guide,
 * "Variables and tags"). So PutLogEvents is allowed only on streams ending in the caller's own
 * address: a worker cannot write another live worker's stream. CreateLogStream is allowed in the
 * pool's group (an empty stream under another name harms no one: nothing can be written to it).
 */
function workerLogStatements(config: Config, stage: string, pool: Pool): Cfn[] {
  if (config.workerLogRetentionDays === 0) return [];
  const group = workerLogGroupName(config.deployment, stage, pool.name);
  return [
    { Sid: 'OwnLogStream', Effect: 'Allow', Action: ['logs:CreateLogStream'], Resource: sub(`arn:\${AWS::Partition}:logs:\${AWS::Region}:\${AWS::AccountId}:log-group:${group}:*`) },
    {
      Sid: 'ShipOwnLog',
      Effect: 'Allow',
      Action: ['logs:PutLogEvents'],
      // ${!...}: an IAM policy variable, escaped for Fn::Sub (and the Serverless variable resolver).
      Resource: sub(`arn:\${AWS::Partition}:logs:\${AWS::Region}:\${AWS::AccountId}:log-group:${group}:log-stream:i-*/\${!aws:EC2InstanceSourcePrivateIPv4}`),
    },
  ];
}

/**
 * The controller's and the interruption handler's instance tags (every key of TAGS, so a new one
 * is guarded too): a worker sets none of them, anywhere — the reported-state tags included (the
 * controller writes them from the worker's SenderId-checked reports; a worker that could write them
 * could lie about another instance). The cache-bucket tag too: the worker reads it once, at boot,
 * before any job runs, so a job could gain nothing on its own worker by rewriting it, but the tag
 * stays the controller's record of what the worker was launched with.
 */
const CONTROLLER_TAG_KEYS: string[] = Object.values(TAGS);

/** A pool's workers writing more than this to their log group in an hour raise an alarm (WorkerLogVolumeAlarm). */
export const WORKER_LOG_ALARM_GIB = 10;

/** Managed policies one role may have attached by default (IAM user guide, "IAM and AWS STS quotas"); one is the stack's guard. */
export const MANAGED_POLICIES_PER_ROLE = 10;

/**
 * What a pool's worker role may never do beyond its parameters (otherSecretsDeny guards those),
 * whatever its pool's worker.iam adds: validation refuses extras that reach the control plane
 * (lib/worker/iam.ts), but cannot read a customer managed policy, nor an AWS managed one it does
 * not list; explicit Denies hold against all of them. A worker itself needs none of this. Shared by
 * every worker role as one managed policy, `WorkerGuard` (inline it would take ~2.7 of the 10,240
 * characters per role that the per-pool Deny already grows into):
 *  - IAM at all: passing a role (launching with another pool's profile), changing its own role;
 *  - act on any gitlab-spot-autoscaler instance, volume or launch template but tag itself: stop,
 *    terminate, snapshot or image another worker (its disk holds that pool's token), swap its
 *    profile or metadata options, or add a launch template version that the controller would launch;
 *  - set the controller's tags on any instance (pool, launched-at, retire...: what the hard end of
 *    life and termination key on), or tag another worker at all;
 *  - open a session or send a command to a worker (SSM, EC2 Instance Connect, serial console);
 *  - touch the deployment's functions, queues or stack.
 */
function workerGuardStatements(config: Config, stage: string): Cfn[] {
  const anyDeployment = { Null: { [`aws:ResourceTag/${TAGS.deployment}`]: 'false' } };
  const { functionNames, stackName } = deploymentNames(config.deployment, stage);
  return [
      { Sid: 'NeverIam', Effect: 'Deny', Action: ['iam:*'], Resource: '*' },
      {
        Sid: 'NeverOtherWorkersMachines',
        Effect: 'Deny',
        Action: [
          'ec2:TerminateInstances', 'ec2:StopInstances', 'ec2:StartInstances', 'ec2:RebootInstances', 'ec2:ModifyInstance*', 'ec2:*IamInstanceProfile*', 'ec2:DeleteTags',
          'ec2:CreateImage', 'ec2:CreateSnapshot*', 'ec2:AttachVolume', 'ec2:DetachVolume', 'ec2:DeleteVolume', 'ec2:ModifyVolume*',
          'ec2:CreateLaunchTemplateVersion', 'ec2:ModifyLaunchTemplate', 'ec2:DeleteLaunchTemplate*', 'ec2:RunInstances', 'ec2:CreateFleet',
        ],
        Resource: [ec2Arn('instance/*'), ec2Arn('volume/*'), ec2Arn('launch-template/*')],
        Condition: anyDeployment,
      },
      { Sid: 'NeverTheControllersTags', Effect: 'Deny', Action: ['ec2:CreateTags'], Resource: '*', Condition: { 'ForAnyValue:StringEquals': { 'aws:TagKeys': CONTROLLER_TAG_KEYS } } },
      // IAM policy variable, escaped for Fn::Sub (and the Serverless variable resolver).
      { Sid: 'NeverTagAnotherWorker', Effect: 'Deny', Action: ['ec2:CreateTags'], Resource: ec2Arn('instance/*'), Condition: { ...anyDeployment, StringNotEquals: { 'aws:ARN': sub('${!ec2:SourceInstanceARN}') } } },
      { Sid: 'NeverCommandsToWorkers', Effect: 'Deny', Action: ['ssm:SendCommand', 'ssm:StartSession'], Resource: ec2Arn('instance/*'), Condition: { Null: { [`ssm:resourceTag/${TAGS.deployment}`]: 'false' } } },
      { Sid: 'NeverConsolesOfWorkers', Effect: 'Deny', Action: ['ec2-instance-connect:*'], Resource: ec2Arn('instance/*'), Condition: anyDeployment },
      {
        Sid: 'NeverTheControlPlane',
        Effect: 'Deny',
        Action: ['lambda:*', 'sqs:*', 'cloudformation:*'],
        Resource: [
          ...[...Object.values(functionNames), imageBuildsFunctionName(config.deployment, stage)].flatMap((fn) => [`function:${fn}`, `function:${fn}:*`]).map((f) => sub(`arn:\${AWS::Partition}:lambda:\${AWS::Region}:\${AWS::AccountId}:${f}`)),
          getAtt('EventQueue', 'Arn'),
          getAtt('EventDeadLetterQueue', 'Arn'),
          sub(`arn:\${AWS::Partition}:cloudformation:\${AWS::Region}:\${AWS::AccountId}:stack/${stackName}/*`),
        ],
      },
      // The pools' pre-built images (lib/deploy/image.ts): a worker that could change a recipe, start
      // a build or repoint a pool's AMI parameter could put its own image under every later worker.
      {
        Sid: 'NeverTheWorkerImages',
        Effect: 'Deny',
        Action: ['imagebuilder:*', 'ssm:PutParameter', 'ssm:DeleteParameter', 'ssm:DeleteParameters', 'ssm:LabelParameterVersion'],
        Resource: [
          sub(`arn:\${AWS::Partition}:imagebuilder:\${AWS::Region}:\${AWS::AccountId}:*/${imageName(config.deployment, stage, '')}*`),
          sub(`arn:\${AWS::Partition}:ssm:\${AWS::Region}:\${AWS::AccountId}:parameter${imageParameterName(config, stage, '*')}`),
        ],
      },
      // Workers' logs are evidence: no worker deletes or re-routes them (retention, subscriptions,
      // keys), whatever worker.iam adds; it may only add to its own stream (workerLogStatements).
      {
        Sid: 'NeverRewriteTheDeploymentsLogs',
        Effect: 'Deny',
        NotAction: ['logs:CreateLogStream', 'logs:PutLogEvents', 'logs:DescribeLogStreams'],
        Resource: [logGroupArn(`/${TAG_PREFIX}/${config.deployment}/${stage}/*`), logGroupArn(`/${TAG_PREFIX}/${config.deployment}/${stage}/*:*`)],
      },
      // ... and never touches the functions' logs (the controller's decisions).
      {
        Sid: 'NeverTheFunctionsLogs',
        Effect: 'Deny',
        Action: ['logs:*'],
        Resource: Object.values(functionNames).flatMap((fn) => [logGroupArn(`/aws/lambda/${fn}`), logGroupArn(`/aws/lambda/${fn}:*`)]),
      },
  ];
}

/**
 * ec2:CreateFleet / ec2:RunInstances for the reconcile role: a compromised function (or a bug) can
 * launch only from the deployment's templates, with its types, subnets, groups and images, tagged as
 * the deployment's. What IAM cannot pin: a RunInstances call may override a template's UserData
 * (and name another pool's profile, which PassRole allows), and no condition key sees user data
 * (EC2 user guide, "Use launch templates to control launching instances"). The grant cannot be
 * dropped, since EC2 checks it inside CreateFleet; docs/deployment.md states this residual risk.
 *
 * An instant CreateFleet is authorized as ec2:CreateFleet on each resource it touches, and EC2 also
 * checks ec2:RunInstances for the instances it launches (so both actions appear; Karpenter's
 * published policy for the same call does the same). Condition keys differ between the two (Service
 * Authorization Reference, "Actions, resources, and condition keys for Amazon EC2"): CreateFleet's
 * resources offer ec2:InstanceType but not ec2:LaunchTemplate, RunInstances offers both. Hence:
 *  - launch-template: the deployment's templates only, by ARN (CreateFleet always names one);
 *  - instance: this deployment's and stage's tags at launch, and a configured instance type, for
 *    both actions; for RunInstances also ec2:LaunchTemplate = one of the deployment's templates
 *    (unless config.requireLaunchTemplateKey is false: the SAR lists the key for RunInstances, but
 *    no AWS document or published policy shows it in the RunInstances check a fleet makes);
 *  - subnet and security-group: the configured ones (and the stack's own group), by ARN;
 *  - image: the configured AMI ids by ARN; any image when a pool resolves its AMI from SSM at
 *    launch (its id is not known here);
 *  - volume, network-interface, snapshot, fleet, spot-instances-request: created or used with the
 *    instance, no narrower key exists that a legitimate launch would satisfy; nothing launches
 *    without the instance grant above.
 * A condition key the request context lacks denies the request, so no key is required here that
 * docs do not list for that action and resource.
 */
export function launchStatements(config: Config, stage: string, launchTemplateArns: unknown[], ownSecurityGroup: boolean): Cfn[] {
  const both = ['ec2:CreateFleet', 'ec2:RunInstances'];
  const requestTags = { [`aws:RequestTag/${TAGS.deployment}`]: config.deployment, [`aws:RequestTag/${TAGS.stage}`]: stage };
  const instanceTypes = unique(config.pools.flatMap((p) => p.worker.instanceTypes));
  const subnets = unique(config.pools.flatMap((p) => p.worker.subnets)).map((id) => ec2Arn(`subnet/${id}`));
  const groups: unknown[] = unique(config.pools.flatMap((p) => p.worker.securityGroups)).map((id) => ec2Arn(`security-group/${id}`));
  if (ownSecurityGroup) groups.push(sub(`arn:\${AWS::Partition}:ec2:\${AWS::Region}:\${AWS::AccountId}:security-group/\${WorkerSecurityGroup.GroupId}`));
  const image = (id: string) => sub(`arn:\${AWS::Partition}:ec2:\${AWS::Region}::image/${id}`);
  const images = config.pools.some((p) => !p.worker.ami.startsWith('ami-')) ? [image('*')] : unique(config.pools.map((p) => p.worker.ami)).map(image);
  return [
    {
      Sid: LAUNCH_STATEMENTS.resources,
      Effect: 'Allow',
      Action: both,
      Resource: [...launchTemplateArns, ...subnets, ...groups, ...images, ec2Arn('volume/*'), ec2Arn('network-interface/*'), sub('arn:${AWS::Partition}:ec2:${AWS::Region}::snapshot/*')],
    },
    { Sid: 'CreateInstantFleets', Effect: 'Allow', Action: ['ec2:CreateFleet'], Resource: ec2Arn('fleet/*') },
    // Both actions, as in Karpenter's published controller policy for the same call: whether EC2
    // authorizes a spot request under CreateFleet too is not documented, and a missing grant would
    // refuse every spot launch. A spot request exists only with an instance the grants below allow.
    { Sid: 'RequestSpotForWorkers', Effect: 'Allow', Action: both, Resource: ec2Arn('spot-instances-request/*') },
    {
      Sid: LAUNCH_STATEMENTS.fleetInstances,
      Effect: 'Allow',
      Action: ['ec2:CreateFleet'],
      Resource: ec2Arn('instance/*'),
      Condition: { StringEquals: { ...requestTags, 'ec2:InstanceType': instanceTypes } },
    },
    {
      Sid: LAUNCH_STATEMENTS.runInstances,
      Effect: 'Allow',
      Action: ['ec2:RunInstances'],
      Resource: ec2Arn('instance/*'),
      Condition: {
        StringEquals: { ...requestTags, 'ec2:InstanceType': instanceTypes },
        // The one key of these whose presence in a fleet's RunInstances check no AWS document or
        // published policy shows; config.requireLaunchTemplateKey: false drops it after a refused
        // launch proves it absent (docs/deployment.md, "A refused launch").
        ...(config.requireLaunchTemplateKey ? { ArnEquals: { 'ec2:LaunchTemplate': launchTemplateArns } } : {}),
      },
    },
  ];
}

export function buildStack(opts: StackOptions): StackParts {
  const { config, stage, region } = opts;
  if (!STAGE_RE.test(stage)) throw new StackError(`stage "${stage}" must be 1-16 of a-z, 0-9 and "-" (it goes into function and resource names)`);
  if (config.region && config.region !== region) throw new StackError(`the config names region ${config.region} but the stack is being built for ${region}; pass --region ${config.region} or change region in the config`);
  const names = parameterNames(config, stage);
  const { stackName, functionNames } = deploymentNames(config.deployment, stage);
  const configJson = JSON.stringify(controllerConfig(config));
  const configHash = createHash('sha256').update(configJson).digest('hex').slice(0, 16);
  // docker's disable_cache concerns local cache volumes, not the distributed cache (config.ts usesDeploymentCache).
  const sharedCache = config.pools.some(usesDeploymentCache);
  const needOwnSg = config.pools.some((p) => p.worker.securityGroups.length === 0);
  // Pre-built worker images (lib/deploy/image.ts); not in local development against moto, which
  // has no Image Builder: there every pool boots from its base AMI.
  const images = !opts.dev;
  // What the launch templates launch: a pre-built pool's image parameter instead of its base AMI.
  const launchConfig: Config = { ...config, pools: config.pools.map((p) => ({ ...p, worker: { ...p.worker, ami: launchImageId(config, stage, p, images) } })) };
  const vpcId = opts.vpcId ?? config.vpcId;
  if (needOwnSg && !vpcId)
    throw new StackError(
      `pools ${config.pools.filter((p) => p.worker.securityGroups.length === 0).map((p) => `"${p.name}"`).join(', ')} list no worker.securityGroups, so the stack creates one (no inbound rules) and needs the VPC of the subnets: set vpcId in the config or pass --param vpc=vpc-... (aws ec2 describe-subnets --subnet-ids ${config.pools[0].worker.subnets[0]} --query "Subnets[0].VpcId")`,
    );
  if (vpcId && !/^vpc-[0-9a-f]+$/.test(vpcId)) throw new StackError(`vpc "${vpcId}" must be a VPC id such as "vpc-0abc123"`);

  const deploymentCondition = (kind: 'aws:ResourceTag' | 'aws:RequestTag') => ({ StringEquals: { [`${kind}/${TAGS.deployment}`]: config.deployment, [`${kind}/${TAGS.stage}`]: stage } });
  const resources: Record<string, Cfn> = {};
  const outputs: Record<string, Cfn> = {};
  const secretParameters = [names.webhookSecret, names.gitlabApiToken, ...config.pools.map((p) => names.runnerToken(p))];
  checkDistinctSecrets(config, names);
  const poolIds = new Map<string, string>();
  for (const pool of config.pools) {
    const id = logicalName(pool.name);
    if ([...poolIds.values()].includes(id)) throw new StackError(`pool names "${pool.name}" and "${[...poolIds].find(([, v]) => v === id)![0]}" map to the same CloudFormation id ${id}; rename one`);
    poolIds.set(pool.name, id);
  }

  // ---- queue, dead-letter queue, alarms -----------------------------------------------------
  resources.EventDeadLetterQueue = {
    Type: 'AWS::SQS::Queue',
    Properties: { MessageRetentionPeriod: 14 * 24 * 3600, SqsManagedSseEnabled: true },
  };
  resources.EventQueue = {
    Type: 'AWS::SQS::Queue',
    Properties: {
      VisibilityTimeout: SIZING.queueVisibilityTimeout,
      // An event older than pendingJobTtl holds no capacity anyway; keep a margin.
      MessageRetentionPeriod: Math.max(3600, Math.min(14 * 24 * 3600, config.pendingJobTtl * 2)),
      SqsManagedSseEnabled: true,
      RedrivePolicy: { deadLetterTargetArn: getAtt('EventDeadLetterQueue', 'Arn'), maxReceiveCount: SIZING.maxReceiveCount },
    },
  };
  // Workers send their state here (lib/worker/script.ts; lib/controller/reports.ts). A fixed name,
  // so the user data finds it with sqs:GetQueueUrl and needs no deploy-time value.
  resources.WorkerReportQueue = {
    Type: 'AWS::SQS::Queue',
    Properties: {
      QueueName: reportQueueName(config.deployment, stage),
      VisibilityTimeout: SIZING.queueVisibilityTimeout,
      MessageRetentionPeriod: SIZING.reportRetention,
      SqsManagedSseEnabled: true,
      RedrivePolicy: { deadLetterTargetArn: getAtt('EventDeadLetterQueue', 'Arn'), maxReceiveCount: SIZING.maxReceiveCount },
    },
  };
  resources.AlarmTopic = { Type: 'AWS::SNS::Topic', Properties: { DisplayName: `gitlab-spot-autoscaler ${config.deployment} ${stage} alarms` } };
  // Both alarms fire on the first breach and stay quiet without data (no messages, no invocations).
  const alarm = (description: string, metric: { Namespace: string; MetricName: string; Dimensions: Cfn[]; Statistic: string; Period: number; EvaluationPeriods: number }): Cfn => ({
    Type: 'AWS::CloudWatch::Alarm',
    Properties: { AlarmDescription: description, ...metric, Threshold: 0, ComparisonOperator: 'GreaterThanThreshold', TreatMissingData: 'notBreaching', AlarmActions: [ref('AlarmTopic')] },
  });
  resources.DeadLetterAlarm = alarm(
    `Job events or worker reports of ${config.deployment}/${stage} could not be read ${SIZING.maxReceiveCount} times and went to the dead-letter queue; see the reconcile function's logs`,
    { Namespace: 'AWS/SQS', MetricName: 'ApproximateNumberOfMessagesVisible', Dimensions: [{ Name: 'QueueName', Value: getAtt('EventDeadLetterQueue', 'QueueName') }], Statistic: 'Maximum', Period: 300, EvaluationPeriods: 1 },
  );
  resources.ReconcileErrorAlarm = alarm(`The reconcile function of ${config.deployment}/${stage} failed in 5 consecutive minutes`, {
    Namespace: 'AWS/Lambda',
    MetricName: 'Errors',
    Dimensions: [{ Name: 'FunctionName', Value: functionNames.reconcile }],
    Statistic: 'Sum',
    Period: 60,
    EvaluationPeriods: 5,
  });

  // ---- config parameter (secrets are created by the admin: CloudFormation cannot write SecureString)
  resources.ConfigParameter = {
    Type: 'AWS::SSM::Parameter',
    Properties: {
      Name: names.config,
      Type: 'String',
      // Standard up to 4 KB, advanced (charged) above, chosen by SSM (facts: SSM limits).
      Tier: 'Intelligent-Tiering',
      Value: configJson,
      Description: `gitlab-spot-autoscaler config of ${config.deployment}/${stage} (written by serverless deploy)`,
    },
  };

  // ---- cache bucket ---------------------------------------------------------------------------
  if (sharedCache) {
    resources.CacheBucket = {
      Type: 'AWS::S3::Bucket',
      // The cache is disposable, but S3 refuses to delete a non-empty bucket with the stack:
      // keep it, and say so in docs/deployment.md ("Removing a deployment").
      DeletionPolicy: 'Retain',
      UpdateReplacePolicy: 'Retain',
      Properties: {
        BucketEncryption: { ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' }, BucketKeyEnabled: true }] },
        PublicAccessBlockConfiguration: { BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true },
        OwnershipControls: { Rules: [{ ObjectOwnership: 'BucketOwnerEnforced' }] },
        LifecycleConfiguration: {
          Rules: [
            { Id: 'expire-cache', Status: 'Enabled', ExpirationInDays: 14, AbortIncompleteMultipartUpload: { DaysAfterInitiation: 1 } },
          ],
        },
        Tags: [
          { Key: TAGS.deployment, Value: config.deployment },
          { Key: TAGS.stage, Value: stage },
        ],
      },
    };
    resources.CacheBucketPolicy = {
      Type: 'AWS::S3::BucketPolicy',
      Properties: {
        Bucket: ref('CacheBucket'),
        PolicyDocument: {
          Version: '2012-10-17',
          Statement: [
            {
              Sid: 'TlsOnly',
              Effect: 'Deny',
              Principal: '*',
              Action: 's3:*',
              Resource: [getAtt('CacheBucket', 'Arn'), sub('${CacheBucket.Arn}/*')],
              Condition: { Bool: { 'aws:SecureTransport': 'false' } },
            },
            ...config.pools.flatMap((p) => bucketGuard(p, poolIds.get(p.name)!)),
            {
              // The bucket itself (not its objects): a worker lists it, nothing else. Without this, a
              // pool's extras (AmazonS3FullAccess) could rewrite this policy and lift every guard above.
              Sid: 'WorkersOnlyListTheBucket',
              Effect: 'Deny',
              Principal: '*',
              NotAction: ['s3:ListBucket', 's3:GetBucketLocation'],
              Resource: getAtt('CacheBucket', 'Arn'),
              Condition: { ArnEquals: { 'aws:PrincipalArn': config.pools.map((p) => getAtt(`WorkerRole${poolIds.get(p.name)!}`, 'Arn')) } },
            },
          ],
        },
      },
    };
    outputs.CacheBucketName = { Description: 'S3 bucket of the shared runner cache', Value: ref('CacheBucket') };
  }

  // ---- worker security group ------------------------------------------------------------------
  if (needOwnSg) {
    resources.WorkerSecurityGroup = {
      Type: 'AWS::EC2::SecurityGroup',
      Properties: {
        GroupDescription: `gitlab-spot-autoscaler workers of ${config.deployment}/${stage}: no inbound, all outbound (GitLab, registries, S3)`,
        VpcId: vpcId,
        SecurityGroupEgress: [{ IpProtocol: '-1', CidrIp: '0.0.0.0/0', Description: 'workers reach GitLab, container registries and S3' }],
        Tags: [
          { Key: TAGS.deployment, Value: config.deployment },
          { Key: TAGS.stage, Value: stage },
        ],
      },
    };
  }

  // ---- per pool: worker role, instance profile, launch template --------------------------------
  const launchTemplates: Record<string, string> = {};
  const workerRoleArns: unknown[] = [];
  const workerRoleIds: unknown[] = [];
  const launchTemplateArns: unknown[] = [];
  // The Denies every worker role shares (workerGuardStatements), as one managed policy.
  resources.WorkerGuard = {
    Type: 'AWS::IAM::ManagedPolicy',
    // W1020: the Fn::Sub only escapes the IAM variable ${ec2:SourceInstanceARN}.
    Metadata: { 'cfn-lint': { config: { ignore_checks: ['W1020'] } } },
    Properties: {
      Description: `gitlab-spot-autoscaler workers of ${config.deployment}/${stage}: never IAM, other workers, launch templates, functions, queues or the stack, whatever worker.iam adds`,
      PolicyDocument: { Version: '2012-10-17', Statement: workerGuardStatements(config, stage) },
    },
  };
  for (const pool of config.pools) {
    if (pool.worker.iam.managedPolicyArns.length + 1 > MANAGED_POLICIES_PER_ROLE)
      throw new StackError(
        `pools.${pool.name}.worker.iam.managedPolicyArns lists ${pool.worker.iam.managedPolicyArns.length} policies; the stack attaches its guard policy too and IAM allows ${MANAGED_POLICIES_PER_ROLE} per role by default: list at most ${MANAGED_POLICIES_PER_ROLE - 1} (or move statements into worker.iam.statements)`,
      );
    const id = poolIds.get(pool.name)!;
    const ltName = launchTemplateName(config.deployment, stage, pool.name);
    launchTemplates[pool.name] = ltName;
    // A pool with a cache of its own (runner.cache.Type) gets no bucket and no grant from the deployment.
    const managedCache = !runnerCacheIsExternal(pool) && (pool.worker.cache.bucketName !== undefined || usesDeploymentCache(pool));
    const bucketArn = pool.worker.cache.bucketName ? sub(`arn:\${AWS::Partition}:s3:::${pool.worker.cache.bucketName}`) : getAtt('CacheBucket', 'Arn');
    const workerStatements: Cfn[] = [
      { Sid: 'OwnRunnerToken', Effect: 'Allow', Action: ['ssm:GetParameter'], Resource: ssmArn(names.runnerToken(pool)) },
      // The worker reports its state to the report queue (never with CreateTags: that bucket is the
      // account's). SQS stamps each message with the sender's session, `<role id>:<instance id>`,
      // which the controller checks, so a worker can speak only for itself.
      { Sid: 'ReportState', Effect: 'Allow', Action: ['sqs:SendMessage', 'sqs:GetQueueUrl'], Resource: getAtt('WorkerReportQueue', 'Arn') },
    ];
    workerStatements.push(...jobSecretStatements(config, stage, pool), ...workerLogStatements(config, stage, pool));
    if (managedCache) workerStatements.push(...cacheStatements(pool, bucketArn));
    workerStatements.push(...otherSecretsDeny(config, names, pool), ...credentialPinStatements(config));
    resources[`WorkerRole${id}`] = {
      Type: 'AWS::IAM::Role',
      // W1020: with pinWorkerCredentials, the Fn::Sub only escapes the IAM variables ${aws:SourceVpc} and ${aws:VpcSourceIp}.
      Metadata: { 'cfn-lint': { config: { ignore_checks: ['W1020'] } } },
      Properties: {
        Description: `gitlab-spot-autoscaler worker of pool ${pool.name} (${config.deployment}/${stage})`,
        AssumeRolePolicyDocument: { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: { Service: 'ec2.amazonaws.com' }, Action: 'sts:AssumeRole' }] },
        Policies: [{ PolicyName: 'worker', PolicyDocument: { Version: '2012-10-17', Statement: workerStatements } }, ...extraWorkerPolicies(pool)],
        ManagedPolicyArns: [ref('WorkerGuard'), ...pool.worker.iam.managedPolicyArns],
      },
    };
    const policyChars = inlinePolicyChars((resources[`WorkerRole${id}`] as { Properties: { Policies: unknown } }).Properties.Policies, region);
    if (policyChars > IAM_INLINE_POLICY_LIMIT)
      throw new StackError(
        `the worker role of pool "${pool.name}" needs ${policyChars} characters of inline policy, over IAM's ${IAM_INLINE_POLICY_LIMIT} per role: its Deny on the other ${config.pools.length - 1} pools' tokens and job secrets, and its worker.iam statements; fewer statements or job secrets, or fewer pools per deployment`,
      );
    resources[`WorkerInstanceProfile${id}`] = { Type: 'AWS::IAM::InstanceProfile', Properties: { Roles: [ref(`WorkerRole${id}`)] } };
    // The pool's workers' logs (boot steps, gitlab-runner, why it shut down), one stream per worker.
    if (config.workerLogRetentionDays > 0) {
      const group = workerLogGroupName(config.deployment, stage, pool.name);
      resources[`WorkerLogGroup${id}`] = { Type: 'AWS::Logs::LogGroup', Properties: { LogGroupName: group, RetentionInDays: config.workerLogRetentionDays } };
      // IAM cannot rate-limit a worker's writes to its own stream, and a privileged job owns its
      // worker's credentials: it could ingest gigabytes an hour at CloudWatch Logs' per-GB price. The
      // shipper sends a few KB per job and at most 50 MB of runner output per boot; this says when
      // something else writes (docs/security.md).
      resources[`WorkerLogVolumeAlarm${id}`] = {
        Type: 'AWS::CloudWatch::Alarm',
        Properties: {
          AlarmDescription: `Workers of pool ${pool.name} (${config.deployment}/${stage}) wrote more than ${WORKER_LOG_ALARM_GIB} GiB to ${group} in an hour, far more than the log shipper sends: a job writing with the worker's credentials? (docs/security.md)`,
          Namespace: 'AWS/Logs',
          MetricName: 'IncomingBytes',
          Dimensions: [{ Name: 'LogGroupName', Value: group }],
          Statistic: 'Sum',
          Period: 3600,
          EvaluationPeriods: 1,
          Threshold: WORKER_LOG_ALARM_GIB * 2 ** 30,
          ComparisonOperator: 'GreaterThanThreshold',
          TreatMissingData: 'notBreaching',
          AlarmActions: [ref('AlarmTopic')],
        },
      };
    }
    workerRoleArns.push(getAtt(`WorkerRole${id}`, 'Arn'));
    workerRoleIds.push(getAtt(`WorkerRole${id}`, 'RoleId'));

    // A pool on the deployment's bucket: no cacheBucket, so its config.toml holds the placeholder
    // its workers fill in at boot from their cache-bucket tag.
    const userData = opts.renderUserData({ config, pool, stage, region });
    const tags = [
      { Key: TAGS.deployment, Value: config.deployment },
      { Key: TAGS.stage, Value: stage },
      { Key: TAGS.pool, Value: pool.name },
      ...Object.entries(pool.worker.tags).map(([Key, Value]) => ({ Key, Value })),
    ];
    const securityGroups: unknown[] = [...pool.worker.securityGroups];
    if (pool.worker.securityGroups.length === 0) securityGroups.push(getAtt('WorkerSecurityGroup', 'GroupId'));
    resources[`LaunchTemplate${id}`] = {
      Type: 'AWS::EC2::LaunchTemplate',
      Properties: {
        LaunchTemplateName: ltName,
        TagSpecifications: [{ ResourceType: 'launch-template', Tags: tags.slice(0, 3) }],
        LaunchTemplateData: {
          ImageId: launchImageId(config, stage, pool, images),
          IamInstanceProfile: { Arn: getAtt(`WorkerInstanceProfile${id}`, 'Arn') },
          SecurityGroupIds: securityGroups,
          // A worker that shuts itself down (retirement, MaxBuilds, idle) is gone, not stopped.
          InstanceInitiatedShutdownBehavior: 'terminate',
          MetadataOptions: {
            HttpEndpoint: 'enabled',
            HttpTokens: 'required', // IMDSv2 only; the API default is optional
            // 1 hop: the host reaches IMDS, containers of CI jobs (one more hop) do not, so a
            // job cannot take the worker's credentials.
            HttpPutResponseHopLimit: 1,
            // IMDS over IPv6 (fd00:ec2::254) stays off, so the hop limit is the only way in (the API default, stated).
            HttpProtocolIpv6: 'disabled',
            InstanceMetadataTags: 'enabled', // the worker reads its pool and retire tags from IMDS
          },
          BlockDeviceMappings: [
            {
              DeviceName: pool.worker.rootDeviceName ?? rootDeviceName(pool.worker.ami),
              Ebs: { VolumeSize: pool.worker.rootVolumeSize, VolumeType: pool.worker.rootVolumeType, Encrypted: true, DeleteOnTermination: true },
            },
          ],
          Monitoring: { Enabled: pool.worker.detailedMonitoring }, // amazonec2-monitoring; 1-minute metrics are charged
          TagSpecifications: [
            { ResourceType: 'instance', Tags: tags },
            { ResourceType: 'volume', Tags: tags },
          ],
          UserData: userDataValue(pool.name, userData),
        },
      },
    };
    launchTemplateArns.push(sub(`arn:\${AWS::Partition}:ec2:\${AWS::Region}:\${AWS::AccountId}:launch-template/\${LaunchTemplate${id}}`));
    outputs[`LaunchTemplate${id}`] = { Description: `launch template of pool ${pool.name}`, Value: ref(`LaunchTemplate${id}`) };
  }

  // ---- pre-built worker images --------------------------------------------------------------------
  if (images) {
    const built = imageResources({
      config,
      stage,
      poolIds,
      launchTemplateId: (pool) => `LaunchTemplate${poolIds.get(pool.name)!}`,
      securityGroups: (pool) => (pool.worker.securityGroups.length ? pool.worker.securityGroups : [getAtt('WorkerSecurityGroup', 'GroupId')]),
      rootDeviceName: (pool) => pool.worker.rootDeviceName ?? rootDeviceName(pool.worker.ami),
      secretsDeny: otherSecretsDeny(config, names, undefined),
      guardPolicy: ref('WorkerGuard'),
      alarmTopic: ref('AlarmTopic'),
      functionName: imageBuildsFunctionName(config.deployment, stage),
    });
    Object.assign(resources, built.resources);
    Object.assign(outputs, built.outputs);
  }

  // ---- function roles -------------------------------------------------------------------------
  resources.WebhookRole = lambdaRole(functionNames.webhook, [
    { Sid: 'WebhookSecret', Effect: 'Allow', Action: ['ssm:GetParameter'], Resource: ssmArn(names.webhookSecret) },
    { Sid: 'QueueJobEvents', Effect: 'Allow', Action: ['sqs:SendMessage'], Resource: getAtt('EventQueue', 'Arn') },
  ]);
  // Each grant below is a call the reconcile code makes (checked with grep against lib/aws/*.ts,
  // lib/lambda/*.ts): nothing for "maybe later".
  resources.ReconcileRole = lambdaRole(functionNames.reconcile, [
    {
      // lib/aws/sqs-inbox.ts: ReceiveMessage and DeleteMessageBatch (authorised as sqs:DeleteMessage).
      Sid: 'ConsumeEventsAndReports',
      Effect: 'Allow',
      Action: ['sqs:ReceiveMessage', 'sqs:DeleteMessage'],
      Resource: [getAtt('EventQueue', 'Arn'), getAtt('WorkerReportQueue', 'Arn')],
    },
    // lib/lambda/runtime.ts loadConfig (GetParameter) and lib/lambda/gitlab.ts loadSecret (GetParameter, decrypted).
    { Sid: 'ReadConfigAndApiToken', Effect: 'Allow', Action: ['ssm:GetParameter'], Resource: [ssmArn(names.config), ssmArn(names.gitlabApiToken)] },
    // lib/aws/ssm-state-store.ts: readAll = GetParametersByPath(state, recursive); write = PutParameter(state/<shard>).
    // The state store never deletes (a shard that empties is overwritten), so no Delete grant.
    { Sid: 'ReadState', Effect: 'Allow', Action: ['ssm:GetParametersByPath'], Resource: [ssmArn(names.state), ssmArn(`${names.state}/*`)] },
    { Sid: 'WriteState', Effect: 'Allow', Action: ['ssm:PutParameter'], Resource: ssmArn(`${names.state}/*`) },
    // lib/aws/operator-holds.ts: operators' pause / drain per pool, read (never written) each pass.
    { Sid: 'ReadOperatorHolds', Effect: 'Allow', Action: ['ssm:GetParametersByPath'], Resource: [ssmArn(names.operator), ssmArn(`${names.operator}/*`)] },
    // A launch template whose ImageId is `resolve:ssm:<name>` makes whoever launches from it need
    // ssm:GetParameters on that parameter (EC2 user guide, "Use a Systems Manager parameter instead
    // of an AMI ID"). AWS's public parameters (/aws/service/...) live in no account.
    ...amiParameterStatements(launchConfig, imageParameterName(config, stage, '')),
    {
      // Describe* calls support no resource-level permissions (EC2 API reference). Ec2Fleet calls:
      // discover = DescribeInstances + DescribeInstanceStatus; launch = DescribeLaunchTemplateVersions.
      Sid: 'DiscoverFleet',
      Effect: 'Allow',
      Action: ['ec2:DescribeInstances', 'ec2:DescribeInstanceStatus', 'ec2:DescribeLaunchTemplateVersions'],
      Resource: '*',
    },
    ...launchStatements(launchConfig, stage, launchTemplateArns, needOwnSg),
    {
      Sid: 'TagOnLaunch',
      Effect: 'Allow',
      Action: ['ec2:CreateTags'],
      Resource: [ec2Arn('instance/*'), ec2Arn('volume/*'), ec2Arn('fleet/*'), ec2Arn('network-interface/*'), ec2Arn('spot-instances-request/*')],
      Condition: { StringEquals: { 'ec2:CreateAction': ['CreateFleet', 'RunInstances'] } },
    },
    {
      // Ec2Fleet.requestRetirement tags existing workers with the retire key, and recordWorkerState
      // with what they reported; the deployment, stage and pool tags (which every other grant keys
      // on) can therefore never be rewritten.
      Sid: 'RetireAndRecordOwnWorkers',
      Effect: 'Allow',
      Action: ['ec2:CreateTags'],
      Resource: ec2Arn('instance/*'),
      Condition: { ...deploymentCondition('aws:ResourceTag'), 'ForAllValues:StringEquals': { 'aws:TagKeys': [TAGS.retire, ...REPORT_TAG_KEYS] } },
    },
    {
      Sid: 'TerminateOwnWorkers',
      Effect: 'Allow',
      Action: ['ec2:TerminateInstances'],
      Resource: ec2Arn('instance/*'),
      Condition: deploymentCondition('aws:ResourceTag'),
    },
    {
      Sid: 'PassWorkerRoles',
      Effect: 'Allow',
      Action: ['iam:PassRole'],
      Resource: workerRoleArns,
      Condition: { StringEquals: { 'iam:PassedToService': 'ec2.amazonaws.com' } },
    },
    {
      // CreateFleet with spot needs the EC2 Spot service-linked role; it is created on first use.
      Sid: 'SpotServiceLinkedRole',
      Effect: 'Allow',
      Action: ['iam:CreateServiceLinkedRole'],
      Resource: sub('arn:${AWS::Partition}:iam::${AWS::AccountId}:role/aws-service-role/spot.amazonaws.com/AWSServiceRoleForEC2Spot'),
      Condition: { StringLike: { 'iam:AWSServiceName': 'spot.amazonaws.com' } },
    },
  ]);
  resources.InterruptionRole = lambdaRole(functionNames.interruption, [
    { Sid: 'ReadConfig', Effect: 'Allow', Action: ['ssm:GetParameter'], Resource: ssmArn(names.config) },
    { Sid: 'FindInstance', Effect: 'Allow', Action: ['ec2:DescribeInstances'], Resource: '*' },
    {
      Sid: 'MarkOwnWorkers',
      Effect: 'Allow',
      Action: ['ec2:CreateTags'],
      Resource: ec2Arn('instance/*'),
      // markInterrupted tags `interrupted`, and `retire` on a rebalance recommendation.
      Condition: { ...deploymentCondition('aws:ResourceTag'), 'ForAllValues:StringEquals': { 'aws:TagKeys': [TAGS.interrupted, TAGS.retire] } },
    },
    { Sid: 'NudgeReconcile', Effect: 'Allow', Action: ['sqs:SendMessage'], Resource: getAtt('EventQueue', 'Arn') },
  ]);
  resources.SchedulerRole = {
    Type: 'AWS::IAM::Role',
    Properties: {
      Description: 'EventBridge Scheduler invokes the reconcile function',
      AssumeRolePolicyDocument: {
        Version: '2012-10-17',
        Statement: [{ Effect: 'Allow', Principal: { Service: 'scheduler.amazonaws.com' }, Action: 'sts:AssumeRole', Condition: { StringEquals: { 'aws:SourceAccount': ref('AWS::AccountId') } } }],
      },
      Policies: [
        {
          PolicyName: 'invoke-reconcile',
          PolicyDocument: {
            Version: '2012-10-17',
            Statement: [{ Effect: 'Allow', Action: ['lambda:InvokeFunction'], Resource: sub(`arn:\${AWS::Partition}:lambda:\${AWS::Region}:\${AWS::AccountId}:function:${functionNames.reconcile}`) }],
          },
        },
      ],
    },
  };

  // ---- function environments and events ---------------------------------------------------------
  const dev = opts.dev;
  const common = { STAGE: stage, DEPLOYMENT: config.deployment, ...(dev ? { AWS_ENDPOINT_URL: dev.endpoint } : {}) };
  const configSource = dev ? { CONFIG_FILE: dev.configFile } : { CONFIG_PARAMETER: names.config, CONFIG_HASH: configHash };
  const queueUrl = dev ? dev.queueUrl : ref('EventQueue');
  const reports = dev
    ? dev.reportQueueUrl
      ? { REPORT_QUEUE_URL: dev.reportQueueUrl, WORKER_ROLE_IDS: (dev.workerRoleIds ?? []).join(',') }
      : {}
    : { REPORT_QUEUE_URL: ref('WorkerReportQueue'), WORKER_ROLE_IDS: { 'Fn::Join': [',', workerRoleIds] } };
  const env = {
    webhook: { ...common, QUEUE_URL: queueUrl, WEBHOOK_SECRET_PARAMETER: names.webhookSecret },
    reconcile: {
      ...common,
      ...configSource,
      QUEUE_URL: queueUrl,
      ...reports,
      LAUNCH_TEMPLATES: JSON.stringify(launchTemplates),
      // Tagged on the workers of pools on the deployment's bucket (lib/aws/ec2-fleet.ts), which read
      // it at boot. Dev: moto runs no worker and no bucket is created; a stand-in name, so that the
      // controller tags as it does in AWS (without one it logs an error per pool).
      ...(sharedCache ? { CACHE_BUCKET: dev ? `gsa-${config.deployment}-${stage}-dev-cache` : ref('CacheBucket') } : {}),
    },
    interruption: { ...common, ...configSource, QUEUE_URL: queueUrl },
  };

  const schedules = boundarySchedules(config);
  const schedulerRole = getAtt('SchedulerRole', 'Arn');
  // No SQS event source: the function reads the job-event and report queues itself, passes back to
  // back for most of each minute (lib/controller/loop.ts; docs/architecture.md, "Event throughput").
  const reconcileEvents: Cfn[] = dev
    ? [] // scripts/dev.mjs invokes the minute tick itself (serverless-offline runs no Scheduler)
    : [
        {
          schedule: {
            rate: [scheduleRate()],
            method: 'scheduler',
            roleArn: schedulerRole,
            description: 'every minute: runs passes back to back, reading job events and worker reports, for most of the minute',
            input: { trigger: 'schedule', reason: 'tick' },
          },
        },
        ...schedules.map((s) => ({
          schedule: {
            rate: [s.expression],
            method: 'scheduler',
            timezone: s.timezone,
            roleArn: schedulerRole,
            description: `autoscaling period boundary of ${s.pools.join(', ')} at ${s.times.join(' ')} ${s.timezone}`.slice(0, 512),
            input: { trigger: 'schedule', reason: 'period-boundary' },
          },
        })),
      ];
  const interruptionEvents: Cfn[] = dev
    ? []
    : [
        { eventBridge: { pattern: { source: ['aws.ec2'], 'detail-type': ['EC2 Spot Instance Interruption Warning', 'EC2 Instance Rebalance Recommendation'] } } },
        {
          // The end states only: each event costs the function one DescribeInstances (ownership; the
          // events carry no tags) in EC2's account-wide read bucket, and every instance of the account
          // matches. shutting-down/stopping always precede terminated/stopped by seconds, and a worker
          // that ends itself reports "stopped" to the controller first, so the earlier states would
          // double the lookups for no earlier replacement (docs/controller.md, "Interruptions").
          eventBridge: {
            pattern: { source: ['aws.ec2'], 'detail-type': ['EC2 Instance State-change Notification'], detail: { state: ['terminated', 'stopped'] } },
          },
        },
      ];

  outputs.WebhookUrl = {
    Description: 'Paste into GitLab: Admin area (or group/project) > Webhooks > URL, with "Job events" and the secret token',
    Value: { 'Fn::Join': ['', ['https://', ref('HttpApi'), '.execute-api.', ref('AWS::Region'), '.', ref('AWS::URLSuffix'), '/webhook']] },
  };
  resources.Dashboard = {
    Type: 'AWS::CloudWatch::Dashboard',
    Properties: { DashboardName: dashboardName(config.deployment, stage), DashboardBody: sub(dashboardBody(config, stage, functionNames)) },
  };
  outputs.DashboardUrl = {
    Description: 'CloudWatch dashboard: demand, workers by state per pool, launches and errors, queues, passes',
    Value: sub(`https://\${AWS::Region}.console.aws.amazon.com/cloudwatch/home?region=\${AWS::Region}#dashboards:name=${dashboardName(config.deployment, stage)}`),
  };
  if (config.workerLogRetentionDays > 0)
    outputs.WorkerLogGroups = { Description: "CloudWatch Logs groups of the pools' workers (one stream per worker)", Value: config.pools.map((p) => workerLogGroupName(config.deployment, stage, p.name)).join(' ') };
  outputs.EventQueueUrl = { Description: 'SQS queue of job events', Value: ref('EventQueue') };
  outputs.WorkerReportQueueUrl = { Description: 'SQS queue workers report their state to', Value: ref('WorkerReportQueue') };
  outputs.AlarmTopicArn = { Description: 'Subscribe to receive alarms (dead-letter queue, reconcile errors)', Value: ref('AlarmTopic') };
  outputs.SecretParameters = { Description: 'Create these as SecureString (docs/deployment.md, step 2)', Value: secretParameters.join(' ') };

  return {
    deployment: config.deployment,
    stackName,
    region,
    functionNames,
    env,
    reconcileEvents,
    interruptionEvents,
    resources,
    outputs,
    schedules,
    secretParameters,
    webhookReservedConcurrency: SIZING.webhookThrottle.reservedConcurrency,
    extensions: {
      // The framework's HTTP API stage ($default): every route throttled, so a flood of requests
      // (authenticated or not) is answered 429 by API Gateway before it costs Lambda time.
      HttpApiStage: {
        Properties: {
          DefaultRouteSettings: { DetailedMetricsEnabled: false, ThrottlingRateLimit: SIZING.webhookThrottle.rateLimit, ThrottlingBurstLimit: SIZING.webhookThrottle.burstLimit },
        },
      },
    },
  };
}
