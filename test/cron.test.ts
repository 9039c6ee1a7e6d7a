/**
 * lib/cron.ts: table tests taken from gorhill/cronexpr's cronexpr_test.go, gitlab-runner's
 * helpers/timeperiod/period_test.go and Go's time package (dateTests), plus syntax errors,
 * the quirks of the cronexpr revision gitlab-runner pins, and the DST behaviour of both
 * "in period" rules. Property-based tests live in cron.property.test.ts.
 */
import { parseCron, isValidTimeZone, isInPeriod, gitlabRunnerInPeriod, CronSyntaxError } from '../lib/cron';

/** "2013-01-01 00:00:00" (UTC) → Date */
const utc = (s: string) => new Date(s.replace(' ', 'T') + (s.length === 16 ? ':00Z' : 'Z'));
const fmt = (d: Date | null) => (d === null ? null : d.toISOString().replace('T', ' ').slice(0, 19));
const unix = (n: number) => new Date(n * 1000);

describe('cronexpr_test.go: Next()', () => {
  // [expression, [from, expected next]...], all in UTC (time.Parse without a zone).
  const crontests: Array<[string, Array<[string, string]>]> = [
    [
      '* * * * * * *',
      [
        ['2013-01-01 00:00:00', '2013-01-01 00:00:01'],
        ['2013-01-01 00:00:59', '2013-01-01 00:01:00'],
        ['2013-01-01 00:59:59', '2013-01-01 01:00:00'],
        ['2013-01-01 23:59:59', '2013-01-02 00:00:00'],
        ['2013-02-28 23:59:59', '2013-03-01 00:00:00'],
        ['2016-02-28 23:59:59', '2016-02-29 00:00:00'],
        ['2012-12-31 23:59:59', '2013-01-01 00:00:00'],
      ],
    ],
    [
      '*/5 * * * * * *',
      [
        ['2013-01-01 00:00:00', '2013-01-01 00:00:05'],
        ['2013-01-01 00:00:59', '2013-01-01 00:01:00'],
        ['2013-01-01 00:59:59', '2013-01-01 01:00:00'],
        ['2013-01-01 23:59:59', '2013-01-02 00:00:00'],
        ['2013-02-28 23:59:59', '2013-03-01 00:00:00'],
        ['2016-02-28 23:59:59', '2016-02-29 00:00:00'],
        ['2012-12-31 23:59:59', '2013-01-01 00:00:00'],
      ],
    ],
    [
      '* * * * *',
      [
        ['2013-01-01 00:00:00', '2013-01-01 00:01:00'],
        ['2013-01-01 00:00:59', '2013-01-01 00:01:00'],
        ['2013-01-01 00:59:00', '2013-01-01 01:00:00'],
        ['2013-01-01 23:59:00', '2013-01-02 00:00:00'],
        ['2013-02-28 23:59:00', '2013-03-01 00:00:00'],
        ['2016-02-28 23:59:00', '2016-02-29 00:00:00'],
        ['2012-12-31 23:59:00', '2013-01-01 00:00:00'],
      ],
    ],
    [
      '17-43/5 * * * *',
      [
        ['2013-01-01 00:00:00', '2013-01-01 00:17:00'],
        ['2013-01-01 00:16:59', '2013-01-01 00:17:00'],
        ['2013-01-01 00:30:00', '2013-01-01 00:32:00'],
        ['2013-01-01 00:50:00', '2013-01-01 01:17:00'],
        ['2013-01-01 23:50:00', '2013-01-02 00:17:00'],
        ['2013-02-28 23:50:00', '2013-03-01 00:17:00'],
        ['2016-02-28 23:50:00', '2016-02-29 00:17:00'],
        ['2012-12-31 23:50:00', '2013-01-01 00:17:00'],
      ],
    ],
    [
      '15-30/4,55 * * * *',
      [
        ['2013-01-01 00:00:00', '2013-01-01 00:15:00'],
        ['2013-01-01 00:16:00', '2013-01-01 00:19:00'],
        ['2013-01-01 00:30:00', '2013-01-01 00:55:00'],
        ['2013-01-01 00:55:00', '2013-01-01 01:15:00'],
        ['2013-01-01 23:55:00', '2013-01-02 00:15:00'],
        ['2013-02-28 23:55:00', '2013-03-01 00:15:00'],
        ['2016-02-28 23:55:00', '2016-02-29 00:15:00'],
        ['2012-12-31 23:54:00', '2012-12-31 23:55:00'],
        ['2012-12-31 23:55:00', '2013-01-01 00:15:00'],
      ],
    ],
    // Days of week
    [
      '0 0 * * MON',
      [
        ['2013-01-01 00:00:00', '2013-01-07 00:00:00'],
        ['2013-01-28 00:00:00', '2013-02-04 00:00:00'],
        ['2013-12-30 00:30:00', '2014-01-06 00:00:00'],
      ],
    ],
    [
      '0 0 * * friday',
      [
        ['2013-01-01 00:00:00', '2013-01-04 00:00:00'],
        ['2013-01-28 00:00:00', '2013-02-01 00:00:00'],
        ['2013-12-30 00:30:00', '2014-01-03 00:00:00'],
      ],
    ],
    [
      '0 0 * * 6,7',
      [
        ['2013-01-01 00:00:00', '2013-01-05 00:00:00'],
        ['2013-01-28 00:00:00', '2013-02-02 00:00:00'],
        ['2013-12-30 00:30:00', '2014-01-04 00:00:00'],
      ],
    ],
    // Specific days of week
    ['0 0 * * 6#5', [['2013-09-02 00:00:00', '2013-11-30 00:00:00']]],
    // Work day of month
    [
      '0 0 14W * *',
      [
        ['2013-03-31 00:00:00', '2013-04-15 00:00:00'],
        ['2013-08-31 00:00:00', '2013-09-13 00:00:00'],
      ],
    ],
    // Work day of month -- end of month
    [
      '0 0 30W * *',
      [
        ['2013-03-02 00:00:00', '2013-03-29 00:00:00'],
        ['2013-06-02 00:00:00', '2013-06-28 00:00:00'],
        ['2013-09-02 00:00:00', '2013-09-30 00:00:00'],
        ['2013-11-02 00:00:00', '2013-11-29 00:00:00'],
      ],
    ],
    // Last day of month
    [
      '0 0 L * *',
      [
        ['2013-09-02 00:00:00', '2013-09-30 00:00:00'],
        ['2014-01-01 00:00:00', '2014-01-31 00:00:00'],
        ['2014-02-01 00:00:00', '2014-02-28 00:00:00'],
        ['2016-02-15 00:00:00', '2016-02-29 00:00:00'],
      ],
    ],
    // Last work day of month
    [
      '0 0 LW * *',
      [
        ['2013-09-02 00:00:00', '2013-09-30 00:00:00'],
        ['2013-11-02 00:00:00', '2013-11-29 00:00:00'],
        ['2014-08-15 00:00:00', '2014-08-29 00:00:00'],
      ],
    ],
  ];
  const cases = crontests.flatMap(([expr, times]) => times.map(([from, next]) => [expr, from, next] as const));

  it.each(cases)('%s: Next(%s) = %s', (expr, from, next) => {
    const e = parseCron(expr);
    expect(fmt(e.next(utc(from)))).toBe(next);
    expect(fmt(e.next(utc(from), 'UTC'))).toBe(next);
    expect(e.matches(utc(next))).toBe(true);
  });

  it('TestZero: no match after the last listed year is null (Go: the zero time)', () => {
    expect(parseCron('* * * * * 1980').next(utc('2013-08-31 00:00:00'))).toBeNull();
    expect(fmt(parseCron('* * * * * 2050').next(utc('2013-08-31 00:00:00')))).toBe('2050-01-01 00:00:00');
  });

  const nextN = (expr: string, from: Date, n: number) => {
    const out: string[] = [];
    let t: Date | null = from;
    for (let i = 0; i < n && t; i++) {
      t = parseCron(expr).next(t);
      if (t) out.push(fmt(t)!);
    }
    return out;
  };

  it('TestNextN: 0 0 * * 6#5', () => {
    expect(nextN('0 0 * * 6#5', utc('2013-09-02 08:44:30'), 5)).toEqual([
      '2013-11-30 00:00:00',
      '2014-03-29 00:00:00',
      '2014-05-31 00:00:00',
      '2014-08-30 00:00:00',
      '2014-11-29 00:00:00',
    ]);
  });

  it('TestNextN_every5min', () => {
    expect(nextN('*/5 * * * *', utc('2013-09-02 08:44:32'), 5)).toEqual([
      '2013-09-02 08:45:00',
      '2013-09-02 08:50:00',
      '2013-09-02 08:55:00',
      '2013-09-02 09:00:00',
      '2013-09-02 09:05:00',
    ]);
  });

  it('TestInterval_Interval60Issue (#16): steps cronexpr cannot read are rejected (the pinned revision loops forever on them)', () => {
    for (const e of ['*/60 * * * * *', '*/61 * * * * *', '2/60 * * * * *', '2-20/61 * * * * *']) {
      expect(() => parseCron(e)).toThrow(CronSyntaxError);
      expect(() => parseCron(e)).toThrow(/invalid step in minute field/);
    }
  });

  it('the benchmark expressions of cronexpr_test.go all parse', () => {
    for (const e of [
      '* * * * *',
      '@hourly',
      '@weekly',
      '@yearly',
      '30 3 15W 3/3 *',
      '30 0 0 1-31/5 Oct-Dec * 2000,2006,2008,2013-2015',
      '0 0 0 * Feb-Nov/2 thu#3 2000-2050',
    ]) {
      const p = parseCron(e);
      expect(p.source).toBe(e);
      expect(p.warnings).toEqual([]);
    }
  });
});

