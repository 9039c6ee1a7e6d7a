/**
 * Property-based tests for lib/cron.ts against an independent oracle written here.
 *
 * Each generated expression comes with what it means, built while generating its text (sets
 * per field, day-of-month / day-of-week predicates, cronexpr's token reading rules), so the
 * oracle never parses a cron string. Wall clocks come straight from Intl.DateTimeFormat
 * (no caching), weekdays from Intl's `weekday` field.
 *
 *   1. matches() agrees with the oracle, in zones with and without DST, often right at DST changes.
 *   2. next() is cronexpr's Next(): the first matching wall-clock time strictly after from's
 *      wall-clock second, made an instant by Go's time.Date rule. Away from DST changes that is
 *      simply: later than `from`, matching, and no second in between matches.
 *   3. isInPeriod and gitlabRunnerInPeriod agree except at a period's edge (the second before it
 *      starts / its last second) and within an hour of a DST change.
 */
import fc from 'fast-check';
import { parseCron, isInPeriod, gitlabRunnerInPeriod } from '../lib/cron';

const ZONES = ['UTC', 'Europe/Berlin', 'America/New_York', 'Australia/Sydney', 'Asia/Kolkata'] as const;
type ZoneName = (typeof ZONES)[number];

// ------------------------------------------------------------------------------------------
// Independent wall clock (Intl, uncached)

interface WallClock {
  y: number;
  mo: number;
  d: number;
  h: number;
  mi: number;
  s: number;
  wd: number;
}
const WEEKDAYS: Record<string, number> = { Sun: 0, Mon: 1, Tue: 2, Wed: 3, Thu: 4, Fri: 5, Sat: 6 };
const formatters = new Map<string, Intl.DateTimeFormat>();
function wallClock(ms: number, zone: string): WallClock {
  let f = formatters.get(zone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone: zone,
      hourCycle: 'h23',
      weekday: 'short',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    formatters.set(zone, f);
  }
  const w: WallClock = { y: 0, mo: 0, d: 0, h: 0, mi: 0, s: 0, wd: 0 };
  for (const p of f.formatToParts(new Date(ms))) {
    if (p.type === 'year') w.y = Number(p.value);
    else if (p.type === 'month') w.mo = Number(p.value);
    else if (p.type === 'day') w.d = Number(p.value);
    else if (p.type === 'hour') w.h = Number(p.value);
    else if (p.type === 'minute') w.mi = Number(p.value);
    else if (p.type === 'second') w.s = Number(p.value);
    else if (p.type === 'weekday') w.wd = WEEKDAYS[p.value];
  }
  return w;
}
/** Seconds east of UTC at Unix second `sec`. */
function offsetAt(sec: number, zone: string): number {
  const w = wallClock(sec * 1000, zone);
  return Date.UTC(w.y, w.mo - 1, w.d, w.h, w.mi, w.s) / 1000 - sec;
}

/** DST changes (Unix seconds) per zone, 2000-2040, found by weekly sampling and bisection. */
const TRANSITIONS = new Map<string, number[]>();
const T_FROM = Date.UTC(2000, 0, 1) / 1000;
const T_TO = Date.UTC(2041, 0, 1) / 1000;
for (const zone of ZONES) {
  const list: number[] = [];
  const week = 7 * 86400;
  let prev = offsetAt(T_FROM, zone);
  for (let t = T_FROM; t < T_TO; t += week) {
    const next = offsetAt(t + week, zone);
    if (next !== prev) {
      let lo = t;
      let hi = t + week;
      while (hi - lo > 1) {
        const mid = Math.floor((lo + hi) / 2);
        if (offsetAt(mid, zone) === prev) lo = mid;
        else hi = mid;
      }
      list.push(hi);
    }
    prev = next;
  }
  TRANSITIONS.set(zone, list);
}
function transitionWithin(zone: string, fromSec: number, toSec: number): boolean {
  if (fromSec < T_FROM || toSec >= T_TO) return true; // unknown: be conservative
  return TRANSITIONS.get(zone)!.some((t) => t >= fromSec && t <= toSec);
}

