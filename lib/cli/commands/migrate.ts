/**
 * `migrate`: a docker+machine config.toml in, this project's config out (docs/migration.md).
 * The YAML goes to --out (or stdout); the secrets to store and the migration notes go to stdout
 * with --out, to stderr without it, so `migrate --from config.toml > config.yaml` works.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { migrateConfigToml, MigrationError } from '../../migrate/migrate';
import { guarded, parseOptions, UsageError } from './common';

export const USAGE = 'migrate --from config.toml [--out FILE] [--deployment NAME] [--stage NAME] [--force]';

export function run(argv: string[]): Promise<number> {
  return guarded(() => {
    const opts = parseOptions(argv, {
      from: { type: 'string' },
      out: { type: 'string' },
      deployment: { type: 'string' },
      stage: { type: 'string' },
      force: { type: 'boolean' },
    });
    if (!opts.from) throw new UsageError('--from config.toml is required (the gitlab-runner config to migrate, e.g. /etc/gitlab-runner/config.toml)');
    if (opts.deployment !== undefined && !/^[a-z0-9][a-z0-9-]{0,30}$/.test(opts.deployment))
      throw new UsageError(`--deployment ${JSON.stringify(opts.deployment)}: deployment names are 1-31 of a-z, 0-9 and "-"`);
    if (opts.stage !== undefined && !/^[a-zA-Z0-9-]{1,32}$/.test(opts.stage)) throw new UsageError(`--stage ${JSON.stringify(opts.stage)}: letters, digits and "-" only`);
    if (opts.out && existsSync(opts.out) && !opts.force) throw new UsageError(`${opts.out} exists; pass --force to overwrite it`);
    let text: string;
    try {
      text = readFileSync(opts.from, 'utf8');
    } catch (e) {
      throw new UsageError(`cannot read ${opts.from}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
    let result;
    try {
      result = migrateConfigToml(text, { source: opts.from, deployment: opts.deployment, stage: opts.stage });
    } catch (e) {
      if (e instanceof MigrationError) throw new UsageError(e.message);
      throw e;
    }
    const notes: string[] = [];
    notes.push(`Migrated ${result.config.pools.length} pool(s): ${result.config.pools.map((p) => p.name).join(', ')}.`);
    notes.push('', 'Store these secrets in SSM Parameter Store (fill in the placeholders; nothing secret was copied):');
    for (const s of result.secrets) notes.push(`  # ${s.what}`, `  ${s.command}`);
    if (result.warnings.length) {
      notes.push('', `${result.warnings.length} note(s) — options without an equivalent, and placeholders to fill in:`);
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
  });
}
