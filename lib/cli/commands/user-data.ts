/** `user-data`: print the exact user data a worker of a pool boots with (docs/worker.md). */
import { DEPLOYMENT_CACHE_PLACEHOLDER, renderUserData, usesDeploymentCache, UserDataError } from '../../worker/userdata';
import { defineCommand, runner } from '../command';
import { loadPool, poolDocumentFlags, UsageError } from './common';

export const command = defineCommand({
  name: 'user-data',
  summary: 'print the exact user data (bash script) a worker of a pool boots with',
  synopsis: '--config FILE --pool NAME [--stage NAME] [--region REGION] [--cache-bucket BUCKET]',
  description: 'The script goes to stdout alone, so it can be piped to shellcheck or diffed; notes go to stderr. docs/worker.md explains each step.',
  flags: poolDocumentFlags('boot with it'),
  examples: ['user-data --config config.yaml --pool general --stage prod | shellcheck -'],
  run(opts) {
    const { config, pool } = loadPool(opts.config, opts.pool);
    // The deployment creates the shared cache bucket and puts its generated name into the user
    // data. Without --cache-bucket the script is still printed (reading it is the point), with a
    // placeholder that cannot be mistaken for a real bucket, and stderr says so; stdout stays the
    // script alone, so it can be piped or diffed.
    const placeholder = usesDeploymentCache(pool) && !opts['cache-bucket'];
    try {
      process.stdout.write(
        renderUserData({
          config,
          pool,
          stage: opts.stage,
          region: opts.region,
          cacheBucket: placeholder ? DEPLOYMENT_CACHE_PLACEHOLDER : opts['cache-bucket'],
        }),
      );
    } catch (e) {
      if (e instanceof UserDataError) throw new UsageError(e.message);
      throw e;
    }
    if (placeholder)
      process.stderr.write(
        `gitlab-spot-autoscaler: note: pool "${pool.name}" uses the deployment's shared cache bucket; its name is shown as ${DEPLOYMENT_CACHE_PLACEHOLDER}. ` +
          `Pass --cache-bucket BUCKET (the deployment's cache bucket) for the exact user data.\n`,
      );
    return 0;
  },
});

export const run = runner(command);
