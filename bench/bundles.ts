/**
 * Size and load time of every Lambda handler bundle, built exactly as serverless-esbuild builds
 * them for deployment (lib/deploy/esbuild-options.js), beside a bare Node.js start.
 *
 *   npx tsx bench/bundles.ts            (RUNS=15 by default; npm run bench -- bundles)
 *
 * Definitions (docs/deployment.md, "Cold start"):
 * - load: wall-clock time inside a fresh `node` process from just before `require(bundle)` until it
 *   returns — reading, compiling and running the bundle's top level (the handlers create their SDK
 *   clients at the first event, not at load). It is what Lambda's Init phase spends on the handler
 *   module once the runtime is up.
 * - bare Node start: wall-clock time of a whole `node -e ''` process, spawn to exit, seen from this
 *   process: what starting the runtime costs on this machine, the yardstick for load.
 * - whole process: the same spawn-to-exit time for a process that requires the bundle; minus the
 *   bare start, a second view of load that includes what the bundle adds to exit.
 * - cpu: load as CPU time (user + system, all threads, process.cpuUsage() around the require). Wall
 *   time on a busy machine includes waiting for a core; CPU time hardly does: when the machine's
 *   load average (printed first) exceeds its cores, read the wall figures with care.
 * The goal (issue 13): webhook load <= 0.75 x bare Node start. Runs are interleaved (bare, then
 * each bundle, then again) and ratios and differences are taken run by run, then their median: a
 * machine that slows down during the bench slows both sides of each pair alike.
 * Also shown: what --enable-source-maps adds to load, the webhook with its two AWS calls made by
 * the v3 clients (as before issue 13, and with environment credentials only: the alternatives
 * weighed), and the CommonJS SDK builds that esbuild picks without mainFields: ['module', 'main'].
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { deflateRawSync } from 'node:zlib';
import { build } from 'esbuild';

const { lambdaBuildOptions, lambdaRuntime } = require('../lib/deploy/esbuild-options.js');

const RUNS = Number(process.env.RUNS ?? 15);
const root = join(__dirname, '..');
const dir = mkdtempSync(join(tmpdir(), 'gsa-bench-bundles-'));
const handlers = readdirSync(join(root, 'handlers'))
  .filter((f) => f.endsWith('.ts'))
  .map((f) => f.slice(0, -3))
  .sort((a, b) => (a === 'webhook' ? -1 : b === 'webhook' ? 1 : a.localeCompare(b)));

interface Bundle {
  name: string;
  variant: string;
  file: string;
  jsBytes: number;
  mapBytes: number;
  deflatedBytes: number;
}

/**
 * The webhook's AWS path, alternatives weighed (issue 13; docs/architecture.md, "The webhook's AWS
 * calls"): the same handler with its two calls made by the v3 SSM and SQS clients (as before), and
 * (a) those clients with credentials from the environment only, which keeps the default chain's
 * SSO/STS clients out. The deployed webhook signs two JSON requests itself (lib/aws/aws-json.ts).
 */
const ALTERNATIVES: Record<string, { entry: string; plugins?: unknown[]; what: string }> = {
  'sdk-env-credentials': {
    entry: 'bench/alternatives/webhook-sdk-clients.ts',
    plugins: [{ name: 'env-credentials', setup: (b: any) => b.onResolve({ filter: /^@aws-sdk\/credential-provider-node$/ }, () => ({ path: join(root, 'bench/alternatives/env-credentials.ts') })) }],
    what: '(a) v3 SSM + SQS clients, credentials from the environment only',
  },
  'sdk-clients': { entry: 'bench/alternatives/webhook-sdk-clients.ts', what: 'v3 SSM + SQS clients, default credential chain (before issue 13)' },
};

async function bundle(name: string, variant: 'deployed' | 'cjs-sdk' | keyof typeof ALTERNATIVES): Promise<Bundle> {
  const outdir = join(dir, variant, name);
  const alt = ALTERNATIVES[variant];
  const options = { ...lambdaBuildOptions(), ...(variant === 'cjs-sdk' ? { mainFields: ['main', 'module'] } : {}), ...(alt?.plugins ? { plugins: alt.plugins } : {}) };
  await build({ ...options, entryPoints: { [name]: join(root, alt ? alt.entry : `handlers/${name}.ts`) }, outdir, logLevel: 'silent' });
  const file = join(outdir, `${name}.js`);
  const js = readFileSync(file);
  const map = readFileSync(`${file}.map`);
  // What the zip carries, deflated as zip does (level 9 here; the packager's level may differ slightly).
  const deflatedBytes = deflateRawSync(js, { level: 9 }).length + deflateRawSync(map, { level: 9 }).length;
  return { name, variant, file, jsBytes: statSync(file).size, mapBytes: map.length, deflatedBytes };
}

