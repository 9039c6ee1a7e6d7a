/**
 * A pool's gitlab-runner settings (`runner:`), its job secrets (`runnerSecrets:`) and host settings:
 * validation against gitlab-runner v18.3.1's schema with a message per key, and the worker's
 * config.toml built from them. Also the stack's side: extra IAM, job-secret reads, monitoring.
 */
import { parse as parseToml } from 'smol-toml';
import { ConfigError, validateConfig } from '../../lib/config';
import { buildStack } from '../../lib/deploy/stack';
import { renderUserData } from '../../lib/worker/userdata';
import { workerConfigToml } from '../../lib/worker/runner-config';
import { checkRunnerTable, RUNNER_SCHEMA_VERSION, workerConfigProblems } from '../../lib/worker/runner-schema';
import { makeConfig, poolInput } from '../helpers/config';

function problemsOf(pool: Record<string, unknown>): string[] {
  try {
    validateConfig({ deployment: 'ci', region: 'eu-west-1', gitlab: { url: 'https://gitlab.example.com' }, pools: [poolInput(pool)] }, 'test.yaml');
  } catch (e) {
    if (e instanceof ConfigError) return e.problems;
    throw e;
  }
  return [];
}
const toml = (pool: Record<string, unknown>, stage = 'prod') => {
  const config = makeConfig([poolInput(pool)], { region: 'eu-west-1' });
  return parseToml(workerConfigToml({ config, pool: config.pools[0], stage, cacheBucket: 'dep-cache' })) as any;
};

