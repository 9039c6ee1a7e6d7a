/**
 * What the commands that act on a live deployment share (status, pause, resume, drain): its flags,
 * its config (the deployed one from SSM with --deployment, or a local file with --config; never a
 * default, since a wrong config would show or hold the wrong pools), its region and clients.
 */
import { GetParameterCommand, type SSMClient } from '@aws-sdk/client-ssm';
import { ssmClient } from '../../aws/clients';
import { DEFAULTS, validateConfig, type Config } from '../../config';
import type { Flags } from '../command';
import { loadConfigFile, UsageError } from './common';

/** The flags that name a live deployment and reach it. */
export const DEPLOYMENT_FLAGS = {
  stage: { type: 'string', value: 'NAME', required: true, description: 'the stage you deployed, e.g. prod' },
  deployment: { type: 'string', value: 'NAME', description: 'read the deployed config of this deployment from SSM (or give --config)' },
  'ssm-prefix': { type: 'string', value: 'P', default: DEFAULTS.ssmPrefix, description: "the config's ssmPrefix, with --deployment" },
  config: { type: 'string', value: 'FILE', description: 'read the config from this file instead of SSM' },
  region: { type: 'string', value: 'REGION', description: "the deployment's region", defaultText: "the config's region, else AWS_REGION or AWS_DEFAULT_REGION" },
  endpoint: { type: 'string', value: 'URL', description: 'an AWS endpoint (moto, LocalStack)', defaultText: 'AWS_ENDPOINT_URL, else AWS itself' },
} as const satisfies Flags;

export const DEPLOYMENT_SYNOPSIS = '--stage NAME (--deployment NAME [--ssm-prefix P] | --config FILE) [--region REGION] [--endpoint URL]';

/** The config `serverless deploy` stored for this deployment and stage (lib/deploy/stack.ts). */
export async function deployedConfig(ssm: SSMClient, prefix: string, deployment: string, stage: string): Promise<Config> {
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

export interface DeploymentTarget {
  config: Config;
  stage: string;
  region: string;
  /** Client options for every AWS client the command makes. */
  clientOpts: { region: string; endpoint?: string };
  ssm: SSMClient;
}

interface TargetOptions {
  stage: string;
  deployment?: string;
  'ssm-prefix': string;
  config?: string;
  region?: string;
  endpoint?: string;
}

/** Resolves the deployment a command acts on; the caller destroys `ssm` when done (or calls `withTarget`). */
export async function deploymentTarget(opts: TargetOptions): Promise<DeploymentTarget> {
  if (!opts.deployment === !opts.config) throw new UsageError('pass --deployment NAME (read the deployed config from SSM) or --config FILE, one of them');
  const fileConfig = opts.config ? loadConfigFile(opts.config) : undefined;
  const region = opts.region ?? fileConfig?.region ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION;
  if (!region) throw new UsageError('no region: pass --region, set region in the config, or set AWS_REGION');
  const clientOpts = { region, endpoint: opts.endpoint ?? process.env.AWS_ENDPOINT_URL };
  const ssm = ssmClient(clientOpts);
  try {
    const config = fileConfig ?? (await deployedConfig(ssm, opts['ssm-prefix'], opts.deployment!, opts.stage));
    return { config, stage: opts.stage, region, clientOpts, ssm };
  } catch (e) {
    ssm.destroy();
    throw credentialsHint(e);
  }
}

const EXPIRED = ['ExpiredToken', 'ExpiredTokenException', 'InvalidClientTokenId', 'UnrecognizedClientException'];
const REFUSED = ['AccessDenied', 'AccessDeniedException', 'UnauthorizedOperation'];
const AWS_IDENTITY_ERRORS = ['CredentialsProviderError', ...EXPIRED, ...REFUSED];

/** AWS errors the caller's identity causes (none, expired, not allowed) become usage errors that say what to fix. */
export function credentialsHint(e: unknown): unknown {
  // The AWS error itself, also when a reader wrapped it ("could not read controller state: ...", cause).
  let err = e as { name?: string; message?: string; cause?: unknown };
  for (let i = 0; i < 5 && err.cause && typeof err.cause === 'object' && !AWS_IDENTITY_ERRORS.includes(err.name ?? ''); i++) err = err.cause as typeof err;
  if (EXPIRED.includes(err.name ?? ''))
    return new UsageError(`AWS did not accept your credentials (${err.name}: ${err.message}); refresh them (aws sso login, a new session) and run the command again`);
  if (REFUSED.includes(err.name ?? ''))
    return new UsageError(`AWS refused the call (${err.name}: ${err.message}); docs/deployment.md, "What an operator needs (IAM)", lists what each command needs`);
  if (err.name === 'CredentialsProviderError' || /credential/i.test(err.message ?? ''))
    return new UsageError(`no AWS credentials: ${err.message} (configure a profile or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)`);
  return e;
}
