/**
 * The GitLab request budget: how many API requests (REST or GraphQL: each HTTP request counts one,
 * retries included) the controller may send per minute, shared by the three kinds of GitLab work.
 *
 *  - route:    jobs of new events whose pool (tags) or existence is not known yet;
 *  - confirm:  jobs no event confirmed lately (a lost `running`/`success` delivery must stop holding
 *              `concurrent`; a pending job must still be pending to hold capacity);
 *  - discover: projects listed for pending jobs whose every delivery was lost.
 *
 * Why a budget at all: GitLab rate-limits API traffic per user (gitlab.com: 2,000 requests a minute
 * for REST and GraphQL together, docs.gitlab.com user/gitlab_com/rate_limits; GitLab Dedicated:
 * 1,200 a minute for its smallest reference architecture, administration/dedicated/user_rate_limits),
 * and the token's user usually shares that limit with other automation. The default
 * (config.gitlab.requestsPerMinute, 120) is 6 % of gitlab.com's limit and 10 % of the smallest
 * Dedicated one; batched requests make it enough for thousands of jobs (docs/controller.md).
 *
 * The bucket: capacity C = perMinute / 4, refilled at (perMinute - C) a minute. In any 60 s window
 * at most C + (perMinute - C) = perMinute requests go out, however often passes run (a reconcile
 * loop running passes back to back in one warm container shares this object). After a Lambda cold
 * start the bucket starts EMPTY: the previous container may have spent its tokens in the last
 * minute, and with both containers obeying the same bucket the sum over any window stays within
 * perMinute (its share: at most C + refill over the part of the window before the switch; ours:
 * refill over the rest). A new pass may wait a moment for its first tokens (GitLabDemand, waitMs).
 *
 * Fair shares: tokens are dealt to the kinds that have work, in proportion to SHARES, with a
 * deficit counter kept across passes so that small budgets are fair too. A kind with no work gives
 * its share to the others; none can starve another (lost-success repair keeps at least its share).
 */
export type RequestKind = 'route' | 'confirm' | 'discover';

export const REQUEST_KINDS: readonly RequestKind[] = ['route', 'confirm', 'discover'];

/** Routing is what a waiting job needs first; confirmation frees `concurrent`; discovery repairs what was lost. */
export const SHARES: Readonly<Record<RequestKind, number>> = { route: 0.5, confirm: 0.3, discover: 0.2 };

export interface BudgetOptions {
  perMinute: number;
  /** Tokens at creation: 'empty' after a cold start (Lambda), 'full' for a process that has not spent anything (simulation, tests). */
  start: 'full' | 'empty';
}

const MINUTE = 60_000;

export class RequestBudget {
  readonly perMinute: number;
  /** Most tokens that can be held (a burst). */
  readonly capacity: number;
  private readonly refillPerMs: number;
  private tokens: number;
  private at: number | undefined;
  private readonly credit: Record<RequestKind, number> = { route: 0, confirm: 0, discover: 0 };
  /** Requests charged per epoch minute (the last hour), for reports. */
  private readonly perMinuteLog = new Map<number, number>();

  constructor(opts: BudgetOptions) {
    if (!Number.isFinite(opts.perMinute) || opts.perMinute < 4) throw new Error(`GitLab request budget: perMinute must be at least 4, got ${opts.perMinute}`);
    this.perMinute = opts.perMinute;
    this.capacity = Math.max(1, Math.round(opts.perMinute / 4));
    this.refillPerMs = (opts.perMinute - this.capacity) / MINUTE;
    this.tokens = opts.start === 'full' ? this.capacity : 0;
  }

  private refill(now: number): void {
    if (this.at !== undefined && now > this.at) this.tokens = Math.min(this.capacity, this.tokens + (now - this.at) * this.refillPerMs);
    if (this.at === undefined || now > this.at) this.at = now;
  }

  /** Whole tokens available now. */
  available(now: number): number {
    this.refill(now);
    return Math.max(0, Math.floor(this.tokens + 1e-9));
  }

  /** Milliseconds until `n` tokens are available (0 when they are). */
  msUntil(n: number, now: number): number {
    this.refill(now);
    const missing = n - this.tokens;
    return missing <= 0 ? 0 : Math.ceil(missing / this.refillPerMs);
  }

  /**
   * Charges `n` requests that were sent (or are about to be). May go below zero: a request the
   * client retried costs what it cost, and the debt slows the next passes down.
   */
  charge(n: number, now: number): void {
    if (n <= 0) return;
    this.refill(now);
    this.tokens -= n;
    const m = Math.floor(now / MINUTE);
    this.perMinuteLog.set(m, (this.perMinuteLog.get(m) ?? 0) + n);
    for (const k of this.perMinuteLog.keys()) if (k < m - 60) this.perMinuteLog.delete(k);
  }

  /** Requests charged in the epoch minute of `now` (a report figure, not a limit). */
  chargedThisMinute(now: number): number {
    return this.perMinuteLog.get(Math.floor(now / MINUTE)) ?? 0;
  }

  /**
   * Deals the tokens available now to the kinds that want some: one at a time to the kind with the
   * most credit (its share of each token, among the kinds still wanting), so the split follows
   * SHARES over time even when few tokens are available per pass. Takes nothing: the caller
   * charges what it sends.
   */
  allot(wanted: Readonly<Record<RequestKind, number>>, now: number): Record<RequestKind, number> {
    const out: Record<RequestKind, number> = { route: 0, confirm: 0, discover: 0 };
    let left = this.available(now);
    const want = { ...wanted };
    while (left > 0) {
      const active = REQUEST_KINDS.filter((k) => want[k] > out[k]);
      if (active.length === 0) break;
      const total = active.reduce((s, k) => s + SHARES[k], 0);
      for (const k of active) this.credit[k] += SHARES[k] / total;
      const k = active.reduce((best, x) => (this.credit[x] > this.credit[best] ? x : best), active[0]);
      this.credit[k] -= 1;
      out[k]++;
      left--;
    }
    // A kind idle for long banks no unbounded credit (and one that borrowed owes no unbounded debt).
    for (const k of REQUEST_KINDS) this.credit[k] = Math.max(-this.capacity, Math.min(this.capacity, this.credit[k]));
    return out;
  }
}