// ------------------------------------------------------------------------------------------
// Expressions with their meaning

interface Tok {
  text: string;
  value: number;
}
interface Entry<P> {
  text: string;
  any: boolean;
  preds: P[];
}
type SetPred = { k: 'set'; values: number[] };
type DomPred = SetPred | { k: 'L' } | { k: 'LW' } | { k: 'W'; n: number };
type DowPred = SetPred | { k: 'L'; d: number } | { k: 'nth'; d: number; n: number };

interface Field<P> {
  text: string;
  any: boolean;
  preds: P[];
}
interface Spec {
  text: string;
  secs: Set<number>;
  mins: Set<number>;
  hours: Set<number>;
  months: Set<number>; // may contain 0: a zero-padded month token, which matches no month
  years: Set<number>;
  dom: Field<DomPred>;
  dow: Field<DowPred>;
}

const range = (a: number, b: number, step = 1) => {
  const out: number[] = [];
  for (let i = a; i <= b; i += step) out.push(i);
  return out;
};
const caseOf = (s: string) => fc.constantFrom(s, s.toUpperCase(), s[0].toUpperCase() + s.slice(1));
const padded = (v: number): fc.Arbitrary<string> => (v < 10 ? fc.constantFrom(String(v), `0${v}`) : fc.constant(String(v)));

const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];
const MONTHS_FULL = ['january', 'february', 'march', 'april', 'may', 'june', 'july', 'august', 'september', 'october', 'november', 'december'];
const DAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];
const DAYS_FULL = ['sunday', 'monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday'];

/** How cronexpr (pinned revision) reads a value token of each field. */
const plainTok = (v: number) => padded(v).map((text) => ({ text, value: v }));
const monthTok = (zeroPad: boolean) => (v: number) =>
  fc.oneof(
    fc.constant({ text: String(v), value: v }),
    caseOf(MONTHS[v - 1]).map((text) => ({ text, value: v })),
    caseOf(MONTHS_FULL[v - 1]).map((text) => ({ text, value: v })),
    ...(zeroPad && v < 10 ? [fc.constant({ text: `0${v}`, value: 0 })] : []),
  );
const dowTok = (v: number) =>
  fc.oneof(
    fc.constant({ text: String(v), value: v % 7 }), // 7 is Sunday
    ...(v < 7 ? [caseOf(DAYS[v]).map((text) => ({ text, value: v })), caseOf(DAYS_FULL[v]).map((text) => ({ text, value: v }))] : []),
    fc.constant({ text: `0${v}`, value: 0 }), // "00".."07" all read as 0
  );

const stepArb = fc.oneof({ weight: 3, arbitrary: fc.integer({ min: 1, max: 7 }) }, { weight: 1, arbitrary: fc.integer({ min: 1, max: 59 }) }).chain(padded);

/** Generic entries: `*`, `?`, n, a-b, *\/s, a/s, a-b/s, with cronexpr's reading (min..max for the field). */
function genericEntry(min: number, max: number, tokMax: number, tok: (v: number) => fc.Arbitrary<Tok>, tokMin = min): fc.Arbitrary<Entry<SetPred>> {
  const val = fc.integer({ min: tokMin, max: tokMax });
  const ordered = fc.tuple(val, val, fc.integer({ min: 0, max: 7 })).map(([a, b, r]) => (r === 0 ? [Math.max(a, b), Math.min(a, b)] : [Math.min(a, b), Math.max(a, b)]));
  const set = (text: string, values: number[]): Entry<SetPred> => ({ text, any: false, preds: [{ k: 'set', values }] });
  return fc.oneof(
    { weight: 2, arbitrary: fc.constantFrom('*', '?').map((text) => ({ text, any: true, preds: [] as SetPred[] })) },
    { weight: 4, arbitrary: val.chain(tok).map((t) => set(t.text, [t.value])) },
    {
      weight: 3,
      arbitrary: ordered.chain(([a, b]) => fc.tuple(tok(a), tok(b))).map(([a, b]) => set(`${a.text}-${b.text}`, range(a.value, b.value))),
    },
    { weight: 2, arbitrary: stepArb.map((s) => set(`*/${s}`, range(min, max, Number(s)))) },
    { weight: 1, arbitrary: fc.tuple(val.chain(tok), stepArb).map(([a, s]) => set(`${a.text}/${s}`, range(a.value, max, Number(s)))) },
    {
      weight: 1,
      arbitrary: fc
        .tuple(ordered.chain(([a, b]) => fc.tuple(tok(a), tok(b))), stepArb)
        .map(([[a, b], s]) => set(`${a.text}-${b.text}/${s}`, range(a.value, b.value, Number(s)))),
    },
  );
}

