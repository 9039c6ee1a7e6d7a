/**
 * Cron expressions as gitlab-runner evaluates `[[runners.machine.autoscaling]] Periods`.
 *
 * This is a TypeScript port of github.com/gorhill/cronexpr at the revision gitlab-runner pins in
 * its go.mod (v0.0.0-20160318121724-f0984319b442), plus gitlab-runner's "is now in the period"
 * rule (helpers/timeperiod/period.go), with IANA time zones and DST handled the way Go's `time`
 * package handles them. Pure code: no I/O.
 *
 * ## Syntax (what cronexpr accepts, and therefore what this module accepts)
 *
 *   7 fields   `second minute hour day-of-month month day-of-week year`  e.g. `* * 9-17 * * mon-fri *`
 *   6 fields   `minute hour day-of-month month day-of-week year`         (second is 0)
 *   5 fields   `minute hour day-of-month month day-of-week`              (second is 0, any year)
 *   more than 7 fields: the extra ones are ignored (as cronexpr does; see `warnings`)
 *   `@yearly` `@annually` `@monthly` `@weekly` `@daily` `@hourly` are replaced by 7-field
 *   equivalents wherever they appear in the text (cronexpr uses a plain string replacer).
 *   Fields are separated by space, tab, CR, LF or FF (Go's RE2 `\s`; a vertical tab is NOT a
 *   separator). Entries inside a field are separated by commas; empty entries are skipped.
 *
 *   Each entry: `*` or `?` (any), `n`, `a-b`, `*\/n`, `a/n` (a to the field's max), `a-b/n`.
 *   Values: second/minute 0-59, hour 0-23, day-of-month 1-31, month 1-12 or jan..dec /
 *   january..december, day-of-week 0-7 (0 and 7 = Sunday) or sun..sat / sunday..saturday,
 *   year 1970-2099. One optional leading zero is allowed on numbers below 10. Case-insensitive.
 *   day-of-month also: `L` (last day), `LW` (last weekday), `nW` (weekday nearest the n-th,
 *   not crossing the month's boundaries). day-of-week also: `nL` (last such weekday of the
 *   month), `n#k` (k-th such weekday of the month, k = 1..5).
 *   When both day-of-month and day-of-week are restricted (neither contains `*` / `?`), a day
 *   matches when EITHER matches (Vixie cron rule). `*\/1` counts as restricted.
 *
 * ## cronexpr behaviours reproduced on purpose (read from its source)
 *
 *   - Zero-padded MONTH numbers `01`..`09` are read as month 0 (the pinned revision looks them
 *     up in a table that has only `1`..`12`), and Go's time.Date turns month 0 into December of
 *     the previous year inside Next(). So `0 0 9 02 *` fires on December 9th, not February 9th
 *     (gorhill/cronexpr issue #31). matches() treats month 0 as "no month".
 *   - Zero-padded DAY-OF-WEEK numbers `01`..`06` are read as 0 (Sunday); `7` is Sunday, so a
 *     range ending in 7 (`1-7`, `5-7`) is the reversed range `1-0` and selects nothing, and
 *     `0-7` selects Sunday only.
 *   - A reversed range (`17-9`) contributes nothing to its field.
 *   - Steps are looked up in cronexpr's number table: 1..59 (optionally `01`..`09`) and
 *     1970..2099 are steps; a step larger than the field's maximum selects only the first value
 *     (`*\/30` in the hour field is hour 0). Later cronexpr revisions reject those; the pinned one
 *     does not.
 *   - In sec/min/hour/month/year a `*` entry makes the whole field "any" and cronexpr stops
 *     looking at the field's remaining entries.
 *   - next() is cronexpr's Next(): the earliest wall-clock time strictly after `from`'s
 *     wall-clock second that matches, converted to an instant by Go's time.Date rules (below).
 *
 * ## Deliberate departures (cronexpr would hang or crash, so we reject instead)
 *
 *   - A step of 0, or one cronexpr cannot read (`*\/60`, `*\/0`, `5/100`): the pinned cronexpr loops
 *     forever while parsing. CronSyntaxError.
 *   - A second, minute, hour or month field that selects nothing (only reversed ranges, e.g.
 *     hour `17-9`): cronexpr parses it and then panics (index out of range) in Next().
 *     CronSyntaxError. (An empty day or year selection does not crash cronexpr: it just never
 *     matches, and we reproduce that: next() returns null.)
 *   - Pathological inputs that make cronexpr recurse without end (month 0 with an empty day
 *     selection) return null after a bounded number of steps.
 *
 * ## Time zones and DST
 *
 * A zone is an IANA name ("UTC", "Europe/Berlin", ...). `undefined`, "" and "Local" mean UTC:
 * gitlab-runner reads ""/"Local" as the host's zone, and a Lambda's host zone is UTC. Names are
 * case-sensitive as with Go's LoadLocation on Linux ("europe/berlin" is rejected). Offsets come
 * from the JS runtime's ICU data (Intl), which may be a different tzdata release than the one a
 * Go binary carries.
 *
 * cronexpr builds every candidate with Go's `time.Date(y, m, d, h, mi, s, 0, loc)`. For a
 * wall-clock time that does not exist or exists twice, Go takes the offset in effect at the
 * instant "wall clock read as UTC", and if that offset does not hold at the resulting instant it
 * uses the offset that does (go/src/time/time.go, Date). Reproduced here exactly, which gives:
 *   - spring-forward gap, zones east of UTC (Berlin, Sydney): 02:30 becomes 03:30 (the offset
 *     before the change); zones west of UTC (New York): 02:30 becomes 01:30 EST (the offset after
 *     the change), so next() can return a time that does not match, or even one before `from`;
 *   - fall-back overlap: east of UTC the SECOND occurrence is chosen, west of UTC the FIRST.
 *
 * ## "In the period"
 *
 * gitlab-runner: `next := expr.Next(now); in := |now - next| <= 1s`. Because Next() is strictly
 * after now's second, that asks whether the NEXT second matches: the last second of a period is
 * reported outside and the second before a period starts is reported inside (gitlab-runner
 * issue #2170 is the 59th-second half of that); and around a fall-back the Go rules above make it
 * report an always-matching period as outside for a whole hour (east of UTC during the first
 * pass of the repeated hour, west of UTC during the second pass), plus one second at a
 * spring-forward west of UTC. `gitlabRunnerInPeriod` reproduces that rule literally.
 * `isInPeriod` — the rule this project uses — is simply: the instant's wall-clock second in the
 * zone matches the expression. Away from DST changes the two differ only at a period's edges:
 * gitlabRunnerInPeriod(t) === isInPeriod(t + 1 s).
 */

