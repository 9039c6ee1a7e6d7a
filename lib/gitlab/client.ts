/**
 * The HTTP transport to GitLab: REST GETs under /api/v4 and GraphQL queries (POST /api/graphql),
 * with the same discipline for both. What is asked lives in lib/gitlab/graphql.ts and rest.ts.
 *
 *  - Every request has a timeout (AbortController): a Lambda pass must not hang on GitLab.
 *  - 429: waits `Retry-After` (seconds or HTTP date), capped, within the retry budget.
 *  - 5xx and network errors: bounded retries with backoff and jitter.
 *  - Every attempt is counted (`requests`): the request budget charges what was really sent.
 *  - The token is sent as PRIVATE-TOKEN (REST) or `Authorization: Bearer` (GraphQL, as GitLab
 *    documents it) and never appears in errors or logs. Scope: read_api.
 *  - Redirects are not followed: a 3xx is an error naming where it points. fetch follows them by
 *    default and, on a redirect to another origin, drops only `Authorization` (Fetch standard,
 *    "HTTP-redirect fetch"): PRIVATE-TOKEN went along to whatever host the Location named, and a
 *    GraphQL query arrived there anonymously, where every private project looked absent.
 */
import type { Logger } from '../controller/ports';

export interface GitLabClientOptions {
  /** Base URL, e.g. https://gitlab.example.com (config.gitlab.url). */
  url: string;
  /** The API token, or a function that loads it (e.g. loadSecret from SSM, cached). */
  token: string | (() => Promise<string>);
  timeoutMs?: number;
  /** Attempts in all per request. Default 3. */
  maxAttempts?: number;
  /** Longest Retry-After honoured; a longer one fails the request (the next pass tries again). Default 10 s. */
  maxRetryAfterMs?: number;
  fetch?: typeof fetch;
  sleep?: (ms: number) => Promise<void>;
  random?: () => number;
  log?: Logger;
  /** Epoch ms, for Retry-After (default Date.now). */
  now?: () => number;
}

export class GitLabApiError extends Error {
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message);
    this.name = 'GitLabApiError';
  }
}

/** A GraphQL answer: `data` may be partial, with `errors` naming the paths that failed. */
export interface GraphQLAnswer {
  data?: Record<string, unknown> | null;
  errors?: { message: string; path?: (string | number)[] }[];
}

export class GitLabClient {
  readonly base: string;
  /** Requests sent (attempts included), for the budget, tests and the benchmark. */
  requests = 0;
  /** Until when GitLab asked us (429 Retry-After) to send nothing: epoch ms, 0 when it did not. */
  private limitedUntil = 0;
  private readonly fetchFn: typeof fetch;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly random: () => number;

  constructor(private readonly opts: GitLabClientOptions) {
    let u: URL;
    try {
      u = new URL(opts.url);
    } catch {
      throw new Error(`gitlab.url: ${JSON.stringify(opts.url)} is not a URL (expected e.g. "https://gitlab.example.com")`);
    }
    if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new Error(`gitlab.url: must start with https:// (or http:// for a lab), got ${u.protocol}`);
    this.base = opts.url.replace(/\/+$/, '');
    this.fetchFn = opts.fetch ?? fetch;
    this.sleep = opts.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
    this.random = opts.random ?? Math.random;
  }

  private async token(): Promise<string> {
    const t = typeof this.opts.token === 'string' ? this.opts.token : await this.opts.token();
    if (!t) throw new GitLabApiError('GitLab API token is empty');
    // fetch refuses such a header value with an error that QUOTES it (undici: `Headers.append:
    // "<value>" is an invalid header value`), and that message reached decisions stored in SSM and
    // shown by `status`. Named here without the value. (Leading and trailing white space, such as
    // the newline of a value stored from a file, is trimmed by fetch and harmless.)
    if (/[^\x21-\x7e]/.test(t.trim())) throw new GitLabApiError('GitLab API token holds white space, control or non-ASCII characters (a line break pasted into it?); store the token alone');
    return t;
  }

  /** GET a path under /api/v4; undefined on 404. */
  async get<T>(path: string): Promise<T | undefined> {
    const token = await this.token();
    return this.send<T>(`GET ${path}`, `${this.base}/api/v4${path}`, { headers: { 'PRIVATE-TOKEN': token, Accept: 'application/json' } });
  }

