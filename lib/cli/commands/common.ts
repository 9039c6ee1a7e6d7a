/** Shared bits of the subcommands: argument parsing and config loading with clear errors. */
import { readFileSync } from 'node:fs';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { parseConfig, ConfigError, type Config } from '../../config';

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