describe('field forms, aliases and syntax cronexpr accepts', () => {
  const from = utc('2024-05-15 10:20:30'); // a Wednesday

  it.each([
    // 5 fields: second 0 is prepended and any year appended
    ['0 12 * * *', '2024-05-15 12:00:00'],
    // 6 fields: second 0 prepended; the 6th field is the YEAR
    ['0 12 * * * 2025', '2025-01-01 12:00:00'],
    // 7 fields
    ['30 0 12 * * * *', '2024-05-15 12:00:30'],
    ['@yearly', '2025-01-01 00:00:00'],
    ['@annually', '2025-01-01 00:00:00'],
    ['@monthly', '2024-06-01 00:00:00'],
    ['@weekly', '2024-05-19 00:00:00'],
    ['@daily', '2024-05-16 00:00:00'],
    ['@hourly', '2024-05-15 11:00:00'],
    ['* * 9-17 * * mon-fri *', '2024-05-15 10:20:31'],
    ['0 0 0 ? * ? *', '2024-05-16 00:00:00'],
    ['0 0 0 * JAN,Jul * *', '2024-07-01 00:00:00'],
    ['0 0 0 * january-february * *', '2025-01-01 00:00:00'],
    ['0 0 0 1 * * 2024/2', '2024-06-01 00:00:00'],
    ['00 05 09 * * * *', '2024-05-16 09:05:00'], // leading zeros on numbers are fine (except months)
    ['0\t0  0 *\n* * *', '2024-05-16 00:00:00'], // tabs / newlines / runs of spaces separate fields
    ['0 0 0 1,,15 * * *', '2024-06-01 00:00:00'], // empty list entries are skipped
    ['0 0 12 * * * * extra fields', '2024-05-15 12:00:00'], // fields after the 7th are ignored
    ['*,bogus 0 0 * * * *', '2024-05-16 00:00:00'], // cronexpr stops reading a field at its first `*`
    ['0 0 0 * * 5L *', '2024-05-31 00:00:00'], // last Friday
    ['0 0 0 * * fri#2 *', '2024-06-14 00:00:00'], // second Friday
    ['0 0 0 * * FriDay#1 *', '2024-06-07 00:00:00'],
    ['0 0 0 1W * * *', '2024-06-03 00:00:00'], // June 1st 2024 is a Saturday: nearest weekday without leaving June is Monday 3rd
    ['0 0 0 lw * * *', '2024-05-31 00:00:00'],
    ['0 0 0 l * * *', '2024-05-31 00:00:00'],
    ['0 0 0 13 * fri *', '2024-05-17 00:00:00'], // both restricted: 13th OR Friday
    ['0 0 0 */1 * fri *', '2024-05-16 00:00:00'], // `*/1` counts as restricted, so every day matches
    ['0 0 0 * * */2 *', '2024-05-16 00:00:00'], // Sun, Tue, Thu, Sat
  ])('%j from Wed 2024-05-15 10:20:30 → %s', (expr, next) => {
    expect(fmt(parseCron(expr).next(from))).toBe(next);
  });

  it('reads the ignored extra fields into a warning', () => {
    expect(parseCron('0 0 12 * * * * extra').warnings).toEqual([expect.stringMatching(/after the 7th are ignored/)]);
  });
});

