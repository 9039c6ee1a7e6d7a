import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseToml } from 'smol-toml';
import { parseConfig } from '../../lib/config';
import { TAG_PREFIX } from '../../lib/controller/tags';
import {
  DEPLOYMENT_CACHE_PLACEHOLDER,
  renderUserData,
  runnerConfigToml,
  shellQuote,
  USER_DATA_LIMIT_BYTES,
  UserDataError,
  encodeUserData,
  userDataFits,
  usesDeploymentCache,
  WORKER_DEFAULTS,
  workerWaitTimeout,
} from '../../lib/worker/userdata';
import { run } from '../../lib/cli/commands/user-data';
import { FULL, MINIMAL, SAMPLES } from './samples';

const hasShellcheck = spawnSync('shellcheck', ['--version']).status === 0;
// In CI shellcheck must run (.ci/run installs it); a developer machine without it skips.
const shellcheckTest = hasShellcheck || process.env.CI ? test : test.skip;

const cases = Object.entries(SAMPLES).flatMap(([name, config]) =>
  config.pools.map((pool) => ({ label: `${name}/${pool.name}`, text: renderUserData({ config, pool, stage: 'prod', cacheBucket: 'deployment-cache' }) })),
);

/** The config.toml embedded in a rendered script. */
function embeddedToml(script: string): string {
  const m = /cat <<'GSA_TOML'\n([\s\S]*?)\nGSA_TOML\n/.exec(script);
  if (!m) throw new Error('no embedded config.toml');
  return m[1];
}

