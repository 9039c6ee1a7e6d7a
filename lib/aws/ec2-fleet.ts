/**
 * The Fleet port over the real EC2 API (@aws-sdk/client-ec2).
 *
 *  - launch:    one CreateFleet `Type: instant` per pool and pass for the whole shortfall, spot with
 *               `price-capacity-optimized` over every instance type x subnet not cooling down, then
 *               on-demand for what spot could not fill when the pool allows it. The caller's ClientToken
 *               (deterministic per state generation, reconcile.ts) makes a retried call and a
 *               re-run of a crashed pass idempotent; `IdempotentParameterMismatch` comes back as
 *               an `other` error with that code, and never falls back to on-demand. Tags
 *               (deployment, stage, pool, pass = launch id, launched-at) let the next pass adopt
 *               whatever a crashed pass launched.
 *  - discover:  DescribeInstances filtered by the deployment and stage tags, pages of 1,000, plus
 *               DescribeInstanceStatus filtered to impaired statuses (paginated, reused 60 s);
 *               the tags the controller recorded from workers' reports mapped to WorkerView
 *               states (docs/controller.md, "Tag protocol").
 *  - retire:    CreateTags `<prefix>:retire`, up to 500 instances a call; the worker leaves after its job.
 *  - terminate: TerminateInstances in batches; the planner's fence decides when (planner.ts).
 *  - recordWorkerState: what workers reported, one CreateTags per tag set for up to 500 instances.
 * Every call is aborted when the pass's time for EC2 calls runs out (`timeLeftMs`).
 * The launch template of each pool is created by the deployment (CloudFormation) or by
 * ensureLaunchTemplate below; launch refuses a template that lacks IMDSv2, shutdown = terminate,
 * encrypted volumes or an instance profile.
 *
 * Moto gaps worked around (facts.md): the `instance-lifecycle` filter is not implemented (the
 * market is read from InstanceLifecycle instead of filtering on it); DescribeInstanceStatus ignores
 * status filters (the statuses it returns are checked here too).
 */
import { encodeUserData } from '../worker/encode';
import {
  CreateFleetCommand,
  CreateLaunchTemplateCommand,
  CreateLaunchTemplateVersionCommand,
  CreateTagsCommand,
  DescribeImagesCommand,
  DescribeInstancesCommand,
  DescribeInstanceStatusCommand,
  DescribeLaunchTemplateVersionsCommand,
  DescribeLaunchTemplatesCommand,
  ModifyLaunchTemplateCommand,
  TerminateInstancesCommand,
  type CreateFleetCommandOutput,
  type EC2Client,
  type FleetLaunchTemplateOverridesRequest,
  type Instance,
  type RequestLaunchTemplateData,
  type ResponseLaunchTemplateData,
  type Tag,
} from '@aws-sdk/client-ec2';
import { DEFAULTS, usesDeploymentCache, type Config, type Pool } from '../config';
import { deriveState, type Retirement, type Termination } from '../model';
import type { CapacityPool, Fleet, FleetWorker, InstanceMarker, LaunchError, LaunchErrorClass, LaunchRequest, LaunchResult, Logger, MarkOutcome } from '../controller/ports';
import { formatLaunchedFor, formatLimits, launchTemplateName, parseInstant, parseInterrupted, parseLaunchedFor, parseLimits, TAGS, WORKER_STATES, type WorkerReportedState } from '../controller/tags';
import type { WorkerStateWrite } from '../controller/reports';
import { LAUNCH_STATEMENTS } from '../deploy/names';
import { errorCode, isThrottling, realRetryEnv, THROTTLE_POLICY, withRetry, type RetryEnv, type RetryPolicy, type RetryStats } from './retry';

// ---- error classes (facts.md: CreateFleet errors) ----------------------------------------------

const CAPACITY = new Set([
  'InsufficientInstanceCapacity',
  'InsufficientCapacity',
  'InsufficientHostCapacity',
  'InsufficientReservedInstanceCapacity',
  'UnfulfillableCapacity',
  'MaxSpotInstanceCountExceeded',
  'SpotMaxPriceTooLow',
  'InsufficientFreeAddressesInSubnet',
  'capacity-not-available',
  'price-too-low',
  // An instance type not offered in one zone: a property of that override, not of the request.
  'Unsupported',
]);
const QUOTA = new Set(['VcpuLimitExceeded', 'InstanceLimitExceeded', 'MaxFleetCountExceeded', 'MaxSpotFleetRequestCountExceeded', 'ResourceLimitExceeded', 'VolumeLimitExceeded']);
const INVALID_PREFIXES = ['Invalid', 'Missing', 'Unauthorized', 'AuthFailure', 'OptInRequired', 'Blocked', 'UnsafeLaunchTemplate', 'DryRunOperation', 'IncorrectState'];

