/**
 * `migrate --tags-from-gitlab`: a runner's job tags live in GitLab, not in config.toml, so they
 * are read from the API: the runner's id (config.toml's `id`, or `POST /api/v4/runners/verify`
 * with its own token, which answers with the id), then `GET /api/v4/runners/:id` (tag_list,
 * run_untagged) with an API token (read_api; an admin's for instance runners).
 *
 * HTTP goes through an injectable fetch (tests use a stand-in on 127.0.0.1). Tokens never appear
 * in messages.
 */
import { parse as parseToml } from 'smol-toml';
import { GitLabApiError, GitLabClient } from '../gitlab/client';
import type { RunnerTags } from './migrate';

export interface TagLookupOptions {
  /** The API token (never logged). */
  token: string;
  /** GitLab base URL; default each runner's url in config.toml. */
  url?: string;
  fetch?: typeof fetch;
  timeoutMs?: number;
}

export interface TagLookupResult {
  tags: Map<number, RunnerTags>;
  /** One line per runner that could not be read, saying why. */
  problems: string[];
}

type Table = Record<string, unknown>;
const isTable = (x: unknown): x is Table => typeof x === 'object' && x !== null && !Array.isArray(x) && !(x instanceof Date);

async function runnerIdFromToken(base: string, runnerToken: string, fetchFn: typeof fetch, timeoutMs: number): Promise<number | undefined> {
  const ctrl = new AbortController();
  const timer = setTimeout(() => ctrl.abort(), timeoutMs);
  try {
    const res = await fetchFn(`${base}/api/v4/runners/verify`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ token: runnerToken }),
      signal: ctrl.signal,
    });
    if (!res.ok) return undefined;
    const body = (await res.json()) as { id?: unknown };
    return typeof body.id === 'number' ? body.id : undefined;
  } finally {
    clearTimeout(timer);
  }
}

/** Tags of every docker+machine amazonec2 runner of `text`, by its index in [[runners]]. */
export async function readRunnerTags(text: string, opts: TagLookupOptions): Promise<TagLookupResult> {
  const doc = parseToml(text, { integersAsBigInt: 'asNeeded' }) as Table;
  const runners = Array.isArray(doc.runners) ? doc.runners : [];
  const tags = new Map<number, RunnerTags>();
  const problems: string[] = [];
  const fetchFn = opts.fetch ?? fetch;
  const timeoutMs = opts.timeoutMs ?? 10_000;
  for (const [i, r] of runners.entries()) {
    if (!isTable(r) || r.executor !== 'docker+machine' || !isTable(r.machine) || r.machine.MachineDriver !== 'amazonec2') continue;
    const at = `runners[${i}] (${typeof r.name === 'string' ? r.name : 'no name'})`;
    const base = (opts.url ?? (typeof r.url === 'string' ? r.url : '')).replace(/\/+$/, '');
    if (!/^https?:\/\/[^\s<>]+$/.test(base)) {
      problems.push(`${at}: no GitLab URL to ask (pass --gitlab-url)`);
      continue;
    }
    try {
      let id = typeof r.id === 'number' ? r.id : typeof r.id === 'bigint' ? Number(r.id) : undefined;
      if (id === undefined && typeof r.token === 'string' && /^[A-Za-z0-9_.-]{10,}$/.test(r.token)) id = await runnerIdFromToken(base, r.token, fetchFn, timeoutMs);
      if (id === undefined) {
        problems.push(`${at}: no runner id in config.toml and GitLab did not recognise its token; read its tags by hand`);
        continue;
      }
      const client = new GitLabClient({ url: base, token: opts.token, fetch: fetchFn, timeoutMs, maxAttempts: 2 });
      const runner = await client.get<{ tag_list?: unknown; run_untagged?: unknown }>(`/runners/${id}`);
      if (!runner) {
        problems.push(`${at}: GitLab has no runner ${id} (or the token may not see it)`);
        continue;
      }
      const list = Array.isArray(runner.tag_list) ? runner.tag_list.filter((t): t is string => typeof t === 'string') : [];
      tags.set(i, { id, tags: list, runUntagged: runner.run_untagged === true });
    } catch (e) {
      const status = e instanceof GitLabApiError && e.status ? ` (HTTP ${e.status})` : '';
      problems.push(`${at}: reading its tags from ${base} failed${status}: ${(e as Error).message.replace(opts.token, '<token>')}`);
    }
  }
  return { tags, problems };
}
