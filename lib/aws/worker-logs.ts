/**
 * Reading a worker's log from CloudWatch Logs (`status --worker`). Each worker writes one stream in
 * its pool's group, named `<instance id>/<primary private IPv4>` (lib/worker/script.ts). The IAM
 * grant pins the address part to the instance's own (lib/deploy/stack.ts), so a stream whose address
 * is not the instance's was written by another instance of the pool: reported, not trusted.
 *
 * DescribeLogStreams and GetLogEvents have small account-wide quotas (about 5 and 10-25 TPS,
 * CloudWatch Logs quotas): made for people, which this is: one DescribeLogStreams per pool
 * searched and one GetLogEvents per stream shown.
 */
import { CloudWatchLogsClient, DescribeLogStreamsCommand, GetLogEventsCommand } from '@aws-sdk/client-cloudwatch-logs';
import { clientSettings, type ClientOptions } from './ssm-client';

export interface WorkerStream {
  group: string;
  name: string;
  /** The address part of the name. */
  address: string;
  lastEventAt?: number;
}

export interface LogLine {
  at: number;
  message: string;
}

export function logsClient(opts: ClientOptions): CloudWatchLogsClient {
  return new CloudWatchLogsClient(clientSettings(opts));
}

/** The streams named after the instance in `group` (none when the group does not exist). */
export async function workerStreams(logs: CloudWatchLogsClient, group: string, instanceId: string): Promise<WorkerStream[]> {
  try {
    const out = await logs.send(new DescribeLogStreamsCommand({ logGroupName: group, logStreamNamePrefix: `${instanceId}/`, limit: 10 }));
    return (out.logStreams ?? [])
      .filter((s) => s.logStreamName)
      .map((s) => ({ group, name: s.logStreamName!, address: s.logStreamName!.slice(instanceId.length + 1), ...(s.lastEventTimestamp ? { lastEventAt: s.lastEventTimestamp } : {}) }));
  } catch (e) {
    if ((e as { name?: string }).name === 'ResourceNotFoundException') return [];
    throw e;
  }
}

/** The last `limit` lines of a stream, oldest first. */
export async function lastLines(logs: CloudWatchLogsClient, stream: WorkerStream, limit: number): Promise<LogLine[]> {
  const out = await logs.send(new GetLogEventsCommand({ logGroupName: stream.group, logStreamName: stream.name, startFromHead: false, limit }));
  return (out.events ?? []).map((e) => ({ at: e.timestamp ?? 0, message: e.message ?? '' }));
}

/** The Logs Insights query that finds a worker's story (docs/deployment.md, "A worker's story"). */
export function insightsQuery(instanceId: string): string {
  return `fields @timestamp, @logStream, @message | filter @logStream like /^${instanceId}\\// | sort @timestamp asc | limit 500`;
}
