/**
 * lib/deploy/serverless-vars.js, the bridge serverless.yml loads, run in a child node process as
 * the Serverless Framework runs it (its tsx loader does not work inside Jest's module system).
 * A deploy without an explicit config must fail with a clear message instead of standing up
 * samples/config.yaml; with only a deployment name it yields the names `info`, `logs`, `invoke`
 * and `remove` need (test/deploy/serverless-commands.test.ts runs those commands).
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const root = join(__dirname, '..', '..');

const SCRIPT = `
require('./lib/deploy/serverless-vars.js')({ options: JSON.parse(process.argv[1]) }).then(
  (p) => console.log(JSON.stringify({ ok: true, mode: p.mode, configPath: p.configPath, stackName: p.stackName, region: p.region, webhook: p.functionNames.webhook, env: p.env, resources: Object.keys(p.resources).length })),
  (e) => console.log(JSON.stringify({ ok: false, error: e.message, stack: e.stack })),
);`;

type Vars = { ok: boolean; error?: string; stack?: string; mode?: string; configPath?: string | null; stackName?: string; region?: string; webhook?: string; env?: Record<string, Record<string, unknown>>; resources?: number };

async function vars(options: Record<string, unknown>, extraEnv: Record<string, string> = {}): Promise<Vars> {
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME, ...extraEnv };
  const { stdout } = await run(process.execPath, ['-e', SCRIPT, JSON.stringify(options)], { cwd: root, env, timeout: 60_000 });
  return JSON.parse(stdout.trim().split('\n').pop()!);
}

describe('serverless-vars config selection', () => {
  it('refuses to build without --param config or GSA_CONFIG, naming both and the escape hatch', async () => {
    const r = await vars({ stage: 'prod', param: ['vpc=vpc-0123456789abcdef0'] });
    expect(r.ok).toBe(false);
    expect(r.error).toMatch(/no config file given: pass --param config=.*GSA_CONFIG.*--param deployment=NAME .*GSA_ALLOW_SAMPLE_CONFIG=1/);
  });

  it('does not take the sample for GSA_ALLOW_SAMPLE_CONFIG values other than 1', async () => {
    expect(await vars({ stage: 'prod' }, { GSA_ALLOW_SAMPLE_CONFIG: 'true' })).toMatchObject({ ok: false, error: expect.stringMatching(/no config file given/) });
  });

  it('a mistake the user fixes carries its message only: the Framework prints error.stack, and frames buried it', async () => {
    const missing = await vars({ stage: 'prod', param: ['config=does/not/exist.yaml'] });
    expect(missing.stack).toBe(missing.error);
    const bad = await vars({ stage: 'prod', param: [`config=${join(__dirname, '..', 'fixtures', 'seed-config.toml')}`] });
    expect(bad.stack).toMatch(/^ConfigError: invalid configuration /);
    expect(bad.stack).not.toMatch(/\n\s+at /);
  });

  it('refuses a migrated config that still holds placeholders, naming each line', async () => {
    const { mkdtempSync, writeFileSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { migrateConfigToml } = await import('../../lib/migrate/migrate');
    const dir = mkdtempSync(join(tmpdir(), 'gsa-vars-'));
    try {
      const file = join(dir, 'config.yaml');
      writeFileSync(file, migrateConfigToml(readFileSync(join(__dirname, '..', 'fixtures', 'seed-config.toml'), 'utf8')).yaml);
      const r = await vars({ stage: 'prod', param: [`config=${file}`, 'vpc=vpc-0123456789abcdef0'] });
      expect(r.ok).toBe(false);
      expect(r.error).toMatch(/still holds 3 value\(s\) migrate marked PLACEHOLDER; .*\n {2}- line \d+: still a placeholder from migrate: region: us-east-1 # PLACEHOLDER/);
      expect(r.error).toMatch(/- line \d+: still a placeholder from migrate: - subnet-00000000000000000 # PLACEHOLDER/);
      expect(r.stack).toBe(r.error);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('names a config file that does not exist', async () => {
    expect(await vars({ stage: 'prod', param: ['config=does/not/exist.yaml'] })).toMatchObject({ ok: false, error: expect.stringMatching(/exist\.yaml does not exist/) });
  });

  it('builds from an explicit config, and from the sample only with GSA_ALLOW_SAMPLE_CONFIG=1', async () => {
    const explicit = await vars({ stage: 'prod', param: ['config=samples/config.yaml', 'vpc=vpc-0123456789abcdef0'] });
    expect(explicit).toMatchObject({ ok: true, configPath: join(root, 'samples/config.yaml') });
    const sample = await vars({ stage: 'ci', param: ['vpc=vpc-0123456789abcdef0'] }, { GSA_ALLOW_SAMPLE_CONFIG: '1' });
    expect(sample).toMatchObject({ ok: true, configPath: join(root, 'samples/config.yaml'), webhook: expect.stringMatching(/-ci-webhook$/) });
  }, 60_000);

  it('builds from the config with NODE_OPTIONS=--enable-source-maps only when --param sourcemaps=true', async () => {
    const base = ['config=samples/config.yaml', 'vpc=vpc-0123456789abcdef0'];
    const off = await vars({ stage: 'prod', param: base });
    expect(off).toMatchObject({ ok: true, mode: 'full' });
    for (const fn of ['webhook', 'reconcile', 'interruption']) expect(off.env![fn].NODE_OPTIONS).toBeUndefined();
    const on = await vars({ stage: 'prod', param: [...base, 'sourcemaps=true'] });
    for (const fn of ['webhook', 'reconcile', 'interruption']) expect(on.env![fn]).toMatchObject({ NODE_OPTIONS: '--enable-source-maps', STAGE: 'prod' });
    expect(await vars({ stage: 'prod', param: [...base, 'sourcemaps=maybe'] })).toMatchObject({ ok: false, error: expect.stringMatching(/sourcemaps=maybe: expected true or false/) });
  }, 60_000);

  it('refuses a deployment name that contradicts the config', async () => {
    expect(await vars({ stage: 'prod', param: ['config=samples/config.yaml', 'vpc=vpc-0123456789abcdef0', 'deployment=other'] })).toMatchObject({
      ok: false,
      error: expect.stringMatching(/deployment=other .* names deployment "acme-ci"/),
    });
  }, 60_000);
});

describe('serverless-vars names-only mode (no config file, a deployment name)', () => {
  it('knows the stack and function names from deployment and stage, and nothing else', async () => {
    const r = await vars({ stage: 'prod', region: 'eu-central-1', param: ['deployment=acme-ci'] });
    expect(r).toEqual({
      ok: true,
      mode: 'names-only',
      configPath: null,
      stackName: 'gitlab-spot-autoscaler-acme-ci-prod',
      region: 'eu-central-1',
      webhook: 'gsa-acme-ci-prod-webhook',
      env: { webhook: {}, reconcile: {}, interruption: {} },
      resources: 0,
    });
  });

  it('names the same stack and functions as the full build of that deployment', async () => {
    const full = await vars({ stage: 'prod', param: ['config=samples/config.yaml', 'vpc=vpc-0123456789abcdef0'] });
    const names = await vars({ stage: 'prod', region: 'eu-central-1' }, { GSA_DEPLOYMENT: 'acme-ci' });
    expect({ stackName: names.stackName, webhook: names.webhook, region: names.region }).toEqual({ stackName: full.stackName, webhook: full.webhook, region: full.region });
  }, 60_000);

  it('takes the region from AWS_REGION, and asks for one when there is none', async () => {
    expect(await vars({ stage: 'prod', param: ['deployment=acme-ci'] }, { AWS_REGION: 'ap-southeast-2' })).toMatchObject({ ok: true, region: 'ap-southeast-2' });
    expect(await vars({ stage: 'prod', param: ['deployment=acme-ci'] })).toMatchObject({ ok: false, error: expect.stringMatching(/no region for deployment "acme-ci": .*--region REGION/) });
  });

  it('yields every custom.gsa key serverless.yml reads, in both modes (else osls fails to resolve the file)', async () => {
    const used = [...new Set([...readFileSync(join(root, 'serverless.yml'), 'utf8').matchAll(/\$\{self:custom\.gsa\.(\w+)/g)].map((m) => m[1]))].sort();
    expect(used.length).toBeGreaterThan(8);
    const KEYS = `require('./lib/deploy/serverless-vars.js')({ options: JSON.parse(process.argv[1]) }).then((p) => console.log(JSON.stringify(Object.keys(p).filter((k) => p[k] !== undefined))), (e) => console.log(JSON.stringify({ error: e.message })));`;
    const keys = async (options: Record<string, unknown>) => {
      const { stdout } = await run(process.execPath, ['-e', KEYS, JSON.stringify(options)], { cwd: root, env: { PATH: process.env.PATH, HOME: process.env.HOME }, timeout: 60_000 });
      return JSON.parse(stdout.trim().split('\n').pop()!);
    };
    for (const options of [{ stage: 'prod', region: 'eu-central-1', param: ['deployment=acme-ci'] }, { stage: 'prod', param: ['config=samples/config.yaml', 'vpc=vpc-0123456789abcdef0'] }])
      expect(await keys(options)).toEqual(expect.arrayContaining(used));
  }, 60_000);

  it('checks the deployment name and the stage as the config and the stack do', async () => {
    expect(await vars({ stage: 'prod', region: 'eu-central-1', param: ['deployment=Acme_CI'] })).toMatchObject({ ok: false, error: expect.stringMatching(/deployment=Acme_CI: deployment names are 1-31 of a-z/) });
    expect(await vars({ stage: 'Prod', region: 'eu-central-1', param: ['deployment=acme-ci'] })).toMatchObject({ ok: false, error: expect.stringMatching(/stage "Prod" must be/) });
  });
});
