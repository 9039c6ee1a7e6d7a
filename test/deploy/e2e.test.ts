/**
 * End to end, as a user would run it: `npm run dev` (scripts/dev.mjs: moto + serverless-offline
 * + the minute tick; the reconcile function reads moto's queues itself), then GitLab job hooks over HTTP. A wrong token gets 401 and launches nothing;
 * a valid pending-job hook leads to an instance in moto; `npm run dev:invoke` (serverless invoke
 * local) runs the webhook and the reconcile function against the same moto. Free ports; everything is stopped by the
 * PID of the dev script (which stops its own children by PID) and checked gone.
 *
 * "Nothing happened" is checked from what the system reports, never after a fixed sleep: the
 * webhook's own logged decision for the forged request (its correlation id is the X-Gitlab-Event-UUID
 * we send), and the reconcile function's own count of the events its passes took.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { EC2Client, DescribeInstancesCommand } from '@aws-sdk/client-ec2';
import { freePort } from '../helpers/moto';

const root = join(__dirname, '..', '..');
const exec = promisify(execFile);
const SECRET = 'e2e-secret-0123456789abcdef0123456789';
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
    env: { ...process.env, DEV_HTTP_PORT: String(ports.http), DEV_LAMBDA_PORT: String(ports.lambda), DEV_MOTO_PORT: String(ports.moto), DEV_WEBHOOK_SECRET: SECRET, DEV_TICK_SECONDS: '20' },
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
const pendingBody = JSON.parse(readFileSync(join(root, 'events/job-hook-pending.body.json'), 'utf8'));
/** A pending-job delivery; a distinct job id per delivery, so each one queued would need its own worker. */
const hook = (token: string, uuid: string, jobId: number) =>
  fetch(`http://127.0.0.1:${ports.http}/webhook`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-gitlab-event': 'Job Hook', 'x-gitlab-token': token, 'x-gitlab-event-uuid': uuid, 'idempotency-key': uuid },
    body: JSON.stringify({ ...pendingBody, build_id: jobId }),
  });

/** The functions' JSON log lines (serverless-offline prefixes them with "[offline] "). */
function functionLogs(): Record<string, any>[] {
  return output
    .split('\n')
    .filter((l) => l.startsWith('[offline] {'))
    .flatMap((l) => {
      try {
        return [JSON.parse(l.slice('[offline] '.length))];
      } catch {
        return []; // a line still being written
      }
    });
}
/** Job events the reconcile function's passes took from the queue, in all (its "pass done" lines). */
const messagesTaken = () => functionLogs().filter((l) => l.message === 'pass done' && l.function === 'reconcile').reduce((n, l) => n + Number(l.events ?? 0), 0);

const FORGED = { uuid: 'e2e-forged-0000-0000-000000000001', jobId: 990_001 };
const VALID = { uuid: 'e2e-valid-0000-0000-000000000002', jobId: 4242 };

describe('npm run dev, end to end', () => {
  it('answers 401 to a wrong token and queues nothing (the handler\'s own decision for that request)', async () => {
    const res = await hook('not-the-secret', FORGED.uuid, FORGED.jobId);
    expect(res.status).toBe(401);
    // The invocation's last line; every decision line of that invocation precedes it.
    const done = await until('the webhook invocation line of the forged request', async () => functionLogs().find((l) => l.correlationId === FORGED.uuid && l.message === 'invocation done'), 30_000);
    expect(done.statusCode).toBe(401);
    const lines = functionLogs().filter((l) => l.correlationId === FORGED.uuid);
    expect(lines.filter((l) => l.message === 'webhook rejected').map((l) => l.status)).toEqual([401]);
    expect(lines.some((l) => l.message === 'job event queued')).toBe(false);
  }, 60_000);

  it('turns a valid pending-job webhook into a spot worker in moto; the forged delivery added nothing', async () => {
    const res = await hook(SECRET, VALID.uuid, VALID.jobId);
    expect(res.status).toBe(202);
    const ids = await until('an instance in moto', async () => ((await instances()).length ? instances() : undefined), 90_000);
    await until('the reconcile pass to report the event', async () => (messagesTaken() > 0 ? true : undefined), 30_000);
    // Exactly what the valid event caused: one queued message (the forged one, had it been queued,
    // was in the queue first and a distinct job), one launch, one instance.
    expect(messagesTaken()).toBe(1);
    expect(ids).toHaveLength(1);
    expect(await instances()).toHaveLength(1);
    expect(output).toMatch(/launched 1 \(1 for pending jobs\)/);
    expect(functionLogs().some((l) => JSON.stringify(l).includes(String(FORGED.jobId)))).toBe(false);
    // The functions' JSON logs never carry the secret nor the forged token (the dev script's own curl hint does carry the secret, on purpose).
    const all = output.split('\n').filter((l) => l.startsWith('[offline] {'));
    expect(all.length).toBeGreaterThan(3);
    for (const l of all) {
      expect(l).not.toContain(SECRET);
      expect(l).not.toContain('not-the-secret');
    }
  }, 120_000);

  it('`npm run dev:invoke` runs serverless invoke local for the webhook and the reconcile function against the same moto', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gsa-invoke-'));
    const invoke = async (args: string[]) => {
      const { stdout } = await exec(process.execPath, ['scripts/dev-invoke.mjs', ...args], { cwd: root, env: { ...process.env, DEV_HTTP_PORT: String(ports.http) }, timeout: 90_000, maxBuffer: 16 << 20 });
      // The function's result is the last JSON document serverless prints (log lines come first).
      return JSON.parse(stdout.slice(stdout.lastIndexOf('\n{\n') + 1));
    };
    try {
      const event = JSON.parse(readFileSync(join(root, 'events/webhook-job-pending.json'), 'utf8'));
      event.headers['x-gitlab-token'] = SECRET; // the sample events carry npm run dev's default secret
      writeFileSync(join(dir, 'event.json'), JSON.stringify(event));
      const hook = await invoke(['-f', 'webhook', '-p', join(dir, 'event.json')]);
      expect(hook.statusCode).toBe(202);
      expect(JSON.parse(hook.body).queued).toMatch(/queued job 4242 pending/);
      const pass = await invoke(['-f', 'reconcile', '-p', 'events/reconcile-manual.json']);
      expect(pass).toMatchObject({ passes: 1, passId: expect.stringMatching(/^\d{8}T\d{6}Z-/) });
    } finally {
      rmSync(dir, { recursive: true, force: true });
      rmSync(join(root, `.esbuild-invoke-${ports.http}`), { recursive: true, force: true });
    }
  }, 120_000);

  it('stops everything it started', async () => {
    const exited = new Promise<number | null>((r) => dev.once('exit', (code) => r(code)));
    dev.kill('SIGTERM');
    expect(await exited).toBe(0);
    const pids = [...output.matchAll(/stopped \w+ \(pid (\d+)\)/g)].map((m) => Number(m[1]));
    expect(pids.length).toBe(2);
    for (const pid of pids) expect(() => process.kill(pid, 0)).toThrow();
    // ... and the file dev:invoke reads, so no invoke can aim at a moto that is gone.
    expect(existsSync(join(root, '.dev', `env-${ports.http}.json`))).toBe(false);
  }, 30_000);
});
