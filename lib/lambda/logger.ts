/**
 * Structured JSON logs, one line per entry, with a correlation id, and secret redaction.
 *
 * Redaction works two ways, because a secret can reach a log line by value or by name:
 *  - values: every secret the process loads from SSM (webhook secret, runner token, API token) is
 *    registered with `registerSecret` and replaced wherever it appears, even inside a longer string
 *    or an error message. Only secrets WE load are registered, never a value a caller sent (e.g. a
 *    presented X-Gitlab-Token): an unauthenticated caller could otherwise grow the registry (memory,
 *    and the cost of redacting every line) and poison the logs (a "token" of `pending` would mask
 *    that word everywhere). A presented token is kept out of logs by its field name instead;
 *  - names and shapes: fields named like secret-bearing headers (X-Gitlab-Token, Authorization,
 *    PRIVATE-TOKEN, Cookie) or whose name says token/secret/password/authorization, and strings that
 *    look like GitLab tokens (glrt-, glpat-, ...), are masked even when never registered.
 * Size: every string is cut to MAX_STRING_CHARS and every object or array to MAX_ENTRIES entries
 * (after redaction, so a cut never leaves half a secret), whatever a caller managed to get into a
 * field: one line stays a few KB, and a public URL cannot make the logs (or their cost) grow with
 * the size of what it is sent. JSON.stringify escapes control characters, so a line is one line.
 * The Logger port (lib/controller/ports.ts) is what the reconcile pass sees.
 */
import type { Logger } from '../controller/ports';

const REDACTED = '[REDACTED]';
const registered = new Set<string>();

/** Values shorter than this are not registered: masking "a" everywhere would wreck every log line. */
const MIN_SECRET_LENGTH = 6;
/**
 * A process loads a handful of secrets (webhook secret, API token, one runner token per pool) plus
 * their rotations. The cap is a backstop so that a bug which registers per-request values cannot
 * grow memory and per-line cost without bound: the oldest registration is dropped first.
 */
export const MAX_REGISTERED_SECRETS = 64;

/**
 * Registers a secret this process loaded itself (from SSM). Never pass a caller-supplied value
 * (a presented X-Gitlab-Token, an Authorization header): see the header comment.
 */
export function registerSecret(value: string | undefined): void {
  if (!value || value.length < MIN_SECRET_LENGTH) return;
  registered.delete(value); // re-insert: a Set iterates in insertion order, so this marks it newest
  registered.add(value);
  while (registered.size > MAX_REGISTERED_SECRETS) registered.delete(registered.values().next().value as string);
}

/** Whether this exact value is registered (tests: a forged token must never be). */
export function isRegisteredSecret(value: string): boolean {
  return registered.has(value);
}

/** How many values are registered (tests, and a bound the logger guarantees). */
export function registeredSecretCount(): number {
  return registered.size;
}

/** For tests only. */
export function clearRegisteredSecrets(): void {
  registered.clear();
}

const TOKEN_SHAPES = /\b(glrt-|glpat-|gloas-|glptt-|gldt-|glsoat-|GR1348941)[A-Za-z0-9_\-.]{4,}/g;
const SECRET_KEY = /(token|secret|password|passwd|authorization|credential|api[-_]?key)/i;
// Keys that name a parameter or a flag about a secret, not the secret itself.
const SAFE_KEY = /(parameter|param|name|present|length|matches|expires)s?$/i;
/**
 * Header names whose value is a credential, masked by name whatever the value looks like (string,
 * number or a multi-value array): GitLab's webhook secret, HTTP auth, GitLab API tokens, cookies.
 */
const SECRET_HEADERS = new Set(['x-gitlab-token', 'authorization', 'proxy-authorization', 'private-token', 'job-token', 'cookie', 'set-cookie']);

function isSecretKey(key: string): boolean {
  return SECRET_HEADERS.has(key.toLowerCase()) || (SECRET_KEY.test(key) && !SAFE_KEY.test(key));
}

const isScalarOrList = (v: unknown) => typeof v === 'string' || typeof v === 'number' || Array.isArray(v);

/** Longest string a log field keeps; the rest is counted, not written. */
export const MAX_STRING_CHARS = 2000;
/** Most entries of one object or array a log line keeps. */
export const MAX_ENTRIES = 100;

