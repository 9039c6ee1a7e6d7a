/**
 * What the reconcile and interruption Lambdas share at run time: the validated config, loaded once
 * per container from its source (the SSM parameter the stack writes, or a file in dev). A deploy
 * that changes the config also changes CONFIG_HASH in the function's environment, so Lambda starts
 * new containers and no container keeps a stale config.
 */
import { GetParameterCommand, type SSMClient } from '@aws-sdk/client-ssm';
import { withRetry } from '../aws/retry';
import { parseConfig, type Config } from '../config';
import { readConfigText, type ControllerEnv } from './env';

const configs = new Map<string, Promise<Config>>();

export function loadConfig(env: ControllerEnv, ssm: SSMClient): Promise<Config> {
  const key = JSON.stringify(env.configSource);
  let p = configs.get(key);
  if (!p) {
    p = readConfigText(env.configSource, async (name) => {
      // The SSM client's own retry is off (lib/aws/clients.ts): throttling is retried here, bounded.
      const out = await withRetry(() => ssm.send(new GetParameterCommand({ Name: name })));
      if (!out.Parameter?.Value) throw new Error(`SSM parameter ${name} holds no config; run serverless deploy again`);
      return out.Parameter.Value;
    }).then(({ text, origin }) => parseConfig(text, origin));
    // A failed load is retried by the next invocation, not cached.
    p.catch(() => configs.delete(key));
    configs.set(key, p);
  }
  return p;
}

export function clearConfigCache(): void {
  configs.clear();
}
