/**
 * Which idle settings are in force for a pool at an instant.
 *
 * gitlab-runner evaluates every `[[runners.machine.autoscaling]]` section and the LAST one whose
 * Periods match wins; when none matches, the `[runners.machine]` root values apply
 * (gitlab-runner common/config.go, getActiveAutoscalingConfig). As there, a matching section's
 * values are used as written: a value the section leaves out is 0 (Go's zero value), not the root
 * value. Matching is per expression, in the section's Timezone (cron.ts), or the pool's Timezone
 * when the section names none (gitlab-runner: the host's zone).
 */
import type { Pool, Autoscaling } from './config';
import { parseCron, isInPeriod, type CronExpression } from './cron';

export interface ActiveSettings {
  /** Index of the matching autoscaling section, or null when the root values apply. */
  activePeriod: number | null;
  IdleCount: number;
  IdleTime: number;
  IdleCountMin: number;
  IdleScaleFactor: number;
}

// Parsing is pure and configs are long-lived, so compiled expressions are cached per section.
const compiled = new WeakMap<Autoscaling, CronExpression[]>();
function expressions(section: Autoscaling): CronExpression[] {
  let exprs = compiled.get(section);
  if (!exprs) {
    exprs = section.Periods.map(parseCron);
    compiled.set(section, exprs);
  }
  return exprs;
}

export function sectionMatches(pool: Pool, section: Autoscaling, at: Date): boolean {
  const zone = section.Timezone ?? pool.Timezone;
  return expressions(section).some((e) => isInPeriod(e, at, zone));
}

export function activeSettings(pool: Pool, at: Date): ActiveSettings {
  let active: number | null = null;
  pool.autoscaling.forEach((section, i) => {
    if (sectionMatches(pool, section, at)) active = i;
  });
  if (active === null)
    return { activePeriod: null, IdleCount: pool.IdleCount, IdleTime: pool.IdleTime, IdleCountMin: pool.IdleCountMin, IdleScaleFactor: pool.IdleScaleFactor };
  const s: Autoscaling = pool.autoscaling[active];
  return { activePeriod: active, IdleCount: s.IdleCount ?? 0, IdleTime: s.IdleTime ?? 0, IdleCountMin: s.IdleCountMin ?? 0, IdleScaleFactor: s.IdleScaleFactor ?? 0 };
}
