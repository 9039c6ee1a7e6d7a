import { mockClient } from 'aws-sdk-client-mock';
import { GetParameterCommand, GetParametersByPathCommand, PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { clearSecretCache, loadSecret, SsmStateStore } from '../../lib/aws/ssm-state-store';
import { encodeState, emptyState } from '../../lib/controller/state';
import type { RetryEnv } from '../../lib/aws/retry';
import { MemoryLogger, testConfig } from './fixtures';

const ssmMock = mockClient(SSMClient);
const config = testConfig();
const BASE = '/gitlab-spot-autoscaler/ci/test/state';
const throttled = () => Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException' });
const tooMany = () => Object.assign(new Error('Too many updates'), { name: 'TooManyUpdates' });

function store(sleeps: number[] = []) {
  const retryEnv: RetryEnv = { sleep: async (ms) => void sleeps.push(ms), random: () => 1 };
  return new SsmStateStore({ ssm: new SSMClient({ region: 'us-east-1' }), config, stage: 'test', retryEnv, log: new MemoryLogger() });
}

beforeEach(() => {
  ssmMock.reset();
  clearSecretCache();
});

test('loads every page of the state path and decodes it', async () => {
  const s = emptyState();
  for (let i = 1; i <= 30; i++) s.jobs.set(i, { projectId: 3, pool: 'docker', status: 'pending', seenAt: Date.parse('2025-03-03T10:00:00Z') });
  const values = [...encodeState(s)].map(([k, v]) => ({ Name: `${BASE}/${k}`, Value: v }));
  ssmMock
    .on(GetParametersByPathCommand)
    .resolvesOnce({ Parameters: values.slice(0, 1), NextToken: 't1' })
    .resolvesOnce({ Parameters: values.slice(1) });
  const st = store();
  const loaded = await st.load();
  expect(loaded.jobs.size).toBe(30);
  const calls = ssmMock.commandCalls(GetParametersByPathCommand);
  expect(calls.map((c) => c.args[0].input)).toEqual([
    { Path: BASE, Recursive: true, MaxResults: 10, NextToken: undefined },
    { Path: BASE, Recursive: true, MaxResults: 10, NextToken: 't1' },
  ]);
  // Nothing changed: nothing written.
  expect(await st.save(loaded)).toEqual({ writes: 0 });
  expect(ssmMock.commandCalls(PutParameterCommand)).toHaveLength(0);
});

test('writes changed parameters as standard-tier Strings, retrying throttling with backoff', async () => {
  ssmMock.on(GetParametersByPathCommand).resolves({ Parameters: [] });
  ssmMock.on(PutParameterCommand).rejectsOnce(throttled()).rejectsOnce(tooMany()).resolves({ Version: 1 });
  const sleeps: number[] = [];
  const st = store(sleeps);
  const s = await st.load();
  s.jobs.set(77, { projectId: 1, pool: 'docker', status: 'pending', seenAt: Date.now() });
  expect(await st.save(s)).toEqual({ writes: 2 }); // jobs/00 then meta
  expect(sleeps).toEqual([200, 400]);
  const puts = ssmMock.commandCalls(PutParameterCommand).map((c) => c.args[0].input);
  expect(puts.at(-2)).toMatchObject({ Name: `${BASE}/jobs/00`, Type: 'String', Tier: 'Standard', Overwrite: true });
  expect(puts.at(-1)).toMatchObject({ Name: `${BASE}/meta` });
  expect(st.parameters.writes).toBe(2);
});

test('throttling that does not clear fails the save after a bounded number of attempts', async () => {
  ssmMock.on(GetParametersByPathCommand).resolves({ Parameters: [] });
  ssmMock.on(PutParameterCommand).rejects(throttled());
  const st = store();
  const s = await st.load();
  await expect(st.save(s)).rejects.toThrow(/Rate exceeded/);
  expect(ssmMock.commandCalls(PutParameterCommand)).toHaveLength(4);
});

test('loadSecret decrypts, caches for a while, and never puts the value in errors', async () => {
  ssmMock.on(GetParameterCommand, { Name: '/x/token' }).resolves({ Parameter: { Value: 'glpat-secret-value' } });
  ssmMock.on(GetParameterCommand, { Name: '/x/missing' }).rejects(Object.assign(new Error('nope'), { name: 'ParameterNotFound' }));
  const ssm = new SSMClient({ region: 'us-east-1' });
  let now = 0;
  expect(await loadSecret(ssm, '/x/token', { now: () => now })).toBe('glpat-secret-value');
  now += 60_000;
  expect(await loadSecret(ssm, '/x/token', { now: () => now })).toBe('glpat-secret-value');
  expect(ssmMock.commandCalls(GetParameterCommand)).toHaveLength(1);
  expect(ssmMock.commandCalls(GetParameterCommand)[0].args[0].input).toEqual({ Name: '/x/token', WithDecryption: true });
  now += 10 * 60_000;
  await loadSecret(ssm, '/x/token', { now: () => now });
  expect(ssmMock.commandCalls(GetParameterCommand)).toHaveLength(2);
  await expect(loadSecret(ssm, '/x/missing')).rejects.toThrow(/secret \/x\/missing does not exist .*SecureString/);
});
