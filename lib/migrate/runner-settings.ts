/**
 * A docker+machine `[[runners]]` entry's own gitlab-runner settings -> a pool's `runner:` block
 * (carried verbatim into the worker's config.toml), `worker.docker` / `worker.cache` (mapped), and
 * `runnerSecrets` (what looks secret, read from SSM by the worker). Every key gets a report entry.
 */
import { canonicalKey, dotted, FEATURE_FLAGS, fieldAt, isSchema, own, RENAMED_KEYS, RUNNER_SCHEMA, RUNNER_SCHEMA_VERSION, typeProblem, type Field, type Schema } from '../worker/runner-schema';
import type { Report } from './report';
import { isSecretEnvEntry, looksSecretList, looksSecretValue } from './secrets';

type Table = Record<string, unknown>;
export const isTable = (x: unknown): x is Table => typeof x === 'object' && x !== null && !Array.isArray(x) && !(x instanceof Date);

/** A value for a message: strings as they are, anything else as JSON (TOML tables have no prototype, so String() throws on them). */
export function show(v: unknown): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'bigint') return v.toString();
  try {
    return JSON.stringify(v) ?? typeof v;
  } catch {
    return typeof v;
  }
}

/** A setting whose value the worker reads from SSM; `hint` says where the value is in config.toml. */
export interface JobSecret {
  setting: string;
  hint: string;
  multiline: boolean;
}

export interface CarryContext {
  report: Report;
  /** Notes that are advice rather than a key's outcome. */
  warn: (at: string, message: string) => void;
  secrets: JobSecret[];
  /** Output path prefix in the YAML, for the report: pools[0].runner. */
  to: string;
}

/** Cache credentials: secrets whatever they look like. */
const ALWAYS_SECRET = new Set(['cache.s3.AccessKey', 'cache.s3.SecretKey', 'cache.s3.SessionToken', 'cache.gcs.PrivateKey', 'cache.azure.AccountKey']);

/** Keys of [[runners]] handled by migrate.ts itself (the pool, GitLab, the machine). */
export const RUNNER_KEYS_ELSEWHERE = new Set(['name', 'url', 'token', 'executor', 'limit', 'machine', 'docker', 'cache', 'tls-ca-file']);

/** Keys people put in config.toml that are GitLab-side runner settings; gitlab-runner never read them there. */
export const GITLAB_SIDE_KEYS = new Set(['tag_list', 'run_untagged', 'locked', 'access_level', 'maximum_timeout', 'paused', 'description', 'protected', 'maintenance_note']);

/** Carries every key of `input` (a [[runners]] table or a subsection) that gitlab-runner reads and a worker can use. */
export function carryTable(input: Table, schema: Schema, inPath: string[], atPrefix: string, out: Table, ctx: CarryContext, skip: Set<string> = new Set()): void {
  for (const [key, value] of Object.entries(input)) {
    let canonical = canonicalKey(schema, key);
    if (skip.has(canonical ?? key)) continue;
    const at = `${atPrefix}.${key}`;
    let field = canonical ? schema[canonical] : undefined;
    const renamedTo = inPath.length === 0 ? own(RENAMED_KEYS, key) : undefined;
    if (!canonical && renamedTo) {
      const renamed = renamedTo;
      if (input[renamed] !== undefined) {
        ctx.report.dropped(at, `gitlab-runner ${RUNNER_SCHEMA_VERSION} no longer reads it and ${renamed} is set too`);
        continue;
      }
      canonical = renamed;
      field = schema[renamed];
      ctx.warn(at, `gitlab-runner ${RUNNER_SCHEMA_VERSION} no longer reads ${key} (it silently did nothing); written as ${renamed}, its replacement`);
    }
    if (!canonical || !field) {
      ctx.report.dropped(at, `not a gitlab-runner ${RUNNER_SCHEMA_VERSION} setting (gitlab-runner ignores it too)`);
      continue;
    }
    const renamed = own(RENAMED_KEYS, key) === canonical;
    carryValue(value, field, [...inPath, canonical], at, out, ctx, canonical !== key && !renamed ? `gitlab-runner read "${key}" as "${canonical}"` : undefined, renamed ? 'mapped' : 'carried');
  }
}

