/**
 * A small GitLab REST client for what the controller needs: read a job (`tag_list` to route it to
 * a pool, `status` to confirm it still waits), list a project's pending jobs (repairs lost
 * `pending` webhooks) and list a pipeline's jobs (routes many untagged events with one call). The
 * job webhook carries no job tags (facts.md), so this is how a pending job finds its pool when
 * there are several.
 *
 *  - Every request has a timeout (AbortController): a Lambda pass must not hang on GitLab.
 *  - 429: waits `Retry-After` (seconds or HTTP date), capped, within the retry budget.
 *  - 5xx and network errors: bounded retries with backoff and jitter.
 *  - The token is sent as PRIVATE-TOKEN and never appears in errors or logs.
 */
import type { GitLabJob, GitLabJobs, Logger } from '../controller/ports';

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

export class GitLabClient implements GitLabJobs {
  readonly base: string;
  /** Requests sent (attempts included), for tests and the benchmark. */
  requests = 0;
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
    return t;
  }

  /** GET a path under /api/v4; undefined on 404. */
  async get<T>(path: string): Promise<T | undefined> {
    const token = await this.token();
    const maxAttempts = this.opts.maxAttempts ?? 3;
    const url = `${this.base}/api/v4${path}`;
    let lastError = '';
    for (let attempt = 0; attempt < maxAttempts; attempt++) {
      const ctrl = new AbortController();
      const timer = setTimeout(() => ctrl.abort(), this.opts.timeoutMs ?? 5000);
      let res: Response;
      try {
        this.requests++;
        res = await this.fetchFn(url, { headers: { 'PRIVATE-TOKEN': token, Accept: 'application/json' }, signal: ctrl.signal });
      } catch (e) {
        clearTimeout(timer);
        lastError = ctrl.signal.aborted ? `timed out after ${this.opts.timeoutMs ?? 5000} ms` : `network error: ${(e as Error).message}`;
        if (attempt + 1 < maxAttempts) await this.sleep(this.backoff(attempt));
        continue;
      }
      try {
        if (res.status === 404) return undefined;
        if (res.ok) return (await res.json()) as T;
        if (res.status === 401 || res.status === 403)
          throw new GitLabApiError(`GitLab API refused the token (HTTP ${res.status}) for GET ${path}; check the token's scope (read_api) and expiry`, res.status);
        if (res.status === 429) {
          const wait = retryAfterMs(res.headers.get('retry-after'), Date.now()) ?? this.backoff(attempt);
          lastError = `rate limited (HTTP 429, Retry-After ${res.headers.get('retry-after') ?? 'unset'})`;
          if (wait > (this.opts.maxRetryAfterMs ?? 10_000)) break;
          this.opts.log?.warn('GitLab API rate limit; waiting', { path, waitMs: wait, attempt: attempt + 1 });
          if (attempt + 1 < maxAttempts) await this.sleep(wait);
          continue;
        }
        if (res.status >= 500) {
          lastError = `HTTP ${res.status}`;
          this.opts.log?.warn('GitLab API server error; retrying', { path, status: res.status, attempt: attempt + 1 });
          if (attempt + 1 < maxAttempts) await this.sleep(this.backoff(attempt));
          continue;
        }
        throw new GitLabApiError(`GitLab API answered HTTP ${res.status} for GET ${path}`, res.status);
      } finally {
        clearTimeout(timer);
        // Free the connection when the body was not read.
        if (!res.bodyUsed) await res.body?.cancel().catch(() => {});
      }
    }
    throw new GitLabApiError(`GitLab API GET ${path} failed: ${lastError}`);
  }

  private backoff(attempt: number): number {
    return Math.floor(this.random() * Math.min(5000, 250 * 2 ** attempt));
  }

  async getJob(projectId: number, jobId: number): Promise<GitLabJob | undefined> {
    if (!Number.isSafeInteger(projectId) || projectId <= 0 || !Number.isSafeInteger(jobId) || jobId <= 0)
      throw new GitLabApiError(`getJob: project and job ids must be positive integers (got ${projectId}, ${jobId})`);
    const job = await this.get<RawJob>(`/projects/${projectId}/jobs/${jobId}`);
    if (!job) return undefined;
    if (typeof job.status !== 'string') throw new GitLabApiError(`GET /projects/${projectId}/jobs/${jobId}: the answer has no status`);
    return { id: typeof job.id === 'number' ? job.id : jobId, status: job.status, tagList: tagsOf(job) };
  }

  /**
   * `GET /projects/:id/jobs?scope[]=pending&per_page=100`: the project's pending jobs, newest first
   * (GitLab orders jobs by id, descending). One page only: the pass runs every minute, and a
   * project with more than 100 pending jobs is busy enough to send webhooks for most of them.
   * A project that is gone or not readable with the token (404) has none.
   */
  async listPendingJobs(projectId: number): Promise<GitLabJob[]> {
    if (!Number.isSafeInteger(projectId) || projectId <= 0) throw new GitLabApiError(`listPendingJobs: the project id must be a positive integer (got ${projectId})`);
    return this.jobList(`/projects/${projectId}/jobs?scope[]=pending&per_page=${PAGE}`);
  }

  /** `GET /projects/:id/pipelines/:pipeline_id/jobs?per_page=100`: one page of a pipeline's jobs (bridges excluded by GitLab). */
  async listPipelineJobs(projectId: number, pipelineId: number): Promise<GitLabJob[]> {
    if (!Number.isSafeInteger(projectId) || projectId <= 0 || !Number.isSafeInteger(pipelineId) || pipelineId <= 0)
      throw new GitLabApiError(`listPipelineJobs: project and pipeline ids must be positive integers (got ${projectId}, ${pipelineId})`);
    return this.jobList(`/projects/${projectId}/pipelines/${pipelineId}/jobs?per_page=${PAGE}`);
  }

  private async jobList(path: string): Promise<GitLabJob[]> {
    const list = await this.get<unknown>(path);
    if (list === undefined) return [];
    if (!Array.isArray(list)) throw new GitLabApiError(`GET ${path}: expected a JSON array of jobs`);
    const out: GitLabJob[] = [];
    for (const j of list as RawJob[]) {
      // A malformed entry is skipped, not fatal: the rest of the page is still useful.
      if (!j || typeof j.id !== 'number' || !Number.isSafeInteger(j.id) || j.id <= 0 || typeof j.status !== 'string') continue;
      out.push({ id: j.id, status: j.status, tagList: tagsOf(j) });
    }
    return out;
  }
}

/** GitLab's largest page size. */
const PAGE = 100;

interface RawJob {
  id?: unknown;
  status?: unknown;
  tag_list?: unknown;
}

function tagsOf(job: RawJob): string[] {
  return Array.isArray(job.tag_list) ? job.tag_list.filter((t): t is string => typeof t === 'string') : [];
}

/** Retry-After is seconds or an HTTP date (RFC 9110 10.2.3). */
export function retryAfterMs(header: string | null, now: number): number | undefined {
  if (!header) return undefined;
  if (/^\d+$/.test(header.trim())) return Number(header.trim()) * 1000;
  const t = Date.parse(header);
  return Number.isFinite(t) ? Math.max(0, t - now) : undefined;
}
