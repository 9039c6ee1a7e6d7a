/**
 * Controller state: what EC2 cannot tell us (jobs waiting or running per pool, capacity cooldowns,
 * backoffs, paused pools, launches not yet visible), and a compact sharded encoding for SSM
 * Parameter Store.
 *
 * Why sharded and compact: SSM standard parameters hold 4 KB, PutParameter is reported at about
 * 3 TPS per account, and there is no conditional write (facts.md). A public Lambda autoscaler that
 * wrote one parameter per runner stalled at about 40 runners. Here a pass writes at most
 * 3 + MAX_JOB_SHARDS parameters whatever the number of jobs and workers, and only the ones whose
 * encoded value changed: usually none or one.
 *
 * Layout under `<base>/state/`:
 *   meta        JSON, readable by operators: shard count, backoffs, pauses, in-flight launches,
 *               launch epoch and generation (deterministic CreateFleet ClientTokens, reconcile.ts),
 *               how many cooldown parameters hold the capacity cooldowns
 *   cooldowns/N base64(deflate(columnar)) of the capacity cooldowns (types, subnets, pools and
 *               reasons written once each): 10 pools x 10 types x 6 subnets x both markets all
 *               cooling down fit in one or two parameters; never dropped silently
 *   last-pass   JSON: the last pass that did something (status command); written only when it changes
 *   projects    JSON: GitLab projects seen in job events in the last 7 days (hour resolution), listed
 *               for pending jobs whose webhook was lost; written when a project appears, ages out
 *               or is seen in a new hour, never every pass
 *   jobs/NN     base64(deflate(columnar JSON)) of the jobs whose id % shards == NN
 *   learned     what the forecast learnt (lib/forecast.ts: job durations, boot times, arrival
 *               history), a compact lossy table of at most 4 KB, written at most every 10 minutes
 * Shards are written before meta, and each shard names the shard count it was written for, so a
 * pass that dies half-way leaves state the next pass can read (at worst some jobs are forgotten;
 * the webhook's next event or the API confirmation brings them back).
 */
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import type { Logger } from './ports';

/**
 * pending / running: demand. finished: a short-lived tombstone (a late duplicate `pending` delivery
 * is ignored). stuck: GitLab keeps it pending but idle workers of its pool did not take it (no
 * runner of ours may run it: paused, not enabled for the project, protected), not demand. refused:
 * the GitLab API keeps failing for its project, which is isolated; it counts as last known
 * (lib/controller/jobs.ts).
 */
export type JobStatus = 'pending' | 'running' | 'finished' | 'stuck' | 'refused';

export interface JobEntry {
  projectId: number;
  /** Pool name; '' while the job is not routed yet (no tags known, API not asked yet). */
  pool: string;
  status: JobStatus;
  /** Epoch ms of the last event or API confirmation (minute resolution once stored). */
  seenAt: number;
  /** Epoch ms the job became pending, as far as we know (minute resolution once stored): how long it has waited. */
  since?: number;
}

/** An instance type in a subnet that recently failed for lack of capacity (or was interrupted). */
export interface Cooldown {
  pool: string;
  instanceType: string;
  subnet: string;
  market?: 'spot' | 'on-demand';
  until: number;
  reason: string;
}

/** Stored backoff of a whole pool after quota or repeated throttling errors: exponential, capped. */
export interface Backoff {
  class: 'quota' | 'throttling' | 'capacity' | 'other';
  code: string;
  failures: number;
  until: number;
}

/** A pool whose launches failed as an invalid request: no launch until its config changes (or a manual pass). */
export interface Pause {
  code: string;
  message: string;
  since: number;
  /** Hash of the pool's config when it was paused. */
  configHash: string;
}

/** A launch discovery may not show yet (DescribeInstances is eventually consistent). */
export interface InflightLaunch {
  pool: string;
  passId: string;
  at: number;
  count: number;
}

export interface PassSummary {
  passId: string;
  at: string;
  trigger: string;
  launched: Record<string, number>;
  retired: number;
  terminated: number;
  errors: string[];
  decisions: string[];
}

export interface ControllerState {
  /** Keyed by GitLab job id (unique per GitLab instance). */
  jobs: Map<number, JobEntry>;
  /**
   * GitLab project id -> epoch ms (start of the hour) it was last seen in a job event. The
   * schedule pass lists these projects' pending jobs to find jobs whose `pending` webhook was lost.
   */
  projects: Map<number, number>;
  cooldowns: Cooldown[];
  backoffs: Record<string, Backoff>;
  paused: Record<string, Pause>;
  inflight: InflightLaunch[];
  lastPass?: PassSummary;
  /**
   * Launch idempotency (docs/controller.md, "Idempotency and adoption"). `epoch` names this
   * state's lifetime (set when the state is first written, or rebuilt after a loss);
   * `generation` grows by one in every pass that calls CreateFleet. A pass re-run from the same
   * unsaved state therefore derives the same ClientToken; a pass after a successful save, a new
   * one. Both live in `meta`, which such a pass writes anyway (in-flight record, cooldown or
   * backoff): no extra write.
   */
  epoch: string;
  generation: number;
  /** The forecast's learnt table (lib/forecast.ts encodeLearned), opaque here; absent until something was learnt. */
  learned?: string;
}

