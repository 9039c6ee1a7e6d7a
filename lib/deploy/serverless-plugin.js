// The project's own Serverless plugin, listed first in serverless.yml. Two jobs:
//
// 1. Keep a deployment from being built without its config. lib/deploy/serverless-vars.js resolves
//    serverless.yml in "names-only" mode when it is given a deployment name instead of a config
//    file: stack and function names, no resources, no environment. That is all the commands in
//    NAMES_ONLY_COMMANDS need; any other command would package, deploy or run functions from that
//    empty shell, so the `initialize` hook (run before every command's lifecycle) stops it first.
//
// 2. Silence the AWS SDK's multi-line notice that its releases after January 2027 need Node 22,
//    which the framework's own SDK clients print in every command on Node 20. The SDK this project
//    runs is pinned by package-lock.json, so the notice has no consequence here until the lockfile
//    moves, and then npm checks the SDK's `engines` against the running Node. An explicit
//    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED=false still shows it.
//
// 3. Drop the DependsOn entries the framework adds that a Ref or Fn::GetAtt in the same resource
//    already enforces (cfn-lint W3005: the function's role, the HTTP API route's integration), so
//    the template is free of cfn-lint warnings. CloudFormation ignores them either way; moto's
//    ValidateTemplate (which `serverless deploy` calls) reports every cfn-lint warning as an error,
//    and the deployment test deploys into moto (test/deploy/deploy-moto.test.ts).
'use strict';

/** Commands that act on the deployed stack by name only (`serverless <command>`). */
const NAMES_ONLY_COMMANDS = new Set(['info', 'logs', 'invoke', 'remove', 'metrics', 'deploy list', 'deploy list functions', 'print']);

class GitlabSpotAutoscalerPlugin {
  constructor(serverless) {
    this.serverless = serverless;
    process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
    this.hooks = {
      initialize: () => this.requireConfigToBuild(),
      // After the custom resources and extensions are merged, before the template is saved.
      'before:aws:package:finalize:saveServiceState': () => dropRedundantDependsOn(this.serverless.service.provider.compiledCloudFormationTemplate),
    };
  }

  requireConfigToBuild() {
    const gsa = (this.serverless.service.custom || {}).gsa;
    if (!gsa || gsa.mode !== 'names-only') return;
    const command = (this.serverless.processedInput.commands || []).join(' ');
    if (NAMES_ONLY_COMMANDS.has(command)) return;
    throw new this.serverless.classes.Error(
      `\`serverless ${command}\` builds the stack from the config file, and none was given (only --param deployment=${gsa.deployment}): ` +
        'pass --param config=path/to/config.yaml (or set GSA_CONFIG). ' +
        `Without a config file only these work: ${[...NAMES_ONLY_COMMANDS].filter((c) => c !== 'print').join(', ')}.`,
      'GSA_CONFIG_REQUIRED',
    );
  }
}

/** Logical ids a template value refers to through Ref, Fn::GetAtt or Fn::Sub's ${Id} / ${Id.Attr}. */
function referencedIds(value, out = new Set()) {
  if (Array.isArray(value)) for (const v of value) referencedIds(v, out);
  else if (value && typeof value === 'object')
    for (const [k, v] of Object.entries(value)) {
      if (k === 'Ref' && typeof v === 'string') out.add(v);
      else if (k === 'Fn::GetAtt') out.add(Array.isArray(v) ? String(v[0]) : String(v).split('.')[0]);
      else if (k === 'Fn::Sub') {
        const text = Array.isArray(v) ? v[0] : v;
        // ${!Literal} is escaped text (an IAM policy variable), not a reference.
        if (typeof text === 'string') for (const m of text.matchAll(/\$\{([^!}][^}.]*)(?:\.[^}]*)?\}/g)) out.add(m[1]);
        referencedIds(v, out);
      } else referencedIds(v, out);
    }
  return out;
}

/** Removes DependsOn entries that a reference inside the same resource already enforces (cfn-lint W3005). */
function dropRedundantDependsOn(template) {
  for (const resource of Object.values((template && template.Resources) || {})) {
    if (!resource || resource.DependsOn === undefined) continue;
    const refs = referencedIds({ Properties: resource.Properties, Metadata: resource.Metadata });
    const kept = [].concat(resource.DependsOn).filter((id) => !refs.has(id));
    if (kept.length === 0) delete resource.DependsOn;
    else resource.DependsOn = kept;
  }
  return template;
}

module.exports = GitlabSpotAutoscalerPlugin;
module.exports.dropRedundantDependsOn = dropRedundantDependsOn;
module.exports.NAMES_ONLY_COMMANDS = NAMES_ONLY_COMMANDS;
