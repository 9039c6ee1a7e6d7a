/**
 * Real-shaped docker+machine config.toml files (test/fixtures/real, and the seed article's), each
 * taken the whole way: migrate -> validate -> user data -> the worker's config.toml, parsed.
 *
 *  - every key of every docker+machine [[runners]] has a report entry (nothing vanishes silently);
 *  - every carried or mapped runner setting is in the worker's config.toml with the value it had
 *    (compared as parsed TOML), every secret is a {{ssm:...}} reference there;
 *  - the worker's config.toml passes the gitlab-runner v18.3.1 schema check (workerConfigProblems:
 *    the gitlab-runner binary cannot be installed on these machines to load it for real);
 *  - no secret (every one in the fixtures carries the marker S3CR3T) appears in the YAML, the
 *    report, the notes, the commands, any pool's user data or worker config.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { parse as parseToml } from 'smol-toml';
import { parseConfig, type Config } from '../../lib/config';
import { migrateConfigToml, type MigrationResult } from '../../lib/migrate/migrate';
import { workerConfigToml, WORKER_CA_FILE } from '../../lib/worker/runner-config';
import { workerConfigProblems } from '../../lib/worker/runner-schema';
import { renderUserData } from '../../lib/worker/userdata';

const FIXTURES = join(__dirname, '..', 'fixtures');
const FILES = join(FIXTURES, 'files');
const readFile = (p: string) => (existsSync(join(FILES, basename(p))) ? readFileSync(join(FILES, basename(p)), 'utf8') : undefined);
const CASES = [...readdirSync(join(FIXTURES, 'real')).map((f) => join('real', f)), 'seed-config.toml', 'seed-config-spot.toml'];

type Table = Record<string, any>;

/** `runners[0].docker.services[1].name` -> ['runners', 0, 'docker', 'services', 1, 'name']. */
function pathOf(at: string): (string | number)[] {
  return [...at.matchAll(/([^.[\]]+)|\[(\d+)\]/g)].map((m) => (m[2] !== undefined ? Number(m[2]) : m[1]));
}
/** Case-insensitive, as gitlab-runner's loader reads keys. */
function getIn(doc: unknown, path: (string | number)[]): unknown {
  let v: any = doc;
  for (const p of path) {
    if (v === undefined || v === null) return undefined;
    if (typeof p === 'number') v = v[p];
    else v = v[Object.keys(v).find((k) => k === p) ?? Object.keys(v).find((k) => k.toLowerCase() === p.toLowerCase()) ?? p];
  }
  return v;
}

/** Every leaf of a [[runners]] table: `runners[0].docker.shm_size`, `runners[0].machine.MachineOptions amazonec2-region`. */
function leaves(v: unknown, at: string, out: string[] = []): string[] {
  if (Array.isArray(v) && v.every((x) => typeof x === 'object' && x !== null && !(x instanceof Date)) && v.length) v.forEach((x, i) => leaves(x, `${at}[${i}]`, out));
  else if (at.endsWith('.MachineOptions') && Array.isArray(v)) for (const o of v) out.push(`${at} ${String(o).split('=')[0]}`);
  else if (typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date) && Object.keys(v).length) for (const [k, x] of Object.entries(v)) leaves(x, `${at}.${k}`, out);
  else out.push(at);
  return out;
}

const norm = (s: string) => s.toLowerCase();
function covered(leaf: string, ats: string[]): boolean {
  const [lp, lopt] = leaf.split(' ');
  return ats.some((a) => {
    const [ap, aopt] = [a.slice(0, a.indexOf(' ') < 0 ? a.length : a.indexOf(' ')), a.indexOf(' ') < 0 ? undefined : a.slice(a.indexOf(' ') + 1)];
    if (norm(ap) === norm(lp)) return !lopt || aopt === undefined || norm(aopt).split('=')[0] === norm(lopt) || norm(aopt) === `${norm(lopt)}`;
    return norm(lp).startsWith(norm(ap) + '.') || norm(lp).startsWith(norm(ap) + '[');
  });
}

