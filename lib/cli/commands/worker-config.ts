/**
 * `worker-config`: print the gitlab-runner config.toml a worker of a pool writes, exactly as it
 * writes it, with each secret as its {{ssm:NAME}} reference (docs/worker.md, "The runner's config.toml").
 * The settings travel in the user data (docs/migration.md, "Where the settings travel"); this is
 * the document embedded there.
 */
import { DEPLOYMENT_CACHE_PLACEHOLDER, runnerConfigToml, usesDeploymentCache } from '../../worker/userdata';
import { REGION_PLACEHOLDER, runnerSecretParameters } from '../../worker/runner-config';
import { DEFAULT_STAGE, guarded, loadPool, parseOptions, POOL_DOCUMENT_OPTIONS, UsageError } from './common';

export const USAGE = 'worker-config --config FILE --pool NAME [--stage NAME] [--region REGION] [--cache-bucket BUCKET]';

/** Each flag with its meaning and default, for --help. */
export const FLAGS = [
  ['--config FILE', 'the deployment config (YAML or JSON); required'],
  ['--pool NAME', 'the pool whose workers\' config.toml to print; required'],
  ['--stage NAME', 'the stage, which names the SSM parameters of the token and secrets; default dev (Serverless\' default)'],
  ['--region REGION', 'region of the managed S3 cache; default the config\'s region, else the worker fills in its own at boot (shown as __GSA_REGION__)'],
  ['--cache-bucket BUCKET', 'the deployment\'s cache bucket (a CloudFormation output); without it a pool on that bucket shows __DEPLOYMENT_CACHE_BUCKET__'],
] as const;


export function run(argv: string[]): Promise<number> {
  return guarded(() => {
    const opts = parseOptions(argv, POOL_DOCUMENT_OPTIONS);
    const { config, pool } = loadPool(opts.config, opts.pool);
    const stage = opts.stage ?? DEFAULT_STAGE;
    if (!/^[a-z0-9][a-z0-9-]{0,30}$/.test(stage)) throw new UsageError(`stage "${stage}": must be 1-31 of a-z, 0-9 and "-", starting with a letter or digit`);
    const region = opts.region ?? config.region;
    if (region !== undefined && !/^[a-z]{2}(-[a-z]+)+-\d$/.test(region)) throw new UsageError(`region "${region}": must be an AWS region such as "eu-west-1"`);
    const placeholder = usesDeploymentCache(pool) && !opts['cache-bucket'];
    const toml = runnerConfigToml({ config, pool, stage, region, cacheBucket: placeholder ? DEPLOYMENT_CACHE_PLACEHOLDER : opts['cache-bucket'] });
    process.stdout.write(toml);
    // stdout is the document alone (it can be diffed); what it leaves open goes to stderr.
    const notes: string[] = [];
    const secrets = runnerSecretParameters(config, stage, pool);
    notes.push(`secrets are shown as {{ssm:NAME}}: the worker reads the runner token${secrets.length ? ` and ${secrets.map((s) => s.setting).join(', ')}` : ''} from SSM at boot`);
    if (placeholder) notes.push(`the deployment's cache bucket is shown as ${DEPLOYMENT_CACHE_PLACEHOLDER}; pass --cache-bucket BUCKET for the exact file`);
    if (toml.includes(REGION_PLACEHOLDER)) notes.push(`${REGION_PLACEHOLDER}: the worker's own region, filled in at boot (pass --region or set region in the config)`);
    process.stderr.write(notes.map((n) => `gitlab-spot-autoscaler: note: ${n}\n`).join(''));
    return 0;
  });
}