export function classifyLaunchError(code: string): LaunchErrorClass {
  if (CAPACITY.has(code)) return 'capacity';
  if (QUOTA.has(code)) return 'quota';
  if (isThrottling({ name: code })) return 'throttling';
  if (INVALID_PREFIXES.some((p) => code.startsWith(p))) return 'invalid';
  return 'other';
}

/**
 * A launch that IAM refused (UnauthorizedOperation, from CreateFleet itself or per override in its
 * Errors) explained: which of the reconcile role's statements decide, and where the fix is. First,
 * because the pool's pause keeps only the message's first 300 characters; AWS's own message (with
 * the encoded authorization message to decode) follows in full.
 */
export function explainRefusedLaunch(code: string, message: string): string {
  if (!/^(UnauthorizedOperation|AccessDenied)/.test(code)) return message;
  return (
    `IAM refused the launch (first suspect: the reconcile role's statement ${LAUNCH_STATEMENTS.runInstances} and its ec2:LaunchTemplate condition); ` +
    `decode the AWS message with aws sts decode-authorization-message; fix: docs/deployment.md "A refused launch". AWS: ${message}`
  );
}

// ---- launch template requirements ------------------------------------------------------------

/** What a worker's launch template must set; each problem names the field and the value wanted. */
export function launchTemplateProblems(data: ResponseLaunchTemplateData | undefined): string[] {
  const problems: string[] = [];
  if (!data) return ['the template version has no LaunchTemplateData'];
  if (data.MetadataOptions?.HttpTokens !== 'required')
    problems.push(`MetadataOptions.HttpTokens is ${JSON.stringify(data.MetadataOptions?.HttpTokens ?? '(unset: "optional")')}, must be "required" (IMDSv2)`);
  if (data.MetadataOptions?.InstanceMetadataTags !== 'enabled')
    problems.push('MetadataOptions.InstanceMetadataTags must be "enabled": workers read their retirement request from instance-metadata tags');
  if (data.InstanceInitiatedShutdownBehavior !== 'terminate')
    problems.push(`InstanceInitiatedShutdownBehavior is ${JSON.stringify(data.InstanceInitiatedShutdownBehavior ?? '(unset: "stop")')}, must be "terminate" so a worker that shuts down is gone`);
  const ebs = (data.BlockDeviceMappings ?? []).filter((m) => m.Ebs);
  if (ebs.length === 0) problems.push('BlockDeviceMappings sets no EBS root volume; it must set one with Ebs.Encrypted: true');
  for (const m of ebs) if (m.Ebs?.Encrypted !== true) problems.push(`BlockDeviceMappings ${m.DeviceName ?? '?'}: Ebs.Encrypted must be true`);
  if (!data.IamInstanceProfile?.Arn && !data.IamInstanceProfile?.Name) problems.push('IamInstanceProfile is not set; workers read their runner token from SSM with it');
  return problems;
}

// ---- instances -> workers ----------------------------------------------------------------------

const tagMap = (tags: Tag[] | undefined) => new Map((tags ?? []).map((t) => [t.Key ?? '', t.Value ?? '']));

