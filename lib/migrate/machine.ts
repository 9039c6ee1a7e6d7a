/**
 * `[runners.machine]` -> a pool's scaling knobs, autoscaling sections and worker shape.
 * Knobs keep their gitlab-runner names; `amazonec2-*` / `engine-*` MachineOptions become worker
 * settings or a report entry saying why not (docs/migration.md, "What maps to what").
 */
import { DEFAULTS, PREBUILT_ROOT_GIB } from '../config';
import { AWS_REGIONS, DOCKER_MACHINE_DEFAULT_REGION } from './regions';
import type { Report } from './report';
import { own } from '../worker/runner-schema';
import { isTable } from './runner-settings';
import { looksSecretValue } from './secrets';

type Table = Record<string, unknown>;

export const PLACEHOLDER_SUBNET = 'subnet-00000000000000000';
/** Amazon Linux 2023, resolved at launch from AWS's public SSM parameter: always the current image. */
export const DEFAULT_AMI = 'resolve:ssm:/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64';

export interface MachineContext {
  report: Report;
  warn: (at: string, message: string) => void;
  mark: (path: (string | number)[], comment: string) => void;
  /** Reads a file named in config.toml (amazonec2-userdata); undefined when it cannot be read here. */
  readFile?: (path: string) => string | undefined;
  /** Index of the pool in the output. */
  pi: number;
}

export interface MachineResult {
  knobs: Table;
  autoscaling: Table[];
  worker: Table;
  region?: string;
  /** amazonec2-vpc-id when it is a VPC id (the deployment-wide vpcId). */
  vpcId?: string;
}

const MACHINE_KNOBS = ['IdleCount', 'IdleTime', 'MaxBuilds', 'IdleCountMin', 'IdleScaleFactor', 'MaxGrowthRate'] as const;
const AUTOSCALING_KEYS = ['Periods', 'Timezone', 'IdleCount', 'IdleTime', 'IdleCountMin', 'IdleScaleFactor'];

const DOCKER_MACHINE_ONLY = 'docker-machine-only: it provisioned machines over SSH; workers configure themselves from their user data';

const AMAZONEC2_DROPPED: Record<string, string> = {
  'block-duration-minutes': 'spot blocks (defined-duration spot instances) no longer exist in EC2; workers are plain spot instances',
  'keypair-name': DOCKER_MACHINE_ONLY,
  'ssh-keypath': DOCKER_MACHINE_ONLY,
  'ssh-user': DOCKER_MACHINE_ONLY,
  'ssh-port': DOCKER_MACHINE_ONLY,
  'session-token': 'secrets are never copied; the controller launches with its IAM role',
  'access-key': 'secrets are never copied; the controller launches instances with its IAM role (delete the IAM user\'s key once migrated)',
  'secret-key': 'secrets are never copied; the controller launches instances with its IAM role (delete the IAM user\'s key once migrated)',
  zone: 'the zones follow from the subnets; list one subnet per zone you want (more zones = more spot capacity)',
  'use-private-address': 'docker-machine used it to reach the Docker daemon; workers accept no inbound connections',
  'private-address-only': 'the subnets decide (MapPublicIpOnLaunch): list private subnets with a NAT gateway or VPC endpoints',
  'insecure-transfer': DOCKER_MACHINE_ONLY,
  retries: 'the controller retries with backoff and cooldowns by error class instead',
  endpoint: 'set the AWS endpoint through the deployment, not per pool',
  'device-name': 'the root device comes from the AMI (worker.rootDeviceName to override)',
  'metadata-token': 'workers always require IMDSv2 (HttpTokens: required)',
  'metadata-token-response-hop-limit': 'the launch template sets 1, so job containers cannot reach the instance role',
  'security-group-readonly': 'docker-machine-only: whether docker-machine may edit the group',
  'open-port': 'workers accept no inbound connections',
  'use-fleet': 'the controller always launches with EC2 Fleet (CreateFleet), over every instance type and subnet',
  'launch-template': 'the deployment creates the workers\' launch templates',
  'volume-encrypted': 'the root volume is always encrypted',
  'volume-kms-key': 'the root volume uses the account\'s default EBS key; a customer key is not supported yet',
  'ssh-keygen-path': DOCKER_MACHINE_ONLY,
  'spot-instance-type': 'spot is chosen by worker.market',
  'use-ebs-optimized-instance': 'current-generation instance types are EBS-optimized by default at no extra cost (and the flag fails on types that are not)',
};

