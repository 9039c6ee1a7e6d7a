/**
 * Pre-built worker images (lib/deploy/image.ts) from the worker's side, under bash with the fakes
 * of harness.ts: the image build installs and pulls what a boot would and leaves its marker; a boot
 * from such an image installs nothing, still replaces a gitlab-runner that is not the pool's release,
 * and a boot without the marker installs as before. Every boot reports its timeline.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../../lib/config';
import { decodeReport } from '../../lib/controller/reports';
import { renderImageBuildScript, WORKER_DEFAULTS } from '../../lib/worker/userdata';
import { indexOf, reportsSent, runScenario, TOKEN, type RunResult } from './harness';
import { SAMPLES } from './samples';

jest.setTimeout(60_000);

const V = WORKER_DEFAULTS.runnerVersion;
const HELPER = `registry.gitlab.com/gitlab-org/gitlab-runner/gitlab-runner-helper:x86_64-${V}`;
const downloads = (r: RunResult) => r.events.filter((e) => e.startsWith('download '));
const installs = (r: RunResult) => r.calls.filter((c) => ['dnf', 'apt-get', 'snap'].includes(c.cmd) || (c.cmd === 'systemctl' && /install/.test(c.args)));

describe('renderImageBuildScript', () => {
  const hasShellcheck = spawnSync('shellcheck', ['--version']).status === 0;
  const dir = mkdtempSync(join(tmpdir(), 'gsa-image-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const cases = Object.entries(SAMPLES).flatMap(([name, config]) => config.pools.map((pool) => ({ label: `${name}/${pool.name}`, text: renderImageBuildScript({ config, pool, stage: 'prod' }) })));

  (hasShellcheck || process.env.CI ? test : test.skip).each(cases)('$label: shellcheck clean, bash parses it', ({ label, text }) => {
    const file = join(dir, label.replace('/', '_'));
    writeFileSync(file, text);
    const r = spawnSync('shellcheck', ['--shell=bash', '--severity=style', file], { encoding: 'utf8' });
    expect(r.stdout + r.stderr).toBe('');
    expect(spawnSync('bash', ['-n', file]).status).toBe(0);
  });

  test('depends on what the image holds only: the release and the job image rebuild it, scaling knobs and runner settings do not', () => {
    const base = { deployment: 'ci', gitlab: { url: 'https://gitlab.example.com' } };
    const pool = { name: 'p', runUntagged: true, worker: { instanceTypes: ['m6i.large'], subnets: ['subnet-0abc'], ami: 'ami-0123456789abcdef0' } };
    const render = (over: Record<string, unknown>, worker: Record<string, unknown> = {}) => {
      const config = parseConfig(JSON.stringify({ ...base, pools: [{ ...pool, ...over, worker: { ...pool.worker, ...worker } }] }), 't');
      return renderImageBuildScript({ config, pool: config.pools[0], stage: 'prod' });
    };
    const reference = render({});
    expect(render({ IdleCount: 5, IdleTime: 60, MaxBuilds: 3, runner: { environment: ['A=1'] } }, { bootTimeout: 900, maxLifetime: 7200 })).toBe(reference);
    expect(render({}, { runnerVersion: 'v18.2.0' })).not.toBe(reference);
    expect(render({}, { docker: { image: 'node:22' } })).not.toBe(reference);
    expect(render({ runner: { docker: { helper_image: 'reg/helper:1' } } })).toContain("HELPER_IMAGE='reg/helper:1'");
    expect(reference).toContain("JOB_IMAGE='alpine:latest'");
  });
});

describe('the image build (gsa-worker build-image)', () => {
  test('installs the pinned gitlab-runner verified, pulls the job and helper images, writes the marker, keeps no worker state', async () => {
    const r = await runScenario({
      name: 'build',
      buildImage: true,
      download: 'good',
      pool: { worker: { docker: { image: 'node:22-alpine' } } },
      runner: { jobs: 0 },
      collect: ['etc/gsa-worker-image', 'var/lib/gsa-worker/started', 'etc/gsa-worker/config.toml'],
    });
    expect(r.exitCode).toBe(0);
    expect(r.output).toContain('worker image ready');
    expect(downloads(r)).toEqual([`download ${V}/binaries/gitlab-runner-linux-amd64`, `download ${V}/release.sha256`]);
    expect(r.localBin).toContain('gitlab-runner');
    const pulls = r.calls.filter((c) => c.cmd === 'docker' && c.args.startsWith('pull')).map((c) => c.args);
    expect(pulls).toEqual(['pull -q node:22-alpine', `pull -q ${HELPER}`]);
    const marker = r.files['etc/gsa-worker-image'];
    expect(marker).toMatch(new RegExp(`^format=1\\npool=default\\nrunner=${V}\\nimages=node:22-alpine ${HELPER.replace(/[.]/g, '\\.')}\\nbuilt=\\d{4}-\\d\\d-\\d\\dT`));
    // A worker booting from the image must not think it rebooted, and finds no config or token.
    expect(r.files['var/lib/gsa-worker/started']).toBeUndefined();
    expect(r.files['etc/gsa-worker/config.toml']).toBeUndefined();
    // No power-off, no report, no token read: it is not a worker.
    expect(r.calls.some((c) => c.cmd === 'shutdown')).toBe(false);
    expect(r.calls.some((c) => c.cmd === 'aws')).toBe(false);
    expect(r.output).not.toContain(TOKEN);
  });

  test("a pool's own helper image is pulled instead of the default; one with runner variables is not pulled", async () => {
    const own = await runScenario({
      name: 'build-helper',
      buildImage: true,
      pool: { runner: { docker: { helper_image: 'registry.example.com/helper:x86_64-v18.3.1' } } },
      runner: { jobs: 0 },
      collect: ['etc/gsa-worker-image'],
    });
    expect(own.exitCode).toBe(0);
    expect(own.calls.filter((c) => c.cmd === 'docker' && c.args.startsWith('pull')).map((c) => c.args)).toEqual(['pull -q alpine:latest', 'pull -q registry.example.com/helper:x86_64-v18.3.1']);
    const vars = await runScenario({ name: 'build-helper-vars', buildImage: true, pool: { runner: { docker: { helper_image: 'reg/helper:x86_64-v${CI_RUNNER_VERSION}' } } }, runner: { jobs: 0 } });
    expect(vars.exitCode).toBe(0);
    expect(vars.calls.filter((c) => c.cmd === 'docker' && c.args.startsWith('pull')).map((c) => c.args)).toEqual(['pull -q alpine:latest']);
  });

  test('a checksum that does not match fails the build (exit 1, no marker): the pipeline keeps the last good image', async () => {
    const r = await runScenario({ name: 'build-bad', buildImage: true, download: 'bad', runner: { jobs: 0 }, collect: ['etc/gsa-worker-image'] });
    expect(r.exitCode).toBe(1);
    expect(r.output).toMatch(/image build failed: gitlab-runner is missing and v[\d.]+ could not be downloaded and verified/);
    expect(r.files['etc/gsa-worker-image']).toBeUndefined();
    expect(r.calls.some((c) => c.cmd === 'shutdown' && c.args.startsWith('-h now'))).toBe(false);
  });
});

describe('booting from a pre-built image', () => {
  test('installs nothing, checks the runner release, reports ready with its timeline', async () => {
    const r = await runScenario({ name: 'prebuilt', prebuilt: {}, kernelBootedSecondsAgo: 3, launchedSecondsAgo: 20, pool: { MaxBuilds: 1 }, runner: { jobs: 1 } });
    expect(r.exitCode).toBe(0);
    expect(r.output).toMatch(/pre-built image: format=1 pool=default runner=v[\d.]+ images=alpine:latest registry\.gitlab\.com\S+ built=2030-01-01T00:00:00Z/);
    expect(downloads(r)).toEqual([]);
    expect(installs(r)).toEqual([]);
    expect(r.localBin).toEqual(['gitlab-runner']);
    // The release is checked before the runner starts.
    expect(indexOf(r.calls, 'gitlab-runner', /^--version/)).toBeGreaterThan(-1);
    expect(indexOf(r.calls, 'gitlab-runner', /^--version/)).toBeLessThan(indexOf(r.calls, 'gitlab-runner', 'run-single'));
    expect(r.events).toEqual(['job-start-1', 'job-end-1', 'exit-0']);
    const ready = reportsSent(r.calls)[0];
    expect(ready.s).toBe('idle');
    const boot = decodeReport('m', JSON.stringify(ready)).boot!;
    expect(boot.image).toBe('prebuilt');
    // launched 20 s ago, the kernel 3 s ago, the rest in the script's own seconds.
    expect(boot.running).toBeGreaterThanOrEqual(16);
    expect(boot.running).toBeLessThanOrEqual(18);
    expect(boot.userData!).toBeGreaterThanOrEqual(boot.running!);
    expect(boot.docker!).toBeGreaterThanOrEqual(boot.userData!);
    expect(boot.runner!).toBeGreaterThanOrEqual(boot.docker!);
    expect(boot.ready!).toBeGreaterThanOrEqual(boot.runner!);
    expect(boot.ready!).toBeLessThan(40);
    expect(r.output).toMatch(/boot timeline, seconds after launch: running \+1[678]\.\d, user data \+\d+\.\d, docker \+\d+\.\d, gitlab-runner \+\d+\.\d, ready \+\d+\.\d; image: prebuilt/);
    // Only the ready report carries it.
    expect(reportsSent(r.calls).slice(1).every((x) => !('b' in x))).toBe(true);
  });

  test('an image whose gitlab-runner is not the pool\'s release gets the right one, downloaded and verified', async () => {
    const r = await runScenario({ name: 'prebuilt-old', prebuilt: { runner: 'v17.9.0' }, download: 'good', pool: { MaxBuilds: 1 }, runner: { jobs: 1 } });
    expect(r.exitCode).toBe(0);
    expect(r.output).toContain(`installing gitlab-runner ${V} (amd64): the one here is not ${V}`);
    expect(downloads(r)).toEqual([`download ${V}/binaries/gitlab-runner-linux-amd64`, `download ${V}/release.sha256`]);
    // The replaced binary is the one that runs: it is the pinned release now.
    expect(r.events.filter((e) => !e.startsWith('download '))).toEqual(['job-start-1', 'job-end-1', 'exit-0']);
    expect(r.calls.find((c) => c.cmd === 'gitlab-runner' && c.args.startsWith('run-single'))).toBeDefined();
    expect(decodeReport('m', JSON.stringify(reportsSent(r.calls)[0])).boot!.image).toBe('prebuilt');
  });

  test('an image without the pool\'s job image says its first job pulls it', async () => {
    const r = await runScenario({ name: 'prebuilt-other-image', prebuilt: {}, pool: { MaxBuilds: 1, worker: { docker: { image: 'node:22' } } }, runner: { jobs: 1 } });
    expect(r.exitCode).toBe(0);
    expect(r.output).toContain('job image node:22 not in the image: its first job pulls it');
  });
});

describe('booting from the base AMI (no marker: the fallback until the first image exists)', () => {
  test('downloads gitlab-runner as before and reports the timeline with image base; a baked runner of another release is kept', async () => {
    const r = await runScenario({ name: 'base', download: 'good', pool: { MaxBuilds: 1 }, runner: { jobs: 1 } });
    expect(r.exitCode).toBe(0);
    expect(r.output).toContain('base image (no ');
    expect(downloads(r)).toHaveLength(2);
    const boot = decodeReport('m', JSON.stringify(reportsSent(r.calls)[0])).boot!;
    expect(boot).toMatchObject({ image: 'base' });
    expect(boot.running).toBeUndefined(); // no /proc/stat in the sandbox
    expect(boot.ready).toBeGreaterThan(0);
    // A runner already on the AMI (not a pre-built image) is the operator's: not even asked its version.
    const own = await runScenario({ name: 'base-own-runner', pool: { MaxBuilds: 1 }, runner: { jobs: 1 } });
    expect(own.exitCode).toBe(0);
    expect(indexOf(own.calls, 'gitlab-runner', /^--version/)).toBe(-1);
  });
});