export interface StateStore {
  load(): Promise<ControllerState>;
  save(s: ControllerState): Promise<{ writes: number }>;
}

export function emptyState(): ControllerState {
  return { jobs: new Map(), projects: new Map(), cooldowns: [], backoffs: {}, paused: {}, inflight: [], epoch: '', generation: 0 };
}

export function cloneState(s: ControllerState): ControllerState {
  return {
    jobs: new Map([...s.jobs].map(([k, v]) => [k, { ...v }])),
    projects: new Map(s.projects),
    cooldowns: s.cooldowns.map((c) => ({ ...c })),
    backoffs: Object.fromEntries(Object.entries(s.backoffs).map(([k, v]) => [k, { ...v }])),
    paused: Object.fromEntries(Object.entries(s.paused).map(([k, v]) => [k, { ...v }])),
    inflight: s.inflight.map((i) => ({ ...i })),
    lastPass: s.lastPass ? structuredClone(s.lastPass) : undefined,
    epoch: s.epoch,
    generation: s.generation,
    ...(s.learned !== undefined ? { learned: s.learned } : {}),
  };
}

// ---- encoding ------------------------------------------------------------------------------

/** SSM standard tier: 4 KB per value. Leave room for multi-byte surprises: everything here is ASCII. */
export const MAX_PARAMETER_BYTES = 4000;
/**
 * Shard counts are powers of two up to this. A burst of 10,000 jobs from a few projects fits in
 * 8; 32 x 4 KB holds 11,000 jobs even with random ids, 1,000 projects and an hour of spread
 * (test/controller/state.test.ts). A pass writes at most MAX_JOB_SHARDS + 3 parameters.
 */
export const MAX_JOB_SHARDS = 32;
const SHARD_COUNTS = [1, 2, 4, 8, 16, 32].filter((n) => n <= MAX_JOB_SHARDS);
const STATUS_CODE: Record<JobStatus, number> = { pending: 0, running: 1, finished: 2, stuck: 3, refused: 4 };
const CODE_STATUS: JobStatus[] = ['pending', 'running', 'finished', 'stuck', 'refused'];
const FORMAT = 1;
/** Job shards: format 2 adds the stuck and refused statuses and the `since` column; format 1 shards are still read. */
const JOBS_FORMAT = 2;

export const PARAMS = {
  meta: 'meta',
  lastPass: 'last-pass',
  projects: 'projects',
  learned: 'learned',
  shard: (i: number) => `jobs/${String(i).padStart(2, '0')}`,
  cooldowns: (i: number) => `cooldowns/${i}`,
};

/**
 * Cooldowns are split over at most this many parameters. 10 pools x 10 instance types x 6 subnets,
 * all cooling down on both markets with distinct end times (2,400 entries), take 2
 * (test/controller/state.test.ts); past 8, the soonest-ending are dropped with an error-level log.
 */
export const MAX_COOLDOWN_PARAMS = 8;

// ---- recently seen projects ---------------------------------------------------------------

const HOUR_MS = 3_600_000;
/**
 * Projects are remembered this long after their last job event: a week, so that a project quiet
 * over a weekend is still listed when its Monday job's webhooks are lost.
 */
export const PROJECT_TTL_MS = 7 * 24 * HOUR_MS;
/**
 * At most this many projects are remembered (the least recently seen go first). Stored as varint
 * deltas, deflated (`{"v":2,"b":base64}`): 1,000 project ids with their hour take 1.5-3 KB for
 * ids up to 10 digits; with sparser ids the least recently seen that do not fit 4 KB are left out
 * of the stored copy. Discovery (lib/gitlab/sync.ts) lists these projects' pending jobs.
 */
export const MAX_PROJECTS = 1000;

/**
 * Records that a job event of `projectId` arrived at `now`. Hour resolution on purpose: the stored
 * value changes at most once an hour per project, so a steady stream of events from the same
 * projects costs no SSM write (PutParameter ~3 TPS per account, facts.md). Returns true on change.
 */
export function touchProject(s: ControllerState, projectId: number, now: number): boolean {
  const hour = Math.floor(now / HOUR_MS) * HOUR_MS;
  const seen = s.projects.get(projectId);
  if (seen !== undefined && seen >= hour) return false;
  s.projects.set(projectId, hour);
  if (s.projects.size > MAX_PROJECTS) {
    const oldest = [...s.projects].sort((a, b) => a[1] - b[1] || a[0] - b[0])[0][0];
    s.projects.delete(oldest);
  }
  return true;
}