/** The controller's view of one instance (docs/controller.md, "How the controller reads it"). */
export function workerFromInstance(i: Instance, impaired: ReadonlySet<string>): FleetWorker {
  const tags = tagMap(i.Tags);
  const ec2State = i.State?.Name ?? 'pending';
  const reported = tags.get(TAGS.state);
  const retireAt = parseInstant(tags.get(TAGS.retire));
  const interrupted = parseInterrupted(tags.get(TAGS.interrupted));
  const launchedAt = parseInstant(tags.get(TAGS.launchedAt)) ?? i.LaunchTime?.getTime() ?? 0;
  const builds = Number.parseInt(tags.get(TAGS.builds) ?? '0', 10);

  const w: FleetWorker = {
    id: i.InstanceId ?? '',
    pool: tags.get(TAGS.pool) ?? '',
    state: 'booting',
    launchedAt,
    builds: Number.isFinite(builds) && builds >= 0 ? builds : 0,
    instanceType: i.InstanceType,
    zone: i.Placement?.AvailabilityZone,
    market: i.InstanceLifecycle === 'spot' ? 'spot' : 'on-demand',
    subnet: i.SubnetId,
  };
  if (ec2State === 'pending' || ec2State === 'shutting-down' || ec2State === 'stopping' || ec2State === 'stopped') w.instanceState = ec2State;
  else w.instanceState = 'running';
  const ready = parseInstant(tags.get(TAGS.ready));
  if (ready !== undefined) w.readyAt = ready;
  if ((WORKER_STATES as readonly string[]).includes(reported ?? '')) w.reported = reported as WorkerReportedState;
  if (w.reported === 'idle') w.idleSince = parseInstant(tags.get(TAGS.idleSince)) ?? ready;
  if (w.reported === 'stopped') w.stoppedAt = parseInstant(tags.get(TAGS.stoppedAt));
  if (retireAt !== undefined) w.retireRequestedAt = retireAt;
  const pass = tags.get(TAGS.pass);
  if (pass) w.passId = pass;
  // Instances launched before this tag existed have none: they are never retired for a template change.
  const version = tags.get(TAGS.templateVersion);
  if (version && /^\d+$/.test(version)) w.templateVersion = version;
  const limits = parseLimits(tags.get(TAGS.limits));
  if (limits) w.limits = limits;
  const launchedFor = parseLaunchedFor(tags.get(TAGS.launchedFor));
  if (launchedFor && pass) w.launchedFor = { launch: pass, ...launchedFor };
  if (ec2State === 'stopping' || ec2State === 'stopped') w.problem = 'stopped';
  else if (interrupted?.kind === 'interruption') w.problem = 'interrupted';
  else if (impaired.has(w.id)) w.problem = 'impaired';
  if (interrupted) {
    w.interruptedAt = interrupted.at;
    w.interruptionKind = interrupted.kind;
  }
  w.state = deriveState(w);
  return w;
}

// ---- the adapter -------------------------------------------------------------------------------

export interface Ec2FleetOptions {
  ec2: EC2Client;
  config: Config;
  stage: string;
  log?: Logger;
  now?: () => number;
  retryEnv?: RetryEnv;
  retryPolicy?: RetryPolicy;
  /** How long a checked launch template version is trusted. Default 60 s. */
  templateCacheMs?: number;
  /**
   * How long the set of impaired instances (DescribeInstanceStatus) is trusted. Default 60 s: a
   * failed status check is not urgent (the worker is asked to retire), and the call need not cost
   * every pass of a loop that runs passes back to back.
   */
  statusCacheMs?: number;
  /** Counts calls and retries (tests, bench). */
  stats?: RetryStats;
  /**
   * The deployment's cache bucket (the stack's CACHE_BUCKET): tagged at launch on workers of pools
   * that use it (TAGS.cacheBucket), which put it into their runner config at boot. Without it such a
   * pool's workers shut down at boot (logged as an error, once per pool).
   */
  cacheBucket?: string;
}

const LIVE_STATES = ['pending', 'running', 'stopping', 'stopped', 'shutting-down'];
const BATCH = 100;
/** CreateTags takes up to 1000 resources a call ("we recommend smaller batches", EC2 API reference). */
const TAG_BATCH = 500;
// CreateFleet accepts a bounded number of overrides per request; more than this is a config smell.
const MAX_OVERRIDES = 300;

function chunks<T>(xs: readonly T[], n: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < xs.length; i += n) out.push(xs.slice(i, i + n));
  return out;
}

export class Ec2Fleet implements Fleet, InstanceMarker {
  private readonly ec2: EC2Client;
  private readonly now: () => number;
  private readonly templates = new Map<string, { at: number; version?: string; problem?: LaunchError }>();
  private impaired?: { at: number; ids: Set<string> };
  private readonly warnedNoBucket = new Set<string>();
  /**
   * Wall-clock ms left for EC2 calls (the reconcile pass sets it from the Lambda's remaining
   * time): a call still in flight when it runs out is aborted, so a slow EC2 cannot take the
   * pass past its save.
   */
  timeLeftMs?: () => number;

  constructor(private readonly opts: Ec2FleetOptions) {
    this.ec2 = opts.ec2;
    this.now = opts.now ?? Date.now;
  }

  private call<T>(fn: (opts: { abortSignal?: AbortSignal }) => Promise<T>): Promise<T> {
    return withRetry(
      () => {
        const left = this.timeLeftMs?.();
        if (left !== undefined && left <= 0) return Promise.reject(Object.assign(new Error('no time left in this pass for EC2 calls'), { name: 'PassOutOfTime' }));
        return fn(left === undefined || left === Infinity ? {} : { abortSignal: AbortSignal.timeout(Math.max(1, Math.round(left))) });
      },
      { policy: this.opts.retryPolicy ?? THROTTLE_POLICY, env: this.opts.retryEnv ?? realRetryEnv, stats: this.opts.stats },
    );
  }

  // ---- discover ----

