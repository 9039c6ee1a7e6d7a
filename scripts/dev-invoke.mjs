#!/usr/bin/env node
// npm run dev:invoke -- -f <function> (-p <event file> | -d <json>) [more serverless options]
//
// `serverless invoke local` against the moto that `npm run dev` runs: one command instead of six
// variables. `npm run dev` writes what the stack needs in dev mode to .dev/env-<DEV_HTTP_PORT>.json
// (the config, moto's endpoint, its queue URLs, the worker role ids); this reads it, checks that
// moto answers, and runs `serverless invoke local --stage dev` with those variables and dummy
// credentials only: whatever AWS profile or keys this shell has are dropped, so the function can
// only reach moto. (Against a deployed stack, `serverless invoke -f reconcile` runs a real pass that
// launches and retires real instances: docs/deployment.md, "serverless invoke local".)
//
//   DEV_HTTP_PORT   which `npm run dev` to use (default 3000), as when it was started
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const httpPort = process.env.DEV_HTTP_PORT || '3000';
const envFile = join(root, '.dev', `env-${httpPort}.json`);
const args = process.argv.slice(2);

function fail(message) {
  console.error(`dev:invoke: ${message}`);
  process.exit(2);
}

if (!args.includes('-f') && !args.includes('--function'))
  fail('name the function: npm run dev:invoke -- -f webhook -p events/webhook-job-pending.json (functions: webhook, reconcile, interruption)');
if (!existsSync(envFile)) fail(`${envFile} does not exist: start \`npm run dev\` first${httpPort === '3000' ? '' : ` with DEV_HTTP_PORT=${httpPort}`} (it writes that file when moto is ready)`);
const dev = JSON.parse(readFileSync(envFile, 'utf8'));
const motoUp = await new Promise((res) => {
  const s = connect({ host: '127.0.0.1', port: Number(dev.DEV_MOTO_PORT) });
  s.once('connect', () => (s.destroy(), res(true)));
  s.once('error', () => res(false));
});
if (!motoUp) fail(`moto does not answer on ${dev.GSA_DEV_ENDPOINT}: is \`npm run dev\` still running? (${envFile} is left from a run that did not stop cleanly)`);

// Only what the dev stack needs, and nothing that could reach a real account.
const env = { ...process.env };
for (const k of Object.keys(env)) if (/^AWS_/.test(k) || /^GSA_/.test(k)) delete env[k];
Object.assign(env, {
  GSA_CONFIG: dev.GSA_CONFIG,
  GSA_DEV_ENDPOINT: dev.GSA_DEV_ENDPOINT,
  GSA_DEV_QUEUE_URL: dev.GSA_DEV_QUEUE_URL,
  GSA_DEV_REPORT_QUEUE_URL: dev.GSA_DEV_REPORT_QUEUE_URL,
  GSA_DEV_WORKER_ROLE_IDS: dev.GSA_DEV_WORKER_ROLE_IDS,
  GSA_DEV_CONFIG_FILE: dev.GSA_DEV_CONFIG_FILE,
  GSA_ESBUILD_DIR: `.esbuild-invoke-${httpPort}`,
  AWS_ACCESS_KEY_ID: 'testing',
  AWS_SECRET_ACCESS_KEY: 'testing',
  AWS_REGION: dev.AWS_REGION,
  AWS_DEFAULT_REGION: dev.AWS_REGION,
  AWS_ENDPOINT_URL: dev.GSA_DEV_ENDPOINT,
  AWS_EC2_METADATA_DISABLED: 'true',
  SLS_TELEMETRY_DISABLED: '1',
  SLS_NOTIFICATIONS_MODE: 'off',
});

const child = spawn(process.execPath, [join(root, 'node_modules', 'osls', 'bin', 'serverless.js'), 'invoke', 'local', '--stage', dev.stage, ...args], { cwd: root, env, stdio: 'inherit' });
child.on('exit', (code, signal) => process.exit(signal ? 1 : (code ?? 1)));
