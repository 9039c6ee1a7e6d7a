/**
 * lib/deploy/serverless-vars.js, the bridge serverless.yml loads, run in a child node process as
 * the Serverless Framework runs it (its tsx loader does not work inside Jest's module system).
 * A deploy without an explicit config must fail with a clear message instead of standing up
 * samples/config.yaml.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const root = join(__dirname, '..', '..');

const SCRIPT = `
require('./lib/deploy/serverless-vars.js')({ options: JSON.parse(process.argv[1]) }).then(
  (p) => console.log(JSON.stringify({ ok: true, configPath: p.configPath, webhook: p.functionNames.webhook })),
  (e) => console.log(JSON.stringify({ ok: false, error: e.message })),
);`;

async function vars(options: Record<string, unknown>, extraEnv: Record<string, string> = {}): Promise<{ ok: boolean; error?: string; configPath?: string; webhook?: string }> {
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME, ...extraEnv };
  const { stdout } = await run(process.execPath, ['-e', SCRIPT, JSON.stringify(options)], { cwd: root, env, timeout: 60_000 });
  return JSON.parse(stdout.trim().split('\n').pop()!);
}

describe('serverless-vars config selection', () => {
  it('refuses to build without --param config or GSA_CONFIG, naming both and the escape hatch', async () => {
    const r = await vars({ stage: 'prod', param: ['vpc=vpc-0123456789abcdef0'] });
    expect(r.ok).toBe(false);
    expect(r.error).toMatch(/no config file given: pass --param config=.*GSA_CONFIG.*GSA_ALLOW_SAMPLE_CONFIG=1/);
  });

  it('does not take the sample for GSA_ALLOW_SAMPLE_CONFIG values other than 1', async () => {
    expect(await vars({ stage: 'prod' }, { GSA_ALLOW_SAMPLE_CONFIG: 'true' })).toMatchObject({ ok: false, error: expect.stringMatching(/no config file given/) });
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
});
