import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../helpers/cli';

const CONFIG = `deployment: ci
gitlab:
  url: https://gitlab.example.com
pools:
  - name: docker
    runUntagged: true
    IdleCount: 2
    IdleTime: 1800
    autoscaling:
      - Periods: ["* * 0-8,18-23 * * mon-fri *", "* * * * * sat,sun *"]
        Timezone: Europe/Berlin
        IdleCount: 0
        IdleTime: 1200
      - Periods: ["* * 12 * * mon-fri *"]
        Timezone: Europe/Berlin
        IdleCount: 1
        IdleTime: 600
    worker: { instanceTypes: [m6i.large], subnets: [subnet-0abc], ami: ami-0abc }
  - name: gpu
    tags: [gpu]
    IdleCount: 1
    worker: { instanceTypes: [g5.xlarge], subnets: [subnet-0abc], ami: ami-0abc }
`;

const dir = mkdtempSync(join(tmpdir(), 'gsa-cli-'));
const file = join(dir, 'config.yaml');
writeFileSync(file, CONFIG);


describe('explain', () => {
  test('one JSON line per --at with the settings in force; the last matching section wins', async () => {
    const r = await runCli(['explain', '--config', file, '--at', '2026-11-30T09:00:00+01:00', '--at', '2026-11-30T12:30:00+01:00', '--at', '2026-11-28T12:00:00Z']);
    expect(r.code).toBe(0);
    const lines = r.out.trim().split('\n').map((l) => JSON.parse(l));
    expect(lines).toEqual([
      { at: '2026-11-30T08:00:00.000Z', pools: [{ name: 'docker', activePeriod: null, IdleCount: 2, IdleTime: 1800, IdleCountMin: 0, IdleScaleFactor: 0 }, { name: 'gpu', activePeriod: null, IdleCount: 1, IdleTime: 600, IdleCountMin: 0, IdleScaleFactor: 0 }] },
      { at: '2026-11-30T11:30:00.000Z', pools: [{ name: 'docker', activePeriod: 1, IdleCount: 1, IdleTime: 600, IdleCountMin: 0, IdleScaleFactor: 0 }, expect.objectContaining({ name: 'gpu', activePeriod: null })] },
      { at: '2026-11-28T12:00:00.000Z', pools: [{ name: 'docker', activePeriod: 0, IdleCount: 0, IdleTime: 1200, IdleCountMin: 0, IdleScaleFactor: 0 }, expect.objectContaining({ name: 'gpu' })] },
    ]);
  });

  test('daylight saving: 08:30 in Berlin is off-peak in summer and winter alike', async () => {
    const r = await runCli(['explain', '--config', file, '--at', '2026-07-01T06:30:00Z', '--at', '2026-12-01T07:30:00Z']);
    expect(r.out.trim().split('\n').map((l) => JSON.parse(l).pools[0].activePeriod)).toEqual([0, 0]);
  });

  test('a bad time is a clear error and exit 2, before any output', async () => {
    const r = await runCli(['explain', '--config', file, '--at', '2026-11-30T09:00:00Z', '--at', '30/11/2026 9:00']);
    expect(r.code).toBe(2);
    expect(r.out).toBe('');
    expect(r.err).toMatch(/--at "30\/11\/2026 9:00" is not an ISO 8601 instant/);
  });

  test('a bad config lists its problems and exits 2', async () => {
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, CONFIG.replace('IdleCount: 2', 'IdleCount: -2').replace('Timezone: Europe/Berlin', 'Timezone: Europe/Atlantis'));
    const r = await runCli(['explain', '--config', bad, '--at', '2026-11-30T09:00:00Z']);
    expect(r.code).toBe(2);
    expect(r.err).toContain('pools[0].IdleCount: IdleCount must be >= 0');
    expect(r.err).toContain('pools[0].autoscaling[0].Timezone: unknown time zone "Europe/Atlantis"');
  });

  test('missing file, missing options and unknown commands are named', async () => {
    expect((await runCli(['explain', '--config', join(dir, 'nope.yaml'), '--at', '2026-11-30T09:00:00Z'])).err).toMatch(/cannot read config file .*nope\.yaml: ENOENT/);
    expect((await runCli(['explain', '--config', file])).err).toMatch(/--at ISO8601 is required/);
    expect((await runCli(['explain', '--conf', file])).err).toMatch(/unknown option --conf \(did you mean --config\?\)/);
    expect((await runCli(['frobnicate'])).err).toMatch(/unknown command "frobnicate"/);
  });
});
