/** `validate`: check a config file; every problem is listed with its path. */
import { configWarnings } from '../../config';
import { guarded, loadConfigFile, parseOptions } from './common';

export function run(argv: string[]): Promise<number> {
  return guarded(() => {
    const opts = parseOptions(argv, { config: { type: 'string' } });
    const config = loadConfigFile(opts.config);
    for (const w of configWarnings(config)) process.stderr.write(`warning: ${w}\n`);
    process.stdout.write(`${opts.config}: valid — deployment "${config.deployment}", ${config.pools.length} pool(s): ${config.pools.map((p) => p.name).join(', ')}\n`);
    return 0;
  });
}
