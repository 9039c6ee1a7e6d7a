/**
 * The job trace the simulation replays: JSON lines, one job each (docs/simulation.md).
 *
 *   {"id": "p1-build", "at": "2025-03-03T08:15:00Z", "duration": 240, "tags": ["docker"]}
 *   {"id": 17, "at": 3600, "duration": 95}
 *   {"id": 18, "at": 3600, "duration": 300, "pipeline": 9, "stage": 1, "name": "rspec"}
 *   {"cancel": 9, "at": 3900}
 *
 * `at` is when the job became pending (an ISO 8601 instant with a zone, or seconds from the start),
 * except for a pipeline job (one with `stage` or `needs`): there it is when the pipeline was
 * created, and the job becomes pending when what it depends on has finished (the previous stages,
 * or its `needs`), as GitLab processes a pipeline. That is closed loop: a slow fleet delays later
 * stages. The start is the `{"start": ISO8601}` line when the trace has one (it must come first),
 * else the `start` option, else the first ISO `at` rounded down to midnight UTC, else
 * 2025-03-03T00:00:00Z (a Monday). `tags` defaults to [] (an untagged job); `project` (a GitLab
 * project id) to 1. Optional: `pipeline` (jobs sharing one are listed together by the simulated
 * GitLab API; by default each job is its own pipeline), `stage` (0-based) and `needs` (ids of jobs
 * of the same pipeline; `[]` = at once) for pipeline jobs, `name` (GitLab's job name), `when`
 * (`manual`: never played; `on_failure`: runs only after a failure), `fails: true` (the job fails
 * after its duration: later `on_success` jobs are skipped), `stuck: true` (GitLab keeps the job
 * pending and no runner ever takes it). A line `{"cancel": PIPELINE, "at": ...}` cancels a
 * pipeline at that instant (a newer push superseding it, say).
 */
export interface TraceJob {
  /** The id as written in the trace (string or number), for reports. */
  id: string;
  /** Epoch ms when the job became pending. */
  at: number;
  /** Seconds the job runs once a worker picks it. */
  duration: number;
  tags: string[];
  project: number;
  /** Pipeline the job belongs to, when the trace says (the simulated API's page limits count pipelines). */
  pipeline?: string;
  /** GitLab keeps it pending for ever: no runner takes it. */
  stuck?: boolean;
  /** Pipeline jobs (closed loop): the 0-based stage. Set on every job of a pipeline that has one with `stage` or `needs`. */
  stage?: number;
  /** Ids of the jobs of the same pipeline this one waits for; undefined = the previous stages (GitLab's stage order); [] = none. */
  needs?: string[];
  /** GitLab's job name (build_name); the controller learns durations per project and name. */
  name?: string;
  /** GitLab's `when`: manual (never played here) or on_failure (runs only when something it waits for failed); default on_success. */
  when?: 'manual' | 'on_failure';
  /** The job fails after its duration (its dependants that run on success are skipped). */
  fails?: boolean;
}

/** A pipeline canceled at an instant (every job not finished is canceled; a running one is stopped). */
export interface TraceCancel {
  pipeline: string;
  at: number;
}

export interface Trace {
  /** Epoch ms: the origin of numeric `at` values and the start of the simulated time. */
  start: number;
  jobs: TraceJob[];
  cancels?: TraceCancel[];
}

/** A job whose `at` is its pipeline's creation and that becomes pending when what it waits for has finished. */
export const isPipelineJob = (j: TraceJob): boolean => j.stage !== undefined;

export class TraceError extends Error {
  constructor(
    readonly source: string,
    readonly problems: string[],
  ) {
    super(`invalid trace ${source}:\n${problems.slice(0, 20).map((p) => `  - ${p}`).join('\n')}${problems.length > 20 ? `\n  ... and ${problems.length - 20} more` : ''}`);
    this.name = 'TraceError';
  }
}

export const DEFAULT_TRACE_START = Date.parse('2025-03-03T00:00:00Z');

const ISO_INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})$/;
const KNOWN_KEYS = new Set(['id', 'at', 'duration', 'tags', 'project', 'pipeline', 'stuck', 'stage', 'needs', 'name', 'when', 'fails']);
const ACCEPTED = 'id, at, duration, tags, project, pipeline, stage, needs, name, when, fails, stuck';

