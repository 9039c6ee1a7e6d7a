/**
 * The stack's CloudWatch dashboard shows only metrics that exist: each widget's metric is either
 * one the code emits (the EMF lines of lib/lambda/metrics.ts, produced here by the real functions,
 * with the same namespace, name and dimension names, and dimension values this deployment emits)
 * or an AWS metric of one of the stack's own queues and functions. And it shows what an operator
 * needs: per pool jobs, workers by state, launches and errors by class; queue age and dead letters;
 * pass duration; GitLab calls.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseConfig } from '../../lib/config';
import { buildStack, WORKER_LOG_ALARM_GIB, type StackParts } from '../../lib/deploy/stack';
import { renderUserData } from '../../lib/worker/userdata';
import { invocationLine, interruptionLine, METRIC_NAMESPACE, passFailureLine, passMetricLines } from '../../lib/lambda/metrics';

const sample = parseConfig(readFileSync(join(__dirname, '../../samples/config.yaml'), 'utf8'), 'samples/config.yaml');
const stack = buildStack({ config: sample, stage: 'prod', region: 'eu-central-1', vpcId: 'vpc-0123456789abcdef0', renderUserData });
const POOLS = sample.pools.map((p) => p.name);

/** What the code emits: every EMF line the Lambdas write, from the real functions. */
function emitted(): Map<string, Record<string, string>[]> {
  const counts = { booting: 1, idle: 1, busy: 1, retiring: 0, total: 3, pending: 2, running: 1 };
  const report = {
    passId: 'p1',
    plan: { pools: POOLS.map((pool, i) => ({ pool, counts, retire: [], terminate: [], ...(i === 0 ? { hold: {} } : {}) })) },
    launched: { [POOLS[0]]: 1 },
    launchErrors: [{ pool: POOLS[0], class: 'capacity' }],
    retired: [],
    terminated: [],
    durationMs: 120,
    stateWrites: 1,
    apiCalls: 3,
    reports: { counts: { refused: 0 } },
  };
  const lines = [
    ...passMetricLines(report, sample.deployment, 'prod', 'schedule', Date.now(), { events: [{ receivedAt: Date.now() - 900 }], reports: [] }),
    passFailureLine(sample.deployment, 'prod', 'schedule'),
    ...['interruption', 'rebalance', 'state-change'].map((k) => interruptionLine(sample.deployment, 'prod', k)),
    invocationLine(sample.deployment, 'prod', { passes: 3, failedPasses: 0, unreadable: 0 }, 'schedule'),
  ];
  const out = new Map<string, Record<string, string>[]>();
  for (const line of lines) {
    const doc = JSON.parse(line);
    for (const def of doc._aws.CloudWatchMetrics) {
      const keys: string[] = def.Dimensions[0];
      const values = Object.fromEntries(keys.map((k) => [k, doc[k]]));
      for (const m of def.Metrics) {
        const key = `${def.Namespace}|${m.Name}|${[...keys].sort().join(',')}`;
        out.set(key, [...(out.get(key) ?? []), values]);
      }
    }
  }
  return out;
}

interface WidgetMetric {
  widget: string;
  namespace: string;
  name: string;
  dims: Record<string, string>;
}

/** The dashboard body as CloudWatch gets it (Fn::Sub resolved), and each metric of each widget. */
function widgetMetrics(parts: StackParts): { body: any; metrics: WidgetMetric[]; refs: string[] } {
  const dash = (parts.resources as any).Dashboard;
  expect(dash.Type).toBe('AWS::CloudWatch::Dashboard');
  const refs: string[] = [];
  const text = String(dash.Properties.DashboardBody['Fn::Sub']).replace(/\$\{([^}]+)\}/g, (_m, name: string) => {
    if (name === 'AWS::Region') return 'eu-central-1';
    refs.push(name);
    return `resolved:${name}`;
  });
  const body = JSON.parse(text);
  const metrics: WidgetMetric[] = [];
  for (const w of body.widgets)
    for (const m of w.properties.metrics ?? []) {
      const parts = m.filter((x: unknown) => typeof x === 'string') as string[];
      expect(parts.length % 2).toBe(0); // namespace, name, then name/value pairs: no "..." shorthand
      const dims: Record<string, string> = {};
      for (let i = 2; i < parts.length; i += 2) dims[parts[i]] = parts[i + 1];
      metrics.push({ widget: w.properties.title, namespace: parts[0], name: parts[1], dims });
    }
  return { body, metrics, refs };
}

