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
import { defineCommand, runner } from '../command';
import { loadConfigFile, UsageError } from './common';

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

export const command = defineCommand({
  name: 'status',
  summary: 'show a live deployment: workers by state, jobs, idle target, cooldowns, the last pass (SSM + EC2)',
  synopsis: '--stage NAME (--deployment NAME [--ssm-prefix P] | --config FILE) [--region REGION] [--endpoint URL] [--json]',
  description:
    'Reads the controller state from SSM and the instances from EC2 by their tags; needs AWS credentials with read access (ssm:GetParameter*, ec2:DescribeInstances). Progress goes to stderr, the report to stdout.',
  flags: {
    stage: { type: 'string', value: 'NAME', required: true, description: 'the stage you deployed, e.g. prod' },
    deployment: { type: 'string', value: 'NAME', description: 'read the deployed config of this deployment from SSM (or give --config)' },
    'ssm-prefix': { type: 'string', value: 'P', default: DEFAULTS.ssmPrefix, description: "the config's ssmPrefix, with --deployment" },
    config: { type: 'string', value: 'FILE', description: 'read the config from this file instead of SSM' },
    region: { type: 'string', value: 'REGION', description: 'the deployment\'s region', defaultText: "the config's region, else AWS_REGION or AWS_DEFAULT_REGION" },
    endpoint: { type: 'string', value: 'URL', description: 'an AWS endpoint (moto, LocalStack)', defaultText: 'AWS_ENDPOINT_URL, else AWS itself' },
    json: { type: 'boolean', description: 'print the report as one JSON document' },
  },
  examples: ['status --stage prod --deployment acme-ci --region eu-central-1', 'status --stage prod --config config.yaml --json'],
  async run(opts) {
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
      const config = fileConfig ?? (await deployedConfig(ssm, opts['ssm-prefix'], opts.deployment!, opts.stage));
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
  },
});

export const run = runner(command);