const CHILD = `const c0 = process.cpuUsage(); const t0 = process.hrtime.bigint(); require(process.argv[2]);
const t1 = process.hrtime.bigint(); const c1 = process.cpuUsage(c0);
process.stdout.write(JSON.stringify({ loadMs: Number(t1 - t0) / 1e6, cpuMs: (c1.user + c1.system) / 1000 }));`;

// Only PATH: no AWS settings, nothing that changes what the bundle does at load.
const env = { PATH: process.env.PATH };

interface Run {
  loadMs: number;
  cpuMs: number;
  wholeMs: number;
}

/** One fresh process requiring the bundle: load (wall and CPU) and its whole spawn-to-exit time. */
function loadOnce(childFile: string, file: string, nodeArgs: string[] = []): Run {
  const t0 = process.hrtime.bigint();
  const out = JSON.parse(execFileSync(process.execPath, [...nodeArgs, childFile, file], { env, encoding: 'utf8' }));
  return { ...out, wholeMs: Number(process.hrtime.bigint() - t0) / 1e6 };
}

/** One `node -e ''`, spawn to exit. */
function bareOnce(): number {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(process.execPath, ['-e', ''], { env });
  if (r.status !== 0) throw new Error('node -e "" failed');
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

/** Linear interpolation between order statistics; quantile(xs, 0.5) is the median. */
const quantile = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  const i = (s.length - 1) * q;
  return s[Math.floor(i)] + (s[Math.ceil(i)] - s[Math.floor(i)]) * (i - Math.floor(i));
};
const median = (xs: number[]) => quantile(xs, 0.5);
/** The median of f(a[i], b[i]): a ratio or a difference taken run by run. */
const paired = (a: number[], b: number[], f: (x: number, y: number) => number) => median(a.map((x, i) => f(x, b[i])));
const loadavg1 = () => loadavg()[0];
const kib = (b: number) => `${(b / 1024).toFixed(0)} KiB`;
const ms = (x: number) => `${x.toFixed(1)} ms`;

