/**
 * `explain`: the idle settings in force for each pool at given instants. Answers "why is my pool
 * at zero idle at 9 a.m.?" without waiting for 9 a.m.
 */
import { activeSettings } from '../../periods';
import type { Config } from '../../config';
import { defineCommand, runner } from '../command';
import { CONFIG_FLAG, loadConfigFile, UsageError } from './common';

// ISO 8601 with a date and, when a time is given, an explicit zone (Z or ±hh:mm): an instant
// without a zone would silently depend on this machine's zone.
const ISO_INSTANT = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2}))?$/;

export function parseInstant(text: string): Date {
  const d = new Date(text);
  if (!ISO_INSTANT.test(text) || Number.isNaN(d.getTime()))
    throw new UsageError(`--at ${JSON.stringify(text)} is not an ISO 8601 instant (accepted: e.g. 2026-11-30T09:00:00Z or 2026-11-30T09:00:00+01:00)`);
  return d;
}

export function explainAt(config: Config, at: Date) {
  return {
    at: at.toISOString(),
    pools: config.pools.map((pool) => {
      const s = activeSettings(pool, at);
      return { name: pool.name, activePeriod: s.activePeriod, IdleCount: s.IdleCount, IdleTime: s.IdleTime, IdleCountMin: s.IdleCountMin, IdleScaleFactor: s.IdleScaleFactor };
    }),
  };
}

export const command = defineCommand({
  name: 'explain',
  summary: 'print the idle settings in force for each pool at given instants (one JSON line per --at)',
  description:
    'Answers "why is my pool at zero idle at 9 a.m.?" without waiting for 9 a.m.: for each instant, every pool\'s IdleCount, IdleTime, IdleCountMin and IdleScaleFactor and the autoscaling section that set them (activePeriod: its index, or null for the root values).',
  flags: {
    config: CONFIG_FLAG,
    at: {
      type: 'string',
      multiple: true,
      required: true,
      value: 'ISO8601',
      description: 'an instant with its zone, e.g. 2026-11-30T09:00:00+01:00 or 2026-11-30T08:00:00Z; repeat for several',
    },
  },
  examples: ['explain --config config.yaml --at 2026-11-30T09:00:00+01:00 --at 2026-11-28T12:00:00Z'],
  run(opts) {
    const instants = opts.at.map(parseInstant); // all checked before any output
    const config = loadConfigFile(opts.config);
    for (const at of instants) process.stdout.write(JSON.stringify(explainAt(config, at)) + '\n');
    return 0;
  },
});

export const run = runner(command);
