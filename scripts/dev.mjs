#!/usr/bin/env node
// npm run dev: the deployment on this machine. Starts moto (EC2, SSM, SQS), seeds it with what the
// stack would create (lib/deploy/dev-seed.ts), starts serverless-offline with the real handlers,
// and plays EventBridge Scheduler (serverless-offline runs HTTP events but no schedules): it invokes
// the reconcile function through serverless-offline's Lambda API every DEV_TICK_SECONDS, as the
// deployed schedule does every minute. The function reads moto's job-event and worker-report queues
// itself, passes back to back for most of its timeout (lib/controller/loop.ts), so a webhook event
// is picked up within a second or two. Documented in docs/deployment.md ("Local development").
//
//   DEV_HTTP_PORT       webhook HTTP port              (default 3000)
//   DEV_LAMBDA_PORT     serverless-offline Lambda API  (default 3002)
//   DEV_MOTO_PORT       moto                           (default 5000)
//   DEV_WEBHOOK_SECRET  X-Gitlab-Token to send         (default dev-webhook-secret-0123456789abcdef; 32+ characters, as deployed)
//   DEV_TICK_SECONDS    reconcile tick                 (default 60)
// Everything started here is stopped on Ctrl-C / SIGTERM, by PID.
//
// It also writes .dev/env-<DEV_HTTP_PORT>.json: the variables `serverless invoke local` needs to run
// a function against this moto (scripts/dev-invoke.mjs, `npm run dev:invoke -- -f webhook -p ...`),
// and removes it when it stops.
import { spawn } from 'node:child_process';
import { connect } from 'node:net';
import { resolve, dirname, join } from 'node:path';
import { rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { tsImport } from 'tsx/esm/api';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const port = (name, def) => {
  const v = process.env[name];
  if (v === undefined || v === '') return def;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 65535) fail(`${name}=${JSON.stringify(v)} must be a TCP port (1-65535)`);
  return n;
};
function fail(msg) {
  console.error(`dev: ${msg}`);
  process.exit(2);
}

const httpPort = port('DEV_HTTP_PORT', 3000);
const lambdaPort = port('DEV_LAMBDA_PORT', 3002);
const motoPort = port('DEV_MOTO_PORT', 5000);
const secret = process.env.DEV_WEBHOOK_SECRET || 'dev-webhook-secret-0123456789abcdef';
const tickSeconds = Number(process.env.DEV_TICK_SECONDS || 60);
const region = 'us-east-1';
const stage = 'dev';
const endpoint = `http://127.0.0.1:${motoPort}`;
const children = [];
const esbuildDir = process.env.GSA_ESBUILD_DIR || `.esbuild-dev-${httpPort}`;
const invokeEnvFile = join(root, '.dev', `env-${httpPort}.json`);
let stopping = false;

