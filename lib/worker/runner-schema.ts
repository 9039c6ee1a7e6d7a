/**
 * gitlab-runner's own `[[runners]]` settings, as its pinned release (RUNNER_SCHEMA_VERSION, the
 * version workers install: WORKER_DEFAULTS.runnerVersion) reads them from config.toml: key names,
 * the TOML types its loader accepts, and what each one means on a worker that runs
 * `gitlab-runner run-single` with the docker executor.
 *
 * Written from gitlab-runner's `common/config.go`, `helpers/docker/credentials.go`,
 * `referees/metrics.go` and `common/config/runner/monitoring.go` at that tag (read, not copied).
 * Its loader (`Config.LoadConfig`: BurntSushi/toml `DecodeFile`) matches keys exactly first, then
 * case-insensitively, ignores keys it does not know, and fails on a value of the wrong TOML type
 * (an integer where a string is expected, a float where an integer is).
 *
 * Each key has a role:
 *  - carried: written into the worker's config.toml as given (the default);
 *  - project: this project writes it from one of its own settings (`instead` names which);
 *  - refused: it belongs to the runner manager, another executor, or would break the worker
 *    (`why` says which, `instead` what to do).
 * Pure data and functions: no I/O.
 */

export const RUNNER_SCHEMA_VERSION = 'v18.3.1';

export type Scalar = 'string' | 'int' | 'bool' | 'float' | 'duration' | 'datetime';
/** strings: []string; stringOrStrings: gitlab-runner's StringOrArray (a string or a list); map*: TOML tables of string keys. */
export type Collection = 'strings' | 'stringOrStrings' | 'mapString' | 'mapBool' | 'mapStrings';

export interface Field {
  type: Scalar | Collection | Schema | [Schema];
  /** Accepted values (compared case-sensitively unless `enumIgnoreCase`). */
  enum?: readonly string[];
  enumIgnoreCase?: boolean;
  role?: 'project' | 'refused';
  why?: string;
  instead?: string;
}
export type Schema = Record<string, Field>;

const f = (type: Field['type'], extra: Omit<Field, 'type'> = {}): Field => ({ type, ...extra });
const S = f('string');
const I = f('int');
const B = f('bool');
const L = f('strings');
const M = f('mapString');
const refused = (type: Field['type'], why: string, instead?: string): Field => ({ type, role: 'refused', why, instead });
const project = (type: Field['type'], instead: string): Field => ({ type, role: 'project', instead });

export const PULL_POLICIES = ['always', 'never', 'if-not-present'] as const;

const DOCKER: Schema = {
  host: refused('string', 'the worker runs jobs on its own local docker daemon', 'nothing: the worker uses /var/run/docker.sock'),
  tls_cert_path: refused('string', 'docker+machine pointed the manager at each machine\'s remote daemon; the worker uses its local one'),
  tls_verify: refused('bool', 'docker+machine pointed the manager at each machine\'s remote daemon; the worker uses its local one'),
  hostname: S,
  image: project('string', 'worker.docker.image'),
  runtime: S,
  memory: S,
  memory_swap: S,
  memory_reservation: S,
  cgroup_parent: S,
  cpuset_cpus: S,
  cpuset_mems: S,
  cpus: S,
  cpu_shares: I,
  dns: L,
  dns_search: L,
  privileged: project('bool', 'worker.docker.privileged'),
  services_privileged: B,
  disable_entrypoint_overwrite: B,
  user: S,
  allowed_users: L,
  group_add: L,
  userns_mode: S,
  cap_add: L,
  cap_drop: L,
  oom_kill_disable: B,
  oom_score_adjust: I,
  security_opt: L,
  services_security_opt: L,
  devices: L,
  device_cgroup_rules: L,
  gpus: S,
  services_devices: f('mapStrings'),
  disable_cache: project('bool', 'worker.docker.disableCache'),
  volumes: project('strings', 'worker.docker.volumes'),
  volume_driver: S,
  volume_driver_ops: M,
  cache_dir: S,
  extra_hosts: L,
  volumes_from: L,
  network_mode: S,
  ipcmode: S,
  mac_address: S,
  links: L,
  services: f([{ name: S, alias: S, command: L, entrypoint: L, environment: L }]),
  services_limit: I,
  service_memory: S,
  service_memory_swap: S,
  service_memory_reservation: S,
  service_cgroup_parent: S,
  service_cpuset_cpus: S,
  service_cpus: S,
  service_cpu_shares: I,
  service_gpus: S,
  wait_for_services_timeout: I,
  allowed_images: L,
  allowed_privileged_images: L,
  allowed_privileged_services: L,
  allowed_pull_policies: f('strings', { enum: PULL_POLICIES }),
  allowed_services: L,
  pull_policy: f('stringOrStrings', { enum: PULL_POLICIES }),
  isolation: S,
  shm_size: I,
  tmpfs: M,
  services_tmpfs: M,
  sysctls: M,
  helper_image: S,
  helper_image_flavor: S,
  container_labels: M,
  enable_ipv6: B,
  ulimit: M,
  network_mtu: I,
};

