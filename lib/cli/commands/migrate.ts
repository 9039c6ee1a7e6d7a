/**
 * `migrate`: a docker+machine config.toml in, this project's config out (docs/migration.md).
 * The YAML goes to --out (or stdout); the secrets to store, the report and the notes go to
 * stdout with --out, to stderr without it, so `migrate --from config.toml > config.yaml` works.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { readRunnerTags } from '../../migrate/gitlab-tags';
import { migrateConfigToml, MigrationError, type RunnerTags } from '../../migrate/migrate';
import { formatReport } from '../../migrate/report';
import { defineCommand, runner } from '../command';
import { UsageError } from './common';

/**
 * Files config.toml names (tls-ca-file, amazonec2-userdata) are read where they are, or, when
 * migrating on another machine, from beside config.toml (copy them there).
 */
function fileReader(from: string): (path: string) => string | undefined {
  return (path) => {
    for (const candidate of [path, join(dirname(from), basename(path))]) {
      try {
        return readFileSync(candidate, 'utf8');
      } catch {
        /* try the next place */
      }
    }
    return undefined;
  };
}

export const command = defineCommand({
  name: 'migrate',
  summary: "turn a docker+machine config.toml into this project's config (secrets become SSM commands)",
  synopsis: '--from config.toml [--out FILE] [--deployment NAME] [--stage NAME] [--force] [--tags-from-gitlab [--gitlab-url URL]] [--keep-cache-keys]',
  description:
    'Each [[runners]] entry becomes a pool; every key is reported as carried, mapped, replaced or dropped. Tokens and keys are never copied: you get the `aws ssm put-parameter` commands to run. docs/migration.md has the mapping.',
  flags: {
    from: { type: 'string', value: 'config.toml', required: true, description: 'the gitlab-runner config.toml to migrate, e.g. /etc/gitlab-runner/config.toml' },
    out: { type: 'string', value: 'FILE', description: 'write the YAML here (the report and notes then go to stdout)', defaultText: 'YAML to stdout, the rest to stderr' },
    deployment: { type: 'string', value: 'NAME', description: 'the deployment name (1-31 of a-z, 0-9, -)', defaultText: "from the first runner's name" },
    stage: { type: 'string', value: 'NAME', description: 'the stage the printed SSM parameter names are for', defaultText: 'prod' },
    force: { type: 'boolean', description: 'overwrite --out if it exists (without it: refuse)' },
    'tags-from-gitlab': {
      type: 'boolean',
      description:
        "read each runner's job tags and run_untagged from GitLab (GET /api/v4/runners/:id) with the API token in $GITLAB_TOKEN (read_api); without it the first pool takes untagged jobs and later ones get a PLACEHOLDER tag",
    },
    'gitlab-url': { type: 'string', value: 'URL', description: 'the GitLab to ask with --tags-from-gitlab', defaultText: "each runner's url" },
    'keep-cache-keys': {
      type: 'boolean',
      description: 'an AWS S3 cache with keys is in another account: keep it and its keys (read from SSM) instead of the worker role (without it: the worker role)',
    },
  },
  examples: ['migrate --from /etc/gitlab-runner/config.toml --out config.yaml', 'migrate --from config.toml --tags-from-gitlab --out config.yaml'],
  async run(opts) {
    if (opts.deployment !== undefined && !/^[a-z0-9][a-z0-9-]{0,30}$/.test(opts.deployment))
      throw new UsageError(`--deployment ${JSON.stringify(opts.deployment)}: deployment names are 1-31 of a-z, 0-9 and "-"`);
    if (opts.stage !== undefined && !/^[a-zA-Z0-9-]{1,32}$/.test(opts.stage)) throw new UsageError(`--stage ${JSON.stringify(opts.stage)}: letters, digits and "-" only`);
    if (opts['gitlab-url'] !== undefined && !opts['tags-from-gitlab']) throw new UsageError('--gitlab-url is used with --tags-from-gitlab only');
    if (opts['gitlab-url'] !== undefined && !/^https?:\/\/[^\s]+$/.test(opts['gitlab-url'])) throw new UsageError(`--gitlab-url ${JSON.stringify(opts['gitlab-url'])}: expected e.g. https://gitlab.example.com`);
    if (opts.out && existsSync(opts.out) && !opts.force) throw new UsageError(`${opts.out} exists; pass --force to overwrite it`);
    let text: string;
    try {
      text = readFileSync(opts.from, 'utf8');
    } catch (e) {
      throw new UsageError(`cannot read ${opts.from}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
    const notes: string[] = [];
    let runnerTags: Map<number, RunnerTags> | undefined;
    if (opts['tags-from-gitlab']) {
      // From the environment, never argv: a token on the command line is visible to every user (ps).
      const token = process.env.GITLAB_TOKEN;
      if (!token) throw new UsageError('--tags-from-gitlab needs a GitLab API token (read_api) in the environment variable GITLAB_TOKEN');
      let lookup;
      try {
        lookup = await readRunnerTags(text, { token, url: opts['gitlab-url'] });
      } catch (e) {
        throw new UsageError(`cannot read ${opts.from}: ${(e as Error).message.split('\n')[0]}`);
      }
      runnerTags = lookup.tags;
      notes.push(`Tags read from GitLab for ${lookup.tags.size} runner(s).`);
      for (const p of lookup.problems) notes.push(`  - ${p}`);
    }
    let result;
    try {
      result = migrateConfigToml(text, {
        source: opts.from,
        deployment: opts.deployment,
        stage: opts.stage,
        runnerTags,
        readFile: fileReader(opts.from),
        keepCacheKeys: opts['keep-cache-keys'],
      });
    } catch (e) {
      if (e instanceof MigrationError) throw new UsageError(e.message);
      throw e;
    }
    notes.push(`Migrated ${result.config.pools.length} pool(s): ${result.config.pools.map((p) => p.name).join(', ')}.`);
    notes.push('', 'Store these secrets in SSM Parameter Store (fill in the placeholders; nothing secret was copied):');
    for (const s of result.secrets) notes.push(`  # ${s.what}`, `  ${s.command}`);
    notes.push('', `Report: ${formatReport(result.report).join('\n')}`);
    if (result.warnings.length) {
      notes.push('', `${result.warnings.length} note(s) — advice, and placeholders to fill in:`);
      for (const w of result.warnings) notes.push(`  - ${w.at}: ${w.message}`);
    }
    const placeholders = (result.yaml.match(/# PLACEHOLDER/g) ?? []).length;
    if (placeholders) notes.push('', `${placeholders} value(s) marked "# PLACEHOLDER" in the output must be replaced before deploying.`);
    if (opts.out) {
      try {
        writeFileSync(opts.out, result.yaml);
      } catch (e) {
        throw new UsageError(`cannot write ${opts.out}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
      }
      process.stdout.write(`Wrote ${opts.out}.\n${notes.join('\n')}\n`);
    } else {
      process.stdout.write(result.yaml);
      process.stderr.write(notes.join('\n') + '\n');
    }
    return 0;
  },
});

export const run = runner(command);
