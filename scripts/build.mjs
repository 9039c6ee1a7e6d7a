// Bundles the CLI into dist/ so `npx gitlab-spot-autoscaler` starts fast with plain node.
// Runs on `npm ci` (prepare) and `npm run build`.
import { readFileSync } from 'node:fs';
import { build } from 'esbuild';
import semver from 'semver';

// The CLI runs on the operator's Node, so it targets the oldest one package.json's engines accept
// (the Lambda bundles target the Lambda runtime instead: lib/deploy/esbuild-options.js).
const { engines } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
const oldest = semver.minVersion(engines.node);

await build({
  entryPoints: { cli: 'lib/cli/main.ts' },
  outdir: 'dist',
  bundle: true,
  platform: 'node',
  target: `node${oldest.major}.${oldest.minor}`,
  format: 'cjs',
  sourcemap: true,
  logLevel: 'warning',
  // The AWS SDK is large and already installed: load it from node_modules at run time.
  external: ['@aws-sdk/*', '@smithy/*'],
});
