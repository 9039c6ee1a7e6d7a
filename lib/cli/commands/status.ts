/**
 * `status`: the live deployment, read from SSM (controller state) and EC2 (instances by tag).
 * Works against moto or LocalStack with --endpoint (or AWS_ENDPOINT_URL).
 */
import { ec2Client, ssmClient } from '../../aws/clients';
import { Ec2Fleet } from '../../aws/ec2-fleet';
import { SsmStateStore } from '../../aws/ssm-state-store';
import { buildStatus, formatStatus } from '../../status';
import { guarded, loadConfigFile, parseOptions, UsageError } from './common';

export const USAGE = 'status --stage NAME [--config FILE] [--region REGION] [--endpoint URL] [--json]';

export function run(argv: string[]): Promise<number> {
  return guarded(async () => {
    const opts = parseOptions(argv, { stage: { type: 'string' }, config: { type: 'string' }, region: { type: 'string' }, endpoint: { type: 'string' }, json: { type: 'boolean' } });
    if (!opts.stage) throw new UsageError('--stage NAME is required (the stage you deployed, e.g. prod)');
    const config = loadConfigFile(opts.config ?? process.env.GSA_CONFIG ?? 'samples/config.yaml');
    const region = opts.region ?? config.region ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION;
    if (!region) throw new UsageError('no region: pass --region, set region in the config, or set AWS_REGION');
    const clientOpts = { region, endpoint: opts.endpoint ?? process.env.AWS_ENDPOINT_URL };
    const ec2 = ec2Client(clientOpts);
    const ssm = ssmClient(clientOpts);
    // Progress goes to stderr so stdout stays one clean document (text or --json).
    const progress = (m: string) => process.stderr.write(`status: ${m}\n`);
    try {
      progress(`reading controller state from SSM (${config.ssmPrefix}/${config.deployment}/${opts.stage}/state)…`);
      const state = await new SsmStateStore({ ssm, config, stage: opts.stage }).load();
      progress(`finding instances tagged for ${config.deployment}/${opts.stage} in EC2 (${region})…`);
      const started = Date.now();
      const workers = await new Ec2Fleet({ ec2, config, stage: opts.stage }).discover();
      progress(`${workers.length} instance(s) in ${((Date.now() - started) / 1000).toFixed(1)} s`);
      const report = buildStatus(config, opts.stage, new Date(), workers, state);
      process.stdout.write((opts.json ? JSON.stringify(report, null, 2) : formatStatus(report)) + '\n');
      return 0;
    } catch (e) {
      const err = e as { name?: string; message?: string };
      if (err.name === 'CredentialsProviderError' || /credential/i.test(err.message ?? ''))
        throw new UsageError(`no AWS credentials: ${err.message} (configure a profile or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)`);
      throw e;
    } finally {
      ec2.destroy();
      ssm.destroy();
    }
  });
}
