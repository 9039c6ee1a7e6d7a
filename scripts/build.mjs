// Bundles the CLI into dist/ so `npx gitlab-spot-autoscaler` starts fast with plain node.
// Runs on `npm ci` (prepare) and `npm run build`.
import { build } from 'esbuild';

await build({
  entryPoints: { cli: 'lib/cli/main.ts' },
  outdir: 'dist',
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  sourcemap: true,
  logLevel: 'warning',
  // The AWS SDK is large and already installed: load it from node_modules at run time.
  external: ['@aws-sdk/*', '@smithy/*'],
});
