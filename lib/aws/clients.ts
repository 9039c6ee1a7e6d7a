/**
 * SDK clients for the controller's adapters. Retries are counted in one place (retry.ts), so
 * the SDK's own retry is switched off here: the SDK default (3 attempts) under the adapters'
 * 4 would make 12 attempts of a throttled call. Endpoint overrides (moto, LocalStack) come from
 * the SDK's standard AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_EC2 / AWS_ENDPOINT_URL_SSM variables.
 */
import { EC2Client } from '@aws-sdk/client-ec2';
import { SSMClient } from '@aws-sdk/client-ssm';

export interface ClientOptions {
  region?: string;
  endpoint?: string;
}

function settings(opts: ClientOptions) {
  return { maxAttempts: 1, ...(opts.region ? { region: opts.region } : {}), ...(opts.endpoint ? { endpoint: opts.endpoint } : {}) };
}

export function ec2Client(opts: ClientOptions = {}): EC2Client {
  return new EC2Client(settings(opts));
}

export function ssmClient(opts: ClientOptions = {}): SSMClient {
  return new SSMClient(settings(opts));
}
