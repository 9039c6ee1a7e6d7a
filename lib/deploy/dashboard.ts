/**
 * The deployment's CloudWatch dashboard (`gsa-<deployment>-<stage>`): demand, workers by state per
 * pool, launches and launch errors by class, operator holds, queue age and dead letters, pass
 * duration, GitLab calls, interruptions. Every number comes from a metric something already
 * publishes: the Lambdas' EMF lines (lib/lambda/metrics.ts, namespace GitLabSpotAutoscaler, bounded
 * dimensions Deployment, Stage and Pool) or AWS's own (AWS/SQS, AWS/Lambda) for the stack's queues
 * and functions. test/deploy/dashboard.test.ts checks each widget's metric against what the code
 * emits, with the same namespace, name and dimensions, so a renamed metric cannot leave an empty graph.
 *
 * Statistics: the per-pool gauges (jobs, workers) are sampled by every pass (every 5-30 s), so a
 * minute shows their Maximum; counters (launches, errors, calls) are summed.
 */
import type { Config } from '../config';
import { METRIC_NAMESPACE } from '../lambda/metrics';

type Metric = (string | Record<string, unknown>)[];
interface Widget {
  type: 'metric' | 'text';
  x: number;
  y: number;
  width: number;
  height: number;
  properties: Record<string, unknown>;
}

const REGION = '${AWS::Region}';
/** A stack resource's attribute, resolved by the template's Fn::Sub. */
const att = (id: string, attr: string) => `\${${id}.${attr}}`;

export const DASHBOARD_PERIOD = 60;

export function dashboardName(deployment: string, stage: string): string {
  return `gsa-${deployment}-${stage}`;
}

/**
 * The dashboard body: a JSON document whose `${...}` placeholders (region, queue names) the
 * stack's Fn::Sub fills in. Returns the text, not an object: DashboardBody is a string.
 */
export function dashboardBody(config: Config, stage: string, functionNames: { webhook: string; reconcile: string; interruption: string }): string {
  const dims = { Deployment: config.deployment, Stage: stage };
  const ours = (name: string, pool: string | undefined, opts: Record<string, unknown> = {}): Metric => [
    METRIC_NAMESPACE,
    name,
    'Deployment',
    dims.Deployment,
    'Stage',
    dims.Stage,
    ...(pool ? ['Pool', pool] : []),
    ...(Object.keys(opts).length ? [opts] : []),
  ];
  const widgets: Widget[] = [];
  let y = 0;
  const row = (items: { title: string; metrics: Metric[]; stat?: string; stacked?: boolean; width?: number; yLabel?: string }[], height = 6) => {
    let x = 0;
    for (const w of items) {
      const width = w.width ?? Math.floor(24 / items.length);
      widgets.push({
        type: 'metric',
        x,
        y,
        width,
        height,
        properties: {
          title: w.title,
          region: REGION,
          view: 'timeSeries',
          stacked: w.stacked ?? false,
          period: DASHBOARD_PERIOD,
          stat: w.stat ?? 'Sum',
          metrics: w.metrics,
          ...(w.yLabel ? { yAxis: { left: { label: w.yLabel, min: 0 } } } : { yAxis: { left: { min: 0 } } }),
        },
      });
      x += width;
    }
    y += height;
  };

  widgets.push({
    type: 'text',
    x: 0,
    y,
    width: 24,
    height: 2,
    properties: {
      markdown: `## gitlab-spot-autoscaler ${config.deployment} / ${stage}\nDemand and workers per pool, launches and errors, queues, the reconcile passes. \`gitlab-spot-autoscaler status --stage ${stage} --deployment ${config.deployment}\` shows the fleet now; \`status --worker i-...\` one worker's story (docs/deployment.md, "Operating a deployment").`,
    },
  });
  y += 2;

  for (const pool of config.pools) {
    const p = pool.name;
    row([
      { title: `${p}: pending and running jobs`, stat: 'Maximum', metrics: [ours('PendingJobs', p), ours('RunningJobs', p)], yLabel: 'jobs' },
      {
        title: `${p}: workers by state`,
        stat: 'Maximum',
        stacked: true,
        metrics: [ours('WorkersBooting', p), ours('WorkersIdle', p), ours('WorkersBusy', p), ours('WorkersRetiring', p)],
        yLabel: 'workers',
      },
      {
        title: `${p}: launches and launch errors by class`,
        metrics: [ours('Launches', p), ...['Capacity', 'Quota', 'Throttling', 'Invalid', 'Other'].map((c) => ours(`LaunchErrors${c}`, p))],
      },
      { title: `${p}: retirements, terminations, operator hold`, metrics: [ours('Retirements', p), ours('Terminations', p), ours('PoolHeld', p, { stat: 'Maximum' })] },
    ]);
  }

  const sqs = (name: string, queue: string, label: string, opts: Record<string, unknown> = {}): Metric => ['AWS/SQS', name, 'QueueName', att(queue, 'QueueName'), { label, ...opts }];
  row([
    {
      title: 'queue age (oldest message) and job event wait',
      stat: 'Maximum',
      metrics: [
        sqs('ApproximateAgeOfOldestMessage', 'EventQueue', 'job-event queue, s'),
        sqs('ApproximateAgeOfOldestMessage', 'WorkerReportQueue', 'worker-report queue, s'),
        ours('JobEventAge', undefined, { label: 'job event: webhook to pass, ms', yAxis: 'right' }),
      ],
    },
    {
      title: 'dead letters (both queues) and unreadable messages',
      metrics: [sqs('ApproximateNumberOfMessagesVisible', 'EventDeadLetterQueue', 'in the dead-letter queue', { stat: 'Maximum' }), ours('UnreadableMessages', undefined)],
    },
    { title: 'job events and worker reports taken', metrics: [ours('JobEvents', undefined), ours('WorkerReports', undefined), ours('WorkerReportsRefused', undefined)] },
  ]);
  row([
    {
      title: 'reconcile pass duration',
      stat: 'Maximum',
      metrics: [ours('PassDuration', undefined, { stat: 'p50', label: 'p50' }), ours('PassDuration', undefined, { stat: 'p99', label: 'p99' }), ours('PassDuration', undefined, { label: 'max' })],
      yLabel: 'ms',
    },
    { title: 'passes, failures, state writes', metrics: [ours('Passes', undefined), ours('PassFailures', undefined), ours('StateWrites', undefined), ['AWS/Lambda', 'Errors', 'FunctionName', functionNames.reconcile, { label: 'reconcile errors' }]] },
    { title: 'GitLab API calls', metrics: [ours('GitLabApiCalls', undefined)] },
    { title: 'spot interruptions, rebalances, workers gone', metrics: [ours('Interruptions', undefined), ours('Rebalances', undefined), ours('WorkersGone', undefined)] },
  ]);
  row([
    {
      title: 'webhook: invocations, errors, throttles',
      metrics: [
        ['AWS/Lambda', 'Invocations', 'FunctionName', functionNames.webhook],
        ['AWS/Lambda', 'Errors', 'FunctionName', functionNames.webhook],
        ['AWS/Lambda', 'Throttles', 'FunctionName', functionNames.webhook],
      ],
      width: 24,
    },
  ]);
  return JSON.stringify({ start: '-PT6H', periodOverride: 'inherit', widgets });
}