  /**
   * POST /api/graphql. GitLab answers 200 even when parts of the query failed: the caller reads
   * `errors` (with their paths) beside `data`. A 404 means the instance has no GraphQL API.
   */
  async graphql(query: string, variables: Record<string, unknown> = {}): Promise<GraphQLAnswer> {
    const token = await this.token();
    const answer = await this.send<GraphQLAnswer>('POST /api/graphql', `${this.base}/api/graphql`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${token}`, Accept: 'application/json', 'Content-Type': 'application/json' },
      body: JSON.stringify({ query, variables }),
    });
    if (answer === undefined) throw new GitLabApiError('GitLab has no GraphQL API at /api/graphql (HTTP 404)', 404);
    if (!answer || typeof answer !== 'object' || Array.isArray(answer)) throw new GitLabApiError('POST /api/graphql: the answer is not a JSON object');
    return answer;
  }

  /**
   * Until when (epoch ms) GitLab's last 429 asked for silence, if that is still ahead. A request
   * started before then fails at once without being sent: GitLab's limit is per user and shared
   * with the token's other automation, and every request sent into it (each pass sent up to 8)
   * prolonged the lock-out for all of them.
   */
  rateLimitedUntil(): number | undefined {
    return this.limitedUntil > (this.opts.now ?? Date.now)() ? this.limitedUntil : undefined;
  }

  private async send<T>(what: string, url: string, init: RequestInit): Promise<T | undefined> {
    const until = this.rateLimitedUntil();
    if (until !== undefined) throw new GitLabApiError(`GitLab API ${what} not sent: rate limited (HTTP 429) until ${new Date(until).toISOString()}`, 429);
    const maxAttempts = this.opts.maxAttempts ?? 3;
    const timeoutMs = this.opts.timeoutMs ?? 5000;
    let lastError = '';
    for (let attempt = 0; attempt < maxAttempts; attempt++) {
      const ctrl = new AbortController();
      const timer = setTimeout(() => ctrl.abort(), timeoutMs);
      let res: Response;
      try {
        this.requests++;
        res = await this.fetchFn(url, { ...init, redirect: 'manual', signal: ctrl.signal });
      } catch (e) {
        clearTimeout(timer);
        lastError = ctrl.signal.aborted ? `timed out after ${timeoutMs} ms` : `network error: ${await this.scrub((e as Error).message)}`;
        if (attempt + 1 < maxAttempts) await this.sleep(this.backoff(attempt));
        continue;
      }
      try {
        if (res.status === 404) return undefined;
        if (res.ok) return (await res.json()) as T;
        if (res.status >= 300 && res.status < 400)
          throw new GitLabApiError(`GitLab API answered ${what} with a redirect (HTTP ${res.status}) to ${originOf(res.headers.get('location'), url)}, not followed (the token would go along); set gitlab.url to the address GitLab answers on (scheme, host, path)`, res.status);
        if (res.status === 401 || res.status === 403)
          throw new GitLabApiError(`GitLab API refused the token (HTTP ${res.status}) for ${what}; check the token's scope (read_api) and expiry`, res.status);
        if (res.status === 429) {
          const asked = retryAfterMs(res.headers.get('retry-after'), (this.opts.now ?? Date.now)());
          if (asked !== undefined) this.limitedUntil = Math.max(this.limitedUntil, (this.opts.now ?? Date.now)() + asked);
          const wait = asked ?? this.backoff(attempt);
          lastError = `rate limited (HTTP 429, Retry-After ${res.headers.get('retry-after') ?? 'unset'})`;
          if (wait > (this.opts.maxRetryAfterMs ?? 10_000)) break;
          this.opts.log?.warn('GitLab API rate limit; waiting', { request: what, waitMs: wait, attempt: attempt + 1 });
          if (attempt + 1 < maxAttempts) await this.sleep(wait);
          continue;
        }
        if (res.status >= 500) {
          lastError = `HTTP ${res.status}`;
          this.opts.log?.warn('GitLab API server error; retrying', { request: what, status: res.status, attempt: attempt + 1 });
          if (attempt + 1 < maxAttempts) await this.sleep(this.backoff(attempt));
          continue;
        }
        throw new GitLabApiError(`GitLab API answered HTTP ${res.status} for ${what}`, res.status);
      } finally {
        clearTimeout(timer);
        // Free the connection when the body was not read.
        if (!res.bodyUsed) await res.body?.cancel().catch(() => {});
      }
    }
    throw new GitLabApiError(`GitLab API ${what} failed: ${lastError}`);
  }

  /** A message without the token in it, whatever produced it. */
  private async scrub(message: string): Promise<string> {
    const t = typeof this.opts.token === 'string' ? this.opts.token : await this.opts.token().catch(() => '');
    return t && t.length >= 4 ? message.split(t).join('[REDACTED]') : message;
  }

  private backoff(attempt: number): number {
    return Math.floor(this.random() * Math.min(5000, 250 * 2 ** attempt));
  }
}

/** The origin a Location header points at (resolved against the request), without path or query: those may carry anything. */
function originOf(location: string | null, requestUrl: string): string {
  if (!location) return 'nowhere (no Location)';
  try {
    return new URL(location, requestUrl).origin;
  } catch {
    return 'an unreadable Location';
  }
}

/** Retry-After is seconds or an HTTP date (RFC 9110 10.2.3). */
export function retryAfterMs(header: string | null, now: number): number | undefined {
  if (!header) return undefined;
  if (/^\d+$/.test(header.trim())) return Number(header.trim()) * 1000;
  const t = Date.parse(header);
  return Number.isFinite(t) ? Math.max(0, t - now) : undefined;
}
