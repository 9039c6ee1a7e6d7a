/**
 * Cold start of the webhook Lambda, measured the way Lambda pays it: a fresh Node.js process
 * loads the bundled handler (built with the deployment's own esbuild options,
 * lib/deploy/esbuild-options.js), then serves its first delivery (SSM GetParameter for the secret
 * + SQS SendMessage, against moto over HTTP), then a warm one. Sizes and load times of every
 * handler bundle, beside a bare Node start, are bench/bundles.ts's.
 *
 *   npx tsx bench/webhook.ts            (RUNS=10 by default)
 *
 * Figures are from this machine (no Lambda sandbox, no network latency to AWS): compare them with
 * each other, not with CloudWatch's Init Duration.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from 'esbuild';
import { SSMClient, PutParameterCommand } from '@aws-sdk/client-ssm';
import { SQSClient, CreateQueueCommand } from '@aws-sdk/client-sqs';
import { startMoto, motoClientConfig } from '../test/helpers/moto';

const { lambdaBuildOptions } = require('../lib/deploy/esbuild-options.js');

const RUNS = Number(process.env.RUNS ?? 10);
const root = join(__dirname, '..');
const dir = mkdtempSync(join(tmpdir(), 'gsa-bench-webhook-'));

async function bundle(name: string): Promise<{ file: string; bytes: number }> {
  const file = join(dir, `${name}.js`);
  await build({ ...lambdaBuildOptions(), entryPoints: [join(root, `handlers/${name}.ts`)], outfile: file, logLevel: 'silent' });
  return { file, bytes: statSync(file).size };
}

const CHILD = `
const t0 = process.hrtime.bigint();
const mod = require(process.env.BUNDLE);
const t1 = process.hrtime.bigint();
(async () => {
  const out = { loadMs: Number(t1 - t0) / 1e6 };
  if (process.env.EVENT) {
    const event = JSON.parse(process.env.EVENT);
    const ctx = { awsRequestId: 'bench', getRemainingTimeInMillis: () => 10000 };
    const write = process.stdout.write.bind(process.stdout);
    process.stdout.write = () => true; // the handler's log lines are not part of the figure
    const a = process.hrtime.bigint();
    const r1 = await mod.handler(event, ctx);
    const b = process.hrtime.bigint();
    const r2 = await mod.handler(event, ctx);
    const c = process.hrtime.bigint();
    process.stdout.write = write;
    out.firstMs = Number(b - a) / 1e6;
    out.warmMs = Number(c - b) / 1e6;
    out.status = [r1.statusCode, r2.statusCode];
  }
  process.stdout.write(JSON.stringify(out));
})();
`;

function stats(xs: number[]) {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.floor(p * s.length))];
  return `median ${q(0.5).toFixed(1)} ms, p90 ${q(0.9).toFixed(1)} ms, min ${s[0].toFixed(1)} ms`;
}

async function main() {
  const moto = await startMoto();
  try {
    const client = motoClientConfig(moto.endpoint);
    const secret = 'bench-webhook-secret-0123456789abcdef';
    await new SSMClient(client).send(new PutParameterCommand({ Name: '/bench/webhook-secret', Value: secret, Type: 'SecureString', Overwrite: true }));
    const q = await new SQSClient(client).send(new CreateQueueCommand({ QueueName: 'bench-events' }));
    const event = JSON.parse(require('node:fs').readFileSync(join(root, 'events/webhook-job-pending.json'), 'utf8'));
    event.headers['x-gitlab-token'] = secret;

    const webhook = await bundle('webhook');
    const childFile = join(dir, 'child.js');
    writeFileSync(childFile, CHILD);
    const env = {
      PATH: process.env.PATH,
      AWS_ENDPOINT_URL: moto.endpoint,
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: 'testing',
      AWS_SECRET_ACCESS_KEY: 'testing',
      QUEUE_URL: q.QueueUrl!,
      WEBHOOK_SECRET_PARAMETER: '/bench/webhook-secret',
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true', // Lambda runs Node 24; this machine may run 20
    };
    const runChild = (file: string, withEvent: boolean) =>
      JSON.parse(execFileSync(process.execPath, [childFile], { env: { ...env, BUNDLE: file, ...(withEvent ? { EVENT: JSON.stringify(event) } : {}) }, encoding: 'utf8' }));

    runChild(webhook.file, true); // warm the file cache once; not counted
    const w = Array.from({ length: RUNS }, () => runChild(webhook.file, true));
    if (w.some((r) => r.status[0] !== 202)) throw new Error(`the webhook did not answer 202: ${JSON.stringify(w[0])}`);

    console.log(`webhook cold start, ${RUNS} fresh node ${process.version} processes, moto at ${moto.endpoint}`);
    console.log(`  bundle size          webhook ${(webhook.bytes / 1024).toFixed(0)} KiB (minified, as deployed)`);
    console.log(`  load webhook bundle  ${stats(w.map((x) => x.loadMs))}`);
    console.log(`  first delivery       ${stats(w.map((x) => x.firstMs))}  (SSM secret + SQS send, new connections)`);
    console.log(`  warm delivery        ${stats(w.map((x) => x.warmMs))}  (secret cached)`);
    console.log(`  cold total           ${stats(w.map((x) => x.loadMs + x.firstMs))}  (GitLab waits 10 s)`);
  } finally {
    await moto.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