const log = (msg) => console.log(`dev: ${msg}`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const portOpen = (p) =>
  new Promise((res) => {
    const s = connect({ host: '127.0.0.1', port: p });
    s.once('connect', () => (s.destroy(), res(true)));
    s.once('error', () => res(false));
  });

function start(name, cmd, args, env, opts = {}) {
  // Own process group, so the whole tree (npx -> node) is stopped through this PID.
  const child = spawn(cmd, args, { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  children.push({ name, child });
  const prefix = (stream, out) =>
    stream.on('data', (d) => {
      if (opts.quiet) return;
      for (const line of String(d).split('\n')) if (line.trim()) out.write(`[${name}] ${line}\n`);
    });
  prefix(child.stdout, process.stdout);
  prefix(child.stderr, process.stderr);
  child.on('exit', (code, signal) => {
    if (!stopping) {
      console.error(`dev: ${name} exited (${signal ?? code}); stopping`);
      void stop(1);
    }
  });
  return child;
}

function groupAlive(pid) {
  try {
    process.kill(-pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function stop(code = 0) {
  if (stopping) return;
  stopping = true;
  for (const { name, child } of children.reverse()) {
    if (child.exitCode !== null || child.signalCode !== null) continue;
    const exited = new Promise((r) => child.once('exit', r));
    try {
      process.kill(-child.pid, 'SIGTERM');
    } catch {}
    const t = setTimeout(() => {
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {}
    }, 5000);
    await exited;
    // The group leader (npx) can exit before its children: wait until the whole group is gone.
    for (let i = 0; i < 50 && groupAlive(child.pid); i++) await sleep(100);
    if (groupAlive(child.pid)) {
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {}
    }
    clearTimeout(t);
    log(`stopped ${name} (pid ${child.pid})`);
  }
  if (!process.env.GSA_ESBUILD_DIR) rmSync(join(root, esbuildDir), { recursive: true, force: true });
  rmSync(invokeEnvFile, { force: true });
  process.exit(code);
}
process.on('SIGINT', () => void stop(0));
process.on('SIGTERM', () => void stop(0));

async function waitFor(what, check, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (stopping) return;
    if (await check()) return;
    await sleep(200);
  }
  console.error(`dev: ${what} did not come up within ${timeoutMs / 1000} s`);
  await stop(1);
}

async function main() {
  for (const [name, p] of [['DEV_HTTP_PORT', httpPort], ['DEV_LAMBDA_PORT', lambdaPort], ['DEV_MOTO_PORT', motoPort]])
    if (await portOpen(p)) fail(`port ${p} (${name}) is already in use; choose another with ${name}=...`);

  start('moto', 'python3', ['-m', 'moto.server', '-H', '127.0.0.1', '-p', String(motoPort)], { PYTHONUNBUFFERED: '1' }, { quiet: true });
  await waitFor('moto', async () => (await portOpen(motoPort)) && (await fetch(`${endpoint}/moto-api/`).then((r) => r.status < 500, () => false)), 30_000);

  const { seedMoto } = await tsImport('../lib/deploy/dev-seed.ts', import.meta.url);
  const seeded = await seedMoto({ endpoint, region, stage, webhookSecret: secret, configPath: join(root, '.dev', `config-${httpPort}.yaml`) });
  log(`moto seeded at ${endpoint}: queue, SSM secrets, launch template, config ${seeded.configPath}`);

  const awsEnv = { AWS_ACCESS_KEY_ID: 'testing', AWS_SECRET_ACCESS_KEY: 'testing', AWS_REGION: region, AWS_DEFAULT_REGION: region };
  // What makes serverless-vars.js build the stack for this moto (lib/deploy/serverless-vars.js, "dev mode").
  const devEnv = {
    ...awsEnv,
    GSA_CONFIG: seeded.configPath,
    GSA_DEV_ENDPOINT: endpoint,
    GSA_DEV_QUEUE_URL: seeded.queueUrl,
    GSA_DEV_REPORT_QUEUE_URL: seeded.reportQueueUrl,
    GSA_DEV_WORKER_ROLE_IDS: seeded.workerRoleIds.join(','),
    GSA_DEV_CONFIG_FILE: seeded.configPath,
  };
  writeFileSync(invokeEnvFile, JSON.stringify({ ...devEnv, DEV_MOTO_PORT: String(motoPort), DEV_WEBHOOK_SECRET: secret, stage }, null, 2) + '\n');
  start('offline', 'npx', ['serverless', 'offline', 'start', '--stage', stage, '--param', `config=${seeded.configPath}`], {
    ...devEnv,
    DEV_HTTP_PORT: String(httpPort),
    DEV_LAMBDA_PORT: String(lambdaPort),
    SLS_TELEMETRY_DISABLED: '1',
    GSA_ESBUILD_DIR: esbuildDir,
  });
  await waitFor('serverless-offline', async () => (await portOpen(httpPort)) && (await portOpen(lambdaPort)), 120_000);

  const url = `http://127.0.0.1:${httpPort}/webhook`;
  log(`webhook URL: ${url}`);
  log(`try: curl -s -X POST ${url} -H 'Content-Type: application/json' -H 'X-Gitlab-Event: Job Hook' -H 'X-Gitlab-Token: ${secret}' --data @events/job-hook-pending.body.json`);
  log(`invoke a function against this moto: ${httpPort === 3000 ? '' : `DEV_HTTP_PORT=${httpPort} `}npm run dev:invoke -- -f webhook -p events/webhook-job-pending.json   (or -f reconcile -p events/reconcile-manual.json)`);
  log(`workers: AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing aws --endpoint-url ${endpoint} --region ${region} ec2 describe-instances --query 'Reservations[].Instances[].[InstanceId,State.Name,InstanceType]'`);
  log('ready');

  await schedule(seeded);
}

// One invocation at a time: reconcile is the single writer (reserved concurrency 1 in AWS); a tick
// that finds it still running is dropped, as the deployed function's maximumEventAge drops it.
let running = false;
async function invokeReconcile(name, event) {
  if (running) return undefined;
  running = true;
  try {
    const res = await fetch(`http://127.0.0.1:${lambdaPort}/2015-03-31/functions/${name}/invocations`, { method: 'POST', body: JSON.stringify(event) });
    const text = await res.text();
    if (!res.ok || res.headers.get('x-amz-function-error')) throw new Error(`reconcile failed (${res.status}): ${text.slice(0, 500)}`);
    return text ? JSON.parse(text) : undefined;
  } finally {
    running = false;
  }
}

async function schedule(seeded) {
  const name = seeded.functionNames.reconcile;
  const tick = async () => {
    if (stopping) return;
    try {
      const r = await invokeReconcile(name, { trigger: 'schedule', reason: 'tick' });
      if (r) log(`reconcile ran ${r.passes} pass(es)`);
    } catch (e) {
      if (!stopping) console.error(`dev: ${e.message}`);
    }
  };
  setInterval(tick, tickSeconds * 1000).unref();
  await tick();
  // Keep the process alive until stopped.
  await new Promise(() => {});
}

main().catch(async (e) => {
  console.error(`dev: ${e.stack ?? e}`);
  await stop(1);
});