describe('renderUserData', () => {
  const dir = mkdtempSync(join(tmpdir(), 'gsa-userdata-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  shellcheckTest.each(cases)('$label: shellcheck clean', ({ label, text }) => {
    const file = join(dir, label.replace('/', '_'));
    writeFileSync(file, text);
    const r = spawnSync('shellcheck', ['--shell=bash', '--severity=style', file], { encoding: 'utf8' });
    expect(r.stdout + r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  test.each(cases)('$label: bash parses it and it is under the 16 KB user data limit', ({ label, text }) => {
    expect(Buffer.byteLength(encodeUserData(text), 'base64')).toBeLessThanOrEqual(USER_DATA_LIMIT_BYTES);
    const file = join(dir, `${label.replace('/', '_')}.n`);
    writeFileSync(file, text);
    expect(spawnSync('bash', ['-n', file]).status).toBe(0);
    expect(text.startsWith('#!/bin/bash\n')).toBe(true);
    expect(text).not.toMatch(/^\s*##/m); // maintainer notes are dropped
  });

  test('puts the pool values in shell variables and the runner config in config.toml', () => {
    const config = SAMPLES.full;
    const pool = config.pools[0];
    const text = renderUserData({ config, pool, stage: 'prod' });
    expect(text).toContain("TOKEN_PARAM='/acme/ci/tokens/dind'\n");
    expect(text).toContain("GITLAB_URL='https://gitlab.acme.example'\n");
    expect(text).toContain('MAX_BUILDS=10\nWAIT_TIMEOUT=0\nBOOT_TIMEOUT=900\nJOB_TIMEOUT=7200\nMAX_LIFETIME=86400\n');
    expect(text).toContain(`RUNNER_VERSION='${WORKER_DEFAULTS.runnerVersion}'\n`);
    expect(text).toContain(`TAG_PREFIX='${TAG_PREFIX}'`);
    const toml = parseToml(embeddedToml(text)) as { runners: Record<string, any>[] };
    expect(embeddedToml(text)).toBe(runnerConfigToml({ config, pool, stage: 'prod', region: 'eu-west-1' }).replace(/\n+$/, ''));
    const r = toml.runners[0];
    expect(r).toMatchObject({ name: 'acme-ci-prod-docker-privileged', url: 'https://gitlab.acme.example', token: '{{ssm:/acme/ci/tokens/dind}}', executor: 'docker' });
    expect(r.docker).toEqual({
      image: 'docker:27-cli',
      privileged: true,
      volumes: ['/certs/client', '/cache', '/var/run/docker.sock:/var/run/docker.sock', `/srv/o'brien "data":/data:ro`],
      disable_cache: false,
    });
    expect(r.cache).toEqual({
      Type: 's3',
      Path: 'docker-privileged', // the pool's own prefix: its workers may touch nothing else (IAM)
      Shared: true,
      s3: { ServerAddress: 's3.amazonaws.com', BucketName: 'acme-ci-runner-cache', BucketLocation: 'eu-west-1', AuthenticationType: 'iam' },
    });
    expect(JSON.stringify(r)).not.toMatch(/AccessKey|SecretKey/);
  });

  test('cache: the deployment bucket when the pool names none, else the placeholder the worker fills in from its tag; region filled at boot when unknown', () => {
    const config = SAMPLES.minimal;
    const pool = config.pools[0];
    const withBucket = parseToml(embeddedToml(renderUserData({ config, pool, stage: 'dev', cacheBucket: 'dep-cache' }))) as any;
    expect(withBucket.runners[0].cache.s3).toMatchObject({ BucketName: 'dep-cache', BucketLocation: '__GSA_REGION__' });
    // As deployed (the stack knows no name: CloudFormation generates it): never a runner without its cache.
    const script = renderUserData({ config, pool, stage: 'dev' });
    expect((parseToml(embeddedToml(script)) as any).runners[0].cache.s3.BucketName).toBe(DEPLOYMENT_CACHE_PLACEHOLDER);
    expect(script).toContain(`  toml=\${toml//"${DEPLOYMENT_CACHE_PLACEHOLDER}"/"$CACHE_BUCKET"}\n`);
    expect(script).toContain("REGION=''\n");
  });

  test('cache: only pools on the shared deployment cache take the deployment bucket', () => {
    const pool = (cache: string) => parseConfig(MINIMAL.replace('ami: ami-0123456789abcdef0', `ami: ami-0123456789abcdef0\n      ${cache}`));
    const notShared = pool('cache: { shared: false }');
    const disabled = pool('docker: { disableCache: true }');
    const own = pool('cache: { bucketName: own-bucket }');
    // docker's disable_cache turns off local cache volumes only, not the distributed cache.
    expect([SAMPLES.minimal, notShared, disabled, own].map((c) => usesDeploymentCache(c.pools[0]))).toEqual([true, false, true, false]);
    expect((parseToml(embeddedToml(renderUserData({ config: notShared, pool: notShared.pools[0], stage: 'dev', cacheBucket: 'dep' }))) as any).runners[0].cache).toBeUndefined();
    expect((parseToml(embeddedToml(renderUserData({ config: own, pool: own.pools[0], stage: 'dev', cacheBucket: 'dep' }))) as any).runners[0].cache.s3.BucketName).toBe('own-bucket');
  });

  test('the 16 KB limit: a size equal to it fits, one byte more does not', () => {
    expect(USER_DATA_LIMIT_BYTES).toBe(16384);
    expect(userDataFits(16384)).toBe(true);
    expect(userDataFits(16385)).toBe(false);
  });

  test('encodeUserData: base64(gzip), deterministic (no name, mtime 0, OS 3), and the renderer checks the compressed size', () => {
    const { config } = { config: SAMPLES.minimal };
    const script = renderUserData({ config, pool: config.pools[0], stage: 'dev' });
    const gz = Buffer.from(encodeUserData(script), 'base64');
    expect(gz.subarray(0, 10).toString('hex')).toBe('1f8b0800000000000203');
    expect(require('node:zlib').gunzipSync(gz).toString('utf8')).toBe(script);
    expect(encodeUserData(script)).toBe(encodeUserData(script));
    expect(gz.length).toBeLessThan(Buffer.byteLength(script) / 2);
    // 250 volumes: a plain script over 16 KB (twice over) that fits compressed, on the deployment's
    // cache bucket as on a bucket of its own: the same gzip is sent for both (12.1 KB for the sample's pool).
    const big = structuredClone(config);
    big.pools[0].worker.docker.volumes = Array.from({ length: 250 }, (_, i) => `/srv/v${i}:/v${i}:ro`);
    const bigScript = renderUserData({ config: big, pool: big.pools[0], stage: 'dev' });
    expect(Buffer.byteLength(bigScript)).toBeGreaterThan(2 * USER_DATA_LIMIT_BYTES);
    expect(Buffer.from(encodeUserData(bigScript), 'base64').length).toBeLessThan(12_500);
    // Incompressible volumes: over the limit compressed too, on either cache.
    const noise = structuredClone(config);
    noise.pools[0].worker.docker.volumes = Array.from({ length: 400 }, () => `/srv/${require('node:crypto').randomBytes(24).toString('hex')}:/x`);
    for (const bucketName of [undefined, 'own-bucket']) {
      noise.pools[0].worker.cache.bucketName = bucketName;
      expect(() => renderUserData({ config: noise, pool: noise.pools[0], stage: 'dev' })).toThrow(
        /^the user data for pool "default" is \d+ bytes gzip-compressed \(\d+ bytes as a script\), over EC2's limit of 16384 bytes$/,
      );
    }
    expect(() => encodeUserData('#!/bin/bash\n# ' + require('node:crypto').randomBytes(20000).toString('hex'))).toThrow(/gzip-compressed/);
  });

  describe('workerWaitTimeout: self-exit only for pools that never keep an idle worker', () => {
    const pool = (root: string, sections = '') =>
      parseConfig(
        MINIMAL.replace('runUntagged: true', `runUntagged: true\n    ${root}${sections ? `\n    autoscaling:\n${sections}` : ''}`),
      ).pools[0];
    const section = (s: string) => `      - Periods: ["* * 9-17 * * mon-fri *"]\n        ${s}`;

    test('IdleCount > 0 anywhere: 0, the controller retires the surplus (no churn of the idle workers)', () => {
      expect(workerWaitTimeout(SAMPLES.full.pools[0])).toBe(0); // IdleCount 2
      expect(workerWaitTimeout(SAMPLES.seed.pools[0])).toBe(0); // IdleCount 1, off-peak 0
      expect(workerWaitTimeout(pool('IdleCount: 0', section('IdleCount: 3\n        IdleTime: 300')))).toBe(0);
      expect(workerWaitTimeout(pool('IdleCount: 2\n    IdleCountMin: 1\n    IdleScaleFactor: 0.5'))).toBe(0);
    });

    test('IdleCount 0 everywhere: the longest IdleTime; IdleCountMin / IdleScaleFactor cannot keep a worker idle then', () => {
      expect(workerWaitTimeout(SAMPLES.minimal.pools[0])).toBe(600);
      expect(workerWaitTimeout(pool('IdleTime: 300', section('IdleTime: 900')))).toBe(900);
      expect(workerWaitTimeout(pool('IdleTime: 900', section('IdleTime: 300')))).toBe(900);
      // IdleCountMin is bounded by IdleCount (config validation refuses IdleCountMin > IdleCount with a factor),
      // so a factor alone, in a section, keeps nobody idle.
      expect(workerWaitTimeout(pool('IdleTime: 1200', section('IdleScaleFactor: 2\n        IdleTime: 60')))).toBe(1200);
    });

    test('IdleTime 0 means "retire when idle" to the controller: it adds nothing; all 0 means no self-exit', () => {
      expect(workerWaitTimeout(pool('IdleTime: 600', section('IdleCount: 0')))).toBe(600); // the section's IdleTime is 0
      expect(workerWaitTimeout(SAMPLES.full.pools[1])).toBe(0); // IdleTime 0, no sections
    });
  });

  test('cache: the pool name is the key prefix unless cache.path names another (pools naming the same path share)', () => {
    const cfg = parseConfig(MINIMAL.replace('ami: ami-0123456789abcdef0', 'ami: ami-0123456789abcdef0\n      cache: { path: shared-cache }'));
    const toml = parseToml(embeddedToml(renderUserData({ config: cfg, pool: cfg.pools[0], stage: 'dev', cacheBucket: 'dep-cache' }))) as any;
    expect(toml.runners[0].cache.Path).toBe('shared-cache');
  });

  test('refuses a job volume that would expose the token directory, also when the config skipped validate', () => {
    for (const v of ['/etc:/host-etc', '/:/host', '/etc/gsa-worker/:/x:ro', '/etc/./gsa-worker:/x', '//etc:/x:ro']) {
      const config = parseConfig(MINIMAL);
      config.pools[0].worker.docker.volumes = ['/cache', v]; // as a config built in code, without validateConfig
      expect(() => renderUserData({ config, pool: config.pools[0], stage: 'dev' })).toThrow(UserDataError);
      expect(() => renderUserData({ config, pool: config.pools[0], stage: 'dev' })).toThrow(/pools\[0\]\.worker\.docker\.volumes\[1\]: .*\/etc\/gsa-worker: the worker's runner token/);
    }
    const ok = parseConfig(MINIMAL.replace('ami: ami-0123456789abcdef0', 'ami: ami-0123456789abcdef0\n      docker: { volumes: ["/etc/ssl/certs:/certs:ro", "/etcetera:/x"] }'));
    expect(() => renderUserData({ config: ok, pool: ok.pools[0], stage: 'dev' })).not.toThrow();
  });

  test('bad stage, region, runner version or lifetime are named', () => {
    const config = SAMPLES.minimal;
    const pool = config.pools[0];
    expect(() => renderUserData({ config, pool, stage: 'Prod!' })).toThrow(/stage "Prod!"/);
    expect(() => renderUserData({ config, pool, stage: 'dev', region: 'mars-1' })).toThrow(/region "mars-1"/);
    expect(() => renderUserData({ config, pool, stage: 'dev', runnerVersion: '17.8' })).toThrow(/runnerVersion "17.8"/);
    expect(() => renderUserData({ config, pool, stage: 'dev', runnerVersion: 'latest' })).toThrow(/runnerVersion "latest": must be a release tag/);
    expect(() => renderUserData({ config, pool, stage: 'dev', maxLifetime: 5 })).toThrow(/maxLifetime 5/);
    expect(() => renderUserData({ config, pool: { ...pool, name: 'other' }, stage: 'dev' })).toThrow('pool "other" is not in the config (pools: default)');
  });

  test('shellQuote survives bash', () => {
    for (const s of ["o'brien", '$(rm -rf /) `x` "y" \\n', '']) expect(execFileSync('bash', ['-c', `printf %s ${shellQuote(s)}`], { encoding: 'utf8' })).toBe(s);
  });
});

describe('user-data command', () => {
  const dir = mkdtempSync(join(tmpdir(), 'gsa-userdata-cli-'));
  const file = join(dir, 'config.yaml');
  writeFileSync(file, FULL);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  function capture(argv: string[]): Promise<{ code: number; out: string; err: string }> {
    let out = '';
    let err = '';
    const o = jest.spyOn(process.stdout, 'write').mockImplementation((c) => ((out += String(c)), true));
    const e = jest.spyOn(process.stderr, 'write').mockImplementation((c) => ((err += String(c)), true));
    return run(argv)
      .then((code) => ({ code, out, err }))
      .finally(() => {
        o.mockRestore();
        e.mockRestore();
      });
  }

  test('prints the exact user data of a pool', async () => {
    const r = await capture(['--config', file, '--pool', 'arm', '--stage', 'prod']);
    expect(r.code).toBe(0);
    expect(r.out).toBe(renderUserData({ config: SAMPLES.full, pool: SAMPLES.full.pools[1], stage: 'prod' }));
    expect(r.err).toBe(''); // its cache is disabled: nothing to fill in
  });

  test('a pool on the deployment cache: the script as deployed (the placeholder its workers fill in from their tag) and a note, or the name written in with --cache-bucket', async () => {
    const min = join(dir, 'minimal.yaml');
    writeFileSync(min, MINIMAL);
    const config = SAMPLES.minimal;
    const r = await capture(['--config', min, '--pool', 'default']);
    expect(r.code).toBe(0);
    expect(r.out).toBe(renderUserData({ config, pool: config.pools[0], stage: 'dev' }));
    expect((parseToml(embeddedToml(r.out)) as any).runners[0].cache.s3.BucketName).toBe(DEPLOYMENT_CACHE_PLACEHOLDER);
    expect(r.err).toBe(
      `gitlab-spot-autoscaler: note: pool "default" uses the deployment's shared cache bucket: its workers put the name from their ${TAG_PREFIX}:cache-bucket instance tag (the controller sets it at launch) where ${DEPLOYMENT_CACHE_PLACEHOLDER} stands. Pass --cache-bucket BUCKET to write the name in instead (a worker launched without that tag).\n`,
    );
    const exact = await capture(['--config', min, '--pool', 'default', '--cache-bucket', 'ci-dev-cache-1a2b']);
    expect(exact.code).toBe(0);
    expect(exact.err).toBe('');
    expect(exact.out).toBe(renderUserData({ config, pool: config.pools[0], stage: 'dev', cacheBucket: 'ci-dev-cache-1a2b' }));
    expect(embeddedToml(exact.out)).not.toContain(DEPLOYMENT_CACHE_PLACEHOLDER);
    const bad = await capture(['--config', min, '--pool', 'default', '--cache-bucket', 'Ci_Cache']);
    expect(bad.code).toBe(2);
    expect(bad.err).toContain('--cache-bucket "Ci_Cache": not an S3 bucket name (must be 3-63 of a-z, 0-9');
    expect(bad.out).toBe('');
  });

  test('unknown pool: names the pools', async () => {
    const r = await capture(['--config', file, '--pool', 'gpu']);
    expect(r.code).toBe(2);
    expect(r.err).toContain('unknown pool "gpu" (pools in ' + file + ': docker-privileged, arm)');
    expect(r.out).toBe('');
  });

  test('missing --pool and a bad stage are usage errors', async () => {
    expect((await capture(['--config', file])).err).toContain('--pool NAME is required');
    const bad = await capture(['--config', file, '--pool', 'arm', '--stage', 'A B']);
    expect(bad.code).toBe(2);
    expect(bad.err).toContain('stage "A B"');
  });
});