export type CronFieldName = 'second' | 'minute' | 'hour' | 'day-of-month' | 'month' | 'day-of-week' | 'year';

export class CronSyntaxError extends Error {
  override readonly name = 'CronSyntaxError';
  /** The field at fault, when there is one. */
  readonly field?: CronFieldName;
  constructor(message: string, field?: CronFieldName) {
    super(message);
    this.field = field;
  }
}

export interface CronExpression {
  /** The text as given to parseCron. */
  readonly source: string;
  /**
   * cronexpr's Next(): the first matching instant after `from` (second granularity, strictly
   * after from's wall-clock second), or null when there is none (cronexpr's zero time).
   * Throws RangeError for an invalid Date or an unknown time zone.
   */
  next(from: Date, timeZone?: string): Date | null;
  /** Whether the wall-clock second of `at` in the zone matches the expression. */
  matches(at: Date, timeZone?: string): boolean;
}

/** What parseCron returns: a CronExpression plus notes about quirks cronexpr applies to it. */
export interface ParsedCronExpression extends CronExpression {
  /**
   * Things the expression means under cronexpr that its author probably did not intend
   * (zero-padded months, reversed ranges, steps beyond the field, ignored extra fields...).
   * Empty for ordinary expressions.
   */
  readonly warnings: readonly string[];
}

// ---------------------------------------------------------------------------------------------
// Calendar arithmetic (proleptic Gregorian, days since 1970-01-01)

function mod(a: number, n: number): number {
  const r = a % n;
  return r < 0 ? r + n : r;
}

/** Days since the epoch of y-m-d; m must be 1..12, d may be any integer (it is added linearly). */
function daysFromCivil(y: number, m: number, d: number): number {
  y -= m <= 2 ? 1 : 0;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5) + d - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}

interface Civil {
  y: number;
  m: number;
  d: number;
}

function civilFromDays(z: number): Civil {
  z += 719468;
  const era = Math.floor(z / 146097);
  const doe = z - era * 146097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const d = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const m = mp < 10 ? mp + 3 : mp - 9;
  return { y: yoe + era * 400 + (m <= 2 ? 1 : 0), m, d };
}

/** 0 = Sunday .. 6 = Saturday. */
function weekdayOfDays(days: number): number {
  return mod(days + 4, 7);
}

