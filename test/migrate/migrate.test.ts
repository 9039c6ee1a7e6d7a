import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../../lib/config';
import { explainAt } from '../../lib/cli/commands/explain';
import { migrateConfigToml, MigrationError, PLACEHOLDER_SUBNET, PLACEHOLDER_URL } from '../../lib/migrate/migrate';
import { run as migrateCommand } from '../../lib/cli/commands/migrate';
import { captureStdio, type CapturedStdio } from '../helpers/cli';

const FIXTURES = join(__dirname, '..', 'fixtures');
const seed = readFileSync(join(FIXTURES, 'seed-config.toml'), 'utf8');
const spot = readFileSync(join(FIXTURES, 'seed-config-spot.toml'), 'utf8');

/** What gitlab-runner does with the seed's OffPeak settings (evaluated in UTC here). */
function gitlabRunnerIdle(at: Date) {
  const day = at.getUTCDay();
  const h = at.getUTCHours();
  const offPeak = day === 0 || day === 6 || h <= 9 || h >= 18;
  return offPeak ? { IdleCount: 0, IdleTime: 1200 } : { IdleCount: 1, IdleTime: 1800 };
}

describe('migrating the seed article config.toml', () => {
  const result = migrateConfigToml(seed, { source: 'seed-config.toml' });

  it('produces a config that validates, with the runner as one pool and every machine knob kept', () => {
    const { config } = result;
    expect(config.concurrent).toBe(10);
    expect(config.pools).toHaveLength(1);
    expect(config.pools[0]).toMatchObject({
      name: 'gitlab-aws-autoscaler',
      limit: 20,
      runUntagged: true,
      tags: [],
      IdleCount: 1,
      IdleTime: 1800,
      MaxBuilds: 100,
      autoscaling: [{ Periods: ['* * 0-9,18-23 * * mon-fri *', '* * * * * sat,sun *'], IdleCount: 0, IdleTime: 1200 }],
    });
    expect(config.pools[0].worker).toMatchObject({
      instanceTypes: ['m4.2xlarge'],
      subnets: [PLACEHOLDER_SUBNET],
      market: 'on-demand',
      tags: { 'runner-manager-name': 'gitlab-aws-autoscaler', gitlab: 'true', 'gitlab-runner-autoscale': 'true' },
      docker: { image: 'alpine', privileged: true, disableCache: true, volumes: [] },
      cache: { shared: true },
    });
    expect(config.gitlab.url).toBe(PLACEHOLDER_URL);
  });

  it('explains like gitlab-runner: on-peak Monday 10:00 -> 1 / 1800, off-peak Saturday and weekday 20:00 -> 0 / 1200', () => {
    const cases: [string, number | null, number, number][] = [
      ['2025-03-03T10:00:00Z', null, 1, 1800],
      ['2025-03-08T12:00:00Z', 0, 0, 1200],
      ['2025-03-05T20:00:00Z', 0, 0, 1200],
      ['2025-03-03T09:59:00Z', 0, 0, 1200],
      ['2025-03-07T17:59:00Z', null, 1, 1800],
    ];
    for (const [at, activePeriod, IdleCount, IdleTime] of cases)
      expect(explainAt(result.config, new Date(at)).pools[0]).toMatchObject({ activePeriod, IdleCount, IdleTime });
  });

  it('round-trips: the YAML written parses to the same config, and agrees with gitlab-runner every 20 minutes of a week', () => {
    const reparsed = parseConfig(result.yaml, 'migrated.yaml');
    expect(reparsed).toEqual(result.config);
    for (let t = Date.parse('2025-03-03T00:00:00Z'); t < Date.parse('2025-03-10T00:00:00Z'); t += 20 * 60_000) {
      const at = new Date(t);
      expect({ at: at.toISOString(), ...explainAt(reparsed, at).pools[0] }).toMatchObject({ at: at.toISOString(), ...gitlabRunnerIdle(at) });
    }
  });

  it('decides about us-central-1 (not an AWS region): a marked placeholder and a warning', () => {
    expect(result.config.region).toBe('us-east-1');
    expect(result.yaml).toMatch(/region: us-east-1 # PLACEHOLDER: config.toml said "us-central-1"/);
    expect(result.warnings.find((w) => w.message.includes('"us-central-1" is not an AWS region'))).toBeDefined();
  });

  it('marks placeholders and lists options without an equivalent, each with a reason', () => {
    expect(result.yaml).toMatch(/subnet-00000000000000000 # PLACEHOLDER/);
    expect(result.yaml).toMatch(/url: https:\/\/gitlab\.example\.com # PLACEHOLDER/);
    const dropped = (at: string) => result.report.find((e) => e.at === at && e.outcome === 'dropped');
    expect(dropped('check_interval')!.why).toMatch(/run-single/);
    expect(dropped('runners[0].machine.MachineName')!.why).toMatch(/tags/);
    expect(result.warnings.map((w) => w.at)).toEqual(expect.arrayContaining(['runners[0].machine.OffPeakTimezone', 'deployment']));
    expect(result.report.find((e) => e.at.includes('amazonec2-security-group'))).toMatchObject({ outcome: 'replaced', why: expect.stringMatching(/docker-machine-scaler/) });
    // The seed runs privileged docker: the migrant hears what that exposes on a worker.
    expect(result.warnings.find((w) => w.at.endsWith('docker.privileged'))!.message).toMatch(/runner token and instance role/);
  });

  it('never copies secrets: SSM parameter names and put-parameter commands with placeholders instead', () => {
    expect(result.yaml).not.toMatch(/XXXX|Runner's token/);
    const params = result.secrets.map((s) => s.parameter);
    expect(params).toEqual([
      '/gitlab-spot-autoscaler/gitlab-aws-autoscaler/prod/secrets/runner-token/gitlab-aws-autoscaler',
      '/gitlab-spot-autoscaler/gitlab-aws-autoscaler/prod/secrets/webhook-secret',
      '/gitlab-spot-autoscaler/gitlab-aws-autoscaler/prod/secrets/gitlab-api-token',
    ]);
    expect(result.secrets[0].command).toBe(
      "aws ssm put-parameter --region us-east-1 --type SecureString --name /gitlab-spot-autoscaler/gitlab-aws-autoscaler/prod/secrets/runner-token/gitlab-aws-autoscaler --value '<glrt-RUNNER-AUTHENTICATION-TOKEN>'",
    );
    for (const s of result.secrets) expect(result.yaml).toContain(s.command);
  });
});

describe('migrating a spot config with autoscaling sections, secrets and other executors', () => {
  const result = migrateConfigToml(spot, { source: 'spot.toml', deployment: 'acme', stage: 'dev' });

  it('maps spot, max price, AMI, disk, subnets, security group, tags, region and cache bucket', () => {
    const [pool] = result.config.pools;
    expect(result.config.region).toBe('eu-west-1');
    expect(result.config.gitlab.url).toBe('https://gitlab.example.org');
    expect(pool).toMatchObject({ name: 'gitlab-aws-autoscaler', tags: ['docker', 'aws'], runUntagged: false, Timezone: 'UTC' });
    expect(pool.worker).toMatchObject({
      market: 'spot',
      maxPrice: 0.03,
      ami: 'ami-0a1b2c3d4e5f67890',
      rootVolumeSize: 64,
      subnets: ['subnet-0abc123', 'subnet-0def456'],
      securityGroups: ['sg-0123abcd'],
      instanceTypes: ['m5.2xlarge', 'm6i.2xlarge'],
      cache: { shared: true, bucketName: 'acme-runner-cache' },
    });
    expect(result.yaml).not.toMatch(/# PLACEHOLDER/);
  });

  it("keeps docker-machine's VPC as vpcId (the stack's worker security group needs it; dropping it made the deploy ask again)", () => {
    expect(result.config.vpcId).toBe('vpc-0abc');
    expect(result.report).toContainEqual(expect.objectContaining({ at: 'runners[0].machine.MachineOptions amazonec2-vpc-id', outcome: 'mapped', to: 'vpcId' }));
    // The seed's "vpc-xxxxx" is no VPC id: dropped, saying what to do instead.
    const seedResult = migrateConfigToml(seed);
    expect(seedResult.config.vpcId).toBeUndefined();
    expect(seedResult.report).toContainEqual(expect.objectContaining({ at: 'runners[0].machine.MachineOptions amazonec2-vpc-id', outcome: 'dropped', why: expect.stringMatching(/"vpc-xxxxx" is not a VPC id.*--param vpc=/) }));
  });

  it('turns OffPeak* into the first section so newer autoscaling sections win where they match', () => {
    const [pool] = result.config.pools;
    expect(pool.autoscaling).toEqual([
      { Periods: ['* * 0-9,18-23 * * mon-fri *', '* * * * * sat,sun *'], Timezone: 'Europe/Dublin', IdleCount: 0, IdleTime: 1200 },
      { Periods: ['* * 12-13 * * mon-fri *'], Timezone: 'Europe/Dublin', IdleCount: 3, IdleTime: 600 },
    ]);
    // Dublin is UTC+0 in March: lunch boost, morning peak, evening off-peak.
    expect(explainAt(result.config, new Date('2025-03-04T12:30:00Z')).pools[0]).toMatchObject({ activePeriod: 1, IdleCount: 3, IdleTime: 600 });
    expect(explainAt(result.config, new Date('2025-03-04T11:00:00Z')).pools[0]).toMatchObject({ activePeriod: null, IdleCount: 1, IdleTime: 1800 });
    expect(explainAt(result.config, new Date('2025-03-04T19:00:00Z')).pools[0]).toMatchObject({ activePeriod: 0, IdleCount: 0 });
  });

  it('warns about spot blocks, docker-machine flags and the shell runner, and copies no secret', () => {
    const byAt = (s: string) => result.report.find((e) => e.at.includes(s))!;
    expect(byAt('amazonec2-block-duration-minutes')).toMatchObject({ outcome: 'dropped', why: expect.stringMatching(/spot blocks .* no longer exist/) });
    expect(byAt('engine-storage-driver')).toMatchObject({ outcome: 'dropped', why: expect.stringMatching(/engine flag/) });
    expect(byAt('runners[1]')).toMatchObject({ outcome: 'dropped', why: expect.stringMatching(/executor "shell": jobs run on the runner host itself/) });
    expect(byAt('cache.BucketLocation')).toMatchObject({ outcome: 'replaced', to: 'region' });
    for (const secret of ['glrt-abcdefghijklmnopqrst', 'AKIAIOSFODNN7EXAMPLE', 'wJalrXUtnFEMI']) {
      expect(result.yaml).not.toContain(secret);
      expect(JSON.stringify(result.warnings)).not.toContain(secret);
      expect(JSON.stringify(result.secrets)).not.toContain(secret);
      expect(JSON.stringify(result.report)).not.toContain(secret);
    }
    expect(result.secrets[0].parameter).toBe('/gitlab-spot-autoscaler/acme/dev/secrets/runner-token/gitlab-aws-autoscaler');
    expect(result.secrets[0].command).toContain('--region eu-west-1');
  });
});

describe('migration errors and adjustments', () => {
  it('reports TOML syntax errors with their line', () => {
    expect(() => migrateConfigToml('concurrent = 10\n[[runners]]\nname = "x\n')).toThrow(/not valid TOML .*: .* at line 3/);
  });

  it('refuses a file with no docker+machine amazonec2 runner, saying why', () => {
    expect(() => migrateConfigToml('[[runners]]\nname = "a"\nexecutor = "docker"\n')).toThrow(MigrationError);
    expect(() => migrateConfigToml('[[runners]]\nname = "a"\nexecutor = "docker+machine"\n[runners.machine]\nMachineDriver = "google"\n')).toThrow(/MachineDriver "google": workers are EC2 instances/);
  });

  it('drops what gitlab-runner took but the schema refuses (a bad cron, a negative count, "Local"), says why, and migrates the rest', () => {
    const r = migrateConfigToml(
      [
        '[[runners]]',
        'name = "r"',
        'executor = "docker+machine"',
        '[runners.machine]',
        'IdleCount = -1',
        'MachineDriver = "amazonec2"',
        'OffPeakPeriods = ["* * 25 * * * *", "* * 0-8 * * * *"]',
        'OffPeakTimezone = "Local"',
        'MachineOptions = ["amazonec2-instance-type=m5.large", "amazonec2-subnet-id=subnet-0abc"]',
        '[[runners.machine.autoscaling]]',
        'Periods = ["nonsense"]',
        'IdleCount = 2',
      ].join('\n'),
    );
    expect(r.config.pools[0].IdleCount).toBe(0);
    expect(r.config.pools[0].autoscaling).toEqual([{ Periods: ['* * 0-8 * * * *'], IdleCount: 0, IdleTime: 0 }]);
    const dropped = r.report.filter((e) => e.outcome === 'dropped').map((e) => `${e.at}: ${e.why}`);
    expect(dropped).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^runners\[0\]\.machine\.IdleCount: this project's schema refuses it: IdleCount must be >= 0/),
        expect.stringMatching(/^runners\[0\]\.machine\.OffPeakTimezone: "Local" was the runner manager's own time zone/),
        expect.stringMatching(/^pools\[0\]\.autoscaling\[0\]\.Periods\[0\] \(in the output\): .*"\* \* 25 \* \* \* \*" does not parse/),
        expect.stringMatching(/^runners\[0\]\.machine\.autoscaling\[0\]\.Periods: this project's schema refuses it/),
      ]),
    );
  });

  it('carries feature flags, with a note for one gitlab-runner does not know', () => {
    const r = migrateConfigToml('[[runners]]\nname = "a"\nexecutor = "docker+machine"\n[runners.feature_flags]\nFF_USE_FASTZIP = true\nFF_NOPE = true\n[runners.machine]\nMachineDriver = "amazonec2"\n');
    expect(r.config.pools[0].runner?.feature_flags).toEqual({ FF_USE_FASTZIP: true, FF_NOPE: true });
    expect(r.warnings.find((w) => w.at === 'runners[0].feature_flags.FF_NOPE')!.message).toMatch(/not a feature flag gitlab-runner v18\.3\.1 knows/);
  });

  it('lowers an IdleCount above limit (the schema refuses it) and says so', () => {
    const r = migrateConfigToml(
      '[[runners]]\nname = "Big Runner!"\nexecutor = "docker+machine"\nlimit = 2\n[runners.machine]\nIdleCount = 5\nMachineDriver = "amazonec2"\nMachineOptions = ["amazonec2-instance-type=c5.xlarge", "amazonec2-subnet-id=subnet-0abc"]\n',
    );
    expect(r.config.pools[0]).toMatchObject({ name: 'big-runner', IdleCount: 2, limit: 2 });
    expect(r.warnings.some((w) => /IdleCount 5 can never be reached with limit 2; written 2/.test(w.message))).toBe(true);
  });
});

describe('migrate command', () => {
  let dir: string;
  let io: CapturedStdio;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'migrate-'));
    io = captureStdio();
  });
  afterEach(() => {
    io.restore();
    rmSync(dir, { recursive: true, force: true });
  });

  it('writes --out, prints the secrets to store and the notes, and refuses to overwrite without --force', async () => {
    const from = join(dir, 'config.toml');
    writeFileSync(from, seed);
    const dest = join(dir, 'config.yaml');
    expect(await migrateCommand(['--from', from, '--out', dest])).toBe(0);
    expect(parseConfig(readFileSync(dest, 'utf8')).pools[0].name).toBe('gitlab-aws-autoscaler');
    const printed = io.out();
    expect(printed).toContain('aws ssm put-parameter');
    expect(printed).toMatch(/3 value\(s\) marked "# PLACEHOLDER"/);
    expect(await migrateCommand(['--from', from, '--out', dest])).toBe(2);
    expect(io.err()).toMatch(/exists; pass --force/);
  });

  it('prints the YAML on stdout and the notes on stderr without --out', async () => {
    const from = join(dir, 'config.toml');
    writeFileSync(from, seed);
    expect(await migrateCommand(['--from', from])).toBe(0);
    expect(parseConfig(io.out()).concurrent).toBe(10);
    expect(io.err()).toContain('Store these secrets');
  });

  it('names a missing --from or an unreadable file', async () => {
    expect(await migrateCommand([])).toBe(2);
    expect(await migrateCommand(['--from', join(dir, 'nope.toml')])).toBe(2);
    expect(io.err()).toMatch(/--from config.toml is required[\s\S]*cannot read .*nope.toml: ENOENT/);
  });
});

