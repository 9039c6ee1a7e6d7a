/** `validate`: check a config file; every problem is listed with its path and line. */
import { configWarnings } from '../../config';
import { userDataProblems } from '../../worker/userdata';
import { imageProblems } from '../../deploy/image';
import { defineCommand, runner } from '../command';
import { CONFIG_FLAG, loadConfigFile, UsageError } from './common';

export const command = defineCommand({
  name: 'validate',
  summary: 'check a config file and list every problem with its path and line',
  description: 'Exit code 0 when the config is valid (warnings about likely mistakes go to stderr), 2 when it is not.',
  flags: { config: CONFIG_FLAG },
  examples: ['validate --config config.yaml'],
  run(opts) {
    const config = loadConfigFile(opts.config);
    // Valid here means deployable: each pool's user data is rendered and checked (EC2's size limit ...).
    const problems = [...userDataProblems(config), ...imageProblems(config)];
    if (problems.length) throw new UsageError(`${opts.config}: the workers' user data cannot be built:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    for (const w of configWarnings(config)) process.stderr.write(`warning: ${w}\n`);
    process.stdout.write(`${opts.config}: valid — deployment "${config.deployment}", ${config.pools.length} pool(s): ${config.pools.map((p) => p.name).join(', ')}\n`);
    return 0;
  },
});

export const run = runner(command);
