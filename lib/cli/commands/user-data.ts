/** `user-data`: print the exact user data a worker of a pool boots with (docs/worker.md). */
import { renderUserData, UserDataError } from '../../worker/userdata';
import { guarded, loadConfigFile, parseOptions, UsageError } from './common';

export const USAGE = 'user-data --config FILE --pool NAME [--stage NAME] [--region REGION] [--cache-bucket BUCKET]';

/** Serverless Framework's default stage, as the deployment uses when none is given. */
const DEFAULT_STAGE = 'dev';

export function run(argv: string[]): Promise<number> {
  return guarded(() => {
    const opts = parseOptions(argv, {
      config: { type: 'string' },
      pool: { type: 'string' },
      stage: { type: 'string' },
      region: { type: 'string' },
      'cache-bucket': { type: 'string' },
    });
    const config = loadConfigFile(opts.config);
    const names = config.pools.map((p) => p.name).join(', ');
    if (!opts.pool) throw new UsageError(`--pool NAME is required (pools in ${opts.config}: ${names})`);
    const pool = config.pools.find((p) => p.name === opts.pool);
    if (!pool) throw new UsageError(`unknown pool "${opts.pool}" (pools in ${opts.config}: ${names})`);
    try {
      process.stdout.write(
        renderUserData({ config, pool, stage: opts.stage ?? DEFAULT_STAGE, region: opts.region, cacheBucket: opts['cache-bucket'] }),
      );
    } catch (e) {
      if (e instanceof UserDataError) throw new UsageError(e.message);
      throw e;
    }
    return 0;
  });
}
