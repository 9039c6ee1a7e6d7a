/**
 * Settings docker+machine fleets wrote the way their gitlab-runner read them, which migrate lost:
 * autoscaling keys in another case ("periods", "TimeZone": gitlab-runner's loader matches keys
 * case-insensitively), post_clone_script (gitlab-runner 14-16), services as a list of image names
 * (before 13.0), and an S3 cache with Shared = false whose bucket migrate cannot use.
 */
import { parse as parseToml } from 'smol-toml';
import { ConfigError, parseConfig, validateConfig } from '../../lib/config';
import { migrateConfigToml } from '../../lib/migrate/migrate';
import { workerConfigToml } from '../../lib/worker/runner-config';
import { workerConfigProblems } from '../../lib/worker/runner-schema';
import { poolInput } from '../helpers/config';

const TOML = `
concurrent = 8
[[runners]]
  name = "legacy"
  url = "https://gitlab.example.com"
  token = "abcdef0123456789"
  executor = "docker+machine"
  post_clone_script = "git lfs pull"
  [runners.docker]
    image = "ruby:2.6"
    services = ["postgres:11", "redis:5"]
  [runners.cache]
    Type = "s3"
    Shared = false
    Path = "legacy"
    MaxUploadedArchiveSize = 1073741824
    [runners.cache.s3]
      ServerAddress = "s3.amazonaws.com"
      BucketName = "<the bucket where your cache should be kept>"
      ServerSideEncryption = "S3"
  [runners.machine]
    IdleCount = 1
    MachineDriver = "amazonec2"
    MachineOptions = ["amazonec2-region=eu-west-1", "amazonec2-subnet-id=subnet-0abc", "amazonec2-instance-type=m5.large"]
    [[runners.machine.autoscaling]]
      periods = ["* * 9-17 * * mon-fri *"]
      idlecount = 4
      TimeZone = "Europe/Berlin"
`;

describe('older config.toml shapes reach the worker', () => {
  const result = migrateConfigToml(TOML, { source: 'legacy.toml' });
  const config = parseConfig(result.yaml, 'migrated');
  const pool = config.pools[0];
  const worker = (parseToml(workerConfigToml({ config, pool, stage: 'prod', cacheBucket: 'dep-cache' })) as any).runners[0];

  test('autoscaling keys are read case-insensitively, as gitlab-runner reads them', () => {
    expect(pool.autoscaling).toEqual([{ Periods: ['* * 9-17 * * mon-fri *'], IdleCount: 4, Timezone: 'Europe/Berlin' }]);
    expect(result.report.filter((e) => e.at.startsWith('runners[0].machine.autoscaling')).map((e) => e.outcome)).toEqual(['mapped', 'mapped', 'mapped']);
  });

  test('post_clone_script becomes post_get_sources_script; a list of service images becomes [[services]] tables', () => {
    expect(worker.post_get_sources_script).toBe('git lfs pull');
    expect(worker.docker.services).toEqual([{ name: 'postgres:11' }, { name: 'redis:5' }]);
    expect(result.report.find((e) => e.at === 'runners[0].docker.services')).toMatchObject({ outcome: 'mapped', to: 'pools[0].runner.docker.services' });
    expect(workerConfigProblems({ concurrent: 1, runners: [worker] })).toEqual([]);
  });

  test('Shared = false with an unusable bucket keeps a cache, its Path as the pool prefix, and every carried cache key', () => {
    expect(worker.cache).toMatchObject({ Type: 's3', Path: 'legacy', MaxUploadedArchiveSize: 1073741824, s3: { BucketName: 'dep-cache', ServerSideEncryption: 'S3' } });
    expect(result.report.find((e) => e.at === 'runners[0].cache.Shared')).toMatchObject({ outcome: 'replaced', why: expect.stringMatching(/without a bucketName would leave the pool without a cache/) });
    expect(result.report.find((e) => e.at === 'runners[0].cache.Path')).toMatchObject({ outcome: 'mapped', to: 'pools[0].worker.cache.path' });
    expect(pool.worker.cache.path).toBe('legacy');
  });

  test('validate: runner.cache settings on a pool that has no cache are refused, not silently left out', () => {
    let problems: string[] = [];
    try {
      validateConfig({ deployment: 'ci', gitlab: { url: 'https://gitlab.example.com' }, pools: [poolInput({ runner: { cache: { MaxUploadedArchiveSize: 1 } }, worker: { ...(poolInput().worker as object), cache: { shared: false } } })] });
    } catch (e) {
      problems = (e as ConfigError).problems;
    }
    expect(problems).toEqual([expect.stringMatching(/^pools\[0\]\.runner\.cache: the pool has no cache \(worker\.cache\.shared is false/)]);
  });
});

describe('keys named like JavaScript object properties are keys like any other', () => {
  const toml = `constructor = 1
[[runners]]
  name = "r"
  url = "https://gitlab.example.com"
  executor = "docker+machine"
  __proto__ = "x"
  hasOwnProperty = 1
  [runners.machine]
    MachineDriver = "amazonec2"
    MachineOptions = ["amazonec2-subnet-id=subnet-0abc", "amazonec2-constructor=1", "engine-env=toString=1"]
`;
  const result = migrateConfigToml(toml);
  const why = (at: string) => result.report.find((e) => e.at === at)?.why;

  test('each gets its report entry with a reason, never an Object.prototype function', () => {
    expect(why('constructor')).toBe('not a gitlab-runner setting');
    expect(why('runners[0].__proto__')).toMatch(/not a gitlab-runner v18\.3\.1 setting/);
    expect(why('runners[0].hasOwnProperty')).toMatch(/not a gitlab-runner v18\.3\.1 setting/);
    expect(why('runners[0].machine.MachineOptions amazonec2-constructor')).toBe('an amazonec2 driver option this project has no equivalent for');
    expect(why('runners[0].machine.MachineOptions engine-env=toString')).toMatch(/a docker-machine engine flag/);
    expect(JSON.stringify(result.report) + JSON.stringify(result.warnings)).not.toMatch(/native code|\[object Object\]/);
  });
});
