/**
 * Worker reports: how the controller learns what each worker does without a call per job into an
 * account-wide AWS bucket (docs/controller.md, "Worker reports"; the alternatives weighed are in
 * docs/architecture.md).
 *
 * A worker sends a small JSON report to the deployment's worker-reports SQS queue (`aws sqs
 * send-message`, lib/worker/script.ts) when it becomes ready, at every job start and end, when it
 * starts leaving, when its runner has stopped for good, and as a heartbeat every few minutes. It
 * never tags itself (its role has no ec2:CreateTags). The reconcile pass reads the queue, checks
 * who sent each report, keeps the newest per instance, and writes the result onto the instances as
 * tags in a few batched CreateTags calls (one per distinct tag set, rounded to the minute), so the
 * fleet can still be rebuilt from EC2 alone. A report whose tag write failed is not deleted: SQS
 * delivers it again. A lost report is repaired by the next one (heartbeat).
 *
 * Trust: SQS stamps every message with the sender's identity (SenderId). Instance-profile
 * credentials are an assumed-role session named after the instance, so the SenderId of a worker's
 * report is `<role id>:<instance id>`; a report whose session is not the instance it speaks for,
 * or whose role is not a worker role of this deployment, is refused. A hostile job can therefore
 * lie only about its own instance, and the planner's end of life bounds what that lie can hold.
 *
 * Pure: no AWS. The SQS adapter (lib/aws/sqs-inbox.ts) turns messages into WorkerReport values.
 */
import { deriveState, type ReportedState } from '../model';
import { REPORTING } from '../planner';
import type { FleetWorker } from './ports';

export const REPORT_VERSION = 1;

const STATES: readonly ReportedState[] = ['idle', 'busy', 'draining', 'stopped'];
/** Reports only ever move forward through these ranks within one boot (a worker lives one boot). */
const RANK: Record<ReportedState, number> = { idle: 0, busy: 0, draining: 1, stopped: 2 };

/**
 * A worker's boot, as it timed it (lib/worker/script.ts boot_timeline): seconds after its
 * launched-at tag (the controller's CreateFleet) at which each step was done. Absent steps were not
 * measured (no /proc/stat btime, an older worker). Carried by the ready report only.
 */
export interface BootTimeline {
  /** The kernel booted: the instance was running. */
  running?: number;
  /** cloud-init ran the user data. */
  userData?: number;
  /** docker answers. */
  docker?: number;
  /** gitlab-runner is in place (installed, or the pre-built image's release checked). */
  runner?: number;
  /** The ready report was sent (the runner starts once SQS accepted it). */
  ready?: number;
  /** The worker image: 'prebuilt' (docs/worker.md, "Pre-built images") or 'base'. */
  image?: 'prebuilt' | 'base';
}

export const BOOT_STEPS = ['running', 'userData', 'docker', 'runner', 'ready'] as const;
const BOOT_KEYS: Record<(typeof BOOT_STEPS)[number], string> = { running: 'k', userData: 'u', docker: 'd', runner: 'g', ready: 'r' };

export interface WorkerReport {
  /** Id of the message that carried it (SQS message id): the caller deletes settled reports by it. */
  id: string;
  instanceId: string;
  /** Grows by one with every report of this boot (heartbeats included): the newest wins. */
  seq: number;
  state: ReportedState;
  builds: number;
  /** Worker clock, epoch ms: when the report was made. */
  at: number;
  /** Worker clock, epoch ms: when its runner became ready (absent before that). */
  readyAt?: number;
  /** Worker clock, epoch ms: since when it is idle (state idle). */
  idleSince?: number;
  /** The value of the `retire` tag the worker saw, when it is leaving because of it. */
  retireSeen?: string;
  /** Why it is leaving (draining, stopped), for the log. */
  why?: string;
  /** Its boot timeline (ready report only). */
  boot?: BootTimeline;
  /** SQS SenderId attribute: `<role id>:<instance id>` for instance-profile credentials. */
  sender?: string;
  /** SQS SentTimestamp (SQS's clock), epoch ms. */
  sentAt?: number;
  /** SQS ApproximateReceiveCount. */
  receiveCount?: number;
}

