import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { GitLabClient, retryAfterMs } from '../../lib/gitlab/client';

const TOKEN = 'glpat-do-not-leak-1234';

/** A GitLab stand-in on 127.0.0.1 whose answers the test scripts. */
let server: Server;
let base: string;
let handler: (req: IncomingMessage, res: ServerResponse) => void;
const seen: { url: string; token?: string }[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    seen.push({ url: req.url ?? '', token: req.headers['private-token'] as string | undefined });
    handler(req, res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const addr = server.address();
  base = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});
beforeEach(() => {
  seen.length = 0;
});

const json = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
};

function client(extra: Partial<ConstructorParameters<typeof GitLabClient>[0]> = {}) {
  const sleeps: number[] = [];
  const c = new GitLabClient({ url: base, token: TOKEN, sleep: async (ms) => void sleeps.push(ms), random: () => 0.5, ...extra });
  return { c, sleeps };
}

test('reads a job: status and tag_list, with the token header', async () => {
  handler = (_req, res) => json(res, 200, { id: 55, status: 'pending', tag_list: ['docker', 'linux'] });
  const { c } = client();
  expect(await c.getJob(7, 55)).toEqual({ id: 55, status: 'pending', tagList: ['docker', 'linux'] });
  expect(seen).toEqual([{ url: '/api/v4/projects/7/jobs/55', token: TOKEN }]);
});

test('404 means the job is gone', async () => {
  handler = (_req, res) => json(res, 404, { message: '404 Not found' });
  expect(await client().c.getJob(7, 56)).toBeUndefined();
});

test('lists a project\'s pending jobs (one page of 100) and a pipeline\'s jobs; malformed entries are skipped', async () => {
  handler = (_req, res) =>
    json(res, 200, [
      { id: 91, status: 'pending', tag_list: ['arm64'], name: 'build' },
      { id: 90, status: 'pending' },
      { id: 'x', status: 'pending' },
      { id: 89 },
      null,
    ]);
  const { c } = client();
  const expected = [
    { id: 91, status: 'pending', tagList: ['arm64'] },
    { id: 90, status: 'pending', tagList: [] },
  ];
  expect(await c.listPendingJobs(7)).toEqual(expected);
  expect(await c.listPipelineJobs(7, 981)).toEqual(expected);
  expect(seen.map((x) => x.url)).toEqual(['/api/v4/projects/7/jobs?scope[]=pending&per_page=100', '/api/v4/projects/7/pipelines/981/jobs?per_page=100']);
  expect(seen.every((x) => x.token === TOKEN)).toBe(true);
});

test('a listing of a project that is gone (404) is empty; an answer that is not a list is an error', async () => {
  handler = (_req, res) => json(res, 404, { message: '404 Project Not Found' });
  expect(await client().c.listPendingJobs(8)).toEqual([]);
  handler = (_req, res) => json(res, 200, { message: 'unexpected' });
  await expect(client().c.listPendingJobs(8)).rejects.toThrow(/expected a JSON array of jobs/);
  await expect(client().c.listPendingJobs(0)).rejects.toThrow(/project id must be a positive integer/);
  await expect(client().c.listPipelineJobs(8, -2)).rejects.toThrow(/project and pipeline ids must be positive integers/);
});

test('429 waits Retry-After, then succeeds', async () => {
  let n = 0;
  handler = (_req, res) => (n++ === 0 ? json(res, 429, {}, { 'retry-after': '3' }) : json(res, 200, { id: 1, status: 'running', tag_list: [] }));
  const { c, sleeps } = client();
  expect((await c.getJob(1, 1))?.status).toBe('running');
  expect(sleeps).toEqual([3000]);
});

test('a Retry-After longer than the cap fails at once instead of stalling the pass', async () => {
  handler = (_req, res) => json(res, 429, {}, { 'retry-after': '120' });
  const { c, sleeps } = client();
  await expect(c.getJob(1, 1)).rejects.toThrow(/rate limited/);
  expect(sleeps).toEqual([]);
  expect(seen).toHaveLength(1);
});

test('5xx is retried a bounded number of times with backoff', async () => {
  handler = (_req, res) => json(res, 502, {});
  const { c, sleeps } = client();
  await expect(c.getJob(1, 1)).rejects.toThrow(/HTTP 502/);
  expect(seen).toHaveLength(3);
  expect(sleeps).toEqual([125, 250]);
});

test('a hanging server times out', async () => {
  handler = () => {}; // never answers
  const { c } = client({ timeoutMs: 100, maxAttempts: 2 });
  await expect(c.getJob(1, 1)).rejects.toThrow(/timed out after 100 ms/);
});

test('401 is reported clearly, and the token never appears in any error', async () => {
  handler = (_req, res) => json(res, 401, { message: '401 Unauthorized' });
  const err = await client()
    .c.getJob(1, 1)
    .catch((e: Error) => e);
  expect(String((err as Error).message)).toMatch(/refused the token \(HTTP 401\).*read_api/);
  expect(JSON.stringify({ m: (err as Error).message, s: (err as Error).stack })).not.toContain(TOKEN);
});

test('the token can come from a loader (SSM), and bad input is refused by name', async () => {
  handler = (_req, res) => json(res, 200, { id: 2, status: 'success', tag_list: [] });
  const { c } = client({ token: async () => 'from-ssm' });
  await c.getJob(3, 2);
  expect(seen[0].token).toBe('from-ssm');
  await expect(c.getJob(0, 2)).rejects.toThrow(/positive integers/);
  expect(() => new GitLabClient({ url: 'gitlab', token: 'x' })).toThrow(/gitlab.url: "gitlab" is not a URL/);
});

test('Retry-After accepts seconds and HTTP dates', () => {
  expect(retryAfterMs('7', 0)).toBe(7000);
  expect(retryAfterMs('Wed, 21 Oct 2015 07:28:10 GMT', Date.parse('Wed, 21 Oct 2015 07:28:00 GMT'))).toBe(10_000);
  expect(retryAfterMs('soon', 0)).toBeUndefined();
});
