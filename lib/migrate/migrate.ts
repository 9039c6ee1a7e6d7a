/**
 * docker+machine `config.toml` -> this project's config (docs/migration.md).
 *
 * Each `[[runners]]` with executor docker+machine and the amazonec2 driver becomes a pool; every
 * `[runners.machine]` knob keeps its gitlab-runner name; OffPeak* becomes an autoscaling section;
 * amazonec2-* MachineOptions become the worker shape; `[runners.docker]` / `[runners.cache]` the
 * worker's runner settings. Secrets are never copied: the result names the SSM parameters to
 * create and the commands to create them, with placeholders instead of values.
 *
 * Where the source lacks something the schema requires (a subnet id, a GitLab URL, a deployment
 * name), a valid placeholder is written, marked with a `# PLACEHOLDER` comment and a warning, so
 * the output validates, round-trips through `explain`, and cannot be deployed by accident with a
 * value nobody chose (placeholder subnets and URLs do not exist).
 */
import { parse as parseToml, TomlError } from 'smol-toml';
import { Document } from 'yaml';
import { DEFAULTS, parameterNames, validateConfig, type Config } from '../config';
import { AWS_REGIONS, DOCKER_MACHINE_DEFAULT_REGION } from './regions';

export const PLACEHOLDER_SUBNET = 'subnet-00000000000000000';
export const PLACEHOLDER_URL = 'https://gitlab.example.com';
/** Amazon Linux 2023, resolved at launch from AWS's public SSM parameter: always the current image. */
export const DEFAULT_AMI = 'resolve:ssm:/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64';

export interface MigrationWarning {
  /** Where in config.toml: `runners[0].machine.MachineOptions amazonec2-block-duration-minutes`. */
  at: string;
  message: string;
}

export interface SecretToStore {
  parameter: string;
  what: string;
  command: string;
}

export interface MigrationResult {
  config: Config;
  /** The validated object as written (defaults not filled in), and its YAML with comments. */
  raw: Record<string, unknown>;
  yaml: string;
  warnings: MigrationWarning[];
  secrets: SecretToStore[];
}

export interface MigrationOptions {
  source?: string;
  /** Deployment name; default: from the first runner's name. */
  deployment?: string;
  /** Stage the SSM parameter names are printed for. Default 'prod'. */
  stage?: string;
}

