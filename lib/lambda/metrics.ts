/**
 * CloudWatch metrics in the embedded metric format (EMF): a specially shaped JSON log line that
 * CloudWatch turns into metrics, so a Lambda needs no cloudwatch:PutMetricData permission and
 * makes no extra API call (docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/
 * CloudWatch_Embedded_Metric_Format_Specification.html). Limits from that spec: at most 100
 * metrics per line and 30 dimensions per set, so one line per pool.
 */
export type EmfUnit = 'Count' | 'Milliseconds' | 'Seconds' | 'None';

export interface MetricValue {
  /** One value, or several of the same moment (EMF takes an array of up to 100). */
  value: number | number[];
  unit?: EmfUnit;
}

export const METRIC_NAMESPACE = 'GitLabSpotAutoscaler';
const MAX_METRICS_PER_LINE = 100;

/**
 * One EMF document. `dimensions` become the metric dimensions (e.g. Deployment, Stage, Pool);
 * `properties` are extra searchable fields (correlation id) that do not create metrics.
 */
export function emfLine(
  dimensions: Record<string, string>,
  metrics: Record<string, number | MetricValue>,
  properties: Record<string, unknown> = {},
  at = Date.now(),
  namespace = METRIC_NAMESPACE,
): string {
  const finite = (v: number | number[]) => (Array.isArray(v) ? v.length > 0 && v.length <= 100 && v.every(Number.isFinite) : Number.isFinite(v));
  const entries = Object.entries(metrics).filter(([, v]) => finite(typeof v === 'number' ? v : v.value));
  if (entries.length > MAX_METRICS_PER_LINE) throw new Error(`EMF allows at most ${MAX_METRICS_PER_LINE} metrics per line, got ${entries.length}`);
  const doc: Record<string, unknown> = {
    ...properties,
    ...dimensions,
    _aws: {
      Timestamp: at,
      CloudWatchMetrics: [
        {
          Namespace: namespace,
          Dimensions: [Object.keys(dimensions)],
          Metrics: entries.map(([name, v]) => ({ Name: name, Unit: typeof v === 'number' ? 'Count' : (v.unit ?? 'Count') })),
        },
      ],
    },
  };
  for (const [name, v] of entries) doc[name] = typeof v === 'number' ? v : v.value;
  return JSON.stringify(doc);
}

export interface MetricsSink {
  (line: string): void;
}

export const stdoutSink: MetricsSink = (line) => process.stdout.write(line + '\n');

/** The subset of the reconcile pass report the metrics are made from (lib/controller/reconcile.ts PassReport). */
export interface PassReportLike {
  passId: string;
  plan: {
    pools: { pool: string; counts: { booting: number; idle: number; busy: number; retiring: number; total: number; pending: number; running: number }; retire: { id: string }[]; terminate: { id: string }[]; hold?: unknown }[];
  };
  launched: Record<string, number>;
  launchErrors: { pool: string; class: string }[];
  retired: { id: string }[];
  terminated: { id: string }[];
  durationMs: number;
  stateWrites?: number;
  apiCalls?: number;
  /** Boot timelines of workers that became ready (lib/controller/reports.ts BootTimeline). */
  boots?: { pool: string; boot: Partial<Record<'running' | 'userData' | 'docker' | 'runner' | 'ready', number>> & { image?: string } }[];
  reports?: { counts: { refused: number } };
}

/** What the pass was fed (lib/controller/reconcile.ts PassInput): job events with their receipt time, workers' reports. */
export interface PassInputLike {
  events: readonly { receivedAt: number }[];
  reports?: readonly unknown[];
}

const ERROR_CLASSES = ['capacity', 'quota', 'throttling', 'invalid', 'other'];
const titleCase = (s: string) => s[0].toUpperCase() + s.slice(1);

/**
 * One EMF line per pool (dimensions Deployment, Stage, Pool) with jobs, workers by state,
 * launches, launch errors by class, retirements and an operator's hold, plus one per pass
 * (Deployment, Stage) with its duration, state writes, GitLab calls, the job events and reports it
 * took and how old the oldest event was. Metric names are stable: the stack's dashboard
 * (lib/deploy/dashboard.ts) and alarms refer to them, and test/deploy/dashboard.test.ts checks each
 * widget against what these functions emit. Dimensions are bounded: pools come from the config.
 */