/** Forgets projects not seen for PROJECT_TTL_MS. Returns how many were dropped. */
export function expireProjects(s: ControllerState, now: number): number {
  let dropped = 0;
  for (const [id, at] of s.projects)
    if (now - at > PROJECT_TTL_MS || at > now + HOUR_MS) {
      s.projects.delete(id);
      dropped++;
    }
  return dropped;
}

const EMPTY_PROJECTS = JSON.stringify({ v: 2, b: '' });

/**
 * `{"v":2,"b":base64(deflate(varints))}`: groups of ids by the hour (epoch hours) they were last
 * seen, most recent first: count | (hourDelta count idDelta*)*. Least recent groups (then ids) are
 * left out until it fits 4 KB. Format 1 (`{"v":1,"h":[[hour, id, ...], ...]}`) is still read.
 */
function encodeProjects(projects: ReadonlyMap<number, number>): string {
  const byHour = new Map<number, number[]>();
  for (const [id, at] of [...projects].sort((a, b) => a[0] - b[0])) {
    const h = Math.floor(at / HOUR_MS);
    byHour.set(h, [...(byHour.get(h) ?? []), id]);
  }
  const groups = [...byHour].sort((a, b) => b[0] - a[0]);
  const render = () => {
    const w = new Writer();
    w.uint(groups.length);
    groups.forEach(([h, ids], g) => {
      w.uint(g === 0 ? h : groups[g - 1][0] - h);
      w.uint(ids.length);
      ids.forEach((id, k) => w.uint(k === 0 ? id : id - ids[k - 1]));
    });
    return JSON.stringify({ v: 2, b: deflateRawSync(w.buffer(), { level: 9 }).toString('base64') });
  };
  let text = render();
  while (text.length > MAX_PARAMETER_BYTES && groups.length) {
    const last = groups[groups.length - 1][1];
    // Shed the least recent hour a tenth at a time: the size is not linear in the count.
    last.splice(Math.max(0, last.length - Math.max(1, Math.ceil(last.length / 10))));
    if (last.length === 0) groups.pop();
    text = render();
  }
  return text;
}

function decodeProjects(text: string): Map<number, number> {
  const doc = JSON.parse(text) as { v?: unknown; h?: unknown; b?: unknown };
  const out = new Map<number, number>();
  if (isRecord(doc) && doc.v === 2 && typeof doc.b === 'string') {
    if (doc.b === '') return out;
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(doc.b)) throw new Error('not base64');
    const r = new Reader(inflateRawSync(Buffer.from(doc.b, 'base64')));
    const groups = r.uint();
    let h = 0;
    for (let g = 0; g < groups; g++) {
      h = g === 0 ? r.uint() : h - r.uint();
      let id = 0;
      const n = r.uint();
      for (let k = 0; k < n; k++) {
        id += r.uint();
        if (id <= 0 || h < 0) throw new Error('bad group');
        out.set(id, h * HOUR_MS);
      }
    }
    if (!r.done()) throw new Error('trailing bytes');
    return out;
  }
  if (!isRecord(doc) || doc.v !== 1 || !Array.isArray(doc.h)) throw new Error('unexpected layout');
  for (const g of doc.h) {
    if (!Array.isArray(g) || g.length < 2 || !g.every((x) => Number.isSafeInteger(x) && x > 0)) throw new Error('bad group');
    const [hour, ...ids] = g as number[];
    for (const id of ids) out.set(id, hour * HOUR_MS);
  }
  return out;
}

interface ShardDoc {
  n: number;
  i: number;
  jobs: [number, JobEntry][];
}

/**
 * A shard is binary and columnar before deflate: unsigned LEB128 varints, one column at a time
 * (id deltas, project indexes, pool/status codes, ages in minutes), so runs of similar values
 * (a pipeline's jobs: close ids, one project, one minute) compress to almost nothing.
 * Layout: JOBS_FORMAT n i baseMinute | pools: count (len utf8)* | projects: count deltas* |
 * jobs: count idDelta* projectIndex* (pool*5+status)* (baseMinute-seenMinute)* sinceCode*
 * where sinceCode is 0 when `since` is unknown, else 1 + (seenMinute - sinceMinute).
 * Format 1 (read only): codes are pool*3+status (pending, running, finished) and there is no since column.
 */
class Writer {
  private bytes: number[] = [];
  /** A writer that starts with the header every part shares: format n i base. */
  static part(n: number, i: number, base: number, format = FORMAT): Writer {
    const w = new Writer();
    for (const v of [format, n, i, base]) w.uint(v);
    return w;
  }
  uint(v: number): void {
    if (!Number.isSafeInteger(v) || v < 0) throw new Error(`cannot encode ${v}`);
    while (v >= 0x80) {
      this.bytes.push((v % 0x80) | 0x80);
      v = Math.floor(v / 0x80);
    }
    this.bytes.push(v);
  }
  str(v: string): void {
    const b = Buffer.from(v, 'utf8');
    this.uint(b.length);
    for (const x of b) this.bytes.push(x);
  }
  buffer(): Buffer {
    return Buffer.from(this.bytes);
  }
}