export class MigrationError extends Error {
  constructor(
    readonly source: string,
    readonly problems: string[],
  ) {
    super(`cannot migrate ${source}:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'MigrationError';
  }
}

type Table = Record<string, unknown>;
const isTable = (x: unknown): x is Table => typeof x === 'object' && x !== null && !Array.isArray(x) && !(x instanceof Date);

const GLOBAL_NO_EQUIVALENT: Record<string, string> = {
  check_interval: 'workers run `gitlab-runner run-single`, which long-polls GitLab; the controller reacts to job webhooks and a one-minute schedule instead of polling',
  log_level: 'the Lambdas log structured JSON at info level; set LOG_LEVEL in the deployment if needed',
  log_format: 'the Lambdas always log structured JSON',
  listen_address: 'there is no long-running runner manager to expose metrics; the controller publishes CloudWatch metrics',
  session_server: 'interactive web terminals need inbound access to workers, which have none',
  sentry_dsn: 'errors go to CloudWatch Logs and alarms',
  shutdown_timeout: 'workers finish their job on retirement (SIGQUIT) and have no manager process to shut down',
  connection_max_age: 'no long-lived manager connections',
};

const RUNNER_NO_EQUIVALENT: Record<string, string> = {
  request_concurrency: 'each worker runs one job at a time (run-single)',
  output_limit: 'set it per pool in a future version; the worker uses gitlab-runner\'s default (4096 KB)',
  environment: 'not mapped: put job variables in .gitlab-ci.yml or CI/CD settings',
  pre_get_sources_script: 'not mapped: use hooks in .gitlab-ci.yml',
  pre_build_script: 'not mapped: use before_script in .gitlab-ci.yml',
  post_build_script: 'not mapped: use after_script in .gitlab-ci.yml',
  clone_url: 'not mapped: workers clone from the GitLab URL',
  builds_dir: 'not mapped: the docker executor default is used',
  cache_dir: 'not mapped: the docker executor default is used',
  shell: 'not mapped: the docker executor picks the shell from the image',
  debug_trace_disabled: 'not mapped',
  referees: 'not mapped',
  unhealthy_requests_limit: 'not mapped',
  unhealthy_interval: 'not mapped',
  id: 'the runner id belongs to the old registration',
  token_obtained_at: 'belongs to the old registration',
  token_expires_at: 'belongs to the old registration',
};

const MACHINE_KNOBS = ['IdleCount', 'IdleTime', 'MaxBuilds', 'IdleCountMin', 'IdleScaleFactor', 'MaxGrowthRate'] as const;

const AMAZONEC2_NO_EQUIVALENT: Record<string, string> = {
  'block-duration-minutes': 'spot blocks (defined-duration spot instances) no longer exist in EC2; workers are plain spot instances',
  'keypair-name': 'docker-machine-only: it provisioned machines over SSH; workers configure themselves from user data and need no key pair',
  'ssh-keypath': 'docker-machine-only: SSH provisioning',
  'ssh-user': 'docker-machine-only: SSH provisioning',
  'ssh-port': 'docker-machine-only: SSH provisioning',
  'iam-instance-profile': 'the deployment creates the worker instance profile (it may read only its pool\'s runner token and the cache bucket)',
  'session-token': 'secrets are never copied; the controller uses its IAM role',
  'access-key': 'secrets are never copied; the controller launches instances with its IAM role, so no access key is needed (delete the IAM user\'s key once migrated)',
  'secret-key': 'secrets are never copied; the controller launches instances with its IAM role, so no access key is needed (delete the IAM user\'s key once migrated)',
  'vpc-id': 'the VPC follows from the subnets; nothing to set',
  zone: 'the zones follow from the subnets; list one subnet per zone you want (more zones = more spot capacity)',
  'use-private-address': 'docker-machine used it to reach the Docker daemon; workers accept no inbound connections, so only the subnet setting MapPublicIpOnLaunch (public IP or not) matters',
  'insecure-transfer': 'docker-machine-only',
  retries: 'the controller retries with backoff and cooldowns by error class instead',
  userdata: 'the worker\'s user data is generated by this project (`gitlab-spot-autoscaler user-data`)',
  endpoint: 'set the AWS endpoint through the deployment, not per pool',
  monitoring: 'not mapped: detailed monitoring is off',
  'use-ebs-optimized-instance': 'current instance types are EBS-optimized by default',
  'device-name': 'the root device comes from the AMI',
  'metadata-token': 'workers always require IMDSv2 (HttpTokens: required)',
  'metadata-token-response-hop-limit': 'set by the launch template',
  'security-group-readonly': 'docker-machine-only: it concerned whether docker-machine may edit the group',
  'open-port': 'workers accept no inbound connections',
};

function slug(name: string): string {
  return name.toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/^-+|-+$/g, '').replace(/-{2,}/g, '-').slice(0, 31).replace(/-+$/, '') || 'pool';
}

function isPlaceholder(s: string): boolean {
  return /[<>]|x{3,}|changeme|your[ _-]/i.test(s);
}

/** Parses MachineOptions ("amazonec2-key=value" or "amazonec2-flag") into key -> values. */
function machineOptions(list: unknown, at: string, warn: (at: string, m: string) => void): Map<string, string[]> {
  const out = new Map<string, string[]>();
  if (list === undefined) return out;
  if (!Array.isArray(list)) {
    warn(at, 'MachineOptions must be a list of strings; ignored');
    return out;
  }
  for (const item of list) {
    if (typeof item !== 'string') {
      warn(at, `MachineOptions entry ${JSON.stringify(item)} is not a string; ignored`);
      continue;
    }
    const eq = item.indexOf('=');
    const key = (eq < 0 ? item : item.slice(0, eq)).trim().replace(/^--?/, '');
    const value = eq < 0 ? 'true' : item.slice(eq + 1).trim();
    if (!out.has(key)) out.set(key, []);
    out.get(key)!.push(value);
  }
  return out;
}

function bool(v: string): boolean | undefined {
  return v === 'true' || v === '1' ? true : v === 'false' || v === '0' ? false : undefined;
}

function shellQuote(s: string): string {
  return /^[A-Za-z0-9_./:=@-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

export function migrateConfigToml(text: string, options: MigrationOptions = {}): MigrationResult {
  const source = options.source ?? 'config.toml';
  const stage = options.stage ?? 'prod';
  let doc: Table;
  try {
    doc = parseToml(text) as Table;
  } catch (e) {
    const msg = e instanceof TomlError ? `${e.message.split('\n')[0]} at line ${e.line}, column ${e.column}` : (e as Error).message;
    throw new MigrationError(source, [`not valid TOML: ${msg}`]);
  }

  const warnings: MigrationWarning[] = [];
  const warn = (at: string, message: string) => warnings.push({ at, message });
  // Paths (in the output) whose value is a placeholder, with the comment to put next to it.
  const marks: { path: (string | number)[]; comment: string }[] = [];

  for (const key of Object.keys(doc)) {
    if (key === 'concurrent' || key === 'runners') continue;
    warn(key, `no equivalent: ${GLOBAL_NO_EQUIVALENT[key] ?? 'not a setting this project has'}`);
  }
  const out: Record<string, unknown> = {};
  const runners = Array.isArray(doc.runners) ? (doc.runners as unknown[]) : [];
  if (runners.length === 0) throw new MigrationError(source, ['no [[runners]] section: nothing to migrate']);

  let url: string | undefined;
  let region: string | undefined;
  let cacheLocation: string | undefined;
  const pools: Record<string, unknown>[] = [];
  const poolNames = new Set<string>();
  const tokenPools: string[] = [];

  runners.forEach((runner, ri) => {
    const at = `runners[${ri}]`;
    if (!isTable(runner)) {
      warn(at, 'not a table; skipped');
      return;
    }
    const executor = runner.executor;
    if (executor !== 'docker+machine') {
      warn(at, `executor "${String(executor)}" is not docker+machine; skipped (this project replaces docker+machine autoscaling only)`);
      return;
    }
    const machine = isTable(runner.machine) ? runner.machine : {};
    const driver = machine.MachineDriver;
    if (driver !== 'amazonec2') {
      warn(`${at}.machine.MachineDriver`, `driver "${String(driver)}" is not amazonec2; skipped (workers are EC2 instances)`);
      return;
    }
    const runnerName = typeof runner.name === 'string' && runner.name ? runner.name : `runner-${ri + 1}`;
    let name = slug(runnerName);
    for (let n = 2; poolNames.has(name); n++) name = `${slug(runnerName).slice(0, 28)}-${n}`;
    poolNames.add(name);
    if (name !== runnerName) warn(`${at}.name`, `pool name "${name}" made from runner name "${runnerName}" (pool names are 1-31 of a-z, 0-9, -)`);
    const pi = pools.length;
    const pool: Record<string, unknown> = { name };
    const poolAt = (k: string) => `${at}.${k}`;

    for (const key of Object.keys(runner)) {
      if (['name', 'url', 'token', 'executor', 'limit', 'tag_list', 'run_untagged', 'docker', 'cache', 'machine', 'locked', 'access_level', 'maximum_timeout', 'paused', 'description', 'protected'].includes(key)) continue;
      warn(poolAt(key), `no equivalent: ${RUNNER_NO_EQUIVALENT[key] ?? 'not a setting this project has'}`);
    }
    for (const key of ['locked', 'access_level', 'maximum_timeout', 'paused', 'description', 'protected'])
      if (runner[key] !== undefined) warn(poolAt(key), 'a runner setting kept in GitLab (runner settings page or API), not in this file');

    // GitLab URL: one per deployment.
    if (typeof runner.url === 'string' && !isPlaceholder(runner.url) && /^https?:\/\/[^\s]+$/.test(runner.url)) {
      const u = runner.url.replace(/\/+$/, '');
      if (url === undefined) url = u;
      else if (url !== u) warn(poolAt('url'), `this runner talks to ${u} but an earlier one to ${url}; a deployment serves one GitLab instance — migrate it separately`);
    } else if (url === undefined && runner.url !== undefined) {
      warn(poolAt('url'), `"${String(runner.url)}" is not a GitLab URL; written ${PLACEHOLDER_URL} as a PLACEHOLDER — set gitlab.url to your GitLab instance`);
    }

    if (runner.token !== undefined) {
      tokenPools.push(name);
      warn(
        poolAt('token'),
        `not copied (secret). Create a runner in GitLab (Admin > CI/CD > Runners, or POST /api/v4/user/runners) to get a runner authentication token (glrt-...); registration tokens were removed in GitLab 18.0. Store it with the command printed below`,
      );
    }

    if (runner.limit !== undefined) pool.limit = runner.limit;
    const tags = Array.isArray(runner.tag_list) ? runner.tag_list.filter((t): t is string => typeof t === 'string') : typeof runner.tag_list === 'string' ? runner.tag_list.split(',') : [];
    const okTags = tags.map((t) => t.trim()).filter((t) => {
      const ok = /^[A-Za-z0-9_.:\-/+ ]+$/.test(t) && t.length > 0;
      if (!ok) warn(poolAt('tag_list'), `tag ${JSON.stringify(t)} has characters this project does not accept in tags; dropped`);
      return ok;
    });
    if (okTags.length) pool.tags = okTags;
    // gitlab-runner: a runner without tags runs untagged jobs; with tags, only if run_untagged.
    pool.runUntagged = typeof runner.run_untagged === 'boolean' ? runner.run_untagged : okTags.length === 0;
    if (okTags.length === 0 && pool.runUntagged === false) {
      pool.runUntagged = true;
      warn(poolAt('run_untagged'), 'the runner has no tags and run_untagged = false, so no job could reach it; written runUntagged: true');
    }

    // [runners.machine]
    const mAt = (k: string) => `${at}.machine.${k}`;
    for (const knob of MACHINE_KNOBS) if (machine[knob] !== undefined) pool[knob] = machine[knob];
    for (const key of Object.keys(machine)) {
      if ([...MACHINE_KNOBS, 'MachineDriver', 'MachineOptions', 'autoscaling', 'OffPeakPeriods', 'OffPeakTimezone', 'OffPeakIdleCount', 'OffPeakIdleTime'].includes(key)) continue;
      if (key === 'MachineName') warn(mAt(key), 'no equivalent: workers are EC2 instances recognised by this project\'s tags (deployment, stage, pool), not by docker-machine names');
      else warn(mAt(key), 'no equivalent: docker-machine-only setting');
    }
    const sections: Record<string, unknown>[] = [];
    if (machine.OffPeakPeriods !== undefined) {
      // OffPeak* is the older form of an autoscaling section (removed in gitlab-runner 14.0).
      const s: Record<string, unknown> = { Periods: machine.OffPeakPeriods, IdleCount: machine.OffPeakIdleCount ?? 0, IdleTime: machine.OffPeakIdleTime ?? 0 };
      if (machine.OffPeakTimezone !== undefined) s.Timezone = machine.OffPeakTimezone;
      else
        warn(
          mAt('OffPeakTimezone'),
          `not set: gitlab-runner evaluated OffPeakPeriods in the runner manager's local time zone; written Timezone: ${DEFAULTS.Timezone} (the pool default). Set the pool's Timezone to the zone your manager ran in`,
        );
      sections.push(s);
      warn(mAt('OffPeakPeriods'), `OffPeak* settings became autoscaling section ${0} (Periods, IdleCount ${String(s.IdleCount)}, IdleTime ${String(s.IdleTime)}), as gitlab-runner 13.x treated them`);
    } else if (machine.OffPeakIdleCount !== undefined || machine.OffPeakIdleTime !== undefined) {
      warn(mAt('OffPeakIdleCount'), 'OffPeakIdleCount/OffPeakIdleTime without OffPeakPeriods never applied; ignored');
    }
    if (Array.isArray(machine.autoscaling)) {
      if (sections.length) warn(mAt('autoscaling'), 'both OffPeak* and [[runners.machine.autoscaling]] are set; the OffPeak section comes first so the autoscaling sections win where they match (the last matching section wins)');
      machine.autoscaling.forEach((a, ai) => {
        if (!isTable(a)) return;
        const s: Record<string, unknown> = {};
        for (const k of ['Periods', 'Timezone', 'IdleCount', 'IdleTime', 'IdleCountMin', 'IdleScaleFactor']) if (a[k] !== undefined) s[k] = a[k];
        for (const k of Object.keys(a)) if (!(k in s)) warn(`${at}.machine.autoscaling[${ai}].${k}`, 'not an autoscaling setting; ignored');
        if (s.Timezone === undefined)
          warn(`${at}.machine.autoscaling[${ai}].Timezone`, `not set: gitlab-runner used the manager's local time zone; here the pool's Timezone (${DEFAULTS.Timezone} unless you set it) applies`);
        sections.push(s);
      });
    }
    if (sections.length) pool.autoscaling = sections;

    // Rules gitlab-runner tolerated that the schema refuses: adjust and say so.
    const limit = typeof pool.limit === 'number' ? pool.limit : 0;
    const clampIdle = (obj: Record<string, unknown>, where: string) => {
      if (limit > 0 && typeof obj.IdleCount === 'number' && obj.IdleCount > limit) {
        warn(where, `IdleCount ${obj.IdleCount} can never be reached with limit ${limit}; written ${limit}`);
        obj.IdleCount = limit;
      }
      if (typeof obj.IdleScaleFactor === 'number' && obj.IdleScaleFactor > 0 && typeof obj.IdleCountMin === 'number' && obj.IdleCountMin > ((obj.IdleCount as number) ?? 0)) {
        warn(where, `IdleCountMin ${obj.IdleCountMin} is above IdleCount ${String(obj.IdleCount ?? 0)}; gitlab-runner capped it at IdleCount, written so`);
        obj.IdleCountMin = obj.IdleCount ?? 0;
      }
    };
    clampIdle(pool, `${at}.machine`);

    // MachineOptions -> worker
    const opts = machineOptions(machine.MachineOptions, mAt('MachineOptions'), warn);
    const worker: Record<string, unknown> = {};
    const optAt = (k: string) => `${mAt('MachineOptions')} ${k}`;
    const one = (k: string) => {
      const v = opts.get(`amazonec2-${k}`);
      return v ? v[v.length - 1] : undefined;
    };
    for (const [key, values] of opts) {
      if (!key.startsWith('amazonec2-')) {
        warn(optAt(key), 'docker-machine-only flag (engine or machine provisioning); no equivalent');
        continue;
      }
      const k = key.slice('amazonec2-'.length);
      if (AMAZONEC2_NO_EQUIVALENT[k]) warn(optAt(key), `not mapped: ${AMAZONEC2_NO_EQUIVALENT[k]}`);
      else if (!['region', 'subnet-id', 'tags', 'security-group', 'instance-type', 'ami', 'root-size', 'volume-type', 'request-spot-instance', 'spot-price', 'private-address-only'].includes(k))
        warn(optAt(key), 'no equivalent in this project; ignored');
      if (values.length > 1 && !['security-group', 'instance-type', 'subnet-id'].includes(k)) warn(optAt(key), `given ${values.length} times; the last value is used, as docker-machine does`);
    }

    const reg = one('region');
    if (reg !== undefined) {
      if (region === undefined) region = reg;
      else if (region !== reg) warn(optAt('amazonec2-region'), `region ${reg} differs from an earlier runner's ${region}; a deployment lives in one region — migrate this runner separately`);
    } else if (region === undefined) region = DOCKER_MACHINE_DEFAULT_REGION;

    const types = opts.get('amazonec2-instance-type') ?? [];
    const validTypes = types.filter((t) => /^[a-z0-9-]+\.[a-z0-9-]+$/.test(t));
    for (const t of types) if (!validTypes.includes(t)) warn(optAt('amazonec2-instance-type'), `${JSON.stringify(t)} is not an instance type; dropped`);
    if (validTypes.length === 0) {
      validTypes.push('t3.medium');
      warn(optAt('amazonec2-instance-type'), 'not set: docker-machine defaulted to t2.micro, too small for CI; written t3.medium as a PLACEHOLDER — choose the type your jobs need');
      marks.push({ path: ['pools', pi, 'worker', 'instanceTypes', 0], comment: ' PLACEHOLDER: choose an instance type' });
    } else if (validTypes.length === 1) {
      warn(
        optAt('amazonec2-instance-type'),
        `one instance type (${validTypes[0]}): spot capacity is granted per type and zone, so list several similar types (e.g. the same size in the m5/m6i/m6a/m7i families) to avoid capacity errors`,
      );
    }
    worker.instanceTypes = validTypes;

    const subnets = opts.get('amazonec2-subnet-id') ?? [];
    const goodSubnets = subnets.filter((s) => /^subnet-[0-9a-f]+$/.test(s));
    if (goodSubnets.length === 0) {
      worker.subnets = [PLACEHOLDER_SUBNET];
      marks.push({ path: ['pools', pi, 'worker', 'subnets', 0], comment: ' PLACEHOLDER: put your subnet ids here, one per availability zone' });
      warn(
        optAt('amazonec2-subnet-id'),
        subnets.length
          ? `${subnets.map((s) => JSON.stringify(s)).join(', ')} is not a subnet id (subnet- followed by hex digits); written ${PLACEHOLDER_SUBNET} as a PLACEHOLDER — list your subnets (several zones give spot more capacity): aws ec2 describe-subnets --filters Name=vpc-id,Values=<vpc-id> --query 'Subnets[].[SubnetId,AvailabilityZone]'`
          : `not set: docker-machine picked the default VPC's subnet in its zone; written ${PLACEHOLDER_SUBNET} as a PLACEHOLDER — list your subnets, one per availability zone`,
      );
    } else {
      worker.subnets = goodSubnets;
      for (const s of subnets) if (!goodSubnets.includes(s)) warn(optAt('amazonec2-subnet-id'), `${JSON.stringify(s)} is not a subnet id; dropped`);
      if (goodSubnets.length === 1) warn(optAt('amazonec2-subnet-id'), 'one subnet = one availability zone; add subnets in other zones so spot has more capacity pools to choose from');
    }

    const sgs = opts.get('amazonec2-security-group') ?? [];
    const sgIds = sgs.filter((s) => /^sg-[0-9a-f]+$/.test(s));
    if (sgIds.length) worker.securityGroups = sgIds;
    const sgNames = sgs.filter((s) => !sgIds.includes(s));
    if (sgNames.length)
      warn(
        optAt('amazonec2-security-group'),
        `security group name(s) ${sgNames.map((s) => JSON.stringify(s)).join(', ')} not mapped: the deployment gives workers a security group with no inbound rules (they need none: run-single polls GitLab; docker-machine needed SSH and 2376 inbound). To add a group of yours, put its id: aws ec2 describe-security-groups --filters Name=group-name,Values=${sgNames[0]} --query 'SecurityGroups[].GroupId'`,
      );

    const ami = one('ami');
    if (ami && /^ami-[0-9a-f]+$/.test(ami)) worker.ami = ami;
    else {
      worker.ami = DEFAULT_AMI;
      warn(
        optAt('amazonec2-ami'),
        `${ami ? `${JSON.stringify(ami)} is not an AMI id` : 'not set (docker-machine used an old Ubuntu image)'}; written Amazon Linux 2023 (resolved at launch from AWS's public SSM parameter). Workers install docker and gitlab-runner when missing; a pre-baked AMI boots faster`,
      );
    }
    const root = one('root-size');
    if (root !== undefined) {
      const n = Number(root);
      if (Number.isInteger(n) && n >= 8) worker.rootVolumeSize = n;
      else warn(optAt('amazonec2-root-size'), `${JSON.stringify(root)} is not a size in GiB >= 8; the default ${DEFAULTS.rootVolumeSize} is used`);
    }
    const vt = one('volume-type');
    if (vt !== undefined) {
      if (['gp3', 'gp2', 'io1', 'io2'].includes(vt)) worker.rootVolumeType = vt;
      else warn(optAt('amazonec2-volume-type'), `volume type ${JSON.stringify(vt)} is not offered (accepted: gp3, gp2, io1, io2); the default gp3 is used`);
    }
    const spot = one('request-spot-instance');
    const spotOn = spot !== undefined && bool(spot) === true;
    worker.market = spotOn ? 'spot' : 'on-demand';
    if (!spotOn)
      warn(
        optAt('amazonec2-request-spot-instance'),
        'not set: the runner used on-demand instances, so the pool is written market: on-demand (the same purchase you had). Set market: spot to pay the spot price; interrupted jobs are retried when .gitlab-ci.yml has retry: {when: runner_system_failure}',
      );
    const price = one('spot-price');
    if (price !== undefined) {
      const p = Number(price);
      if (!spotOn) warn(optAt('amazonec2-spot-price'), 'ignored: spot is not requested');
      else if (Number.isFinite(p) && p > 0) {
        worker.maxPrice = p;
        warn(optAt('amazonec2-spot-price'), `kept as maxPrice ${p} USD/h; a max price below the current spot price means no capacity at all — leaving it out caps at the on-demand price, which AWS recommends`);
      } else warn(optAt('amazonec2-spot-price'), `${JSON.stringify(price)} is not a price; ignored`);
    }
    // Whether a worker gets a public IP is the subnet's MapPublicIpOnLaunch: workers accept no
    // inbound connection and need outbound access only (a NAT gateway or VPC endpoints).
    const pao = one('private-address-only');
    warn(
      optAt('amazonec2-private-address-only'),
      pao !== undefined && bool(pao)
        ? 'workers get a public IP only from subnets that map one on launch: list private subnets (MapPublicIpOnLaunch false) with a NAT gateway or VPC endpoints'
        : 'not set: docker-machine gave each instance a public IP; here the subnets decide (MapPublicIpOnLaunch) — private subnets with a NAT gateway are safer, workers need outbound access only',
    );
    const tagList = one('tags');
    if (tagList !== undefined) {
      const parts = tagList.split(',');
      if (parts.length % 2 !== 0) warn(optAt('amazonec2-tags'), `"${tagList}" is not key,value pairs; the last key "${parts[parts.length - 1]}" has no value and is dropped`);
      const tags: Record<string, string> = {};
      for (let i = 0; i + 1 < parts.length; i += 2) tags[parts[i].trim()] = parts[i + 1].trim();
      if (Object.keys(tags).length) worker.tags = tags;
    }

    // [runners.docker]
    const docker = isTable(runner.docker) ? runner.docker : {};
    const d: Record<string, unknown> = {};
    if (typeof docker.image === 'string') d.image = docker.image;
    if (typeof docker.privileged === 'boolean') d.privileged = docker.privileged;
    if (docker.privileged === true)
      warn(
        `${at}.docker.privileged`,
        'kept: privileged job containers can take over the worker, including its runner token and instance role (docs/worker.md, security notes); keep privileged pools for trusted projects, or move image builds to a tagged pool of their own',
      );
    if (Array.isArray(docker.volumes)) d.volumes = docker.volumes.filter((v) => typeof v === 'string');
    if (typeof docker.disable_cache === 'boolean') d.disableCache = docker.disable_cache;
    for (const k of Object.keys(docker))
      if (!['image', 'privileged', 'volumes', 'disable_cache'].includes(k)) warn(`${at}.docker.${k}`, 'not mapped: the worker writes gitlab-runner\'s default for it');
    if (Object.keys(d).length) worker.docker = d;

    // [runners.cache] (older flat keys, or the [runners.cache.s3] table)
    const cache = isTable(runner.cache) ? runner.cache : undefined;
    if (cache) {
      const s3 = isTable(cache.s3) ? cache.s3 : {};
      const get = (flat: string, nested: string) => (s3[nested] ?? cache[flat]) as unknown;
      const type = cache.Type;
      if (type !== undefined && type !== 's3') warn(`${at}.cache.Type`, `cache type "${String(type)}" is not supported; workers use the deployment's S3 bucket`);
      else {
        const c: Record<string, unknown> = {};
        if (typeof cache.Shared === 'boolean') c.shared = cache.Shared;
        const bucket = get('BucketName', 'BucketName');
        if (typeof bucket === 'string' && /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) {
          c.bucketName = bucket;
          warn(`${at}.cache.BucketName`, `bucket ${bucket} kept: the worker instance profile must be allowed to use it (the deployment grants access to the bucket named here)`);
        } else if (bucket !== undefined)
          warn(`${at}.cache.BucketName`, `${JSON.stringify(bucket)} is not a bucket name; left out, so workers use the cache bucket the deployment creates`);
        const location = get('BucketLocation', 'BucketLocation');
        if (typeof location === 'string') cacheLocation ??= location;
        const server = get('ServerAddress', 'ServerAddress');
        if (typeof server === 'string' && !/(^|\.)amazonaws\.com(\.cn)?$/.test(server))
          warn(`${at}.cache.ServerAddress`, `${server} is not AWS S3; workers use S3 in the deployment's region`);
        for (const k of ['AccessKey', 'SecretKey'])
          if (get(k, k) !== undefined) warn(`${at}.cache.${k}`, 'not copied (secret): workers reach the cache with their instance profile; no keys are needed');
        for (const k of Object.keys(cache)) if (!['Type', 'Shared', 'BucketName', 'BucketLocation', 'ServerAddress', 'AccessKey', 'SecretKey', 's3', 'Path', 'Insecure'].includes(k)) warn(`${at}.cache.${k}`, 'not mapped');
        if (cache.Path !== undefined) warn(`${at}.cache.Path`, 'not mapped: the cache prefix is the pool name');
        if (Object.keys(c).length) worker.cache = c;
      }
    }

    pool.worker = worker;
    pools.push(pool);
  });

  if (pools.length === 0) throw new MigrationError(source, ['no [[runners]] with executor "docker+machine" and MachineDriver "amazonec2": nothing to migrate', ...warnings.map((w) => `${w.at}: ${w.message}`)]);

  // Deployment-wide settings.
  const deployment = options.deployment ?? slug(String((runners.find(isTable) as Table | undefined)?.name ?? 'gitlab-runners'));
  if (!options.deployment) warn('deployment', `not in config.toml: named "${deployment}" after the first runner; choose another with --deployment NAME`);
  out.deployment = deployment;
  if (region !== undefined && !AWS_REGIONS.has(region)) {
    const replacement = cacheLocation && AWS_REGIONS.has(cacheLocation) ? cacheLocation : DOCKER_MACHINE_DEFAULT_REGION;
    warn(
      'MachineOptions amazonec2-region',
      `"${region}" is not an AWS region${/^us-central-1$/.test(region) ? ' (the seed article\'s typo: AWS has us-east-1/2, us-west-1/2 and ca-central-1; eu-central-1 is Frankfurt)' : ' this tool knows (if AWS opened it recently, put it back)'}; written ${replacement} as a PLACEHOLDER${replacement === cacheLocation ? ' (the cache bucket\'s BucketLocation)' : ' (docker-machine\'s default)'} — set the region your subnets are in`,
    );
    marks.push({ path: ['region'], comment: ` PLACEHOLDER: config.toml said "${region}", which is not an AWS region` });
    region = replacement;
  }
  if (region) out.region = region;
  out.gitlab = { url: url ?? PLACEHOLDER_URL };
  if (url === undefined) {
    marks.push({ path: ['gitlab', 'url'], comment: ' PLACEHOLDER: your GitLab URL' });
    if (!warnings.some((w) => w.at.endsWith('.url'))) warn('runners.url', `not set; written ${PLACEHOLDER_URL} as a PLACEHOLDER`);
  }
  if (doc.concurrent !== undefined) out.concurrent = doc.concurrent;
  if (cacheLocation && region && cacheLocation !== region)
    warn('runners.cache.BucketLocation', `the cache bucket was in ${cacheLocation} and the workers will run in ${region}: cross-region cache traffic is slow and billed; the deployment's own cache bucket is in ${region}`);
  out.pools = pools;

  let config: Config;
  try {
    config = validateConfig(out, `${source} (migrated)`);
  } catch (e) {
    const problems = (e as { problems?: string[] }).problems ?? [(e as Error).message];
    throw new MigrationError(source, [
      'the migrated config does not validate; fix these values in config.toml (or the output) and run again:',
      ...problems,
    ]);
  }

  // Secrets: the SSM parameters to create, with commands that hold placeholders, never values.
  const names = parameterNames(config, stage);
  const regionFlag = config.region ? ` --region ${config.region}` : '';
  const secrets: SecretToStore[] = [
    ...tokenPools.map((p) => {
      const pool = config.pools.find((x) => x.name === p)!;
      const parameter = names.runnerToken(pool);
      return { parameter, what: `runner authentication token of pool ${p} (glrt-..., from GitLab: create a runner with the pool's tags)`, command: `aws ssm put-parameter${regionFlag} --type SecureString --name ${shellQuote(parameter)} --value '<glrt-RUNNER-AUTHENTICATION-TOKEN>'` };
    }),
    {
      parameter: names.webhookSecret,
      what: 'webhook secret token (a random string you also paste into the GitLab webhook\'s "Secret token")',
      command: `aws ssm put-parameter${regionFlag} --type SecureString --name ${shellQuote(names.webhookSecret)} --value "$(openssl rand -hex 32)"`,
    },
    {
      parameter: names.gitlabApiToken,
      what: 'GitLab API token with read_api scope (routes jobs by their tags and confirms pending jobs)',
      command: `aws ssm put-parameter${regionFlag} --type SecureString --name ${shellQuote(names.gitlabApiToken)} --value '<glpat-READ-API-TOKEN>'`,
    },
  ];

  const yaml = renderYaml(out, warnings, secrets, marks, source, stage);
  return { config, raw: out, yaml, warnings, secrets };
}

function renderYaml(
  raw: Record<string, unknown>,
  warnings: MigrationWarning[],
  secrets: SecretToStore[],
  marks: { path: (string | number)[]; comment: string }[],
  source: string,
  stage: string,
): string {
  const doc = new Document(raw);
  const header = [
    ` Migrated from ${source} by \`gitlab-spot-autoscaler migrate\`.`,
    ' Check every line marked PLACEHOLDER before deploying; `gitlab-spot-autoscaler validate --config FILE` checks the file.',
    '',
    ` Secrets are not in this file. Store them in SSM Parameter Store (stage "${stage}"):`,
    ...secrets.flatMap((s) => [`   ${s.what}:`, `     ${s.command}`]),
  ];
  if (warnings.length) header.push('', ' Migration notes:', ...warnings.map((w) => `   - ${w.at}: ${w.message}`));
  doc.commentBefore = header.join('\n');
  for (const m of marks) {
    const node = doc.getIn(m.path, true) as { comment?: string } | undefined;
    if (node && typeof node === 'object') node.comment = m.comment;
  }
  return doc.toString({ lineWidth: 0 });
}