export class ReportError extends Error {
  override name = 'ReportError';
}

/** The report body: short keys, epoch seconds, because the worker builds it with printf. */
interface ReportBody {
  v: number;
  i: string;
  q: number;
  s: string;
  n: number;
  t: number;
  r?: number;
  is?: number;
  rt?: string;
  w?: string;
  b?: Record<string, unknown>;
}

const INSTANCE_ID = /^i-[0-9a-f]{8,17}$/;
const secs = (x: unknown) => (typeof x === 'number' && Number.isFinite(x) && x > 0 ? Math.round(x * 1000) : undefined);

/** The body a worker sends (lib/worker/script.ts builds the same with printf); for tests and the simulation. */
export function encodeReport(r: Omit<WorkerReport, 'id' | 'sender' | 'sentAt' | 'receiveCount'>): string {
  const b: ReportBody = { v: REPORT_VERSION, i: r.instanceId, q: r.seq, s: r.state, n: r.builds, t: Math.floor(r.at / 1000) };
  if (r.readyAt !== undefined) b.r = Math.floor(r.readyAt / 1000);
  if (r.idleSince !== undefined) b.is = Math.floor(r.idleSince / 1000);
  if (r.retireSeen !== undefined) b.rt = r.retireSeen;
  if (r.why !== undefined) b.w = r.why;
  if (r.boot !== undefined) {
    const t: Record<string, unknown> = {};
    for (const step of BOOT_STEPS) if (r.boot[step] !== undefined) t[BOOT_KEYS[step]] = r.boot[step];
    if (r.boot.image) t.img = r.boot.image;
    b.b = t;
  }
  return JSON.stringify(b);
}

/** A report from a message body and its SQS attributes. Throws ReportError when the body is not a report (left for the dead-letter queue). */
export function decodeReport(id: string, body: string, attrs: { sender?: string; sentAt?: number; receiveCount?: number } = {}): WorkerReport {
  let b: ReportBody;
  try {
    b = JSON.parse(body) as ReportBody;
  } catch {
    throw new ReportError('report body is not JSON');
  }
  if (!b || typeof b !== 'object' || b.v !== REPORT_VERSION) throw new ReportError(`unknown report version ${JSON.stringify((b as { v?: unknown } | null)?.v ?? null)} (expected ${REPORT_VERSION})`);
  if (typeof b.i !== 'string' || !INSTANCE_ID.test(b.i)) throw new ReportError('report needs "i": an instance id');
  if (!Number.isSafeInteger(b.q) || b.q < 0) throw new ReportError('report needs "q": a sequence number >= 0');
  if (!STATES.includes(b.s as ReportedState)) throw new ReportError(`report state ${JSON.stringify(b.s)} is not one of ${STATES.join(', ')}`);
  const at = secs(b.t);
  if (at === undefined) throw new ReportError('report needs "t": epoch seconds');
  const r: WorkerReport = { id, instanceId: b.i, seq: b.q, state: b.s as ReportedState, builds: Number.isSafeInteger(b.n) && b.n >= 0 ? b.n : 0, at, ...attrs };
  const ready = secs(b.r);
  if (ready !== undefined) r.readyAt = ready;
  const idle = secs(b.is);
  if (idle !== undefined) r.idleSince = idle;
  if (typeof b.rt === 'string') r.retireSeen = b.rt.slice(0, 64);
  if (typeof b.w === 'string') r.why = b.w.slice(0, 200);
  const boot = decodeBoot(b.b);
  if (boot) r.boot = boot;
  return r;
}

/** A boot timeline from a report body; a malformed one is dropped (it is for the log, never for a decision). */
function decodeBoot(raw: unknown): BootTimeline | undefined {
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) return undefined;
  const t = raw as Record<string, unknown>;
  const out: BootTimeline = {};
  for (const step of BOOT_STEPS) {
    const v = t[BOOT_KEYS[step]];
    // A boot is minutes at most; an hour either way is a clock gone wrong.
    if (typeof v === 'number' && Number.isFinite(v) && Math.abs(v) <= 3600) out[step] = Math.round(v * 10) / 10;
  }
  if (t.img === 'prebuilt' || t.img === 'base') out.image = t.img;
  return Object.keys(out).length ? out : undefined;
}

