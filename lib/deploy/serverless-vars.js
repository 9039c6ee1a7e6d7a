// Bridge from serverless.yml to lib/deploy/stack.ts: `${file(./lib/deploy/serverless-vars.js):KEY}`.
// Plain CommonJS because the Serverless Framework requires it directly; the TypeScript it needs
// is loaded with tsx's namespaced require (affects only these requires, not serverless-esbuild).
//
// The Serverless Framework resolves every variable of serverless.yml before it runs any command,
// so this file runs for `deploy` and for `logs` alike. Two modes (docs/deployment.md, "Commands"):
//
//   full        a config file: the whole stack (launch templates, IAM, schedules, environment).
//               --param config=path  or GSA_CONFIG. There is no silent default: a deploy without
//               it would stand up the sample. GSA_ALLOW_SAMPLE_CONFIG=1 allows samples/config.yaml,
//               for the CI package check and `npm run dev` only.
//   names-only  no config file, but the deployment's name: --param deployment=NAME or
//               GSA_DEPLOYMENT. Only what follows from name and stage is known (the stack, the
//               function names); that is all `info`, `logs`, `invoke`, `remove`, `metrics` and
//               `deploy list` need. lib/deploy/serverless-plugin.js stops every other command
//               (deploy, package, invoke local, offline, ...) before it does anything.
//
// Other inputs:
//   VPC          --param vpc=vpc-...   or GSA_VPC_ID   (needed when a pool lists no securityGroups)
//   source maps  --param sourcemaps=true: NODE_OPTIONS=--enable-source-maps in every function
//                (readable stack traces, at a cost at every cold start: docs/deployment.md)
//   stage        --stage               (default dev)
//   region       --region, else the config's region, else AWS_REGION / AWS_DEFAULT_REGION, else
//                us-east-1; names-only mode has no config to ask, so it needs one of the first three
//   dev mode     GSA_DEV_ENDPOINT, GSA_DEV_QUEUE_URL, GSA_DEV_REPORT_QUEUE_URL, GSA_DEV_WORKER_ROLE_IDS,
//                GSA_DEV_CONFIG_FILE (set by scripts/dev.mjs)
'use strict';
const path = require('node:path');
const fs = require('node:fs');

const root = path.resolve(__dirname, '..', '..');
const SAMPLE_CONFIG = 'samples/config.yaml';
let memo;

function param(options, name) {
  const list = [].concat(options.param || []);
  for (const p of list) {
    const i = String(p).indexOf('=');
    if (i > 0 && String(p).slice(0, i) === name) return String(p).slice(i + 1);
  }
  return undefined;
}

const NO_CONFIG_HELP =
  'pass --param config=path/to/config.yaml (or set GSA_CONFIG) to build the stack (deploy, package, invoke local, offline); ' +
  'for commands that act on a deployed stack (info, logs, invoke, remove, metrics, deploy list) --param deployment=NAME (or GSA_DEPLOYMENT) is enough. ' +
  `There is no default, so that \`serverless deploy\` can never stand up ${SAMPLE_CONFIG} by accident; ` +
  'set GSA_ALLOW_SAMPLE_CONFIG=1 to build from the sample (CI package check, npm run dev).';

/** Where the stack comes from: a config file, or (names-only) just the deployment's name. */
function source(options) {
  const explicit = param(options, 'config') || process.env.GSA_CONFIG;
  if (explicit) return { configPath: path.resolve(root, explicit) };
  const deployment = param(options, 'deployment') || process.env.GSA_DEPLOYMENT;
  if (deployment) return { deployment };
  if (process.env.GSA_ALLOW_SAMPLE_CONFIG === '1') return { configPath: path.resolve(root, SAMPLE_CONFIG) };
  throw userError(`no config file given: ${NO_CONFIG_HELP}`);
}

function sourceMaps(options) {
  const v = param(options, 'sourcemaps');
  if (v === undefined || /^(false|0|off|)$/i.test(v)) return false;
  if (/^(true|1|on)$/i.test(v)) return true;
  throw userError(`--param sourcemaps=${v}: expected true or false`);
}

/** Adds NODE_OPTIONS=--enable-source-maps to every function's environment when asked. */
function withNodeOptions(env, on) {
  if (!on) return env;
  return Object.fromEntries(Object.entries(env).map(([fn, vars]) => [fn, { ...vars, NODE_OPTIONS: '--enable-source-maps' }]));
}