  async discover(): Promise<FleetWorker[]> {
    const instances: Instance[] = [];
    let token: string | undefined;
    do {
      const page = await this.call((o) =>
        this.ec2.send(
          new DescribeInstancesCommand({
            Filters: [
              { Name: `tag:${TAGS.deployment}`, Values: [this.opts.config.deployment] },
              { Name: `tag:${TAGS.stage}`, Values: [this.opts.stage] },
              { Name: 'instance-state-name', Values: LIVE_STATES },
            ],
            MaxResults: 1000,
            NextToken: token,
          }),
          o,
        ),
      );
      for (const r of page.Reservations ?? []) for (const i of r.Instances ?? []) if (i.InstanceId) instances.push(i);
      token = page.NextToken;
    } while (token);
    const impaired = await this.impairedInstances(instances.length > 0);
    return instances.map((i) => workerFromInstance(i, impaired));
  }

  /**
   * Instances failing a status check: DescribeInstanceStatus filtered to impaired instance or
   * system status (two filtered, paginated calls, usually one page each, whatever the fleet size;
   * the result may include other instances of the account, which nothing here uses), cached for
   * statusCacheMs. The statuses are checked here too: moto ignores the status filters (facts.md).
   */
  private async impairedInstances(any: boolean): Promise<ReadonlySet<string>> {
    if (!any) return new Set();
    const cached = this.impaired;
    if (cached && this.now() - cached.at < (this.opts.statusCacheMs ?? 60_000)) return cached.ids;
    const ids = new Set<string>();
    for (const name of ['instance-status.status', 'system-status.status']) {
      let token: string | undefined;
      do {
        const page = await this.call((o) => this.ec2.send(new DescribeInstanceStatusCommand({ Filters: [{ Name: name, Values: ['impaired'] }], MaxResults: 1000, NextToken: token }), o));
        for (const st of page.InstanceStatuses ?? [])
          if (st.InstanceId && (st.InstanceStatus?.Status === 'impaired' || st.SystemStatus?.Status === 'impaired')) ids.add(st.InstanceId);
        token = page.NextToken;
      } while (token);
    }
    this.impaired = { at: this.now(), ids };
    return ids;
  }

  // ---- launch ----

  /**
   * The version `launch` uses now: `$Latest`, resolved to its number (and checked) by the same
   * cached DescribeLaunchTemplateVersions call launch makes, so this costs at most one call per
   * pool per templateCacheMs. A refused or missing template gives undefined: idle workers are not
   * retired for a template that cannot launch their replacements.
   */
  async currentTemplateVersion(pool: Pool): Promise<string | undefined> {
    const tpl = await this.checkedTemplate(pool);
    return tpl.problem ? undefined : tpl.version;
  }

  /** The template version to launch from, checked against the worker requirements (cached briefly). */
  private async checkedTemplate(pool: Pool): Promise<{ name: string; version?: string; problem?: LaunchError }> {
    const name = launchTemplateName(this.opts.config.deployment, this.opts.stage, pool.name);
    const cached = this.templates.get(name);
    if (cached && this.now() - cached.at < (this.opts.templateCacheMs ?? 60_000)) return { name, ...cached };
    let entry: { at: number; version?: string; problem?: LaunchError };
    try {
      const out = await this.call((o) => this.ec2.send(new DescribeLaunchTemplateVersionsCommand({ LaunchTemplateName: name, Versions: ['$Latest'] }), o));
      const v = out.LaunchTemplateVersions?.[0];
      const problems = v ? launchTemplateProblems(v.LaunchTemplateData) : [`launch template ${name} has no versions`];
      entry = problems.length
        ? {
            at: this.now(),
            problem: { class: 'invalid', code: 'UnsafeLaunchTemplate', message: `launch template ${name} version ${v?.VersionNumber ?? '?'} is refused: ${problems.join('; ')}` },
          }
        : { at: this.now(), version: String(v!.VersionNumber) };
    } catch (e) {
      const code = errorCode(e);
      const cls = classifyLaunchError(code);
      entry = {
        at: this.now(),
        problem: {
          class: code.includes('NotFound') ? 'invalid' : cls,
          code,
          message: code.includes('NotFound') ? `launch template ${name} does not exist (the deployment creates it: deploy the stack, or run ensureLaunchTemplate)` : (e as Error).message,
        },
      };
      if (entry.problem!.class !== 'invalid') return { name, ...entry }; // transient: not cached
    }
    this.templates.set(name, entry);
    return { name, ...entry };
  }