describe.each(CASES)('%s: migrate -> validate -> user data -> worker config.toml', (file) => {
  const text = readFileSync(join(FIXTURES, file), 'utf8');
  const input = parseToml(text, { integersAsBigInt: 'asNeeded' }) as Table;
  const result: MigrationResult = migrateConfigToml(text, { source: file, readFile, stage: 'prod' });
  const config: Config = parseConfig(result.yaml, `${file} (migrated)`);
  // Which input runner became which pool: the report maps runners[i].executor -> pools[n].
  const poolOf = new Map<number, number>();
  for (const e of result.report) {
    const m = /^runners\[(\d+)\]\.executor$/.exec(e.at);
    if (m && e.outcome === 'mapped') poolOf.set(Number(m[1]), Number(/pools\[(\d+)\]/.exec(e.to!)![1]));
  }
  const workers = config.pools.map((pool) => {
    const script = renderUserData({ config, pool, stage: 'prod', cacheBucket: 'acme-deployment-cache' });
    const embedded = /cat <<'GSA_TOML'\n([\s\S]*?)\nGSA_TOML\n/.exec(script)![1];
    return { pool, script, embedded, toml: parseToml(embedded) as Table };
  });

  test('the YAML validates and parses to the same config', () => {
    expect(config).toEqual(result.config);
    expect(config.pools.length).toBe(poolOf.size);
    expect(config.pools.filter((p) => p.runUntagged).length).toBeLessThanOrEqual(1);
  });

  test('every key of every migrated runner, and every global key, has a report entry', () => {
    const ats = result.report.map((e) => e.at);
    for (const key of Object.keys(input)) if (key !== 'runners') expect({ key, covered: covered(key, ats) }).toEqual({ key, covered: true });
    (input.runners as Table[]).forEach((r, ri) => {
      for (const leaf of leaves(r, `runners[${ri}]`)) expect({ leaf, covered: covered(leaf, ats) }).toEqual({ leaf, covered: true });
    });
    for (const e of result.report) if (e.outcome === 'dropped' || e.outcome === 'replaced') expect(e.why).toMatch(/\w{3,}/);
  });

  test('the worker config.toml holds every carried and mapped runner setting, secrets as references', () => {
    for (const e of result.report) {
      const m = /^runners\[(\d+)\]\./.exec(e.at);
      if (!m || !poolOf.has(Number(m[1]))) continue;
      const w = workers[poolOf.get(Number(m[1]))!];
      const runner = w.toml.runners[0];
      const [atPath, suffix] = [e.at.split(' ')[0], e.at.split(' ').slice(1).join(' ')];
      const given = getIn(input, pathOf(atPath));
      if (e.outcome === 'carried') {
        const rel = pathOf(e.to!.replace(/^pools\[\d+\]\.runner\./, ''));
        const got = getIn(runner, rel);
        if (rel[rel.length - 1] === 'environment') for (const entry of (got as string[]).filter((x) => !x.includes('{{ssm:'))) expect(given as string[]).toContain(entry);
        else expect({ at: e.at, value: got }).toEqual({ at: e.at, value: given });
      } else if (e.outcome === 'mapped' && /\.worker\.docker\./.test(e.to!)) {
        const key = { image: 'image', privileged: 'privileged', volumes: 'volumes', disableCache: 'disable_cache' }[e.to!.split('.').pop()!]!;
        // Volumes validate refuses (host paths that give jobs the host) are reported dropped one by one.
        const dropped = result.report.filter((d) => d.outcome === 'dropped' && d.at.startsWith(`${e.at} `)).map((d) => JSON.parse(d.at.slice(e.at.length + 1)));
        const expected = Array.isArray(given) ? given.filter((v) => !dropped.includes(v)) : given;
        expect({ at: e.at, value: runner.docker[key] }).toEqual({ at: e.at, value: expected });
      } else if (e.outcome === 'mapped' && e.to!.endsWith('worker.cache.shared') && runner.cache) {
        expect(runner.cache.Shared).toBe(given);
      } else if (e.outcome === 'mapped' && e.to!.endsWith('worker.cache.bucketName')) {
        expect(runner.cache.s3.BucketName).toBe(given);
      } else if (e.outcome === 'mapped' && e.to!.endsWith('worker.caCertificate')) {
        expect(runner['tls-ca-file']).toBe(WORKER_CA_FILE);
        expect(w.script).toContain(readFile(String(given))!.trim());
      } else if (e.outcome === 'mapped' && e.to!.includes('.runner.')) {
        expect(getIn(runner, pathOf(e.to!.replace(/^pools\[\d+\]\.runner\./, '')))).toEqual(given);
      } else if (e.outcome === 'replaced' && e.to!.startsWith('runnerSecrets ')) {
        const setting = e.to!.slice('runnerSecrets '.length);
        const ref = /^\{\{ssm:\/[^}]+\}\}$/;
        if (setting.startsWith('environment.')) expect((runner.environment as string[]).find((x) => x.startsWith(`${suffix}=`))).toMatch(/^\w+=\{\{ssm:\/[^}]+\}\}$/);
        else expect(getIn(runner, setting.split('.'))).toMatch(ref);
      }
    }
  });

  test('each worker config.toml passes the gitlab-runner v18.3.1 schema check, and is what worker-config prints', () => {
    for (const w of workers) {
      expect({ pool: w.pool.name, problems: workerConfigProblems(w.toml) }).toEqual({ pool: w.pool.name, problems: [] });
      expect(w.embedded).toBe(workerConfigToml({ config, pool: w.pool, stage: 'prod', cacheBucket: 'acme-deployment-cache' }).replace(/\n+$/, ''));
    }
  });

  test('no secret anywhere: YAML, report, notes, commands, user data, worker config', () => {
    const everything = [result.yaml, JSON.stringify(result.report), JSON.stringify(result.warnings), JSON.stringify(result.secrets), ...workers.map((w) => w.script)].join('\n');
    expect(everything).not.toMatch(/S3CR3T/);
    if (/S3CR3T/.test(text)) expect(result.secrets.length).toBeGreaterThan(2);
    // Every job secret has its put-parameter command, and its parameter is readable by that pool's workers only.
    for (const pool of config.pools)
      for (const s of pool.runnerSecrets) expect(result.secrets.some((c) => c.what.includes(`${s.setting} of pool ${pool.name}`))).toBe(true);
  });
});