class Reader {
  /** A part's reader past its header (format n i base), from the parameter's base64 of raw deflate. */
  static part(value: string, formats: readonly number[] = [FORMAT]): { r: Reader; format: number; n: number; i: number; base: number } {
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(value)) throw new Error('not base64');
    const r = new Reader(inflateRawSync(Buffer.from(value, 'base64')));
    const format = r.uint();
    if (!formats.includes(format)) throw new Error('unknown format');
    return { r, format, n: r.uint(), i: r.uint(), base: r.uint() };
  }
  private at = 0;
  constructor(private readonly b: Buffer) {}
  uint(): number {
    let v = 0;
    let mul = 1;
    for (;;) {
      if (this.at >= this.b.length) throw new Error('truncated');
      const x = this.b[this.at++];
      v += (x & 0x7f) * mul;
      if (x < 0x80) return v;
      mul *= 0x80;
      if (mul > 2 ** 56) throw new Error('varint too long');
    }
  }
  str(): string {
    const len = this.uint();
    if (this.at + len > this.b.length) throw new Error('truncated');
    const s = this.b.toString('utf8', this.at, this.at + len);
    this.at += len;
    return s;
  }
  done(): boolean {
    return this.at === this.b.length;
  }
}

const minuteOf = (ms: number) => Math.floor(ms / 60000);

function encodeShard(n: number, i: number, jobs: [number, JobEntry][]): string {
  jobs.sort((a, b) => a[0] - b[0]);
  const pools = [...new Set(jobs.map(([, j]) => j.pool))].sort();
  const projects = [...new Set(jobs.map(([, j]) => j.projectId))].sort((a, b) => a - b);
  const poolIx = new Map(pools.map((p, x) => [p, x]));
  const projectIx = new Map(projects.map((p, x) => [p, x]));
  const base = jobs.reduce((m, [, j]) => Math.max(m, minuteOf(j.seenAt)), 0);
  const w = Writer.part(n, i, base, JOBS_FORMAT);
  w.uint(pools.length);
  pools.forEach((p) => w.str(p));
  w.uint(projects.length);
  projects.forEach((p, x) => w.uint(p - (x ? projects[x - 1] : 0)));
  w.uint(jobs.length);
  jobs.forEach(([id], x) => w.uint(id - (x ? jobs[x - 1][0] : 0)));
  jobs.forEach(([, j]) => w.uint(projectIx.get(j.projectId)!));
  jobs.forEach(([, j]) => w.uint(poolIx.get(j.pool)! * CODE_STATUS.length + STATUS_CODE[j.status]));
  jobs.forEach(([, j]) => w.uint(Math.max(0, base - minuteOf(j.seenAt))));
  jobs.forEach(([, j]) => w.uint(j.since === undefined ? 0 : 1 + Math.max(0, minuteOf(j.seenAt) - minuteOf(j.since))));
  return deflate(w.buffer());
}

/**
 * Most passes change few shards, and deflate (level 9) is most of encoding's cost: the last few
 * encodings are remembered by their exact uncompressed bytes, so an unchanged shard costs no
 * deflate. Bounded; exact (no hashing), so it can never return the wrong value.
 */
const deflated = new Map<string, string>();
function deflate(raw: Buffer): string {
  const key = raw.toString('latin1');
  const hit = deflated.get(key);
  if (hit !== undefined) return hit;
  const out = deflateRawSync(raw, { level: 9 }).toString('base64');
  if (deflated.size >= 128) deflated.delete(deflated.keys().next().value as string);
  deflated.set(key, out);
  return out;
}

function decodeShard(value: string): ShardDoc {
  const { r, format, n, i, base } = Reader.part(value, [1, JOBS_FORMAT]);
  const statuses = format === 1 ? 3 : CODE_STATUS.length;
  const pools = Array.from({ length: r.uint() }, () => r.str());
  const projectCount = r.uint();
  const projects: number[] = [];
  for (let x = 0; x < projectCount; x++) projects.push(r.uint() + (x ? projects[x - 1] : 0));
  const count = r.uint();
  const ids: number[] = [];
  for (let x = 0; x < count; x++) ids.push(r.uint() + (x ? ids[x - 1] : 0));
  const projectIxs = ids.map(() => r.uint());
  const codes = ids.map(() => r.uint());
  const ages = ids.map(() => r.uint());
  const sinceCodes = format === 1 ? ids.map(() => 0) : ids.map(() => r.uint());
  if (!r.done()) throw new Error('trailing bytes');
  const jobs: [number, JobEntry][] = ids.map((id, x) => {
    const pool = pools[Math.floor(codes[x] / statuses)];
    const projectId = projects[projectIxs[x]];
    if (pool === undefined || projectId === undefined || id <= 0) throw new Error(`bad entry ${x}`);
    const seenAt = (base - ages[x]) * 60000;
    const entry: JobEntry = { projectId, pool, status: CODE_STATUS[codes[x] % statuses], seenAt };
    if (sinceCodes[x] > 0) entry.since = seenAt - (sinceCodes[x] - 1) * 60000;
    return [id, entry];
  });
  return { n, i, jobs };
}

