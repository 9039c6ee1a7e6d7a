/**
 * CI check of the deployment: `serverless package` with no AWS credentials (dummy values only, so
 * no call can succeed), then cfn-lint on the generated template: no error or warning; what the zips hold;
 * and the webhook bundle must contain no AWS SDK client (cold start). Slow (esbuild + the
 * framework): one file.
 */
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { build } from 'esbuild';

const { lambdaBuildOptions } = require('../../lib/deploy/esbuild-options.js');

const run = promisify(execFile);
const root = join(__dirname, '..', '..');
const out = mkdtempSync(join(tmpdir(), 'gsa-package-'));
afterAll(() => {
  rmSync(out, { recursive: true, force: true });
  rmSync(join(root, '.esbuild-package-test'), { recursive: true, force: true });
});

// No real credentials can leak into the test: everything AWS-related is replaced.
const env: NodeJS.ProcessEnv = {
  PATH: process.env.PATH,
  HOME: process.env.HOME,
  AWS_ACCESS_KEY_ID: 'AKIAIOSFODNN7EXAMPLE',
  AWS_SECRET_ACCESS_KEY: 'not-a-real-secret',
  AWS_EC2_METADATA_DISABLED: 'true',
  SLS_TELEMETRY_DISABLED: '1',
  SLS_NOTIFICATIONS_MODE: 'off',
  GSA_ESBUILD_DIR: '.esbuild-package-test',
  // The CI check packages the sample config; a real deploy must name its config (serverless-vars.js).
  GSA_ALLOW_SAMPLE_CONFIG: '1',
};

