/**
 * The real `serverless` command (osls) for the tests, with moto as every AWS endpoint and nothing
 * else from this environment: dummy credentials, no instance metadata, no telemetry.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';

const exec = promisify(execFile);
export const ROOT = join(__dirname, '..', '..');
// The bin npx would run, without npx's own start-up.
const SERVERLESS = join(ROOT, 'node_modules', 'osls', 'bin', 'serverless.js');

export interface SlsResult {
  code: number;
  out: string;
}

export async function serverless(args: string[], opts: { endpoint: string; env?: Record<string, string>; timeoutMs?: number }): Promise<SlsResult> {
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    AWS_ACCESS_KEY_ID: 'testing',
    AWS_SECRET_ACCESS_KEY: 'testing',
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_ENDPOINT_URL: opts.endpoint,
    SLS_TELEMETRY_DISABLED: '1',
    SLS_NOTIFICATIONS_MODE: 'off',
    // remove polls the stack's status every 5 s by default
    SLS_AWS_MONITORING_FREQUENCY: '200',
    ...opts.env,
  };
  try {
    const { stdout, stderr } = await exec(process.execPath, [SERVERLESS, ...args], { cwd: ROOT, env, timeout: opts.timeoutMs ?? 60_000, maxBuffer: 16 << 20 });
    return { code: 0, out: stdout + stderr };
  } catch (e: any) {
    if (typeof e.code !== 'number') throw e;
    return { code: e.code, out: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}
