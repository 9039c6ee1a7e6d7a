/**
 * What `status` shows: per pool, the workers by state with age and builds, the demand, the
 * settings and idle target in force, cooldowns and back-offs, and the last pass's decisions.
 * Pure: built from what the adapters read (EC2 workers, controller state).
 */
import type { Config } from './config';
import type { WorkerView, WorkerState } from './model';
import { activeSettings, type ActiveSettings } from './periods';
import { idleTarget } from './planner';
import type { ControllerState, PassSummary } from './controller/state';
import { demandByPool, heldBackJobs, type HeldBackJob } from './controller/jobs';
import { describeHold, type HoldRecord } from './controller/holds';

export interface PoolStatus {
  name: string;
  settings: ActiveSettings;
  idleTarget: number;
  limit: number;
  workers: Record<WorkerState, number>;
  pending: number;
  running: number;
  instances: { id: string; state: WorkerState; ageSeconds: number; builds: number; idleSeconds?: number; instanceType?: string; zone?: string; market?: string; problem?: string }[];
  cooldowns: { instanceType: string; subnet: string; secondsLeft: number; reason: string }[];
  backoff?: { class: string; code: string; secondsLeft: number };
  paused?: { code: string; message: string };
  /** An operator's pause or drain (lib/controller/holds.ts); absent when the pool runs. */
  hold?: HoldRecord;
  /** The pool's hold parameter exists but cannot be read: the controller holds the pool as paused. */
  holdProblem?: string;
}

export interface StatusReport {
  at: string;
  deployment: string;
  stage: string;
  pools: PoolStatus[];
  /** Instances tagged for this deployment whose pool is not in the config. */
  orphans: string[];
  /** Jobs GitLab keeps waiting that are not counted as demand, longest waiting first, with why. */
  heldBack: HeldBackJob[];
  /** Operator holds left for pools that are not in the config (the controller ignores them). */
  staleHolds?: string[];
  lastPass?: PassSummary;
}

export function buildStatus(
  config: Config,
  stage: string,
  now: Date,
  workers: readonly WorkerView[],
  state: ControllerState,
  holds: ReadonlyMap<string, HoldRecord | { error: string }> = new Map(),
): StatusReport {
  const t = now.getTime();
  const demand = demandByPool(config, state, t);
  const known = new Set(config.pools.map((p) => p.name));
  const pools = config.pools.map((pool): PoolStatus => {
    const mine = workers.filter((w) => w.pool === pool.name).sort((a, b) => a.launchedAt - b.launchedAt || (a.id < b.id ? -1 : 1));
    const counts: Record<WorkerState, number> = { booting: 0, idle: 0, busy: 0, retiring: 0 };
    for (const w of mine) counts[w.state]++;
    const settings = activeSettings(pool, now);
    const backoff = state.backoffs[pool.name];
    const paused = state.paused[pool.name];
    const hold = holds.get(pool.name);
    return {
      name: pool.name,
      settings,
      idleTarget: idleTarget(settings, counts.busy),
      limit: pool.limit,
      workers: counts,
      pending: demand[pool.name]?.pending ?? 0,
      running: demand[pool.name]?.running ?? 0,
      instances: mine.map((w) => ({
        id: w.id,
        state: w.state,
        ageSeconds: Math.max(0, Math.round((t - w.launchedAt) / 1000)),
        builds: w.builds,
        ...(w.state === 'idle' && w.idleSince !== undefined ? { idleSeconds: Math.max(0, Math.round((t - w.idleSince) / 1000)) } : {}),
        ...(w.instanceType ? { instanceType: w.instanceType } : {}),
        ...(w.zone ? { zone: w.zone } : {}),
        ...(w.market ? { market: w.market } : {}),
        ...(w.problem ? { problem: w.problem } : {}),
      })),
      cooldowns: state.cooldowns
        .filter((c) => c.pool === pool.name && c.until > t)
        .map((c) => ({ instanceType: c.instanceType, subnet: c.subnet, secondsLeft: Math.round((c.until - t) / 1000), reason: c.reason })),
      ...(backoff && backoff.until > t ? { backoff: { class: backoff.class, code: backoff.code, secondsLeft: Math.round((backoff.until - t) / 1000) } } : {}),
      ...(paused ? { paused: { code: paused.code, message: paused.message } } : {}),
      ...(hold && 'error' in hold ? { holdProblem: hold.error } : hold && hold.mode !== 'running' ? { hold } : {}),
    };
  });
  const stale = [...holds].filter(([p, h]) => !known.has(p) && !('mode' in h && h.mode === 'running')).map(([p]) => p).sort();
  return {
    at: now.toISOString(),
    deployment: config.deployment,
    stage,
    pools,
    orphans: workers.filter((w) => !known.has(w.pool)).map((w) => w.id).sort(),
    heldBack: heldBackJobs(config, state, t),
    ...(stale.length ? { staleHolds: stale } : {}),
    ...(state.lastPass ? { lastPass: state.lastPass } : {}),
  };
}