function isLeap(y: number): boolean {
  return (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
}

const MONTH_DAYS = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
function daysInMonth(y: number, m: number): number {
  return m === 2 && isLeap(y) ? 29 : MONTH_DAYS[m - 1];
}

// ---------------------------------------------------------------------------------------------
// Time zones

interface Zone {
  readonly name: string;
  /** Seconds east of UTC in effect at the instant `sec` (Unix seconds). */
  offsetAt(sec: number): number;
}

const UTC_ZONE: Zone = { name: 'UTC', offsetAt: () => 0 };

/**
 * Offsets from Intl, cached in 6-hour buckets. Each bucket records the offset at its start and
 * end and, when they differ, the exact second of the change (found by bisection). That assumes
 * at most one change per 6 hours, which holds for every zone since 1970.
 */
const BUCKET = 6 * 3600;
interface Bucket {
  off0: number;
  off1: number;
  change: number; // first second at which off1 applies (Infinity when off0 === off1)
}

class IanaZone implements Zone {
  private readonly dtf: Intl.DateTimeFormat;
  private readonly edges = new Map<number, number>();
  private readonly buckets = new Map<number, Bucket>();

  constructor(readonly name: string) {
    this.dtf = new Intl.DateTimeFormat('en-US', {
      timeZone: name,
      hourCycle: 'h23',
      era: 'short',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
  }

  offsetAt(sec: number): number {
    const b = Math.floor(sec / BUCKET);
    let bucket = this.buckets.get(b);
    if (bucket === undefined) {
      if (this.buckets.size > 100_000) {
        this.buckets.clear();
        this.edges.clear();
      }
      bucket = this.fill(b);
      this.buckets.set(b, bucket);
    }
    return sec < bucket.change ? bucket.off0 : bucket.off1;
  }

  private edge(b: number): number {
    let off = this.edges.get(b);
    if (off === undefined) {
      off = this.rawOffset(b * BUCKET);
      this.edges.set(b, off);
    }
    return off;
  }

  private fill(b: number): Bucket {
    const off0 = this.edge(b);
    const off1 = this.edge(b + 1);
    if (off0 === off1) return { off0, off1, change: Infinity };
    // Bisect for the first second whose offset is no longer off0.
    let lo = b * BUCKET; // offset off0
    let hi = (b + 1) * BUCKET; // offset != off0
    while (hi - lo > 1) {
      const mid = Math.floor((lo + hi) / 2);
      if (this.rawOffset(mid) === off0) lo = mid;
      else hi = mid;
    }
    return { off0, off1: this.rawOffset(hi), change: hi };
  }

  private rawOffset(sec: number): number {
    let y = 0;
    let m = 0;
    let d = 0;
    let h = 0;
    let mi = 0;
    let s = 0;
    let bc = false;
    for (const p of this.dtf.formatToParts(new Date(sec * 1000))) {
      switch (p.type) {
        case 'year':
          y = Number(p.value);
          break;
        case 'month':
          m = Number(p.value);
          break;
        case 'day':
          d = Number(p.value);
          break;
        case 'hour':
          h = Number(p.value) % 24;
          break;
        case 'minute':
          mi = Number(p.value);
          break;
        case 'second':
          s = Number(p.value);
          break;
        case 'era':
          bc = p.value.startsWith('B');
          break;
      }
    }
    if (bc) y = 1 - y;
    return daysFromCivil(y, m, d) * 86400 + h * 3600 + mi * 60 + s - sec;
  }
}

const zones = new Map<string, Zone | null>();

function lookupZone(name: string): Zone | null {
  let z = zones.get(name);
  if (z !== undefined) return z;
  z = null;
  // IANA names: segments of letters, digits, '_', '+', '-', each starting with a capital letter
  // (so "europe/berlin", "+01:00" and "../x" are refused, as Go's LoadLocation on Linux does).
  if (/^[A-Z][A-Za-z0-9_+-]*(\/[A-Z][A-Za-z0-9_+-]*)*$/.test(name)) {
    try {
      z = new IanaZone(name);
    } catch {
      z = null;
    }
  }
  zones.set(name, z);
  return z;
}

function resolveZone(timeZone: string | undefined): Zone {
  if (timeZone === undefined || timeZone === '' || timeZone === 'UTC' || timeZone === 'Local') return UTC_ZONE;
  const z = lookupZone(timeZone);
  if (z === null) throw new RangeError(`unknown time zone ${JSON.stringify(timeZone)} (accepted: an IANA name such as "UTC", "Europe/Berlin")`);
  return z;
}

/**
 * Whether `zone` names a time zone: an IANA name such as "UTC", "Europe/Berlin",
 * "America/New_York" (case-sensitive), or "" / "Local", which this module reads as UTC.
 */
export function isValidTimeZone(zone: string): boolean {
  if (typeof zone !== 'string') return false;
  if (zone === '' || zone === 'UTC' || zone === 'Local') return true;
  return lookupZone(zone) !== null;
}

/** Wall-clock fields of a Unix second in a zone. */
interface Wall {
  y: number;
  mo: number;
  d: number;
  h: number;
  mi: number;
  s: number;
}

function wallOf(sec: number, zone: Zone): Wall {
  const w = sec + zone.offsetAt(sec);
  const days = Math.floor(w / 86400);
  let sod = w - days * 86400;
  const c = civilFromDays(days);
  const h = Math.floor(sod / 3600);
  sod -= h * 3600;
  const mi = Math.floor(sod / 60);
  return { y: c.y, mo: c.m, d: c.d, h, mi, s: sod - mi * 60 };
}

/**
 * Go's time.Date(y, mo, d, h, mi, s, 0, loc) as Unix seconds: month/day overflow is normalised,
 * then the wall clock is read as UTC (`unix`); the offset in effect at that instant is taken,
 * and if the resulting instant lies outside that offset's validity, the offset in effect at the
 * resulting instant is used instead.
 */
function goDate(zone: Zone, y: number, mo: number, d: number, h: number, mi: number, s: number): number {
  const m0 = mo - 1;
  y += Math.floor(m0 / 12);
  const m = mod(m0, 12) + 1;
  const unix = (daysFromCivil(y, m, 1) + d - 1) * 86400 + h * 3600 + mi * 60 + s;
  const off = zone.offsetAt(unix);
  if (off === 0) return unix;
  // "if utc < start || utc >= end { offset = lookup(utc) }": an offset valid at utc is the one
  // in effect at utc, so both branches amount to the offset in effect at utc.
  return unix - zone.offsetAt(unix - off);
}

// ---------------------------------------------------------------------------------------------
// Parsing (cronexpr_parse.go)

interface Descriptor {
  name: CronFieldName;
  min: number;
  max: number;
  /** Regex alternation for one value, as in cronexpr. */
  value: string;
  atoi(s: string): number;
  accepted: string;
}

/** cronexpr's numberTokens: 0-9, 00-09, 10-59, 1970-2099; anything else reads as 0. */
const NUMBER_TOKEN = /^(?:[0-9]|0[0-9]|[1-5][0-9]|19[7-9][0-9]|20[0-9][0-9])$/;
function atoiNumber(s: string): number {
  return NUMBER_TOKEN.test(s) ? Number(s) : 0;
}

const MONTH_NAMES = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];
const MONTH_FULL = ['january', 'february', 'march', 'april', 'may', 'june', 'july', 'august', 'september', 'october', 'november', 'december'];
const MONTH_TOKENS = new Map<string, number>();
MONTH_NAMES.forEach((n, i) => MONTH_TOKENS.set(n, i + 1));
MONTH_FULL.forEach((n, i) => MONTH_TOKENS.set(n, i + 1));
for (let i = 1; i <= 12; i++) MONTH_TOKENS.set(String(i), i); // no "01".."09" in the pinned revision

const DOW_NAMES = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];
const DOW_FULL = ['sunday', 'monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday'];
const DOW_TOKENS = new Map<string, number>();
DOW_NAMES.forEach((n, i) => DOW_TOKENS.set(n, i));
DOW_FULL.forEach((n, i) => DOW_TOKENS.set(n, i));
for (let i = 0; i <= 6; i++) DOW_TOKENS.set(String(i), i);
DOW_TOKENS.set('7', 0); // no "00".."07" in the pinned revision

const SECOND: Descriptor = {
  name: 'second',
  min: 0,
  max: 59,
  value: '0?[0-9]|[1-5][0-9]',
  atoi: atoiNumber,
  accepted: '0-59',
};
const MINUTE: Descriptor = { ...SECOND, name: 'minute' };
const HOUR: Descriptor = { name: 'hour', min: 0, max: 23, value: '0?[0-9]|1[0-9]|2[0-3]', atoi: atoiNumber, accepted: '0-23' };
const DOM: Descriptor = {
  name: 'day-of-month',
  min: 1,
  max: 31,
  value: '0?[1-9]|[12][0-9]|3[01]',
  atoi: atoiNumber,
  accepted: '1-31, L (last day), LW (last weekday), nW (weekday nearest day n)',
};
const MONTH: Descriptor = {
  name: 'month',
  min: 1,
  max: 12,
  value: `0?[1-9]|1[012]|${MONTH_NAMES.join('|')}|${MONTH_FULL.join('|')}`,
  atoi: (s) => MONTH_TOKENS.get(s) ?? 0,
  accepted: '1-12, jan-dec, january-december',
};
const DOW: Descriptor = {
  name: 'day-of-week',
  min: 0,
  max: 6,
  value: `0?[0-7]|${DOW_NAMES.join('|')}|${DOW_FULL.join('|')}`,
  atoi: (s) => DOW_TOKENS.get(s) ?? 0,
  accepted: '0-7 (0 and 7 are Sunday), sun-sat, sunday-saturday, nL (last such weekday), n#k (k-th such weekday, k 1-5)',
};
const YEAR: Descriptor = { name: 'year', min: 1970, max: 2099, value: '19[789][0-9]|20[0-9]{2}', atoi: atoiNumber, accepted: '1970-2099' };

const GENERIC_SYNTAX = '*, ?, n, a-b, */s, a/s, a-b/s, comma-separated lists of those';

interface Layouts {
  value: RegExp;
  range: RegExp;
  valueStep: RegExp;
  rangeStep: RegExp;
  workdom: RegExp;
  dowLast: RegExp;
  dowNth: RegExp;
}
const layoutCache = new Map<Descriptor, Layouts>();
function layouts(desc: Descriptor): Layouts {
  let l = layoutCache.get(desc);
  if (!l) {
    const v = desc.value;
    l = {
      value: new RegExp(`^(?:${v})$`),
      range: new RegExp(`^(${v})-(${v})$`),
      valueStep: new RegExp(`^(${v})/(\\d+)$`),
      rangeStep: new RegExp(`^(${v})-(${v})/(\\d+)$`),
      workdom: new RegExp(`^(${v})w$`),
      dowLast: new RegExp(`^(${v})l$`),
      dowNth: new RegExp(`^(${v})#([1-5])$`),
    };
    layoutCache.set(desc, l);
  }
  return l;
}
const WILDCARD = /^\*$|^\?$/;
const WILDCARD_STEP = /^\*\/(\d+)$/;

/** Go's strings.ToLower as far as it can matter here: non-ASCII letters never match anyway,
 *  except U+0130 (İ) and U+212A (Kelvin sign), which Go lowers to ASCII 'i' and 'k'. */
function goLower(s: string): string {
  return s.replace(/[A-Z\u0130\u212A]/g, (c) => (c === '\u0130' ? 'i' : c === '\u212A' ? 'k' : c.toLowerCase()));
}

type Directive =
  | { kind: 'none'; text: string; lower: string }
  | { kind: 'one'; text: string; v: number }
  | { kind: 'span'; text: string; first: number; last: number; step: number; stepText: string }
  | { kind: 'all' };

function parseDirectives(s: string, desc: Descriptor): Directive[] {
  const entries = s.match(/[^,]+/g);
  if (!entries) throw new CronSyntaxError(`missing value in ${desc.name} field: '${s}' (accepted: ${desc.accepted}; ${GENERIC_SYNTAX})`, desc.name);
  const lay = layouts(desc);
  return entries.map((text): Directive => {
    const lower = goLower(text);
    if (WILDCARD.test(lower)) return { kind: 'all' };
    if (lay.value.test(lower)) return { kind: 'one', text, v: desc.atoi(lower) };
    let m = lay.range.exec(lower);
    if (m) return { kind: 'span', text, first: desc.atoi(m[1]), last: desc.atoi(m[2]), step: 1, stepText: '1' };
    m = WILDCARD_STEP.exec(lower);
    if (m) return { kind: 'span', text, first: desc.min, last: desc.max, step: atoiNumber(m[1]), stepText: m[1] };
    m = lay.valueStep.exec(lower);
    if (m) return { kind: 'span', text, first: desc.atoi(m[1]), last: desc.max, step: atoiNumber(m[2]), stepText: m[2] };
    m = lay.rangeStep.exec(lower);
    if (m) return { kind: 'span', text, first: desc.atoi(m[1]), last: desc.atoi(m[2]), step: atoiNumber(m[3]), stepText: m[3] };
    return { kind: 'none', text, lower };
  });
}

class FieldContext {
  constructor(
    readonly desc: Descriptor,
    readonly warnings: string[],
  ) {}

  syntax(text: string): CronSyntaxError {
    const d = this.desc;
    return new CronSyntaxError(`syntax error in ${d.name} field: '${text}' (accepted: ${d.accepted}; ${GENERIC_SYNTAX})`, d.name);
  }

  /** Adds a span's values; rejects the steps on which cronexpr would loop forever. */
  span(values: Set<number>, dir: Extract<Directive, { kind: 'span' }>): void {
    const d = this.desc;
    if (dir.first > dir.last) {
      // cronexpr's loop never starts, whatever the step
      this.warnings.push(`${d.name} field: '${dir.text}' is a reversed range (cronexpr reads it as ${dir.first}-${dir.last}) and selects nothing`);
      return;
    }
    if (dir.step < 1) {
      throw new CronSyntaxError(
        `invalid step in ${d.name} field: '${dir.text}' (a step must be 1-59; cronexpr cannot evaluate step '${dir.stepText}')`,
        d.name,
      );
    }
    if (dir.step > d.max) {
      this.warnings.push(`${d.name} field: step in '${dir.text}' is larger than ${d.max}, so it selects ${dir.first} only`);
    }
    for (let i = dir.first; i <= dir.last; i += dir.step) values.add(i);
  }

  /** Notes value tokens cronexpr reads differently from how they look. */
  noteToken(text: string): void {
    const d = this.desc;
    if (d.name !== 'month' && d.name !== 'day-of-week') return;
    // The value part: drop a step (`/s`), a `#k`, a trailing `L`.
    const head = goLower(text).split('/')[0].split('#')[0].replace(/l$/, '');
    const tokens = head.split('-');
    for (const tok of tokens) {
      if (d.name === 'month' && /^0[1-9]$/.test(tok)) {
        this.warnings.push(
          `month field: '${tok}' in '${text}' is read by cronexpr as month 0 (December of the previous year in next(), no month in matches()); write '${tok.slice(1)}'`,
        );
      }
      if (d.name === 'day-of-week' && /^0[1-6]$/.test(tok)) {
        this.warnings.push(`day-of-week field: '${tok}' in '${text}' is read by cronexpr as 0 (Sunday); write '${tok.slice(1)}'`);
      }
    }
    if (d.name === 'day-of-week' && tokens.length === 2 && /^0?7$/.test(tokens[1]) && d.atoi(tokens[0]) === 0) {
      this.warnings.push(`day-of-week field: '${text}' ends at 7, which cronexpr reads as 0 (Sunday), so it selects Sunday only`);
    }
  }
}

/** genericFieldHandler: second, minute, hour, month, year. */
function genericField(s: string, desc: Descriptor, warnings: string[]): number[] {
  const ctx = new FieldContext(desc, warnings);
  const directives = parseDirectives(s, desc);
  const values = new Set<number>();
  for (const dir of directives) {
    switch (dir.kind) {
      case 'none':
        throw ctx.syntax(dir.text);
      case 'one':
        ctx.noteToken(dir.text);
        values.add(dir.v);
        break;
      case 'span':
        ctx.noteToken(dir.text);
        ctx.span(values, dir);
        break;
      case 'all': {
        // cronexpr returns the default list at the first `*`, ignoring what follows.
        const all: number[] = [];
        for (let i = desc.min; i <= desc.max; i++) all.push(i);
        return all;
      }
    }
  }
  return [...values].sort((a, b) => a - b);
}

interface DaySpec {
  domRestricted: boolean;
  daysOfMonth: number[];
  workdaysOfMonth: number[];
  lastDayOfMonth: boolean;
  lastWorkdayOfMonth: boolean;
  dowRestricted: boolean;
  daysOfWeek: number[];
  /** (k-1)*7 + weekday, as cronexpr stores `weekday#k`. */
  nthDaysOfWeek: number[];
  lastDaysOfWeek: number[];
}

function domField(s: string, spec: DaySpec, warnings: string[]): void {
  const ctx = new FieldContext(DOM, warnings);
  const directives = parseDirectives(s, DOM);
  const days = new Set<number>();
  const workdays = new Set<number>();
  spec.domRestricted = true;
  for (const dir of directives) {
    switch (dir.kind) {
      case 'none':
        if (dir.lower === 'l') spec.lastDayOfMonth = true;
        else if (dir.lower === 'lw') spec.lastWorkdayOfMonth = true;
        else {
          const m = layouts(DOM).workdom.exec(dir.lower);
          if (!m) throw ctx.syntax(dir.text);
          workdays.add(DOM.atoi(m[1]));
        }
        break;
      case 'one':
        days.add(dir.v);
        break;
      case 'span':
        ctx.span(days, dir);
        break;
      case 'all':
        for (let i = DOM.min; i <= DOM.max; i++) days.add(i);
        spec.domRestricted = false;
        break;
    }
  }
  spec.daysOfMonth = [...days].sort((a, b) => a - b);
  spec.workdaysOfMonth = [...workdays].sort((a, b) => a - b);
}

function dowField(s: string, spec: DaySpec, warnings: string[]): void {
  const ctx = new FieldContext(DOW, warnings);
  const directives = parseDirectives(s, DOW);
  const days = new Set<number>();
  const nth = new Set<number>();
  const last = new Set<number>();
  spec.dowRestricted = true;
  const lay = layouts(DOW);
  for (const dir of directives) {
    switch (dir.kind) {
      case 'none': {
        let m = lay.dowLast.exec(dir.lower);
        if (m) {
          ctx.noteToken(dir.text);
          last.add(DOW.atoi(m[1]));
          break;
        }
        m = lay.dowNth.exec(dir.lower);
        if (m) {
          ctx.noteToken(dir.text);
          nth.add((DOW.atoi(m[2]) - 1) * 7 + (DOW.atoi(m[1]) % 7));
          break;
        }
        throw ctx.syntax(dir.text);
      }
      case 'one':
        ctx.noteToken(dir.text);
        days.add(dir.v);
        break;
      case 'span':
        ctx.noteToken(dir.text);
        ctx.span(days, dir);
        break;
      case 'all':
        for (let i = DOW.min; i <= DOW.max; i++) days.add(i);
        spec.dowRestricted = false;
        break;
    }
  }
  spec.daysOfWeek = [...days].sort((a, b) => a - b);
  spec.nthDaysOfWeek = [...nth].sort((a, b) => a - b);
  spec.lastDaysOfWeek = [...last].sort((a, b) => a - b);
}

const ALIASES: Record<string, string> = {
  '@yearly': '0 0 0 1 1 * *',
  '@annually': '0 0 0 1 1 * *',
  '@monthly': '0 0 0 1 * * *',
  '@weekly': '0 0 0 * * 0 *',
  '@daily': '0 0 0 * * * *',
  '@hourly': '0 0 * * * * *',
};

const FIELD_FORMS =
  'expected 5 fields (minute hour day-of-month month day-of-week), 6 (... year), 7 (second minute hour day-of-month month day-of-week year) or one of @yearly @annually @monthly @weekly @daily @hourly';

/** Parses a cron expression as gorhill/cronexpr does. Throws CronSyntaxError. */
export function parseCron(expr: string): ParsedCronExpression {
  if (typeof expr !== 'string') throw new CronSyntaxError(`a cron expression must be a string, not ${typeof expr}`);
  const cron = expr.replace(/@(?:yearly|annually|monthly|weekly|daily|hourly)/g, (m) => ALIASES[m]);
  const fields = cron.match(/[^\t\n\f\r ]+/g) ?? [];
  const warnings: string[] = [];
  if (fields.length < 5) {
    throw new CronSyntaxError(`missing field(s): ${JSON.stringify(expr)} has ${fields.length} field(s); ${FIELD_FORMS}`);
  }
  const count = Math.min(fields.length, 7);
  if (fields.length > 7) warnings.push(`fields after the 7th are ignored by cronexpr: ${JSON.stringify(fields.slice(7).join(' '))}`);
  let f = 0;
  const secs = count === 7 ? genericField(fields[f++], SECOND, warnings) : [0];
  const mins = genericField(fields[f++], MINUTE, warnings);
  const hours = genericField(fields[f++], HOUR, warnings);
  const spec: DaySpec = {
    domRestricted: false,
    daysOfMonth: [],
    workdaysOfMonth: [],
    lastDayOfMonth: false,
    lastWorkdayOfMonth: false,
    dowRestricted: false,
    daysOfWeek: [],
    nthDaysOfWeek: [],
    lastDaysOfWeek: [],
  };
  domField(fields[f++], spec, warnings);
  const months = genericField(fields[f++], MONTH, warnings);
  dowField(fields[f++], spec, warnings);
  const years = f < count ? genericField(fields[f], YEAR, warnings) : genericField('*', YEAR, warnings);

  // cronexpr indexes these lists with [0] in Next() and panics when one is empty.
  const empties: Array<[CronFieldName, number[]]> = [
    ['second', secs],
    ['minute', mins],
    ['hour', hours],
    ['month', months],
  ];
  for (const [name, list] of empties) {
    if (list.length === 0) {
      throw new CronSyntaxError(
        `${name} field selects nothing: ${warnings.filter((w) => w.startsWith(name)).join('; ') || 'only reversed ranges'} (cronexpr accepts this but crashes when evaluating it; ranges must run low-high)`,
        name,
      );
    }
  }
  if (years.length === 0) warnings.push('year field selects nothing: the expression never matches');
  return new CronExpr(expr, secs, mins, hours, months, years, spec, warnings);
}

// ---------------------------------------------------------------------------------------------
// Evaluation (cronexpr.go, cronexpr_next.go)

const DOW_NORMALIZED_OFFSETS = [
  [1, 8, 15, 22, 29],
  [2, 9, 16, 23, 30],
  [3, 10, 17, 24, 31],
  [4, 11, 18, 25],
  [5, 12, 19, 26],
  [6, 13, 20, 27],
  [7, 14, 21, 28],
];

/** sort.SearchInts: the first index whose value is >= v. */
function lowerBound(list: readonly number[], v: number): number {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (list[mid] < v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

interface MonthDays {
  list: number[];
  /** bit d set when day d matches */
  mask: number;
}

/** Instants outside these bounds are before 1970 / after 2099 in every zone. */
const MIN_SEC = Date.UTC(1900, 0, 1) / 1000;
const MAX_SEC = Date.UTC(2100, 0, 2) / 1000;
/** Bound on cronexpr's month-to-month recursion (it would recurse forever on some inputs). */
const STEP_BUDGET = 20_000;

interface Ctx {
  zone: Zone;
  budget: number;
}

class CronExpr implements ParsedCronExpression {
  private readonly monthDays = new Map<number, MonthDays>();
  private readonly secMask: Uint8Array;
  private readonly minMask: Uint8Array;
  private readonly hourMask: Uint8Array;
  private readonly monthMask: Uint8Array;
  private readonly yearMask: Uint8Array;

  constructor(
    readonly source: string,
    private readonly secs: number[],
    private readonly mins: number[],
    private readonly hours: number[],
    private readonly months: number[],
    private readonly years: number[],
    private readonly days: DaySpec,
    readonly warnings: readonly string[],
  ) {
    this.secMask = mask(secs, 60);
    this.minMask = mask(mins, 60);
    this.hourMask = mask(hours, 24);
    this.monthMask = mask(months, 13);
    this.yearMask = mask(
      years.map((y) => y - 1970),
      130,
    );
  }

  toString(): string {
    return this.source;
  }

  matches(at: Date, timeZone?: string): boolean {
    const zone = resolveZone(timeZone);
    const sec = unixSeconds(at);
    if (sec < MIN_SEC || sec > MAX_SEC) return false;
    const t = wallOf(sec, zone);
    if (t.y < 1970 || t.y > 2099 || !this.yearMask[t.y - 1970]) return false;
    if (!this.monthMask[t.mo] || !this.hourMask[t.h] || !this.minMask[t.mi] || !this.secMask[t.s]) return false;
    return (this.daysOf(t.y, t.mo).mask & (1 << t.d)) !== 0;
  }

  next(from: Date, timeZone?: string): Date | null {
    const zone = resolveZone(timeZone);
    let sec = unixSeconds(from);
    if (sec > MAX_SEC) return null;
    if (sec < MIN_SEC) sec = MIN_SEC;
    const r = this.nextFrom(sec, { zone, budget: STEP_BUDGET });
    return r === null ? null : new Date(r * 1000);
  }

  /** calculateActualDaysOfMonth, cached per (normalised) month. */
  private daysOf(year: number, month: number): MonthDays {
    // time.Date(year, month, 1, ...) normalises month 0 to December of year-1.
    const m0 = month - 1;
    const y = year + Math.floor(m0 / 12);
    const m = mod(m0, 12) + 1;
    const key = y * 12 + m;
    let md = this.monthDays.get(key);
    if (md) return md;
    md = this.computeDays(y, m);
    if (this.monthDays.size > 5000) this.monthDays.clear();
    this.monthDays.set(key, md);
    return md;
  }

  private computeDays(y: number, m: number): MonthDays {
    const spec = this.days;
    const first = daysFromCivil(y, m, 1);
    const last = daysInMonth(y, m);
    let bits = 0;
    const add = (d: number) => {
      bits |= 1 << d;
    };
    if (!spec.domRestricted && !spec.dowRestricted) {
      for (let d = 1; d <= last; d++) add(d);
    } else {
      if (spec.domRestricted) {
        if (spec.lastDayOfMonth) add(last);
        if (spec.lastWorkdayOfMonth) add(workdayOfMonth(first, last, last));
        for (const v of spec.daysOfMonth) if (v <= last) add(v);
        for (const v of spec.workdaysOfMonth) if (v <= last) add(workdayOfMonth(first, v, last));
      }
      if (spec.dowRestricted) {
        // How far the first Sunday is from the first day of the month.
        let offset = 7 - weekdayOfDays(first);
        for (const v of spec.daysOfWeek) {
          const w = DOW_NORMALIZED_OFFSETS[(offset + v) % 7];
          add(w[0]);
          add(w[1]);
          add(w[2]);
          add(w[3]);
          if (w.length > 4 && w[4] <= last) add(w[4]);
        }
        for (const v of spec.nthDaysOfWeek) {
          const d = 1 + 7 * Math.floor(v / 7) + ((offset + v) % 7);
          if (d <= last) add(d);
        }
        const lastWeekOrigin = last - 6; // first.AddDate(0, 1, -7)
        offset = 7 - weekdayOfDays(first + lastWeekOrigin - 1);
        for (const v of spec.lastDaysOfWeek) {
          const d = lastWeekOrigin + ((offset + v) % 7);
          if (d <= last) add(d);
        }
      }
    }
    const list: number[] = [];
    for (let d = 1; d <= 31; d++) if ((bits & (1 << d)) !== 0) list.push(d);
    return { list, mask: bits };
  }

  // Next() and the nextX helpers. `t` is always the wall clock of an instant in ctx.zone, and
  // every candidate goes through goDate, as cronexpr builds it with time.Date(..., t.Location()).

  private nextFrom(sec: number, ctx: Ctx): number | null {
    const t = wallOf(sec, ctx.zone);
    let i = lowerBound(this.years, t.y);
    if (i === this.years.length) return null;
    if (t.y !== this.years[i]) return this.nextYear(t, ctx);
    i = lowerBound(this.months, t.mo);
    if (i === this.months.length) return this.nextYear(t, ctx);
    if (t.mo !== this.months[i]) return this.nextMonth(t, ctx);
    const days = this.daysOf(t.y, t.mo).list;
    if (days.length === 0) return this.nextMonth(t, ctx);
    i = lowerBound(days, t.d);
    if (i === days.length) return this.nextMonth(t, ctx);
    if (t.d !== days[i]) return this.nextDay(t, days, ctx);
    i = lowerBound(this.hours, t.h);
    if (i === this.hours.length) return this.nextDay(t, days, ctx);
    if (t.h !== this.hours[i]) return this.nextHour(t, days, ctx);
    i = lowerBound(this.mins, t.mi);
    if (i === this.mins.length) return this.nextHour(t, days, ctx);
    if (t.mi !== this.mins[i]) return this.nextMinute(t, days, ctx);
    i = lowerBound(this.secs, t.s);
    if (i === this.secs.length) return this.nextMinute(t, days, ctx);
    return this.nextSecond(t, days, ctx);
  }

  private nextYear(t: Wall, ctx: Ctx): number | null {
    if (--ctx.budget < 0) return null;
    const i = lowerBound(this.years, t.y + 1);
    if (i === this.years.length) return null;
    const y = this.years[i];
    const m = this.months[0];
    const days = this.daysOf(y, m).list;
    if (days.length === 0) {
      const at = goDate(ctx.zone, y, m, 1, this.hours[0], this.mins[0], this.secs[0]);
      return this.nextMonth(wallOf(at, ctx.zone), ctx);
    }
    return goDate(ctx.zone, y, m, days[0], this.hours[0], this.mins[0], this.secs[0]);
  }

  private nextMonth(t: Wall, ctx: Ctx): number | null {
    for (;;) {
      if (--ctx.budget < 0) return null;
      const i = lowerBound(this.months, t.mo + 1);
      if (i === this.months.length) return this.nextYear(t, ctx);
      const m = this.months[i];
      const days = this.daysOf(t.y, m).list;
      if (days.length === 0) {
        // cronexpr recurses on time.Date(year, month, 1, h0, m0, s0, loc).
        t = wallOf(goDate(ctx.zone, t.y, m, 1, this.hours[0], this.mins[0], this.secs[0]), ctx.zone);
        continue;
      }
      return goDate(ctx.zone, t.y, m, days[0], this.hours[0], this.mins[0], this.secs[0]);
    }
  }

  private nextDay(t: Wall, days: number[], ctx: Ctx): number | null {
    const i = lowerBound(days, t.d + 1);
    if (i === days.length) return this.nextMonth(t, ctx);
    return goDate(ctx.zone, t.y, t.mo, days[i], this.hours[0], this.mins[0], this.secs[0]);
  }

  private nextHour(t: Wall, days: number[], ctx: Ctx): number | null {
    const i = lowerBound(this.hours, t.h + 1);
    if (i === this.hours.length) return this.nextDay(t, days, ctx);
    return goDate(ctx.zone, t.y, t.mo, t.d, this.hours[i], this.mins[0], this.secs[0]);
  }

  private nextMinute(t: Wall, days: number[], ctx: Ctx): number | null {
    const i = lowerBound(this.mins, t.mi + 1);
    if (i === this.mins.length) return this.nextHour(t, days, ctx);
    return goDate(ctx.zone, t.y, t.mo, t.d, t.h, this.mins[i], this.secs[0]);
  }

  private nextSecond(t: Wall, days: number[], ctx: Ctx): number | null {
    const i = lowerBound(this.secs, t.s + 1);
    if (i === this.secs.length) return this.nextMinute(t, days, ctx);
    return goDate(ctx.zone, t.y, t.mo, t.d, t.h, t.mi, this.secs[i]);
  }
}

function mask(values: number[], size: number): Uint8Array {
  const m = new Uint8Array(size);
  for (const v of values) if (v >= 0 && v < size) m[v] = 1;
  return m;
}

/** workdayOfMonth: Saturday → Friday (or Monday the 3rd), Sunday → Monday (or Friday before the last). */
function workdayOfMonth(firstDays: number, dom: number, last: number): number {
  const dow = weekdayOfDays(firstDays + dom - 1);
  if (dow === 6) return dom > 1 ? dom - 1 : dom + 2;
  if (dow === 0) return dom < last ? dom + 1 : dom - 2;
  return dom;
}

function unixSeconds(d: Date): number {
  const ms = d instanceof Date ? d.getTime() : NaN;
  if (Number.isNaN(ms)) throw new RangeError('Invalid Date');
  return Math.floor(ms / 1000);
}

// ---------------------------------------------------------------------------------------------
// Periods

/**
 * This project's rule: `at` is in the period when its wall-clock second in the zone matches the
 * expression. Unlike gitlab-runner's rule (gitlabRunnerInPeriod) it has no off-by-one-second
 * edge (gitlab-runner issue #2170: the last second of a period reported outside) and no DST
 * artefacts. Zone: IANA name; undefined / "" / "Local" mean UTC.
 */
export function isInPeriod(expr: CronExpression, at: Date, timeZone?: string): boolean {
  return expr.matches(at, timeZone);
}

/**
 * gitlab-runner's rule, literally (helpers/timeperiod/period.go, TimePeriod.InPeriod):
 * `next := expr.Next(now.In(loc)); -1s <= now - next <= 1s`. In effect it asks whether the
 * second AFTER `at` matches (see the module comment for the edges and the DST hour).
 */
export function gitlabRunnerInPeriod(expr: CronExpression, at: Date, timeZone?: string): boolean {
  const next = expr.next(at, timeZone);
  if (next === null) return false; // Go: the zero time is centuries away
  const diff = at.getTime() - next.getTime();
  return diff >= -1000 && diff <= 1000;
}
