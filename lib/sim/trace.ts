/**
 * The job trace the simulation replays: JSON lines, one job each (docs/simulation.md).
 *
 *   {"id": "p1-build", "at": "2025-03-03T08:15:00Z", "duration": 240, "tags": ["docker"]}
 *   {"id": 17, "at": 3600, "duration": 95}
 *
 * `at` is when the job became pending: an ISO 8601 instant with a zone, or seconds from the start.
 * The start is the `{"start": ISO8601}` line when the trace has one (it must come first), else the
 * `start` option, else the first ISO `at` rounded down to midnight UTC, else 2025-03-03T00:00:00Z
 * (a Monday). `tags` defaults to [] (an untagged job); `project` (a GitLab project id) to 1.
 * Optional: `pipeline` (jobs sharing one are listed together by the simulated GitLab API; by
 * default each job is its own pipeline) and `stuck: true` (GitLab keeps the job pending and no
 * runner ever takes it: a runner paused or not enabled for the project).
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
}

export interface Trace {
  /** Epoch ms: the origin of numeric `at` values and the start of the simulated time. */
  start: number;
  jobs: TraceJob[];
}

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
const KNOWN_KEYS = new Set(['id', 'at', 'duration', 'tags', 'project', 'pipeline', 'stuck']);

function parseInstant(value: string): number | undefined {
  if (!ISO_INSTANT.test(value)) return undefined;
  const t = Date.parse(value);
  return Number.isNaN(t) ? undefined : t;
}

/** Parses and validates a trace; every bad line is reported with its number and what is accepted. */
export function parseTrace(text: string, source = '(trace)', options: { start?: number } = {}): Trace {
  const problems: string[] = [];
  const raw: { line: number; obj: Record<string, unknown> }[] = [];
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
    raw.push({ line, obj: o });
  });

  let start = headerStart ?? options.start;
  if (start === undefined) {
    const firstIso = raw.find((r) => typeof r.obj.at === 'string');
    const t = firstIso ? parseInstant(firstIso.obj.at as string) : undefined;
    start = t !== undefined ? Math.floor(t / 86_400_000) * 86_400_000 : DEFAULT_TRACE_START;
  }

  const jobs: TraceJob[] = [];
  const seen = new Map<string, number>();
  for (const { line, obj } of raw) {
    const bad = (msg: string) => problems.push(`line ${line}: ${msg}`);
    const unknown = Object.keys(obj).filter((k) => !KNOWN_KEYS.has(k));
    if (unknown.length) bad(`unknown field${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => `"${k}"`).join(', ')} (accepted: id, at, duration, tags, project, pipeline, stuck)`);
    const { id, at, duration, tags, project, pipeline, stuck } = obj;
    if (!((typeof id === 'string' && id.length > 0) || (typeof id === 'number' && Number.isFinite(id)))) {
      bad('"id" is required: a non-empty string or a number');
      continue;
    }
    const key = String(id);
    if (seen.has(key)) bad(`"id" ${JSON.stringify(id)} is already used on line ${seen.get(key)}; ids must be unique`);
    seen.set(key, line);
    let when: number | undefined;
    if (typeof at === 'number' && Number.isFinite(at) && at >= 0) when = start + Math.round(at * 1000);
    else if (typeof at === 'string') when = parseInstant(at);
    if (when === undefined) bad(`"at" must be an ISO 8601 instant with a zone ("2025-03-03T08:15:00Z") or seconds from the start (a number >= 0), got ${JSON.stringify(at)}`);
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
    if (when !== undefined && when < start) bad(`"at" ${JSON.stringify(at)} is before the trace start ${new Date(start).toISOString()}`);
    if (when !== undefined && typeof duration === 'number' && duration > 0) {
      const job: TraceJob = { id: key, at: when, duration, tags: [...new Set(tagList)], project: projectId };
      if (pipeline !== undefined) job.pipeline = String(pipeline);
      if (stuck === true) job.stuck = true;
      jobs.push(job);
    }
  }
  if (problems.length) throw new TraceError(source, problems);
  if (jobs.length === 0) throw new TraceError(source, ['the trace has no jobs']);
  // Stable: jobs arriving at the same instant keep their order in the file.
  jobs.sort((a, b) => a.at - b.at);
  return { start, jobs };
}

/** Writes a trace in the same format (with a start line and seconds from it: compact). */
export function formatTrace(trace: Trace): string {
  const out = [JSON.stringify({ start: new Date(trace.start).toISOString() })];
  for (const j of trace.jobs) {
    const line: Record<string, unknown> = { id: j.id, at: Math.round((j.at - trace.start) / 1000), duration: j.duration, tags: j.tags };
    if (j.project !== 1) line.project = j.project;
    if (j.pipeline !== undefined) line.pipeline = j.pipeline;
    if (j.stuck) line.stuck = true;
    out.push(JSON.stringify(line));
  }
  return out.join('\n') + '\n';
}
