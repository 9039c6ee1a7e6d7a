/**
 * Bench-only (bench/bundles.ts): the webhook as it was before issue 13 — the same handler, its two
 * AWS calls made by the v3 SSM and SQS clients (created at the first call, as the handler did) —
 * so the bench can weigh the alternatives against what is deployed. Never deployed.
 */
import { GetParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { handler as webhook, resetForTests } from '../../handlers/webhook';
import { clientSettings } from '../../lib/aws/ssm-client';
import { sqsClient } from '../../lib/lambda/clients';
import { SECRET_READ_TIMEOUTS } from '../../lib/aws/webhook-aws';
import type { AwsJsonSend } from '../../lib/aws/aws-json';

let ssm: SSMClient | undefined;
let sqs: SQSClient | undefined;
const send: AwsJsonSend = async (call) => {
  if (call.operation === 'GetParameter') return (await (ssm ??= new SSMClient(clientSettings(SECRET_READ_TIMEOUTS))).send(new GetParameterCommand(call.input as never))) as never;
  return (await (sqs ??= sqsClient()).send(new SendMessageCommand(call.input as never))) as never;
};
resetForTests({ send });
export const handler = webhook;