const dur = (s: number) => (s >= 3600 ? `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m` : s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s` : `${s}s`);

export function formatStatus(r: StatusReport): string {
  const out: string[] = [`${r.deployment} / ${r.stage} at ${r.at}`];
  for (const p of r.pools) {
    const s = p.settings;
    out.push('');
    out.push(`pool ${p.name}: ${p.workers.booting} booting, ${p.workers.idle} idle, ${p.workers.busy} busy, ${p.workers.retiring} retiring${p.limit ? ` (limit ${p.limit})` : ''}; jobs ${p.pending} pending, ${p.running} running`);
    out.push(
      `  settings: ${s.activePeriod === null ? 'root values' : `autoscaling[${s.activePeriod}]`} — IdleCount ${s.IdleCount}, IdleTime ${s.IdleTime} s, IdleCountMin ${s.IdleCountMin}, IdleScaleFactor ${s.IdleScaleFactor}; idle target ${p.idleTarget}`,
    );
    if (p.hold) out.push(`  HELD: ${describeHold(p.hold)}; ${p.hold.mode === 'draining' ? 'no launch, every worker asked to retire' : 'no launch'} (undo: resume)`);
    if (p.holdProblem) out.push(`  HELD (hold parameter unreadable: ${p.holdProblem}); the controller holds it as paused until pause or resume rewrites it`);
    if (p.paused) out.push(`  PAUSED by the controller: ${p.paused.code}: ${p.paused.message} (fix the config; launches resume when it changes or after a manual pass)`);
    if (p.backoff) out.push(`  backing off: ${p.backoff.class} ${p.backoff.code}, ${dur(p.backoff.secondsLeft)} left`);
    for (const c of p.cooldowns) out.push(`  cooldown: ${c.instanceType} in ${c.subnet}, ${dur(c.secondsLeft)} left (${c.reason})`);
    for (const w of p.instances)
      out.push(
        `  ${w.id.padEnd(20)} ${w.state.padEnd(8)} age ${dur(w.ageSeconds).padEnd(7)} builds ${String(w.builds).padEnd(4)}${w.idleSeconds !== undefined ? ` idle ${dur(w.idleSeconds)}` : ''}${w.instanceType ? ` ${w.instanceType}` : ''}${w.zone ? ` ${w.zone}` : ''}${w.market ? ` ${w.market}` : ''}${w.problem ? ` [${w.problem}]` : ''}`,
      );
  }
  if (r.orphans.length) out.push('', `orphans (pool not in config): ${r.orphans.join(', ')}`);
  if (r.heldBack.length) {
    out.push('', `${r.heldBack.length} job(s) held back (stuck: not counted as demand; refused: not confirmed):`);
    for (const j of r.heldBack.slice(0, 20)) out.push(`  job ${j.jobId} (project ${j.projectId}) ${j.status}, waiting ${dur(j.waitingSeconds)}: ${j.reason}`);
    if (r.heldBack.length > 20) out.push(`  ... and ${r.heldBack.length - 20} more (--json lists them all)`);
  }
  if (r.staleHolds?.length) out.push('', `operator holds of pools not in the config (ignored): ${r.staleHolds.join(', ')}`);
  out.push('');
  if (r.lastPass) {
    const lp = r.lastPass;
    out.push(`last pass ${lp.passId} at ${lp.at} (${lp.trigger}):`);
    for (const d of lp.decisions.length ? lp.decisions : ['nothing to do']) out.push(`  ${d}`);
    for (const e of lp.errors) out.push(`  error: ${e}`);
  } else out.push('no pass recorded yet');
  return out.join('\n');
}

// ---- one worker's story (`status --worker i-...`) ------------------------------------------------

export interface WorkerStory {
  id: string;
  deployment: string;
  stage: string;
  /** EC2 still lists the instance (terminated ones stay listed for about an hour). */
  inEc2: boolean;
  pool?: string;
  ec2?: { state: string; stateReason?: string; instanceType?: string; zone?: string; market?: string; launchTime?: string; privateIp?: string };
  /** The controller's view: the docker+machine state it derives, what the worker last reported, why it goes. */
  controller?: { state: WorkerState; reported?: string; problem?: string; retireRequestedAt?: string; builds: number };
  /** The instance's gitlab-spot-autoscaler tags, as set by the controller and the interruption handler. */
  tags: Record<string, string>;
  /** The last recorded pass's decisions that name it. */
  decisions: string[];
  /** Its log streams in CloudWatch Logs with their last lines; `trusted` when the stream's address is the instance's own. */
  logs: { group: string; stream: string; trusted: boolean; lines: { at: string; message: string }[] }[];
  /** Where the logs were looked for. */
  logGroups: string[];
  insightsQuery: string;
}

export function formatWorkerStory(s: WorkerStory): string {
  const out = [`worker ${s.id} of ${s.deployment} / ${s.stage}${s.pool ? `, pool ${s.pool}` : ''}`];
  if (!s.inEc2) out.push('  EC2: not listed (terminated more than about an hour ago, or never this deployment\'s); its logs follow if they were shipped');
  if (s.ec2)
    out.push(
      `  EC2: ${s.ec2.state}${s.ec2.stateReason ? ` (${s.ec2.stateReason})` : ''}; ${[s.ec2.instanceType, s.ec2.zone, s.ec2.market, s.ec2.privateIp].filter(Boolean).join(', ')}${s.ec2.launchTime ? `; launched ${s.ec2.launchTime}` : ''}`,
    );
  if (s.controller)
    out.push(
      `  controller: ${s.controller.state}${s.controller.reported ? `, reported ${s.controller.reported}` : ', no report yet'}, ${s.controller.builds} build(s)${s.controller.problem ? `, ${s.controller.problem}` : ''}${s.controller.retireRequestedAt ? `, asked to retire at ${s.controller.retireRequestedAt}` : ''}`,
    );
  const tagKeys = Object.keys(s.tags).sort();
  if (tagKeys.length) {
    out.push('  tags:');
    for (const k of tagKeys) out.push(`    ${k} = ${s.tags[k]}`);
  }
  if (s.decisions.length) {
    out.push('  in the last recorded pass:');
    for (const d of s.decisions) out.push(`    ${d}`);
  }
  if (!s.logs.length) out.push(`  logs: no stream for ${s.id} in ${s.logGroups.join(', ') || '(no pool)'} (not shipped yet, or the group's retention has passed)`);
  for (const l of s.logs) {
    out.push(`  log ${l.group} ${l.stream}${l.trusted ? '' : '  [address is not the instance\'s: written by another instance of the pool, or the instance is gone and its address unknown]'}:`);
    for (const line of l.lines) out.push(`    ${line.at} ${line.message}`);
  }
  out.push(`  Logs Insights (log groups ${s.logGroups.join(', ')}): ${s.insightsQuery}`);
  return out.join('\n');
}
