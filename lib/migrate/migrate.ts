/**
 * docker+machine `config.toml` -> this project's config (docs/migration.md).
 *
 * Each `[[runners]]` with executor docker+machine and the amazonec2 driver becomes a pool: every
 * `[runners.machine]` knob keeps its gitlab-runner name; OffPeak* becomes an autoscaling section;
 * amazonec2-* / engine-* MachineOptions become the worker's shape and host settings (machine.ts);
 * the runner's own gitlab-runner settings ([runners.docker], [runners.cache], environment,
 * scripts, feature flags ...) are carried verbatim into the pool's `runner:` block, which the
 * worker writes into its config.toml (runner-settings.ts, cache.ts). Every key of the input gets
 * a report entry: carried, mapped, replaced or dropped, with why (report.ts).
 *
 * Secrets are never copied: runner tokens, secret-looking environment variables and settings, and
 * cache keys become SSM parameters (the worker reads a pool's own with its role at boot), and the
 * result lists the `aws ssm put-parameter` commands with placeholders instead of values.
 *
 * Where the source lacks something the schema requires (a subnet id, a GitLab URL, a later pool's
 * tags), a valid placeholder is written, marked with a `# PLACEHOLDER` comment and a note, so the
 * output validates, round-trips through `explain`, and cannot be deployed by accident with a value
 * nobody chose. Pure: files named in config.toml are read through `options.readFile`.
 */
import { parse as parseToml, TomlError } from 'smol-toml';
import { Document } from 'yaml';
import { parameterNames, urlHasCredentials, validateConfig, type Config } from '../config';
import { own, RUNNER_SCHEMA, RUNNER_SCHEMA_VERSION } from '../worker/runner-schema';
import { userDataProblems, WORKER_DEFAULTS } from '../worker/userdata';
import { migrateCache } from './cache';
import { checkRegion, DEFAULT_AMI, migrateMachine, PLACEHOLDER_SUBNET } from './machine';
import { formatReport, Report, type Outcome, type ReportEntry } from './report';
import { carrySection, carryTable, GITLAB_SIDE_KEYS, isTable, RUNNER_KEYS_ELSEWHERE, show, type CarryContext, type JobSecret } from './runner-settings';
import { looksSecretValue } from './secrets';

export { PLACEHOLDER_SUBNET, DEFAULT_AMI };
export const PLACEHOLDER_URL = 'https://gitlab.example.com';
/** Tag written for a later runner whose tags are not known: `PLACEHOLDER-<pool>` (tags are per pool, so they must differ). */
export const PLACEHOLDER_TAG = 'PLACEHOLDER';

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

/** A runner's tags as GitLab has them (GET /api/v4/runners/:id), read by `--tags-from-gitlab`. */
export interface RunnerTags {
  tags: string[];
  runUntagged: boolean;
  id?: number;
}

export interface MigrationResult {
  config: Config;
  /** The validated object as written (defaults not filled in), and its YAML with comments. */
  raw: Record<string, unknown>;
  yaml: string;
  /** Advice and placeholders to fill in (what happened to each key is in `report`). */
  warnings: MigrationWarning[];
  secrets: SecretToStore[];
  report: ReportEntry[];
  counts: Record<Outcome, number>;
}