/** Why a widget metric names nothing that exists, or undefined when it does. */
function problem(m: WidgetMetric, emits: Map<string, Record<string, string>[]>, parts: StackParts): string | undefined {
  const R = parts.resources as Record<string, any>;
  if (m.namespace === METRIC_NAMESPACE) {
    const sent = emits.get(`${m.namespace}|${m.name}|${Object.keys(m.dims).sort().join(',')}`);
    if (!sent) return `${m.name} with dimensions ${Object.keys(m.dims).join(', ')} is not emitted by lib/lambda/metrics.ts`;
    if (m.dims.Deployment !== sample.deployment || m.dims.Stage !== 'prod') return `${m.name}: dimensions ${JSON.stringify(m.dims)} are not this deployment's`;
    if ('Pool' in m.dims && !POOLS.includes(m.dims.Pool)) return `${m.name}: pool ${m.dims.Pool} is not in the config`;
    return undefined;
  }
  if (m.namespace === 'AWS/SQS') {
    if (!['ApproximateAgeOfOldestMessage', 'ApproximateNumberOfMessagesVisible'].includes(m.name)) return `AWS/SQS ${m.name} is not a metric the dashboard may use`;
    const ref = /^resolved:(\w+)\.QueueName$/.exec(m.dims.QueueName ?? '');
    if (!ref || R[ref[1]]?.Type !== 'AWS::SQS::Queue' || Object.keys(m.dims).length !== 1) return `AWS/SQS ${m.name}: QueueName ${m.dims.QueueName} is not one of the stack's queues`;
    return undefined;
  }
  if (m.namespace === 'AWS/Lambda') {
    if (!['Errors', 'Invocations', 'Throttles', 'Duration'].includes(m.name)) return `AWS/Lambda ${m.name} is not a metric the dashboard may use`;
    if (!Object.values(parts.functionNames).includes(m.dims.FunctionName) || Object.keys(m.dims).length !== 1) return `AWS/Lambda ${m.name}: ${m.dims.FunctionName} is not one of the stack's functions`;
    return undefined;
  }
  return `namespace ${m.namespace} is neither ${METRIC_NAMESPACE} nor AWS's for the stack's queues and functions`;
}