async function main() {
  const deployed = await Promise.all(handlers.map((h) => bundle(h, 'deployed')));
  const cjs = await Promise.all(handlers.map((h) => bundle(h, 'cjs-sdk')));
  const alternatives = await Promise.all(Object.keys(ALTERNATIVES).map((v) => bundle('webhook', v)));
  const childFile = join(dir, 'child.js');
  writeFileSync(childFile, CHILD);

  type Series = { load: number[]; cpu: number[]; whole: number[] };
  const series = new Map<string, Series>();
  const add = (key: string, r: Run) => {
    const s = series.get(key) ?? { load: [], cpu: [], whole: [] };
    s.load.push(r.loadMs);
    s.cpu.push(r.cpuMs);
    s.whole.push(r.wholeMs);
    series.set(key, s);
  };
  const bare: number[] = [];
  const loadavg = loadavg1();
  for (let i = -1; i < RUNS; i++) {
    // i = -1 warms the file cache and is not counted.
    const b = bareOnce();
    if (i >= 0) bare.push(b);
    for (const x of deployed) {
      const plain = loadOnce(childFile, x.file);
      const maps = loadOnce(childFile, x.file, ['--enable-source-maps']);
      if (i >= 0) add(`${x.name}`, plain), add(`${x.name}+maps`, maps);
    }
    for (const x of cjs) {
      const r = loadOnce(childFile, x.file);
      if (i >= 0) add(`${x.name}-cjs`, r);
    }
    for (const x of alternatives) {
      const r = loadOnce(childFile, x.file);
      if (i >= 0) add(`webhook-${x.variant}`, r);
    }
  }

  const bareMs = median(bare);
  console.log(`Lambda bundles as deployed (${lambdaRuntime()}, target ${lambdaBuildOptions().target}, ESM SDK builds), ${RUNS} fresh node ${process.version} processes each, medians`);
  console.log(`  machine: ${cpus().length} cores, load average ${loadavg.toFixed(1)} at the start`);
  console.log(`  bare Node start (node -e '')  ${ms(bareMs)} whole process (p25-p75 ${ms(quantile(bare, 0.25))}-${ms(quantile(bare, 0.75))})`);
  for (const x of deployed) {
    console.log(`  ${x.name.padEnd(13)} ${kib(x.jsBytes).padStart(8)} js, ${kib(x.mapBytes).padStart(8)} map (no sources), ${kib(x.deflatedBytes).padStart(7)} deflated`);
  }
  for (const x of deployed) {
    const s = series.get(x.name)!;
    const m = series.get(`${x.name}+maps`)!;
    const load = median(s.load);
    const cpu = median(s.cpu);
    const ratio = paired(s.load, bare, (a, b) => a / b);
    console.log(
      `  ${x.name.padEnd(13)} load ${ms(load)} = ${ratio.toFixed(2)} x bare start (p25-p75 ${ms(quantile(s.load, 0.25))}-${ms(quantile(s.load, 0.75))}, cpu ${ms(cpu)}); ` +
        `whole process +${ms(paired(s.whole, bare, (a, b) => a - b))}; ` +
        `--enable-source-maps +${ms(paired(m.load, s.load, (a, b) => a - b))} (cpu +${ms(paired(m.cpu, s.cpu, (a, b) => a - b))})`,
    );
  }
  const webhook = paired(series.get('webhook')!.load, bare, (a, b) => a / b);
  console.log(`  goal: webhook load <= 0.75 x bare Node start: ${webhook <= 0.75 ? 'met' : 'NOT met'} (${webhook.toFixed(2)} x)`);
  const lean = deployed.find((x) => x.name === 'webhook')!;
  const row = (what: string, x: Bundle, key: string) => {
    const s = series.get(key)!;
    console.log(`  ${what.padEnd(66)} ${kib(x.jsBytes).padStart(8)} js | load ${ms(median(s.load))} = ${paired(s.load, bare, (a, b) => a / b).toFixed(2)} x bare start (cpu ${ms(median(s.cpu))})`);
  };
  console.log(`The webhook's two AWS calls (SSM GetParameter, SQS SendMessage), alternatives weighed:`);
  row('deployed: signed JSON requests (SDK signer + node:https)', lean, 'webhook');
  for (const x of alternatives) row(ALTERNATIVES[x.variant].what, x, `webhook-${x.variant}`);
  const ratioOf = (key: string) => paired(series.get(key)!.load, bare, (a, b) => a / b);
  const trimmed = ratioOf('webhook-sdk-env-credentials');
  console.log(
    `  chosen: the signed requests (${ratioOf('webhook').toFixed(2)} x). The clients carry their whole runtime (endpoint rules, schemas, middleware, HTTP handler) for two calls;` +
      ` trimmed to environment credentials (a) they ${trimmed <= 0.75 ? 'reach' : 'miss'} the goal at ${trimmed.toFixed(2)} x and load ${(median(series.get('webhook-sdk-env-credentials')!.cpu) / median(series.get('webhook')!.cpu)).toFixed(1)} x the CPU of the signed requests.` +
      ` Same retries, timeouts and error classes (lib/aws/webhook-aws.ts); the controller keeps the clients.`,
  );
  console.log(`Same handlers with the SDK's CommonJS builds (esbuild's default mainFields for platform node):`);
  for (const x of cjs) {
    const d = deployed.find((y) => y.name === x.name)!;
    const c = series.get(`${x.name}-cjs`)!;
    const e = series.get(x.name)!;
    console.log(
      `  ${x.name.padEnd(13)} ${kib(x.jsBytes).padStart(8)} js (deployed: ${kib(d.jsBytes)}, ${((1 - d.jsBytes / x.jsBytes) * 100).toFixed(0)} % less) | ` +
        `load ${ms(median(c.load))}, cpu ${ms(median(c.cpu))} (deployed: ${ms(median(e.load))}, cpu ${ms(median(e.cpu))})`,
    );
  }
}

main()
  .catch((e) => {
    console.error(e);
    process.exitCode = 1;
  })
  .finally(() => rmSync(dir, { recursive: true, force: true }));