function cap(s: string): string {
  return s.length > MAX_STRING_CHARS ? `${s.slice(0, MAX_STRING_CHARS)}…[${s.length - MAX_STRING_CHARS} more characters]` : s;
}

function redactString(s: string): string {
  let out = s;
  for (const secret of registered) if (out.includes(secret)) out = out.split(secret).join(REDACTED);
  return cap(out.replace(TOKEN_SHAPES, (_m, prefix: string) => `${prefix}${REDACTED}`));
}

export function redact(value: unknown, depth = 0, seen = new WeakSet<object>()): unknown {
  if (typeof value === 'string') return redactString(value);
  if (value === null || typeof value !== 'object') return value;
  if (depth > 8) return '[depth]';
  if (seen.has(value)) return '[circular]';
  seen.add(value);
  if (value instanceof Error) {
    const e: Record<string, unknown> = { name: value.name, message: redactString(value.message) };
    const code = (value as { code?: unknown }).code;
    if (code !== undefined) e.code = redact(code, depth + 1, seen);
    if (value.stack) e.stack = redactString(value.stack.split('\n').slice(0, 6).join('\n'));
    return e;
  }
  if (Array.isArray(value)) {
    const items = value.slice(0, MAX_ENTRIES).map((v) => redact(v, depth + 1, seen));
    if (value.length > MAX_ENTRIES) items.push(`[${value.length - MAX_ENTRIES} more items]`);
    return items;
  }
  const out: Record<string, unknown> = {};
  const keys = Object.keys(value);
  for (const k of keys.slice(0, MAX_ENTRIES)) {
    const v = (value as Record<string, unknown>)[k];
    out[cap(k)] = isSecretKey(k) && isScalarOrList(v) ? REDACTED : redact(v, depth + 1, seen);
  }
  if (keys.length > MAX_ENTRIES) out['[more]'] = `${keys.length - MAX_ENTRIES} more keys`;
  return out;
}

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
const LEVELS: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface JsonLogger extends Logger {
  debug(message: string, fields?: Record<string, unknown>): void;
  /** A logger whose lines carry these fields too (e.g. the pass id). */
  child(fields: Record<string, unknown>): JsonLogger;
  readonly fields: Readonly<Record<string, unknown>>;
}

export interface LoggerOptions {
  /** Where a finished line goes. Lambda sends stdout to CloudWatch Logs. */
  sink?: (line: string) => void;
  level?: LogLevel;
  clock?: () => number;
}

export function createLogger(fields: Record<string, unknown> = {}, opts: LoggerOptions = {}): JsonLogger {
  const sink = opts.sink ?? ((line: string) => process.stdout.write(line + '\n'));
  const min = LEVELS[opts.level ?? ((process.env.LOG_LEVEL as LogLevel) in LEVELS ? (process.env.LOG_LEVEL as LogLevel) : 'info')];
  const clock = opts.clock ?? Date.now;
  const write = (level: LogLevel, message: string, extra?: Record<string, unknown>) => {
    if (LEVELS[level] < min) return;
    const entry = { time: new Date(clock()).toISOString(), level, message, ...fields, ...(extra ?? {}) };
    let line: string;
    try {
      line = JSON.stringify(redact(entry));
    } catch (e) {
      line = JSON.stringify({ time: entry.time, level, message: redactString(message), logError: String(e) });
    }
    sink(line);
  };
  return {
    fields,
    debug: (m, f) => write('debug', m, f),
    info: (m, f) => write('info', m, f),
    warn: (m, f) => write('warn', m, f),
    error: (m, f) => write('error', m, f),
    child: (more) => createLogger({ ...fields, ...more }, { sink, level: opts.level, clock }),
  };
}

/**
 * A Logger that writes to `current`: for objects a warm container keeps across invocations (the
 * fleet adapter, the GitLab side, the holds reader), so their lines carry the invocation's own
 * logger (its correlation id). The handler sets `current` at the start of each invocation.
 */
export class LoggerRelay implements Logger {
  constructor(public current: Logger) {}
  info(message: string, fields?: Record<string, unknown>): void {
    this.current.info(message, fields);
  }
  warn(message: string, fields?: Record<string, unknown>): void {
    this.current.warn(message, fields);
  }
  error(message: string, fields?: Record<string, unknown>): void {
    this.current.error(message, fields);
  }
}
