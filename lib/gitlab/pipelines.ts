/**
 * Learning pipelines in flight from the GitLab API, within the request budget: the forecast
 * (lib/forecast.ts) asks for the graphs of projects whose new pipelines it heard of through
 * `created` hooks, and this lists their active pipelines, PIPELINE_PROJECTS_PER_REQUEST projects a
 * request (GraphQL: lib/gitlab/pipeline-graphql.ts).
 *
 * The forecast only saves time and worker-hours; routing, confirmation and discovery keep jobs
 * served (lib/gitlab/sync.ts). So it spends only what those left: the tokens above a reserve of
 * half the bucket, after the pass's own GitLab work, and a share of the pass's time. A project
 * whose listing fails is asked again after a minute; a GitLab that cannot run the query (no
 * GraphQL, an older schema) turns the learning off with one warning, and the forecast then works
 * from the hooks alone (stage order from job ids, one pool).
 */
import type { Logger } from '../controller/ports';
import type { RequestBudget } from './budget';
import { GraphQLUnsupported } from './graphql';
import type { PipelineApi, PipelineGraph } from './pipeline-api';
import { settleWithin, timeBudget } from './sync';

/** A project whose listing failed is asked again after this long. */
export const RETRY_AFTER_MS = 60_000;
/** Requests in flight at once. */
const CONCURRENCY = 2;
/** Share of the time a pass has left that pipeline learning may use (after the rest of the GitLab side). */
export const PIPELINE_TIME_SHARE = 0.15;

export interface PipelineLearnPass {
  /** Projects with pipelines the forecast has no graph of. */
  projects: readonly number[];
  now: number;
  log: Logger;
  remainingMs?: () => number;
}

export interface PipelineLearnReport {
  requests: number;
  /** Projects listed successfully. */
  listed: number[];
  graphs: PipelineGraph[];
  failed: number;
  /** Projects left for a later pass (no spare token or time). */
  deferred: number;
  /** Set once GitLab cannot run the query: learning is off for this container. */
  off?: string;
}

export class PipelineLearner {
  private off?: string;
  private readonly retryAt = new Map<number, number>();
  constructor(
    private readonly api: PipelineApi,
    private readonly budget: RequestBudget,
    /** Tokens always left to routing, confirmation and discovery. Default: half the bucket. */
    private readonly reserve = Math.ceil(budget.capacity / 2),
  ) {}

  async learn(pass: PipelineLearnPass): Promise<PipelineLearnReport> {
    const report: PipelineLearnReport = { requests: 0, listed: [], graphs: [], failed: 0, deferred: 0 };
    if (this.off) return { ...report, off: this.off };
    const { now } = pass;
    const projects = pass.projects.filter((p) => (this.retryAt.get(p) ?? -Infinity) <= now);
    if (projects.length === 0) return report;
    const size = Math.max(1, this.api.pipelineProjectsPerRequest);
    const batches: number[][] = [];
    for (let i = 0; i < projects.length; i += size) batches.push(projects.slice(i, i + size));
    const spare = Math.max(0, this.budget.available(now) - this.reserve);
    const taken = batches.slice(0, spare);
    report.deferred = projects.length - taken.flat().length;
    const time = timeBudget(pass.remainingMs, PIPELINE_TIME_SHARE);
    const before = this.api.requests;
    for (let at = 0; at < taken.length; at += CONCURRENCY) {
      if (time.outOfTime()) {
        report.deferred += taken.slice(at).flat().length;
        break;
      }
      const chunk = taken.slice(at, at + CONCURRENCY);
      const spentBefore = this.api.requests;
      const done = await settleWithin(
        chunk.map((ids) => this.list(ids, now, report, pass.log)),
        time,
      );
      this.budget.charge(this.api.requests - spentBefore, now);
      if (!done || this.off) break;
    }
    report.requests = this.api.requests - before;
    if (this.off) report.off = this.off;
    return report;
  }

  private async list(ids: number[], now: number, report: PipelineLearnReport, log: Logger): Promise<void> {
    let answers;
    try {
      answers = await this.api.activePipelines(ids);
    } catch (e) {
      if (e instanceof GraphQLUnsupported) {
        this.off = e.message;
        log.warn('pipeline forecast: the GitLab API cannot list pipeline graphs; forecasting from job hooks alone', { error: e.message });
        return;
      }
      answers = new Map(ids.map((id) => [id, { ok: false as const, error: (e as Error).message }]));
    }
    for (const id of ids) {
      const a = answers.get(id);
      if (!a || !a.ok) {
        report.failed++;
        this.retryAt.set(id, now + RETRY_AFTER_MS);
        continue;
      }
      this.retryAt.delete(id);
      report.listed.push(id);
      if (a.value) report.graphs.push(...a.value.pipelines);
    }
    if (this.retryAt.size > 10_000) for (const [p, t] of this.retryAt) if (t <= now) this.retryAt.delete(p);
  }
}