describe('secrets and host paths in a migrated config.toml', () => {
  const toml = (url: string, docker: string) => `concurrent = 4
[[runners]]
  name = "ci"
  url = "${url}"
  token = "glrt-abcdefghijklmnopqrst"
  executor = "docker+machine"
  [runners.docker]
${docker}
  [runners.machine]
    MachineDriver = "amazonec2"
    MachineOptions = ["amazonec2-region=eu-west-1", "amazonec2-subnet-id=subnet-0abc123", "amazonec2-instance-type=m5.large", "amazonec2-request-spot-instance=true"]
`;

  it('moves credentials out of the GitLab URL into an SSM put-parameter command, never printing them', () => {
    const r = migrateConfigToml(toml('https://deploy-user:s3cr3t-pa55@gitlab.example.org:8443/gl/', '    image = "alpine"'), { deployment: 'acme', stage: 'prod' });
    expect(r.config.gitlab.url).toBe('https://gitlab.example.org:8443/gl');
    const all = r.yaml + JSON.stringify(r.warnings) + JSON.stringify(r.secrets);
    expect(all).not.toMatch(/s3cr3t-pa55|deploy-user/);
    expect(r.report.find((e) => e.at === 'runners[0].url')).toMatchObject({ outcome: 'replaced', to: 'gitlab.url + SSM gitlab-url-credentials' });
    expect(r.report.find((e) => e.at === 'runners[0].url')!.why).toMatch(/credentials \(user:password@\) not copied \(secret\): gitlab\.url is https:\/\/gitlab\.example\.org:8443\/gl/);
    const cred = r.secrets.find((s) => s.parameter.endsWith('/secrets/gitlab-url-credentials'))!;
    expect(cred.command).toBe("aws ssm put-parameter --region eu-west-1 --type SecureString --name /gitlab-spot-autoscaler/acme/prod/secrets/gitlab-url-credentials --value '<USER:PASSWORD>'");
    expect(r.yaml).toContain(cred.command);
    expect(() => parseConfig(r.yaml)).not.toThrow();
  });

  it('drops volumes that would hand jobs the host, with the reason, and keeps the rest (the result validates)', () => {
    const r = migrateConfigToml(
      toml('https://gitlab.example.org', '    privileged = false\n    volumes = ["/cache", "/var/run/docker.sock:/var/run/docker.sock", "/etc/./gsa-worker:/x", "/srv/cache:/srv-cache"]'),
      { deployment: 'acme' },
    );
    expect(r.config.pools[0].worker.docker.volumes).toEqual(['/cache', '/srv/cache:/srv-cache']);
    const dropped = (v: string) => r.report.find((e) => e.at === `runners[0].docker.volumes ${JSON.stringify(v)}`);
    expect(dropped('/var/run/docker.sock:/var/run/docker.sock')).toMatchObject({ outcome: 'dropped', why: expect.stringMatching(/container engine's API.*privileged: true/) });
    expect(dropped('/etc/./gsa-worker:/x')).toMatchObject({ outcome: 'dropped', why: expect.stringMatching(/runner token/) });
    // A privileged runner keeps its socket: it hands out the host anyway (and is warned about).
    const priv = migrateConfigToml(toml('https://gitlab.example.org', '    privileged = true\n    volumes = ["/var/run/docker.sock:/var/run/docker.sock"]'), { deployment: 'acme' });
    expect(priv.config.pools[0].worker.docker.volumes).toEqual(['/var/run/docker.sock:/var/run/docker.sock']);
  });
});
