/** `user-data`: print the exact user data a worker of a pool boots with (docs/worker.md). */
import { DEPLOYMENT_CACHE_PLACEHOLDER, renderUserData, usesDeploymentCache, UserDataError } from '../../worker/userdata';
import { bucketNameProblem, TAGS } from '../../controller/tags';
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
    const bucket = opts['cache-bucket'];
    const bucketProblem = bucket === undefined ? undefined : bucketNameProblem(bucket);
    if (bucketProblem) throw new UsageError(`--cache-bucket ${JSON.stringify(bucket)}: not an S3 bucket name (${bucketProblem})`);
    try {
      process.stdout.write(renderUserData({ config, pool, stage: opts.stage, region: opts.region, cacheBucket: bucket }));
    } catch (e) {
      if (e instanceof UserDataError) throw new UsageError(e.message);
      throw e;
    }
    // stdout stays the script alone, so it can be piped or diffed; the note goes to stderr.
    if (usesDeploymentCache(pool) && !bucket)
      process.stderr.write(
        `gitlab-spot-autoscaler: note: pool "${pool.name}" uses the deployment's shared cache bucket: its workers put the name from their ${TAGS.cacheBucket} instance tag ` +
          `(the controller sets it at launch) where ${DEPLOYMENT_CACHE_PLACEHOLDER} stands. Pass --cache-bucket BUCKET to write the name in instead (a worker launched without that tag).\n`,
      );
    return 0;
  },
});

export const run = runner(command);