export function passMetricLines(report: PassReportLike, deployment: string, stage: string, trigger: string, at = Date.now(), input?: PassInputLike): string[] {
  const retired = new Set(report.retired.map((r) => r.id));
  const terminated = new Set(report.terminated.map((r) => r.id));
  const lines = report.plan.pools.map((pp) => {
    const errors: Record<string, number> = {};
    for (const cls of ERROR_CLASSES) errors[`LaunchErrors${titleCase(cls)}`] = 0;
    for (const e of report.launchErrors) if (e.pool === pp.pool) errors[`LaunchErrors${titleCase(ERROR_CLASSES.includes(e.class) ? e.class : 'other')}`]++;
    return emfLine(
      { Deployment: deployment, Stage: stage, Pool: pp.pool },
      {
        PendingJobs: pp.counts.pending,
        RunningJobs: pp.counts.running,
        WorkersBooting: pp.counts.booting,
        WorkersIdle: pp.counts.idle,
        WorkersBusy: pp.counts.busy,
        WorkersRetiring: pp.counts.retiring,
        WorkersTotal: pp.counts.total,
        Launches: report.launched[pp.pool] ?? 0,
        ...errors,
        Retirements: pp.retire.filter((r) => retired.has(r.id)).length,
        Terminations: pp.terminate.filter((t) => terminated.has(t.id)).length,
        // 1 while an operator's pause or drain holds the pool (lib/controller/holds.ts).
        PoolHeld: pp.hold ? 1 : 0,
      },
      { passId: report.passId, trigger },
      at,
    );
  });
  lines.push(...bootMetricLines(report, deployment, stage, trigger, at));
  lines.push(
    emfLine(
      { Deployment: deployment, Stage: stage },
      {
        PassDuration: { value: report.durationMs, unit: 'Milliseconds' },
        StateWrites: report.stateWrites ?? 0,
        GitLabApiCalls: report.apiCalls ?? 0,
        PassFailures: 0,
        JobEvents: input?.events.length ?? 0,
        WorkerReports: input?.reports?.length ?? 0,
        WorkerReportsRefused: report.reports?.counts.refused ?? 0,
        // From the webhook's receipt to this pass: how long demand waited in the queue (0 without events).
        JobEventAge: { value: Math.max(0, ...(input?.events ?? []).map((e) => at - e.receivedAt).filter(Number.isFinite)), unit: 'Milliseconds' },
      },
      { passId: report.passId, trigger },
      at,
    ),
  );
  return lines;
}

/**
 * Workers' boot timelines (docs/worker.md, "Boot timeline"): per Deployment, Stage, Pool and Image
 * (prebuilt or base), the seconds after launch at which each step was done, as arrays of the values
 * of the workers that became ready in this pass: BootRunning (the instance runs), BootUserData,
 * BootDocker, BootRunner, BootReady (the worker reported ready). BootReady is the boot time.
 */
export function bootMetricLines(report: Pick<PassReportLike, 'passId' | 'boots'>, deployment: string, stage: string, trigger: string, at = Date.now()): string[] {
  const groups = new Map<string, { pool: string; image: string; values: Record<string, number[]> }>();
  for (const { pool, boot } of report.boots ?? []) {
    const image = boot.image ?? 'unknown';
    const key = `${pool}\u0000${image}`;
    if (!groups.has(key)) groups.set(key, { pool, image, values: {} });
    const g = groups.get(key)!;
    for (const [step, name] of [['running', 'BootRunning'], ['userData', 'BootUserData'], ['docker', 'BootDocker'], ['runner', 'BootRunner'], ['ready', 'BootReady']] as const) {
      const v = boot[step];
      if (v !== undefined && (g.values[name] ??= []).length < 100) g.values[name].push(v);
    }
  }
  return [...groups.values()].map((g) =>
    emfLine(
      { Deployment: deployment, Stage: stage, Pool: g.pool, Image: g.image },
      Object.fromEntries(Object.entries(g.values).map(([name, value]) => [name, { value, unit: 'Seconds' as const }])),
      { passId: report.passId, trigger },
      at,
    ),
  );
}

/**
 * One line per invocation of the reconcile function (Deployment, Stage): its passes, the failed
 * ones, and the messages it could not read (they go to the dead-letter queue after maxReceiveCount
 * deliveries; the dashboard shows them beside the dead-letter queue's depth).
 */
export function invocationLine(deployment: string, stage: string, loop: { passes: number; failedPasses: number; unreadable: number }, trigger: string, at = Date.now()): string {
  return emfLine({ Deployment: deployment, Stage: stage }, { Passes: loop.passes, FailedPasses: loop.failedPasses, UnreadableMessages: loop.unreadable }, { trigger }, at);
}

/** A failed pass still produces a data point, so an alarm on PassFailures sees it. */
export function passFailureLine(deployment: string, stage: string, trigger: string, at = Date.now()): string {
  return emfLine({ Deployment: deployment, Stage: stage }, { PassFailures: 1 }, { trigger }, at);
}

/**
 * Interruption notices of this deployment's workers, per kind (interruption, rebalance,
 * state-change), per Deployment and Stage. Not per pool: the interruption function learns that a
 * worker is ours from Ec2Fleet.markInstance, which reports only the outcome (one EC2 lookup, not a
 * second one for the pool tag); the per-pool worker counts of each pass show where capacity went.
 */
export function interruptionLine(deployment: string, stage: string, kind: string, at = Date.now()): string {
  return emfLine({ Deployment: deployment, Stage: stage }, { Interruptions: kind === 'interruption' ? 1 : 0, Rebalances: kind === 'rebalance' ? 1 : 0, WorkersGone: kind === 'state-change' ? 1 : 0 }, { kind }, at);
}