function field<P>(entry: fc.Arbitrary<Entry<P>>, maxLength = 3): fc.Arbitrary<Field<P>> {
  return fc.array(entry, { minLength: 1, maxLength }).map((es) => ({
    text: es.map((e) => e.text).join(','),
    any: es.some((e) => e.any),
    preds: es.flatMap((e) => e.preds),
  }));
}

/** The values a generic field selects (cronexpr: a `*` anywhere means every value). */
function values(f: Field<SetPred>, min: number, max: number): Set<number> {
  return f.any ? new Set(range(min, max)) : new Set(f.preds.flatMap((p) => p.values));
}

const domEntry: fc.Arbitrary<Entry<DomPred>> = fc.oneof(
  { weight: 6, arbitrary: genericEntry(1, 31, 31, plainTok) as fc.Arbitrary<Entry<DomPred>> },
  { weight: 1, arbitrary: fc.constantFrom('L', 'l').map((text) => ({ text, any: false, preds: [{ k: 'L' } as DomPred] })) },
  { weight: 1, arbitrary: fc.constantFrom('LW', 'lw', 'Lw').map((text) => ({ text, any: false, preds: [{ k: 'LW' } as DomPred] })) },
  {
    weight: 1,
    arbitrary: fc
      .integer({ min: 1, max: 31 })
      .chain((n) => fc.tuple(plainTok(n), fc.constantFrom('W', 'w')))
      .map(([t, w]) => ({ text: t.text + w, any: false, preds: [{ k: 'W', n: t.value } as DomPred] })),
  },
);
const dowEntry: fc.Arbitrary<Entry<DowPred>> = fc.oneof(
  { weight: 6, arbitrary: genericEntry(0, 6, 7, dowTok) as fc.Arbitrary<Entry<DowPred>> },
  {
    weight: 1,
    arbitrary: fc
      .integer({ min: 0, max: 7 })
      .chain((d) => fc.tuple(dowTok(d), fc.constantFrom('L', 'l')))
      .map(([t, l]) => ({ text: t.text + l, any: false, preds: [{ k: 'L', d: t.value } as DowPred] })),
  },
  {
    weight: 1,
    arbitrary: fc
      .tuple(fc.integer({ min: 0, max: 7 }).chain(dowTok), fc.integer({ min: 1, max: 5 }))
      .map(([t, n]) => ({ text: `${t.text}#${n}`, any: false, preds: [{ k: 'nth', d: t.value, n } as DowPred] })),
  },
);

const genericField = (min: number, max: number, tok: (v: number) => fc.Arbitrary<Tok>, tokMax = max) =>
  field(genericEntry(min, max, tokMax, tok)).filter((f) => values(f, min, max).size > 0); // empty: a CronSyntaxError (tested elsewhere)
const yearField = fc.oneof(
  { weight: 4, arbitrary: fc.constant<Field<SetPred>>({ text: '*', any: true, preds: [] }) },
  { weight: 1, arbitrary: field(genericEntry(1970, 2099, 2060, plainTok, 1995), 2) },
);

