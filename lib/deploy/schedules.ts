/**
 * EventBridge Scheduler schedules that run a reconcile pass at the minutes an autoscaling period
 * starts or ends, in the period's time zone, so the settings switch (IdleCount 3 -> 0 at 19:00)
 * takes effect on time instead of up to a minute later at the next every-minute tick (which runs
 * at an arbitrary second, not on the minute).
 *
 * How the minutes are found: for each Periods expression, the day fields (day-of-month, month,
 * day-of-week, year) are replaced by `*` and the remaining time-of-day expression is evaluated at
 * the first second of each of the 1440 minutes of a day. A boundary is a minute whose state
 * differs from the minute before (cyclically), plus 00:00 when the day fields restrict the days
 * and the period touches midnight (then the period can start or end at a day change). The
 * schedules fire at those minutes EVERY day: a superset of the real boundaries. A pass on a day
 * without a boundary changes nothing (reconcile is level-triggered), it only costs an invocation.
 *
 * Limits (documented in docs/deployment.md, "Off-peak schedules"):
 *  - Minute resolution: a `second` field other than `*` (or one that matches second 0) cannot be
 *    honoured by a schedule; the every-minute tick still applies the period.
 *  - Day-level constructs (`L`, `W`, `#`, day-of-month lists, months, years) are not turned into
 *    schedule day fields; they only add the 00:00 boundary. Correct, but not minimal.
 *  - Time zones: Scheduler applies the IANA zone with DST; a boundary inside a skipped DST hour
 *    fires at the next valid time (EventBridge Scheduler documentation, "Daylight saving time").
 */
import type { Config } from '../config';
import { parseCron } from '../cron';

export interface BoundarySchedule {
  /** `cron(minutes hours day-of-month month day-of-week year)`, Scheduler syntax. */
  expression: string;
  timezone: string;
  /** Pools whose period boundaries this schedule covers. */
  pools: string[];
  /** The wall-clock minutes it fires at, "HH:MM", for docs and descriptions. */
  times: string[];
}

const MINUTES_PER_DAY = 1440;
const REF_DAY = Date.UTC(2024, 0, 1); // any day: the day fields are wildcarded before evaluation

/** Splits a Periods expression into cronexpr's 7 fields (5 -> sec 0 + year *, 6 -> sec 0). */
function sevenFields(expr: string): string[] | undefined {
  const fields = expr.trim().split(/[ \t\r\n\f]+/).filter(Boolean);
  if (fields.length === 5) return ['0', ...fields, '*'];
  if (fields.length === 6) return ['0', ...fields];
  if (fields.length >= 7) return fields.slice(0, 7);
  return undefined;
}

const ANY = (f: string) => f === '*' || f === '?';

/** Minutes of the day (0..1439) in the period, and whether its day fields restrict the days. */
export function timeOfDay(expr: string): { inPeriod: boolean[]; dayRestricted: boolean } {
  const fields = sevenFields(expr);
  if (!fields || expr.trim().startsWith('@')) {
    // Macros (@daily...) and odd shapes: evaluate as given, assume days are restricted.
    const e = parseCron(expr);
    return { inPeriod: Array.from({ length: MINUTES_PER_DAY }, (_, m) => e.matches(new Date(REF_DAY + m * 60_000), 'UTC')), dayRestricted: true };
  }
  const [sec, min, hour, dom, month, dow, year] = fields;
  const e = parseCron([sec, min, hour, '*', '*', '*', '*'].join(' '));
  const inPeriod = Array.from({ length: MINUTES_PER_DAY }, (_, m) => e.matches(new Date(REF_DAY + m * 60_000), 'UTC'));
  return { inPeriod, dayRestricted: ![dom, month, dow, year].every(ANY) };
}

/** The boundary minutes (0..1439) of one Periods expression. */
export function boundaryMinutes(expr: string): number[] {
  const { inPeriod, dayRestricted } = timeOfDay(expr);
  const out = new Set<number>();
  for (let m = 0; m < MINUTES_PER_DAY; m++) if (inPeriod[m] !== inPeriod[(m + MINUTES_PER_DAY - 1) % MINUTES_PER_DAY]) out.add(m);
  if (dayRestricted && (inPeriod[0] || inPeriod[MINUTES_PER_DAY - 1])) out.add(0);
  return [...out].sort((a, b) => a - b);
}

const hhmm = (m: number) => `${String(Math.floor(m / 60)).padStart(2, '0')}:${String(m % 60).padStart(2, '0')}`;

/**
 * One schedule per (time zone, set of minutes past the hour): `cron(0 8,19 * * ? *)` fires at
 * 08:00 and 19:00. Pools in the same zone share schedules: one pass serves every pool.
 */
export function boundarySchedules(config: Config): BoundarySchedule[] {
  const byZone = new Map<string, { minutes: Set<number>; pools: Set<string> }>();
  for (const pool of config.pools) {
    for (const section of pool.autoscaling) {
      const zone = section.Timezone ?? pool.Timezone;
      let z = byZone.get(zone);
      if (!z) byZone.set(zone, (z = { minutes: new Set(), pools: new Set() }));
      for (const expr of section.Periods) for (const m of boundaryMinutes(expr)) z.minutes.add(m);
      z.pools.add(pool.name);
    }
  }
  const out: BoundarySchedule[] = [];
  for (const [timezone, { minutes, pools }] of [...byZone].sort(([a], [b]) => a.localeCompare(b))) {
    if (minutes.size === 0) continue;
    // hour -> minutes past it; then hours with the same minute list share one expression
    const perHour = new Map<number, number[]>();
    for (const m of [...minutes].sort((a, b) => a - b)) perHour.set(Math.floor(m / 60), [...(perHour.get(Math.floor(m / 60)) ?? []), m % 60]);
    const byMinuteList = new Map<string, number[]>();
    for (const [h, mins] of perHour) byMinuteList.set(mins.join(','), [...(byMinuteList.get(mins.join(',')) ?? []), h]);
    for (const [mins, hours] of byMinuteList) {
      out.push({
        expression: `cron(${mins} ${hours.join(',')} * * ? *)`,
        timezone,
        pools: [...pools].sort(),
        times: hours.flatMap((h) => mins.split(',').map((m) => hhmm(h * 60 + Number(m)))).sort(),
      });
    }
  }
  return out;
}
