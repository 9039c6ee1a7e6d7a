/**
 * End to end, as a user would run it: `npm run dev` (scripts/dev.mjs: moto + serverless-offline
 * + the SQS bridge), then GitLab job hooks over HTTP. A wrong token gets 401 and launches nothing;
 * a valid pending-job hook leads to an instance in moto. Free ports; everything is stopped by the
 * PID of the dev script (which stops its own children by PID) and checked gone.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { EC2Client, DescribeInstancesCommand } from '@aws-sdk/client-ec2';
import { freePort } from '../helpers/moto';

const root = join(__dirname, '..', '..');
const SECRET = 'e2e-secret-0123456789';
let dev: ChildProcess;
let output = '';
let ports: { http: number; lambda: number; moto: number };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until<T>(what: string, f: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const v = await f();
    if (v !== undefined) return v;
    await sleep(500);
  }
  throw new Error(`${what} did not happen within ${timeoutMs / 1000} s; dev output:\n${output.slice(-4000)}`);
}

beforeAll(async () => {
  ports = { http: await freePort(), lambda: await freePort(), moto: await freePort() };
  dev = spawn(process.execPath, ['scripts/dev.mjs'], {
    cwd: root,
    env: { ...process.env, DEV_HTTP_PORT: String(ports.http), DEV_LAMBDA_PORT: String(ports.lambda), DEV_MOTO_PORT: String(ports.moto), DEV_WEBHOOK_SECRET: SECRET, DEV_TICK_SECONDS: '3600' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  dev.stdout!.on('data', (d) => (output += d));
  dev.stderr!.on('data', (d) => (output += d));
  await until('dev ready', async () => (/dev: ready/.test(output) ? true : dev.exitCode !== null ? Promise.reject(new Error(output)) : undefined), 180_000);
}, 200_000);

afterAll(async () => {
  if (dev && dev.exitCode === null && dev.signalCode === null) {
    const exited = new Promise((r) => dev.once('exit', r));
    dev.kill('SIGTERM');
    await exited;
  }
}, 30_000);

const ec2 = () => new EC2Client({ endpoint: `http://127.0.0.1:${ports.moto}`, region: 'us-east-1', credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' }, maxAttempts: 1 });
async function instances(): Promise<string[]> {
  const out = await ec2().send(new DescribeInstancesCommand({}));
  return (out.Reservations ?? []).flatMap((r) => r.Instances ?? []).map((i) => i.InstanceId!);
}
const hook = (token: string) =>
  fetch(`http://127.0.0.1:${ports.http}/webhook`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-gitlab-event': 'Job Hook', 'x-gitlab-token': token, 'idempotency-key': `e2e-${token.length}` },
    body: readFileSync(join(root, 'events/job-hook-pending.body.json'), 'utf8'),
  });

describe('npm run dev, end to end', () => {
  it('answers 401 to a wrong token and launches nothing', async () => {
    const res = await hook('not-the-secret');
    expect(res.status).toBe(401);
    // Give a (wrongly) queued event the time to reach reconcile before checking nothing happened.
    await sleep(3000);
    expect(output).not.toMatch(/reconcile took/);
    expect(await instances()).toEqual([]);
  }, 30_000);

  it('turns a valid pending-job webhook into a spot worker in moto', async () => {
    const res = await hook(SECRET);
    expect(res.status).toBe(202);
    const ids = await until('an instance in moto', async () => ((await instances()).length ? instances() : undefined), 90_000);
    expect(ids).toHaveLength(1);
    expect(output).toMatch(/launched 1 \(1 for pending jobs\)/);
    // The functions' JSON logs never carry the secret (the dev script's own curl hint does, on purpose).
    const functionLogs = output.split('\n').filter((l) => l.startsWith('[offline] {'));
    expect(functionLogs.length).toBeGreaterThan(3);
    for (const l of functionLogs) expect(l).not.toContain(SECRET);
  }, 120_000);

  it('stops everything it started', async () => {
    const exited = new Promise<number | null>((r) => dev.once('exit', (code) => r(code)));
    dev.kill('SIGTERM');
    expect(await exited).toBe(0);
    const pids = [...output.matchAll(/stopped \w+ \(pid (\d+)\)/g)].map((m) => Number(m[1]));
    expect(pids.length).toBe(2);
    for (const pid of pids) expect(() => process.kill(pid, 0)).toThrow();
  }, 30_000);
});
