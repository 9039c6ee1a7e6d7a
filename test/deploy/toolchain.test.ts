/**
 * The toolchain stays in step with itself (docs/deployment.md, "Toolchain"): the Lambda runtime,
 * the bundles' esbuild target, package.json's engines, @types/node and what the dependencies
 * accept. Read from the files themselves, so moving one without the others fails here.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';

// semver ships no types; the three calls used here.
const semver = require('semver') as {
  minVersion(range: string): { major: number; minor: number; version: string } | null;
  subset(sub: string, dom: string): boolean;
  satisfies(version: string, range: string): boolean;
};
const { lambdaBuildOptions, lambdaRuntime, targetOf } = require('../../lib/deploy/esbuild-options.js');

const root = join(__dirname, '..', '..');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const lock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8'));
const sls = parse(readFileSync(join(root, 'serverless.yml'), 'utf8'));
const lockPackages = Object.entries(lock.packages as Record<string, { name?: string; version: string; engines?: { node?: string }; hasInstallScript?: boolean }>).filter(
  ([path]) => path !== '',
);
const nameOf = (path: string) => path.slice(path.lastIndexOf('node_modules/') + 'node_modules/'.length);

test('Lambda runs nodejs24.x and the bundles target it', () => {
  expect(sls.provider.runtime).toBe('nodejs24.x');
  expect(lambdaRuntime()).toBe('nodejs24.x');
  expect(lambdaBuildOptions().target).toBe('node24');
  expect(targetOf('nodejs22.x')).toBe('node22');
  expect(() => targetOf('python3.13')).toThrow(/not a Node.js Lambda runtime/);
  // serverless-esbuild takes every bundle option from that one file.
  expect(sls.custom.esbuild).toEqual({ config: './lib/deploy/esbuild-options.js' });
});

test('engines accept only Node versions every dependency accepts, including the one running this test', () => {
  const engines: string = pkg.engines.node;
  expect(semver.satisfies(process.versions.node, engines)).toBe(true);
  const narrower = lockPackages.filter(([, p]) => p.engines?.node && !semver.subset(engines, p.engines.node)).map(([path, p]) => `${nameOf(path)}@${p.version} wants node ${p.engines!.node}`);
  expect(narrower).toEqual([]);
});

test('@types/node describes the oldest Node the engines accept, so tsc rejects APIs it lacks', () => {
  const oldest = semver.minVersion(pkg.engines.node)!;
  expect(oldest.major).toBeGreaterThanOrEqual(20);
  const types = semver.minVersion(pkg.devDependencies['@types/node'])!;
  expect(types.major).toBe(oldest.major);
  expect(`${types.major}.${types.minor}`).toBe(`${oldest.major}.${oldest.minor}`);
});

test("serverless-offline's serverless peer is osls, so npm does not install Serverless v3 and aws-sdk v2", () => {
  expect(pkg.overrides['serverless-offline'].serverless).toBe(`npm:osls@${pkg.devDependencies.osls}`);
  const serverless = lock.packages['node_modules/serverless'];
  expect(serverless).toMatchObject({ name: 'osls', version: lock.packages['node_modules/osls'].version });
  expect(lockPackages.filter(([path]) => ['aws-sdk', '@serverless/utils', '@serverless/dashboard-plugin'].includes(nameOf(path))).map(([path]) => path)).toEqual([]);
});

test('every dependency with an install script has a decision in allowScripts, so npm ci lists none', () => {
  const undecided = [...new Set(lockPackages.filter(([, p]) => p.hasInstallScript).map(([path, p]) => p.name ?? nameOf(path)))].filter((name) => !(name in pkg.allowScripts));
  expect(undecided).toEqual([]);
});