function shardJobs(jobs: Map<number, JobEntry>, n: number): [number, JobEntry][][] {
  const out: [number, JobEntry][][] = Array.from({ length: n }, () => []);
  for (const [id, j] of jobs) out[id % n].push([id, j]);
  return out;
}

interface MetaDoc {
  v: number;
  shards: number;
  /** Written by releases before issue 9; read for compatibility. */
  cooldowns?: Cooldown[];
  /** How many `cooldowns/N` parameters hold the cooldowns (issue 9). */
  cd?: number;
  backoffs: Record<string, Backoff>;
  paused: Record<string, Pause>;
  inflight: InflightLaunch[];
  /** Launch idempotency: state epoch and generation (absent in meta written before they existed). */
  epoch?: string;
  gen?: number;
}

function encodeMeta(s: ControllerState, shards: number, cooldownParams: number, warn: (m: string) => void): string {
  const inflight = [...s.inflight].sort((a, b) => b.at - a.at);
  for (;;) {
    const doc: MetaDoc = { v: FORMAT, shards, cd: cooldownParams, backoffs: s.backoffs, paused: s.paused, inflight };
    if (s.epoch) {
      doc.epoch = s.epoch;
      doc.gen = s.generation;
    }
    const text = JSON.stringify(doc);
    if (text.length <= MAX_PARAMETER_BYTES) return text;
    if (inflight.length) {
      inflight.pop();
      if (inflight.length === 0) warn('state meta trimmed: in-flight launch records dropped to fit 4 KB');
    } else {
      // Backoffs and pauses are one entry per pool: only a config with very many pools gets here.
      warn(`state meta exceeds ${MAX_PARAMETER_BYTES} bytes with backoffs and pauses alone; pauses dropped`);
      return JSON.stringify({ ...doc, paused: {} });
    }
  }
}

// ---- capacity cooldowns -----------------------------------------------------------------------

const MARKET_CODE = { any: 0, spot: 1, 'on-demand': 2 } as const;
const CODE_MARKET: (Cooldown['market'])[] = [undefined, 'spot', 'on-demand'];

/**
 * One parameter of cooldowns, binary and columnar before deflate: a dictionary of the strings
 * (pools, instance types, subnets, reasons) and per cooldown their indexes, the market and the end
 * in seconds after the earliest end. Layout: FORMAT n i base | strings: count (len utf8)* |
 * count (pool type subnet reason market*3... as indexes)* (until - base)*
 */
function encodeCooldownPart(n: number, i: number, list: readonly Cooldown[]): string {
  const strings = [...new Set(list.flatMap((c) => [c.pool, c.instanceType, c.subnet, c.reason.slice(0, 80)]))].sort();
  const ix = new Map(strings.map((x, k) => [x, k]));
  const untilS = list.map((c) => Math.ceil(c.until / 1000));
  const base = list.length ? Math.min(...untilS) : 0;
  const w = Writer.part(n, i, base);
  w.uint(strings.length);
  strings.forEach((x) => w.str(x));
  w.uint(list.length);
  for (const c of list) w.uint(ix.get(c.pool)!);
  for (const c of list) w.uint(ix.get(c.instanceType)!);
  for (const c of list) w.uint(ix.get(c.subnet)!);
  for (const c of list) w.uint(ix.get(c.reason.slice(0, 80))!);
  for (const c of list) w.uint(MARKET_CODE[c.market ?? 'any']);
  untilS.forEach((u) => w.uint(u - base));
  return deflate(w.buffer());
}

function decodeCooldownPart(value: string): { n: number; i: number; cooldowns: Cooldown[] } {
  const { r, n, i, base } = Reader.part(value);
  const strings = Array.from({ length: r.uint() }, () => r.str());
  const count = r.uint();
  const col = () => Array.from({ length: count }, () => r.uint());
  const [pools, types, subnets, reasons, markets, untils] = [col(), col(), col(), col(), col(), col()];
  if (!r.done()) throw new Error('trailing bytes');
  const at = (k: number) => {
    const x = strings[k];
    if (x === undefined) throw new Error(`bad string index ${k}`);
    return x;
  };
  const cooldowns = pools.map((_, k): Cooldown => {
    const c: Cooldown = { pool: at(pools[k]), instanceType: at(types[k]), subnet: at(subnets[k]), until: (base + untils[k]) * 1000, reason: at(reasons[k]) };
    const market = CODE_MARKET[markets[k]];
    if (market) c.market = market;
    return c;
  });
  return { n, i, cooldowns };
}