/**
 * Why a report cannot be trusted, or undefined when it can: its SenderId must be
 * `<role id>:<instance id>` with the instance the report speaks for and, when the worker roles
 * are known (always, when deployed), one of their ids. There is no switch that turns this off.
 */
export function senderProblem(r: Pick<WorkerReport, 'instanceId' | 'sender'>, workerRoleIds: readonly string[]): string | undefined {
  if (!r.sender) return 'no SenderId';
  const m = /^([A-Z0-9]+):(.+)$/.exec(r.sender);
  if (!m) return `SenderId ${JSON.stringify(r.sender.slice(0, 64))} is not an instance-profile session (<role id>:<instance id>)`;
  if (m[2] !== r.instanceId) return `sent by ${JSON.stringify(m[2].slice(0, 64))}, speaks for ${r.instanceId}`;
  if (workerRoleIds.length && !workerRoleIds.includes(m[1])) return `role ${m[1]} is not a worker role of this deployment`;
  return undefined;
}

/** What a worker said in its newest report, as the pass applied it (the fields its tags record). */
export type RememberedView = Pick<FleetWorker, 'reported' | 'readyAt' | 'idleSince' | 'stoppedAt'>;

/**
 * What a controller container remembers between passes: the newest report applied per instance
 * (its sequence number, build count and what it said). SQS standard queues may deliver out of
 * order; this drops an older report that arrives after a newer one.
 *
 * It also keeps what the instance's tags may not show yet: the pass applies a report before it
 * writes it, the write can fail (CreateTags is one account-wide bucket) and SQS then hides the
 * report for the visibility timeout, and DescribeInstances is eventually consistent. Until the
 * tags catch up, the passes in between plan from what the worker said, not from older tags
 * (`overlay`): a worker that reported ready is never "never ready", one that reported a job is
 * never taken for idle. Lost with the container, which only means the tags are trusted again.
 */
export class ReportMemory {
  private readonly last = new Map<string, { seq: number; builds: number; view?: RememberedView }>();
  /** When each instance was last heard from (SQS's clock), or first seen by this container. */
  private readonly heard = new Map<string, number>();
  /** The newest SentTimestamp of any worker's report (or when this container first looked). */
  private newestAny?: number;
  /** When reports came again after the last quiet of the whole fleet (REPORTING.quietSeconds): silence counts from here at the earliest. */
  private resumedAt = -Infinity;
  /** Records that the instance was alive at `at` (a report's SentTimestamp). */
  heardFrom(id: string, at: number): void {
    this.heard.set(id, Math.max(at, this.heard.get(id) ?? -Infinity));
  }
  /**
   * Records the SentTimestamps of a pass's reports, with the number of ready workers there were.
   * A gap longer than REPORTING.quietSeconds between two reports of a fleet of at least
   * REPORTING.quietFleet workers, each repeating its state every heartbeat, is the reporting path
   * (SQS, the workers' network or IAM), not the workers.
   */
  heardAny(times: readonly number[], readyWorkers: number, now: number): void {
    this.newestAny ??= now;
    for (const t of [...times].sort((a, b) => a - b)) {
      if (readyWorkers >= REPORTING.quietFleet && t - this.newestAny > REPORTING.quietSeconds * 1000) this.resumedAt = Math.max(this.resumedAt, t);
      this.newestAny = Math.max(this.newestAny, t);
    }
  }
  /** Since when no worker at all has reported, when that is longer than REPORTING.quietSeconds in a fleet that large; else undefined. */
  quietSince(readyWorkers: number, now: number): number | undefined {
    const since = this.newestAny ?? now;
    return readyWorkers >= REPORTING.quietFleet && now - since > REPORTING.quietSeconds * 1000 ? since : undefined;
  }
  /** Milliseconds since the instance was last heard from, counted from the end of the last fleet-wide quiet at the earliest; an instance first seen now counts as heard now. */
  silentFor(id: string, now: number): number {
    if (!this.heard.has(id)) this.heard.set(id, now);
    return now - Math.max(this.heard.get(id)!, this.resumedAt);
  }
  get(id: string): { seq: number; builds: number; view?: RememberedView } | undefined {
    return this.last.get(id);
  }
  /** Records a report applied (with what it said) or written; an older one never replaces a newer one. */
  set(id: string, seq: number, builds: number, view?: RememberedView): void {
    const known = this.last.get(id);
    if (known && known.seq > seq) return;
    this.last.set(id, { seq, builds, view: view ?? (known?.seq === seq ? known.view : undefined) });
  }
  /** Forgets instances that are gone. */
  keepOnly(ids: ReadonlySet<string>): void {
    for (const id of this.last.keys()) if (!ids.has(id)) this.last.delete(id);
    for (const id of this.heard.keys()) if (!ids.has(id)) this.heard.delete(id);
  }
  get size(): number {
    return this.last.size;
  }
}

