// The esbuild options of the Lambda bundles, defined once: serverless-esbuild builds the deployed
// bundles with them (`custom.esbuild.config` in serverless.yml points here), and the bundle bench
// (bench/bundles.ts) and the package test build with the same function, so a figure or a check is
// about the bundle that is deployed. Plain CommonJS: serverless-esbuild `require`s this file.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..', '..');

/** esbuild's target for a Lambda runtime name: nodejs24.x -> node24. */
function targetOf(runtime) {
  const m = /^nodejs(\d+)\.x$/.exec(String(runtime));
  if (!m) throw new Error(`provider.runtime "${runtime}" is not a Node.js Lambda runtime (nodejsNN.x)`);
  return `node${m[1]}`;
}

/** provider.runtime as serverless.yml states it (a literal there, so no variables to resolve). */
function lambdaRuntime() {
  const { parse } = require('yaml');
  const text = fs.readFileSync(path.join(root, 'serverless.yml'), 'utf8');
  return parse(text).provider.runtime;
}

/** What esbuild needs to build a handler exactly as it is deployed (minus the packaging). */
function lambdaBuildOptions(runtime = lambdaRuntime()) {
  return {
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: targetOf(runtime),
    minify: true,
    // With platform "node" esbuild prefers a package's "main" field; the AWS SDK's "main" is its
    // CommonJS build, which does not tree-shake, while "module" is its ES-module build, which does:
    // the reconcile bundle shrinks from about 2.0 to 1.2 MiB and the webhook loads twice as fast
    // (bench/bundles.ts prints both).
    mainFields: ['module', 'main'],
    // Readable names in stack traces and logs without source maps (~7 % of the bundle).
    keepNames: true,
    // The .map lies next to the bundle and is deployed with it, without the sources embedded
    // (they would triple its size; the repository has them). Node reads it only when started with
    // --enable-source-maps, which costs at init: off by default, see docs/deployment.md.
    sourcemap: 'linked',
    sourcesContent: false,
  };
}

/** serverless-esbuild's `config` hook: its own options on top of the bundle options. */
module.exports = (serverless) => ({
  ...lambdaBuildOptions(serverless.service.provider.runtime),
  // The AWS SDK is bundled (pinned, tree-shaken) rather than taken from the runtime.
  exclude: [],
  packager: 'npm',
  // Separate work folders let two runs (CI tests, npm run dev) build at the same time.
  outputWorkFolder: process.env.GSA_ESBUILD_DIR || '.esbuild',
});
module.exports.lambdaBuildOptions = lambdaBuildOptions;
module.exports.lambdaRuntime = lambdaRuntime;
module.exports.targetOf = targetOf;
