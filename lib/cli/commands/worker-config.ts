/**
 * `worker-config`: print the gitlab-runner config.toml a worker of a pool writes, exactly as it
 * writes it, with each secret as its {{ssm:NAME}} reference (docs/worker.md, "The runner's config.toml").
 * The settings travel in the user data (docs/migration.md, "Where the settings travel"); this is
 * the document embedded there.
 */
import { DEPLOYMENT_CACHE_PLACEHOLDER, runnerConfigToml, usesDeploymentCache } from '../../worker/userdata';
import { REGION_PLACEHOLDER, runnerSecretParameters } from '../../worker/runner-config';
import { bucketNameProblem, TAGS } from '../../controller/tags';
import { defineCommand, runner } from '../command';
import { loadPool, poolDocumentFlags, UsageError } from './common';

export const command = defineCommand({
  name: 'worker-config',
  summary: 'print the gitlab-runner config.toml a worker of a pool writes (secrets as {{ssm:NAME}} references)',
  synopsis: '--config FILE --pool NAME [--stage NAME] [--region REGION] [--cache-bucket BUCKET]',
  description:
    'The document goes to stdout alone (it can be diffed); what it leaves open (secrets read from SSM at boot, the cache bucket, the region) is noted on stderr. docs/worker.md, "The runner\'s config.toml".',
  flags: poolDocumentFlags("write this config.toml (gitlab-runner's [[runners]] entry)"),
  examples: ['worker-config --config config.yaml --pool general --stage prod'],
  run(opts) {
    const { config, pool } = loadPool(opts.config, opts.pool);
    const stage = opts.stage;
    if (!/^[a-z0-9][a-z0-9-]{0,30}$/.test(stage)) throw new UsageError(`stage "${stage}": must be 1-31 of a-z, 0-9 and "-", starting with a letter or digit`);
    const region = opts.region ?? config.region;
    if (region !== undefined && !/^[a-z]{2}(-[a-z]+)+-\d$/.test(region)) throw new UsageError(`region "${region}": must be an AWS region such as "eu-west-1"`);
    const bucket = opts['cache-bucket'];
    const bucketProblem = bucket === undefined ? undefined : bucketNameProblem(bucket);
    if (bucketProblem) throw new UsageError(`--cache-bucket ${JSON.stringify(bucket)}: not an S3 bucket name (${bucketProblem})`);
    const toml = runnerConfigToml({ config, pool, stage, region, cacheBucket: bucket });
    process.stdout.write(toml);
    // stdout is the document alone (it can be diffed); what it leaves open goes to stderr.
    const notes: string[] = [];
    const secrets = runnerSecretParameters(config, stage, pool);
    notes.push(`secrets are shown as {{ssm:NAME}}: the worker reads the runner token${secrets.length ? ` and ${secrets.map((s) => s.setting).join(', ')}` : ''} from SSM at boot`);
    if (usesDeploymentCache(pool) && !bucket)
      notes.push(`the deployment's cache bucket is shown as ${DEPLOYMENT_CACHE_PLACEHOLDER}: the worker fills in the name from its ${TAGS.cacheBucket} instance tag at boot; pass --cache-bucket BUCKET to see it filled in`);
    if (toml.includes(REGION_PLACEHOLDER)) notes.push(`${REGION_PLACEHOLDER}: the worker's own region, filled in at boot (pass --region or set region in the config)`);
    process.stderr.write(notes.map((n) => `gitlab-spot-autoscaler: note: ${n}\n`).join(''));
    return 0;
  },
});

export const run = runner(command);