export interface MigrationOptions {
  source?: string;
  /** Deployment name; default: from the first runner's name. */
  deployment?: string;
  /** Stage the SSM parameter names are printed for. Default 'prod'. */
  stage?: string;
  /** Tags per index of [[runners]] in the file, read from GitLab. */
  runnerTags?: ReadonlyMap<number, RunnerTags>;
  /** Reads a file config.toml names (tls-ca-file, amazonec2-userdata); undefined = cannot be read here. */
  readFile?: (path: string) => string | undefined;
  /** An AWS S3 cache with keys is in another account: keep it and its keys (from SSM) instead of the worker role. */
  keepCacheKeys?: boolean;
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

const GLOBAL_DROPPED: Record<string, string> = {
  check_interval: 'workers run `gitlab-runner run-single`, which long-polls GitLab; the controller reacts to job webhooks and a one-minute schedule instead of polling',
  log_level: 'the Lambdas log structured JSON at info level; workers log gitlab-runner\'s info lines to their console',
  log_format: 'the Lambdas always log structured JSON; workers read gitlab-runner\'s text log',
  listen_address: 'there is no long-running runner manager to expose metrics; the controller publishes CloudWatch metrics',
  session_server: 'interactive web terminals need inbound access to workers, which have none',
  sentry_dsn: 'errors go to CloudWatch Logs and alarms',
  shutdown_timeout: 'workers finish their job on retirement (SIGQUIT) and have no manager process to shut down',
  connection_max_age: 'no long-lived manager connections',
  user: 'the shell executor\'s user; workers run the docker executor',
  experimental: 'the runner manager\'s usage logger; workers have none',
};

/** What each executor that is not docker+machine is, and why it is not a pool. */
const EXECUTOR_NOTES: Record<string, string> = {
  docker: 'one fixed docker host, not autoscaled; not migrated (to autoscale its jobs, copy its [runners.docker] settings into a pool\'s runner: block)',
  'docker-windows': 'Windows containers; workers are Linux',
  'docker-autoscaler': 'GitLab\'s fleeting-based autoscaler ([runners.autoscaler] with an ASG plugin); not migrated: this project replaces docker+machine (its [runners.docker] settings could go into a pool\'s runner: block)',
  instance: 'the fleeting instance executor; not migrated: this project replaces docker+machine',
  shell: 'jobs run on the runner host itself; keep that runner as it is',
  ssh: 'jobs run on a fixed host over SSH; keep that runner as it is',
  kubernetes: 'jobs run in Kubernetes pods; keep that runner as it is',
  custom: 'a custom executor driver; keep that runner as it is',
  parallels: 'Parallels VMs on the runner host; keep that runner as it is',
  virtualbox: 'VirtualBox VMs on the runner host; keep that runner as it is',
  'docker-ssh': 'removed from gitlab-runner; not migrated',
  'docker-ssh+machine': 'removed from gitlab-runner; migrate it as docker+machine by changing its executor first',
};

const RUNNER_KEY_NAMES = [...Object.keys(RUNNER_SCHEMA), ...GITLAB_SIDE_KEYS];
const MACHINE_KEY_NAMES = ['IdleCount', 'IdleTime', 'MaxBuilds', 'IdleCountMin', 'IdleScaleFactor', 'MaxGrowthRate', 'MachineDriver', 'MachineName', 'MachineOptions', 'autoscaling', 'OffPeakPeriods', 'OffPeakTimezone', 'OffPeakIdleCount', 'OffPeakIdleTime'];

/** The table with gitlab-runner's spelling of each key it knows (its loader matches case-insensitively). */
function canonicalTable(t: Table, names: readonly string[], at: string, warn: (at: string, m: string) => void): Table {
  // No prototype, like smol-toml's tables: a key "__proto__" is a key (reported), not a prototype.
  const out: Table = Object.create(null);
  for (const [k, v] of Object.entries(t)) {
    const c = names.includes(k) ? k : (names.find((n) => n.toLowerCase() === k.toLowerCase()) ?? k);
    if (c !== k) warn(`${at}.${c}`, `written "${k}" in config.toml; gitlab-runner reads it as "${c}" (keys match case-insensitively)`);
    if (c !== k && out[c] !== undefined) continue;
    out[c] = v;
  }
  return out;
}

function slug(name: string): string {
  return name.toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/^-+|-+$/g, '').replace(/-{2,}/g, '-').slice(0, 31).replace(/-+$/, '') || 'pool';
}

