/** Shared bits of the subcommands: config and pool loading with clear errors, shared flags. */
import { readFileSync } from 'node:fs';
import { parseConfig, type Config, type Pool } from '../../config';
import { UsageError, type Flags } from '../command';

export { UsageError };

export function loadConfigFile(path: string | undefined): Config {
  if (!path) throw new UsageError('--config FILE is required');
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new UsageError(`cannot read config file ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  return parseConfig(text, path);
}

/** The --config flag as every command that reads a config file declares it. */
export const CONFIG_FLAG = { type: 'string', value: 'FILE', required: true, description: "the deployment's config file (YAML or JSON)" } as const;

/** Serverless Framework's default stage, as the deployment uses when none is given. */
export const DEFAULT_STAGE = 'dev';

/** The flags of the commands that print what one pool's workers get (user-data, worker-config). */
export function poolDocumentFlags(what: string) {
  return {
    config: CONFIG_FLAG,
    pool: { type: 'string', value: 'NAME', description: `the pool whose workers ${what}; required (when it is missing or unknown, the error lists the config's pools)` },
    stage: { type: 'string', value: 'NAME', default: DEFAULT_STAGE, description: "the stage: it names the SSM parameters of the runner token and secrets (Serverless' default stage)" },
    region: {
      type: 'string',
      value: 'REGION',
      description: "the deployment's region, for the S3 cache and the worker's AWS CLI",
      defaultText: `the config's region, else the worker fills in its own at boot`,
    },
    'cache-bucket': {
      type: 'string',
      value: 'BUCKET',
      description: "the deployment's cache bucket (a CloudFormation output), for a pool on the shared cache: written in instead of the placeholder",
      defaultText: 'the placeholder the worker fills in from its cache-bucket tag at boot, as deployed; a note on stderr',
    },
  } as const satisfies Flags;
}

/** --config FILE and --pool NAME, for commands about one pool; an unknown or missing pool names the pools there are. */
export function loadPool(configPath: string | undefined, poolName: string | undefined): { config: Config; pool: Pool } {
  const config = loadConfigFile(configPath);
  const names = config.pools.map((p) => p.name).join(', ');
  if (!poolName) throw new UsageError(`--pool NAME is required (pools in ${configPath}: ${names})`);
  const pool = config.pools.find((p) => p.name === poolName);
  if (!pool) throw new UsageError(`unknown pool "${poolName}" (pools in ${configPath}: ${names})`);
  return { config, pool };
}
