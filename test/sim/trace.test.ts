import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_TRACE_START, formatTrace, parseTrace, TraceError } from '../../lib/sim/trace';
import { generateTrace } from '../../lib/sim/trace-gen';
import { Rng } from '../../lib/sim/rng';
import { DEFAULT_PRICES, mergePrices, PriceError } from '../../lib/sim/prices';

describe('trace format', () => {
  it('accepts ISO instants and seconds from the start line, with defaults for tags and project', () => {
    const t = parseTrace(
      [
        '{"start": "2025-03-03T00:00:00Z"}',
        '{"id": "a", "at": "2025-03-03T08:00:00Z", "duration": 60, "tags": ["docker"]}',
        '',
        '{"id": 2, "at": 3600, "duration": 30.5, "project": 7}',
      ].join('\n'),
    );
    expect(t.start).toBe(Date.parse('2025-03-03T00:00:00Z'));
    expect(t.jobs).toEqual([
      { id: '2', at: Date.parse('2025-03-03T01:00:00Z'), duration: 30.5, tags: [], project: 7 },
      { id: 'a', at: Date.parse('2025-03-03T08:00:00Z'), duration: 60, tags: ['docker'], project: 1 },
    ]);
  });

  it('starts numeric traces at the documented default, and ISO traces at their first day', () => {
    expect(parseTrace('{"id":1,"at":10,"duration":5}').start).toBe(DEFAULT_TRACE_START);
    expect(parseTrace('{"id":1,"at":"2025-05-06T13:14:15+02:00","duration":5}').start).toBe(Date.parse('2025-05-06T00:00:00Z'));
  });

  it('names every bad line and what is accepted', () => {
    const text = ['{"id": 1, "at": 0, "duration": 0}', 'nope', '{"id": 1, "at": "yesterday", "duration": 5, "tag": []}', '{"at": 1, "duration": 1}'].join('\n');
    let err: TraceError | undefined;
    try {
      parseTrace(text, 'x.jsonl');
    } catch (e) {
      err = e as TraceError;
    }
    expect(err).toBeInstanceOf(TraceError);
    const msg = err!.message;
    expect(msg).toContain('x.jsonl');
    expect(msg).toMatch(/line 1: "duration" must be a positive number/);
    expect(msg).toMatch(/line 2: not JSON/);
    expect(msg).toMatch(/line 3: unknown field "tag"/);
    expect(msg).toMatch(/line 3: "id" 1 is already used on line 1/);
    expect(msg).toMatch(/line 3: "at" must be an ISO 8601 instant/);
    expect(msg).toMatch(/line 4: "id" is required/);
  });

  it('refuses an empty trace and a start line that is not first', () => {
    expect(() => parseTrace('\n\n')).toThrow(/no jobs/);
    expect(() => parseTrace('{"id":1,"at":1,"duration":1}\n{"start":"2025-01-01T00:00:00Z"}')).toThrow(/must be the first line/);
  });

  it('round-trips through formatTrace', () => {
    const t = generateTrace({ days: 1, seed: 3, scale: 0.2 });
    expect(parseTrace(formatTrace(t))).toEqual(t);
  });
});

describe('sample trace generator', () => {
  it('is deterministic, and the shipped samples/trace.jsonl is exactly its output', () => {
    const shipped = readFileSync(join(__dirname, '..', '..', 'samples', 'trace.jsonl'), 'utf8');
    expect(formatTrace(generateTrace())).toBe(shipped);
    expect(shipped.length).toBeLessThan(2_000_000);
  });

  it('has the shape of a working week: busy weekday daytime, quiet nights and weekend', () => {
    const t = generateTrace();
    const perHour = (day: number, from: number, to: number) =>
      t.jobs.filter((j) => {
        const h = (j.at - t.start) / 3_600_000 - day * 24;
        return h >= from && h < to;
      }).length / (to - from);
    const weekdayDay = perHour(2, 9, 17);
    expect(weekdayDay).toBeGreaterThan(10 * perHour(2, 22, 24 + 6) + 1);
    expect(weekdayDay).toBeGreaterThan(5 * perHour(5, 9, 17));
    expect(perHour(2, 12.25, 13.25)).toBeLessThan(perHour(2, 10, 12)); // lunch dip
  });

  it('differs for another seed', () => {
    expect(formatTrace(generateTrace({ seed: 1, days: 1 }))).not.toBe(formatTrace(generateTrace({ seed: 2, days: 1 })));
  });
});

describe('seeded random numbers', () => {
  it('repeat for a seed and differ between seeds', () => {
    const a = new Rng(42);
    const b = new Rng(42);
    const c = new Rng(43);
    const xs = Array.from({ length: 5 }, () => a.next());
    expect(Array.from({ length: 5 }, () => b.next())).toEqual(xs);
    expect(Array.from({ length: 5 }, () => c.next())).not.toEqual(xs);
    for (const x of xs) expect(x >= 0 && x < 1).toBe(true);
  });

  it('has a mean near 0.5 and exponential draws near their mean', () => {
    const r = new Rng(7);
    let sum = 0;
    let exp = 0;
    for (let i = 0; i < 20000; i++) {
      sum += r.next();
      exp += r.exponential(10);
    }
    expect(sum / 20000).toBeCloseTo(0.5, 1);
    expect(exp / 20000).toBeGreaterThan(9.5);
    expect(exp / 20000).toBeLessThan(10.5);
  });
});

describe('price table', () => {
  it('merges overrides and fills a missing spot price from on-demand', () => {
    const p = mergePrices(DEFAULT_PRICES, { 'm6i.large': { spot: 0.03 }, 'x9.huge': { onDemand: 2 } });
    expect(p['m6i.large']).toEqual({ onDemand: 0.096, spot: 0.03 });
    expect(p['x9.huge'].spot).toBeCloseTo(0.7, 5);
  });

  it('names every bad entry', () => {
    expect(() => mergePrices(DEFAULT_PRICES, { 'x9.huge': { spot: 1 }, 'm5.large': { onDemand: -1, cost: 3 } }, 'p.json')).toThrow(PriceError);
    try {
      mergePrices(DEFAULT_PRICES, { 'x9.huge': { spot: 1 }, 'm5.large': { onDemand: -1, cost: 3 } }, 'p.json');
    } catch (e) {
      const m = (e as Error).message;
      expect(m).toContain('"x9.huge": not in the built-in table, so "onDemand" is required');
      expect(m).toContain('"m5.large".onDemand: must be a positive number');
      expect(m).toContain('"m5.large".cost: unknown');
    }
    expect(() => mergePrices(DEFAULT_PRICES, [1])).toThrow(/expected a JSON object/);
  });
});