describe('quirks of the cronexpr revision gitlab-runner pins (f0984319b442)', () => {
  it('zero-padded months are month 0, which Go turns into December of the previous year (cronexpr issue #31)', () => {
    // Reported as: "10 20 09 02 *" at 2018-01-11 16:04:01 runs 2018-12-09 20:10:00, not 2018-02-09.
    const e = parseCron('10 20 09 02 *');
    expect(fmt(e.next(utc('2018-01-11 16:04:01')))).toBe('2018-12-09 20:10:00');
    expect(e.warnings).toEqual([expect.stringMatching(/'02' .* month 0/)]);
    expect(e.matches(utc('2018-02-09 20:10:00'))).toBe(false);
    // cronexpr_test.go's "Zero leading values" case was written for a later revision
    // ("Wed 2013-07-03 01:00"); the pinned one gives December 3rd, sometimes in the past.
    const z = parseCron('00 01 03 07 *');
    expect(fmt(z.next(utc('2013-01-01 00:00:00')))).toBe('2013-12-03 01:00:00');
    expect(fmt(z.next(utc('2013-12-30 00:30:00')))).toBe('2013-12-03 01:00:00');
    expect(fmt(z.next(utc('2015-07-03 02:01:00')))).toBe('2015-12-03 01:00:00');
  });

  it('zero-padded days of week are Sunday; 7 is Sunday so ranges ending in 7 run backwards', () => {
    const sunday = utc('2024-05-19 00:00:00');
    const friday = utc('2024-05-17 00:00:00');
    expect(parseCron('0 0 * * 05').matches(sunday)).toBe(true);
    expect(parseCron('0 0 * * 05').matches(friday)).toBe(false);
    expect(parseCron('0 0 * * 05').warnings).toEqual([expect.stringMatching(/'05'.*Sunday/)]);
    expect(parseCron('0 0 * * 0-7').matches(sunday)).toBe(true);
    expect(parseCron('0 0 * * 0-7').matches(friday)).toBe(false);
    expect(parseCron('0 0 * * 0-7').warnings).toEqual([expect.stringMatching(/Sunday only/)]);
    const never = parseCron('0 0 * * 1-7');
    expect(never.next(friday)).toBeNull();
    expect(never.warnings).toEqual([expect.stringMatching(/reversed range/)]);
    expect(parseCron('0 0 * * 7').matches(sunday)).toBe(true);
  });

  it('a reversed range contributes nothing; a step beyond the field selects its first value only', () => {
    const e = parseCron('0 0 1,17-9 * * * *');
    expect(fmt(e.next(utc('2024-05-15 10:00:00')))).toBe('2024-05-16 01:00:00');
    expect(e.warnings).toEqual([expect.stringMatching(/reversed range/)]);
    const s = parseCron('0 0 */30 * * * *'); // later cronexpr revisions reject this; the pinned one reads it as hour 0
    expect(fmt(s.next(utc('2024-05-15 10:00:00')))).toBe('2024-05-16 00:00:00');
    expect(s.warnings).toEqual([expect.stringMatching(/larger than 23/)]);
    expect(fmt(parseCron('0 0 0 * * * */2000').next(utc('2024-05-15 10:00:00')))).toBeNull(); // 1970 only
  });

  it('an empty day or year selection never matches (cronexpr returns the zero time)', () => {
    expect(parseCron('0 0 0 31-1 * * *').next(utc('2024-05-15 10:00:00'))).toBeNull();
    expect(parseCron('0 0 0 * * * 2050-2040').next(utc('2024-05-15 10:00:00'))).toBeNull();
    expect(parseCron('0 0 0 30 2 * *').next(utc('2024-05-15 10:00:00'))).toBeNull();
    expect(fmt(parseCron('0 0 0 29 2 * *').next(utc('2024-05-15 10:00:00')))).toBe('2028-02-29 00:00:00');
  });

  it('Go upper-cases İ to i, so "aprİl" is April; a vertical tab is not a field separator', () => {
    expect(fmt(parseCron('0 0 0 1 aprİl * *').next(utc('2024-05-15 10:00:00')))).toBe('2025-04-01 00:00:00');
    expect(() => parseCron('0\v0 * * * *')).toThrow(/syntax error in minute field/);
  });

  it('instants before 1970 look for 1970; after 2099 there is nothing', () => {
    expect(fmt(parseCron('@yearly').next(new Date('1800-06-01T00:00:00Z')))).toBe('1970-01-01 00:00:00');
    expect(fmt(parseCron('@yearly').next(new Date('1969-06-01T00:00:00Z')))).toBe('1970-01-01 00:00:00');
    expect(fmt(parseCron('@yearly').next(new Date('2099-06-01T00:00:00Z')))).toBeNull();
    expect(parseCron('@yearly').next(new Date('3000-01-01T00:00:00Z'))).toBeNull();
    expect(parseCron('* * * * * * *').matches(new Date('1969-12-31T23:59:59Z'))).toBe(false);
    expect(parseCron('* * * * * * *').matches(new Date('1970-01-01T00:00:00Z'))).toBe(true);
  });
});

