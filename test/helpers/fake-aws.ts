/**
 * An in-memory EC2 and SSM behind the real AWS SDK clients (aws-sdk-client-mock), for the scale
 * bench and the tests that need many instances: the real adapters (Ec2Fleet, SsmStateStore) run
 * unchanged, every call is counted by API, and an optional latency per call stands in for AWS's
 * (assumed figures, printed by the bench that uses them; never a measurement of AWS).
 *
 * What it models: instances with tags and EC2 states; DescribeInstances with tag and state filters
 * in pages of MaxResults (<= 1000, as EC2); DescribeInstanceStatus by ids or with status filters,
 * paged; CreateFleet (instant) that launches what it is asked for; CreateTags on many resources;
 * TerminateInstances; DescribeLaunchTemplateVersions of an accepted template; SSM parameters by path;
 * SQS queues with visibility timeouts, long polling and the SenderId attribute (`send` takes the
 * sender's identity, as AWS stamps it).
 */
import { mockClient } from 'aws-sdk-client-mock';
import {
  CreateFleetCommand,
  CreateTagsCommand,
  DescribeInstancesCommand,
  DescribeInstanceStatusCommand,
  DescribeLaunchTemplateVersionsCommand,
  EC2Client,
  TerminateInstancesCommand,
  type Instance,
} from '@aws-sdk/client-ec2';
import { GetParametersByPathCommand, PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { DeleteMessageBatchCommand, ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';

interface FakeMessage {
  id: string;
  body: string;
  sender: string;
  sentAt: number;
  visibleAt: number;
  receives: number;
  handle?: string;
}

export interface FakeInstance {
  id: string;
  state: 'pending' | 'running' | 'stopping' | 'stopped' | 'shutting-down' | 'terminated';
  tags: Map<string, string>;
  instanceType: string;
  subnet: string;
  impaired?: boolean;
  lifecycle: 'spot' | 'on-demand';
}

/** Assumed latency of one call, ms, from the API name and the number of items it returned or named (0 = at once). */
export type Latency = (api: string, items: number) => number;

export class FakeAws {
  readonly instances = new Map<string, FakeInstance>();
  readonly calls = new Map<string, number>();
  /** Resources named by CreateTags calls, in all. */
  taggedResources = 0;
  readonly parameters = new Map<string, string>();
  latency: Latency = () => 0;
  /** Called before every call is answered (tests use it to act in the middle of a pass). */
  beforeCall?: (api: string, input: Record<string, any>) => void;
  templateVersion = 1;
  private next = 1;
  private readonly ec2Mock = mockClient(EC2Client);
  private readonly ssmMock = mockClient(SSMClient);
  private readonly sqsMock = mockClient(SQSClient);
  /** SQS queues by URL. */
  readonly queues = new Map<string, FakeMessage[]>();
  private nextMessage = 1;

  constructor() {
    this.install();
  }

  count(api: string): number {
    return this.calls.get(api) ?? 0;
  }

  /** A copy of the call counts, to diff against later. */
  snapshot(): Map<string, number> {
    return new Map(this.calls);
  }

  /** Calls made since `before`, by API. */
  since(before: Map<string, number>): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [k, v] of [...this.calls].sort()) if (v - (before.get(k) ?? 0) > 0) out[k] = v - (before.get(k) ?? 0);
    return out;
  }

  add(tags: Record<string, string>, opts: Partial<Omit<FakeInstance, 'tags' | 'id'>> = {}): FakeInstance {
    const id = `i-${(this.next++).toString(16).padStart(17, '0')}`;
    const i: FakeInstance = { id, state: 'running', tags: new Map(Object.entries(tags)), instanceType: 'm6i.large', subnet: 'subnet-0a', lifecycle: 'spot', ...opts };
    this.instances.set(id, i);
    return i;
  }

  restore(): void {
    this.ec2Mock.restore();
    this.ssmMock.restore();
    this.sqsMock.restore();
  }

  /** A message sent to a queue by `sender` (the SenderId AWS would stamp: `<role id>:<instance id>` for a worker). */
  send(queueUrl: string, body: string, sender = 'AIDAFAKEUSER00000001'): void {
    const q = this.queues.get(queueUrl) ?? [];
    this.queues.set(queueUrl, q);
    q.push({ id: `msg-${this.nextMessage++}`, body, sender, sentAt: Date.now(), visibleAt: 0, receives: 0 });
  }

  /** Messages in a queue, visible or not. */
  queued(queueUrl: string): number {
    return this.queues.get(queueUrl)?.length ?? 0;
  }

  private async answer<T>(api: string, f: () => T, items: (out: T) => number = () => 0, input: Record<string, any> = {}): Promise<T> {
    this.calls.set(api, (this.calls.get(api) ?? 0) + 1);
    this.beforeCall?.(api, input);
    const out = f();
    const ms = this.latency(api, items(out));
    if (ms > 0) await new Promise((r) => setTimeout(r, ms));
    return out;
  }

  private answerWith<T>(input: Record<string, any>, api: string, f: () => T, items?: (out: T) => number): Promise<T> {
    return this.answer(api, f, items, input);
  }

  private render(i: FakeInstance): Instance {
    return {
      InstanceId: i.id,
      State: { Name: i.state },
      InstanceType: i.instanceType as Instance['InstanceType'],
      SubnetId: i.subnet,
      InstanceLifecycle: i.lifecycle === 'spot' ? 'spot' : undefined,
      Placement: { AvailabilityZone: 'eu-west-1a' },
      Tags: [...i.tags].map(([Key, Value]) => ({ Key, Value })),
    };
  }

  private install(): void {
    const page = <T>(items: T[], max: number | undefined, token: string | undefined) => {
      const from = token ? Number(token) : 0;
      const size = Math.min(1000, max ?? 1000);
      return { items: items.slice(from, from + size), next: from + size < items.length ? String(from + size) : undefined };
    };
    this.ec2Mock.on(DescribeInstancesCommand).callsFake((input) =>
      this.answerWith(input, 'DescribeInstances', () => {
        let list = [...this.instances.values()];
        if (input.InstanceIds?.length) list = list.filter((i) => input.InstanceIds.includes(i.id));
        for (const f of input.Filters ?? []) {
          if (f.Name === 'instance-state-name') list = list.filter((i) => f.Values.includes(i.state));
          else if (f.Name?.startsWith('tag:')) list = list.filter((i) => f.Values.includes(i.tags.get(f.Name.slice(4)) ?? '\u0000'));
        }
        const p = page(list, input.MaxResults, input.NextToken);
        return { Reservations: [{ Instances: p.items.map((i) => this.render(i)) }], NextToken: p.next };
      }, (out) => out.Reservations[0].Instances.length),
    );
    this.ec2Mock.on(DescribeInstanceStatusCommand).callsFake((input) =>
      this.answerWith(input, 'DescribeInstanceStatus', () => {
        let list = [...this.instances.values()].filter((i) => i.state === 'running');
        if (input.InstanceIds?.length) list = list.filter((i) => input.InstanceIds.includes(i.id));
        for (const f of input.Filters ?? []) if (/status\.status$/.test(f.Name ?? '') && f.Values.includes('impaired')) list = list.filter((i) => i.impaired);
        const p = page(list, input.MaxResults, input.NextToken);
        return {
          InstanceStatuses: p.items.map((i) => ({ InstanceId: i.id, InstanceStatus: { Status: i.impaired ? 'impaired' : 'ok' }, SystemStatus: { Status: 'ok' } })),
          NextToken: p.next,
        };
      }, (out) => out.InstanceStatuses.length),
    );
    this.ec2Mock.on(DescribeLaunchTemplateVersionsCommand).callsFake(() =>
      this.answer('DescribeLaunchTemplateVersions', () => ({
        LaunchTemplateVersions: [
          {
            VersionNumber: this.templateVersion,
            LaunchTemplateData: {
              MetadataOptions: { HttpTokens: 'required', InstanceMetadataTags: 'enabled' },
              InstanceInitiatedShutdownBehavior: 'terminate',
              BlockDeviceMappings: [{ DeviceName: '/dev/xvda', Ebs: { Encrypted: true } }],
              IamInstanceProfile: { Name: 'worker' },
            },
          },
        ],
      })),
    );
    this.ec2Mock.on(CreateFleetCommand).callsFake((input) =>
      this.answerWith(input, 'CreateFleet', () => {
        const count = input.TargetCapacitySpecification?.TotalTargetCapacity ?? 0;
        const tags = Object.fromEntries((input.TagSpecifications?.[0]?.Tags ?? []).map((t: { Key: string; Value: string }) => [t.Key, t.Value]));
        const o = input.LaunchTemplateConfigs?.[0]?.Overrides?.[0] ?? {};
        const market = input.TargetCapacitySpecification?.DefaultTargetCapacityType === 'on-demand' ? 'on-demand' : 'spot';
        const ids = Array.from({ length: count }, () => this.add(tags, { state: 'pending', instanceType: o.InstanceType, subnet: o.SubnetId, lifecycle: market }).id);
        return { Instances: ids.length ? [{ InstanceIds: ids, InstanceType: o.InstanceType, Lifecycle: market, LaunchTemplateAndOverrides: { Overrides: o } }] : [], Errors: [] };
      }),
    );
    this.ec2Mock.on(CreateTagsCommand).callsFake((input) =>
      this.answerWith(input, 'CreateTags', () => {
        this.taggedResources += (input.Resources ?? []).length;
        for (const id of input.Resources ?? []) {
          const i = this.instances.get(id);
          if (i) for (const t of input.Tags ?? []) i.tags.set(t.Key, t.Value ?? '');
        }
        return {};
      }),
    );
    this.ec2Mock.on(TerminateInstancesCommand).callsFake((input) =>
      this.answerWith(input, 'TerminateInstances', () => {
        for (const id of input.InstanceIds ?? []) {
          const i = this.instances.get(id);
          if (i) i.state = 'shutting-down';
        }
        return { TerminatingInstances: [] };
      }),
    );
    this.ssmMock.on(GetParametersByPathCommand).callsFake((input) =>
      this.answerWith(input, 'GetParametersByPath', () => {
        const path = input.Path.replace(/\/$/, '') + '/';
        const list = [...this.parameters].filter(([k]) => k.startsWith(path)).sort();
        const from = input.NextToken ? Number(input.NextToken) : 0;
        const size = Math.min(10, input.MaxResults ?? 10);
        return {
          Parameters: list.slice(from, from + size).map(([Name, Value]) => ({ Name, Value })),
          NextToken: from + size < list.length ? String(from + size) : undefined,
        };
      }),
    );
    const take = (url: string, max: number, visibility: number) => {
      const now = Date.now();
      const out: FakeMessage[] = [];
      for (const m of this.queues.get(url) ?? []) {
        if (out.length >= max) break;
        if (m.visibleAt > now) continue;
        m.visibleAt = now + visibility * 1000;
        m.receives++;
        m.handle = `${m.id}#${m.receives}`;
        out.push(m);
      }
      return out;
    };
    this.sqsMock.on(ReceiveMessageCommand).callsFake(async (input) => {
      let got = take(input.QueueUrl, input.MaxNumberOfMessages ?? 1, input.VisibilityTimeout ?? 30);
      // Long polling: wait (up to WaitTimeSeconds) for a message.
      const until = Date.now() + (input.WaitTimeSeconds ?? 0) * 1000;
      while (got.length === 0 && Date.now() < until) {
        await new Promise((r) => setTimeout(r, 20));
        got = take(input.QueueUrl, input.MaxNumberOfMessages ?? 1, input.VisibilityTimeout ?? 30);
      }
      return this.answerWith(input, 'ReceiveMessage', () => ({
        Messages: got.map((m) => ({
          MessageId: m.id,
          ReceiptHandle: m.handle,
          Body: m.body,
          Attributes: { SenderId: m.sender, SentTimestamp: String(m.sentAt), ApproximateReceiveCount: String(m.receives) },
        })),
      }));
    });
    this.sqsMock.on(DeleteMessageBatchCommand).callsFake((input) =>
      this.answerWith(input, 'DeleteMessageBatch', () => {
        const handles = new Set((input.Entries ?? []).map((e: { ReceiptHandle: string }) => e.ReceiptHandle));
        const q = this.queues.get(input.QueueUrl) ?? [];
        this.queues.set(input.QueueUrl, q.filter((m) => !handles.has(m.handle)));
        return { Successful: (input.Entries ?? []).map((e: { Id: string }) => ({ Id: e.Id })), Failed: [] };
      }),
    );
    this.ssmMock.on(PutParameterCommand).callsFake((input) =>
      this.answerWith(input, 'PutParameter', () => {
        this.parameters.set(input.Name, input.Value);
        return { Version: 1 };
      }),
    );
  }
}