  async launch(req: LaunchRequest): Promise<LaunchResult> {
    const { pool, count } = req;
    if (!Number.isInteger(count) || count <= 0) return { launched: [], errors: [] };
    const tpl = await this.checkedTemplate(pool);
    if (tpl.problem) return { launched: [], errors: [tpl.problem] };
    if (usesDeploymentCache(pool) && !this.opts.cacheBucket && !this.warnedNoBucket.has(pool.name)) {
      // The stack always sets it when a pool uses the bucket; only a hand-made environment (or moto) lacks it.
      this.warnedNoBucket.add(pool.name);
      this.opts.log?.error(`pool ${pool.name} uses the deployment's cache bucket, but the controller does not know its name (environment variable CACHE_BUCKET, set by the stack): its workers launch without the ${TAGS.cacheBucket} tag and shut down at boot`);
    }

    const launched: FleetWorker[] = [];
    const errors: LaunchError[] = [];
    if (pool.worker.market === 'spot') {
      const overrides = this.overrides(pool, req.avoid, 'spot');
      if (overrides.length) await this.createFleet(req, tpl.name, tpl.version!, 'spot', overrides, count, req.clientToken, launched, errors);
      else errors.push({ class: 'capacity', code: 'AllCapacityPoolsCoolingDown', message: 'every instance type / subnet of the pool is cooling down after capacity errors', market: 'spot' });
    }
    const remaining = count - launched.length;
    // Fall back only when spot lacked capacity (or its spot-only quota): never after an invalid
    // request or throttling, which on-demand would hit just the same.
    const fallback =
      pool.worker.market === 'on-demand' || (pool.worker.onDemandFallback && errors.every((e) => e.class === 'capacity' || e.class === 'quota'));
    if (remaining > 0 && fallback) {
      const overrides = this.overrides(pool, req.avoid, 'on-demand');
      const token = pool.worker.market === 'spot' ? `${req.clientToken.slice(0, 61)}-od` : req.clientToken;
      if (overrides.length) await this.createFleet(req, tpl.name, tpl.version!, 'on-demand', overrides, remaining, token, launched, errors);
      else errors.push({ class: 'capacity', code: 'AllCapacityPoolsCoolingDown', message: 'every instance type / subnet of the pool is cooling down for on-demand too', market: 'on-demand' });
    }
    return { launched, errors };
  }

  private overrides(pool: Pool, avoid: readonly CapacityPool[], market: 'spot' | 'on-demand'): FleetLaunchTemplateOverridesRequest[] {
    const skip = new Set(avoid.filter((a) => a.market === undefined || a.market === market).map((a) => `${a.instanceType}|${a.subnet}`));
    const out: FleetLaunchTemplateOverridesRequest[] = [];
    for (const instanceType of pool.worker.instanceTypes)
      for (const subnet of pool.worker.subnets) {
        if (skip.has(`${instanceType}|${subnet}`)) continue;
        const o: FleetLaunchTemplateOverridesRequest = { InstanceType: instanceType as FleetLaunchTemplateOverridesRequest['InstanceType'], SubnetId: subnet };
        if (market === 'spot' && pool.worker.maxPrice !== undefined) o.MaxPrice = String(pool.worker.maxPrice);
        out.push(o);
      }
    if (out.length > MAX_OVERRIDES) this.opts.log?.warn(`pool ${pool.name}: ${out.length} instance type x subnet combinations; only the first ${MAX_OVERRIDES} are offered to CreateFleet`);
    return out.slice(0, MAX_OVERRIDES);
  }

  private instanceTags(pool: Pool, passId: string, at: number, version: string, launchedFor?: string): Tag[] {
    const ours: Record<string, string> = {
      [TAGS.deployment]: this.opts.config.deployment,
      [TAGS.stage]: this.opts.stage,
      [TAGS.pool]: pool.name,
      [TAGS.pass]: passId,
      [TAGS.launchedAt]: new Date(at).toISOString(),
      [TAGS.templateVersion]: version,
      // What its user data runs by (lib/worker/userdata.ts: 0 means the default); the worker reads it back at boot.
      [TAGS.limits]: formatLimits({
        bootTimeout: pool.worker.bootTimeout || DEFAULTS.bootTimeout,
        jobTimeout: pool.jobTimeout || DEFAULTS.jobTimeout,
        maxLifetime: pool.worker.maxLifetime,
      }),
      // The generated bucket name is not in the user data (it must stay gzip for EC2's 16 KB): the worker reads it here.
      ...(usesDeploymentCache(pool) && this.opts.cacheBucket ? { [TAGS.cacheBucket]: this.opts.cacheBucket } : {}),
      ...(launchedFor ? { [TAGS.launchedFor]: launchedFor } : {}),
    };
    const user = Object.entries(pool.worker.tags).filter(([k]) => !k.startsWith(`${TAGS.deployment.split(':')[0]}:`) && k !== 'Name');
    return [
      ...user.map(([Key, Value]) => ({ Key, Value })),
      { Key: 'Name', Value: `${this.opts.config.deployment}-${this.opts.stage}-${pool.name}` },
      ...Object.entries(ours).map(([Key, Value]) => ({ Key, Value })),
    ];
  }

