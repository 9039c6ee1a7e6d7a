/**
 * A queue the reconcile function consumes itself (the Inbox port over SQS): the job-event queue
 * and the worker-report queue. Why the function polls instead of an SQS event source mapping is in
 * docs/architecture.md ("Event throughput"): a mapping ignores reserved concurrency, throttled
 * batches come back only after the visibility timeout and go to the dead-letter queue after
 * maxReceiveCount, and a batch of at most 25 per pass cannot keep up with thousands of events a
 * minute.
 *
 *  - receive: ReceiveMessage, 10 messages a call (SQS's maximum), one call first, then up to
 *    `parallel` calls at once, round after round while rounds come back full; long polling (WaitTimeSeconds) only for the
 *    first call, when the caller is waiting for work. Each receive sets the visibility timeout, so
 *    messages a crashed pass held come back after it. SenderId, SentTimestamp and
 *    ApproximateReceiveCount are requested with every message.
 *  - delete: DeleteMessageBatch, 10 a call, in parallel. A message not deleted (unreadable, or not
 *    applied) is delivered again after its visibility timeout and, after maxReceiveCount
 *    deliveries, moved to the dead-letter queue by SQS's redrive policy.
 *
 * SQS calls go through the SDK's own retry (lib/lambda/clients.ts: 3 attempts). SQS has no
 * account-wide request bucket comparable to EC2's; its cost is per request ($0.40 a million).
 */
import { DeleteMessageBatchCommand, ReceiveMessageCommand, type Message, type SQSClient } from '@aws-sdk/client-sqs';
import type { Inbox, InboxMessage } from '../controller/ports';
import { REPORTING } from '../planner';

export interface SqsInboxOptions {
  sqs: SQSClient;
  queueUrl: string;
  /** ReceiveMessage calls in flight at once. Default 10 (100 messages a round). */
  parallel?: number;
  /** Seconds a received message stays hidden (a pass must settle it within this). Default REPORTING.visibilitySeconds (120; the fence counts on it). */
  visibilityTimeout?: number;
  /** Wall-clock ms left for calls (the reconcile function's remaining time); calls are aborted past it. */
  timeLeftMs?: () => number;
}

export class SqsInbox implements Inbox {
  private readonly handles = new Map<string, string>();
  /** Calls made, by API (bench, tests). */
  readonly calls = { ReceiveMessage: 0, DeleteMessageBatch: 0 };

  constructor(private readonly opts: SqsInboxOptions) {}

  private signal(): { abortSignal?: AbortSignal } {
    const left = this.opts.timeLeftMs?.();
    return left === undefined || left === Infinity ? {} : { abortSignal: AbortSignal.timeout(Math.max(1, Math.round(left))) };
  }

  private async receiveOnce(max: number, waitSeconds: number): Promise<Message[]> {
    this.calls.ReceiveMessage++;
    const out = await this.opts.sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: this.opts.queueUrl,
        MaxNumberOfMessages: Math.max(1, Math.min(10, max)),
        WaitTimeSeconds: Math.max(0, Math.min(20, Math.round(waitSeconds))),
        VisibilityTimeout: this.opts.visibilityTimeout ?? REPORTING.visibilitySeconds,
        MessageSystemAttributeNames: ['SenderId', 'SentTimestamp', 'ApproximateReceiveCount'],
      }),
      this.signal(),
    );
    return out.Messages ?? [];
  }

  async receive(max: number, waitSeconds: number): Promise<InboxMessage[]> {
    const out: InboxMessage[] = [];
    const take = (ms: Message[]) => {
      for (const m of ms) {
        if (!m.MessageId || !m.ReceiptHandle) continue;
        this.handles.set(m.MessageId, m.ReceiptHandle);
        const a = m.Attributes ?? {};
        out.push({
          id: m.MessageId,
          body: m.Body ?? '',
          sender: a.SenderId,
          sentAt: a.SentTimestamp ? Number(a.SentTimestamp) : undefined,
          receiveCount: a.ApproximateReceiveCount ? Number(a.ApproximateReceiveCount) : undefined,
        });
      }
    };
    if (waitSeconds > 0) {
      const first = await this.receiveOnce(max, waitSeconds);
      take(first);
      if (first.length < Math.min(10, max)) return out;
    }
    const parallel = Math.max(1, this.opts.parallel ?? 10);
    // One call first: a queue with a few messages costs one request, not `parallel`.
    let width = waitSeconds > 0 ? parallel : 1;
    while (out.length < max) {
      const calls = Math.min(width, Math.ceil((max - out.length) / 10));
      width = parallel;
      const rounds = await Promise.all(Array.from({ length: calls }, (_, k) => this.receiveOnce(Math.min(10, max - out.length - 10 * k), 0)));
      const got = rounds.reduce((n, r) => n + r.length, 0);
      rounds.forEach(take);
      // Short polling samples some of SQS's servers: a round at least half full means more are there.
      if (got < calls * 5) break;
    }
    return out;
  }

  release(): void {
    this.handles.clear();
  }

  async delete(ids: readonly string[]): Promise<void> {
    const entries = ids.flatMap((id) => {
      const h = this.handles.get(id);
      return h ? [{ id, h }] : [];
    });
    const batches: (typeof entries)[] = [];
    for (let i = 0; i < entries.length; i += 10) batches.push(entries.slice(i, i + 10));
    const parallel = Math.max(1, this.opts.parallel ?? 10);
    for (let i = 0; i < batches.length; i += parallel) {
      await Promise.all(
        batches.slice(i, i + parallel).map(async (batch) => {
          this.calls.DeleteMessageBatch++;
          await this.opts.sqs.send(new DeleteMessageBatchCommand({ QueueUrl: this.opts.queueUrl, Entries: batch.map((e, k) => ({ Id: String(k), ReceiptHandle: e.h })) }), this.signal());
          for (const e of batch) this.handles.delete(e.id);
        }),
      );
    }
  }
}
