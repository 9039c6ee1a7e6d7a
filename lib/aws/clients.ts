/** SDK clients for the controller's adapters: retries off, counted in retry.ts (see ssm-client.ts). */
import { EC2Client } from '@aws-sdk/client-ec2';
import { clientSettings, type ClientOptions } from './ssm-client';

export { ssmClient, type ClientOptions } from './ssm-client';

export function ec2Client(opts: ClientOptions = {}): EC2Client {
  return new EC2Client(clientSettings(opts));
}