  private async createFleet(
    req: LaunchRequest,
    templateName: string,
    version: string,
    market: 'spot' | 'on-demand',
    overrides: FleetLaunchTemplateOverridesRequest[],
    count: number,
    clientToken: string,
    launched: FleetWorker[],
    errors: LaunchError[],
  ): Promise<void> {
    const at = this.now();
    let out: CreateFleetCommandOutput;
    try {
      out = await this.call((o) =>
        this.ec2.send(
          new CreateFleetCommand({
            Type: 'instant',
            ClientToken: clientToken,
            LaunchTemplateConfigs: [{ LaunchTemplateSpecification: { LaunchTemplateName: templateName, Version: version }, Overrides: overrides }],
            TargetCapacitySpecification: {
              TotalTargetCapacity: count,
              DefaultTargetCapacityType: market,
              ...(market === 'spot' ? { SpotTargetCapacity: count } : { OnDemandTargetCapacity: count }),
            },
            ...(market === 'spot' ? { SpotOptions: { AllocationStrategy: 'price-capacity-optimized' as const } } : { OnDemandOptions: { AllocationStrategy: 'lowest-price' as const } }),
            TagSpecifications: [{ ResourceType: 'instance', Tags: this.instanceTags(req.pool, req.passId, at, version, req.forDemand !== undefined ? formatLaunchedFor(req.forDemand, req.count) : undefined) }],
          }),
          o,
        ),
      );
    } catch (e) {
      const code = errorCode(e);
      errors.push({ class: classifyLaunchError(code), code, message: explainRefusedLaunch(code, (e as Error).message), market });
      return;
    }
    for (const group of out.Instances ?? []) {
      const o = group.LaunchTemplateAndOverrides?.Overrides;
      const lifecycle = group.Lifecycle === 'spot' ? 'spot' : group.Lifecycle === 'on-demand' ? 'on-demand' : market;
      for (const id of group.InstanceIds ?? [])
        launched.push({ id, pool: req.pool.name, state: 'booting', launchedAt: at, builds: 0, instanceType: group.InstanceType ?? o?.InstanceType, market: lifecycle, subnet: o?.SubnetId, passId: req.passId, templateVersion: version });
    }
    for (const e of out.Errors ?? []) {
      const o = e.LaunchTemplateAndOverrides?.Overrides;
      const code = e.ErrorCode ?? 'Unknown';
      errors.push({
        class: classifyLaunchError(code),
        code,
        message: explainRefusedLaunch(code, e.ErrorMessage ?? code),
        instanceType: o?.InstanceType,
        subnet: o?.SubnetId,
        market: e.Lifecycle === 'spot' ? 'spot' : e.Lifecycle === 'on-demand' ? 'on-demand' : market,
      });
    }
  }

  // ---- retire / terminate ----

  async requestRetirement(retirements: readonly Retirement[]): Promise<void> {
    const value = new Date(this.now()).toISOString();
    // One tag set for all: batches as large as the worker-state writes (a drain asks every worker at once).
    await this.perInstanceBatches(
      retirements.map((r) => r.id),
      TAG_BATCH,
      (ids, o) => this.ec2.send(new CreateTagsCommand({ Resources: ids, Tags: [{ Key: TAGS.retire, Value: value }] }), o),
    );
  }

  async terminate(terminations: readonly Termination[]): Promise<void> {
    await this.perInstanceBatches(
      terminations.map((t) => t.id),
      BATCH,
      (ids, o) => this.ec2.send(new TerminateInstancesCommand({ InstanceIds: ids }), o),
    );
  }

  /**
   * One CreateTags per tag set and batch of instances (lib/controller/reports.ts groups the
   * reports so that many workers share a set). A failed write reports false: its reports are
   * delivered again and the write retried by a later pass.
   */
  async recordWorkerState(writes: readonly WorkerStateWrite[]): Promise<boolean[]> {
    const out: boolean[] = [];
    for (const w of writes) {
      try {
        await this.perInstanceBatches(w.ids, TAG_BATCH, (ids, o) =>
          this.ec2.send(new CreateTagsCommand({ Resources: ids, Tags: Object.entries(w.tags).map(([Key, Value]) => ({ Key, Value })) }), o),
        );
        out.push(true);
      } catch (e) {
        this.opts.log?.warn('recording worker reports on instances failed; the reports are delivered again', { instances: w.ids.length, error: (e as Error).message });
        out.push(false);
      }
    }
    return out;
  }