describe('the CloudWatch dashboard', () => {
  const emits = emitted();
  const { body, metrics, refs } = widgetMetrics(stack);

  it('names only metrics that the code emits (namespace, name, dimensions) or that AWS publishes for its queues and functions', () => {
    expect(metrics.length).toBeGreaterThan(40);
    expect(metrics.map((m) => problem(m, emits, stack)).filter(Boolean)).toEqual([]);
    // Every placeholder is a resource of the stack, so CloudFormation can resolve it.
    for (const r of refs) expect((stack.resources as any)[r.split('.')[0]]).toBeDefined();
  });

  it('catches a metric the code does not emit', () => {
    expect(problem({ widget: 'x', namespace: METRIC_NAMESPACE, name: 'PendingJob', dims: { Deployment: 'acme-ci', Stage: 'prod', Pool: 'general' } }, emits, stack)).toMatch(/not emitted/);
    expect(problem({ widget: 'x', namespace: METRIC_NAMESPACE, name: 'PassDuration', dims: { Deployment: 'acme-ci', Stage: 'prod', Pool: 'general' } }, emits, stack)).toMatch(/not emitted/);
    expect(problem({ widget: 'x', namespace: METRIC_NAMESPACE, name: 'PendingJobs', dims: { Deployment: 'acme-ci', Stage: 'prod', Pool: 'gpu' } }, emits, stack)).toMatch(/not in the config/);
    expect(problem({ widget: 'x', namespace: 'AWS/SQS', name: 'ApproximateAgeOfOldestMessage', dims: { QueueName: 'someone-elses' } }, emits, stack)).toMatch(/not one of the stack's queues/);
  });

  it("shows each pool's jobs, workers by state, launches and launch errors by class, and holds", () => {
    for (const pool of POOLS) {
      const of = (name: string) => metrics.some((m) => m.name === name && m.dims.Pool === pool);
      for (const name of ['PendingJobs', 'RunningJobs', 'WorkersBooting', 'WorkersIdle', 'WorkersBusy', 'WorkersRetiring', 'Launches', 'LaunchErrorsCapacity', 'LaunchErrorsQuota', 'LaunchErrorsThrottling', 'LaunchErrorsInvalid', 'LaunchErrorsOther', 'PoolHeld'])
        expect(`${pool} ${name} ${of(name)}`).toBe(`${pool} ${name} true`);
    }
  });

  it('shows queue age of both queues, dead letters, pass duration and GitLab calls', () => {
    const has = (ns: string, name: string, dim?: string) => metrics.some((m) => m.namespace === ns && m.name === name && (dim === undefined || Object.values(m.dims).includes(dim)));
    expect(has('AWS/SQS', 'ApproximateAgeOfOldestMessage', 'resolved:EventQueue.QueueName')).toBe(true);
    expect(has('AWS/SQS', 'ApproximateAgeOfOldestMessage', 'resolved:WorkerReportQueue.QueueName')).toBe(true);
    expect(has('AWS/SQS', 'ApproximateNumberOfMessagesVisible', 'resolved:EventDeadLetterQueue.QueueName')).toBe(true);
    for (const name of ['JobEventAge', 'UnreadableMessages', 'PassDuration', 'GitLabApiCalls', 'PassFailures']) expect(`${name} ${has(METRIC_NAMESPACE, name)}`).toBe(`${name} true`);
  });

  it('lays widgets out on the 24-column grid without overlaps, and is named after the deployment', () => {
    expect((stack.resources as any).Dashboard.Properties.DashboardName).toBe('gsa-acme-ci-prod');
    const cells = new Set<string>();
    for (const w of body.widgets) {
      expect(w.x + w.width).toBeLessThanOrEqual(24);
      for (let x = w.x; x < w.x + w.width; x++)
        for (let y = w.y; y < w.y + w.height; y++) {
          expect(cells.has(`${x},${y}`)).toBe(false);
          cells.add(`${x},${y}`);
        }
    }
    expect(stack.outputs.DashboardUrl).toBeDefined();
  });
});

describe('worker log groups', () => {
  const R = stack.resources as Record<string, any>;
  it('one per pool, named after deployment, stage and pool, with the configured retention', () => {
    // The image-builds function's own log group (lib/deploy/image.ts) is not a worker group.
    const groups = Object.values(R).filter((r) => r.Type === 'AWS::Logs::LogGroup' && String(r.Properties.LogGroupName).includes('/workers/'));
    expect(groups.map((g) => [g.Properties.LogGroupName, g.Properties.RetentionInDays]).sort()).toEqual(POOLS.map((p) => [`/gitlab-spot-autoscaler/acme-ci/prod/workers/${p}`, 30]).sort());
  });

  it('an alarm per pool when its workers write far more than the shipper sends (a job writing with the worker\'s credentials)', () => {
    const alarms = Object.entries(R).filter(([id]) => id.startsWith('WorkerLogVolumeAlarm')).map(([, r]) => r.Properties);
    expect(alarms.map((a) => a.Dimensions)).toEqual(POOLS.map((p) => [{ Name: 'LogGroupName', Value: `/gitlab-spot-autoscaler/acme-ci/prod/workers/${p}` }]));
    for (const a of alarms) {
      expect(a).toMatchObject({ Namespace: 'AWS/Logs', MetricName: 'IncomingBytes', Statistic: 'Sum', Period: 3600, Threshold: WORKER_LOG_ALARM_GIB * 2 ** 30, AlarmActions: [{ Ref: 'AlarmTopic' }] });
      // Far above the shipper's own bound: 50 MB of runner output per boot.
      expect(a.Threshold).toBeGreaterThan(100 * (50 << 20));
    }
  });

  it('none, and no grant, with workerLogRetentionDays: 0', () => {
    const off = buildStack({ config: { ...sample, workerLogRetentionDays: 0 }, stage: 'prod', region: 'eu-central-1', vpcId: 'vpc-0123456789abcdef0', renderUserData });
    expect(Object.values(off.resources).filter((r: any) => r.Type === 'AWS::Logs::LogGroup' && String(r.Properties.LogGroupName).includes('/workers/'))).toEqual([]);
    expect(Object.keys(off.resources).filter((id) => id.startsWith('WorkerLogVolumeAlarm'))).toEqual([]);
    expect(JSON.stringify((off.resources as any).WorkerRoleGeneral)).not.toContain('logs:PutLogEvents');
  });
});
