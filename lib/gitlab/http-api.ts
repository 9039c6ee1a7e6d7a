/**
 * The GitLab API the reconcile Lambda uses: GraphQL (many projects per request), falling back to
 * REST (one project per request) where GraphQL cannot run our queries: an old GitLab whose schema
 * lacks a field or argument, or an instance or proxy without /api/graphql. The fallback is logged
 * once and retried after an hour (`gitlab.api: auto`); `graphql` or `rest` pins one.
 */
import type { Logger } from '../controller/ports';
import type { ApiJob, GitLabApi, Outcome, Page, ProjectActivity } from './api';
import type { GitLabClient } from './client';
import { GraphQLApi, GraphQLUnsupported } from './graphql';
import { RestApi } from './rest';

export type ApiMode = 'auto' | 'graphql' | 'rest';

/** After a fallback, GraphQL is tried again this much later (an upgrade, a fixed proxy). */
export const GRAPHQL_RETRY_MS = 3_600_000;

export class HttpGitLabApi implements GitLabApi {
  private readonly graphqlApi: GraphQLApi;
  private readonly restApi: RestApi;
  private fallbackUntil = 0;

  constructor(
    private readonly client: GitLabClient,
    private readonly opts: { mode: ApiMode; log?: Logger; clock?: () => number },
  ) {
    // Pinned to GraphQL on a GitLab older than 17.0: listings that cannot show child pipelines
    // are never taken as complete (busy-project paging decides), rather than failing every pass.
    this.graphqlApi = new GraphQLApi(client, { olderGitLab: opts.mode === 'graphql' ? 'incomplete' : 'unsupported' });
    this.restApi = new RestApi(client, opts.clock);
  }

  private get now(): number {
    return (this.opts.clock ?? Date.now)();
  }

  private get useGraphQL(): boolean {
    return this.opts.mode === 'graphql' || (this.opts.mode === 'auto' && this.now >= this.fallbackUntil);
  }

  get mode(): string {
    return this.useGraphQL ? 'graphql' : 'rest';
  }

  get projectsPerRequest(): number {
    return this.useGraphQL ? this.graphqlApi.projectsPerRequest : 1;
  }

  get requests(): number {
    return this.client.requests;
  }

  rateLimitedUntil(): number | undefined {
    return this.client.rateLimitedUntil();
  }

  /** GraphQL cannot run our query here: REST for an hour (auto), or the failure stands (graphql pinned). */
  private fallBack(e: GraphQLUnsupported): void {
    if (this.opts.mode !== 'auto') return;
    this.fallbackUntil = this.now + GRAPHQL_RETRY_MS;
    this.opts.log?.warn('GitLab GraphQL unavailable: falling back to REST for an hour (one request per project instead of 25; routing and discovery cost more of the request budget)', {
      error: e.message,
    });
  }

  async activeJobs(projectIds: readonly number[]): Promise<Map<number, Outcome<ProjectActivity>>> {
    if (!this.useGraphQL) return this.restApi.activeJobs(projectIds);
    try {
      return await this.graphqlApi.activeJobs(projectIds);
    } catch (e) {
      if (!(e instanceof GraphQLUnsupported)) throw e;
      this.fallBack(e);
      // The request was spent; these projects are asked again (over REST) by the next pass.
      return new Map(projectIds.map((id) => [id, { ok: false, error: e.message }]));
    }
  }

  async activeJobsPage(projectId: number, cursor?: string): Promise<Outcome<Page<ApiJob>>> {
    if (!this.useGraphQL) return this.restApi.activeJobsPage(projectId, cursor && /^\d+$/.test(cursor) ? cursor : undefined);
    try {
      return await this.graphqlApi.activeJobsPage(projectId, cursor);
    } catch (e) {
      if (!(e instanceof GraphQLUnsupported)) throw e;
      this.fallBack(e);
      return { ok: false, error: e.message };
    }
  }

  async instanceActiveJobs(cursor?: string): Promise<Outcome<Page<ApiJob>> | undefined> {
    // Only GraphQL can list the whole instance (there is no REST endpoint for it).
    return this.useGraphQL ? this.graphqlApi.instanceActiveJobs(cursor) : undefined;
  }

  isAdmin(): Promise<boolean> {
    return this.restApi.isAdmin();
  }

  groupProjects(group: string | number, cursor?: string): Promise<Outcome<Page<number>>> {
    return this.restApi.groupProjects(group, cursor);
  }
}
