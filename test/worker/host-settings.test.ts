/**
 * The pool's host settings and job secrets, run for real under bash (harness.ts): secrets read
 * from SSM land in config.toml escaped for TOML and nowhere else; the user script runs before
 * docker; registry mirrors merge into daemon.json; the proxy reaches dockerd and gitlab-runner
 * but not instance metadata; the CA goes into the trust store and tls-ca-file.
 */
import { parse as parseToml } from 'smol-toml';
import { indexOf, runScenario, TOKEN, type RunResult } from './harness';

jest.setTimeout(60_000);

const AUTH = '{"auths": {"registry.example": {"auth": "c2VjcmV0OnBhc3M="}}}';
const SCRIPT = 'echo "one" && echo \'two\' \\\n  && printf "%s\\n" "a & b" # tab:\t.';
const SECRET_PREFIX = '/gitlab-spot-autoscaler/ci/test/secrets/runner/default';

function expectNoLeak(r: RunResult, values: string[]): void {
  for (const v of [TOKEN, ...values]) {
    expect(r.userData).not.toContain(v);
    expect(r.output).not.toContain(v);
    for (const c of r.calls) expect(c.args).not.toContain(v);
    expect(r.envDump).not.toContain(v);
  }
}

describe('job secrets from SSM', () => {
  test('each {{ssm:NAME}} becomes its value, TOML-escaped, in config.toml only', async () => {
    const r = await runScenario({
      name: 'secrets',
      pool: { MaxBuilds: 1, runner: { environment: ['A=1'] }, runnerSecrets: [{ setting: 'environment.DOCKER_AUTH_CONFIG' }, { setting: 'pre_build_script' }] },
      ssm: { [`${SECRET_PREFIX}/environment/DOCKER_AUTH_CONFIG`]: AUTH, [`${SECRET_PREFIX}/pre_build_script`]: SCRIPT },
      runner: { jobs: 1 },
    });
    expect(r.output).toMatch(/MaxBuilds \(1\) reached/);
    const runner = (parseToml(r.runnerConfig) as any).runners[0];
    expect(runner.environment).toEqual(['A=1', `DOCKER_AUTH_CONFIG=${AUTH}`]);
    expect(runner.pre_build_script).toBe(SCRIPT);
    expect(runner.token).toBe(TOKEN);
    expectNoLeak(r, ['c2VjcmV0OnBhc3M=', 'a & b']);
    // One read per secret, after the token's.
    const token = indexOf(r.calls, 'aws', 'runner-token/default');
    expect(indexOf(r.calls, 'aws', `--name ${SECRET_PREFIX}/environment/DOCKER_AUTH_CONFIG`, token)).toBeGreaterThan(token);
  });

  test('a missing secret parameter powers the worker off before the runner starts', async () => {
    const r = await runScenario({ name: 'secret-missing', pool: { runnerSecrets: [{ setting: 'environment.NPM_TOKEN' }] }, runner: { jobs: 1 } });
    expect(r.calls[r.calls.length - 1]).toMatchObject({ cmd: 'shutdown', args: expect.stringMatching(/cannot read job secret .*environment\/NPM_TOKEN from SSM/) });
    expect(indexOf(r.calls, 'gitlab-runner', '')).toBe(-1);
  });
});

describe('every secret is read, whatever reads stdin', () => {
  test('an aws that drains stdin does not eat the list of secret names; no job runs with a literal {{ssm:...}}', async () => {
    const r = await runScenario({
      name: 'secrets-stdin',
      awsReadsStdin: true,
      pool: { MaxBuilds: 1, runnerSecrets: [{ setting: 'environment.A_TOKEN' }, { setting: 'environment.B_TOKEN' }, { setting: 'environment.C_TOKEN' }] },
      ssm: { [`${SECRET_PREFIX}/environment/A_TOKEN`]: 'a-value', [`${SECRET_PREFIX}/environment/B_TOKEN`]: 'b-value', [`${SECRET_PREFIX}/environment/C_TOKEN`]: 'c-value' },
      runner: { jobs: 1 },
    });
    expect(r.output).toMatch(/MaxBuilds \(1\) reached/);
    expect((parseToml(r.runnerConfig) as any).runners[0].environment).toEqual(['A_TOKEN=a-value', 'B_TOKEN=b-value', 'C_TOKEN=c-value']);
    expect(r.runnerConfig).not.toContain('{{ssm:');
  });
});