/**
 * The cooldowns as parameter values: one, or split in 2, 4 or 8 (by pool, then type and subnet, so
 * each part's dictionary stays small). Cooldowns are never dropped to fit, short of 8 full
 * parameters; then the soonest-ending go first, and `warn` says so (the state store logs it at error level).
 */
export function encodeCooldowns(cooldowns: readonly Cooldown[], warn: (m: string) => void = () => {}): string[] {
  if (cooldowns.length === 0) return [];
  let list = [...cooldowns].sort((a, b) => (a.pool < b.pool ? -1 : a.pool > b.pool ? 1 : 0) || (a.instanceType < b.instanceType ? -1 : a.instanceType > b.instanceType ? 1 : 0) || (a.subnet < b.subnet ? -1 : a.subnet > b.subnet ? 1 : 0) || a.until - b.until);
  for (;;) {
    let largest = 0;
    // One part's size tells which part counts cannot hold them.
    const single = list.length > 200 ? encodeCooldownPart(1, 0, list).length : 0;
    for (let n = 1; n <= MAX_COOLDOWN_PARAMS; n *= 2) {
      if (n < MAX_COOLDOWN_PARAMS && single > n * MAX_PARAMETER_BYTES * 1.1) continue;
      const size = Math.ceil(list.length / n);
      const parts = Array.from({ length: n }, (_, i) => encodeCooldownPart(n, i, list.slice(i * size, (i + 1) * size)));
      largest = Math.max(...parts.map((p) => p.length));
      if (largest <= MAX_PARAMETER_BYTES) return parts;
    }
    // Shrink in proportion to the overshoot of the largest part.
    const drop = Math.max(1, Math.ceil(list.length * Math.max(0.05, 1 - (0.95 * MAX_PARAMETER_BYTES) / largest)));
    const bySoonest = [...list].sort((a, b) => a.until - b.until);
    const dropped = new Set(bySoonest.slice(0, drop));
    warn(`${list.length} capacity cooldowns do not fit ${MAX_COOLDOWN_PARAMS} parameters of 4 KB; the ${drop} ending soonest are dropped and those instance types / subnets may be offered again before their cooldown ends`);
    list = list.filter((c) => !dropped.has(c));
  }
}

function encodeLastPass(p: PassSummary): string {
  const doc = { ...p, decisions: [...p.decisions], errors: [...p.errors] };
  let text = JSON.stringify(doc);
  while (text.length > MAX_PARAMETER_BYTES && (doc.decisions.length > 1 || doc.errors.length > 1)) {
    if (doc.decisions.length > 1) doc.decisions.splice(-2, 2, `... ${p.decisions.length - doc.decisions.length + 2} more`);
    else doc.errors.splice(-2, 2, `... more errors`);
    text = JSON.stringify(doc);
  }
  if (text.length > MAX_PARAMETER_BYTES) text = JSON.stringify({ ...doc, decisions: ['(too long to store)'], errors: [] });
  return text;
}

/**
 * Encodes the state into parameter values (names relative to `<base>/state/`). Jobs that do not
 * fit MAX_JOB_SHARDS shards are dropped oldest first (tombstones, then pending, then running), with
 * a warning: a bounded state beats a crash; the API confirmation and later events repair it.
 */
export function encodeState(s: ControllerState, warn: (m: string) => void = () => {}, error: (m: string) => void = warn): Map<string, string> {
  const out = new Map<string, string>();
  let jobs = s.jobs;
  for (;;) {
    // Skip shard counts that cannot hold the jobs: one shard's size tells how many are needed.
    const single = jobs.size > 500 ? encodeShard(1, 0, [...jobs]).length : 0;
    for (const n of SHARD_COUNTS) {
      if (n < MAX_JOB_SHARDS && single > n * MAX_PARAMETER_BYTES * 1.1) continue;
      const encoded = shardJobs(jobs, n).map((list, i) => encodeShard(n, i, list));
      if (encoded.every((v) => v.length <= MAX_PARAMETER_BYTES)) {
        encoded.forEach((v, i) => out.set(PARAMS.shard(i), v));
        const cooldowns = encodeCooldowns(s.cooldowns, error);
        cooldowns.forEach((v, i) => out.set(PARAMS.cooldowns(i), v));
        out.set(PARAMS.meta, encodeMeta(s, n, cooldowns.length, warn));
        if (s.lastPass) out.set(PARAMS.lastPass, encodeLastPass(s.lastPass));
        if (s.projects.size) out.set(PARAMS.projects, encodeProjects(s.projects));
        if (s.learned !== undefined && s.learned.length <= MAX_PARAMETER_BYTES) out.set(PARAMS.learned, s.learned);
        return out;
      }
    }
    // Shrink in proportion to the overshoot of the largest shard at the largest shard count.
    const largest = Math.max(...shardJobs(jobs, MAX_JOB_SHARDS).map((list, i) => encodeShard(MAX_JOB_SHARDS, i, list).length));
    const drop = Math.max(1, Math.ceil(jobs.size * Math.max(0.05, 1 - (0.95 * MAX_PARAMETER_BYTES) / largest)));
    const dropFirst: Record<JobStatus, number> = { finished: 0, refused: 1, stuck: 1, pending: 2, running: 3 };
    const order = [...jobs].sort((a, b) => dropFirst[a[1].status] - dropFirst[b[1].status] || a[1].seenAt - b[1].seenAt);
    warn(`controller state holds ${jobs.size} jobs, more than ${MAX_JOB_SHARDS} parameters of 4 KB can store; forgetting the ${drop} oldest`);
    jobs = new Map(order.slice(drop));
  }
}

