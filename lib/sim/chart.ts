/**
 * The simulation chart: one self-contained SVG (no scripts, no external fonts or files), a panel
 * per policy on the same scales: capacity as stacked areas (busy, idle, booting), demand as lines
 * (jobs running + pending, and pending alone), off-peak periods shaded from the pools' autoscaling
 * sections (lib/periods.ts), days labelled in the first pool's time zone.
 */
import { DateTime } from 'luxon';
import type { Config } from '../config';
import { activeSettings } from '../periods';
import type { Sample } from './cloud';
import type { SimulationReport } from './simulate';

const W = 1400;
const PANEL_H = 260;
const LEFT = 56;
const RIGHT = 20;
const TOP = 92;
const GAP = 64;
const COLORS = { busy: '#4e79a7', idle: '#59a14f', booting: '#f28e2b', demand: '#222222', pending: '#d62728', offPeak: '#eceff4' };

/** What the chart draws of a sample (workers leaving are not drawn). */
type Bucket = Omit<Sample, 'leaving'>;

/** Averages samples into buckets so a week draws as ~1,000 points instead of 10,000. */
export function bucketize(samples: readonly Sample[], bucketMs: number): Bucket[] {
  const out: Bucket[] = [];
  let cur: Bucket | undefined;
  let n = 0;
  for (const s of samples) {
    const at = Math.floor(s.at / bucketMs) * bucketMs;
    if (!cur || cur.at !== at) {
      if (cur) out.push(avg(cur, n));
      cur = { at, pending: 0, running: 0, booting: 0, idle: 0, busy: 0 };
      n = 0;
    }
    cur.pending += s.pending;
    cur.running += s.running;
    cur.booting += s.booting;
    cur.idle += s.idle;
    cur.busy += s.busy;
    n++;
  }
  if (cur) out.push(avg(cur, n));
  return out;
}

function avg(b: Bucket, n: number): Bucket {
  return { at: b.at, pending: b.pending / n, running: b.running / n, booting: b.booting / n, idle: b.idle / n, busy: b.busy / n };
}

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function niceStep(max: number, ticks: number): number {
  const raw = max / ticks;
  const mag = 10 ** Math.floor(Math.log10(raw || 1));
  for (const m of [1, 2, 5, 10]) if (raw <= m * mag) return m * mag;
  return 10 * mag;
}

/** Intervals during which every pool that has autoscaling sections runs one of them. */
export function offPeakIntervals(config: Config, start: number, end: number, stepMs: number): [number, number][] {
  const pools = config.pools.filter((p) => p.autoscaling.length > 0);
  if (pools.length === 0) return [];
  const out: [number, number][] = [];
  let open: number | undefined;
  for (let t = start; t <= end; t += stepMs) {
    const off = pools.every((p) => activeSettings(p, new Date(t)).activePeriod !== null);
    if (off && open === undefined) open = t;
    if (!off && open !== undefined) {
      out.push([open, t]);
      open = undefined;
    }
  }
  if (open !== undefined) out.push([open, end]);
  return out;
}

