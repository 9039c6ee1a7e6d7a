/**
 * `status`: the live deployment, read from SSM (controller state) and EC2 (instances by tag).
 * The config is the deployed one (SSM, with --deployment) or a local file (--config); there is no
 * default, because a wrong config would show wrong periods and idle targets.
 * Works against moto or LocalStack with --endpoint (or AWS_ENDPOINT_URL).
 */
import { GetParameterCommand, type SSMClient } from '@aws-sdk/client-ssm';
import { ec2Client, ssmClient } from '../../aws/clients';
import { Ec2Fleet } from '../../aws/ec2-fleet';
import { SsmStateStore } from '../../aws/ssm-state-store';
import { DEFAULTS, validateConfig, type Config } from '../../config';
import { buildStatus, formatStatus } from '../../status';
import { guarded, loadConfigFile, parseOptions, UsageError } from './common';

export const USAGE = 'status --stage NAME (--deployment NAME [--ssm-prefix P] | --config FILE) [--region REGION] [--endpoint URL] [--json]';

/** The config `serverless deploy` stored for this deployment and stage (lib/deploy/stack.ts). */
async function deployedConfig(ssm: SSMClient, prefix: string, deployment: string, stage: string): Promise<Config> {
  const name = `${prefix.replace(/\/$/, '')}/${deployment}/${stage}/config`;
  let value: string | undefined;
  try {
    value = (await ssm.send(new GetParameterCommand({ Name: name }))).Parameter?.Value;
  } catch (e) {
    if ((e as { name?: string }).name === 'ParameterNotFound')
      throw new UsageError(`no deployed config at ${name}: is "${deployment}" deployed to stage "${stage}" in this region? (or pass --config FILE)`);
    throw e;
  }
  let raw: unknown;
  try {
    raw = JSON.parse(value ?? '');
  } catch {
    throw new UsageError(`the parameter ${name} does not hold a JSON config; redeploy, or pass --config FILE`);
  }
  return validateConfig(raw, name);
}

export function run(argv: string[]): Promise<number> {
  return guarded(async () => {
    const opts = parseOptions(argv, {
      stage: { type: 'string' },
      deployment: { type: 'string' },
      'ssm-prefix': { type: 'string' },
      config: { type: 'string' },
      region: { type: 'string' },
      endpoint: { type: 'string' },
      json: { type: 'boolean' },
    });
    if (!opts.stage) throw new UsageError('--stage NAME is required (the stage you deployed, e.g. prod)');
    if (!opts.deployment === !opts.config) throw new UsageError('pass --deployment NAME (read the deployed config from SSM) or --config FILE, one of them');
    const fileConfig = opts.config ? loadConfigFile(opts.config) : undefined;
    const region = opts.region ?? fileConfig?.region ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION;
    if (!region) throw new UsageError('no region: pass --region, set region in the config, or set AWS_REGION');
    const clientOpts = { region, endpoint: opts.endpoint ?? process.env.AWS_ENDPOINT_URL };
    const ec2 = ec2Client(clientOpts);
    const ssm = ssmClient(clientOpts);
    // Progress goes to stderr so stdout stays one clean document (text or --json).
    const progress = (m: string) => process.stderr.write(`status: ${m}\n`);
    try {
      const config = fileConfig ?? (await deployedConfig(ssm, opts['ssm-prefix'] ?? DEFAULTS.ssmPrefix, opts.deployment!, opts.stage));
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