export const CACHE_TYPES = ['s3', 's3v2', 'gcs', 'gcsv2', 'azure'] as const;

const CACHE: Schema = {
  Type: f('string', { enum: CACHE_TYPES }),
  Path: S,
  Shared: B,
  MaxUploadedArchiveSize: I,
  s3: f({
    ServerAddress: S,
    AccessKey: S,
    SecretKey: S,
    SessionToken: S,
    BucketName: S,
    BucketLocation: S,
    Insecure: B,
    AuthenticationType: f('string', { enum: ['iam', 'access-key'], enumIgnoreCase: true }),
    ServerSideEncryption: f('string', { enum: ['', 'S3', 'AES256', 'KMS', 'AWS:KMS', 'DSSE-KMS', 'AWS:KMS:DSSE'], enumIgnoreCase: true }),
    ServerSideEncryptionKeyID: S,
    DualStack: B,
    PathStyle: B,
    Accelerate: B,
    RoleARN: S,
    UploadRoleARN: S,
  }),
  gcs: f({
    AccessID: S,
    PrivateKey: S,
    CredentialsFile: refused('string', 'a file on the runner manager host, which workers do not have', 'set AccessID, and PrivateKey as a secret (runnerSecrets: cache.gcs.PrivateKey)'),
    BucketName: S,
  }),
  azure: f({ AccountName: S, AccountKey: S, ContainerName: S, StorageDomain: S }),
};

const OTHER_EXECUTOR = (what: string) => refused('string', `${what} settings; workers run the docker executor`);
const OLD_REGISTRATION = 'belongs to the old registration on the runner manager';