describe('host settings before the runner starts', () => {
  const userScript = [
    '#!/bin/bash',
    'set -e',
    'aws sts get-caller-identity >/dev/null',
    'mkdir -p "$GSA_ROOT/etc/docker"',
    `echo '{"log-driver": "journald", "registry-mirrors": ["https://a.example"]}' >"$GSA_ROOT/etc/docker/daemon.json"`,
    '',
  ].join('\n');

  test('user script first, then daemon.json merged and docker restarted with the proxy; the CA trusted; IMDS not proxied', async () => {
    const r = await runScenario({
      name: 'host',
      pool: {
        MaxBuilds: 1,
        worker: {
          userScript,
          registryMirrors: ['https://mirror.example'],
          insecureRegistries: ['registry.example:5000'],
          // A proxy nobody listens on: whatever is not bypassed fails.
          proxy: { http: 'http://127.0.0.2:9', https: 'http://127.0.0.2:9', noProxy: ['127.0.0.1'] },
          caCertificate: '-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n',
        },
      },
      preexisting: ['etc/pki/ca-trust/source/anchors/.keep'],
      collect: ['etc/docker/daemon.json', 'etc/systemd/system/docker.service.d/gsa-proxy.conf', 'etc/pki/ca-trust/source/anchors/gsa-worker.crt'],
      runner: { jobs: 1 },
    });
    expect(r.output).toMatch(/MaxBuilds \(1\) reached/);
    const userScriptRan = indexOf(r.calls, 'aws', 'sts get-caller-identity');
    const restart = indexOf(r.calls, 'systemctl', 'restart docker.service');
    expect(userScriptRan).toBeGreaterThanOrEqual(0);
    expect(restart).toBeGreaterThan(userScriptRan);
    expect(indexOf(r.calls, 'systemctl', 'daemon-reload')).toBeLessThan(restart);
    expect(JSON.parse(r.files['etc/docker/daemon.json'])).toEqual({
      'log-driver': 'journald',
      'registry-mirrors': ['https://a.example', 'https://mirror.example'],
      'insecure-registries': ['registry.example:5000'],
    });
    expect(r.files['etc/systemd/system/docker.service.d/gsa-proxy.conf']).toBe(
      '[Service]\nEnvironment="HTTP_PROXY=http://127.0.0.2:9" "HTTPS_PROXY=http://127.0.0.2:9" "NO_PROXY=127.0.0.1,169.254.169.254"\n',
    );
    expect(r.files['etc/pki/ca-trust/source/anchors/gsa-worker.crt']).toContain('MIIBfake');
    expect(indexOf(r.calls, 'update-ca-trust', 'extract')).toBeGreaterThanOrEqual(0);
    expect((parseToml(r.runnerConfig) as any).runners[0]['tls-ca-file']).toBe('/etc/gsa-worker/ca.crt');
    // gitlab-runner runs with the proxy; the worker reached IMDS and GitLab (127.0.0.1) directly.
    const runnerEnv = r.envDump.split('=== ').find((block) => block.startsWith('gitlab-runner'))!;
    expect(runnerEnv).toMatch(/^https_proxy=http:\/\/127\.0\.0\.2:9$/m);
    expect(runnerEnv).toMatch(/^NO_PROXY=127\.0\.0\.1,169\.254\.169\.254$/m);
    expect(r.verifyBodies).toHaveLength(1);
  });

  test('a failing user script powers the worker off with its status', async () => {
    const r = await runScenario({ name: 'user-script-fails', pool: { worker: { userScript: '#!/bin/bash\nexit 3\n' } }, runner: { jobs: 1 } });
    expect(r.calls[r.calls.length - 1]).toMatchObject({ cmd: 'shutdown', args: expect.stringMatching(/worker\.userScript failed \(status 3\)/) });
    expect(indexOf(r.calls, 'docker', 'info')).toBe(-1);
  });
});

describe('the user script\'s umask, and the proxy for snapd', () => {
  test('the user script runs with umask 022, as cloud-init ran amazonec2-userdata; the worker keeps its own 077', async () => {
    const r = await runScenario({
      name: 'user-script-umask',
      pool: { MaxBuilds: 1, worker: { userScript: '#!/bin/bash\numask >"$GSA_ROOT/user-script-umask"\nmkdir -p "$GSA_ROOT/opt/tools" && stat -c %a "$GSA_ROOT/opt/tools" >"$GSA_ROOT/tools-mode"\n' } },
      collect: ['user-script-umask', 'tools-mode'],
      runner: { jobs: 1 },
    });
    expect(r.output).toMatch(/MaxBuilds \(1\) reached/);
    expect(r.files['user-script-umask']).toBe('0022\n');
    expect(r.files['tools-mode']).toBe('755\n');
    expect(r.runnerSaw).toMatch(/^conf=600 dir=700 /);
  });

  test('with a proxy, snapd gets it too: it reads none from the environment and installs the AWS CLI on Ubuntu', async () => {
    const r = await runScenario({
      name: 'proxy-snap',
      snap: true,
      pool: { MaxBuilds: 1, worker: { proxy: { https: 'http://127.0.0.2:9', noProxy: ['127.0.0.1'] } } },
      runner: { jobs: 1 },
    });
    expect(r.output).toMatch(/MaxBuilds \(1\) reached/);
    expect(r.calls.filter((c) => c.cmd === 'snap').map((c) => c.args)).toEqual(['set system proxy.https=http://127.0.0.2:9']);
  });
});
