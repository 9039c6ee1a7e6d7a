import { RequestBudget, SHARES, type RequestKind } from '../../lib/gitlab/budget';

const T0 = Date.parse('2025-03-03T10:00:00Z');

/** The most requests charged in any 60 s window (one-second resolution). */
function busiestWindow(charges: [number, number][]): number {
  let best = 0;
  for (const [start] of charges) {
    const n = charges.filter(([t]) => t >= start && t < start + 60_000).reduce((s, [, k]) => s + k, 0);
    best = Math.max(best, n);
  }
  return best;
}

test('any 60 s window holds at most perMinute requests, whether passes run every 2 s or once a minute', () => {
  for (const every of [2_000, 7_000, 60_000]) {
    const b = new RequestBudget({ perMinute: 120, start: 'full' });
    const charges: [number, number][] = [];
    for (let t = T0; t < T0 + 10 * 60_000; t += every) {
      const n = b.available(t);
      b.charge(n, t);
      charges.push([t, n]);
    }
    expect(busiestWindow(charges)).toBeLessThanOrEqual(120);
    // Throughput: a minute's worth of refill is spent, not left on the table.
    const total = charges.reduce((s, [, n]) => s + n, 0);
    expect(total).toBeGreaterThanOrEqual(every === 60_000 ? 10 * 30 : 10 * 85);
  }
});

test('a cold start begins empty, so the container before and the one after stay within perMinute together', () => {
  const old = new RequestBudget({ perMinute: 120, start: 'full' });
  const charges: [number, number][] = [];
  let t = T0;
  for (; t < T0 + 5 * 60_000; t += 1000) {
    const n = old.available(t);
    old.charge(n, t);
    charges.push([t, n]);
  }
  const fresh = new RequestBudget({ perMinute: 120, start: 'empty' });
  expect(fresh.available(t)).toBe(0);
  expect(fresh.msUntil(1, t)).toBe(Math.ceil(1 / (90 / 60_000)));
  for (; t < T0 + 10 * 60_000; t += 1000) {
    const n = fresh.available(t);
    fresh.charge(n, t);
    charges.push([t, n]);
  }
  expect(busiestWindow(charges)).toBeLessThanOrEqual(120);
});

test('requests the client retried are charged too: the debt slows the next passes', () => {
  const b = new RequestBudget({ perMinute: 60, start: 'full' });
  b.charge(b.available(T0) + 10, T0);
  expect(b.available(T0)).toBe(0);
  expect(b.msUntil(1, T0)).toBeGreaterThan(10_000);
  expect(b.chargedThisMinute(T0)).toBe(b.capacity + 10);
});

test('tokens are dealt in proportion to the shares when every kind has work, and a kind without work gives its share away', () => {
  const b = new RequestBudget({ perMinute: 120, start: 'full' });
  const got: Record<RequestKind, number> = { route: 0, confirm: 0, discover: 0 };
  for (let t = T0; t < T0 + 30 * 60_000; t += 3000) {
    const a = b.allot({ route: 1000, confirm: 1000, discover: 1000 }, t);
    for (const k of Object.keys(a) as RequestKind[]) got[k] += a[k];
    b.charge(a.route + a.confirm + a.discover, t);
  }
  const total = got.route + got.confirm + got.discover;
  for (const k of Object.keys(SHARES) as RequestKind[]) expect(Math.abs(got[k] / total - SHARES[k])).toBeLessThan(0.01);
  // Only confirmation wants anything: it gets everything available.
  const c = new RequestBudget({ perMinute: 120, start: 'full' });
  expect(c.allot({ route: 0, confirm: 100, discover: 0 }, T0)).toEqual({ route: 0, confirm: c.capacity, discover: 0 });
  // Never more than wanted.
  expect(c.allot({ route: 2, confirm: 1, discover: 0 }, T0)).toEqual({ route: 2, confirm: 1, discover: 0 });
});

test('with one token a pass, the kinds still take turns by their shares (no kind starves)', () => {
  const b = new RequestBudget({ perMinute: 12, start: 'empty' });
  const got: Record<RequestKind, number> = { route: 0, confirm: 0, discover: 0 };
  let t = T0;
  for (let pass = 0; pass < 200; pass++) {
    t += b.msUntil(1, t);
    const a = b.allot({ route: 5, confirm: 5, discover: 5 }, t);
    expect(a.route + a.confirm + a.discover).toBe(1);
    for (const k of Object.keys(a) as RequestKind[]) got[k] += a[k];
    b.charge(1, t);
  }
  expect(got).toEqual({ route: 100, confirm: 60, discover: 40 });
});

test('a budget below 4 a minute is refused by name', () => {
  expect(() => new RequestBudget({ perMinute: 2, start: 'full' })).toThrow(/perMinute must be at least 4/);
});
