/**
 * `validate` answers "valid" only for a config that deploys: every pool's settings travel in its
 * user data, so a runner: block too large for EC2's 16 KB (gzip) is refused here, with the pool
 * and the sizes, not at deploy time. migrate notes it too.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { migrateConfigToml } from '../../lib/migrate/migrate';
import { runCli } from '../helpers/cli';

// Random bytes do not compress: ~12 KB of them overflow the gzip-compressed user data.
const LONG = randomBytes(9000).toString('base64');

describe('validate: the user data must fit', () => {
  const dir = mkdtempSync(join(tmpdir(), 'gsa-validate-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const write = (name: string, script: string) => {
    const file = join(dir, name);
    const pool = (n: string, tags: string) => `  - name: ${n}\n    ${tags}\n    runner:\n      pre_build_script: "echo ${script}"\n    worker: {instanceTypes: [m5.large], subnets: [subnet-0abc], ami: ami-0abc}\n`;
    writeFileSync(file, `deployment: ci\nregion: eu-west-1\ngitlab: {url: https://gitlab.example.com}\npools:\n${pool('small', 'runUntagged: true').replace(script, 'hi')}${pool('big', 'tags: [big]')}`);
    return file;
  };

  test('a pool whose user data is over EC2\'s limit makes the file invalid, naming the pool and the sizes', async () => {
    const r = await runCli(['validate', '--config', write('big.yaml', LONG)]);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/the workers' user data cannot be built:\n {2}- pools\[1\] \(big\): the user data for pool "big" is \d+ bytes gzip-compressed \(\d+ bytes as a script\), over EC2's limit of 16384 bytes/);
    expect(r.err).not.toMatch(/pools\[0\]/);
  });

  test('the same file with a short script is valid', async () => {
    const r = await runCli(['validate', '--config', write('ok.yaml', 'short')]);
    expect(r).toMatchObject({ code: 0, out: expect.stringMatching(/valid — deployment "ci", 2 pool\(s\)/) });
  });

  test('migrate notes it for the pool', () => {
    const toml = `[[runners]]\n  name = "big"\n  url = "https://gitlab.example.com"\n  executor = "docker+machine"\n  pre_build_script = "echo ${LONG}"\n  [runners.machine]\n    MachineDriver = "amazonec2"\n    MachineOptions = ["amazonec2-subnet-id=subnet-0abc", "amazonec2-region=eu-west-1"]\n`;
    const result = migrateConfigToml(toml);
    expect(result.warnings).toContainEqual({ at: 'user data', message: expect.stringMatching(/^pools\[0\] \(big\): the user data for pool "big" is \d+ bytes .*; shorten the pool's runner: scripts/) });
  });
});

describe('validate: what migrate left marked PLACEHOLDER', () => {
  const dir = mkdtempSync(join(tmpdir(), 'gsa-validate-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const seed = readFileSync(join(__dirname, '..', 'fixtures', 'seed-config.toml'), 'utf8');

  test('the seed article migrated: valid, and each of the placeholders migrate counted is a warning with its line', async () => {
    const file = join(dir, 'seed.yaml');
    const { yaml } = migrateConfigToml(seed);
    const marked = (yaml.match(/^[^#\n]*# PLACEHOLDER/gm) ?? []).length;
    expect(marked).toBe(3); // region, GitLab URL, subnet: the seed names none of them usably
    writeFileSync(file, yaml);
    const r = await runCli(['validate', '--config', file]);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/valid — deployment "gitlab-aws-autoscaler", 1 pool\(s\): gitlab-aws-autoscaler; 3 placeholder\(s\) to replace before deploying\n$/);
    expect(r.err.match(/^warning: line \d+: still a placeholder from migrate: /gm)).toHaveLength(3);
    expect(r.err).toMatch(/line \d+: still a placeholder from migrate: - subnet-00000000000000000 # PLACEHOLDER/);
  });

  test('once replaced (comment gone), nothing is said; the header comments that mention PLACEHOLDER do not count', async () => {
    const file = join(dir, 'done.yaml');
    const { yaml } = migrateConfigToml(seed);
    writeFileSync(file, yaml.replace(/^(\s*\S.*?)\s*# PLACEHOLDER.*$/gm, '$1').replace('subnet-00000000000000000', 'subnet-0abc1234'));
    const r = await runCli(['validate', '--config', file]);
    expect(r.code).toBe(0);
    expect(r.err).not.toMatch(/placeholder/i);
    expect(r.out).not.toMatch(/placeholder/);
  });
});