function carryValue(value: unknown, field: Field, path: string[], at: string, out: Table, ctx: CarryContext, note?: string, outcome: 'carried' | 'mapped' = 'carried'): void {
  const key = path[path.length - 1];
  const to = `${ctx.to}.${dotted(path)}`;
  if (field.role === 'refused') {
    ctx.report.dropped(at, `${field.why}${field.instead ? `; instead: ${field.instead}` : ''}`);
    return;
  }
  if (field.role === 'project') {
    ctx.report.dropped(at, `set by this project from ${field.instead}`);
    return;
  }
  if (typeof value === 'bigint') {
    ctx.report.dropped(at, `${value} is too large to carry exactly; set it by hand`);
    return;
  }
  if (Array.isArray(field.type) && Array.isArray(value) && value.length && value.every((x) => typeof x === 'string') && dotted(path) === 'docker.services') {
    // Before gitlab-runner 13.0 services were image names; 13.0 made them [[runners.docker.services]]
    // tables, and today's loader refuses the old list (the whole file).
    out[key] = (value as string[]).map((name) => ({ name }));
    ctx.report.mapped(at, to, 'a list of image names (gitlab-runner before 13.0): written as [[runners.docker.services]] tables with those names');
    return;
  }
  const problem = typeProblem(field, value);
  if (problem) {
    ctx.report.dropped(at, `gitlab-runner ${RUNNER_SCHEMA_VERSION} cannot load it (it would refuse the whole file): ${problem}`);
    return;
  }
  if (isSchema(field.type)) {
    const sub: Table = {};
    carryTable(value as Table, field.type, path, at, sub, ctx);
    if (Object.keys(value as Table).length === 0) ctx.report.carried(at, to, 'an empty table');
    if (Object.keys(sub).length || Object.keys(value as Table).length === 0) out[key] = sub;
    return;
  }
  if (Array.isArray(field.type)) {
    const itemSchema = field.type[0];
    out[key] = (value as Table[]).map((item, i) => {
      const sub: Table = {};
      carryTable(item, itemSchema, [...path, String(i)], `${at}[${i}]`, sub, ctx);
      return sub;
    });
    return;
  }
  if (key === 'environment' && Array.isArray(value)) {
    const kept: string[] = [];
    for (const entry of value as string[]) {
      const name = entry.split('=')[0];
      if (isSecretEnvEntry(entry) && /^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
        // A job's variables reach its services too, so a secret of a service's environment is a runner-wide one.
        const setting = `environment.${name}`;
        if (!ctx.secrets.some((s) => s.setting === setting)) ctx.secrets.push({ setting, hint: `the value of ${name} in ${at}`, multiline: entry.includes('\n') });
        ctx.report.replaced(`${at} ${name}`, `runnerSecrets ${setting}`, 'a secret: the worker reads it from SSM at boot; never in the config or the user data');
      } else if (isSecretEnvEntry(entry)) {
        ctx.report.dropped(`${at} (an entry)`, 'looks like a secret but is not NAME=VALUE; set it as a CI/CD variable in GitLab');
      } else kept.push(entry);
    }
    if (kept.length || value.length === 0) {
      out[key] = kept;
      ctx.report.carried(at, to, kept.length < value.length ? `${kept.length} of ${value.length} entries; the others are secrets` : note);
    }
    return;
  }
  // A list (a service's command: ["redis-server", "--requirepass", "..."]) or a table of strings
  // (volume_driver_ops) cannot be an SSM reference: a secret in it is not copied.
  if (secretInCollection(value)) {
    ctx.report.dropped(at, 'holds what looks like a secret, and only a string setting or an environment variable can come from SSM: put the secret in a masked CI/CD variable in GitLab and use it from .gitlab-ci.yml');
    return;
  }
  if (typeof value === 'string' && value !== '' && (ALWAYS_SECRET.has(dotted(path)) || looksSecretValue(value))) {
    const setting = dotted(path);
    if (/\[\d+\]/.test(setting)) {
      ctx.report.dropped(at, 'looks like a secret and has no SSM equivalent here; set it as a CI/CD variable in GitLab');
      return;
    }
    ctx.secrets.push({ setting, hint: `${at}`, multiline: value.includes('\n') });
    ctx.report.replaced(at, `runnerSecrets ${setting}`, 'holds what looks like a secret: the worker reads the whole value from SSM at boot');
    return;
  }
  out[key] = value;
  if (dotted(path) === 'feature_flags')
    for (const flag of Object.keys(value as Table))
      if (!FEATURE_FLAGS.has(flag)) ctx.warn(`${at}.${flag}`, `not a feature flag gitlab-runner ${RUNNER_SCHEMA_VERSION} knows (it ignores it); carried as written`);
  if (outcome === 'mapped') ctx.report.mapped(at, to, `gitlab-runner's replacement of ${at.slice(at.lastIndexOf('.') + 1)}`);
  else ctx.report.carried(at, to, note);
}

/** True when a list of strings, or a table of strings or string lists, holds what looks like a secret. */
export function secretInCollection(value: unknown): boolean {
  if (Array.isArray(value)) return value.every((x) => typeof x === 'string') && looksSecretList(value as string[]);
  if (!isTable(value)) return false;
  return Object.entries(value).some(([k, v]) =>
    typeof v === 'string' ? looksSecretValue(`${k}=${v}`) || looksSecretValue(v) : Array.isArray(v) && v.every((x) => typeof x === 'string') && looksSecretList(v as string[]),
  );
}

/** Carries one subsection (docker, cache.s3 ...) by its canonical schema path. */
export function carrySection(input: Table, path: string[], atPrefix: string, out: Table, ctx: CarryContext, skip?: Set<string>): void {
  const field = fieldAt(path);
  const schema = field && isSchema(field.type) ? field.type : RUNNER_SCHEMA;
  carryTable(input, schema, path, atPrefix, out, ctx, skip);
}
