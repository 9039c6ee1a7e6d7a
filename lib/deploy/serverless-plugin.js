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
'use strict';

/** Commands that act on the deployed stack by name only (`serverless <command>`). */
const NAMES_ONLY_COMMANDS = new Set(['info', 'logs', 'invoke', 'remove', 'metrics', 'deploy list', 'deploy list functions', 'print']);

class GitlabSpotAutoscalerPlugin {
  constructor(serverless) {
    this.serverless = serverless;
    process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
    this.hooks = { initialize: () => this.requireConfigToBuild() };
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

module.exports = GitlabSpotAutoscalerPlugin;
module.exports.NAMES_ONLY_COMMANDS = NAMES_ONLY_COMMANDS;