const ENGINE_DROPPED = 'a docker-machine engine flag; set dockerd options in /etc/docker/daemon.json from worker.userScript (it runs before docker starts)';

function bool(v: string): boolean | undefined {
  return v === 'true' || v === '1' ? true : v === 'false' || v === '0' ? false : undefined;
}

/** MachineOptions ("amazonec2-key=value" or "amazonec2-flag") -> key -> values in order. */
function machineOptions(list: unknown, at: string, ctx: MachineContext): Map<string, string[]> {
  const out = new Map<string, string[]>();
  if (list === undefined) return out;
  if (!Array.isArray(list)) {
    ctx.report.dropped(at, 'MachineOptions must be a list of strings');
    return out;
  }
  for (const item of list) {
    if (typeof item !== 'string' || item.trim() === '') {
      ctx.report.dropped(`${at} ${JSON.stringify(item)}`, 'not an option string');
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

/** Go's "Local" (and an empty zone) is the runner manager's own zone, which a deployment does not have. */
const isLocal = (v: unknown) => typeof v === 'string' && (v === '' || v.toLowerCase() === 'local');
const LOCAL_ZONE = `"Local" was the runner manager's own time zone; the pool's Timezone (${DEFAULTS.Timezone} unless you set it) applies — set it to the zone your manager ran in`;

export function migrateMachine(machine: Table, at: string, ctx: MachineContext): MachineResult {
  const { report, warn } = ctx;
  const mAt = (k: string) => `${at}.machine.${k}`;
  const knobs: Table = {};
  for (const knob of MACHINE_KNOBS)
    if (machine[knob] !== undefined) {
      knobs[knob] = machine[knob];
      report.mapped(mAt(knob), `pools[${ctx.pi}].${knob}`);
    }
  for (const key of Object.keys(machine)) {
    if ([...MACHINE_KNOBS, 'MachineOptions', 'autoscaling', 'OffPeakPeriods', 'OffPeakTimezone', 'OffPeakIdleCount', 'OffPeakIdleTime'].includes(key)) continue;
    if (key === 'MachineDriver') report.mapped(mAt(key), `pools[${ctx.pi}].worker`, 'amazonec2: workers are EC2 instances');
    else if (key === 'MachineName') report.dropped(mAt(key), 'workers are EC2 instances recognised by this project\'s tags (deployment, stage, pool), not by docker-machine names');
    else report.dropped(mAt(key), 'not a docker+machine setting gitlab-runner reads');
  }

  const autoscaling: Table[] = [];
  if (machine.OffPeakPeriods !== undefined) {
    // OffPeak* is the older form of an autoscaling section (removed in gitlab-runner 14.0).
    const s: Table = { Periods: machine.OffPeakPeriods, IdleCount: machine.OffPeakIdleCount ?? 0, IdleTime: machine.OffPeakIdleTime ?? 0 };
    const to = `pools[${ctx.pi}].autoscaling[0]`;
    report.mapped(mAt('OffPeakPeriods'), `${to}.Periods`, 'OffPeak* became the first autoscaling section, as gitlab-runner 13.x treated it');
    for (const k of ['OffPeakIdleCount', 'OffPeakIdleTime'] as const) if (machine[k] !== undefined) report.mapped(mAt(k), `${to}.${k.slice(7)}`);
    if (isLocal(machine.OffPeakTimezone)) report.dropped(mAt('OffPeakTimezone'), LOCAL_ZONE);
    else if (machine.OffPeakTimezone !== undefined) {
      s.Timezone = machine.OffPeakTimezone;
      report.mapped(mAt('OffPeakTimezone'), `${to}.Timezone`);
    } else
      warn(
        mAt('OffPeakTimezone'),
        `not set: gitlab-runner evaluated OffPeakPeriods in the runner manager's local time zone; written Timezone: ${DEFAULTS.Timezone} (the pool default). Set the pool's Timezone to the zone your manager ran in`,
      );
    autoscaling.push(s);
  } else
    for (const k of ['OffPeakIdleCount', 'OffPeakIdleTime', 'OffPeakTimezone'])
      if (machine[k] !== undefined) report.dropped(mAt(k), 'without OffPeakPeriods it never applied');
  if (machine.autoscaling !== undefined) {
    if (!Array.isArray(machine.autoscaling)) report.dropped(mAt('autoscaling'), 'must be [[runners.machine.autoscaling]] sections');
    else {
      if (autoscaling.length) warn(mAt('autoscaling'), 'both OffPeak* and [[runners.machine.autoscaling]] are set; the OffPeak section comes first so the autoscaling sections win where they match (the last matching section wins)');
      machine.autoscaling.forEach((a, ai) => {
        const sAt = `${mAt('autoscaling')}[${ai}]`;
        if (!isTable(a)) return report.dropped(sAt, 'not a table');
        const s: Table = {};
        for (const [key, v] of Object.entries(a)) {
          // gitlab-runner's loader matches keys case-insensitively: "periods", "TimeZone" are read.
          const k = AUTOSCALING_KEYS.find((n) => n.toLowerCase() === key.toLowerCase());
          if (k !== undefined && k !== key) {
            if (Object.keys(a).includes(k)) {
              report.dropped(`${sAt}.${key}`, `${k} is set too; gitlab-runner reads "${key}" as "${k}"`);
              continue;
            }
            warn(`${sAt}.${key}`, `gitlab-runner reads it as "${k}" (keys match case-insensitively); written ${k}`);
          }
          if (k === 'Timezone' && isLocal(v)) report.dropped(`${sAt}.${key}`, LOCAL_ZONE);
          else if (k !== undefined) {
            s[k] = v;
            report.mapped(`${sAt}.${key}`, `pools[${ctx.pi}].autoscaling[${autoscaling.length}].${k}`);
          } else report.dropped(`${sAt}.${key}`, 'not an autoscaling setting');
        }
        if (s.Timezone === undefined) warn(`${sAt}.Timezone`, `not set: gitlab-runner used the manager's local time zone; here the pool's Timezone (${DEFAULTS.Timezone} unless you set it) applies`);
        autoscaling.push(s);
      });
    }
  }

  const worker = machineWorker(machine, mAt('MachineOptions'), ctx);
  return { knobs, autoscaling, worker: worker.worker, region: worker.region, vpcId: worker.vpcId };
}

function machineWorker(machine: Table, optsAt: string, ctx: MachineContext): { worker: Table; region?: string; vpcId?: string } {
  const { report, warn, mark, pi } = ctx;
  const opts = machineOptions(machine.MachineOptions, optsAt, ctx);
  const worker: Table = {};
  const w = (k: string) => `pools[${pi}].worker.${k}`;
  const optAt = (k: string) => `${optsAt} ${k}`;
  const one = (k: string) => {
    const v = opts.get(`amazonec2-${k}`);
    return v ? v[v.length - 1] : undefined;
  };
  const handled = new Set<string>();
  const done = (k: string) => handled.add(k);

  const region = one('region');
  if (region !== undefined) report.mapped(optAt('amazonec2-region'), 'region');
  done('amazonec2-region');

  // A pool that names no security group by id gets the stack's own (no inbound rules), which the
  // stack creates in the subnets' VPC: keep docker-machine's VPC, or the deploy asks for it again.
  const vpc = one('vpc-id');
  let vpcId: string | undefined;
  if (vpc !== undefined && /^vpc-[0-9a-f]+$/.test(vpc)) {
    vpcId = vpc;
    report.mapped(optAt('amazonec2-vpc-id'), 'vpcId', "the subnets' VPC, where the stack creates the workers' security group when a pool names none");
  } else if (vpc !== undefined)
    report.dropped(optAt('amazonec2-vpc-id'), `${JSON.stringify(vpc)} is not a VPC id (vpc- followed by hex digits); set vpcId (or --param vpc=) when a pool names no security group by id`);
  done('amazonec2-vpc-id');

  // instance types, subnets, security groups: repeatable
  const types = opts.get('amazonec2-instance-type') ?? [];
  const validTypes = types.filter((t) => /^[a-z0-9-]+\.[a-z0-9-]+$/.test(t));
  for (const t of types) if (!validTypes.includes(t)) report.dropped(optAt(`amazonec2-instance-type=${t}`), 'not an instance type');
  if (validTypes.length) report.mapped(optAt('amazonec2-instance-type'), w('instanceTypes'));
  if (validTypes.length === 0) {
    validTypes.push('t3.medium');
    warn(optAt('amazonec2-instance-type'), 'not set: docker-machine defaulted to t2.micro, too small for CI; written t3.medium as a PLACEHOLDER — choose the type your jobs need');
    mark(['pools', pi, 'worker', 'instanceTypes', 0], ' PLACEHOLDER: choose an instance type');
  } else if (validTypes.length === 1)
    warn(optAt('amazonec2-instance-type'), `one instance type (${validTypes[0]}): spot capacity is granted per type and zone, so list several similar types (e.g. the same size in the m5/m6i/m6a/m7i families) to avoid capacity errors`);
  worker.instanceTypes = validTypes;
  done('amazonec2-instance-type');

  const subnets = opts.get('amazonec2-subnet-id') ?? [];
  const goodSubnets = subnets.filter((s) => /^subnet-[0-9a-f]+$/.test(s));
  if (goodSubnets.length === 0) {
    worker.subnets = [PLACEHOLDER_SUBNET];
    mark(['pools', pi, 'worker', 'subnets', 0], ' PLACEHOLDER: put your subnet ids here, one per availability zone');
    if (subnets.length) report.dropped(optAt('amazonec2-subnet-id'), `${subnets.map((s) => JSON.stringify(s)).join(', ')} is not a subnet id (subnet- followed by hex digits)`);
    warn(
      optAt('amazonec2-subnet-id'),
      `no subnet id: written ${PLACEHOLDER_SUBNET} as a PLACEHOLDER — list your subnets (several zones give spot more capacity): aws ec2 describe-subnets --filters Name=vpc-id,Values=<vpc-id> --query 'Subnets[].[SubnetId,AvailabilityZone]'`,
    );
  } else {
    worker.subnets = goodSubnets;
    report.mapped(optAt('amazonec2-subnet-id'), w('subnets'));
    for (const s of subnets) if (!goodSubnets.includes(s)) report.dropped(optAt(`amazonec2-subnet-id=${s}`), 'not a subnet id');
    if (goodSubnets.length === 1) warn(optAt('amazonec2-subnet-id'), 'one subnet = one availability zone; add subnets in other zones so spot has more capacity pools to choose from');
  }
  done('amazonec2-subnet-id');

  const sgs = opts.get('amazonec2-security-group') ?? [];
  const sgIds = sgs.filter((s) => /^sg-[0-9a-f]+$/.test(s));
  if (sgIds.length) {
    worker.securityGroups = sgIds;
    report.mapped(optAt('amazonec2-security-group'), w('securityGroups'));
  }
  const sgNames = sgs.filter((s) => !sgIds.includes(s));
  if (sgNames.length)
    report.replaced(
      optAt(`amazonec2-security-group=${sgNames.join(',')}`),
      'the deployment\'s worker security group',
      `a group given by name: the deployment gives workers a security group with no inbound rules (they need none: run-single polls GitLab; docker-machine needed SSH and 2376). To use yours, put its id: aws ec2 describe-security-groups --filters Name=group-name,Values=${sgNames[0]} --query 'SecurityGroups[].GroupId'`,
    );
  done('amazonec2-security-group');

  const ami = one('ami');
  if (ami && /^ami-[0-9a-f]+$/.test(ami)) {
    worker.ami = ami;
    report.mapped(optAt('amazonec2-ami'), w('ami'));
  } else {
    worker.ami = DEFAULT_AMI;
    if (ami) report.dropped(optAt('amazonec2-ami'), `${JSON.stringify(ami)} is not an AMI id`);
    warn(optAt('amazonec2-ami'), 'no AMI id: written Amazon Linux 2023 (AWS\'s public SSM parameter); the stack pre-builds an image of it with docker and gitlab-runner per pool (worker.image: prebuilt)');
  }
  done('amazonec2-ami');

  const root = one('root-size');
  if (root !== undefined) {
    const n = Number(root);
    if (Number.isInteger(n) && n >= 8) {
      worker.rootVolumeSize = n;
      // A pre-built image's root is PREBUILT_ROOT_GIB (lib/deploy/image.ts): a smaller disk boots the AMI as it is.
      if (n < PREBUILT_ROOT_GIB) worker.image = 'base';
      report.mapped(optAt('amazonec2-root-size'), w('rootVolumeSize'), n < PREBUILT_ROOT_GIB ? `below a pre-built image's ${PREBUILT_ROOT_GIB} GiB root: worker.image: base (installs at boot)` : undefined);
    } else report.dropped(optAt('amazonec2-root-size'), `${JSON.stringify(root)} is not a size in GiB >= 8; the default ${DEFAULTS.rootVolumeSize} is used`);
  }
  done('amazonec2-root-size');
  const vt = one('volume-type');
  if (vt !== undefined) {
    if (['gp3', 'gp2', 'io1', 'io2'].includes(vt)) {
      worker.rootVolumeType = vt;
      report.mapped(optAt('amazonec2-volume-type'), w('rootVolumeType'));
    } else report.replaced(optAt('amazonec2-volume-type'), w('rootVolumeType'), `${JSON.stringify(vt)} is not offered for the root volume (gp3, gp2, io1, io2); gp3 is used, faster and cheaper than standard`);
  }
  done('amazonec2-volume-type');

  const spot = one('request-spot-instance');
  const spotOn = spot !== undefined && bool(spot) === true;
  worker.market = spotOn ? 'spot' : 'on-demand';
  if (spot !== undefined) report.mapped(optAt('amazonec2-request-spot-instance'), w('market'));
  if (!spotOn)
    warn(
      optAt('amazonec2-request-spot-instance'),
      'not set: the runner used on-demand instances, so the pool is written market: on-demand (the same purchase you had). Set market: spot to pay the spot price; interrupted jobs are retried when .gitlab-ci.yml has retry: {when: runner_system_failure}',
    );
  done('amazonec2-request-spot-instance');
  const price = one('spot-price');
  if (price !== undefined) {
    const p = Number(price);
    if (!spotOn) report.dropped(optAt('amazonec2-spot-price'), 'spot is not requested');
    else if (price === '') report.dropped(optAt('amazonec2-spot-price'), 'empty: AWS caps at the on-demand price');
    else if (Number.isFinite(p) && p > 0) {
      worker.maxPrice = p;
      report.mapped(optAt('amazonec2-spot-price'), w('maxPrice'), 'a max price below the current spot price means no capacity at all; leaving it out caps at the on-demand price, which AWS recommends');
    } else report.dropped(optAt('amazonec2-spot-price'), `${JSON.stringify(price)} is not a price`);
  }
  done('amazonec2-spot-price');

  const tagList = one('tags');
  if (tagList !== undefined) {
    const parts = tagList.split(',');
    if (parts.length % 2 !== 0) warn(optAt('amazonec2-tags'), `"${tagList}" is not key,value pairs; the last key "${parts[parts.length - 1]}" has no value and is dropped`);
    const tags: Record<string, string> = {};
    for (let i = 0; i + 1 < parts.length; i += 2) if (parts[i].trim()) tags[parts[i].trim()] = parts[i + 1].trim();
    if (Object.keys(tags).length) worker.tags = tags;
    report.mapped(optAt('amazonec2-tags'), w('tags'));
  }
  done('amazonec2-tags');

  const monitoring = one('monitoring');
  if (monitoring !== undefined) {
    worker.detailedMonitoring = bool(monitoring) === true;
    report.mapped(optAt('amazonec2-monitoring'), w('detailedMonitoring'));
  }
  done('amazonec2-monitoring');

  const profile = one('iam-instance-profile');
  if (profile) {
    report.replaced(
      optAt('amazonec2-iam-instance-profile'),
      w('iam'),
      `the deployment creates each pool's worker role; give it what profile ${profile} allowed with worker.iam.managedPolicyArns / statements. List them: aws iam get-instance-profile --instance-profile-name ${profile} --query 'InstanceProfile.Roles[].RoleName', then aws iam list-attached-role-policies --role-name ROLE and aws iam list-role-policies --role-name ROLE. The role serves the worker host (image pulls through an ECR credential helper, the cache, worker.userScript); job containers cannot reach it (IMDS hop limit 1 keeps the runner token from jobs): jobs that called AWS with the instance profile should use GitLab OIDC (id_tokens) and a role of their own`,
    );
  } else if (profile === '') report.dropped(optAt('amazonec2-iam-instance-profile'), 'empty');
  done('amazonec2-iam-instance-profile');

  const userdata = one('userdata');
  if (userdata) {
    const text = ctx.readFile?.(userdata);
    if (text === undefined) report.dropped(optAt('amazonec2-userdata'), `${userdata} cannot be read here; put its content (a #!/bin/bash script) into worker.userScript`);
    else if (!text.startsWith('#!')) report.dropped(optAt('amazonec2-userdata'), `${userdata} is not a script (${text.startsWith('#cloud-config') ? 'cloud-config' : 'no #! line'}); rewrite it as a #!/bin/bash script in worker.userScript`);
    else if (looksSecretValue(text)) report.dropped(optAt('amazonec2-userdata'), `${userdata} holds what looks like a secret; move the secret to SSM (read it in the script with the worker role and worker.iam) and put the script into worker.userScript`);
    else {
      worker.userScript = text;
      report.mapped(optAt('amazonec2-userdata'), w('userScript'), 'run as root before docker and gitlab-runner are set up, as docker-machine ran it');
    }
  } else if (userdata === '') report.dropped(optAt('amazonec2-userdata'), 'empty');
  done('amazonec2-userdata');

  // dockerd settings docker-machine passed as engine flags.
  const mirrors = [...(opts.get('engine-registry-mirror') ?? []), ...engineOpt(opts, 'registry-mirror')];
  const insecure = [...(opts.get('engine-insecure-registry') ?? []), ...engineOpt(opts, 'insecure-registry')];
  if (mirrors.length) {
    worker.registryMirrors = mirrors;
    report.mapped(optAt('engine-registry-mirror'), w('registryMirrors'), 'dockerd\'s registry-mirrors in /etc/docker/daemon.json');
  }
  if (insecure.length) {
    worker.insecureRegistries = insecure;
    report.mapped(optAt('engine-insecure-registry'), w('insecureRegistries'), 'dockerd\'s insecure-registries in /etc/docker/daemon.json');
  }
  done('engine-registry-mirror');
  done('engine-insecure-registry');
  const proxy: Table = {};
  for (const env of opts.get('engine-env') ?? []) {
    const [name, ...rest] = env.split('=');
    const value = rest.join('=');
    const key = own<string>({ http_proxy: 'http', https_proxy: 'https', no_proxy: 'noProxy' }, name.toLowerCase());
    if (!key) report.dropped(optAt(`engine-env=${name}`), ENGINE_DROPPED);
    else if (looksSecretValue(value)) report.dropped(optAt(`engine-env=${name}`), 'a proxy URL with credentials: not supported (it would be readable in the launch template); use a proxy that authorises the workers\' subnets');
    else {
      proxy[key] = key === 'noProxy' ? value.split(',').map((s) => s.trim()).filter(Boolean) : value.replace(/\/+$/, '');
      report.mapped(optAt(`engine-env=${name}`), w(`proxy.${key}`), 'for dockerd, gitlab-runner and the worker\'s downloads; jobs take theirs from runner.environment');
    }
  }
  if (Object.keys(proxy).length) worker.proxy = proxy;
  done('engine-env');

  for (const [key, values] of opts) {
    if (handled.has(key)) continue;
    if (key === 'engine-opt') {
      for (const v of values) if (!/^(registry-mirror|insecure-registry)=/.test(v)) report.dropped(optAt(`engine-opt=${v.split('=')[0]}`), ENGINE_DROPPED);
      continue;
    }
    const k = key.replace(/^amazonec2-/, '');
    if (!key.startsWith('amazonec2-')) report.dropped(optAt(key), key.startsWith('engine-') ? ENGINE_DROPPED : 'a docker-machine flag with no meaning for workers');
    else report.dropped(optAt(key), own(AMAZONEC2_DROPPED, k) ?? 'an amazonec2 driver option this project has no equivalent for');
    if (values.length > 1 && key.startsWith('amazonec2-') && !own(AMAZONEC2_DROPPED, k)) warn(optAt(key), `given ${values.length} times`);
  }
  return { worker, region, vpcId };
}

function engineOpt(opts: Map<string, string[]>, name: string): string[] {
  return (opts.get('engine-opt') ?? []).filter((v) => v.startsWith(`${name}=`)).map((v) => v.slice(name.length + 1));
}

/** A region this tool knows; else a placeholder and why. */
export function checkRegion(region: string | undefined, cacheLocation: string | undefined): { region: string; problem?: string } {
  if (region === undefined) return { region: DOCKER_MACHINE_DEFAULT_REGION };
  if (AWS_REGIONS.has(region)) return { region };
  const replacement = cacheLocation && AWS_REGIONS.has(cacheLocation) ? cacheLocation : DOCKER_MACHINE_DEFAULT_REGION;
  return {
    region: replacement,
    problem: `"${region}" is not an AWS region${region === 'us-central-1' ? ' (the seed article\'s typo: AWS has us-east-1/2, us-west-1/2 and ca-central-1; eu-central-1 is Frankfurt)' : ' this tool knows (if AWS opened it recently, put it back)'}; written ${replacement} as a PLACEHOLDER${replacement === cacheLocation ? ' (the cache bucket\'s BucketLocation)' : ' (docker-machine\'s default)'} — set the region your subnets are in`,
  };
}