function namesOnly(options, deployment, loadTs) {
  const { deploymentNames, DEPLOYMENT_RE, STAGE_RE } = loadTs('./names.ts');
  const stage = options.stage || 'dev';
  if (!DEPLOYMENT_RE.test(deployment)) throw userError(`--param deployment=${deployment}: deployment names are 1-31 of a-z, 0-9 and "-" (the config's "deployment")`);
  if (!STAGE_RE.test(stage)) throw userError(`stage "${stage}" must be 1-16 of a-z, 0-9 and "-"`);
  const region = options.region || process.env.AWS_REGION || process.env.AWS_DEFAULT_REGION;
  if (!region)
    throw userError(`no region for deployment "${deployment}": without a config file the region must be given: pass --region REGION (the region you deployed to) or set AWS_REGION`);
  const { stackName, functionNames } = deploymentNames(deployment, stage);
  const { SIZING } = loadTs('./stack.ts');
  const none = { webhook: {}, reconcile: {}, interruption: {} };
  return {
    mode: 'names-only',
    deployment,
    stackName,
    region,
    functionNames,
    env: none,
    reconcileEvents: [],
    interruptionEvents: [],
    resources: {},
    outputs: {},
    // serverless.yml reads these too; their values matter only to deploy, which this mode refuses.
    webhookReservedConcurrency: SIZING.webhookThrottle.reservedConcurrency,
    extensions: {},
    configPath: null,
  };
}

function full(options, configPath, loadTs) {
  if (!fs.existsSync(configPath)) throw userError(`config file ${configPath} does not exist; pass --param config=path/to/config.yaml (or set GSA_CONFIG)`);
  const { parseConfig, placeholderLines } = loadTs('../config.ts');
  const { buildStack } = loadTs('./stack.ts');
  const text = fs.readFileSync(configPath, 'utf8');
  const config = parseConfig(text, configPath);
  // migrate's placeholders are valid values (so validate, explain and worker-config work on its
  // output) but deploy a subnet that does not exist or a GitLab nobody runs: never build with them.
  const marked = placeholderLines(text);
  if (marked.length)
    throw userError(`${configPath} still holds ${marked.length} value(s) migrate marked PLACEHOLDER; put in yours and delete the "# PLACEHOLDER" comment:\n${marked.map((m) => `  - ${m}`).join('\n')}`);
  const deployment = param(options, 'deployment') || process.env.GSA_DEPLOYMENT;
  if (deployment && deployment !== config.deployment)
    throw userError(`--param deployment=${deployment} (or GSA_DEPLOYMENT) does not match the config ${configPath}, which names deployment "${config.deployment}"`);
  const userdataPath = path.join(root, 'lib', 'worker', 'userdata.ts');
  if (!fs.existsSync(userdataPath)) throw userError('lib/worker/userdata.ts is missing: the launch templates need renderUserData');
  const { renderUserData } = loadTs('../worker/userdata.ts');
  const stage = options.stage || 'dev';
  const region = options.region || config.region || process.env.AWS_REGION || process.env.AWS_DEFAULT_REGION || 'us-east-1';
  const dev = process.env.GSA_DEV_ENDPOINT
    ? {
        endpoint: process.env.GSA_DEV_ENDPOINT,
        queueUrl: process.env.GSA_DEV_QUEUE_URL || '',
        reportQueueUrl: process.env.GSA_DEV_REPORT_QUEUE_URL || undefined,
        workerRoleIds: (process.env.GSA_DEV_WORKER_ROLE_IDS || '').split(',').filter(Boolean),
        configFile: process.env.GSA_DEV_CONFIG_FILE || configPath,
      }
    : undefined;
  const parts = buildStack({ config, stage, region, vpcId: param(options, 'vpc') || process.env.GSA_VPC_ID || undefined, renderUserData, dev });
  return { mode: 'full', ...parts, configPath };
}

function build(options) {
  const env = process.env;
  const key = JSON.stringify([options.stage, options.region, options.param, env.GSA_CONFIG, env.GSA_DEPLOYMENT, env.GSA_ALLOW_SAMPLE_CONFIG, env.GSA_VPC_ID, env.GSA_DEV_ENDPOINT, env.AWS_REGION, env.AWS_DEFAULT_REGION]);
  if (memo && memo.key === key) return memo.value;
  const from = source(options);
  const maps = sourceMaps(options);
  const { register } = require('tsx/cjs/api');
  const tsx = register({ namespace: 'gitlab-spot-autoscaler-deploy' });
  const loadTs = (file) => tsx.require(file, __filename);
  try {
    const parts = from.configPath ? full(options, from.configPath, loadTs) : namesOnly(options, from.deployment, loadTs);
    memo = { key, value: { ...parts, env: withNodeOptions(parts.env, maps) } };
    return memo.value;
  } finally {
    tsx.unregister();
  }
}

/** Errors a user causes (no or a bad config, a missing parameter) and fixes by calling differently. */
const USER_ERRORS = new Set(['UserError', 'ConfigError', 'StackError', 'UserDataError', 'UserDataSizeError', 'ImageError', 'CronSyntaxError']);

function userError(message) {
  const e = new Error(message);
  e.name = 'UserError';
  return e;
}

module.exports = async ({ options }) => {
  try {
    return build(options || {});
  } catch (e) {
    // The Framework prints error.stack: for a mistake in the config or the command line, a page of
    // stack frames (tsx's, osls's) buries the one line that says what to fix. A bug keeps its stack.
    if (e instanceof Error && USER_ERRORS.has(e.name)) e.stack = e.name === 'UserError' ? e.message : `${e.name}: ${e.message}`;
    throw e;
  }
};