/** A whole expression in one of the 7-, 6- and 5-field forms. `zeroPadMonths`: allow "01".."09" (month 0). */
function spec(zeroPadMonths: boolean): fc.Arbitrary<Spec> {
  return fc
    .record({
      form: fc.constantFrom(7, 7, 7, 6, 5),
      sec: fc.oneof({ weight: 2, arbitrary: fc.constant<Field<SetPred>>({ text: '*', any: true, preds: [] }) }, { weight: 3, arbitrary: genericField(0, 59, plainTok) }),
      min: fc.oneof({ weight: 2, arbitrary: fc.constant<Field<SetPred>>({ text: '*', any: true, preds: [] }) }, { weight: 3, arbitrary: genericField(0, 59, plainTok) }),
      hour: genericField(0, 23, plainTok),
      dom: field(domEntry),
      month: fc.oneof({ weight: 1, arbitrary: fc.constant<Field<SetPred>>({ text: '*', any: true, preds: [] }) }, { weight: 1, arbitrary: genericField(1, 12, monthTok(zeroPadMonths)) }),
      dow: field(dowEntry),
      year: yearField,
    })
    .map((r) => {
      const sec = r.form === 7 ? r.sec : { text: '0', any: false, preds: [{ k: 'set' as const, values: [0] }] };
      const year = r.form === 5 ? { text: '*', any: true, preds: [] } : r.year;
      const fields = [r.min.text, r.hour.text, r.dom.text, r.month.text, r.dow.text];
      if (r.form === 7) fields.unshift(sec.text);
      if (r.form !== 5) fields.push(year.text);
      return {
        text: fields.join(' '),
        secs: values(sec, 0, 59),
        mins: values(r.min, 0, 59),
        hours: values(r.hour, 0, 23),
        months: values(r.month, 1, 12),
        years: values(year, 1970, 2099),
        dom: r.dom,
        dow: r.dow,
      };
    })
    .filter((s) => [...s.years].some((y) => y >= 1970 && y <= 2099)); // the rest never match (tested elsewhere)
}

// ------------------------------------------------------------------------------------------
// The oracle

const daysIn = (y: number, m: number) => new Date(Date.UTC(y, m, 0)).getUTCDate();
const weekdayOf = (y: number, m: number, d: number) => new Date(Date.UTC(y, m - 1, d)).getUTCDay();
/** Nearest weekday to day n, staying inside the month (cronexpr's workdayOfMonth). */
function nearestWeekday(y: number, m: number, n: number, last: number): number {
  const wd = weekdayOf(y, m, n);
  if (wd === 6) return n > 1 ? n - 1 : n + 2;
  if (wd === 0) return n < last ? n + 1 : n - 2;
  return n;
}

function dayMatches(s: Spec, y: number, m: number, d: number, wd: number): boolean {
  const domR = !s.dom.any;
  const dowR = !s.dow.any;
  if (!domR && !dowR) return true;
  const last = daysIn(y, m);
  const dom =
    domR &&
    s.dom.preds.some((p) => {
      switch (p.k) {
        case 'set':
          return p.values.includes(d);
        case 'L':
          return d === last;
        case 'LW':
          return d === nearestWeekday(y, m, last, last);
        case 'W':
          return p.n <= last && d === nearestWeekday(y, m, p.n, last);
      }
    });
  const dow =
    dowR &&
    s.dow.preds.some((p) => {
      switch (p.k) {
        case 'set':
          return p.values.includes(wd);
        case 'L':
          return wd === p.d && d + 7 > last;
        case 'nth':
          return wd === p.d && Math.floor((d - 1) / 7) + 1 === p.n;
      }
    });
  return dom || dow;
}

function oracleMatches(s: Spec, ms: number, zone: string): boolean {
  const w = wallClock(ms, zone);
  return s.years.has(w.y) && s.months.has(w.mo) && s.hours.has(w.h) && s.mins.has(w.mi) && s.secs.has(w.s) && dayMatches(s, w.y, w.mo, w.d, w.wd);
}

