/**
 * Secrets teams really keep in config.toml, in the shapes the first detectors missed: variable
 * names like REGISTRY_PASS / NEXUS_PWD / SIGNING_KEY, `curl -u user:password` in a script, a
 * service's `command = ["redis-server", "--requirepass", "..."]`, a password in a table of
 * strings. migrate never copies them; `validate` refuses them (and hand-written {{ssm:...}}
 * references) in a pool's runner: block.
 */
import { ConfigError, parseConfig, validateConfig } from '../../lib/config';
import { migrateConfigToml } from '../../lib/migrate/migrate';
import { isSecretEnvEntry, looksSecretValue } from '../../lib/migrate/secrets';
import { workerConfigToml } from '../../lib/worker/runner-config';
import { renderUserData } from '../../lib/worker/userdata';
import { poolInput } from '../helpers/config';

const TOML = `
[[runners]]
  name = "vm-runner"
  url = "https://gitlab.example.com"
  token = "glrt-S3CR3Ttoken000000001"
  executor = "docker+machine"
  environment = ["REGISTRY_PASS=S3CR3Thunter2", "NEXUS_PWD=S3CR3Tcorrect-horse", "SIGNING_KEY=S3CR3Tabcdef0123", "SECRET_DETECTION_DISABLED=true", "GIT_DEPTH=10"]
  post_build_script = "curl -fsS -u deploy:S3CR3TdeployPw https://artifacts.example.com/hook"
  pre_get_sources_script = "git config --global url.\\"https://gitlab-ci-token:\${CI_JOB_TOKEN}@gitlab.example.com/\\".insteadOf https://gitlab.example.com/"
  [runners.docker]
    image = "alpine:3.20"
    volume_driver_ops = { "password" = "S3CR3Tvolume" }
    [[runners.docker.services]]
      name = "redis:7"
      alias = "cache"
      command = ["redis-server", "--requirepass", "S3CR3Tredis"]
    [[runners.docker.services]]
      name = "postgres:16"
      command = ["postgres", "-c", "max_connections=200"]
  [runners.machine]
    MachineDriver = "amazonec2"
    MachineOptions = ["amazonec2-region=eu-west-1", "amazonec2-subnet-id=subnet-0abc", "amazonec2-instance-type=m6i.large"]
`;

describe('migrate: secrets in the shapes real configs hold them', () => {
  const result = migrateConfigToml(TOML, { source: 'vm.toml' });
  const config = parseConfig(result.yaml, 'migrated');
  const pool = config.pools[0];
  const everything = [
    result.yaml,
    JSON.stringify(result.report),
    JSON.stringify(result.warnings),
    JSON.stringify(result.secrets),
    renderUserData({ config, pool, stage: 'prod', cacheBucket: 'b' }),
    workerConfigToml({ config, pool, stage: 'prod', cacheBucket: 'b' }),
  ].join('\n');

  test('none of them is copied anywhere', () => {
    expect(everything).not.toMatch(/S3CR3T/);
  });

  test('what can come from SSM does; a secret inside a list or table is dropped with what to do', () => {
    expect(pool.runnerSecrets.map((s) => s.setting).sort()).toEqual(['environment.NEXUS_PWD', 'environment.REGISTRY_PASS', 'environment.SIGNING_KEY', 'post_build_script']);
    const dropped = (at: string) => result.report.find((e) => e.at === at);
    expect(dropped('runners[0].docker.services[0].command')).toMatchObject({ outcome: 'dropped', why: expect.stringMatching(/masked CI\/CD variable/) });
    expect(dropped('runners[0].docker.volume_driver_ops')).toMatchObject({ outcome: 'dropped' });
  });

  test('what is not secret is carried as it was: a switch, a variable reference, a plain command', () => {
    expect(pool.runner?.environment).toEqual(['SECRET_DETECTION_DISABLED=true', 'GIT_DEPTH=10']);
    expect(pool.runner?.pre_get_sources_script).toContain('${CI_JOB_TOKEN}@gitlab.example.com');
    expect((pool.runner?.docker as any).services[1]).toEqual({ name: 'postgres:16', command: ['postgres', '-c', 'max_connections=200'] });
  });

  test('the detectors', () => {
    for (const v of ['curl -u admin:pw1234 https://x', 'redis-server --requirepass abc', '--api-key=abc123', 'https://u:p4ss@host/x']) expect({ v, secret: looksSecretValue(v) }).toEqual({ v, secret: true });
    for (const v of ['https://gitlab-ci-token:${CI_JOB_TOKEN}@host/', 'docker run -u 1000:1000 img', 'curl -u "$USER:$PASS" https://x']) expect({ v, secret: looksSecretValue(v) }).toEqual({ v, secret: false });
    for (const e of ['DB_PASS=x1', 'DB_PWD=x1', 'GH_PAT=x1', 'SENTRY_DSN=https://k@o.ingest.sentry.io/1', 'GPG_KEY=x1', 'ARTIFACTORY_CREDS=a:b', 'PASSWORD=123456']) expect({ e, secret: isSecretEnvEntry(e) }).toEqual({ e, secret: true });
    for (const e of ['SECRET_DETECTION_DISABLED=true', 'PWD=/builds', 'PASSENGER_ENV=x', 'KEYBOARD=us', 'TOKEN=$CI_JOB_TOKEN']) expect({ e, secret: isSecretEnvEntry(e) }).toEqual({ e, secret: false });
  });
});

