import { GetParameterCommand, ParameterNotFound, SSMClient } from '@aws-sdk/client-ssm';
import { mockClient } from 'aws-sdk-client-mock';
import { gitlabFor, resetGitlabForTests } from '../../lib/lambda/gitlab';
import { clearSecretCache } from '../../lib/aws/ssm-state-store';
import { makeConfig, poolInput } from '../helpers/config';
import { MemoryLogger } from '../controller/fixtures';

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
