/**
 * Starts moto's server (EC2, SSM, SQS, ... over real HTTP) on a free 127.0.0.1 port for a test or
 * a benchmark, and stops it by its own PID. Real AWS SDK clients talk to it with an endpoint
 * override and dummy credentials (see motoClientConfig).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, connect } from 'node:net';

export interface MotoServer {
  endpoint: string;
  port: number;
  stop(): Promise<void>;
}

/** Asks the kernel for a free port on 127.0.0.1 (bind to 0, read it back, release it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      if (addr && typeof addr === 'object') {
        const { port } = addr;
        srv.close(() => resolve(port));
      } else srv.close(() => reject(new Error('could not read the port of a probe socket')));
    });
  });
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

async function waitReady(endpoint: string, port: number, child: ChildProcess, timeoutMs: number, stderr: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`moto exited with code ${child.exitCode} before it was ready:\n${stderr()}`);
    if (await portOpen(port)) {
      try {
        // moto's own API; answers once the app is loaded, not only the socket.
        const res = await fetch(`${endpoint}/moto-api/`, { signal: AbortSignal.timeout(2000) });
        if (res.status < 500) return;
      } catch {
        // not ready yet
      }
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`moto did not answer on ${endpoint} within ${timeoutMs} ms:\n${stderr()}`);
}

/**
 * Spawns `python3 -m moto.server -H 127.0.0.1 -p PORT`. A port taken between the probe and the
 * spawn (another test doing the same) is retried on a new port.
 */
export async function startMoto(opts: { timeoutMs?: number; python?: string } = {}): Promise<MotoServer> {
  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const endpoint = `http://127.0.0.1:${port}`;
    const child = spawn(opts.python ?? 'python3', ['-m', 'moto.server', '-H', '127.0.0.1', '-p', String(port)], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, PYTHONUNBUFFERED: '1' },
    });
    let err = '';
    child.stderr?.on('data', (d: Buffer) => {
      err = (err + d.toString()).slice(-4000);
    });
    const stop = () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        const timer = setTimeout(() => {
          if (child.pid && child.exitCode === null) process.kill(child.pid, 'SIGKILL');
        }, 3000);
        child.once('exit', () => {
          clearTimeout(timer);
          resolve();
        });
        if (child.pid) process.kill(child.pid, 'SIGTERM');
      });
    try {
      await waitReady(endpoint, port, child, opts.timeoutMs ?? 20000, () => err);
      return { endpoint, port, stop };
    } catch (e) {
      lastError = e;
      await stop();
      if (!/Address already in use/i.test(String(err))) break;
    }
  }
  throw lastError;
}

/** Client settings for the real AWS SDK against moto: endpoint override, dummy credentials. */
export function motoClientConfig(endpoint: string, region = 'us-east-1') {
  return {
    endpoint,
    region,
    credentials: { accessKeyId: 'testing', secretAccessKey: 'testing', sessionToken: 'testing' },
    maxAttempts: 1,
  };
}
