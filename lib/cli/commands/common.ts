/** Shared bits of the subcommands: argument parsing and config loading with clear errors. */
import { readFileSync } from 'node:fs';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { parseConfig, ConfigError, type Config, type Pool } from '../../config';

export class UsageError extends Error {}

/** node:util parseArgs, with its errors turned into UsageError naming the bad option. */
export function parseOptions<T extends NonNullable<ParseArgsConfig['options']>>(argv: string[], options: T) {
  try {
    return parseArgs({ args: argv, options, strict: true, allowPositionals: false }).values;
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

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

/** Serverless Framework's default stage, as the deployment uses when none is given. */
export const DEFAULT_STAGE = 'dev';

/** The options of the commands that print what one pool's workers get (user-data, worker-config). */
export const POOL_DOCUMENT_OPTIONS = {
  config: { type: 'string' },
  pool: { type: 'string' },
  stage: { type: 'string' },
  region: { type: 'string' },
  'cache-bucket': { type: 'string' },
} as const;

/** --config FILE and --pool NAME, for commands about one pool; an unknown or missing pool names the pools there are. */
export function loadPool(configPath: string | undefined, poolName: string | undefined): { config: Config; pool: Pool } {
  const config = loadConfigFile(configPath);
  const names = config.pools.map((p) => p.name).join(', ');
  if (!poolName) throw new UsageError(`--pool NAME is required (pools in ${configPath}: ${names})`);
  const pool = config.pools.find((p) => p.name === poolName);
  if (!pool) throw new UsageError(`unknown pool "${poolName}" (pools in ${configPath}: ${names})`);
  return { config, pool };
}

/** Runs a command body, mapping the errors a user can cause to a message and exit code 2. */
export async function guarded(body: () => Promise<number> | number): Promise<number> {
  try {
    return await body();
  } catch (e) {
    if (e instanceof UsageError || e instanceof ConfigError) {
      process.stderr.write(`gitlab-spot-autoscaler: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
}