function decodeCooldowns(values: ReadonlyMap<string, string>, n: number, warn: (m: string) => void): Cooldown[] {
  const out: Cooldown[] = [];
  for (let i = 0; i < n; i++) {
    const value = values.get(PARAMS.cooldowns(i));
    if (value === undefined) {
      warn(`controller state "${PARAMS.cooldowns(i)}" is missing; those capacity cooldowns are forgotten`);
      continue;
    }
    try {
      const part = decodeCooldownPart(value);
      if (part.n !== n || part.i !== i) throw new Error(`written as part ${part.i} of ${part.n}, meta says ${i} of ${n}`);
      out.push(...part.cooldowns);
    } catch (e) {
      warn(`controller state "${PARAMS.cooldowns(i)}" is unreadable (${(e as Error).message}); those capacity cooldowns are forgotten`);
    }
  }
  return out;
}

function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

/**
 * Decodes parameter values (names relative to `<base>/state/`). Never throws: whatever is missing
 * or unreadable is rebuilt empty with a warning (jobs come back with the next events or API
 * confirmations, the fleet is always rediscovered from EC2).
 */
export function decodeState(values: ReadonlyMap<string, string>, warn: (m: string) => void = () => {}): ControllerState {
  const s = emptyState();
  let shards: number | undefined;
  const metaText = values.get(PARAMS.meta);
  if (metaText !== undefined) {
    try {
      const meta = JSON.parse(metaText) as MetaDoc;
      if (!isRecord(meta) || meta.v !== FORMAT) throw new Error(`unknown format ${isRecord(meta) ? String(meta.v) : typeof meta}`);
      if (!SHARD_COUNTS.includes(meta.shards)) throw new Error(`shard count ${String(meta.shards)}`);
      shards = meta.shards;
      if (typeof meta.cd === 'number' && Number.isSafeInteger(meta.cd) && meta.cd >= 0 && meta.cd <= MAX_COOLDOWN_PARAMS) s.cooldowns = decodeCooldowns(values, meta.cd, warn);
      else if (Array.isArray(meta.cooldowns))
        s.cooldowns = meta.cooldowns.filter((c) => isRecord(c) && typeof c.instanceType === 'string' && typeof c.subnet === 'string' && typeof c.until === 'number');
      if (isRecord(meta.backoffs)) s.backoffs = meta.backoffs;
      if (isRecord(meta.paused)) s.paused = meta.paused;
      if (Array.isArray(meta.inflight)) s.inflight = meta.inflight.filter((i) => isRecord(i) && typeof i.pool === 'string' && typeof i.count === 'number');
      if (typeof meta.epoch === 'string' && /^[0-9a-z]{1,16}$/.test(meta.epoch) && Number.isSafeInteger(meta.gen) && (meta.gen as number) >= 0) {
        s.epoch = meta.epoch;
        s.generation = meta.gen as number;
      }
    } catch (e) {
      warn(`controller state "meta" is unreadable (${(e as Error).message}); cooldowns and backoffs start empty`);
    }
  }
  const lastText = values.get(PARAMS.lastPass);
  if (lastText !== undefined) {
    try {
      const lp = JSON.parse(lastText) as PassSummary;
      if (isRecord(lp) && typeof lp.passId === 'string' && Array.isArray(lp.decisions)) s.lastPass = lp;
      else throw new Error('unexpected layout');
    } catch (e) {
      warn(`controller state "last-pass" is unreadable (${(e as Error).message}); ignored`);
    }
  }
  const projectsText = values.get(PARAMS.projects);
  if (projectsText !== undefined) {
    try {
      s.projects = decodeProjects(projectsText);
    } catch (e) {
      warn(`controller state "projects" is unreadable (${(e as Error).message}); projects are learnt again from job events`);
    }
  }
  const learned = values.get(PARAMS.learned);
  if (learned !== undefined) s.learned = learned;
  const decoded: ShardDoc[] = [];
  for (const [name, value] of values) {
    if (!name.startsWith('jobs/')) continue;
    try {
      decoded.push(decodeShard(value));
    } catch (e) {
      warn(`controller state shard "${name}" is unreadable (${(e as Error).message}); its jobs are forgotten until the next events or API confirmations`);
    }
  }
  if (shards === undefined && decoded.length) {
    // Meta lost: trust the shard count most shards agree on.
    const votes = new Map<number, number>();
    for (const d of decoded) votes.set(d.n, (votes.get(d.n) ?? 0) + 1);
    shards = [...votes].sort((a, b) => b[1] - a[1])[0][0];
  }
  for (const d of decoded) {
    if (d.n !== shards || d.i >= d.n) continue; // left over from an earlier shard count
    for (const [id, j] of d.jobs) if (id % d.n === d.i) s.jobs.set(id, j);
  }
  return s;
}

