/**
 * `status`: the live deployment, read from SSM (controller state, operator holds) and EC2
 * (instances by tag); with --worker, one worker's story: its tags and state from EC2, what the
 * last pass decided about it, and its last log lines from CloudWatch Logs.
 * The config is the deployed one (SSM, with --deployment) or a local file (--config); there is no
 * default, because a wrong config would show wrong periods and idle targets.
 * Works against moto or LocalStack with --endpoint (or AWS_ENDPOINT_URL).
 */
import { DescribeInstancesCommand, type Instance } from '@aws-sdk/client-ec2';
import { ec2Client } from '../../aws/clients';
import { Ec2Fleet, workerFromInstance } from '../../aws/ec2-fleet';
import { readHoldRecords } from '../../aws/operator-holds';
import { SsmStateStore } from '../../aws/ssm-state-store';
import { insightsQuery, lastLines, logsClient, workerStreams } from '../../aws/worker-logs';
import { parameterNames, type Config } from '../../config';
import { TAG_PREFIX, TAGS, workerLogGroupName } from '../../controller/tags';
import { buildStatus, formatStatus, formatWorkerStory, type WorkerStory } from '../../status';
import { defineCommand, runner } from '../command';
import { UsageError } from './common';
import { credentialsHint, deploymentTarget, DEPLOYMENT_FLAGS, DEPLOYMENT_SYNOPSIS, type DeploymentTarget } from './deployment';

export { deployedConfig } from './deployment';

const progress = (m: string) => process.stderr.write(`status: ${m}\n`);

/** One worker's story: EC2 (tags, state), the last pass, CloudWatch Logs. */
async function workerStory(target: DeploymentTarget, id: string, lines: number): Promise<WorkerStory> {
  const { config, stage } = target;
  const ec2 = ec2Client(target.clientOpts);
  const logs = logsClient(target.clientOpts);
  try {
    let instance: Instance | undefined;
    try {
      instance = (await ec2.send(new DescribeInstancesCommand({ InstanceIds: [id] }))).Reservations?.[0]?.Instances?.[0];
    } catch (e) {
      if (!/InvalidInstanceID/.test((e as { name?: string }).name ?? '')) throw e;
    }
    const tags = new Map((instance?.Tags ?? []).map((t) => [t.Key ?? '', t.Value ?? '']));
    if (instance && (tags.get(TAGS.deployment) !== config.deployment || tags.get(TAGS.stage) !== stage))
      throw new UsageError(`instance ${id} is not a worker of ${config.deployment}/${stage} (its tags say deployment ${tags.get(TAGS.deployment) ?? '(none)'}, stage ${tags.get(TAGS.stage) ?? '(none)'})`);
    const pool = tags.get(TAGS.pool);
    const state = await new SsmStateStore({ ssm: target.ssm, config, stage }).load();
    const view = instance ? workerFromInstance(instance, new Set()) : undefined;
    // Where its logs are: its pool's group; for an instance EC2 no longer lists, every pool's.
    const groups = (pool ? [pool] : config.pools.map((p) => p.name)).map((p) => workerLogGroupName(config.deployment, stage, p));
    progress(`reading the log streams of ${id} in ${groups.join(', ')}…`);
    const streams = (await Promise.all(groups.map((g) => workerStreams(logs, g, id)))).flat();
    const address = instance?.PrivateIpAddress;
    const shown = streams.filter((s) => !address || s.address === address);
    const foreign = streams.filter((s) => address && s.address !== address);
    const logLines = [];
    for (const s of [...shown, ...foreign]) {
      const got = await lastLines(logs, s, lines);
      logLines.push({ group: s.group, stream: s.name, trusted: address !== undefined && s.address === address, lines: got.map((l) => ({ at: new Date(l.at).toISOString(), message: l.message })) });
    }
    return {
      id,
      deployment: config.deployment,
      stage,
      inEc2: instance !== undefined,
      ...(pool ? { pool } : {}),
      ...(instance
        ? {
            ec2: {
              state: instance.State?.Name ?? 'unknown',
              ...(instance.StateReason?.Message ? { stateReason: instance.StateReason.Message } : {}),
              ...(instance.InstanceType ? { instanceType: instance.InstanceType } : {}),
              ...(instance.Placement?.AvailabilityZone ? { zone: instance.Placement.AvailabilityZone } : {}),
              market: instance.InstanceLifecycle === 'spot' ? 'spot' : 'on-demand',
              ...(instance.LaunchTime ? { launchTime: instance.LaunchTime.toISOString() } : {}),
              ...(address ? { privateIp: address } : {}),
            },
          }
        : {}),
      ...(view
        ? {
            controller: {
              state: view.state,
              ...(view.reported ? { reported: view.reported } : {}),
              ...(view.problem ? { problem: view.problem } : {}),
              ...(view.retireRequestedAt !== undefined ? { retireRequestedAt: new Date(view.retireRequestedAt).toISOString() } : {}),
              builds: view.builds,
            },
          }
        : {}),
      tags: Object.fromEntries([...tags].filter(([k]) => k.startsWith(`${TAG_PREFIX}:`))),
      decisions: (state.lastPass?.decisions ?? []).filter((d) => d.includes(id)),
      logs: logLines,
      logGroups: groups,
      insightsQuery: insightsQuery(id),
    };
  } finally {
    ec2.destroy();
    logs.destroy();
  }
}