/** A `[[runners]]` entry (RunnerConfig, RunnerCredentials and RunnerSettings at the pinned release). */
export const RUNNER_SCHEMA: Schema = {
  name: project('string', 'the pool name: the worker\'s runner is named <deployment>-<stage>-<pool>'),
  limit: project('int', 'the pool\'s limit'),
  output_limit: I,
  request_concurrency: refused('int', 'each worker takes one job at a time with run-single, which does not read it'),
  unhealthy_requests_limit: refused('int', 'run-single does not read it; a worker whose requests GitLab keeps refusing leaves after bootTimeout'),
  unhealthy_interval: refused('duration', 'run-single does not read it; a worker whose requests GitLab keeps refusing leaves after bootTimeout'),
  job_status_final_update_retry_limit: I,
  url: project('string', 'gitlab.url'),
  id: refused('int', OLD_REGISTRATION),
  token: project('string', 'the pool\'s runner token in SSM (runnerTokenParameter)'),
  token_obtained_at: refused('datetime', OLD_REGISTRATION),
  token_expires_at: refused('datetime', OLD_REGISTRATION),
  'tls-ca-file': project('string', 'worker.caCertificate (the PEM itself: the worker writes it and points tls-ca-file at it)'),
  'tls-cert-file': refused('string', 'a client certificate file on the runner manager host; workers do not authenticate to GitLab with client certificates'),
  'tls-key-file': refused('string', 'a client key file on the runner manager host; workers do not authenticate to GitLab with client certificates'),
  executor: project('string', 'nothing: workers always run the docker executor'),
  builds_dir: S,
  cache_dir: S,
  clone_url: S,
  environment: L,
  proxy_exec: B,
  pre_get_sources_script: S,
  post_get_sources_script: S,
  pre_build_script: S,
  post_build_script: S,
  debug_trace_disabled: B,
  safe_directory_checkout: B,
  clean_git_config: B,
  // cmd and powershell are Windows shells; workers are Linux.
  shell: f('string', { enum: ['bash', 'sh', 'pwsh', ''] }),
  custom_build_dir: f({ enabled: B }),
  referees: f({ metrics: f({ prometheus_address: S, query_interval: I, queries: L }) }),
  cache: f(CACHE),
  feature_flags: f('mapBool'),
  monitoring: refused({}, 'job queuing metrics of the runner manager\'s metrics server; workers expose none (the controller publishes CloudWatch metrics)'),
  instance: OTHER_EXECUTOR('instance executor'),
  ssh: OTHER_EXECUTOR('ssh executor'),
  docker: f(DOCKER),
  parallels: OTHER_EXECUTOR('parallels executor'),
  virtualbox: OTHER_EXECUTOR('virtualbox executor'),
  machine: refused({}, 'docker+machine autoscaling', 'the pool\'s own IdleCount, IdleTime, MaxBuilds, autoscaling ... (migrate maps them)'),
  kubernetes: OTHER_EXECUTOR('kubernetes executor'),
  custom: OTHER_EXECUTOR('custom executor'),
  autoscaler: OTHER_EXECUTOR('docker-autoscaler / instance executor (fleeting)'),
  step_runner_image: S,
};

/** Feature flags gitlab-runner knows at that release (helpers/featureflags/flags.go); it ignores others. */
export const FEATURE_FLAGS: ReadonlySet<string> = new Set([
  'FF_NETWORK_PER_BUILD', 'FF_USE_LEGACY_KUBERNETES_EXECUTION_STRATEGY', 'FF_USE_DIRECT_DOWNLOAD',
  'FF_SKIP_NOOP_BUILD_STAGES', 'FF_USE_FASTZIP', 'FF_DISABLE_UMASK_FOR_DOCKER_EXECUTOR',
  'FF_ENABLE_BASH_EXIT_CODE_CHECK', 'FF_USE_WINDOWS_LEGACY_PROCESS_STRATEGY',
  'FF_USE_NEW_BASH_EVAL_STRATEGY', 'FF_USE_POWERSHELL_PATH_RESOLVER',
  'FF_USE_DYNAMIC_TRACE_FORCE_SEND_INTERVAL', 'FF_SCRIPT_SECTIONS', 'FF_ENABLE_JOB_CLEANUP',
  'FF_KUBERNETES_HONOR_ENTRYPOINT', 'FF_POSIXLY_CORRECT_ESCAPES', 'FF_RESOLVE_FULL_TLS_CHAIN',
  'FF_DISABLE_POWERSHELL_STDIN', 'FF_USE_POD_ACTIVE_DEADLINE_SECONDS',
  'FF_USE_ADVANCED_POD_SPEC_CONFIGURATION', 'FF_SET_PERMISSIONS_BEFORE_CLEANUP',
  'FF_SECRET_RESOLVING_FAILS_IF_MISSING', 'FF_PRINT_POD_EVENTS', 'FF_USE_GIT_BUNDLE_URIS',
  'FF_USE_GIT_NATIVE_CLONE', 'FF_USE_DUMB_INIT_WITH_KUBERNETES_EXECUTOR', 'FF_USE_INIT_WITH_DOCKER_EXECUTOR',
  'FF_LOG_IMAGES_CONFIGURED_FOR_JOB', 'FF_USE_DOCKER_AUTOSCALER_DIAL_STDIO',
  'FF_CLEAN_UP_FAILED_CACHE_EXTRACT', 'FF_USE_WINDOWS_JOB_OBJECT', 'FF_TIMESTAMPS',
  'FF_DISABLE_AUTOMATIC_TOKEN_ROTATION', 'FF_USE_LEGACY_GCS_CACHE_ADAPTER',
  'FF_DISABLE_UMASK_FOR_KUBERNETES_EXECUTOR', 'FF_GIT_URLS_WITHOUT_TOKENS',
  'FF_WAIT_FOR_POD_TO_BE_REACHABLE', 'FF_USE_NATIVE_STEPS', 'FF_MASK_ALL_DEFAULT_TOKENS',
  'FF_EXPORT_HIGH_CARDINALITY_METRICS', 'FF_USE_FLEETING_ACQUIRE_HEARTBEATS',
  'FF_USE_EXPONENTIAL_BACKOFF_STAGE_RETRY', 'FF_USE_ADAPTIVE_REQUEST_CONCURRENCY',
  'FF_USE_GITALY_CORRELATION_ID',
]);

