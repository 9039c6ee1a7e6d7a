import { parseConfig, validateConfig, ConfigError, DEFAULTS, parameterNames, poolForJobTags, configWarnings, cachePath, placeholderLines } from '../lib/config';
import { makeConfig, poolInput } from './helpers/config';

function problemsOf(raw: unknown): string[] {
  try {
    validateConfig(raw, 'test.yaml');
  } catch (e) {
    if (e instanceof ConfigError) return e.problems;
    throw e;
  }
  throw new Error('config was accepted');
}

const base = (pools: unknown[], extra: Record<string, unknown> = {}) => ({ deployment: 'ci', gitlab: { url: 'https://gitlab.example.com' }, pools, ...extra });

describe('config', () => {
  test('a minimal YAML config gets the documented defaults', () => {
    const c = parseConfig(
      `deployment: ci
gitlab:
  url: https://gitlab.example.com
pools:
  - name: docker
    runUntagged: true
    worker:
      instanceTypes: [m6i.large]
      subnets: [subnet-0abc]
      ami: ami-0123abcd
`,
      'inline.yaml',
    );
    const p = c.pools[0];
    expect(c.concurrent).toBe(DEFAULTS.concurrent);
    expect([p.limit, p.IdleCount, p.IdleTime, p.MaxBuilds, p.IdleCountMin, p.IdleScaleFactor, p.MaxGrowthRate]).toEqual([
      DEFAULTS.limit,
      DEFAULTS.IdleCount,
      DEFAULTS.IdleTime,
      DEFAULTS.MaxBuilds,
      DEFAULTS.IdleCountMin,
      DEFAULTS.IdleScaleFactor,
      DEFAULTS.MaxGrowthRate,
    ]);
    expect(p.worker.market).toBe('spot');
    expect(p.worker.onDemandFallback).toBe(true);
    expect(p.worker.docker).toEqual({ image: DEFAULTS.dockerImage, privileged: false, volumes: [], disableCache: false });
  });

  test('JSON is accepted too', () => {
    const c = parseConfig(JSON.stringify(base([poolInput()])), 'c.json');
    expect(c.pools[0].name).toBe('docker');
  });

  test('every problem is listed at once, each with its path and what is accepted', () => {
    const problems = problemsOf(
      base([
        poolInput({ IdleCount: -1, Timezone: 'Mars/Olympus', autoscaling: [{ Periods: ['* * 25 * * * *'], IdleCount: 1 }], worker: { instanceTypes: [], subnets: ['subnet-0abc'], ami: 'ami-0abc' } }),
      ]),
    );
    expect(problems).toEqual(
      expect.arrayContaining([
        'pools[0].IdleCount: IdleCount must be >= 0',
        expect.stringMatching(/^pools\[0\]\.Timezone: unknown time zone "Mars\/Olympus" \(accepted: an IANA name/),
        expect.stringMatching(/^pools\[0\]\.autoscaling\[0\]\.Periods\[0\]: cron expression "\* \* 25 \* \* \* \*" does not parse/),
        expect.stringMatching(/^pools\[0\]\.worker\.instanceTypes: a pool needs at least one instance type/),
      ]),
    );
    expect(problems).toHaveLength(4);
  });

  test('durations that would expire every worker or job at once are refused', () => {
    const problems = problemsOf(
      base([poolInput({ jobTimeout: 0, worker: { instanceTypes: ['m5.large'], subnets: ['subnet-0abc'], ami: 'ami-0abc', bootTimeout: 0, maxLifetime: 30 } })], { pendingJobTtl: 0 }),
    );
    expect(problems.sort()).toEqual([
      'pendingJobTtl: pendingJobTtl must be >= 60 seconds',
      'pools[0].jobTimeout: jobTimeout must be >= 60 seconds',
      'pools[0].worker.bootTimeout: bootTimeout must be >= 60 seconds',
      'pools[0].worker.maxLifetime: maxLifetime must be >= 600 seconds',
    ]);
  });

  test('unknown and misspelt settings are rejected by name', () => {
    expect(problemsOf(base([poolInput({ IdleCounts: 3 })]))).toEqual(['pools[0]: unknown setting "IdleCounts" (check the spelling; names are case-sensitive, as in gitlab-runner)']);
  });

  test('missing required values name the path', () => {
    expect(problemsOf({ deployment: 'ci', pools: [] })).toEqual(['gitlab: required (expected object)', 'pools: at least one pool is needed']);
  });

  test('tags that overlap between pools are ambiguous and rejected', () => {
    const problems = problemsOf(base([poolInput({ name: 'a', tags: ['docker', 'linux'], runUntagged: false }), poolInput({ name: 'b', tags: ['linux', 'gpu'], runUntagged: false })]));
    expect(problems).toEqual(['pools[1].tags: tag "linux" is also served by pool "a"; a job tagged "linux" could match both pools — give each pool its own tags']);
  });

  test('only one pool may run untagged jobs; a pool nobody can reach is an error', () => {
    expect(problemsOf(base([poolInput({ name: 'a' }), poolInput({ name: 'b' })]))).toEqual([
      'pools: "a", "b" all set runUntagged: true; an untagged job would match each of them — allow it on one pool only',
    ]);
    expect(problemsOf(base([poolInput({ runUntagged: false })]))).toEqual([
      'pools[0]: pool "docker" has no tags and runUntagged is false, so no job can ever reach it; add tags or set runUntagged: true',
    ]);
  });

  test('secrets are refused wherever they appear', () => {
    const problems = problemsOf(base([poolInput({ worker: { instanceTypes: ['m5.large'], subnets: ['subnet-0abc'], ami: 'ami-0abc', tags: { token: 'glrt-abcdefABCDEF123456' } } })]));
    expect(problems[0]).toMatch(/^pools\[0\]\.worker\.tags\.token: looks like a GitLab runner authentication token; secrets never go in the config file/);
    expect(problems.join('\n')).not.toContain('glrt-abcdefABCDEF123456');
  });

  test('periods cronexpr reads differently from how they look, and several pools without an API token, are warned about', () => {
    const c = makeConfig([poolInput({ autoscaling: [{ Periods: ['* * 9-17 * * mon-fri *', '0 0 0 1 09 * *'] }] })]);
    const warnings = configWarnings(c);
    expect(warnings).toHaveLength(1);
    const two = makeConfig([poolInput({ name: 'a' }), poolInput({ name: 'b', runUntagged: false, tags: ['b'] })]);
    expect(configWarnings(two)).toEqual(['pools: 2 pools need a GitLab API token (read_api) to route jobs — job hooks carry no tags — at /gitlab-spot-autoscaler/test/<stage>/secrets/gitlab-api-token']);
    expect(warnings[0]).toMatch(/^pools\[0\]\.autoscaling\[0\]\.Periods\[1\]: "0 0 0 1 09 \* \*": month field/);
  });

  test('malformed YAML names the problem', () => {
    expect(() => parseConfig('pools: [\n', 'bad.yaml')).toThrow(/invalid configuration bad\.yaml:\n {2}- not valid YAML\/JSON/);
  });

  test('SSM parameter names default under the deployment prefix and can be overridden', () => {
    const c = makeConfig([poolInput({ runnerTokenParameter: '/custom/token' }), poolInput({ name: 'gpu', runUntagged: false, tags: ['gpu'] })]);
    const names = parameterNames(c, 'prod');
    expect(names.webhookSecret).toBe('/gitlab-spot-autoscaler/test/prod/secrets/webhook-secret');
    expect(names.runnerToken(c.pools[0])).toBe('/custom/token');
    expect(names.runnerToken(c.pools[1])).toBe('/gitlab-spot-autoscaler/test/prod/secrets/runner-token/gpu');
  });

  test('jobs are routed by GitLab\'s tag rule', () => {
    const c = makeConfig([poolInput({ name: 'docker', tags: ['docker', 'linux'] }), poolInput({ name: 'gpu', runUntagged: false, tags: ['gpu'] })]);
    expect(poolForJobTags(c, [])?.name).toBe('docker');
    expect(poolForJobTags(c, ['linux'])?.name).toBe('docker');
    expect(poolForJobTags(c, ['docker', 'linux'])?.name).toBe('docker');
    expect(poolForJobTags(c, ['gpu'])?.name).toBe('gpu');
    expect(poolForJobTags(c, ['gpu', 'linux'])).toBeUndefined();
  });
});

describe('GitLab URL credentials', () => {
  it.each(['https://user:pass@gitlab.example.com', 'https://token@gitlab.example.com', 'http://:pw@gitlab.example.com/'])('refuses %s without repeating it', (url) => {
    const problems = problemsOf(base([poolInput()], { gitlab: { url } }));
    expect(problems).toEqual([expect.stringMatching(/^gitlab\.url: must not carry credentials \("https:\/\/user:password@host"\)/)]);
    expect(problems.join('\n')).not.toMatch(/pass@|token@|:pw@/);
  });
  it('accepts a plain URL, with a path and port', () => {
    expect(() => validateConfig(base([poolInput()], { gitlab: { url: 'https://gitlab.example.com:8443/gitlab' } }))).not.toThrow();
  });
});

describe('cache path', () => {
  it('defaults to the pool name; a path is one segment', () => {
    const c = makeConfig([poolInput({ name: 'a' }), poolInput({ name: 'b', runUntagged: false, tags: ['b'], worker: { ...(poolInput().worker as object), cache: { path: 'shared' } } })]);
    expect(cachePath(c.pools[0])).toBe('a');
    expect(cachePath(c.pools[1])).toBe('shared');
    expect(problemsOf(base([poolInput({ worker: { ...(poolInput().worker as object), cache: { path: 'a/b' } } })]))).toEqual([expect.stringMatching(/cache\.path: must be 1-63 of letters/)]);
  });
});

describe('placeholderLines: only what migrate marked', () => {
  it("finds migrate's comment marks and its tag, with their lines", () => {
    const text = ['# header: PLACEHOLDER values below', 'region: us-east-1 # PLACEHOLDER: not a region', 'pools:', '  - name: a', '    tags:', '      - PLACEHOLDER-a', '    tags2: [x, "PLACEHOLDER"]'].join('\n');
    expect(placeholderLines(text)).toEqual([
      'line 2: still a placeholder from migrate: region: us-east-1 # PLACEHOLDER: not a region',
      'line 6: still a placeholder from migrate: - PLACEHOLDER-a',
      'line 7: still a placeholder from migrate: tags2: [x, "PLACEHOLDER"]',
    ]);
  });

  it('does not refuse a config that merely holds the word: in a script, an environment value, a quoted "#", a description', () => {
    const text = [
      'pools:',
      '  - name: a',
      '    runner:',
      '      pre_build_script: |',
      "        sed -i 's/# PLACEHOLDER/real/' config.ini",
      '        echo PLACEHOLDER-free',
      '      environment: ["GREETING=PLACEHOLDER", "X=a # PLACEHOLDER"]',
      '      description: "replace the PLACEHOLDER text"',
      "      note: 'x #PLACEHOLDER'",
      '      script: sed s/PLACEHOLDER/x/',
      '      MY_PLACEHOLDER: 1',
    ].join('\n');
    expect(placeholderLines(text)).toEqual([]);
  });
});