function parseInstant(value: string): number | undefined {
  if (!ISO_INSTANT.test(value)) return undefined;
  const t = Date.parse(value);
  return Number.isNaN(t) ? undefined : t;
}

/** Parses and validates a trace; every bad line is reported with its number and what is accepted. */
export function parseTrace(text: string, source = '(trace)', options: { start?: number } = {}): Trace {
  const problems: string[] = [];
  const raw: { line: number; obj: Record<string, unknown> }[] = [];
  const cancelLines: { line: number; obj: Record<string, unknown> }[] = [];
  let headerStart: number | undefined;
  const lines = text.split(/\r?\n/);
  lines.forEach((lineText, i) => {
    const line = i + 1;
    if (lineText.trim() === '') return;
    let obj: unknown;
    try {
      obj = JSON.parse(lineText);
    } catch (e) {
      problems.push(`line ${line}: not JSON (${(e as Error).message})`);
      return;
    }
    if (!obj || typeof obj !== 'object' || Array.isArray(obj)) {
      problems.push(`line ${line}: expected a JSON object such as {"id": 1, "at": 0, "duration": 60, "tags": []}`);
      return;
    }
    const o = obj as Record<string, unknown>;
    if ('start' in o && !('id' in o)) {
      if (raw.length > 0 || headerStart !== undefined) problems.push(`line ${line}: a {"start": ...} line must be the first line of the trace`);
      else if (typeof o.start !== 'string' || parseInstant(o.start) === undefined)
        problems.push(`line ${line}: "start" must be an ISO 8601 instant with a zone, e.g. "2025-03-03T00:00:00Z"`);
      else headerStart = parseInstant(o.start);
      return;
    }
    if ('cancel' in o && !('id' in o)) cancelLines.push({ line, obj: o });
    else raw.push({ line, obj: o });
  });

  let start = headerStart ?? options.start;
  if (start === undefined) {
    const firstIso = raw.find((r) => typeof r.obj.at === 'string');
    const t = firstIso ? parseInstant(firstIso.obj.at as string) : undefined;
    start = t !== undefined ? Math.floor(t / 86_400_000) * 86_400_000 : DEFAULT_TRACE_START;
  }

  const jobs: TraceJob[] = [];
  const lineOf = new Map<TraceJob, number>();
  const seen = new Map<string, number>();
  for (const { line, obj } of raw) {
    const bad = (msg: string) => problems.push(`line ${line}: ${msg}`);
    const unknown = Object.keys(obj).filter((k) => !KNOWN_KEYS.has(k));
    if (unknown.length) bad(`unknown field${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => `"${k}"`).join(', ')} (accepted: ${ACCEPTED})`);
    const { id, at, duration, tags, project, pipeline, stuck, stage, needs, name, when, fails } = obj;
    if (!((typeof id === 'string' && id.length > 0) || (typeof id === 'number' && Number.isFinite(id)))) {
      bad('"id" is required: a non-empty string or a number');
      continue;
    }
    const key = String(id);
    if (seen.has(key)) bad(`"id" ${JSON.stringify(id)} is already used on line ${seen.get(key)}; ids must be unique`);
    seen.set(key, line);
    let instant: number | undefined;
    if (typeof at === 'number' && Number.isFinite(at) && at >= 0) instant = start + Math.round(at * 1000);
    else if (typeof at === 'string') instant = parseInstant(at);
    if (instant === undefined) bad(`"at" must be an ISO 8601 instant with a zone ("2025-03-03T08:15:00Z") or seconds from the start (a number >= 0), got ${JSON.stringify(at)}`);
    if (typeof duration !== 'number' || !Number.isFinite(duration) || duration <= 0) bad(`"duration" must be a positive number of seconds, got ${JSON.stringify(duration)}`);
    let tagList: string[] = [];
    if (tags !== undefined) {
      if (!Array.isArray(tags) || tags.some((t) => typeof t !== 'string' || t.length === 0)) bad('"tags" must be a list of non-empty strings');
      else tagList = tags as string[];
    }
    let projectId = 1;
    if (project !== undefined) {
      if (typeof project !== 'number' || !Number.isInteger(project) || project <= 0) bad('"project" must be a positive integer (a GitLab project id)');
      else projectId = project;
    }
    if (pipeline !== undefined && !((typeof pipeline === 'string' && pipeline.length > 0) || (typeof pipeline === 'number' && Number.isFinite(pipeline))))
      bad('"pipeline" must be a non-empty string or a number');
    if (stuck !== undefined && typeof stuck !== 'boolean') bad('"stuck" must be true or false');
    if (fails !== undefined && typeof fails !== 'boolean') bad('"fails" must be true or false');
    if (stage !== undefined && !(typeof stage === 'number' && Number.isInteger(stage) && stage >= 0 && stage < 1000)) bad('"stage" must be an integer from 0 (the first stage) to 999');
    if (needs !== undefined && !(Array.isArray(needs) && needs.every((n) => (typeof n === 'string' && n.length > 0) || (typeof n === 'number' && Number.isFinite(n)))))
      bad('"needs" must be a list of job ids (strings or numbers) of the same pipeline, [] for none');
    if (name !== undefined && !(typeof name === 'string' && name.length > 0 && name.length <= 255)) bad('"name" must be a non-empty string of at most 255 characters');
    if (when !== undefined && when !== 'manual' && when !== 'on_failure') bad('"when" must be "manual" or "on_failure" (leave it out for on_success)');
    if ((stage !== undefined || needs !== undefined || when !== undefined) && pipeline === undefined) bad('"stage", "needs" and "when" need a "pipeline"');
    else if (when !== undefined && stage === undefined && needs === undefined) bad('"when" is for pipeline jobs: give the job a "stage" (or "needs")');
    if (instant !== undefined && instant < start) bad(`"at" ${JSON.stringify(at)} is before the trace start ${new Date(start).toISOString()}`);
    if (instant !== undefined && typeof duration === 'number' && duration > 0) {
      const job: TraceJob = { id: key, at: instant, duration, tags: [...new Set(tagList)], project: projectId };
      if (pipeline !== undefined) job.pipeline = String(pipeline);
      if (stuck === true) job.stuck = true;
      if (typeof stage === 'number') job.stage = stage;
      else if (Array.isArray(needs)) job.stage = 0;
      if (Array.isArray(needs)) job.needs = needs.map(String);
      if (typeof name === 'string') job.name = name;
      if (when === 'manual' || when === 'on_failure') job.when = when;
      if (fails === true) job.fails = true;
      jobs.push(job);
      lineOf.set(job, line);
    }
  }
  problems.push(...pipelineProblems(jobs, lineOf));
  const cancels: TraceCancel[] = [];
  const pipelines = new Set(jobs.map((j) => j.pipeline));
  for (const { line, obj } of cancelLines) {
    const unknown = Object.keys(obj).filter((k) => k !== 'cancel' && k !== 'at');
    if (unknown.length) problems.push(`line ${line}: a cancel line has only "cancel" (a pipeline) and "at", not ${unknown.map((k) => `"${k}"`).join(', ')}`);
    const p = obj.cancel;
    if (!((typeof p === 'string' && p.length > 0) || (typeof p === 'number' && Number.isFinite(p)))) problems.push(`line ${line}: "cancel" must name a pipeline (a string or number)`);
    else if (!pipelines.has(String(p))) problems.push(`line ${line}: "cancel" names pipeline ${JSON.stringify(p)}, which no job of the trace belongs to`);
    const t = typeof obj.at === 'number' && Number.isFinite(obj.at) && obj.at >= 0 ? start + Math.round(obj.at * 1000) : typeof obj.at === 'string' ? parseInstant(obj.at) : undefined;
    if (t === undefined) problems.push(`line ${line}: "at" of a cancel must be an ISO 8601 instant with a zone or seconds from the start`);
    if (t !== undefined && problems.length === 0) cancels.push({ pipeline: String(p), at: t });
  }
  if (problems.length) throw new TraceError(source, problems);
  if (jobs.length === 0) throw new TraceError(source, ['the trace has no jobs']);
  // Stable: jobs arriving at the same instant keep their order in the file.
  jobs.sort((a, b) => a.at - b.at);
  cancels.sort((a, b) => a.at - b.at);
  return cancels.length ? { start, jobs, cancels } : { start, jobs };
}