  /**
   * Batches of `size` ids. One unknown id fails a whole EC2 batch (InvalidInstanceID.NotFound), and
   * EC2's message names the ids ("The instance IDs 'i-…, i-…' do not exist"): the batch is sent
   * again without them (a few rounds at most). Only when the message names none of the batch's ids
   * is it retried id by id (up to `size` calls into the account-wide bucket). Gone instances are skipped.
   */
  private async perInstanceBatches(ids: readonly string[], size: number, send: (ids: string[], o: { abortSignal?: AbortSignal }) => Promise<unknown>): Promise<void> {
    for (let batch of chunks([...new Set(ids)], size)) {
      for (let round = 0; ; round++) {
        try {
          await this.call((o) => send(batch, o));
          break;
        } catch (e) {
          if (!errorCode(e).startsWith('InvalidInstanceID')) throw e;
          const named = new Set((e as Error).message?.match(/\bi-[0-9a-f]{8,17}\b/g) ?? []);
          const rest = batch.filter((id) => !named.has(id));
          if (rest.length === batch.length || round >= 3) {
            await this.oneByOne(batch, send);
            break;
          }
          for (const id of batch) if (named.has(id)) this.opts.log?.info('instance already gone', { id });
          if (rest.length === 0) break;
          batch = rest;
        }
      }
    }
  }

  private async oneByOne(batch: readonly string[], send: (ids: string[], o: { abortSignal?: AbortSignal }) => Promise<unknown>): Promise<void> {
    for (const id of batch) {
      try {
        await this.call((o) => send([id], o));
      } catch (e) {
        if (!errorCode(e).startsWith('InvalidInstanceID')) throw e;
        this.opts.log?.info('instance already gone', { id });
      }
    }
  }

  // ---- interruption handler ----

  async markInstance(instanceId: string, tags: Readonly<Record<string, string>>): Promise<MarkOutcome> {
    let instance: Instance | undefined;
    try {
      const out = await this.call((o) => this.ec2.send(new DescribeInstancesCommand({ InstanceIds: [instanceId] }), o));
      instance = out.Reservations?.[0]?.Instances?.[0];
    } catch (e) {
      if (errorCode(e).startsWith('InvalidInstanceID')) return 'gone';
      throw e;
    }
    if (!instance || ['terminated', 'shutting-down'].includes(instance.State?.Name ?? '')) return 'gone';
    const t = tagMap(instance.Tags);
    if (t.get(TAGS.deployment) !== this.opts.config.deployment || t.get(TAGS.stage) !== this.opts.stage) return 'not-ours';
    try {
      await this.call((o) => this.ec2.send(new CreateTagsCommand({ Resources: [instanceId], Tags: Object.entries(tags).map(([Key, Value]) => ({ Key, Value })) }), o));
    } catch (e) {
      if (errorCode(e).startsWith('InvalidInstanceID')) return 'gone';
      throw e;
    }
    return 'tagged';
  }
}

// ---- launch templates (local dev, tests; in AWS the deployment's CloudFormation creates them) -----

export interface LaunchTemplateInput {
  config: Config;
  stage: string;
  pool: Pool;
  /** The worker's user data, the plain script (lib/worker/userdata.ts renders it); gzip-compressed here (lib/worker/encode.ts). */
  userData: string;
  /** Instance profile name or ARN of the workers. */
  instanceProfile: string;
  /** Root device of the AMI; read from DescribeImages when the pool names an AMI id, else this (default /dev/xvda, Amazon Linux). */
  rootDeviceName?: string;
}