/**
 * The discovered worker with what its newest applied report said and its tags may not show yet.
 * Only ever towards "more careful": ready stays ready, draining and stopped are final, and when
 * the tags and the report disagree on idle or busy, busy wins until the next report.
 */
export function overlay(w: FleetWorker, known: { builds: number; view?: RememberedView } | undefined): FleetWorker {
  if (!known) return w;
  const out: FleetWorker = w.reported !== 'draining' && w.reported !== 'stopped' ? { ...w, builds: Math.max(w.builds, known.builds) } : { ...w };
  const v = known.view;
  if (!v?.reported) return out;
  if (out.readyAt === undefined && v.readyAt !== undefined) out.readyAt = v.readyAt;
  const tagged = out.reported;
  if (tagged === undefined || RANK[v.reported] > RANK[tagged]) {
    out.reported = v.reported;
    if (v.reported === 'idle') out.idleSince = out.idleSince ?? v.idleSince;
    if (v.reported === 'stopped') out.stoppedAt = v.stoppedAt;
    if (v.reported !== 'idle') delete out.idleSince;
  } else if (RANK[v.reported] === RANK[tagged] && v.reported !== tagged) {
    out.reported = 'busy';
    delete out.idleSince;
  }
  out.state = deriveState(out);
  return out;
}

/** A CreateTags the controller makes for workers' reports: one tag set, many instances. */
export interface WorkerStateWrite {
  tags: Record<string, string>;
  ids: string[];
}

export interface ReportsOutcome {
  /** The fleet with the reports applied. */
  workers: FleetWorker[];
  /** Tag writes, each with the reports it settles once it succeeded. */
  writes: { write: WorkerStateWrite; reports: string[]; applied: { instanceId: string; seq: number; builds: number }[] }[];
  /** Reports done with now: applied without a write, older than what is known, refused, or for instances that are gone. */
  settled: string[];
  /** Reports for instances discovery does not show (yet): delivered again later. */
  retry: string[];
  counts: { applied: number; unchanged: number; stale: number; refused: number; unknown: number };
  refusals: { id: string; instanceId: string; reason: string }[];
  /** Boot timelines the pass's accepted reports carried (one per instance), for the log and the metrics. */
  boots: { instanceId: string; pool: string; boot: BootTimeline }[];
  /**
   * Workers whose readiness this pass learnt first (not on their tags, not remembered from an
   * earlier pass), from an accepted report's own ready time (capped at SQS receipt): once per
   * worker, so a redelivery or a second report of the same pass counts no second boot.
   */
  readied: { instanceId: string; pool: string; seconds: number }[];
  /** Instances that sent more than FLOOD_REPORTS reports into one pass: a worker sends a few (a job on it may be flooding the queue). */
  floods: { instanceId: string; reports: number }[];
  /** Set while no worker of a fleet of REPORTING.quietFleet or more has reported for REPORTING.quietSeconds: since when (silence is not judged meanwhile). */
  quietSince?: number;
}

/** More reports than this from one instance in one pass is not a worker's doing (it sends about two a job and a heartbeat). */
export const FLOOD_REPORTS = 50;

const MINUTE = 60_000;
const floorMinute = (t: number) => Math.floor(t / MINUTE) * MINUTE;
const ceilMinute = (t: number) => Math.ceil(t / MINUTE) * MINUTE;
const iso = (t: number) => new Date(t).toISOString();

