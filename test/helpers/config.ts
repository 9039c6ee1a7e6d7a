import { validateConfig, type Config } from '../../lib/config';

/** A valid pool with the given overrides; `worker` is filled in so tests only state what they test. */
export function poolInput(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    name: 'docker',
    runUntagged: true,
    worker: { instanceTypes: ['m6i.large', 'm5.large'], subnets: ['subnet-0a1b2c3d'], ami: 'ami-0123456789abcdef0' },
    ...overrides,
  };
}

/** A validated config with one pool per entry of `pools` (default: one untagged pool). */
export function makeConfig(pools: Record<string, unknown>[] = [poolInput()], globals: Record<string, unknown> = {}): Config {
  return validateConfig({ deployment: 'test', gitlab: { url: 'https://gitlab.example.com' }, pools, ...globals }, 'test');
}