describe('runner: gitlab-runner settings of a pool', () => {
  test('carried verbatim into the worker config.toml, beside what the project writes', () => {
    const runner = {
      environment: ['FOO=bar', 'FF_USE_FASTZIP=true'],
      output_limit: 16384,
      pre_build_script: 'echo one\necho "two"\n',
      feature_flags: { FF_NETWORK_PER_BUILD: true },
      custom_build_dir: { enabled: true },
      docker: { shm_size: 268435456, pull_policy: ['always', 'if-not-present'], tmpfs: { '/tmp': 'rw' }, services: [{ name: 'redis:7', alias: 'cache' }] },
      cache: { MaxUploadedArchiveSize: 1000, s3: { ServerSideEncryption: 'KMS' } },
    };
    expect(problemsOf({ runner })).toEqual([]);
    const r = toml({ runner }).runners[0];
    expect(r).toMatchObject({ ...runner, docker: { ...runner.docker, image: 'alpine:latest', privileged: false }, cache: { Type: 's3', MaxUploadedArchiveSize: 1000 } });
    expect(r.cache.s3).toEqual({ ServerAddress: 's3.amazonaws.com', BucketName: 'dep-cache', BucketLocation: 'eu-west-1', AuthenticationType: 'iam', ServerSideEncryption: 'KMS' });
    expect(workerConfigProblems(toml({ runner }))).toEqual([]);
  });

  test('every key gitlab-runner would not load, or that belongs to the manager, is refused with its path and what to do', () => {
    const problems = problemsOf({
      runner: {
        token: 'x',
        url: 'https://other',
        executor: 'shell',
        limit: 3,
        machine: {},
        request_concurrency: 2,
        'tls-ca-file': '/etc/x.crt',
        Environment: ['A=b'],
        pre_clone_script: 'x',
        shm_size: 1,
        docker: { shm_size: '256m', image: 'x', host: 'tcp://x', sysctls: ['a=b'], pull_policy: 'sometimes' },
        feature_flags: { FF_X: 'yes' },
        shell: 'powershell',
      },
    });
    const expected = [
      'pools[0].runner.token: not a pool runner setting: set by this project from the pool\'s runner token in SSM (runnerTokenParameter)',
      'pools[0].runner.url: not a pool runner setting: set by this project from gitlab.url',
      'pools[0].runner.executor: not a pool runner setting: set by this project from nothing: workers always run the docker executor',
      'pools[0].runner.limit: not a pool runner setting: set by this project from the pool\'s limit',
      'pools[0].runner.machine: not accepted on a worker: docker+machine autoscaling; instead: the pool\'s own IdleCount, IdleTime, MaxBuilds, autoscaling ... (migrate maps them)',
      'pools[0].runner.request_concurrency: not accepted on a worker: each worker takes one job at a time with run-single, which does not read it',
      'pools[0].runner.tls-ca-file: not a pool runner setting: set by this project from worker.caCertificate (the PEM itself: the worker writes it and points tls-ca-file at it)',
      'pools[0].runner.Environment: write "environment" (gitlab-runner\'s spelling; this file is case-sensitive)',
      `pools[0].runner.pre_clone_script: gitlab-runner ${RUNNER_SCHEMA_VERSION} no longer reads "pre_clone_script" (it ignores it); its replacement is "pre_get_sources_script": write "pre_get_sources_script"`,
      `pools[0].runner.shm_size: not a gitlab-runner ${RUNNER_SCHEMA_VERSION} setting (did you mean "docker.shm_size"?) (keys are gitlab-runner ${RUNNER_SCHEMA_VERSION}'s [[runners]] keys)`,
      `pools[0].runner.docker.shm_size: gitlab-runner ${RUNNER_SCHEMA_VERSION} cannot load it: expected an integer, got a string`,
      'pools[0].runner.docker.image: not a pool runner setting: set by this project from worker.docker.image',
      'pools[0].runner.docker.host: not accepted on a worker: the worker runs jobs on its own local docker daemon; instead: nothing: the worker uses /var/run/docker.sock',
      `pools[0].runner.docker.sysctls: gitlab-runner ${RUNNER_SCHEMA_VERSION} cannot load it: expected a table of strings, got a list`,
      `pools[0].runner.docker.pull_policy: gitlab-runner ${RUNNER_SCHEMA_VERSION} cannot load it: "sometimes" is not accepted (gitlab-runner accepts "always", "never", "if-not-present")`,
      `pools[0].runner.feature_flags: gitlab-runner ${RUNNER_SCHEMA_VERSION} cannot load it: "FF_X": expected true or false, got a string`,
      `pools[0].runner.shell: gitlab-runner ${RUNNER_SCHEMA_VERSION} cannot load it: "powershell" is not accepted (gitlab-runner accepts "bash", "sh", "pwsh")`,
    ];
    // shm_size at the top level: the suggestion is computed, not hard-wired; accept any wording that names it.
    expect(problems.filter((p) => !p.startsWith('pools[0].runner.shm_size'))).toEqual(expected.filter((p) => !p.startsWith('pools[0].runner.shm_size')));
    expect(problems.find((p) => p.startsWith('pools[0].runner.shm_size'))).toMatch(/not a gitlab-runner v18\.3\.1 setting/);
  });

  test('the managed cache owns its keys; a cache of the pool\'s own (runner.cache.Type) owns them all and gets no bucket', () => {
    expect(problemsOf({ runner: { cache: { Path: 'x', s3: { BucketName: 'b', AccessKey: 'k' } } } })).toEqual([
      expect.stringMatching(/^pools\[0\]\.runner\.cache\.Path: the managed cache sets it from the pool/),
      expect.stringMatching(/^pools\[0\]\.runner\.cache\.s3\.BucketName: the managed cache sets it from worker\.cache\.bucketName/),
      expect.stringMatching(/^pools\[0\]\.runner\.cache\.s3\.AccessKey: the managed cache sets it from the worker role/),
    ]);
    const own = { Type: 'gcs', Shared: true, gcs: { BucketName: 'b', AccessID: 'sa@x' } };
    expect(problemsOf({ runner: { cache: own }, runnerSecrets: [{ setting: 'cache.gcs.PrivateKey' }] })).toEqual([]);
    expect(problemsOf({ runner: { cache: own }, worker: { ...(poolInput().worker as object), cache: { bucketName: 'x' } } })).toEqual([
      expect.stringMatching(/worker\.cache\.bucketName: the pool has a cache of its own/),
    ]);
    expect(toml({ runner: { cache: own }, runnerSecrets: [{ setting: 'cache.gcs.PrivateKey' }] }).runners[0].cache).toEqual({
      ...own,
      gcs: { ...own.gcs, PrivateKey: '{{ssm:/gitlab-spot-autoscaler/test/prod/secrets/runner/docker/cache/gcs/PrivateKey}}' },
    });
  });

  test('runnerSecrets: environment variables and string settings, referenced as {{ssm:NAME}}; refused where they make no sense', () => {
    const r = toml({ runner: { environment: ['A=1'] }, runnerSecrets: [{ setting: 'environment.DOCKER_AUTH_CONFIG' }, { setting: 'pre_build_script', parameter: '/shared/ci/pre-build' }] }).runners[0];
    expect(r.environment).toEqual(['A=1', 'DOCKER_AUTH_CONFIG={{ssm:/gitlab-spot-autoscaler/test/prod/secrets/runner/docker/environment/DOCKER_AUTH_CONFIG}}']);
    expect(r.pre_build_script).toBe('{{ssm:/shared/ci/pre-build}}');
    expect(problemsOf({ runnerSecrets: [{ setting: 'docker.shm_size' }, { setting: 'token' }, { setting: 'nope' }, { setting: 'environment.1X' }] })).toEqual([
      expect.stringMatching(/runnerSecrets\[0\]\.setting: "docker\.shm_size": only string settings and environment variables/),
      expect.stringMatching(/runnerSecrets\[1\]\.setting: "token": not a carried setting/),
      expect.stringMatching(/runnerSecrets\[2\]\.setting: "nope": not a gitlab-runner v18\.3\.1 setting/),
      expect.stringMatching(/runnerSecrets\[3\]\.setting: "environment\.1X": an environment variable name/),
    ]);
    expect(problemsOf({ runner: { environment: ['TOKEN=x'], clone_url: 'https://x' }, runnerSecrets: [{ setting: 'environment.TOKEN' }, { setting: 'clone_url' }, { setting: 'clone_url' }] })).toEqual([
      expect.stringMatching(/runner\.environment\[0\]: TOKEN looks like a secret; .* runnerSecrets \(setting: environment\.TOKEN\)/),
      expect.stringMatching(/runnerSecrets\[0\]: TOKEN is also set in runner\.environment/),
      expect.stringMatching(/runnerSecrets\[1\]: runner\.clone_url is also set in the config/),
      expect.stringMatching(/runnerSecrets\[2\]\.setting: clone_url is listed twice/),
      expect.stringMatching(/runnerSecrets\[2\]: runner\.clone_url is also set/),
    ]);
    // A value that is a token is refused wherever it is, as everywhere in the config.
    expect(problemsOf({ runner: { environment: ['T=glpat-abcdefghijklmnop'] } })).toEqual([expect.stringMatching(/pools\[0\]\.runner\.environment\[0\]: looks like a GitLab personal access token/)]);
  });

  test('checkRunnerTable reads keys as gitlab-runner does: exact, then case-insensitive', () => {
    expect(checkRunnerTable({ DOCKER: { SHM_SIZE: 1 } }).map((i) => [i.kind, i.path.join('.'), i.canonical])).toEqual([
      ['spelling', 'DOCKER', 'docker'],
      ['spelling', 'docker.SHM_SIZE', 'shm_size'],
    ]);
  });
});