export function launchTemplateData(input: LaunchTemplateInput, rootDeviceName: string): RequestLaunchTemplateData {
  const { config, stage, pool } = input;
  const w = pool.worker;
  // gzip, then base64; throws when the compressed bytes exceed EC2's 16 KB (cloud-init decompresses).
  const userData = encodeUserData(input.userData, `user data of pool "${pool.name}"`);
  const profile = input.instanceProfile.startsWith('arn:') ? { Arn: input.instanceProfile } : { Name: input.instanceProfile };
  const volumeTags = [
    { Key: TAGS.deployment, Value: config.deployment },
    { Key: TAGS.stage, Value: stage },
    { Key: TAGS.pool, Value: pool.name },
  ];
  return {
    ImageId: w.ami,
    IamInstanceProfile: profile,
    InstanceInitiatedShutdownBehavior: 'terminate',
    // Hop limit 1: job containers (one hop further, on the docker bridge) cannot reach IMDS and so
    // cannot borrow the instance role that reads the runner token.
    MetadataOptions: { HttpTokens: 'required', HttpEndpoint: 'enabled', HttpPutResponseHopLimit: 1, InstanceMetadataTags: 'enabled' },
    BlockDeviceMappings: [{ DeviceName: rootDeviceName, Ebs: { Encrypted: true, DeleteOnTermination: true, VolumeSize: w.rootVolumeSize, VolumeType: w.rootVolumeType } }],
    ...(w.securityGroups.length ? { SecurityGroupIds: w.securityGroups } : {}),
    UserData: userData,
    TagSpecifications: [{ ResourceType: 'volume', Tags: volumeTags }],
  };
}

/**
 * Creates the pool's launch template, or a new version when its data changed (made the default).
 * Returns the version the pool now launches from.
 */
export async function ensureLaunchTemplate(ec2: EC2Client, input: LaunchTemplateInput): Promise<{ name: string; version: number; action: 'created' | 'updated' | 'unchanged' }> {
  const name = launchTemplateName(input.config.deployment, input.stage, input.pool.name);
  const named = input.rootDeviceName ?? input.pool.worker.rootDeviceName;
  let root = named ?? '/dev/xvda';
  if (!named && input.pool.worker.ami.startsWith('ami-')) {
    const img = await withRetry(() => ec2.send(new DescribeImagesCommand({ ImageIds: [input.pool.worker.ami] })));
    const found = img.Images?.[0];
    if (!found) throw new Error(`pools.${input.pool.name}.worker.ami: image ${input.pool.worker.ami} not found in this region`);
    root = found.RootDeviceName ?? root;
  }
  const data = launchTemplateData(input, root);
  let existing = false;
  try {
    const lt = await withRetry(() => ec2.send(new DescribeLaunchTemplatesCommand({ LaunchTemplateNames: [name] })));
    existing = (lt.LaunchTemplates ?? []).length > 0;
  } catch (e) {
    if (!errorCode(e).includes('NotFound')) throw e;
  }
  if (!existing) {
    const out = await withRetry(() =>
      ec2.send(
        new CreateLaunchTemplateCommand({
          LaunchTemplateName: name,
          LaunchTemplateData: data,
          TagSpecifications: [{ ResourceType: 'launch-template', Tags: [{ Key: TAGS.deployment, Value: input.config.deployment }, { Key: TAGS.stage, Value: input.stage }, { Key: TAGS.pool, Value: input.pool.name }] }],
        }),
      ),
    );
    return { name, version: out.LaunchTemplate?.LatestVersionNumber ?? 1, action: 'created' };
  }
  const latest = await withRetry(() => ec2.send(new DescribeLaunchTemplateVersionsCommand({ LaunchTemplateName: name, Versions: ['$Latest'] })));
  const current = latest.LaunchTemplateVersions?.[0];
  if (current && sameTemplateData(current.LaunchTemplateData, data)) return { name, version: current.VersionNumber ?? 1, action: 'unchanged' };
  const out = await withRetry(() => ec2.send(new CreateLaunchTemplateVersionCommand({ LaunchTemplateName: name, LaunchTemplateData: data })));
  const version = out.LaunchTemplateVersion?.VersionNumber ?? 1;
  await withRetry(() => ec2.send(new ModifyLaunchTemplateCommand({ LaunchTemplateName: name, DefaultVersion: String(version) })));
  return { name, version, action: 'updated' };
}

function sameTemplateData(a: ResponseLaunchTemplateData | undefined, b: RequestLaunchTemplateData): boolean {
  if (!a) return false;
  const pick = (d: ResponseLaunchTemplateData | RequestLaunchTemplateData) => ({
    ami: d.ImageId,
    profile: d.IamInstanceProfile?.Arn ?? d.IamInstanceProfile?.Name,
    shutdown: d.InstanceInitiatedShutdownBehavior,
    md: [d.MetadataOptions?.HttpTokens, d.MetadataOptions?.InstanceMetadataTags, d.MetadataOptions?.HttpPutResponseHopLimit],
    bdm: (d.BlockDeviceMappings ?? []).map((m) => [m.DeviceName, m.Ebs?.Encrypted, m.Ebs?.VolumeSize, m.Ebs?.VolumeType]),
    sg: [...(d.SecurityGroupIds ?? [])].sort(),
    ud: d.UserData,
  });
  return JSON.stringify(pick(a)) === JSON.stringify(pick(b));
}