describe('odd inputs: the fixtures with keys dropped, upper-cased or given values of other types', () => {
  // A deterministic stream of mutations (no time or randomness in the test).
  let seed = 12;
  const next = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
  const odd: unknown[] = [1, -5, 2.5, 'x', '', true, [], ['a', 1], {}, { a: 1 }, [{ b: 2 }], '* * * *', 'Local'];
  function mutate(v: unknown): unknown {
    if (Array.isArray(v)) return v.map((x) => (next() < 0.2 ? odd[Math.floor(next() * odd.length)] : mutate(x)));
    if (v && typeof v === 'object' && !(v instanceof Date)) {
      const o: Table = {};
      for (const [k, x] of Object.entries(v)) {
        const r = next();
        if (r < 0.1) continue;
        o[r < 0.15 ? k.toUpperCase() : k] = r < 0.3 ? odd[Math.floor(next() * odd.length)] : mutate(x);
      }
      return o;
    }
    return v;
  }
  const texts = readdirSync(join(FIXTURES, 'real')).map((f) => readFileSync(join(FIXTURES, 'real', f), 'utf8'));

  test('400 mutated files: migrate answers or refuses with a MigrationError, never crashes or leaks; what it answers validates and renders', () => {
    const { stringify } = require('smol-toml') as typeof import('smol-toml');
    let migrated = 0;
    for (let i = 0; i < 400; i++) {
      const text = stringify(mutate(parseToml(texts[i % texts.length])) as Table);
      let result: MigrationResult;
      try {
        result = migrateConfigToml(text, { readFile });
      } catch (e) {
        expect((e as Error).name).toBe('MigrationError');
        continue;
      }
      migrated++;
      const config = parseConfig(result.yaml);
      const out = [result.yaml, JSON.stringify(result.report), JSON.stringify(result.warnings), ...config.pools.map((pool) => renderUserData({ config, pool, stage: 'prod', cacheBucket: 'b' }))].join('\n');
      expect(out).not.toMatch(/S3CR3T/);
    }
    expect(migrated).toBeGreaterThan(50);
  });
});