describe('worker host settings', () => {
  const worker = (extra: Record<string, unknown>) => ({ worker: { ...(poolInput().worker as object), ...extra } });

  test('validated with a message each', () => {
    expect(
      problemsOf(
        worker({
          runnerVersion: 'v16.11.0',
          registryMirrors: ['mirror.example'],
          insecureRegistries: ['bad host'],
          proxy: { http: 'http://user:pw@proxy:3128', noProxy: ['ok.example'] },
          caCertificate: 'not pem',
          userScript: 'echo no shebang',
          iam: { managedPolicyArns: ['arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly', 'nope'], statements: [{ Effect: 'Allow', Action: 'iam:PassRole', Resource: '*' }] },
        }),
      ),
    ).toEqual([
      expect.stringMatching(/worker\.runnerVersion: must be v17\.1\.0 or later/),
      expect.stringMatching(/worker\.registryMirrors\[0\]/),
      expect.stringMatching(/worker\.insecureRegistries\[0\]: must be a registry host/),
      expect.stringMatching(/worker\.proxy\.http: must not hold credentials/),
      expect.stringMatching(/worker\.caCertificate: must be PEM/),
      expect.stringMatching(/worker\.userScript: must start with "#!"/),
      expect.stringMatching(/worker\.iam\.managedPolicyArns\[1\]: must be an IAM policy ARN/),
      expect.stringMatching(/worker\.iam\.statements\[0\]\.Action: Action "iam:PassRole" grants iam:\* actions/),
    ]);
  });

  test('reach the user data as shell variables; the runner version is configurable and still checked', () => {
    const config = makeConfig([
      poolInput(
        worker({
          runnerVersion: 'v18.4.0',
          registryMirrors: ['https://mirror.example'],
          insecureRegistries: ['registry.example:5000'],
          proxy: { http: 'http://proxy.example:3128', https: 'http://proxy.example:3128', noProxy: ['.example'] },
          caCertificate: '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n',
          userScript: '#!/bin/bash\necho hello\n',
        }),
      ),
    ]);
    const text = renderUserData({ config, pool: config.pools[0], stage: 'prod' });
    expect(text).toContain("RUNNER_VERSION='v18.4.0'\n");
    expect(text).toContain(`DOCKERD_JSON='{"registry-mirrors":["https://mirror.example"],"insecure-registries":["registry.example:5000"]}'\n`);
    expect(text).toContain("PROXY_HTTPS='http://proxy.example:3128'\nPROXY_NO='.example'\n");
    expect(text).toContain("CA_PEM='-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----'\n");
    expect(text).toContain("USER_SCRIPT='#!/bin/bash\necho hello\n'\n");
    expect((parseToml(/cat <<'GSA_TOML'\n([\s\S]*?)\nGSA_TOML\n/.exec(text)![1]) as any).runners[0]['tls-ca-file']).toBe('/etc/gsa-worker/ca.crt');
  });

  test('the stack: extra policies and statements on the pool\'s worker role, its job secrets only, detailed monitoring', () => {
    const config = makeConfig(
      [
        poolInput({
          name: 'a',
          runnerSecrets: [{ setting: 'environment.DOCKER_AUTH_CONFIG' }],
          ...worker({
            detailedMonitoring: true,
            securityGroups: ['sg-0abc'],
            iam: { managedPolicyArns: ['arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly'], statements: [{ Effect: 'Allow', Action: ['kms:Decrypt'], Resource: 'arn:aws:kms:eu-west-1:111122223333:key/x' }] },
          }),
        }),
        poolInput({ name: 'b', runUntagged: false, tags: ['b'], runner: { cache: { Type: 'azure', azure: { AccountName: 'x' } } }, ...worker({ securityGroups: ['sg-0abc'] }) }),
      ],
      { region: 'eu-west-1' },
    );
    const stack = buildStack({ config, stage: 'prod', region: 'eu-west-1', renderUserData: (a) => renderUserData(a) });
    const roleA = stack.resources.WorkerRoleA as any;
    const roleB = stack.resources.WorkerRoleB as any;
    // The pool's own managed policies, after the stack's guard every worker role carries.
    expect(roleA.Properties.ManagedPolicyArns).toEqual([{ Ref: 'WorkerGuard' }, 'arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly']);
    expect(roleA.Properties.Policies[1]).toEqual({ PolicyName: 'pool-extra', PolicyDocument: { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: ['kms:Decrypt'], Resource: 'arn:aws:kms:eu-west-1:111122223333:key/x' }] } });
    const secretsA = roleA.Properties.Policies[0].PolicyDocument.Statement.find((s: any) => s.Sid === 'OwnJobSecrets');
    expect(JSON.stringify(secretsA.Resource)).toContain('/gitlab-spot-autoscaler/test/prod/secrets/runner/a/environment/DOCKER_AUTH_CONFIG');
    expect(JSON.stringify(roleB)).not.toContain('OwnJobSecrets');
    expect(roleB.Properties.ManagedPolicyArns).toEqual([{ Ref: 'WorkerGuard' }]);
    // Pool b has a cache of its own: no bucket grant; a has the deployment's bucket.
    expect(JSON.stringify(roleB)).not.toContain('CacheBucket');
    expect(JSON.stringify(roleA)).toContain('CacheBucket');
    expect((stack.resources.LaunchTemplateA as any).Properties.LaunchTemplateData.Monitoring).toEqual({ Enabled: true });
    // The controller's copy leaves out what only workers use (their launch templates carry it): SSM's 8 KB stays far.
    const deployed = validateConfig(JSON.parse((stack.resources.ConfigParameter as any).Properties.Value));
    expect(deployed.pools.map((p) => [p.runner, p.runnerSecrets, p.worker.userScript])).toEqual([
      [undefined, [], undefined],
      [undefined, [], undefined],
    ]);
    expect(deployed.pools[0].worker.iam).toEqual(config.pools[0].worker.iam);
    expect((stack.resources.LaunchTemplateB as any).Properties.LaunchTemplateData.Monitoring).toEqual({ Enabled: false });
  });
});