/** Go's time.Date for a wall clock given as "seconds as if UTC". */
function goDate(naive: number, zone: string): number {
  const off = offsetAt(naive, zone);
  return off === 0 ? naive : naive - offsetAt(naive - off, zone);
}

/** cronexpr's Next(): the first matching wall clock after from's wall-clock second, via goDate. */
function oracleNext(s: Spec, fromMs: number, zone: string): number | null {
  const w = wallClock(Math.floor(fromMs / 1000) * 1000, zone);
  const start = Date.UTC(w.y, w.mo - 1, w.d, w.h, w.mi, w.s) / 1000;
  const hours = [...s.hours].sort((a, b) => a - b);
  const mins = [...s.mins].sort((a, b) => a - b);
  const secs = [...s.secs].sort((a, b) => a - b);
  const end = Date.UTC(2100, 0, 1) / 86400000;
  let day = Math.floor(start / 86400);
  while (day < end) {
    const dt = new Date(day * 86400000);
    const y = dt.getUTCFullYear();
    const m = dt.getUTCMonth() + 1;
    if (!s.years.has(y)) {
      day = Date.UTC(y + 1, 0, 1) / 86400000;
      continue;
    }
    if (!s.months.has(m)) {
      day = Date.UTC(y, m, 1) / 86400000;
      continue;
    }
    if (dayMatches(s, y, m, dt.getUTCDate(), dt.getUTCDay())) {
      for (const h of hours) {
        if (day * 86400 + h * 3600 + 3599 <= start) continue;
        for (const mi of mins) {
          if (day * 86400 + h * 3600 + mi * 60 + 59 <= start) continue;
          for (const sec of secs) {
            const naive = day * 86400 + h * 3600 + mi * 60 + sec;
            if (naive > start) return goDate(naive, zone);
          }
        }
      }
    }
    day++;
  }
  return null;
}

// ------------------------------------------------------------------------------------------
// Instants

const uniform = fc.integer({ min: Date.UTC(2000, 0, 1), max: Date.UTC(2040, 11, 31) });
const nearDst = fc
  .tuple(fc.constantFrom('Europe/Berlin', 'America/New_York', 'Australia/Sydney'), fc.nat(), fc.integer({ min: -3 * 3600, max: 3 * 3600 }), fc.integer({ min: 0, max: 999 }))
  .map(([zone, i, delta, ms]) => {
    const list = TRANSITIONS.get(zone)!;
    return (list[i % list.length] + delta) * 1000 + ms;
  });
/** Often right at a minute or half-hour boundary, where periods start and end. */
const instant = fc
  .tuple(fc.oneof({ weight: 3, arbitrary: uniform }, { weight: 2, arbitrary: nearDst }), fc.constantFrom(0, 60, 1800), fc.integer({ min: -2, max: 1 }), fc.integer({ min: 0, max: 999 }))
  .map(([ms, snap, delta, frac]) => (snap === 0 ? ms : (Math.floor(ms / 1000 / snap) * snap + delta) * 1000 + frac));

const zone = fc.constantFrom<ZoneName>(...ZONES);

// ------------------------------------------------------------------------------------------