/**
 * Keys gitlab-runner no longer reads but older configs still carry, and what replaced them. The
 * loader ignores unknown keys, so a config with them loads, and the setting silently does nothing.
 */
export const RENAMED_KEYS: Record<string, string> = {
  pre_clone_script: 'pre_get_sources_script',
  post_clone_script: 'post_get_sources_script', // read by gitlab-runner 14.x-16.x
};

/** map[key] for a key read from a user's file: "constructor" or "__proto__" is nobody's entry, not Object's. */
export function own<T>(map: Readonly<Record<string, T>>, key: string): T | undefined {
  return Object.prototype.hasOwnProperty.call(map, key) ? map[key] : undefined;
}

export function fieldAt(path: readonly string[]): Field | undefined {
  let schema: Schema | undefined = RUNNER_SCHEMA;
  let field: Field | undefined;
  for (const key of path) {
    if (!schema) return undefined;
    field = schema[key];
    if (!field) return undefined;
    schema = isSchema(field.type) ? field.type : undefined;
  }
  return field;
}

export function isSchema(t: Field['type']): t is Schema {
  return typeof t === 'object' && !Array.isArray(t);
}

/** gitlab-runner's loader: an exact key match first, then a case-insensitive one. */
export function canonicalKey(schema: Schema, key: string): string | undefined {
  if (Object.prototype.hasOwnProperty.call(schema, key)) return key;
  const lower = key.toLowerCase();
  return Object.keys(schema).find((k) => k.toLowerCase() === lower);
}

type Table = Record<string, unknown>;
const isTable = (x: unknown): x is Table => typeof x === 'object' && x !== null && !Array.isArray(x) && !(x instanceof Date);
/** smol-toml gives TOML date-times as Date objects. */
const isDate = (x: unknown): x is Date => x instanceof Date;
const isInt = (x: unknown) => (typeof x === 'number' && Number.isInteger(x)) || typeof x === 'bigint';

function describe(v: unknown): string {
  if (Array.isArray(v)) return 'a list';
  if (isDate(v)) return 'a date-time';
  if (isTable(v)) return 'a table';
  if (typeof v === 'number') return Number.isInteger(v) ? 'an integer' : 'a float';
  if (typeof v === 'bigint') return 'an integer';
  return `a ${typeof v}`;
}

const TYPE_NAMES: Record<Scalar | Collection, string> = {
  string: 'a string',
  int: 'an integer',
  bool: 'true or false',
  float: 'a number',
  duration: 'a duration such as "1h30m"',
  datetime: 'a date-time',
  strings: 'a list of strings',
  stringOrStrings: 'a string or a list of strings',
  mapString: 'a table of strings',
  mapBool: 'a table of true/false values',
  mapStrings: 'a table of string lists',
};

