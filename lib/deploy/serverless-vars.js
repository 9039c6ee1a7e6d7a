// Bridge from serverless.yml to lib/deploy/stack.ts: `${file(./lib/deploy/serverless-vars.js):KEY}`.
// Plain CommonJS because the Serverless Framework requires it directly; the TypeScript it needs
// is loaded with tsx's namespaced require (affects only these requires, not serverless-esbuild).
//
// Inputs (documented in docs/deployment.md):
//   config file  --param config=path   or GSA_CONFIG   (required; no silent default: a deploy
//                without it would stand up the sample. GSA_ALLOW_SAMPLE_CONFIG=1 allows
//                samples/config.yaml, for the CI package check and `npm run dev` only)
//   VPC          --param vpc=vpc-...   or GSA_VPC_ID   (needed when a pool lists no securityGroups)
//   stage        --stage               (default dev)
//   region       --region, else the config's region, else AWS_REGION, else us-east-1
//   dev mode     GSA_DEV_ENDPOINT, GSA_DEV_QUEUE_URL, GSA_DEV_CONFIG_FILE (set by scripts/dev.mjs)
'use strict';
const path = require('node:path');
const fs = require('node:fs');

const root = path.resolve(__dirname, '..', '..');
let memo;

function param(options, name) {
  const list = [].concat(options.param || []);
  for (const p of list) {
    const i = String(p).indexOf('=');
    if (i > 0 && String(p).slice(0, i) === name) return String(p).slice(i + 1);
  }
  return undefined;
}

const SAMPLE_CONFIG = 'samples/config.yaml';

/** The config file to build from: explicit, or the sample only when explicitly allowed. */
function configFile(options) {
  const explicit = param(options, 'config') || process.env.GSA_CONFIG;
  if (explicit) return path.resolve(root, explicit);
  if (process.env.GSA_ALLOW_SAMPLE_CONFIG === '1') return path.resolve(root, SAMPLE_CONFIG);
  throw new Error(
    'no config file given: pass --param config=path/to/config.yaml (or set GSA_CONFIG). ' +
      `There is no default, so that \`serverless deploy\` can never stand up ${SAMPLE_CONFIG} by accident; ` +
      'set GSA_ALLOW_SAMPLE_CONFIG=1 to build from the sample (CI package check, npm run dev).',
  );
}

function build(options) {
  const key = JSON.stringify([options.stage, options.region, options.param, process.env.GSA_CONFIG, process.env.GSA_ALLOW_SAMPLE_CONFIG, process.env.GSA_VPC_ID, process.env.GSA_DEV_ENDPOINT]);
  if (memo && memo.key === key) return memo.value;
  const configPath = configFile(options);
  if (!fs.existsSync(configPath)) throw new Error(`config file ${configPath} does not exist; pass --param config=path/to/config.yaml (or set GSA_CONFIG)`);
  const { register } = require('tsx/cjs/api');
  const tsx = register({ namespace: 'gitlab-spot-autoscaler-deploy' });
  try {
    const { parseConfig } = tsx.require('../config.ts', __filename);
    const { buildStack } = tsx.require('./stack.ts', __filename);
    const config = parseConfig(fs.readFileSync(configPath, 'utf8'), configPath);
    const userdataPath = path.join(root, 'lib', 'worker', 'userdata.ts');
    if (!fs.existsSync(userdataPath)) throw new Error('lib/worker/userdata.ts is missing: the launch templates need renderUserData');
    const { renderUserData } = tsx.require('../worker/userdata.ts', __filename);
    const stage = options.stage || 'dev';
    const region = options.region || config.region || process.env.AWS_REGION || 'us-east-1';
    const dev = process.env.GSA_DEV_ENDPOINT
      ? { endpoint: process.env.GSA_DEV_ENDPOINT, queueUrl: process.env.GSA_DEV_QUEUE_URL || '', configFile: process.env.GSA_DEV_CONFIG_FILE || configPath }
      : undefined;
    const parts = buildStack({ config, stage, region, vpcId: param(options, 'vpc') || process.env.GSA_VPC_ID || undefined, renderUserData, dev });
    memo = { key, value: { ...parts, configPath } };
    return memo.value;
  } finally {
    tsx.unregister();
  }
}

module.exports = async ({ options }) => build(options || {});