/** The worker-state tags a view stands for (what recordWorkerState writes), by key name in TAGS. */
export function reportTags(w: Pick<FleetWorker, 'reported' | 'readyAt' | 'idleSince' | 'stoppedAt' | 'builds'>): Partial<Record<'ready' | 'state' | 'idleSince' | 'stoppedAt' | 'builds', string>> {
  const t: Partial<Record<'ready' | 'state' | 'idleSince' | 'stoppedAt' | 'builds', string>> = {};
  if (w.readyAt !== undefined) t.ready = iso(floorMinute(w.readyAt));
  if (w.reported) t.state = w.reported;
  if (w.reported === 'idle' && w.idleSince !== undefined) t.idleSince = iso(ceilMinute(w.idleSince));
  if (w.reported === 'stopped' && w.stoppedAt !== undefined) t.stoppedAt = iso(ceilMinute(w.stoppedAt));
  // No builds: they differ from worker to worker, so a tag set carrying them is one CreateTags per
  // distinct count. Even on the draining and stopped writes alone, a drain or a template change that
  // retires 5,000 workers at once made ~150 calls in one pass (the bucket holds 100). No decision
  // reads them from the tags: MaxBuilds is the runner's own limit, and the planner counts builds
  // from the reports (the container's memory) for idle workers only.
  return t;
}

/**
 * Applies the reports of one pass to the fleet discovery found. Per instance the newest report
 * wins (sequence number, and what this container already applied); a worker never moves back
 * from draining or stopped; values are rounded as the tags store them, so a warm and a cold
 * controller plan from the same view. Returns the merged fleet and the tag writes that persist it.
 */