function isPlaceholder(s: string): boolean {
  return /[<>]|x{3,}|changeme|your[ _-]|\$\{/i.test(s);
}

function shellQuote(s: string): string {
  return /^[A-Za-z0-9_./:=@-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

const TAG_RE = /^[A-Za-z0-9_.:\-/+ ]+$/;

interface PoolDraft {
  pool: Table;
  runnerIndex: number;
  runner: Table;
  /** Tags from config.toml's tag_list (a hint: gitlab-runner never read it there), or from GitLab. */
  tags?: { tags: string[]; runUntagged: boolean; from: string };
  secrets: JobSecret[];
  hadToken: boolean;
}

export function migrateConfigToml(text: string, options: MigrationOptions = {}): MigrationResult {
  const source = options.source ?? 'config.toml';
  const stage = options.stage ?? 'prod';
  let doc: Table;
  try {
    doc = parseToml(text, { integersAsBigInt: 'asNeeded' }) as Table;
  } catch (e) {
    const msg = e instanceof TomlError ? `${e.message.split('\n')[0]} at line ${e.line}, column ${e.column}` : (e as Error).message;
    throw new MigrationError(source, [`not valid TOML (gitlab-runner could not load it either): ${msg}`]);
  }

  const report = new Report();
  const warnings: MigrationWarning[] = [];
  const warn = (at: string, message: string) => warnings.push({ at, message });
  // Paths (in the output) whose value is a placeholder, with the comment to put next to it.
  const marks: { path: (string | number)[]; comment: string }[] = [];
  const mark = (path: (string | number)[], comment: string) => marks.push({ path, comment });

  for (const key of Object.keys(doc)) {
    if (key === 'runners') continue;
    if (key === 'concurrent') {
      const c = doc.concurrent;
      if ((typeof c === 'number' && Number.isInteger(c) && c >= 0) || (typeof c === 'bigint' && c >= 0n)) report.mapped(key, 'concurrent');
      else {
        report.dropped(key, `${show(c)} is not a whole number >= 0 (gitlab-runner could not load it); no global cap is written`);
        delete doc.concurrent;
      }
    }
    else report.dropped(key, own(GLOBAL_DROPPED, key) ?? 'not a gitlab-runner setting');
  }
  const runners = Array.isArray(doc.runners) ? (doc.runners as unknown[]) : doc.runners === undefined ? [] : [doc.runners];
  if (runners.length === 0) throw new MigrationError(source, ['no [[runners]] section: nothing to migrate']);

  let url: string | undefined;
  let urlCredentials = false;
  let region: string | undefined;
  let vpcId: string | undefined;
  let cacheLocation: string | undefined;
  const drafts: PoolDraft[] = [];
  const poolNames = new Set<string>();

  runners.forEach((rawRunner, ri) => {
    const at = `runners[${ri}]`;
    if (!isTable(rawRunner)) return report.dropped(at, 'not a table');
    // gitlab-runner matches keys case-insensitively: read them as it does, by their canonical names.
    const runner = canonicalTable(rawRunner, RUNNER_KEY_NAMES, at, warn);
    if (isTable(runner.machine)) runner.machine = canonicalTable(runner.machine, MACHINE_KEY_NAMES, `${at}.machine`, warn);
    const executor = runner.executor;
    if (executor !== 'docker+machine') {
      const e = typeof executor === 'string' ? executor : undefined;
      return report.dropped(at, `executor ${e ? `"${e}"` : 'not set'}: ${(e && own(EXECUTOR_NOTES, e)) || 'not docker+machine'}; this project replaces docker+machine autoscaling only`);
    }
    const machine = isTable(runner.machine) ? runner.machine : {};
    const driver = machine.MachineDriver;
    if (driver !== 'amazonec2')
      return report.dropped(at, `docker+machine with MachineDriver ${driver === undefined ? 'not set' : `"${show(driver)}"`}: workers are EC2 instances (amazonec2); migrate the runner by hand if you move it to AWS`);

    const runnerName = typeof runner.name === 'string' && runner.name ? runner.name : `runner-${ri + 1}`;
    let name = slug(runnerName);
    // Identical runner names (several managers of one runner, copies) get distinct pool names.
    for (let n = 2; poolNames.has(name); n++) name = `${slug(runnerName).slice(0, 28).replace(/-+$/, '')}-${n}`;
    poolNames.add(name);
    const pi = drafts.length;
    const pool: Table = { name, tags: [], runUntagged: false }; // filled in by assignTags
    const draft: PoolDraft = { pool, runnerIndex: ri, runner, secrets: [], hadToken: runner.token !== undefined };
    drafts.push(draft);
    if (typeof runner.name === 'string') report.mapped(`${at}.name`, `pools[${pi}].name`, name !== runnerName ? `"${name}" (pool names are 1-31 of a-z, 0-9, -)` : undefined);
    else if (runner.name !== undefined) report.dropped(`${at}.name`, 'not a string');
    report.mapped(`${at}.executor`, `pools[${pi}]`, 'workers run the docker executor');

    // GitLab URL: one per deployment.
    if (typeof runner.url === 'string' && !isPlaceholder(runner.url) && /^https?:\/\/[^\s/]+/.test(runner.url)) {
      let u = runner.url.replace(/\/+$/, '');
      const withCredentials = urlHasCredentials(u);
      if (withCredentials) {
        // A secret in the URL is never copied: the URL is written without it, and the value gets an
        // SSM put-parameter command like every other secret (secretCommands).
        const parsed = new URL(u);
        parsed.username = '';
        parsed.password = '';
        u = parsed.toString().replace(/\/+$/, '');
        urlCredentials = true;
      }
      if (url === undefined || url === u) {
        url = u;
        if (withCredentials)
          report.replaced(
            `${at}.url`,
            'gitlab.url + SSM gitlab-url-credentials',
            `credentials (user:password@) not copied (secret): gitlab.url is ${u}, and the command below stores them. Workers and the controller reach GitLab without them (runners authenticate with their token), so a GitLab that answers only with them (a proxy with basic authentication) is not supported`,
          );
        else report.mapped(`${at}.url`, 'gitlab.url');
      } else report.dropped(`${at}.url`, `this runner talks to ${u} but an earlier one to ${url}; a deployment serves one GitLab instance — migrate it separately`);
    } else if (runner.url !== undefined) report.dropped(`${at}.url`, `${looksSecretValue(show(runner.url)) ? 'it' : JSON.stringify(show(runner.url))} is not a GitLab URL; gitlab.url is a PLACEHOLDER`);

    if (runner.token !== undefined)
      report.replaced(
        `${at}.token`,
        `SSM runner-token/${name}`,
        'not copied (secret). Create a runner in GitLab (Admin > CI/CD > Runners, or POST /api/v4/user/runners) for a runner authentication token (glrt-...); registration tokens were removed in GitLab 18.0',
      );
    if (runner.limit !== undefined) {
      if (typeof runner.limit === 'number' && Number.isInteger(runner.limit) && runner.limit >= 0) {
        pool.limit = runner.limit;
        report.mapped(`${at}.limit`, `pools[${pi}].limit`);
      } else report.dropped(`${at}.limit`, 'not a whole number >= 0');
    }

    // GitLab-side settings people keep in config.toml (gitlab-runner never read them there).
    for (const key of Object.keys(runner).filter((k) => GITLAB_SIDE_KEYS.has(k))) {
      if (key === 'tag_list' || key === 'run_untagged') continue;
      report.dropped(`${at}.${key}`, 'a runner setting kept in GitLab (the runner\'s settings page or API), not in config.toml');
    }
    const listed = Array.isArray(runner.tag_list) ? runner.tag_list.filter((t): t is string => typeof t === 'string') : typeof runner.tag_list === 'string' ? runner.tag_list.split(',') : undefined;
    if (listed !== undefined || typeof runner.run_untagged === 'boolean') {
      const tags = (listed ?? []).map((t) => t.trim()).filter(Boolean);
      draft.tags = { tags, runUntagged: typeof runner.run_untagged === 'boolean' ? runner.run_untagged : tags.length === 0, from: 'config.toml' };
      if (runner.tag_list !== undefined) report.mapped(`${at}.tag_list`, `pools[${pi}].tags`, 'gitlab-runner does not read it (tags live in GitLab): check it against the runner in GitLab');
      if (runner.run_untagged !== undefined) report.mapped(`${at}.run_untagged`, `pools[${pi}].runUntagged`);
    }
    const fromGitLab = options.runnerTags?.get(ri);
    if (fromGitLab) draft.tags = { ...fromGitLab, from: `GitLab (runner ${fromGitLab.id ?? '?'})` };

    // [runners.machine]
    const m = migrateMachine(machine, at, { report, warn, mark, readFile: options.readFile, pi });
    Object.assign(pool, m.knobs);
    if (m.autoscaling.length) pool.autoscaling = m.autoscaling;
    if (m.region !== undefined) {
      if (region === undefined) region = m.region;
      else if (region !== m.region) warn(`${at}.machine.MachineOptions amazonec2-region`, `region ${m.region} differs from an earlier runner's ${region}; a deployment lives in one region — migrate this runner separately`);
    }
    if (m.vpcId !== undefined) {
      if (vpcId === undefined) vpcId = m.vpcId;
      else if (vpcId !== m.vpcId) warn(`${at}.machine.MachineOptions amazonec2-vpc-id`, `VPC ${m.vpcId} differs from an earlier runner's ${vpcId}, which vpcId keeps: the stack's worker security group lives in one VPC — give this pool worker.securityGroups of its VPC`);
    }
    clampIdle(pool, `${at}.machine`, warn);
    const worker = m.worker;

    // The runner's own settings.
    const runnerBlock: Table = {};
    const ctx: CarryContext = { report, warn, secrets: draft.secrets, to: `pools[${pi}].runner` };
    const docker = isTable(runner.docker) ? runner.docker : undefined;
    if (runner.docker !== undefined && !docker) report.dropped(`${at}.docker`, 'not a table');
    if (docker) {
      const d: Table = {};
      const own: Record<string, [string, (v: unknown) => boolean]> = {
        image: ['image', (v) => typeof v === 'string' && v !== ''],
        privileged: ['privileged', (v) => typeof v === 'boolean'],
        volumes: ['volumes', (v) => Array.isArray(v) && v.every((x) => typeof x === 'string')],
        disable_cache: ['disableCache', (v) => typeof v === 'boolean'],
      };
      const skip = new Set<string>();
      for (const [key, value] of Object.entries(docker)) {
        const mine = Object.keys(own).find((k) => k === key.toLowerCase());
        if (!mine) continue;
        skip.add(mine);
        const [to, ok] = own[mine];
        if (ok(value)) {
          d[to] = value;
          report.mapped(`${at}.docker.${key}`, `pools[${pi}].worker.docker.${to}`);
        } else report.dropped(`${at}.docker.${key}`, `gitlab-runner ${RUNNER_SCHEMA_VERSION} cannot load ${JSON.stringify(value)} here`);
      }
      const dockerOut: Table = {};
      carrySection(docker, ['docker'], `${at}.docker`, dockerOut, ctx, skip);
      if (Object.keys(dockerOut).length) runnerBlock.docker = dockerOut;
      if (Object.keys(d).length) worker.docker = d;
      dockerAdvice(d, dockerOut, `${at}.docker`, warn);
    }

    if (runner.cache !== undefined) {
      if (!isTable(runner.cache)) report.dropped(`${at}.cache`, 'not a table');
      else {
        const c = migrateCache(runner.cache, `${at}.cache`, { ...ctx, keepCacheKeys: options.keepCacheKeys, pi });
        if (c.worker && Object.keys(c.worker).length) worker.cache = c.worker;
        if (c.runner) runnerBlock.cache = c.runner;
        if (c.location !== undefined) cacheLocation ??= c.location;
      }
    }

    const caFile = runner['tls-ca-file'];
    if (caFile !== undefined) {
      const pem = typeof caFile === 'string' && caFile ? options.readFile?.(caFile) : undefined;
      // The certificates only: bundles carry openssl's subject=/issuer= lines, and some a private key.
      const certs = pem?.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? [];
      if (certs.length) {
        worker.caCertificate = certs.join('\n') + '\n';
        const left = pem!.replace(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g, '').trim();
        report.mapped(
          `${at}.tls-ca-file`,
          `pools[${pi}].worker.caCertificate`,
          `the worker installs the PEM (${certs.length} certificate${certs.length > 1 ? 's' : ''}) and points tls-ca-file at it${left ? `; the file's other content (${/PRIVATE KEY/.test(left) ? 'a private key, ' : ''}text) was left out` : ''}`,
        );
      } else
        report.dropped(
          `${at}.tls-ca-file`,
          `${JSON.stringify(caFile)} ${pem === undefined ? 'cannot be read here' : 'holds no PEM certificate'}: put the PEM of the CA into worker.caCertificate (workers install it and point tls-ca-file at it)`,
        );
    }

    carryTable(runner, RUNNER_SCHEMA, [], at, runnerBlock, ctx, new Set([...RUNNER_KEYS_ELSEWHERE, ...GITLAB_SIDE_KEYS]));
    if (Object.keys(runnerBlock).length) pool.runner = runnerBlock;
    if (draft.secrets.length) pool.runnerSecrets = draft.secrets.map((s) => ({ setting: s.setting }));
    pool.worker = worker;
  });

  if (drafts.length === 0)
    throw new MigrationError(source, [
      'no [[runners]] with executor "docker+machine" and MachineDriver "amazonec2": nothing to migrate',
      ...report.entries.filter((e) => e.outcome === 'dropped' && /^runners\[\d+\]$/.test(e.at)).map((e) => `${e.at}: ${e.why}`),
    ]);

  assignTags(drafts, url, warn, mark);

  // Deployment-wide settings.
  const out: Table = {};
  const firstName = (runners.find(isTable) as Table | undefined)?.name;
  const deployment = options.deployment ?? slug(typeof firstName === 'string' && firstName ? firstName : 'gitlab-runners');
  if (!options.deployment) warn('deployment', `not in config.toml: named "${deployment}" after the first runner; choose another with --deployment NAME`);
  out.deployment = deployment;
  const r = checkRegion(region, cacheLocation);
  if (r.problem) {
    warn('MachineOptions amazonec2-region', r.problem);
    mark(['region'], ` PLACEHOLDER: config.toml said "${region}", which is not an AWS region`);
  }
  out.region = r.region;
  if (vpcId !== undefined) out.vpcId = vpcId;
  if (region === undefined) warn('MachineOptions amazonec2-region', `not set: docker-machine's default ${r.region} is written`);
  out.gitlab = { url: url ?? PLACEHOLDER_URL };
  if (url === undefined) {
    mark(['gitlab', 'url'], ' PLACEHOLDER: your GitLab URL');
    warn('runners.url', `no GitLab URL: written ${PLACEHOLDER_URL} as a PLACEHOLDER`);
  }
  if (doc.concurrent !== undefined) out.concurrent = typeof doc.concurrent === 'bigint' ? Number(doc.concurrent) : doc.concurrent;
  if (cacheLocation && cacheLocation !== r.region)
    warn('runners.cache.BucketLocation', `the cache bucket was in ${cacheLocation} and the workers will run in ${r.region}: cross-region cache traffic is slow and billed; the deployment's own cache bucket is in ${r.region}`);
  out.pools = drafts.map((d) => d.pool);

  // A value gitlab-runner accepted that this project's schema refuses (a cron it reads
  // differently, an unknown time zone such as "Local", a negative count) is dropped with the
  // schema's reason, and the rest migrates; what cannot be dropped stops the migration.
  let config: Config | undefined;
  for (let attempt = 0; !config; attempt++) {
    try {
      config = validateConfig(out, `${source} (migrated)`);
    } catch (e) {
      const problems = (e as { problems?: string[] }).problems ?? [(e as Error).message];
      if (attempt >= 50 || !problems.some((p) => dropInvalid(out, p, report)))
        throw new MigrationError(source, ['the migrated config does not validate; fix these values in config.toml (or the output) and run again:', ...problems]);
    }
  }

  // Valid is not yet deployable: each pool's settings travel in its user data (EC2's 16 KB limit).
  for (const problem of userDataProblems(config, stage)) warn('user data', `${problem}; shorten the pool's runner: scripts (or move a long one into the job image) before deploying`);
  const secrets = secretCommands(config, stage, drafts, urlCredentials);
  const yaml = renderYaml(out, warnings, secrets, report.entries, marks, source, stage);
  return { config, raw: out, yaml, warnings, secrets, report: report.entries, counts: report.counts() };
}

/** Output values a schema problem may remove: anything of a pool but what placeholders guarantee. */
const KEEP = /^pools\[\d+\](\.(name|worker|worker\.(instanceTypes|subnets|ami)))?$/;

/** Removes the value a problem (`pools[0].autoscaling[1].Timezone: unknown time zone ...`) is about; false when it cannot. */
function dropInvalid(out: Table, problem: string, report: Report): boolean {
  const sep = problem.indexOf(': ');
  if (sep < 0) return false;
  let path = problem.slice(0, sep);
  const steps = (p: string) => [...p.matchAll(/([^.[\]]+)|\[(\d+)\]/g)].map((m) => (m[2] !== undefined ? Number(m[2]) : m[1]));
  const parentOf = (p: string) => p.replace(/(\.[^.[\]]+|\[\d+\])$/, '');
  const get = (p: string) => steps(p).reduce<unknown>((v, k) => (v === undefined || v === null ? undefined : (v as Record<string | number, unknown>)[k]), out);
  // A required value that is already gone: its parent goes.
  while (get(path) === undefined && parentOf(path) !== path) path = parentOf(path);
  if (!/^pools\[\d+\]\./.test(path) || KEEP.test(path)) return false;
  const parent = get(parentOf(path));
  const last = steps(path).pop()!;
  const why = `this project's schema refuses it: ${problem.slice(sep + 2)}`;
  if (Array.isArray(parent) && typeof last === 'number') {
    // One element of a list mapped from config.toml (a docker volume validate refuses): reported
    // under that key with the value, the rest of the list stays mapped.
    const [removed] = parent.splice(last, 1);
    const source = /\.worker\.docker\.volumes\[\d+\]$/.test(path) ? report.entries.find((e) => e.to === parentOf(path) && e.outcome !== 'dropped') : undefined;
    if (source) {
      report.dropped(`${source.at} ${JSON.stringify(removed)}`, why);
      return true;
    }
  } else if (parent && typeof parent === 'object') delete (parent as Table)[last as string];
  else return false;
  const touched = report.entries.filter((e) => e.to && (e.to === path || e.to.startsWith(`${path}.`) || e.to.startsWith(`${path}[`)));
  for (const e of touched) Object.assign(e, { outcome: 'dropped', why, to: undefined });
  if (!touched.length) report.dropped(`${path} (in the output)`, why);
  return true;
}

/** Rules gitlab-runner tolerated that the schema refuses: adjust and say so. */
function clampIdle(pool: Table, where: string, warn: (at: string, m: string) => void): void {
  const limit = typeof pool.limit === 'number' ? pool.limit : 0;
  if (limit > 0 && typeof pool.IdleCount === 'number' && pool.IdleCount > limit) {
    warn(where, `IdleCount ${pool.IdleCount} can never be reached with limit ${limit}; written ${limit}`);
    pool.IdleCount = limit;
  }
  if (typeof pool.IdleScaleFactor === 'number' && pool.IdleScaleFactor > 0 && typeof pool.IdleCountMin === 'number' && pool.IdleCountMin > ((pool.IdleCount as number) ?? 0)) {
    warn(where, `IdleCountMin ${pool.IdleCountMin} is above IdleCount ${show(pool.IdleCount ?? 0)}; gitlab-runner capped it at IdleCount, written so`);
    pool.IdleCountMin = pool.IdleCount ?? 0;
  }
}

/** What a migrant should hear about the docker settings a worker now runs with. */
function dockerAdvice(mapped: Table, carried: Table, at: string, warn: (at: string, m: string) => void): void {
  if (mapped.privileged === true)
    warn(
      `${at}.privileged`,
      'kept: privileged job containers can take over the worker, including its runner token and instance role (docs/worker.md, security notes); keep privileged pools for trusted projects, or move image builds to a tagged pool of their own',
    );
  // Without privileged, validate refuses it and the report says so (lib/host-paths.ts containerBoundaryProblems).
  if (carried.network_mode === 'host' && mapped.privileged === true)
    warn(`${at}.network_mode`, 'kept: jobs on the host network can reach instance metadata (the hop limit no longer separates them), so they can use the worker role and read the runner token; keep it for trusted projects');
  const helper = typeof carried.helper_image === 'string' ? /:(?:[a-z0-9_]+-)?(v\d+\.\d+\.\d+)$/.exec(carried.helper_image) : null;
  if (helper && helper[1] !== WORKER_DEFAULTS.runnerVersion)
    warn(`${at}.helper_image`, `pins helper ${helper[1]} while workers install gitlab-runner ${WORKER_DEFAULTS.runnerVersion}: the helper should match the runner (set worker.runnerVersion: ${helper[1]}, or update the helper_image tag)`);
}

/**
 * Tags: config.toml has none (they live in GitLab). The first pool keeps untagged jobs; a later
 * one whose tags are unknown gets `PLACEHOLDER-<pool>` and a note saying how to read them. Tags
 * read from GitLab (or a tag_list in the file) are kept, within the rules the controller needs:
 * at most one pool takes untagged jobs and pools' tags do not overlap.
 */
function assignTags(drafts: PoolDraft[], url: string | undefined, warn: (at: string, m: string) => void, mark: (p: (string | number)[], c: string) => void): void {
  const owner = new Map<string, string>();
  let untaggedTaken = false;
  drafts.forEach((d, pi) => {
    const at = `runners[${d.runnerIndex}]`;
    const name = d.pool.name as string;
    const known = d.tags;
    let tags = (known?.tags ?? []).filter((t) => {
      if (TAG_RE.test(t)) return true;
      warn(`${at}.tag_list`, `tag ${JSON.stringify(t)} has characters this project does not accept in tags; dropped`);
      return false;
    });
    tags = tags.filter((t) => {
      const o = owner.get(t);
      if (o === undefined) return owner.set(t, name), true;
      warn(`${at}.tags`, `tag "${t}" is also on pool "${o}", which now serves it (a job goes to the one pool whose tags include all of its tags); give this pool tags of its own`);
      return false;
    });
    let runUntagged = known ? known.runUntagged || tags.length === 0 : pi === 0;
    if (runUntagged && untaggedTaken) {
      runUntagged = false;
      if (known) warn(`${at}.run_untagged`, 'an earlier pool already takes untagged jobs; only one pool may');
    }
    if (runUntagged) untaggedTaken = true;
    if (tags.length === 0 && !runUntagged) {
      tags = [`${PLACEHOLDER_TAG}-${name}`];
      mark(['pools', pi, 'tags', 0], ' PLACEHOLDER: this runner\'s tags in GitLab');
      const id = typeof d.runner.id === 'number' ? d.runner.id : typeof d.runner.id === 'bigint' ? Number(d.runner.id) : undefined;
      const base = url ?? '<GitLab URL>';
      warn(
        `${at}.tags`,
        `config.toml has no job tags (they live in GitLab): written ${tags[0]} as a PLACEHOLDER. Read them: ${
          id !== undefined
            ? `curl -s --header "PRIVATE-TOKEN: $GITLAB_TOKEN" "${base}/api/v4/runners/${id}" | jq '.tag_list, .run_untagged'`
            : `find the runner's id (GET ${base}/api/v4/runners/all, the runner named "${typeof d.runner.name === 'string' ? d.runner.name : name}"), then GET ${base}/api/v4/runners/:id and use its tag_list`
        } — or rerun migrate with --tags-from-gitlab and a GITLAB_TOKEN (read_api)`,
      );
    }
    d.pool.tags = tags;
    d.pool.runUntagged = runUntagged;
    if (!known && pi === 0 && drafts.length > 1)
      warn(`${at}.tags`, 'config.toml has no job tags: this first pool takes untagged jobs (runUntagged: true); give it its GitLab tags too, or rerun with --tags-from-gitlab');
  });
}

/** The SSM parameters to create, with commands that hold placeholders, never values. */
function secretCommands(config: Config, stage: string, drafts: PoolDraft[], urlCredentials: boolean): SecretToStore[] {
  const names = parameterNames(config, stage);
  const regionFlag = config.region ? ` --region ${config.region}` : '';
  const put = (parameter: string, value: string) => `aws ssm put-parameter${regionFlag} --type SecureString --name ${shellQuote(parameter)} --value ${value}`;
  const out: SecretToStore[] = [];
  drafts.forEach((d, i) => {
    const pool = config.pools[i];
    if (d.hadToken)
      out.push({
        parameter: names.runnerToken(pool),
        what: `runner authentication token of pool ${pool.name} (glrt-..., from GitLab: create a runner with the pool's tags)`,
        command: put(names.runnerToken(pool), "'<glrt-RUNNER-AUTHENTICATION-TOKEN>'"),
      });
    for (const s of d.secrets) {
      const entry = pool.runnerSecrets.find((r) => r.setting === s.setting)!;
      const parameter = names.runnerSecret(pool, entry);
      out.push({
        parameter,
        what: `job secret ${s.setting} of pool ${pool.name} (${s.hint} in config.toml)`,
        command: put(parameter, s.multiline ? `file://${s.setting.replace(/\W+/g, '-')}.txt` : `'<${s.setting.replace(/^environment\./, '')} from config.toml>'`),
      });
    }
  });
  out.push(
    {
      parameter: names.webhookSecret,
      what: 'webhook secret token (a random string you also paste into the GitLab webhook\'s "Secret token")',
      command: put(names.webhookSecret, '"$(openssl rand -hex 32)"'),
    },
    {
      parameter: names.gitlabApiToken,
      what: 'GitLab API token with read_api scope (routes jobs by their tags and confirms pending jobs)',
      command: put(names.gitlabApiToken, "'<glpat-READ-API-TOKEN>'"),
    },
  );
  if (urlCredentials)
    out.push({
      parameter: `${names.base}/secrets/gitlab-url-credentials`,
      what: 'credentials that were in the GitLab URL (user:password); kept out of the config, not used by the deployment',
      command: put(`${names.base}/secrets/gitlab-url-credentials`, "'<USER:PASSWORD>'"),
    });
  return out;
}

function renderYaml(
  raw: Table,
  warnings: MigrationWarning[],
  secrets: SecretToStore[],
  entries: ReportEntry[],
  marks: { path: (string | number)[]; comment: string }[],
  source: string,
  stage: string,
): string {
  const doc = new Document(raw);
  const attention = entries.filter((e) => e.outcome === 'replaced' || e.outcome === 'dropped');
  const header = [
    ` Migrated from ${source} by \`gitlab-spot-autoscaler migrate\`.`,
    ' Check every line marked PLACEHOLDER before deploying; `gitlab-spot-autoscaler validate --config FILE` checks the file',
    ' (and lists what is still a PLACEHOLDER); `gitlab-spot-autoscaler worker-config --config FILE --pool NAME',
    // worker-config's --stage defaults to Serverless' "dev"; the SSM names above are for this stage.
    ` --stage ${stage}\` prints the config.toml a worker runs with.`,
    '',
    ` Secrets are not in this file. Store them in SSM Parameter Store (stage "${stage}"):`,
    ...secrets.flatMap((s) => [`   ${s.what}:`, `     ${s.command}`]),
    '',
    ` Report: ${formatReport(entries)[0]}`,
    ...formatReport(attention, '   ').slice(1),
  ];
  if (warnings.length) header.push('', ' Notes:', ...warnings.map((w) => `   - ${w.at}: ${w.message}`));
  doc.commentBefore = header.map((l) => l.replace(/\n/g, ' ')).join('\n');
  for (const m of marks) {
    const node = doc.getIn(m.path, true) as { comment?: string } | undefined;
    if (node && typeof node === 'object') node.comment = m.comment;
  }
  return doc.toString({ lineWidth: 0 });
}

export { looksSecretValue };
