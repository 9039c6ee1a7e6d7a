/**
 * GitLab's pipeline processing in a simulated world: closed loop. A pipeline job (trace `stage` /
 * `needs`) is created with its pipeline and becomes pending only when what it waits for has
 * finished, so a fleet that makes one stage wait delays the next: both policies of a run face
 * the consequences of their own speed.
 *
 * The rules, as GitLab applies them (Ci::ProcessPipelineService; docs "needs", "when"):
 *  - A job waits for every job of the earlier stages, or, with `needs`, for the jobs it names
 *    (`needs: []`: for nothing). GitLab processes a finished job's dependants a moment later
 *    (PipelineProcessWorker): `lagSeconds`.
 *  - Once they are all done: an on_success job becomes pending if none of them failed (and, with
 *    `needs`, all of them ran), else it is skipped; an on_failure job becomes pending only if one
 *    failed, else it is skipped; a manual job becomes `manual` and, never played here, does not
 *    run. A manual job does not hold up later stages (manual jobs allow failure by default); a job
 *    that needs it never runs.
 *  - Skipped and manual jobs send no job hook (facts.md); a canceled one does.
 *  - A canceled pipeline cancels every job that has not finished: created and pending jobs end,
 *    a running job is stopped on its worker.
 *  - A job that waits for a job no runner takes (stuck, or tags no pool serves) never runs: it is
 *    `blocked` from the start.
 */
import { isPipelineJob, type TraceCancel, type TraceJob } from './trace';
import type { Rng } from './rng';

/** How a trace job ended: its last attempt's result, or why it never ran. */
export type JobEnd = 'success' | 'failed' | 'skipped' | 'manual' | 'canceled';

/** What the pipeline processing needs from the world. */
export interface PipelineWorld {
  readonly now: number;
  at(t: number, run: () => void): void;
  /** GitLab creates the job (it gets its id; the `created` hook goes out). */
  createJob(traceIndex: number, pipelineId: number, stageName: string): void;
  /** The job becomes pending (its first attempt). */
  enqueue(traceIndex: number): void;
  /** The job will not run: skipped or manual (no hook), or canceled before it was pending (hook). */
  settle(traceIndex: number, end: 'skipped' | 'manual' | 'canceled'): void;
  /** Cancels the job's current attempt, pending or running (a hook); false when it has none. */
  cancelActive(traceIndex: number): boolean;
}

interface Node {
  index: number;
  job: TraceJob;
  deps: number[];
  dependants: number[];
  /** waiting: created, not yet decided; queued: pending or running; done: ended. */
  phase: 'waiting' | 'queued' | 'done';
  end?: JobEnd;
}

interface Pipeline {
  id: number;
  key: string;
  nodes: number[];
  stageNames: string[];
  created: boolean;
  canceled: boolean;
}

const STAGE_NAMES = ['build', 'test', 'deploy'];
/** Stage names for the hooks and the API: GitLab's default names first, then numbered ones. */
export function stageName(stage: number): string {
  return STAGE_NAMES[stage] ?? `stage-${stage + 1}`;
}

/** Trace pipelines (string ids) as GitLab's numeric pipeline ids, the same in both worlds of a run. */
export function pipelineIds(trace: readonly TraceJob[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const j of trace) if (j.pipeline !== undefined && !out.has(j.pipeline)) out.set(j.pipeline, 500_000 + out.size);
  return out;
}

export class PipelineProcess {
  private readonly nodes = new Map<number, Node>();
  private readonly pipelines = new Map<string, Pipeline>();
  /** Trace indexes of pipeline jobs that can never run: they wait for a job no runner takes. */
  readonly blocked = new Set<number>();

  constructor(
    private readonly world: PipelineWorld,
    trace: readonly TraceJob[],
    ids: ReadonlyMap<string, number>,
    private readonly lagRng: Rng,
    /** GitLab keeps these jobs pending for ever (stuck, or tags no pool serves). */
    neverTaken: (job: TraceJob) => boolean,
    private readonly lagSeconds: [number, number] = [1, 4],
  ) {
    const byPipeline = new Map<string, number[]>();
    trace.forEach((j, i) => {
      if (!isPipelineJob(j)) return;
      byPipeline.set(j.pipeline!, [...(byPipeline.get(j.pipeline!) ?? []), i]);
    });
    for (const [key, list] of byPipeline) {
      const byId = new Map(list.map((i) => [trace[i].id, i]));
      const stages = [...new Set(list.map((i) => trace[i].stage!))].sort((a, b) => a - b);
      for (const i of list) {
        const j = trace[i];
        const deps = j.needs !== undefined ? j.needs.map((n) => byId.get(n)!) : list.filter((k) => trace[k].stage! < j.stage!);
        this.nodes.set(i, { index: i, job: j, deps, dependants: [], phase: 'waiting' });
      }
      for (const i of list) for (const d of this.nodes.get(i)!.deps) this.nodes.get(d)!.dependants.push(i);
      // GitLab numbers a pipeline's jobs in stage order at creation.
      list.sort((a, b) => trace[a].stage! - trace[b].stage! || a - b);
      this.pipelines.set(key, { id: ids.get(key)!, key, nodes: list, stageNames: stages.map(stageName), created: false, canceled: false });
    }
    // Blocked: a job that waits, directly or not, for a job GitLab never gives a runner.
    const blockedFrom = (i: number, seen = new Set<number>()): boolean => {
      if (this.blocked.has(i)) return true;
      if (seen.has(i)) return false;
      seen.add(i);
      const n = this.nodes.get(i)!;
      if (n.job.when !== 'manual' && neverTaken(n.job)) return false; // it is itself stuck, not blocked
      return n.deps.some((d) => (this.nodes.get(d)!.job.when !== 'manual' && neverTaken(this.nodes.get(d)!.job)) || blockedFrom(d, seen));
    };
    for (const i of this.nodes.keys()) if (blockedFrom(i)) this.blocked.add(i);
  }