describe('cron properties', () => {
  it('generated expressions parse', () => {
    fc.assert(
      fc.property(spec(true), (s) => {
        expect(parseCron(s.text).source).toBe(s.text);
      }),
      { numRuns: 500 },
    );
  });

  it('matches() agrees with the brute-force oracle (every zone, DST changes included)', () => {
    fc.assert(
      fc.property(spec(true), fc.array(instant, { minLength: 1, maxLength: 4 }), (s, instants) => {
        const e = parseCron(s.text);
        for (const ms of instants) {
          for (const z of ZONES) {
            const at = new Date(ms);
            const expected = oracleMatches(s, ms, z);
            if (e.matches(at, z) !== expected) throw new Error(`${s.text} at ${at.toISOString()} in ${z}: expected ${expected}`);
            expect(isInPeriod(e, at, z)).toBe(expected);
          }
        }
      }),
      { numRuns: 300 },
    );
  });

  it("next() is cronexpr's Next() under Go's time.Date rules", () => {
    fc.assert(
      fc.property(spec(false), instant, zone, (s, ms, z) => {
        const e = parseCron(s.text);
        const got = e.next(new Date(ms), z);
        const want = oracleNext(s, ms, z);
        if ((got === null ? null : got.getTime() / 1000) !== want) {
          throw new Error(`${s.text} from ${new Date(ms).toISOString()} in ${z}: got ${got?.toISOString()}, want ${want === null ? null : new Date(want * 1000).toISOString()}`);
        }
      }),
      { numRuns: 800 },
    );
  });

  it('away from DST changes, next(t) is the first matching second after t', () => {
    fc.assert(
      fc.property(spec(false), instant, zone, (s, ms, z) => {
        const e = parseCron(s.text);
        const next = e.next(new Date(ms), z);
        if (next === null) {
          expect(oracleNext(s, ms, z)).toBeNull();
          return;
        }
        const n = next.getTime();
        const t = Math.floor(ms / 1000);
        if (transitionWithin(z, t - 7200, n / 1000 + 7200)) return;
        expect(n).toBeGreaterThan(ms);
        expect(n % 1000).toBe(0);
        expect(e.matches(next, z)).toBe(true);
        expect(oracleMatches(s, n, z)).toBe(true);
        // consistent from the second before it
        expect(e.next(new Date(n - 1000), z)?.getTime()).toBe(n);
        // and no second in between matches (checked up to 3 hours, with a constant offset)
        const off = offsetAt(t, z);
        const upTo = Math.min(n / 1000, t + 3 * 3600);
        let lastDay = NaN;
        let dayOk = false;
        for (let sec = t + 1; sec < upTo; sec++) {
          const naive = sec + off;
          const day = Math.floor(naive / 86400);
          if (day !== lastDay) {
            const dt = new Date(day * 86400000);
            const y = dt.getUTCFullYear();
            const m = dt.getUTCMonth() + 1;
            dayOk = s.years.has(y) && s.months.has(m) && dayMatches(s, y, m, dt.getUTCDate(), dt.getUTCDay());
            lastDay = day;
          }
          if (!dayOk) {
            sec = (day + 1) * 86400 - off - 1;
            continue;
          }
          const sod = naive - day * 86400;
          if (s.hours.has(Math.floor(sod / 3600)) && s.mins.has(Math.floor(sod / 60) % 60) && s.secs.has(sod % 60)) {
            throw new Error(`${s.text} in ${z}: ${new Date(sec * 1000).toISOString()} matches before next() = ${next.toISOString()}`);
          }
        }
      }),
      { numRuns: 300 },
    );
  });

  it('isInPeriod and gitlabRunnerInPeriod agree except at period edges and within an hour of a DST change', () => {
    fc.assert(
      fc.property(spec(false), instant, zone, (s, ms, z) => {
        const e = parseCron(s.text);
        const at = new Date(ms);
        const ours = isInPeriod(e, at, z);
        const theirs = gitlabRunnerInPeriod(e, at, z);
        const t = Math.floor(ms / 1000);
        const nearDstChange = transitionWithin(z, t - 3600 - 2, t + 3600 + 2);
        const nextSecond = oracleMatches(s, (t + 1) * 1000, z);
        // Disagreement only at a period's edge (this second and the next differ) or near a DST change.
        if (ours !== theirs && ours === nextSecond && !nearDstChange) {
          throw new Error(`${s.text} at ${at.toISOString()} in ${z}: ours ${ours}, gitlab-runner ${theirs}, not at an edge`);
        }
        // Away from DST changes, gitlab-runner's rule is exactly "the following second matches".
        if (!nearDstChange) expect(theirs).toBe(nextSecond);
      }),
      { numRuns: 1000 },
    );
  });
});