// ---- stores --------------------------------------------------------------------------------

/** Where parameter values live: SSM in AWS, a Map in the simulation and tests. */
export interface ParameterBackend {
  /** Every parameter under the prefix, names relative to it, all pages. */
  readAll(): Promise<Map<string, string>>;
  write(name: string, value: string): Promise<void>;
}

/**
 * A StateStore over a ParameterBackend: encodes, writes only the parameters whose value changed
 * since the last load or save, and counts the writes.
 */
export interface StoreCacheOptions {
  /**
   * How long a state this store read or saved is reused instead of reading every parameter again
   * (GetParametersByPath pages, from SSM's account-wide 40 TPS). Safe because the reconcile function
   * is the only writer; a save that fails drops it. Default 0 (read every time).
   */
  cacheMs?: number;
  now?: () => number;
}

export class ShardedStateStore implements StateStore {
  private known = new Map<string, string>();
  private cache?: { state: ControllerState; readAt: number };
  /** Reads of the backend (not served from the cache). */
  reads = 0;
  constructor(
    private readonly params: ParameterBackend,
    private readonly log?: Logger,
    private readonly cacheOpts: StoreCacheOptions = {},
  ) {}

  async load(): Promise<ControllerState> {
    const now = (this.cacheOpts.now ?? Date.now)();
    if (this.cache && now - this.cache.readAt < (this.cacheOpts.cacheMs ?? 0)) return cloneState(this.cache.state);
    this.reads++;
    let values: Map<string, string>;
    try {
      values = await this.params.readAll();
    } catch (e) {
      // Rethrown: a read failure is not corruption; the pass must not overwrite state it could not read.
      throw new Error(`could not read controller state: ${(e as Error).message}`, { cause: e });
    }
    this.known = new Map(values);
    const state = decodeState(values, (m) => this.log?.warn(m));
    if ((this.cacheOpts.cacheMs ?? 0) > 0) this.cache = { state: cloneState(state), readAt: now };
    return state;
  }

  async save(s: ControllerState): Promise<{ writes: number }> {
    const encoded = encodeState(s, (m) => this.log?.warn(m), (m) => this.log?.error(m));
    // encodeState leaves an empty project list out; a stored one must still be emptied.
    if (!encoded.has(PARAMS.projects) && this.known.has(PARAMS.projects)) encoded.set(PARAMS.projects, EMPTY_PROJECTS);
    let writes = 0;
    // Shards first, meta (which names the shard count) after, last-pass at the end.
    const names = [...encoded.keys()].sort((a, b) => rank(a) - rank(b) || (a < b ? -1 : 1));
    for (const name of names) {
      const value = encoded.get(name)!;
      const before = this.known.get(name);
      if (before === value) continue;
      // A shard that was never written and holds nothing needs no parameter.
      if (before === undefined && name.startsWith('jobs/') && isEmptyShard(value)) continue;
      try {
        await this.params.write(name, value);
      } catch (e) {
        // What is stored is now partly unknown: the next load reads it.
        this.cache = undefined;
        throw e;
      }
      this.known.set(name, value);
      writes++;
    }
    // The saved object itself: the pass that saved it does not touch it again, and load clones it.
    if (this.cache) this.cache = { state: s, readAt: this.cache.readAt };
    return { writes };
  }
}

function rank(name: string): number {
  return name.startsWith('jobs/') || name.startsWith('cooldowns/') ? 0 : name === PARAMS.meta ? 1 : name === PARAMS.projects ? 2 : 3;
}

const emptyShards = new Set<string>();
function isEmptyShard(value: string): boolean {
  if (emptyShards.has(value)) return true;
  try {
    if (decodeShard(value).jobs.length === 0) {
      emptyShards.add(value);
      return true;
    }
  } catch {
    // not empty, or not ours to judge
  }
  return false;
}

export class MemoryParameterBackend implements ParameterBackend {
  readonly values = new Map<string, string>();
  writes = 0;
  async readAll(): Promise<Map<string, string>> {
    return new Map(this.values);
  }
  async write(name: string, value: string): Promise<void> {
    this.values.set(name, value);
    this.writes++;
  }
}

/** The state store of the simulation and the tests: the real encoding over an in-memory map. */
export class MemoryStateStore extends ShardedStateStore {
  readonly backend: MemoryParameterBackend;
  constructor(log?: Logger, backend = new MemoryParameterBackend(), cache: StoreCacheOptions = {}) {
    super(backend, log, cache);
    this.backend = backend;
  }
}
