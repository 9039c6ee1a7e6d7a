/**
 * The GitLab side of the reconcile Lambda. The API token is optional when the deployment has one
 * pool (every pending job goes there) and needed to route jobs between several pools (the job hook
 * carries no job tags: facts.md). So: a token that was configured explicitly
 * (gitlab.apiTokenParameter) must exist; the default parameter may be absent, and then the pass
 * runs without the API (checked again every few minutes, so creating it later takes effect).
 *
 * The GitLabDemand object lives as long as the container: its request budget must hold across
 * passes that run back to back, and its memory (projects failing, busy projects being paged,
 * when each project was listed) saves requests. It starts with an empty bucket after a cold start
 * (lib/gitlab/budget.ts) and waits up to FIRST_TOKEN_WAIT_MS for its first routing request.
 */
import { createHash } from 'node:crypto';
import type { SSMClient } from '@aws-sdk/client-ssm';
import { loadSecret } from '../aws/ssm-state-store';
import { parameterNames, type Config } from '../config';
import type { GitLabSide, Logger } from '../controller/ports';
import { GitLabClient } from '../gitlab/client';
import { HttpGitLabApi } from '../gitlab/http-api';
import { GraphQLPipelineApi } from '../gitlab/pipeline-graphql';
import { GitLabDemand } from '../gitlab/sync';
import { LoggerRelay, registerSecret } from './logger';

const RECHECK_MS = 5 * 60_000;
/** A cold container's bucket is empty; the first routing request of a pass may wait this long for a token. */
export const FIRST_TOKEN_WAIT_MS = 2000;

let absentSince: { name: string; at: number } | undefined;
let cached: { key: string; side: GitLabDemand; log: LoggerRelay } | undefined;

export async function gitlabFor(config: Config, stage: string, ssm: SSMClient, log: Logger, now = Date.now()): Promise<GitLabSide | undefined> {
  const name = parameterNames(config, stage).gitlabApiToken;
  const explicit = config.gitlab.apiTokenParameter !== undefined;
  if (!explicit && absentSince?.name === name && now - absentSince.at < RECHECK_MS) return undefined;
  try {
    registerSecret(await loadSecret(ssm, name));
    absentSince = undefined;
  } catch (e) {
    const missing = /does not exist/.test((e as Error).message);
    if (missing && !explicit) {
      // With one pool every job goes there. With several, a job event (no tags in a Job Hook) can
      // reach no pool without the API: say so at error level on every recheck, not once.
      if (config.pools.length > 1)
        log.error(`no GitLab API token at ${name}: with ${config.pools.length} pools, job events cannot be routed to a pool and get no capacity; store a read_api token there`, { parameter: name });
      else if (!absentSince) log.warn('no GitLab API token: every job goes to the single pool (the API would only confirm pending jobs)', { parameter: name });
      absentSince = { name, at: now };
      return undefined;
    }
    // Configured but unreadable (or SSM throttled): this pass runs without the API, says so.
    log.warn('GitLab API token unreadable; this pass runs without the GitLab API', { parameter: name, error: e });
    return undefined;
  }
  const { url, requestsPerMinute, api } = config.gitlab;
  const key = createHash('sha256').update(JSON.stringify([stage, name, url, requestsPerMinute, api])).digest('hex');
  if (cached?.key !== key) {
    const delegate = new LoggerRelay(log);
    const client = new GitLabClient({
      url,
      token: async () => {
        const t = await loadSecret(ssm, name);
        registerSecret(t);
        return t;
      },
      log: delegate,
    });
    // Pipeline graphs for the forecast (lib/gitlab/pipelines.ts) need GraphQL: none with api: rest.
    const pipelines = api === 'rest' ? undefined : new GraphQLPipelineApi(client);
    const side = new GitLabDemand({ api: new HttpGitLabApi(client, { mode: api, log: delegate }), perMinute: requestsPerMinute, start: 'empty', waitMs: FIRST_TOKEN_WAIT_MS, ...(pipelines ? { pipelines } : {}) });
    cached = { key, side, log: delegate };
  }
  cached.log.current = log;
  return cached.side;
}

/** For tests. */
export function resetGitlabForTests(): void {
  absentSince = undefined;
  cached = undefined;
}
