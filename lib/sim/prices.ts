/**
 * Hourly prices the simulation charges, per instance type (USD, Linux).
 *
 * On-demand: AWS's published on-demand rates for us-east-1 (aws.amazon.com/ec2/pricing/on-demand/),
 * as listed in 2024-2025. Other regions differ (eu-central-1 is roughly 15-20 % dearer); both sides
 * of the comparison use the same table, so the savings ratio holds better than the absolute dollars.
 *
 * Spot: an ASSUMPTION, not a measurement: SPOT_FRACTION of the on-demand rate. Spot prices move per
 * zone and hour (describe-spot-price-history); AWS advertises "up to 90 %" off and the general-purpose
 * families above have mostly traded at 30-45 % of on-demand in us-east-1. Put your own figures in a
 * JSON file and pass it with --prices:
 *
 *   {"m6i.large": {"onDemand": 0.096, "spot": 0.031}, "c6i.2xlarge": {"spot": 0.12}}
 *
 * EC2 bills Linux instances per second with a one-minute minimum; sim/cloud.ts charges that way.
 */
export interface InstancePrice {
  onDemand: number;
  spot: number;
}

export type PriceTable = Record<string, InstancePrice>;

/** Spot price as a fraction of on-demand when the table has no spot figure (see above). */
export const SPOT_FRACTION = 0.35;

const ON_DEMAND_US_EAST_1: Record<string, number> = {
  't3.medium': 0.0416, 't3.large': 0.0832, 't3.xlarge': 0.1664, 't3.2xlarge': 0.3328,
  'm4.large': 0.1, 'm4.xlarge': 0.2, 'm4.2xlarge': 0.4, 'm4.4xlarge': 0.8,
  'm5.large': 0.096, 'm5.xlarge': 0.192, 'm5.2xlarge': 0.384, 'm5.4xlarge': 0.768,
  'm5a.large': 0.086, 'm5a.xlarge': 0.172, 'm5a.2xlarge': 0.344,
  'm6i.large': 0.096, 'm6i.xlarge': 0.192, 'm6i.2xlarge': 0.384, 'm6i.4xlarge': 0.768,
  'm6a.large': 0.0864, 'm6a.xlarge': 0.1728, 'm6a.2xlarge': 0.3456, 'm6a.4xlarge': 0.6912,
  'm7i.large': 0.1008, 'm7i.xlarge': 0.2016, 'm7i.2xlarge': 0.4032, 'm7i.4xlarge': 0.8064,
  'm6g.large': 0.077, 'm6g.xlarge': 0.154, 'm6g.2xlarge': 0.308,
  'm7g.large': 0.0816, 'm7g.xlarge': 0.1632, 'm7g.2xlarge': 0.3264,
  'c5.large': 0.085, 'c5.xlarge': 0.17, 'c5.2xlarge': 0.34, 'c5.4xlarge': 0.68,
  'c6i.large': 0.085, 'c6i.xlarge': 0.17, 'c6i.2xlarge': 0.34, 'c6i.4xlarge': 0.68,
  'c6a.large': 0.0765, 'c6a.xlarge': 0.153, 'c6a.2xlarge': 0.306, 'c6a.4xlarge': 0.612,
  'c7i.large': 0.08925, 'c7i.xlarge': 0.1785, 'c7i.2xlarge': 0.357, 'c7i.4xlarge': 0.714,
  'c6g.large': 0.068, 'c6g.xlarge': 0.136, 'c6g.2xlarge': 0.272,
  'c7g.large': 0.0725, 'c7g.xlarge': 0.145, 'c7g.2xlarge': 0.29,
  'r5.large': 0.126, 'r5.xlarge': 0.252, 'r6i.large': 0.126, 'r6i.xlarge': 0.252,
};

export const DEFAULT_PRICES: PriceTable = Object.fromEntries(
  Object.entries(ON_DEMAND_US_EAST_1).map(([type, od]) => [type, { onDemand: od, spot: round4(od * SPOT_FRACTION) }]),
);

function round4(x: number): number {
  return Math.round(x * 10_000) / 10_000;
}

export class PriceError extends Error {}

/** Merges a user's overrides (parsed JSON) over the defaults; every bad entry is named. */
export function mergePrices(base: PriceTable, overrides: unknown, source = '--prices'): PriceTable {
  if (!overrides || typeof overrides !== 'object' || Array.isArray(overrides))
    throw new PriceError(`${source}: expected a JSON object such as {"m6i.large": {"onDemand": 0.096, "spot": 0.031}}`);
  const out: PriceTable = { ...base };
  const problems: string[] = [];
  for (const [type, value] of Object.entries(overrides as Record<string, unknown>)) {
    if (!/^[a-z0-9-]+\.[a-z0-9-]+$/.test(type)) problems.push(`"${type}": not an instance type name such as "m6i.large"`);
    if (!value || typeof value !== 'object' || Array.isArray(value)) {
      problems.push(`"${type}": expected {"onDemand": USD per hour, "spot": USD per hour}`);
      continue;
    }
    const v = value as Record<string, unknown>;
    for (const k of Object.keys(v)) if (k !== 'onDemand' && k !== 'spot') problems.push(`"${type}".${k}: unknown (accepted: onDemand, spot)`);
    for (const k of ['onDemand', 'spot'] as const)
      if (v[k] !== undefined && (typeof v[k] !== 'number' || !((v[k] as number) > 0))) problems.push(`"${type}".${k}: must be a positive number (USD per hour)`);
    const onDemand = (v.onDemand as number | undefined) ?? out[type]?.onDemand;
    if (onDemand === undefined) {
      problems.push(`"${type}": not in the built-in table, so "onDemand" is required`);
      continue;
    }
    out[type] = { onDemand, spot: (v.spot as number | undefined) ?? out[type]?.spot ?? round4(onDemand * SPOT_FRACTION) };
  }
  if (problems.length) throw new PriceError(`${source}:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  return out;
}

/** Checks every instance type the config can launch has a price, before a long run starts. */
export function missingPrices(table: PriceTable, instanceTypes: Iterable<string>): string[] {
  return [...new Set(instanceTypes)].filter((t) => !table[t]);
}
