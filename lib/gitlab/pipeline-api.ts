/**
 * What the controller asks GitLab about pipelines in flight: each active pipeline's whole job graph
 * (every job, not only the pending and running ones), so that it knows minutes ahead which jobs
 * will need a runner of which pool, and when. One request lists the active pipelines of several
 * projects (GraphQL, lib/gitlab/pipeline-graphql.ts; the simulated GitLab in lib/sim/cloud.ts).
 *
 * A job hook carries the job's name, stage and pipeline but not its tags, its `needs` or whether it
 * is manual (facts.md); GraphQL gives all of them: CiJob `stage { name }`, `needs { nodes { name } }`
 * (with `schedulingType` "dag"), `manualJob`, `tags`, `status`, and Pipeline `stages` in order.
 */
import type { Outcome } from './api';

export interface GraphJob {
  id: number;
  /** GitLab's job name (unique in a pipeline). */
  name: string;
  /** Name of the job's stage. */
  stage: string;
  /** GitLab's build status in lower case: created, pending, running, success, failed, canceled, skipped, manual, scheduled... */
  status: string;
  tags: string[];
  /** `when: manual`: runs only when someone plays it. */
  manual: boolean;
  /** Names of the jobs it needs (schedulingType "dag"); undefined: it waits for the previous stages. */
  needs?: string[];
  /** A failure of this job does not fail its dependants. */
  allowFailure?: boolean;
}

export interface PipelineGraph {
  id: number;
  projectId: number;
  /** GitLab's pipeline status in lower case (created, pending, running, canceled, ...). */
  status: string;
  /** Stage names in the order they run. */
  stages: string[];
  jobs: GraphJob[];
  /** False when a page limit cut the job list short (more than 100 jobs). */
  complete: boolean;
}

/** The active pipelines of one project, newest first. */
export interface PipelineListing {
  pipelines: PipelineGraph[];
  /** False when there were more active pipelines than one listing returns. */
  complete: boolean;
}

/** Projects per pipeline-graph request: a graph costs several times a job listing (pipeline-graphql.ts). */
export const PIPELINE_PROJECTS_PER_REQUEST = 10;

export interface PipelineApi {
  /** HTTP requests sent so far (the request budget charges the difference). */
  readonly requests: number;
  /** Projects per activePipelines request. */
  readonly pipelineProjectsPerRequest: number;
  /** ONE request: the active pipelines of these projects with their job graphs. */
  activePipelines(projectIds: readonly number[]): Promise<Map<number, Outcome<PipelineListing>>>;
}