export const command = defineCommand({
  name: 'status',
  summary: 'show a live deployment: workers by state, jobs, idle target, holds, cooldowns, the last pass; or one worker\'s story with its logs',
  synopsis: `${DEPLOYMENT_SYNOPSIS} [--worker ID [--lines N]] [--json]`,
  description:
    'Reads the controller state and the operator holds from SSM and the instances from EC2 by their tags; needs AWS credentials with read access (ssm:GetParameter, ssm:GetParametersByPath, ec2:DescribeInstances). With --worker: that instance\'s tags and state, what the last pass decided about it, and its last log lines from its pool\'s CloudWatch Logs group (logs:DescribeLogStreams, logs:GetLogEvents), and a Logs Insights query that finds its whole story. Progress goes to stderr, the report to stdout.',
  flags: {
    ...DEPLOYMENT_FLAGS,
    worker: { type: 'string', value: 'ID', description: "one worker's story instead of the deployment's: an EC2 instance id (i-...)" },
    lines: { type: 'number', value: 'N', integer: true, min: 1, max: 10_000, default: 50, description: 'with --worker: how many of its last log lines to show' },
    json: { type: 'boolean', description: 'print the report as one JSON document' },
  },
  examples: ['status --stage prod --deployment acme-ci --region eu-central-1', 'status --stage prod --config config.yaml --json', 'status --stage prod --deployment acme-ci --worker i-0123456789abcdef0'],
  async run(opts) {
    if (opts.worker !== undefined && !/^i-[0-9a-f]{8,17}$/.test(opts.worker)) throw new UsageError(`--worker ${JSON.stringify(opts.worker)}: expected an EC2 instance id (i- and 8 or 17 hex digits)`);
    const target = await deploymentTarget(opts);
    const { config, stage, ssm } = target;
    try {
      if (opts.worker) {
        const story = await workerStory(target, opts.worker, opts.lines);
        process.stdout.write((opts.json ? JSON.stringify(story, null, 2) : formatWorkerStory(story)) + '\n');
        return 0;
      }
      return await deploymentStatus(config, target, opts.json);
    } catch (e) {
      throw credentialsHint(e);
    } finally {
      ssm.destroy();
    }
  },
});

async function deploymentStatus(config: Config, target: DeploymentTarget, json: boolean): Promise<number> {
  const { stage, ssm } = target;
  const ec2 = ec2Client(target.clientOpts);
  try {
    progress(`reading controller state from SSM (${config.ssmPrefix}/${config.deployment}/${stage}/state) and operator holds (…/operator)…`);
    const state = await new SsmStateStore({ ssm, config, stage }).load();
    const holds = await readHoldRecords({ ssm, path: parameterNames(config, stage).operator });
    progress(`finding instances tagged for ${config.deployment}/${stage} in EC2 (${target.region})…`);
    const started = Date.now();
    const workers = await new Ec2Fleet({ ec2, config, stage }).discover();
    progress(`${workers.length} instance(s) in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    const report = buildStatus(config, stage, new Date(), workers, state, holds);
    process.stdout.write((json ? JSON.stringify(report, null, 2) : formatStatus(report)) + '\n');
    return 0;
  } finally {
    ec2.destroy();
  }
}

export const run = runner(command);