const GO_DURATION = /^[-+]?((\d+(\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h))+$|^0$/;

function enumProblem(field: Field, v: string): string | undefined {
  if (!field.enum) return undefined;
  const ok = field.enumIgnoreCase ? field.enum.some((e) => e.toLowerCase() === v.toLowerCase()) : field.enum.includes(v);
  return ok ? undefined : `${JSON.stringify(v)} is not accepted (gitlab-runner accepts ${field.enum.filter(Boolean).map((e) => JSON.stringify(e)).join(', ')})`;
}

/** Why `value` cannot be loaded into `field` by gitlab-runner, or undefined when it can. Tables are not descended into. */
export function typeProblem(field: Field, value: unknown): string | undefined {
  const t = field.type;
  const expected = (name: string) => `expected ${name}, got ${describe(value)}`;
  if (Array.isArray(t)) {
    if (!Array.isArray(value) || !value.every(isTable)) return expected('a list of tables ([[...]])');
    return undefined;
  }
  if (isSchema(t)) return isTable(value) ? undefined : expected('a table');
  switch (t) {
    case 'string':
      if (typeof value !== 'string') return expected(TYPE_NAMES[t]);
      return enumProblem(field, value);
    case 'int':
      return isInt(value) ? undefined : expected(TYPE_NAMES[t]);
    case 'float':
      return typeof value === 'number' || typeof value === 'bigint' ? undefined : expected(TYPE_NAMES[t]);
    case 'bool':
      return typeof value === 'boolean' ? undefined : expected(TYPE_NAMES[t]);
    case 'datetime':
      return isDate(value) || (typeof value === 'string' && !Number.isNaN(Date.parse(value))) ? undefined : expected(TYPE_NAMES[t]);
    case 'duration':
      // BurntSushi/toml decodes a time.Duration from a Go duration string or an integer of nanoseconds.
      if (isInt(value)) return undefined;
      return typeof value === 'string' && GO_DURATION.test(value) ? undefined : expected(TYPE_NAMES[t]);
    case 'strings':
    case 'stringOrStrings': {
      const list = t === 'stringOrStrings' && typeof value === 'string' ? [value] : value;
      if (!Array.isArray(list) || !list.every((x) => typeof x === 'string')) return expected(TYPE_NAMES[t]);
      for (const x of list as string[]) {
        const p = enumProblem(field, x);
        if (p) return p;
      }
      return undefined;
    }
    case 'mapString':
    case 'mapBool':
    case 'mapStrings': {
      if (!isTable(value)) return expected(TYPE_NAMES[t]);
      const ok = (x: unknown) => (t === 'mapString' ? typeof x === 'string' : t === 'mapBool' ? typeof x === 'boolean' : Array.isArray(x) && x.every((y) => typeof y === 'string'));
      const bad = Object.entries(value).find(([, x]) => !ok(x));
      const each = t === 'mapString' ? 'a string' : t === 'mapBool' ? 'true or false' : 'a list of strings';
      return bad ? `${JSON.stringify(bad[0])}: expected ${each}, got ${describe(bad[1])}` : undefined;
    }
  }
}

export interface RunnerSettingIssue {
  /** Path inside the [[runners]] entry, e.g. ["docker", "shm_size"]. */
  path: string[];
  kind: 'unknown' | 'spelling' | 'type' | 'project' | 'refused' | 'renamed';
  message: string;
  /** The key gitlab-runner reads, when `kind` is spelling or renamed. */
  canonical?: string;
}

function suggestion(schema: Schema, key: string): string {
  const norm = (s: string) => s.toLowerCase().replace(/[-_]/g, '');
  const close = Object.keys(schema).filter((k) => norm(k) === norm(key) || (norm(k).includes(norm(key)) && key.length > 3));
  return close.length ? ` (did you mean ${close.map((k) => JSON.stringify(k)).join(' or ')}?)` : '';
}

/**
 * Walks a `[[runners]]` table against the schema and lists every key that gitlab-runner would not
 * load as written, or that has no place in a pool's carried settings. `visit` sees every carried
 * leaf (and every table) with its canonical path, for callers that copy or count.
 */
export function checkRunnerTable(
  value: Table,
  schema: Schema = RUNNER_SCHEMA,
  at: string[] = [],
  issues: RunnerSettingIssue[] = [],
  roles = true,
): RunnerSettingIssue[] {
  for (const [key, v] of Object.entries(value)) {
    const canonical = canonicalKey(schema, key);
    const path = [...at, key];
    if (!canonical) {
      const renamed = at.length === 0 ? own(RENAMED_KEYS, key) : undefined;
      if (renamed)
        issues.push({ path, kind: 'renamed', canonical: renamed, message: `gitlab-runner ${RUNNER_SCHEMA_VERSION} no longer reads "${key}" (it ignores it); its replacement is "${renamed}"` });
      else issues.push({ path, kind: 'unknown', message: `not a gitlab-runner ${RUNNER_SCHEMA_VERSION} setting${suggestion(schema, key)}; gitlab-runner ignores it` });
      continue;
    }
    const field = schema[canonical];
    if (canonical !== key) issues.push({ path, kind: 'spelling', canonical, message: `gitlab-runner reads "${key}" as "${canonical}" (keys match case-insensitively); write "${canonical}"` });
    if (roles && (field.role === 'project' || field.role === 'refused')) {
      issues.push({
        path: [...at, canonical],
        kind: field.role,
        message: field.role === 'project' ? `set by this project from ${field.instead}` : `${field.why}${field.instead ? `; instead: ${field.instead}` : ''}`,
      });
      continue;
    }
    const problem = typeProblem(field, v);
    if (problem) {
      issues.push({ path: [...at, canonical], kind: 'type', message: `gitlab-runner ${RUNNER_SCHEMA_VERSION} cannot load it: ${problem}` });
      continue;
    }
    if (isSchema(field.type)) checkRunnerTable(v as Table, field.type, [...at, canonical], issues, roles);
    else if (Array.isArray(field.type)) (v as Table[]).forEach((item, i) => checkRunnerTable(item, field.type[0] as Schema, [...at, canonical, String(i)], issues, roles));
  }
  return issues;
}

/**
 * What gitlab-runner's loader would make of a whole config.toml written for a worker: every key
 * known (in its spelling) and of a type it loads, `concurrent` an integer, one [[runners]] entry
 * with url, token and executor. The stand-in for running `gitlab-runner` itself, which these
 * machines cannot install (docs/migration.md, "How this is tested").
 */
export function workerConfigProblems(doc: Table): string[] {
  const problems: string[] = [];
  for (const key of Object.keys(doc)) if (key !== 'concurrent' && key !== 'runners') problems.push(`${key}: not expected in a worker's config.toml`);
  if (!isInt(doc.concurrent)) problems.push('concurrent: expected an integer');
  const runners = doc.runners;
  if (!Array.isArray(runners) || runners.length !== 1 || !isTable(runners[0])) return [...problems, 'runners: expected one [[runners]] table'];
  const r = runners[0];
  for (const key of ['name', 'url', 'token', 'executor']) if (typeof r[key] !== 'string' || r[key] === '') problems.push(`runners[0].${key}: required`);
  for (const issue of checkRunnerTable(r, RUNNER_SCHEMA, [], [], false)) problems.push(`runners[0].${dotted(issue.path)}: ${issue.message}`);
  return problems;
}

/** Dotted path for messages: docker.services[0].name. */
export function dotted(path: readonly string[]): string {
  return path.reduce((acc, p) => (/^\d+$/.test(p) ? `${acc}[${p}]` : acc ? `${acc}.${p}` : p), '');
}

/**
 * Settings a pool may take from SSM instead of its config (runnerSecrets): any carried string
 * setting (`cache.s3.SecretKey`, `pre_build_script`, ...) or one variable of `environment`
 * (`environment.DOCKER_AUTH_CONFIG`). Returns why not, or undefined.
 */
export function secretSettingProblem(setting: string): string | undefined {
  const env = /^environment\.([A-Za-z_][A-Za-z0-9_]*)$/.exec(setting);
  if (env) return undefined;
  if (setting.startsWith('environment.')) return 'an environment variable name is letters, digits and _ (not starting with a digit)';
  const path = setting.split('.');
  const field = fieldAt(path);
  if (!field) return `not a gitlab-runner ${RUNNER_SCHEMA_VERSION} setting (accepted: environment.NAME, or a string setting such as cache.s3.SecretKey, pre_build_script)`;
  if (field.role) return `not a carried setting: ${field.role === 'project' ? `set by this project from ${field.instead}` : field.why}`;
  if (field.type !== 'string') return `only string settings and environment variables can come from SSM; ${setting} is ${TYPE_NAMES[field.type as Scalar] ?? 'a table'}`;
  return undefined;
}