describe('syntax errors name the field and what it accepts', () => {
  it.each([
    ['* * * *', /missing field\(s\).* 4 field\(s\); expected 5/],
    ['', /missing field\(s\)/],
    ['@reboot', /missing field\(s\)/],
    ['60 * * * * * *', /syntax error in second field: '60' \(accepted: 0-59/],
    ['* 60 * * * * *', /syntax error in minute field: '60'/],
    ['* * 24 * * * *', /syntax error in hour field: '24' \(accepted: 0-23/],
    ['* * * 0 * * *', /syntax error in day-of-month field: '0' \(accepted: 1-31, L/],
    ['* * * 32 * * *', /syntax error in day-of-month field: '32'/],
    ['0 0 0 13 * fri', /syntax error in day-of-month field: '0'/], // 6 fields are minute..year, not second..day-of-week
    ['* * * W * * *', /syntax error in day-of-month field: 'W'/],
    ['* * * 1L * * *', /syntax error in day-of-month field: '1L'/],
    ['* * * * 0 * *', /syntax error in month field: '0' \(accepted: 1-12, jan-dec/],
    ['* * * * 13 * *', /syntax error in month field: '13'/],
    ['* * * * sept * *', /syntax error in month field: 'sept'/],
    ['* * * * * 8 *', /syntax error in day-of-week field: '8' \(accepted: 0-7/],
    ['* * * * * mon#6 *', /syntax error in day-of-week field: 'mon#6'/],
    ['* * * * * L *', /syntax error in day-of-week field: 'L'/],
    ['* * * * * mon-fri-sat *', /syntax error in day-of-week field/],
    ['* * * * * * 1969', /syntax error in year field: '1969' \(accepted: 1970-2099/],
    ['* * * * * * 2100', /syntax error in year field: '2100'/],
    [', * * * * * *', /missing value in second field/],
    ['bogus,* * * * * * *', /syntax error in second field: 'bogus'/],
    ['*/0 * * * * * *', /invalid step in second field: '\*\/0'/],
    ['* 5/100 * * * * *', /invalid step in minute field: '5\/100'/],
    ['* * 1-5/0 * * * *', /invalid step in hour field/],
    ['* * * */0 * * *', /invalid step in day-of-month field/],
    ['* * * * * */0 *', /invalid step in day-of-week field/],
    ['* * 17-9 * * * *', /hour field selects nothing/],
    ['30-10 * * * * * *', /second field selects nothing/],
    ['* * * * 12-1 * *', /month field selects nothing/],
    ['* * * * 3-01 * *', /month field selects nothing/],
  ])('%j', (expr, message) => {
    let err: unknown;
    try {
      parseCron(expr);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(CronSyntaxError);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toMatch(message);
  });

  it('sets .field on field errors', () => {
    try {
      parseCron('* * * * 13 * *');
      throw new Error('no error');
    } catch (e) {
      expect((e as CronSyntaxError).field).toBe('month');
      expect((e as CronSyntaxError).name).toBe('CronSyntaxError');
    }
  });
});

describe('time zones', () => {
  it('isValidTimeZone', () => {
    for (const z of ['UTC', 'Europe/Berlin', 'America/New_York', 'Australia/Sydney', 'Asia/Kolkata', 'America/Argentina/Buenos_Aires', 'Etc/GMT+5', 'US/Pacific', '', 'Local']) {
      expect(isValidTimeZone(z)).toBe(true);
    }
    // gitlab-runner's TestInvalidTimezone, and others Go's LoadLocation (on Linux) refuses
    for (const z of ['InvalidTimezone/String', 'Mars/Base', 'europe/berlin', 'utc', '+01:00', '../etc/passwd', '/etc/localtime', 'Europe/', ' UTC']) {
      expect(isValidTimeZone(z)).toBe(false);
    }
  });

  it('an unknown zone is a RangeError from next/matches', () => {
    expect(() => parseCron('* * * * *').next(new Date(), 'Mars/Base')).toThrow(RangeError);
    expect(() => parseCron('* * * * *').matches(new Date(), 'Mars/Base')).toThrow(RangeError);
    expect(() => parseCron('* * * * *').matches(new Date(NaN))).toThrow(RangeError);
  });

  it('undefined, "" and "Local" mean UTC', () => {
    const e = parseCron('* * 10 * * * *');
    const at = utc('2024-05-15 10:30:00');
    for (const z of [undefined, '', 'Local', 'UTC', 'Etc/UTC']) expect(e.matches(at, z)).toBe(true);
    expect(e.matches(at, 'Europe/Berlin')).toBe(false);
  });

  it('uses the zone wall clock, including a half-hour offset', () => {
    const e = parseCron('0 30 9 * * mon-fri *');
    expect(fmt(e.next(utc('2024-05-15 00:00:00'), 'Asia/Kolkata'))).toBe('2024-05-15 04:00:00');
    expect(fmt(e.next(utc('2024-05-15 00:00:00'), 'America/New_York'))).toBe('2024-05-15 13:30:00');
    expect(fmt(e.next(utc('2024-05-15 00:00:00'), 'Australia/Sydney'))).toBe('2024-05-15 23:30:00');
    expect(e.matches(utc('2024-05-15 04:00:00'), 'Asia/Kolkata')).toBe(true);
  });
});

describe("Go's time.Date for nonexistent and repeated wall-clock times (go/src/time/time_test.go dateTests, US/Pacific)", () => {
  const LA = 'America/Los_Angeles';
  it.each([
    // [expression, from (unix), Go's time.Date result for the wall time the expression names]
    ['0 0 1 * * * *', 1320562800, 1320566400], // 2011-11-06 1:00:00 → PDT (first occurrence)
    ['59 59 1 * * * *', 1320562800, 1320569999], // 1:59:59 → PDT
    ['0 0 2 * * * *', 1320562800, 1320573600], // 2:00:00 PST
    ['0 0 1 * * * *', 1300003200, 1300006800], // 2011-03-13 1:00:00 PST
    ['59 59 1 * * * *', 1300003200, 1300010399], // 1:59:59 PST
    ['0 0 3 * * * *', 1300003200, 1300010400], // 3:00:00 PDT
    ['0 30 2 * * * *', 1300003200, 1300008600], // 2:30:00 does not exist: "2:30:00 PDT ≡ 1:30 PST"
  ])('%s from %i → %i', (expr, from, expected) => {
    expect(parseCron(expr).next(unix(from), LA)?.getTime()).toBe(expected * 1000);
  });

  it('spring forward east of UTC moves a missing time forward (Berlin, Sydney)', () => {
    const e = parseCron('0 30 2 * * * *');
    expect(fmt(e.next(utc('2024-03-31 00:00:00'), 'Europe/Berlin'))).toBe('2024-03-31 01:30:00'); // 03:30 CEST
    expect(fmt(e.next(utc('2024-10-05 15:00:00'), 'Australia/Sydney'))).toBe('2024-10-05 16:30:00'); // 03:30 AEDT
  });

  it('spring forward west of UTC moves it backward, so next() can be earlier than from (New York)', () => {
    const e = parseCron('0 30 2 * * * *');
    const ny = 'America/New_York';
    expect(fmt(e.next(utc('2024-03-10 06:00:00'), ny))).toBe('2024-03-10 06:30:00'); // 01:30 EST: does not match
    expect(e.matches(utc('2024-03-10 06:30:00'), ny)).toBe(false);
    expect(fmt(e.next(utc('2024-03-10 06:45:00'), ny))).toBe('2024-03-10 06:30:00'); // before from
  });

  it('fall back: east of UTC picks the second occurrence, west of UTC the first', () => {
    const e = parseCron('0 30 2 * * * *');
    // Berlin 2024-10-27: 02:30 happens at 00:30Z (CEST) and 01:30Z (CET)
    expect(fmt(e.next(utc('2024-10-26 23:00:00'), 'Europe/Berlin'))).toBe('2024-10-27 01:30:00');
    const n = parseCron('0 30 1 * * * *');
    // New York 2024-11-03: 01:30 happens at 05:30Z (EDT) and 06:30Z (EST)
    expect(fmt(n.next(utc('2024-11-03 04:00:00'), 'America/New_York'))).toBe('2024-11-03 05:30:00');
    // and from within the second pass, next() goes back to the first one
    expect(fmt(parseCron('* * * * * * *').next(utc('2024-11-03 06:30:00'), 'America/New_York'))).toBe('2024-11-03 05:30:01');
  });
});

describe('gitlab-runner helpers/timeperiod/period_test.go', () => {
  const both = (expr: string, at: Date, zone?: string) => [isInPeriod(parseCron(expr), at, zone), gitlabRunnerInPeriod(parseCron(expr), at, zone)];

  it.each([
    // TestOffPeakPeriod: inside or outside depending on DST, always inside, always outside
    [1, 16, 30, true],
    [7, 16, 30, false],
    [1, 14, 30, true],
    [7, 14, 30, true],
    [1, 20, 30, false],
    [7, 20, 30, false],
  ])('TestOffPeakPeriod: * * 10-17 * * * * in Europe/Berlin at 2017-%i-01 %i:%i UTC → %s', (month, hour, minute, inPeriod) => {
    const at = new Date(Date.UTC(2017, month - 1, 1, hour, minute, 0));
    expect(both('* * 10-17 * * * *', at, 'Europe/Berlin')).toEqual([inPeriod, inPeriod]);
  });

  it('TestInPeriod / TestPeriodOut', () => {
    const now = new Date('2024-05-15T10:20:30.250Z'); // a Wednesday
    const pattern = '* 20 10 * * wed *';
    expect(both(pattern, now)).toEqual([true, true]);
    expect(both(pattern, new Date(now.getTime() + 48 * 3600e3))).toEqual([false, false]);
    expect(both(pattern, new Date(now.getTime() + 4 * 3600e3))).toEqual([false, false]);
    expect(both(pattern, new Date(now.getTime() + 4 * 60e3))).toEqual([false, false]);
  });

  it('the 59th second (gitlab-runner #2170): the literal rule is one second early at both edges', () => {
    const p = '* * 9-17 * * mon-fri *';
    expect(both(p, utc('2024-05-17 17:59:58'))).toEqual([true, true]);
    expect(both(p, new Date('2024-05-17T17:59:58.999Z'))).toEqual([true, true]);
    expect(both(p, utc('2024-05-17 17:59:59'))).toEqual([true, false]); // last second: gitlab-runner says out
    expect(both(p, utc('2024-05-17 18:00:00'))).toEqual([false, false]);
    expect(both(p, utc('2024-05-17 08:59:58'))).toEqual([false, false]);
    expect(both(p, utc('2024-05-17 08:59:59'))).toEqual([false, true]); // second before: gitlab-runner says in
    expect(both(p, utc('2024-05-17 09:00:00'))).toEqual([true, true]);
    // with a seconds field, the literal rule is in during the second BEFORE each matching second
    expect(both('0 * * * * * *', utc('2024-05-17 12:00:00'))).toEqual([true, false]);
    expect(both('0 * * * * * *', utc('2024-05-17 12:00:59'))).toEqual([false, true]);
  });

  it('a period that never matches again is outside for both', () => {
    expect(both('* * * * * * 1999', utc('2024-05-17 12:00:00'))).toEqual([false, false]);
  });
});

describe('DST: where the two period rules disagree', () => {
  /** Unix seconds in [from, to) where isInPeriod and gitlabRunnerInPeriod disagree, as runs [start, end]. */
  function disagreements(expr: string, zone: string, from: Date, to: Date): Array<[string, string]> {
    const e = parseCron(expr);
    const runs: Array<[string, string]> = [];
    let start: number | null = null;
    for (let s = from.getTime() / 1000; s <= to.getTime() / 1000; s++) {
      const at = unix(s);
      const differ = isInPeriod(e, at, zone) !== gitlabRunnerInPeriod(e, at, zone);
      if (differ && start === null) start = s;
      if (!differ && start !== null) {
        runs.push([fmt(unix(start))!, fmt(unix(s - 1))!]);
        start = null;
      }
    }
    if (start !== null) runs.push([fmt(unix(start))!, 'end']);
    return runs;
  }

  it('Europe/Berlin fall back: the literal rule is out for the first pass of the repeated hour (plus one second)', () => {
    for (const expr of ['* * * * * * *', '* * 0-7 * * * *']) {
      expect(disagreements(expr, 'Europe/Berlin', utc('2024-10-26 23:30:00'), utc('2024-10-27 01:30:00'))).toEqual([
        ['2024-10-26 23:59:59', '2024-10-27 00:59:59'],
      ]);
    }
  });

  it('America/New_York fall back: the literal rule is out for the second pass of the repeated hour', () => {
    expect(disagreements('* * * * * * *', 'America/New_York', utc('2024-11-03 05:30:00'), utc('2024-11-03 07:30:00'))).toEqual([
      ['2024-11-03 05:59:59', '2024-11-03 06:59:58'],
    ]);
  });

  it('spring forward: one second west of UTC, nothing east of it', () => {
    expect(disagreements('* * * * * * *', 'America/New_York', utc('2024-03-10 06:30:00'), utc('2024-03-10 07:30:00'))).toEqual([
      ['2024-03-10 06:59:59', '2024-03-10 06:59:59'],
    ]);
    expect(disagreements('* * * * * * *', 'Europe/Berlin', utc('2024-03-31 00:30:00'), utc('2024-03-31 01:30:00'))).toEqual([]);
    expect(disagreements('* * * * * * *', 'Australia/Sydney', utc('2024-10-05 15:30:00'), utc('2024-10-05 16:30:00'))).toEqual([]);
  });

  it('isInPeriod follows the wall clock through both passes of a repeated hour', () => {
    const e = parseCron('* * 2 * * * *');
    expect(isInPeriod(e, utc('2024-10-27 00:30:00'), 'Europe/Berlin')).toBe(true); // 02:30 CEST
    expect(isInPeriod(e, utc('2024-10-27 01:30:00'), 'Europe/Berlin')).toBe(true); // 02:30 CET
    expect(isInPeriod(e, utc('2024-10-27 02:30:00'), 'Europe/Berlin')).toBe(false); // 03:30 CET
  });
});
