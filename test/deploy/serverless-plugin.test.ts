/**
 * lib/deploy/serverless-plugin.js, command by command: without a config file (names-only mode)
 * only the commands that act on a deployed stack by name may run; everything that packages,
 * deploys or runs functions is stopped in the `initialize` hook, before its lifecycle starts.
 */
const Plugin = require('../../lib/deploy/serverless-plugin.js');

class ServerlessError extends Error {}

function run(commands: string[], mode: 'names-only' | 'full' | undefined) {
  const serverless = {
    service: { custom: mode ? { gsa: { mode, deployment: 'acme-ci' } } : {} },
    processedInput: { commands },
    classes: { Error: ServerlessError },
  };
  const plugin = new Plugin(serverless);
  return () => plugin.hooks.initialize();
}

const ALLOWED = [['info'], ['logs'], ['invoke'], ['remove'], ['metrics'], ['deploy', 'list'], ['deploy', 'list', 'functions'], ['print']];
const REFUSED = [['deploy'], ['package'], ['deploy', 'function'], ['invoke', 'local'], ['offline'], ['offline', 'start'], ['rollback'], ['rollback', 'function']];

test.each(ALLOWED)('names-only: `serverless %s` runs', (...commands) => {
  expect(run(commands, 'names-only')).not.toThrow();
});

test.each(REFUSED)('names-only: `serverless %s` is stopped and told to pass the config', (...commands) => {
  expect(run(commands, 'names-only')).toThrow(ServerlessError);
  expect(run(commands, 'names-only')).toThrow(new RegExp(`^\`serverless ${commands.join(' ')}\` builds the stack from the config file, .*--param config=path/to/config.yaml`));
});

test('with a config every command runs', () => {
  for (const commands of [...ALLOWED, ...REFUSED]) expect(run(commands, 'full')).not.toThrow();
});

test('the SDK Node-version notice is silenced for the framework process, unless asked for', () => {
  const saved = process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED;
  try {
    delete process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED;
    run(['info'], 'full');
    expect(process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED).toBe('true');
    process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'false';
    run(['info'], 'full');
    expect(process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED).toBe('false');
  } finally {
    if (saved === undefined) delete process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED;
    else process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = saved;
  }
});

describe('dropRedundantDependsOn (cfn-lint W3005; moto\'s ValidateTemplate fails on it)', () => {
  const { dropRedundantDependsOn } = require('../../lib/deploy/serverless-plugin.js');
  it('drops only what a Ref, Fn::GetAtt or Fn::Sub reference in the same resource already enforces', () => {
    const template = {
      Resources: {
        Fn: { Type: 'AWS::Lambda::Function', DependsOn: ['FnLogGroup', 'FnRole'], Properties: { Role: { 'Fn::GetAtt': ['FnRole', 'Arn'] } } },
        Route: { Type: 'AWS::ApiGatewayV2::Route', DependsOn: 'Integration', Properties: { Target: { 'Fn::Join': ['/', ['integrations', { Ref: 'Integration' }]] } } },
        Sub: { Type: 'X', DependsOn: ['Queue', 'Other'], Properties: { A: { 'Fn::Sub': '${Queue.Arn} ${!Other}' } } },
      },
    };
    dropRedundantDependsOn(template);
    expect(template.Resources.Fn.DependsOn).toEqual(['FnLogGroup']);
    expect('DependsOn' in template.Resources.Route).toBe(false);
    // ${!Other} is escaped text, not a reference: that dependency stays.
    expect(template.Resources.Sub.DependsOn).toEqual(['Other']);
  });
});