describe('serverless package + cfn-lint', () => {
  let template: any;
  beforeAll(async () => {
    await run('npx', ['serverless', 'package', '--stage', 'ci', '--param', 'vpc=vpc-0123456789abcdef0', '--package', out], { cwd: root, env, timeout: 240_000, maxBuffer: 16 << 20 });
    template = JSON.parse(readFileSync(join(out, 'cloudformation-template-update-stack.json'), 'utf8'));
  }, 300_000);

  it('packages the three functions on arm64 with the nodejs24.x runtime, without source maps at run time', () => {
    for (const f of ['webhook', 'reconcile', 'interruption']) expect(existsSync(join(out, `${f}.zip`))).toBe(true);
    const all = Object.values(template.Resources).filter((r: any) => r.Type === 'AWS::Lambda::Function') as any[];
    // The three handlers, and the inline function of the pre-built worker images (lib/deploy/image.ts).
    const fns = all.filter((f) => !f.Properties.Code.ZipFile);
    expect(fns).toHaveLength(3);
    expect(all.filter((f) => f.Properties.Code.ZipFile).map((f) => [f.Properties.FunctionName, f.Properties.Runtime, f.Properties.Architectures])).toEqual([['gsa-acme-ci-ci-images', 'nodejs24.x', ['arm64']]]);
    for (const f of fns) {
      expect(f.Properties.Architectures).toEqual(['arm64']);
      expect(f.Properties.Runtime).toBe('nodejs24.x');
      // --enable-source-maps costs at every cold start; only --param sourcemaps=true turns it on.
      expect(f.Properties.Environment.Variables.NODE_OPTIONS).toBeUndefined();
    }
    expect(template.Resources.ReconcileLambdaFunction.Properties.ReservedConcurrentExecutions).toBe(1);
    expect(template.Resources.IamRoleLambdaExecution).toBeUndefined(); // no shared role: one per function
  });

  it('has scheduler schedules with a time zone, and the webhook URL output', () => {
    const schedules = Object.values(template.Resources).filter((r: any) => r.Type === 'AWS::Scheduler::Schedule') as any[];
    expect(schedules.map((s) => s.Properties.ScheduleExpression)).toEqual(expect.arrayContaining(['rate(1 minute)', 'cron(0 0,8,19 * * ? *)']));
    expect(schedules.find((s) => s.Properties.ScheduleExpression.startsWith('cron')).Properties.ScheduleExpressionTimezone).toBe('Europe/Berlin');
    expect(template.Outputs.WebhookUrl).toBeDefined();
  });

  it('bounds the public webhook: HTTP API stage throttling and reserved concurrency reach the template', () => {
    expect(template.Resources.HttpApiStage.Properties.DefaultRouteSettings).toEqual({ DetailedMetricsEnabled: false, ThrottlingRateLimit: 100, ThrottlingBurstLimit: 500 });
    expect(template.Resources.WebhookLambdaFunction.Properties.ReservedConcurrentExecutions).toBe(50);
  });

  it('zips hold the minified handler and its source map, without the sources embedded', () => {
    // python3's zipfile module: present wherever the tests run (moto and cfn-lint need Python).
    const read = (zip: string, member: string) => execFileSync('python3', ['-c', 'import sys, zipfile; sys.stdout.write(zipfile.ZipFile(sys.argv[1]).read(sys.argv[2]).decode())', zip, member], { encoding: 'utf8', maxBuffer: 64 << 20 });
    const list = (zip: string) => execFileSync('python3', ['-c', 'import sys, zipfile; print("\\n".join(zipfile.ZipFile(sys.argv[1]).namelist()))', zip], { encoding: 'utf8' }).trim().split('\n');
    for (const f of ['webhook', 'reconcile', 'interruption']) {
      const zip = join(out, `${f}.zip`);
      expect(list(zip).sort()).toEqual([`handlers/${f}.js`, `handlers/${f}.js.map`]);
      const map = JSON.parse(read(zip, `handlers/${f}.js.map`));
      expect(map.sources.length).toBeGreaterThan(10);
      expect(map.sourcesContent).toBeUndefined();
      expect(read(zip, `handlers/${f}.js`)).toMatch(new RegExp(`//# sourceMappingURL=${f}\\.js\\.map\\s*$`));
    }
  });

  it('passes cfn-lint with no finding at all: moto\'s ValidateTemplate fails on warnings too (deploy-moto.test.ts deploys it)', async () => {
    const file = join(out, 'cloudformation-template-update-stack.json');
    let stdout = '';
    let code = 0;
    try {
      ({ stdout } = await run('cfn-lint', ['--format', 'parseable', file], { timeout: 120_000, maxBuffer: 16 << 20 }));
    } catch (e: any) {
      stdout = e.stdout ?? '';
      code = typeof e.code === 'number' ? e.code : 1;
      if (typeof e.code !== 'number') throw e;
    }
    // cfn-lint's exit code is a bit mask: 2 = errors, 4 = warnings, 8 = informational, 1 = crash.
    const findings = stdout.split('\n').filter((l) => /:[EWI]\d{4}:/.test(l));
    expect(findings).toEqual([]);
    expect(code).toBe(0);
  }, 150_000);
});

describe('webhook bundle', () => {
  it('includes no AWS SDK client (its two calls are signed JSON requests: lib/aws/aws-json.ts) and stays small', async () => {
    const result = await build({
      ...lambdaBuildOptions(),
      entryPoints: [join(root, 'handlers/webhook.ts')],
      outdir: out,
      write: false,
      metafile: true,
      logLevel: 'silent',
    });
    const inputs = Object.keys(result.metafile!.inputs);
    expect(inputs.some((p) => p.includes('node_modules/@smithy/signature-v4/'))).toBe(true); // the check can see packages
    // No client, no credential chain (SSO/STS nested clients), no SDK HTTP handler: each was load time (issue 13).
    expect(inputs.filter((p) => /node_modules\/(@aws-sdk\/|@smithy\/node-http-handler)/.test(p))).toEqual([]);
    // 52 KiB when written; the v3 clients made it 433 KiB. Load time itself is a bench figure (bench/bundles.ts).
    const js = Object.values(result.metafile!.outputs).find((o) => o.entryPoint)!;
    expect(js.bytes).toBeLessThan(100 * 1024);
  }, 60_000);
});
