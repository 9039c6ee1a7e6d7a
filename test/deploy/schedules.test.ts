import { DateTime } from 'luxon';
import { validateConfig } from '../../lib/config';
import { activeSettings } from '../../lib/periods';
import { boundaryMinutes, boundarySchedules } from '../../lib/deploy/schedules';

const pool = (autoscaling: unknown[], Timezone = 'Europe/Berlin') => ({
  name: 'p',
  runUntagged: true,
  Timezone,
  IdleCount: 3,
  autoscaling,
  worker: { instanceTypes: ['m6i.large'], subnets: ['subnet-0abc'], ami: 'ami-0abc' },
});
const config = (pools: unknown[]) => validateConfig({ deployment: 'd', gitlab: { url: 'https://gitlab.example.com' }, pools });

describe('boundaryMinutes', () => {
  it('finds the start and the end of an hour range, and midnight when the days are restricted', () => {
    expect(boundaryMinutes('* * 9-17 * * mon-fri *')).toEqual([9 * 60, 18 * 60]);
    expect(boundaryMinutes('* * 9-17 * * * *')).toEqual([9 * 60, 18 * 60]);
    expect(boundaryMinutes('* * 0-7,19-23 * * mon-fri *')).toEqual([0, 8 * 60, 19 * 60]);
    expect(boundaryMinutes('* * * * * sat,sun *')).toEqual([0]);
    expect(boundaryMinutes('* * * * * * *')).toEqual([]);
  });
  it('handles minute ranges and 5-field expressions', () => {
    expect(boundaryMinutes('* 30-44 9 * * * *')).toEqual([9 * 60 + 30, 9 * 60 + 45]);
    expect(boundaryMinutes('0 9 * * *')).toEqual([9 * 60, 9 * 60 + 1]);
  });
});

describe('boundarySchedules', () => {
  it('merges pools of one zone and keeps zones apart', () => {
    const c = config([
      pool([{ Periods: ['* * 9-17 * * mon-fri *'], IdleCount: 5 }]),
      { ...pool([{ Periods: ['* * 22-23 * * * *'], IdleCount: 0 }], 'America/New_York'), name: 'q', runUntagged: false, tags: ['x'] },
    ]);
    expect(boundarySchedules(c)).toEqual([
      { expression: 'cron(0 0,22 * * ? *)', timezone: 'America/New_York', pools: ['q'], times: ['00:00', '22:00'] },
      { expression: 'cron(0 9,18 * * ? *)', timezone: 'Europe/Berlin', pools: ['p'], times: ['09:00', '18:00'] },
    ]);
  });

  it('groups minutes past the hour', () => {
    const c = config([pool([{ Periods: ['* 30-59 8 * * * *', '* 0-14 17 * * * *'] }])]);
    expect(boundarySchedules(c).map((s) => s.expression)).toEqual(['cron(30 8 * * ? *)', 'cron(0 9 * * ? *)', 'cron(0,15 17 * * ? *)']);
  });

  it('has no schedule without autoscaling sections', () => {
    expect(boundarySchedules(config([pool([])]))).toEqual([]);
  });

  // The property that matters: every minute at which the active settings change is a minute at
  // which a schedule fires (in the pool's zone), over two weeks that include a DST change.
  it.each([
    ['weekday office hours', ['* * 9-17 * * mon-fri *'], 'Europe/Berlin'],
    ['nights and weekends', ['* * 0-7,19-23 * * mon-fri *', '* * * * * sat,sun *'], 'Europe/Berlin'],
    ['a half-hour window on the first of the month', ['* 0-29 12 1 * * *'], 'America/New_York'],
    ['an overnight window', ['* * 22-23,0-5 * * * *'], 'Asia/Tokyo'],
  ])('covers every change of the active settings: %s', (_name, Periods, zone) => {
    const c = config([pool([{ Periods, IdleCount: 0 }], zone)]);
    const fires = new Set(boundarySchedules(c).flatMap((s) => s.times));
    const p = c.pools[0];
    let t = DateTime.fromISO('2025-03-25T00:00', { zone }).minus({ days: 8 }); // spans the EU DST change (March 30)
    const end = t.plus({ days: 14 });
    let prev = activeSettings(p, t.toJSDate()).activePeriod;
    const missed: string[] = [];
    for (t = t.plus({ minutes: 1 }); t < end; t = t.plus({ minutes: 1 })) {
      const cur = activeSettings(p, t.toJSDate()).activePeriod;
      if (cur !== prev && !fires.has(t.toFormat('HH:mm'))) missed.push(t.toISO()!);
      prev = cur;
    }
    expect(missed).toEqual([]);
  });
});
