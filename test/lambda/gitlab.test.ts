import { GetParameterCommand, ParameterNotFound, SSMClient } from '@aws-sdk/client-ssm';
import { mockClient } from 'aws-sdk-client-mock';
import { gitlabFor, resetGitlabForTests } from '../../lib/lambda/gitlab';
import { clearSecretCache } from '../../lib/aws/ssm-state-store';
import { makeConfig, poolInput } from '../helpers/config';
import { MemoryLogger } from '../controller/fixtures';
import type { GitLabDemand } from '../../lib/gitlab/sync';

const ssmMock = mockClient(SSMClient);

beforeEach(() => {
  ssmMock.reset();
  resetGitlabForTests();
  clearSecretCache();
  ssmMock.on(GetParameterCommand).rejects(new ParameterNotFound({ message: 'Parameter /x does not exist', $metadata: {} }));
});

test('one pool without an API token: a warning once, and the pass runs without the API', async () => {
  const log = new MemoryLogger();
  const config = makeConfig();
  expect(await gitlabFor(config, 'prod', new SSMClient({}), log, 0)).toBeUndefined();
  expect(await gitlabFor(config, 'prod', new SSMClient({}), log, 10 * 60_000)).toBeUndefined();
  expect(log.lines.map((l) => l.level)).toEqual(['warn']);
});

test('several pools without an API token: an error naming the parameter on every recheck', async () => {
  const log = new MemoryLogger();
  const config = makeConfig([poolInput({ name: 'a' }), poolInput({ name: 'b', runUntagged: false, tags: ['b'] })]);
  await gitlabFor(config, 'prod', new SSMClient({}), log, 0);
  await gitlabFor(config, 'prod', new SSMClient({}), log, 60_000); // within the recheck interval: no new lookup
  await gitlabFor(config, 'prod', new SSMClient({}), log, 10 * 60_000);
  expect(log.lines.map((l) => l.level)).toEqual(['error', 'error']);
  expect(log.lines[0].message).toMatch(/no GitLab API token at \/gitlab-spot-autoscaler\/test\/prod\/secrets\/gitlab-api-token: with 2 pools, job events cannot be routed/);
});

test('with a token, one GitLab side per container: its request budget holds across invocations, and starts empty (a cold start)', async () => {
  ssmMock.on(GetParameterCommand).resolves({ Parameter: { Value: 'glpat-not-a-real-token-000' } });
  const log = new MemoryLogger();
  const config = makeConfig();
  const a = (await gitlabFor(config, 'prod', new SSMClient({}), log)) as GitLabDemand;
  const b = await gitlabFor(config, 'prod', new SSMClient({}), log);
  expect(b).toBe(a);
  expect(a.budget.perMinute).toBe(120);
  expect(a.budget.available(Date.now())).toBe(0);
  const other = (await gitlabFor(makeConfig([poolInput()], { gitlab: { url: 'https://gitlab.example.com', requestsPerMinute: 60 } }), 'prod', new SSMClient({}), log)) as GitLabDemand;
  expect(other).not.toBe(a);
  expect(other.budget.perMinute).toBe(60);
  expect(other.api.mode).toBe('graphql');
});
