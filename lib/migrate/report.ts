/**
 * The migration report: what happened to every key of config.toml (docs/migration.md, "The report").
 *
 *  - carried: written into the worker's config.toml as it was (a pool's `runner:` block);
 *  - mapped: became one of this project's settings with the same meaning (IdleCount, worker.ami ...);
 *  - replaced: its purpose is served another way (a secret -> an SSM parameter, keys -> the worker role);
 *  - dropped: nothing on a worker does what it did; `why` says why.
 */
export type Outcome = 'carried' | 'mapped' | 'replaced' | 'dropped';
export const OUTCOMES: readonly Outcome[] = ['carried', 'mapped', 'replaced', 'dropped'];

export interface ReportEntry {
  /** Where in config.toml: `runners[0].docker.shm_size`, `runners[0].machine.MachineOptions amazonec2-region`. */
  at: string;
  outcome: Outcome;
  /** Where it went in the migrated config (carried, mapped, replaced). */
  to?: string;
  /** Why (dropped, replaced), or a remark. */
  why?: string;
}

export class Report {
  readonly entries: ReportEntry[] = [];

  carried(at: string, to: string, why?: string): void {
    this.entries.push({ at, outcome: 'carried', to, ...(why ? { why } : {}) });
  }
  mapped(at: string, to: string, why?: string): void {
    this.entries.push({ at, outcome: 'mapped', to, ...(why ? { why } : {}) });
  }
  replaced(at: string, to: string, why: string): void {
    this.entries.push({ at, outcome: 'replaced', to, why });
  }
  dropped(at: string, why: string): void {
    this.entries.push({ at, outcome: 'dropped', why });
  }

  counts(): Record<Outcome, number> {
    const c = { carried: 0, mapped: 0, replaced: 0, dropped: 0 };
    for (const e of this.entries) c[e.outcome]++;
    return c;
  }
}

/** The report as text, one line per key, grouped by outcome (the CLI's output and the YAML header). */
export function formatReport(entries: readonly ReportEntry[], indent = '  '): string[] {
  const counts = { carried: 0, mapped: 0, replaced: 0, dropped: 0 };
  for (const e of entries) counts[e.outcome]++;
  const lines = [`${OUTCOMES.map((o) => `${counts[o]} ${o}`).join(', ')} (keys of config.toml):`];
  for (const o of OUTCOMES) {
    const group = entries.filter((e) => e.outcome === o);
    if (!group.length) continue;
    lines.push(`${indent}${o}:`);
    for (const e of group) lines.push(`${indent}  ${e.at}${e.to ? ` -> ${e.to}` : ''}${e.why ? `: ${e.why}` : ''}`);
  }
  return lines;
}