describe('validate: no secret written into a pool\'s runner: block', () => {
  function problemsOf(runner: Record<string, unknown>): string[] {
    try {
      validateConfig({ deployment: 'ci', gitlab: { url: 'https://gitlab.example.com' }, pools: [poolInput({ runner })] }, 'test.yaml');
    } catch (e) {
      if (e instanceof ConfigError) return e.problems;
      throw e;
    }
    return [];
  }

  test('each inline secret is refused with where it goes instead', () => {
    expect(problemsOf({ environment: ['REGISTRY_PASSWORD=hunter2', 'A=1'] })).toEqual([expect.stringMatching(/^pools\[0\]\.runner\.environment\[0\]: REGISTRY_PASSWORD looks like a secret; .*runnerSecrets \(setting: environment\.REGISTRY_PASSWORD\)/)]);
    expect(problemsOf({ environment: ['DOCKER_AUTH_CONFIG={"auths":{"r.example":{"auth":"dXNlcjpwdw=="}}}'] })).toEqual([expect.stringMatching(/DOCKER_AUTH_CONFIG looks like a secret/)]);
    expect(problemsOf({ post_build_script: 'curl -u deploy:pw1234 https://x' })).toEqual([expect.stringMatching(/runner\.post_build_script: looks like a secret; .*setting: post_build_script/)]);
    expect(problemsOf({ docker: { services: [{ name: 'redis', command: ['redis-server', '--requirepass', 'pw'] }] } })).toEqual([expect.stringMatching(/runner\.docker\.services\[0\]\.command: looks like a secret; a list cannot come from SSM/)]);
    expect(problemsOf({ cache: { Type: 's3', s3: { ServerAddress: 'minio.internal:9000', AccessKey: 'minio', SecretKey: 'plainpassword' } } })).toEqual([expect.stringMatching(/runner\.cache\.s3\.SecretKey: looks like a secret; .*setting: cache\.s3\.SecretKey/)]);
    expect(problemsOf({ environment: ['DOCKER_AUTH_CONFIG={"credHelpers":{"1.dkr.ecr.eu-west-1.amazonaws.com":"ecr-login"}}', 'SECRET_DETECTION_DISABLED=true'] })).toEqual([]);
  });

  test('{{ssm:...}} written by hand is refused: the worker would put the runner token there', () => {
    expect(problemsOf({ environment: ['T={{ssm:/gitlab-spot-autoscaler/ci/dev/secrets/runner-token/docker}}'] })).toEqual([expect.stringMatching(/environment\[0\]: holds "\{\{ssm:", which only the project writes/)]);
    expect(problemsOf({ pre_build_script: 'echo {{ssm:/x}}' })).toEqual([expect.stringMatching(/runner\.pre_build_script: holds "\{\{ssm:"/)]);
  });
});

describe('tls-ca-file: a bundle as openssl writes it, with a private key in it', () => {
  const BUNDLE = [
    'subject=CN = Acme Root CA',
    'issuer=CN = Acme Root CA',
    '-----BEGIN CERTIFICATE-----',
    'MIIBrootA',
    '-----END CERTIFICATE-----',
    '-----BEGIN CERTIFICATE-----',
    'MIIBinterB',
    '-----END CERTIFICATE-----',
    '-----BEGIN PRIVATE KEY-----',
    'MIIEvS3CR3Tkey',
    '-----END PRIVATE KEY-----',
    '',
  ].join('\n');
  const toml = `[[runners]]\n  name = "r"\n  url = "https://gitlab.acme.internal"\n  executor = "docker+machine"\n  tls-ca-file = "/etc/gitlab-runner/certs/bundle.pem"\n  [runners.machine]\n    MachineDriver = "amazonec2"\n    MachineOptions = ["amazonec2-subnet-id=subnet-0abc"]\n`;
  const result = migrateConfigToml(toml, { readFile: (p) => (p.endsWith('bundle.pem') ? BUNDLE : undefined) });

  test('the worker gets the certificates (not dropped for the text lines), never the key', () => {
    const config = parseConfig(result.yaml);
    expect(config.pools[0].worker.caCertificate).toBe('-----BEGIN CERTIFICATE-----\nMIIBrootA\n-----END CERTIFICATE-----\n-----BEGIN CERTIFICATE-----\nMIIBinterB\n-----END CERTIFICATE-----\n');
    expect(result.report.find((e) => e.at === 'runners[0].tls-ca-file')).toMatchObject({ outcome: 'mapped', why: expect.stringMatching(/2 certificates.*a private key, text\) was left out/) });
    expect(result.yaml + renderUserData({ config, pool: config.pools[0], stage: 'prod', cacheBucket: 'b' })).not.toMatch(/S3CR3T|PRIVATE KEY/);
  });

  test('validate refuses a caCertificate with a private key', () => {
    let problems: string[] = [];
    try {
      validateConfig({ deployment: 'ci', gitlab: { url: 'https://gitlab.example.com' }, pools: [poolInput({ worker: { ...(poolInput().worker as object), caCertificate: BUNDLE.split('\n').slice(2).join('\n') } })] });
    } catch (e) {
      problems = (e as ConfigError).problems;
    }
    expect(problems).toContainEqual(expect.stringMatching(/^pools\[0\]\.worker\.caCertificate: holds a private key/));
  });
});
