/**
 * The deployment cache bucket's name reaches a worker as an instance tag, not in its user data
 * (which stays plain gzip: EC2's 16 KB): the controller tags it at launch, the worker reads it from
 * instance metadata at boot, checks it, writes it into config.toml, or shuts down without it.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { mockClient } from 'aws-sdk-client-mock';
import { CreateFleetCommand, DescribeLaunchTemplateVersionsCommand, EC2Client } from '@aws-sdk/client-ec2';
import { parse as parseToml } from 'smol-toml';
import { Ec2Fleet } from '../../lib/aws/ec2-fleet';
import { parseConfig } from '../../lib/config';
import { buildStack } from '../../lib/deploy/stack';
import { bucketNameProblem, TAGS } from '../../lib/controller/tags';
import { controllerEnv, EnvError } from '../../lib/lambda/env';
import { DEPLOYMENT_CACHE_PLACEHOLDER, renderImageBuildScript, renderUserData } from '../../lib/worker/userdata';
import { launchTemplateVersions, MemoryLogger, testConfig } from '../controller/fixtures';
import { indexOf, runScenario, type RunResult } from './harness';
import { SAMPLES } from './samples';

jest.setTimeout(60_000);

const BUCKET = 'ci-test-cachebucket-1a2b3c4d5e6f';

describe('the controller tags the bucket at launch', () => {
  const ec2Mock = mockClient(EC2Client);
  const shared = testConfig();
  const ownPool = { ...shared.pools[0], name: 'own', worker: { ...shared.pools[0].worker, cache: { ...shared.pools[0].worker.cache, bucketName: 'ci-own-cache' } } };
  const config = { ...shared, pools: [shared.pools[0], ownPool] };
  beforeEach(() => {
    ec2Mock.reset();
    ec2Mock.on(DescribeLaunchTemplateVersionsCommand).resolves(launchTemplateVersions(3));
    ec2Mock.on(CreateFleetCommand).resolves({ Instances: [{ InstanceIds: ['i-1'], Lifecycle: 'spot' }] });
  });
  afterAll(() => ec2Mock.restore());
  const launch = (fleet: Ec2Fleet, pool = config.pools[0]) => fleet.launch({ pool, count: 1, passId: 'p1', clientToken: `p1-${pool.name}`, avoid: [] });
  const sentTags = (i: number) => Object.fromEntries(ec2Mock.commandCalls(CreateFleetCommand)[i].args[0].input.TagSpecifications![0].Tags!.map((t) => [t.Key, t.Value]));

  test('in the same CreateFleet, on pools on the deployment bucket only; no other call', async () => {
    const fleet = new Ec2Fleet({ ec2: new EC2Client({ region: 'us-east-1' }), config, stage: 'test', cacheBucket: BUCKET });
    expect((await launch(fleet)).launched).toHaveLength(1);
    expect(await launch(fleet, ownPool)).toMatchObject({ errors: [] });
    expect(sentTags(0)[TAGS.cacheBucket]).toBe(BUCKET);
    expect(sentTags(1)[TAGS.cacheBucket]).toBeUndefined();
    expect(ec2Mock.calls().map((c) => c.args[0].constructor.name).filter((n) => n !== 'DescribeLaunchTemplateVersionsCommand')).toEqual(['CreateFleetCommand', 'CreateFleetCommand']);
  });

  test('without the name (no CACHE_BUCKET): an error, once per pool, saying its workers will shut down', async () => {
    const log = new MemoryLogger();
    const fleet = new Ec2Fleet({ ec2: new EC2Client({ region: 'us-east-1' }), config, stage: 'test', log });
    await launch(fleet);
    await launch(fleet);
    await launch(fleet, ownPool);
    expect(sentTags(0)[TAGS.cacheBucket]).toBeUndefined();
    expect(log.at('error')).toEqual([
      `pool docker uses the deployment's cache bucket, but the controller does not know its name (environment variable CACHE_BUCKET, set by the stack): its workers launch without the ${TAGS.cacheBucket} tag and shut down at boot`,
    ]);
  });

  test('the stack gives the reconcile function the name (a Ref); in dev (moto) a stand-in that is a bucket name', () => {
    const config = parseConfig(readFileSync(join(__dirname, '../../samples/config.yaml'), 'utf8'), 'samples/config.yaml');
    const base = { config, stage: 'prod', region: 'eu-central-1', vpcId: 'vpc-0123456789abcdef0', renderUserData };
    expect(buildStack(base).env.reconcile.CACHE_BUCKET).toEqual({ Ref: 'CacheBucket' });
    const dev = buildStack({ ...base, dev: { endpoint: 'http://127.0.0.1:5000', queueUrl: 'q', configFile: 'c.yaml' } }).env.reconcile.CACHE_BUCKET as string;
    expect(bucketNameProblem(dev)).toBeUndefined();
    const own = parseConfig(readFileSync(join(__dirname, '../../samples/config.yaml'), 'utf8'), 'samples/config.yaml');
    for (const p of own.pools) p.worker.cache.bucketName = `own-${p.name}`;
    expect(buildStack({ ...base, config: own }).env.reconcile).not.toHaveProperty('CACHE_BUCKET');
  });

  test('the reconcile function refuses a CACHE_BUCKET that is no bucket name (it would reach every worker)', () => {
    const env = { STAGE: 'prod', CONFIG_PARAMETER: '/c' };
    expect(controllerEnv({ ...env, CACHE_BUCKET: BUCKET }).cacheBucket).toBe(BUCKET);
    expect(controllerEnv(env).cacheBucket).toBeUndefined();
    expect(() => controllerEnv({ ...env, CACHE_BUCKET: 'Cache"Bucket' })).toThrow(EnvError);
    expect(() => controllerEnv({ ...env, CACHE_BUCKET: 'Cache"Bucket' })).toThrow(/CACHE_BUCKET: "Cache\\"Bucket" is not an S3 bucket name \(must be 3-63 of a-z/);
  });
});

describe('bucket name rules: the controller and the worker agree', () => {
  const names: [string, boolean][] = [
    [BUCKET, true],
    ['abc', true],
    ['a.b-c', true],
    ['123', true],
    ['a'.repeat(63), true],
    ['1234.1.1.1', true],
    ['ab', false],
    ['a'.repeat(64), false],
    ['Abc', false],
    ['-ab', false],
    ['ab-', false],
    ['a..b', false],
    ['a_b', false],
    ['a b', false],
    ['a\nb', false],
    ['ab"c', false],
    ['ab$(id)c', false],
    ['192.168.5.4', false],
    ['xn--abc', false],
    ['sthree-abc', false],
    ['amzn-s3-demo-abc', false],
    ['abc-s3alias', false],
    ['abc--ol-s3', false],
    ['abc.mrap', false],
    ['abc--x-s3', false],
    ['abc--table-s3', false],
    ['', false],
  ];

  test('bucketNameProblem (controller, CLI) follows S3\'s general purpose bucket naming rules', () => {
    expect(names.filter(([n, ok]) => (bucketNameProblem(n) === undefined) !== ok)).toEqual([]);
  });

  test("the worker script's valid_bucket gives the same answers (run under bash)", () => {
    const script = renderUserData({ config: SAMPLES.minimal, pool: SAMPLES.minimal.pools[0], stage: 'dev' });
    const fn = /^valid_bucket\(\) \{\n[\s\S]*?\n\}\n/m.exec(script)![0];
    const r = spawnSync('bash', ['-c', `${fn}\nfor n in "$@"; do if valid_bucket "$n"; then echo 1; else echo 0; fi; done`, 'check', ...names.map(([n]) => n)], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.stdout.trim().split('\n')).toEqual(names.map(([, ok]) => (ok ? '1' : '0')));
  });
});

describe('only the pools that need it carry the code', () => {
  test('a pool on the deployment bucket: the tag read and the placeholder; a bucket of its own, or the image build: neither', () => {
    const shared = renderUserData({ config: SAMPLES.minimal, pool: SAMPLES.minimal.pools[0], stage: 'prod' });
    expect(shared).toContain('\n  read_cache_bucket\n');
    expect(shared).toMatch(/^read_cache_bucket\(\) \{$/m);
    const own = SAMPLES.full.pools[0];
    expect(own.worker.cache.bucketName).toBeDefined();
    for (const text of [renderUserData({ config: SAMPLES.full, pool: own, stage: 'prod' }), renderImageBuildScript({ config: SAMPLES.minimal, pool: SAMPLES.minimal.pools[0], stage: 'prod' })]) {
      expect(text).not.toContain('read_cache_bucket');
      expect(text).not.toContain('CACHE_BUCKET');
      expect(text).not.toContain('##@');
    }
  });
});

describe('the worker reads it at boot (bash, fakes, IMDS stand-in)', () => {
  /** A pool on the deployment's cache bucket (the harness's pools have a bucket of their own). */
  const onDeploymentCache = { MaxBuilds: 1, worker: { cache: {} } };
  const expectShutdownBeforeToken = (r: RunResult, reason: RegExp) => {
    expect(r.exitCode).toBe(0);
    const last = r.calls[r.calls.length - 1];
    expect(last.cmd).toBe('shutdown');
    expect(last.args).toMatch(reason);
    expect(r.output).toMatch(new RegExp(`shutting down: .*${reason.source}`));
    // Nothing of the pool's secrets is read, and no runner ever starts: no job runs without its cache.
    expect(indexOf(r.calls, 'aws', 'ssm get-parameter')).toBe(-1);
    expect(indexOf(r.calls, 'gitlab-runner', 'run-single')).toBe(-1);
    expect(r.runnerConfig).toBe('');
  };

  test('the tag names the bucket: it is in the config.toml the runner starts with', async () => {
    const r = await runScenario({ name: 'cache-tag', pool: onDeploymentCache, runner: { jobs: 1 }, tags: { [TAGS.cacheBucket]: BUCKET } });
    expect(r.userData).toContain(`BucketName = "${DEPLOYMENT_CACHE_PLACEHOLDER}"`);
    const cache = (parseToml(r.runnerConfig) as any).runners[0].cache;
    expect(cache.s3).toMatchObject({ BucketName: BUCKET, BucketLocation: 'eu-west-1', AuthenticationType: 'iam' });
    expect(r.runnerConfig).not.toContain(DEPLOYMENT_CACHE_PLACEHOLDER);
    expect(r.output).toContain(`gsa-worker: cache bucket: ${BUCKET}`);
    expect(r.calls[r.calls.length - 1].args).toMatch(/MaxBuilds \(1\) reached/);
  });

  test('no tag: it shuts down at once, saying why, before it reads its token or starts a runner', async () => {
    const r = await runScenario({ name: 'cache-no-tag', pool: onDeploymentCache, runner: { jobs: 1 } });
    expectShutdownBeforeToken(r, /no gitlab-spot-autoscaler:cache-bucket tag \(the deployment's cache bucket; the controller sets it at launch\): no jobs without their cache/);
  });

  test('a tag that is no bucket name never reaches config.toml', async () => {
    const r = await runScenario({ name: 'cache-bad-tag', pool: onDeploymentCache, runner: { jobs: 1 }, tags: { [TAGS.cacheBucket]: 'x" ]\n[evil' } });
    expectShutdownBeforeToken(r, /its cache-bucket tag is not an S3 bucket name: /);
  });

  test('a pool with a bucket of its own needs no tag', async () => {
    const r = await runScenario({ name: 'cache-own', pool: { MaxBuilds: 1 }, runner: { jobs: 1 } });
    expect((parseToml(r.runnerConfig) as any).runners[0].cache.s3.BucketName).toBe('ci-cache');
    expect(r.output).not.toContain('cache bucket:');
  });
});
