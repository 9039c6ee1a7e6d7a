/**
 * The installed command: bin/gitlab-spot-autoscaler.js running the bundle `npm ci` builds
 * (dist/cli.js), in a child process with a clean environment, as an operator runs it.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../helpers/moto';

const root = join(__dirname, '..', '..');
const bin = join(root, 'bin', 'gitlab-spot-autoscaler.js');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const dir = mkdtempSync(join(tmpdir(), 'gsa-bin-'));

const CONFIG = `deployment: ci
region: us-east-1
gitlab:
  url: https://gitlab.example.com
pools:
  - name: docker
    runUntagged: true
    worker: { instanceTypes: [m6i.large], subnets: [subnet-0abc], ami: ami-0abc }
`;

/** Only what the command needs: no AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED from test/setup-env.ts. */
function cli(args: string[], env: Record<string, string> = {}) {
  return spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env }, timeout: 30_000 });
}

// Rebuild so the bundle under test is this tree's code, not a stale dist/.
beforeAll(() => {
  execFileSync(process.execPath, ['scripts/build.mjs'], { cwd: root });
  expect(existsSync(join(root, 'dist', 'cli.js'))).toBe(true);
  writeFileSync(join(dir, 'config.yaml'), CONFIG);
});

test('--version is package.json\'s; --help lists the commands; explain works through the bundle', () => {
  expect(cli(['--version'])).toMatchObject({ status: 0, stdout: `${pkg.version}\n`, stderr: '' });
  const help = cli(['--help']);
  expect(help.status).toBe(0);
  expect(help.stdout).toMatch(/explain --config FILE --at ISO8601/);
  const r = cli(['explain', '--config', join(dir, 'config.yaml'), '--at', '2026-11-28T12:00:00Z']);
  expect(r.status).toBe(0);
  expect(JSON.parse(r.stdout).pools[0]).toMatchObject({ name: 'docker', activePeriod: null, IdleCount: 0 });
});

test('usage errors go to stderr with exit code 2; a YAML error shows line, column and the line', () => {
  const usage = cli(['validate']);
  expect(usage).toMatchObject({ status: 2, stdout: '' });
  expect(usage.stderr).toMatch(/^gitlab-spot-autoscaler validate: --config FILE is required/);
  writeFileSync(join(dir, 'broken.yaml'), CONFIG.replace('    runUntagged: true', '   runUntagged: true'));
  const yaml = cli(['validate', '--config', join(dir, 'broken.yaml')]);
  expect(yaml).toMatchObject({ status: 2, stdout: '' });
  expect(yaml.stderr).toMatch(/not valid YAML\/JSON at line 7, column \d+: .*\n.*\| {3}- name: docker\n.*> 7 \| {4}runUntagged: true\n.*\| +\^/);
});

test('an AWS command on Node 20 prints no SDK Node-version notice', async () => {
  // Nothing listens on the port: the command fails fast after the SDK clients exist, which is
  // when the SDK prints its notice.
  const port = await freePort();
  const r = cli(['status', '--stage', 'ci', '--config', join(dir, 'config.yaml'), '--endpoint', `http://127.0.0.1:${port}`], {
    AWS_ACCESS_KEY_ID: 'testing',
    AWS_SECRET_ACCESS_KEY: 'testing',
    AWS_MAX_ATTEMPTS: '1',
  });
  expect(r.stderr).toMatch(/status: reading controller state from SSM/);
  expect(r.status).not.toBe(0);
  expect(r.stderr).not.toMatch(/NodeVersionSupportWarning|will require node/);
  // Asked for explicitly, it still shows (on Node < 22, where the SDK emits it at all).
  if (Number(process.versions.node.split('.')[0]) < 22) {
    const shown = cli(['status', '--stage', 'ci', '--config', join(dir, 'config.yaml'), '--endpoint', `http://127.0.0.1:${port}`], {
      AWS_ACCESS_KEY_ID: 'testing',
      AWS_SECRET_ACCESS_KEY: 'testing',
      AWS_MAX_ATTEMPTS: '1',
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'false',
    });
    expect(shown.stderr).toMatch(/NodeVersionSupportWarning/);
  }
});
