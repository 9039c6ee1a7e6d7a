/**
 * A stand-in for the webhook's AWS transport (lib/aws/aws-json.ts AwsJsonSend), in the manner of
 * aws-sdk-client-mock: answers per operation, and every call recorded with its input, so a test
 * asserts the exact GetParameter / SendMessage inputs and counts attempts (retries happen above
 * the transport, in lib/aws/webhook-aws.ts). The transport itself is tested against a local HTTP
 * server and moto (test/aws/aws-json.test.ts).
 */
import { createHash } from 'node:crypto';
import type { AwsJsonCall, AwsJsonSend } from '../../lib/aws/aws-json';

type Answer = (input: Record<string, any>) => Record<string, unknown> | Promise<Record<string, unknown>>;

export interface FakeAwsJson {
  send: AwsJsonSend;
  on(operation: string): { resolves(out: Record<string, unknown>): void; rejects(e: unknown): void; callsFake(fn: Answer): void };
  /** Inputs of the calls of one operation, in order (every attempt counts). */
  calls(operation: string): Record<string, any>[];
  all(): AwsJsonCall[];
  reset(): void;
}

export function fakeAwsJson(): FakeAwsJson {
  let recorded: AwsJsonCall[] = [];
  const answers = new Map<string, Answer>();
  return {
    send: async (call) => {
      recorded.push(call);
      const answer = answers.get(call.operation);
      if (!answer) throw new Error(`fakeAwsJson: no answer set for ${call.operation}`);
      const out = await answer(call.input);
      // SQS's digest of the stored body, as SQS sends it (the adapter checks it).
      if (call.operation === 'SendMessage' && !('MD5OfMessageBody' in out)) return { ...out, MD5OfMessageBody: createHash('md5').update(String(call.input.MessageBody)).digest('hex') };
      return out;
    },
    on: (operation) => ({
      resolves: (out) => void answers.set(operation, () => out),
      rejects: (e) =>
        void answers.set(operation, () => {
          throw e;
        }),
      callsFake: (fn) => void answers.set(operation, fn),
    }),
    calls: (operation) => recorded.filter((c) => c.operation === operation).map((c) => c.input),
    all: () => recorded,
    reset: () => {
      recorded = [];
      answers.clear();
    },
  };
}