export function renderChart(config: Config, report: SimulationReport, samples: { autoscaler: Sample[]; baseline: Sample[] }): string {
  const start = Date.parse(report.start);
  const end = Date.parse(report.end);
  const span = Math.max(end - start, 60_000);
  const bucketMs = Math.max(60_000, Math.ceil(span / 1000 / 60_000) * 60_000);
  const panels = [
    { title: 'Spot autoscaler (this project)', cost: report.spotCost, f: report.autoscaler, data: bucketize(samples.autoscaler, bucketMs) },
    { title: 'docker+machine (on-demand, idle pool)', cost: report.baseline.cost, f: report.baseline, data: bucketize(samples.baseline, bucketMs) },
  ];
  const yMax = Math.max(1, ...panels.flatMap((p) => p.data.map((b) => Math.max(b.busy + b.idle + b.booting, b.running + b.pending))));
  const yStep = niceStep(yMax, 5);
  const yTop = Math.ceil(yMax / yStep) * yStep;
  const plotW = W - LEFT - RIGHT;
  const x = (t: number) => LEFT + ((t - start) / span) * plotW;
  const zone = config.pools[0].Timezone;
  const offPeak = offPeakIntervals(config, start, end, Math.max(60_000, Math.min(bucketMs, 300_000)));
  const H = TOP + panels.length * (PANEL_H + GAP) + 40;

  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="Helvetica, Arial, sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="#ffffff"/>`,
    `<text x="${LEFT}" y="26" font-size="18" font-weight="bold" fill="#222">${esc(`${report.jobs.toLocaleString('en-US')} CI jobs, ${DateTime.fromMillis(start, { zone }).toFormat('ccc d LLL')} - ${DateTime.fromMillis(end, { zone }).toFormat('ccc d LLL yyyy')} (${zone})`)}</text>`,
    `<text x="${LEFT}" y="48" font-size="13" fill="#444">${esc(
      `Saves $${report.savings.money.toFixed(2)} (${report.savings.moneyPercent}%) · p95 wait ${report.waitP95} s vs ${report.baseline.waitP95} s · seed ${report.seed}`,
    )}</text>`,
  );
  // Legend.
  const legend: [string, string, 'area' | 'line' | 'dash'][] = [
    ['busy workers', COLORS.busy, 'area'],
    ['idle workers', COLORS.idle, 'area'],
    ['booting workers', COLORS.booting, 'area'],
    ['jobs running + pending', COLORS.demand, 'line'],
    ['jobs pending', COLORS.pending, 'line'],
    ['off-peak (autoscaling section active)', '#d8dee9', 'area'],
  ];
  let lx = LEFT;
  for (const [label, color, kind] of legend) {
    if (kind === 'area') parts.push(`<rect x="${lx}" y="63" width="14" height="10" fill="${color}" stroke="#9aa3ad" stroke-width="0.5"/>`);
    else parts.push(`<line x1="${lx}" y1="68" x2="${lx + 14}" y2="68" stroke="${color}" stroke-width="2"/>`);
    parts.push(`<text x="${lx + 19}" y="73" fill="#333">${esc(label)}</text>`);
    lx += 34 + label.length * 6.4;
  }

  panels.forEach((panel, i) => {
    const top = TOP + i * (PANEL_H + GAP) + 22;
    const y = (v: number) => top + PANEL_H - (v / yTop) * PANEL_H;
    parts.push(
      `<text x="${LEFT}" y="${top - 8}" font-size="14" font-weight="bold" fill="#222">${esc(panel.title)}</text>`,
      `<text x="${W - RIGHT}" y="${top - 8}" text-anchor="end" font-size="12" fill="#444">${esc(
        `$${panel.cost.toFixed(2)} · ${panel.f.workerHours} worker-hours · peak ${panel.f.peakWorkers} workers · wait p50 ${panel.f.waitP50} s / p95 ${panel.f.waitP95} s / max ${panel.f.waitMax} s`,
      )}</text>`,
    );
    for (const [a, b] of offPeak) parts.push(`<rect x="${x(a).toFixed(1)}" y="${top}" width="${Math.max(0.5, x(b) - x(a)).toFixed(1)}" height="${PANEL_H}" fill="${COLORS.offPeak}"/>`);
    for (let v = 0; v <= yTop; v += yStep) {
      parts.push(`<line x1="${LEFT}" y1="${y(v).toFixed(1)}" x2="${W - RIGHT}" y2="${y(v).toFixed(1)}" stroke="#d0d4da" stroke-width="${v === 0 ? 1 : 0.5}"/>`);
      parts.push(`<text x="${LEFT - 6}" y="${(y(v) + 4).toFixed(1)}" text-anchor="end" fill="#555">${v}</text>`);
    }
    // Day boundaries (local midnight) and 06/12/18 ticks.
    let day = DateTime.fromMillis(start, { zone }).startOf('day');
    while (day.toMillis() <= end) {
      for (const h of [0, 6, 12, 18]) {
        const t = day.plus({ hours: h }).toMillis();
        if (t < start || t > end) continue;
        const xx = x(t).toFixed(1);
        parts.push(`<line x1="${xx}" y1="${top}" x2="${xx}" y2="${top + PANEL_H}" stroke="${h === 0 ? '#9aa3ad' : '#e1e4e8'}" stroke-width="${h === 0 ? 1 : 0.5}"/>`);
        if (span <= 2 * 86_400_000 || h === 12)
          parts.push(`<text x="${xx}" y="${top + PANEL_H + 16}" text-anchor="middle" fill="#555">${esc(h === 12 || span <= 2 * 86_400_000 ? day.plus({ hours: h }).toFormat(span <= 2 * 86_400_000 ? 'ccc HH:mm' : 'ccc d LLL') : '')}</text>`);
      }
      day = day.plus({ days: 1 });
    }
    // Stacked capacity areas: busy at the bottom, then idle, then booting.
    const layers: [keyof Bucket, string][] = [['busy', COLORS.busy], ['idle', COLORS.idle], ['booting', COLORS.booting]];
    const base = panel.data.map(() => 0);
    for (const [key, color] of layers) {
      const upper = panel.data.map((b, k) => base[k] + (b[key] as number));
      if (panel.data.length) {
        const pts: string[] = [];
        panel.data.forEach((b, k) => pts.push(`${x(b.at).toFixed(1)},${y(upper[k]).toFixed(1)}`, `${x(b.at + bucketMs).toFixed(1)},${y(upper[k]).toFixed(1)}`));
        for (let k = panel.data.length - 1; k >= 0; k--) {
          const b = panel.data[k];
          pts.push(`${x(b.at + bucketMs).toFixed(1)},${y(base[k]).toFixed(1)}`, `${x(b.at).toFixed(1)},${y(base[k]).toFixed(1)}`);
        }
        parts.push(`<polygon points="${pts.join(' ')}" fill="${color}" fill-opacity="0.85" stroke="none"/>`);
      }
      upper.forEach((v, k) => (base[k] = v));
    }
    const line = (value: (b: Bucket) => number, color: string, width: number) => {
      if (!panel.data.length) return;
      const pts = panel.data.map((b) => `${x(b.at + bucketMs / 2).toFixed(1)},${y(value(b)).toFixed(1)}`).join(' ');
      parts.push(`<polyline points="${pts}" fill="none" stroke="${color}" stroke-width="${width}" stroke-linejoin="round"/>`);
    };
    line((b) => b.running + b.pending, COLORS.demand, 1.2);
    line((b) => b.pending, COLORS.pending, 1.4);
    parts.push(`<rect x="${LEFT}" y="${top}" width="${plotW}" height="${PANEL_H}" fill="none" stroke="#9aa3ad" stroke-width="1"/>`);
    parts.push(`<text transform="translate(16 ${top + PANEL_H / 2}) rotate(-90)" text-anchor="middle" fill="#555">workers / jobs</text>`);
  });
  parts.push(
    `<text x="${LEFT}" y="${H - 12}" font-size="11" fill="#777">${esc(
      `Averages per ${Math.round(bucketMs / 60_000)} min. Spot prices are an assumption (lib/sim/prices.ts); interruptions ${report.interruptions} (jobs hit ${report.jobsHitByInterruptions}), webhooks lost ${report.autoscaler.webhooksLost} of ${report.autoscaler.webhooksSent}.`,
    )}</text>`,
    '</svg>',
  );
  return parts.join('\n') + '\n';
}
