/** `validate`: check a config file; every problem is listed with its path and line. */
import { configWarnings, placeholderLines } from '../../config';
import { userDataProblems } from '../../worker/userdata';
import { imageProblems } from '../../deploy/image';
import { defineCommand, runner } from '../command';
import { readFileSync } from 'node:fs';
import { CONFIG_FLAG, loadConfigFile, UsageError } from './common';

export const command = defineCommand({
  name: 'validate',
  summary: 'check a config file and list every problem with its path and line',
  description:
    'Exit code 0 when the config is valid (warnings about likely mistakes, and values `migrate` left marked PLACEHOLDER, go to stderr), 2 when it is not.',
  flags: { config: CONFIG_FLAG },
  examples: ['validate --config config.yaml'],
  run(opts) {
    const config = loadConfigFile(opts.config);
    // Valid here means deployable: each pool's user data is rendered and checked (EC2's size limit ...).
    const problems = [...userDataProblems(config), ...imageProblems(config)];
    if (problems.length) throw new UsageError(`${opts.config}: the workers' user data cannot be built:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    const placeholders = placeholderLines(readFileSync(opts.config, 'utf8'));
    for (const w of [...configWarnings(config), ...placeholders]) process.stderr.write(`warning: ${w}\n`);
    const todo = placeholders.length ? `; ${placeholders.length} placeholder(s) to replace before deploying` : '';
    process.stdout.write(`${opts.config}: valid — deployment "${config.deployment}", ${config.pools.length} pool(s): ${config.pools.map((p) => p.name).join(', ')}${todo}\n`);
    return 0;
  },
});

export const run = runner(command);