export function applyReports(
  discovered: readonly FleetWorker[],
  reports: readonly WorkerReport[],
  opts: {
    memory: ReportMemory;
    workerRoleIds: readonly string[];
    tagKeys: Record<'ready' | 'state' | 'idleSince' | 'stoppedAt' | 'builds', string>;
    now: number;
    /** False while the report queue is behind: a report still in it may be the one that shows the worker alive. Default true. */
    judgeSilence?: boolean;
  },
): ReportsOutcome {
  const out: ReportsOutcome = { workers: [], writes: [], settled: [], retry: [], counts: { applied: 0, unchanged: 0, stale: 0, refused: 0, unknown: 0 }, refusals: [], boots: [], readied: [], floods: [] };
  const perInstance = new Map<string, number>();
  const heardAt: number[] = [];
  const byId = new Map(discovered.map((w) => [w.id, w]));
  const newest = new Map<string, WorkerReport>();
  const timelined = new Set<string>();
  for (const r of reports) {
    const problem = senderProblem(r, opts.workerRoleIds);
    if (problem) {
      out.refusals.push({ id: r.id, instanceId: r.instanceId, reason: problem });
      out.counts.refused++;
      out.settled.push(r.id);
      continue;
    }
    perInstance.set(r.instanceId, (perInstance.get(r.instanceId) ?? 0) + 1);
    const w = byId.get(r.instanceId);
    // The ready report carries the timeline; a later report of the same pass may supersede it below,
    // so it is taken from whichever accepted report has it, once per instance.
    if (w && r.boot && w.readyAt === undefined && !timelined.has(r.instanceId)) {
      timelined.add(r.instanceId);
      out.boots.push({ instanceId: r.instanceId, pool: w.pool, boot: r.boot });
    }
    if (w) {
      opts.memory.heardFrom(w.id, Math.min(r.sentAt ?? opts.now, opts.now));
      heardAt.push(Math.min(r.sentAt ?? opts.now, opts.now));
    }
    if (!w) {
      // Not visible yet (DescribeInstances is eventually consistent) or gone: give it a few more deliveries.
      if ((r.receiveCount ?? 1) < 3) out.retry.push(r.id);
      else out.settled.push(r.id);
      out.counts.unknown++;
      continue;
    }
    const other = newest.get(r.instanceId);
    if (!other || r.seq > other.seq) {
      if (other) {
        out.settled.push(other.id);
        out.counts.stale++;
      }
      newest.set(r.instanceId, r);
    } else {
      out.settled.push(r.id);
      out.counts.stale++;
    }
  }

  for (const [instanceId, n] of perInstance) if (n > FLOOD_REPORTS) out.floods.push({ instanceId, reports: n });
  const groups = new Map<string, ReportsOutcome['writes'][number]>();
  for (const before of discovered) {
    const r = newest.get(before.id);
    const known = opts.memory.get(before.id);
    if (!r) {
      out.workers.push(overlay(before, known));
      continue;
    }
    const stale = (known !== undefined && known.seq > r.seq) || (before.reported !== undefined && RANK[r.state] < RANK[before.reported]) || before.instanceState === 'shutting-down';
    if (stale) {
      out.settled.push(r.id);
      out.counts.stale++;
      out.workers.push(overlay(before, known));
      continue;
    }
    const w: FleetWorker = { ...before, reported: r.state, builds: r.builds };
    if (w.readyAt === undefined && known?.view?.readyAt !== undefined) w.readyAt = known.view.readyAt;
    // The worker's clock may be off: nothing it says happened later than SQS received it (a time in
    // the future would hold IdleTime off for as long as the clock is ahead).
    const upTo = (t: number) => Math.min(t, r.sentAt ?? opts.now, opts.now);
    const ready = r.readyAt ?? (r.state === 'idle' || r.state === 'busy' ? r.at : undefined);
    if (w.readyAt === undefined && ready !== undefined) {
      w.readyAt = floorMinute(upTo(ready));
      if (r.readyAt !== undefined) out.readied.push({ instanceId: w.id, pool: w.pool, seconds: (upTo(r.readyAt) - w.launchedAt) / 1000 });
    }
    if (r.state === 'idle') w.idleSince = ceilMinute(upTo(r.idleSince ?? r.at));
    if (r.state === 'stopped') w.stoppedAt = before.reported === 'stopped' && before.stoppedAt !== undefined ? before.stoppedAt : ceilMinute(r.sentAt ?? opts.now);
    w.state = deriveState(w);
    out.workers.push(w);
    // Remembered now, before the write that records it: the passes until the tags show it plan from it.
    opts.memory.set(w.id, r.seq, r.builds, { reported: w.reported, readyAt: w.readyAt, idleSince: w.idleSince, stoppedAt: w.stoppedAt });

    const was = reportTags(before);
    const now = reportTags(w);
    const changed: Record<string, string> = {};
    for (const [k, v] of Object.entries(now) as [keyof typeof now, string][]) if (was[k] !== v) changed[opts.tagKeys[k]] = v;
    if (Object.keys(changed).length === 0) {
      out.settled.push(r.id);
      out.counts.unchanged++;
      continue;
    }
    const key = JSON.stringify(Object.entries(changed).sort());
    let g = groups.get(key);
    if (!g) {
      g = { write: { tags: changed, ids: [] }, reports: [], applied: [] };
      groups.set(key, g);
    }
    g.write.ids.push(w.id);
    g.reports.push(r.id);
    g.applied.push({ instanceId: w.id, seq: r.seq, builds: r.builds });
    out.counts.applied++;
  }
  out.writes = [...groups.values()];
  // Heard from when it reported (any report, stale ones too: the worker was alive to send it).
  // When the whole fleet went quiet, the reporting path failed, not thousands of workers at once:
  // no worker is silent meanwhile, and silence counts again from when reports came back, so a
  // fleet whose reports resume over a heartbeat is not retired wholesale and relaunched.
  const ready = out.workers.filter((w) => w.instanceState === 'running' && (w.reported === 'idle' || w.reported === 'busy')).length;
  opts.memory.heardAny(heardAt, ready, opts.now);
  const quiet = opts.memory.quietSince(ready, opts.now);
  if (quiet !== undefined) out.quietSince = quiet;
  for (const w of out.workers) {
    const silent = opts.memory.silentFor(w.id, opts.now);
    if (opts.judgeSilence !== false && quiet === undefined && !w.problem && w.instanceState === 'running' && (w.reported === 'idle' || w.reported === 'busy') && silent > REPORTING.silenceSeconds * 1000) w.problem = 'silent';
  }
  opts.memory.keepOnly(new Set(discovered.map((w) => w.id)));
  return out;
}