  /** Schedules every pipeline's creation and the trace's cancels. */
  start(trace: readonly TraceJob[], cancels: readonly TraceCancel[] = []): void {
    for (const p of this.pipelines.values()) this.world.at(trace[p.nodes[0]].at, () => this.create(p));
    for (const c of cancels) {
      const p = this.pipelines.get(c.pipeline);
      if (p) this.world.at(c.at, () => this.cancel(p));
    }
  }

  /** True for a trace job this process runs (a pipeline job). */
  has(traceIndex: number): boolean {
    return this.nodes.has(traceIndex);
  }

  /** The stage name of a pipeline job. */
  stageOf(traceIndex: number): string | undefined {
    const n = this.nodes.get(traceIndex);
    return n ? stageName(n.job.stage!) : undefined;
  }

  /** The pipeline's stage names in order, for the API. */
  stagesOf(key: string): string[] {
    return this.pipelines.get(key)?.stageNames ?? [];
  }

  /** Whether GitLab has created the pipeline yet, and whether it is over (every job ended, or canceled). */
  status(key: string): { created: boolean; active: boolean; canceled: boolean } {
    const p = this.pipelines.get(key);
    if (!p) return { created: false, active: false, canceled: false };
    return { created: p.created, active: p.created && !p.canceled && p.nodes.some((i) => this.nodes.get(i)!.phase !== 'done' && !this.blocked.has(i)), canceled: p.canceled };
  }

  /** What GitLab shows for a job that has no attempt yet: created, or how it ended without running. */
  idleStatus(traceIndex: number): string {
    const n = this.nodes.get(traceIndex);
    return n?.end ?? 'created';
  }

  private create(p: Pipeline): void {
    p.created = true;
    for (const i of p.nodes) this.world.createJob(i, p.id, stageName(this.nodes.get(i)!.job.stage!));
    for (const i of p.nodes) if (this.nodes.get(i)!.deps.length === 0) this.later(i);
  }

  /** GitLab decides a job a moment after what it waits for has ended. */
  private later(i: number): void {
    const [lo, hi] = this.lagSeconds;
    this.world.at(this.world.now + Math.round((lo + this.lagRng.next() * (hi - lo)) * 1000), () => this.decide(i));
  }

  private decide(i: number): void {
    const n = this.nodes.get(i)!;
    if (n.phase !== 'waiting' || this.blocked.has(i)) return;
    const deps = n.deps.map((d) => this.nodes.get(d)!);
    if (deps.some((d) => d.phase !== 'done')) return;
    const failed = deps.some((d) => d.end === 'failed');
    const needsUnmet = n.job.needs !== undefined && deps.some((d) => d.end !== 'success' && d.end !== 'failed');
    if (n.job.when === 'manual') return this.end(n, failed || needsUnmet ? 'skipped' : 'manual');
    const runs = n.job.when === 'on_failure' ? failed : !failed && !needsUnmet;
    if (!runs) return this.end(n, 'skipped');
    n.phase = 'queued';
    this.world.enqueue(i);
  }

  private end(n: Node, end: JobEnd): void {
    n.phase = 'done';
    n.end = end;
    if (end === 'skipped' || end === 'manual') this.world.settle(n.index, end);
    for (const d of n.dependants) this.later(d);
  }

  /** The world reports a job's last attempt ended (success or failed), or was canceled. */
  ended(traceIndex: number, end: 'success' | 'failed' | 'canceled'): void {
    const n = this.nodes.get(traceIndex);
    if (!n || n.phase === 'done') return;
    n.phase = 'done';
    n.end = end;
    for (const d of n.dependants) this.later(d);
  }

  private cancel(p: Pipeline): void {
    if (!p.created || p.canceled) return;
    p.canceled = true;
    for (const i of p.nodes) {
      const n = this.nodes.get(i)!;
      if (n.phase === 'done') continue;
      const was = n.phase;
      n.phase = 'done';
      n.end = 'canceled';
      if (was === 'queued' && this.world.cancelActive(i)) continue;
      this.world.settle(i, 'canceled');
    }
  }
}
