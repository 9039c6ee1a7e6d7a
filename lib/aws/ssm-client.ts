/**
 * Client settings shared by every AWS SDK client of the project, and the SSM client.
 *
 * Retries are counted in one place (retry.ts), so the SDK's own retry is switched off: the SDK
 * default (3 attempts) under the adapters' 4 would make 12 attempts of a throttled call. Endpoint
 * overrides (moto, LocalStack) come from the SDK's standard AWS_ENDPOINT_URL /
 * AWS_ENDPOINT_URL_SSM variables or `endpoint`.
 *
 * A module of its own because the webhook needs SSM but must not bundle the EC2 client: esbuild
 * cannot drop an unused import from the SDK's CommonJS build (test/deploy/package.test.ts).
 */
import { SSMClient } from '@aws-sdk/client-ssm';

export interface ClientOptions {
  region?: string;
  endpoint?: string;
}

export function clientSettings(opts: ClientOptions) {
  return { maxAttempts: 1, ...(opts.region ? { region: opts.region } : {}), ...(opts.endpoint ? { endpoint: opts.endpoint } : {}) };
}

export function ssmClient(opts: ClientOptions = {}): SSMClient {
  return new SSMClient(clientSettings(opts));
}