/**
 * A pipeline's jobs are all pipeline jobs (with a stage) or none; they share one `at` (the
 * pipeline's creation), one project and unique names; `needs` name jobs of the same pipeline and
 * form no cycle, as GitLab refuses such a .gitlab-ci.yml.
 */
function pipelineProblems(jobs: readonly TraceJob[], lineOf: ReadonlyMap<TraceJob, number>): string[] {
  const problems: string[] = [];
  const byPipeline = new Map<string, TraceJob[]>();
  for (const j of jobs) if (j.pipeline !== undefined) byPipeline.set(j.pipeline, [...(byPipeline.get(j.pipeline) ?? []), j]);
  for (const [p, list] of byPipeline) {
    const staged = list.filter(isPipelineJob);
    if (staged.length === 0) continue;
    const first = lineOf.get(staged[0]);
    const say = (j: TraceJob, msg: string) => problems.push(`line ${lineOf.get(j)}: ${msg}`);
    for (const j of list) {
      if (!isPipelineJob(j)) say(j, `pipeline ${JSON.stringify(p)} has jobs with "stage" or "needs" (line ${first}); every job of it needs a "stage"`);
      else if (j.at !== staged[0].at) say(j, `"at" of a pipeline job is the pipeline's creation: pipeline ${JSON.stringify(p)} was created at another instant on line ${first}`);
      else if (j.project !== staged[0].project) say(j, `pipeline ${JSON.stringify(p)} belongs to project ${staged[0].project} (line ${first})`);
    }
    const ids = new Map(staged.map((j) => [j.id, j]));
    const names = new Map<string, TraceJob>();
    for (const j of staged) {
      const n = j.name ?? j.id;
      if (names.has(n)) say(j, `job name ${JSON.stringify(n)} is used twice in pipeline ${JSON.stringify(p)} (line ${lineOf.get(names.get(n)!)}); GitLab job names are unique in a pipeline`);
      names.set(n, j);
      for (const n2 of j.needs ?? []) if (!ids.has(n2)) say(j, `"needs" names ${JSON.stringify(n2)}, which is not a job of pipeline ${JSON.stringify(p)}`);
    }
    // Cycles: depth-first over needs (stage order cannot loop).
    const state = new Map<string, 1 | 2>();
    const visit = (j: TraceJob, path: string[]): boolean => {
      if (state.get(j.id) === 2) return false;
      if (state.get(j.id) === 1) {
        say(j, `"needs" form a cycle in pipeline ${JSON.stringify(p)}: ${[...path, j.id].join(' -> ')}`);
        return true;
      }
      state.set(j.id, 1);
      for (const n of j.needs ?? []) {
        const d = ids.get(n);
        if (d && visit(d, [...path, j.id])) return true;
      }
      state.set(j.id, 2);
      return false;
    };
    for (const j of staged) if (visit(j, [])) break;
  }
  return problems;
}

/** Writes a trace in the same format (with a start line and seconds from it: compact). */
export function formatTrace(trace: Trace): string {
  const out = [JSON.stringify({ start: new Date(trace.start).toISOString() })];
  for (const j of trace.jobs) {
    const line: Record<string, unknown> = { id: j.id, at: Math.round((j.at - trace.start) / 1000), duration: j.duration, tags: j.tags };
    if (j.project !== 1) line.project = j.project;
    if (j.pipeline !== undefined) line.pipeline = j.pipeline;
    if (j.stage !== undefined) line.stage = j.stage;
    if (j.needs !== undefined) line.needs = j.needs;
    if (j.name !== undefined) line.name = j.name;
    if (j.when !== undefined) line.when = j.when;
    if (j.fails) line.fails = true;
    if (j.stuck) line.stuck = true;
    out.push(JSON.stringify(line));
  }
  for (const c of trace.cancels ?? []) out.push(JSON.stringify({ cancel: c.pipeline, at: Math.round((c.at - trace.start) / 1000) }));
  return out.join('\n') + '\n';
}
