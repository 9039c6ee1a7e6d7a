/**
 * The migrate and worker-config commands as a user runs them: several runners, tags read from a
 * stand-in GitLab on 127.0.0.1 (never a real one), files config.toml names, and the worker's
 * config.toml printed with secrets as references.
 */
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseToml } from 'smol-toml';
import { parseConfig } from '../../lib/config';
import { migrateConfigToml, PLACEHOLDER_TAG } from '../../lib/migrate/migrate';
import { readRunnerTags } from '../../lib/migrate/gitlab-tags';
import { workerConfigToml } from '../../lib/worker/runner-config';
import { runCli } from '../helpers/cli';

const FIXTURES = join(__dirname, '..', 'fixtures');
const terraform = readFileSync(join(FIXTURES, 'real', 'terraform-rendered.toml'), 'utf8');
const multiTeam = readFileSync(join(FIXTURES, 'real', 'multi-team.toml'), 'utf8');
const API_TOKEN = 'glpat-test-api-token-0001';

/** A stand-in for the two GitLab endpoints migrate uses; records what it was asked. */
async function fakeGitLab(runners: Record<number, { tag_list: string[]; run_untagged: boolean }>, tokens: Record<string, number>) {
  const seen: string[] = [];
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      seen.push(`${req.method} ${req.url} ${req.headers['private-token'] === API_TOKEN ? 'token' : 'no-token'}`);
      const reply = (code: number, json: unknown) => {
        res.writeHead(code, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify(json));
      };
      if (req.method === 'POST' && req.url === '/api/v4/runners/verify') {
        const id = tokens[(JSON.parse(body) as { token: string }).token];
        return id ? reply(200, { id, token: 'redacted', token_expires_at: null }) : reply(403, { message: '403 Forbidden' });
      }
      const m = /^\/api\/v4\/runners\/(\d+)$/.exec(req.url ?? '');
      if (req.method === 'GET' && m) {
        if (req.headers['private-token'] !== API_TOKEN) return reply(401, { message: '401 Unauthorized' });
        const r = runners[Number(m[1])];
        return r ? reply(200, { id: Number(m[1]), description: 'x', ...r }) : reply(404, { message: '404 Not found' });
      }
      reply(404, {});
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { url, seen, close: () => new Promise<void>((resolve) => (server.closeAllConnections(), server.close(() => resolve()))) };
}

describe('several runners', () => {
  test('each docker+machine runner is a pool; the first takes untagged jobs, later ones get a PLACEHOLDER tag and how to read theirs', () => {
    const r = migrateConfigToml(terraform, { source: 'tf.toml' });
    expect(r.config.pools.map((p) => [p.name, p.tags, p.runUntagged])).toEqual([
      ['acme-docker-default', [], true],
      ['acme-docker-large', [`${PLACEHOLDER_TAG}-acme-docker-large`], false],
    ]);
    expect(r.yaml).toMatch(/- PLACEHOLDER-acme-docker-large # PLACEHOLDER: this runner's tags in GitLab/);
    // The runner's id is in config.toml: the note gives the exact API call.
    expect(r.warnings.find((w) => w.at === 'runners[1].tags')!.message).toContain('https://gitlab.acme.example/api/v4/runners/4712');
  });

  test('identical runner names get distinct pool names', () => {
    const r = migrateConfigToml(multiTeam, { source: 'multi.toml' });
    expect(r.config.pools.map((p) => p.name)).toEqual(['team-web', 'team-data', 'team-data-2']);
    expect(new Set(r.config.pools.flatMap((p) => p.tags)).size).toBe(2);
  });

  test('--tags-from-gitlab: ids from config.toml or runners/verify, tags from GET /runners/:id; overlaps and a second untagged pool are resolved with a note', async () => {
    const gitlab = await fakeGitLab({ 4711: { tag_list: ['docker', 'linux'], run_untagged: true }, 4712: { tag_list: ['large', 'linux'], run_untagged: true } }, {});
    try {
      const lookup = await readRunnerTags(terraform, { token: API_TOKEN, url: gitlab.url });
      expect(lookup.problems).toEqual([]);
      expect(gitlab.seen).toEqual(['GET /api/v4/runners/4711 token', 'GET /api/v4/runners/4712 token']);
      const r = migrateConfigToml(terraform, { runnerTags: lookup.tags });
      expect(r.config.pools.map((p) => [p.tags, p.runUntagged])).toEqual([
        [['docker', 'linux'], true],
        [['large'], false],
      ]);
      expect(r.warnings.map((w) => w.message).join('\n')).toMatch(/tag "linux" is also on pool "acme-docker-default"[\s\S]*only one pool may/);
      expect(r.yaml).not.toContain('PLACEHOLDER-');
    } finally {
      await gitlab.close();
    }

    // No id in config.toml: the runner's own token finds it (POST /runners/verify); a token GitLab does not know is reported.
    const gitlab2 = await fakeGitLab({ 7: { tag_list: ['web'], run_untagged: false }, 8: { tag_list: ['data'], run_untagged: false } }, { 'glrt-S3CR3TwebToken000000001': 7, 'glrt-S3CR3TdataToken00000001': 8 });
    try {
      const lookup = await readRunnerTags(multiTeam, { token: API_TOKEN, url: gitlab2.url });
      expect([...lookup.tags.entries()]).toEqual([
        [0, { id: 7, tags: ['web'], runUntagged: false }],
        [1, { id: 8, tags: ['data'], runUntagged: false }],
      ]);
      expect(lookup.problems).toEqual([expect.stringMatching(/^runners\[2\] \(Team Data\): no runner id in config.toml and GitLab did not recognise its token/)]);
      expect(lookup.problems.join()).not.toMatch(/S3CR3T|glpat/);
    } finally {
      await gitlab2.close();
    }
  });
});

describe('migrate command', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'gsa-migrate-cli-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  test('reads files config.toml names from beside it, prints the report, and the result validates', async () => {
    writeFileSync(join(dir, 'config.toml'), multiTeam);
    copyFileSync(join(FIXTURES, 'files', 'acme-root-ca.crt'), join(dir, 'acme-root-ca.crt'));
    const r = await runCli(['migrate', '--from', join(dir, 'config.toml'), '--out', join(dir, 'config.yaml'), '--deployment', 'corp']);
    expect(r.code).toBe(0);
    const config = parseConfig(readFileSync(join(dir, 'config.yaml'), 'utf8'));
    expect(config.pools[0].worker.caCertificate).toContain('-----BEGIN CERTIFICATE-----');
    expect(r.out).toMatch(/Report: \d+ carried, \d+ mapped, \d+ replaced, \d+ dropped/);
    expect(r.out).toContain('runners[3]: executor "kubernetes"');
    expect(r.out).toMatch(/aws ssm put-parameter .*--name \/gitlab-spot-autoscaler\/corp\/prod\/secrets\/runner\/team-web\/environment\/NPM_TOKEN --value '<NPM_TOKEN from config.toml>'/);
    expect(r.out + readFileSync(join(dir, 'config.yaml'), 'utf8')).not.toMatch(/S3CR3T/);
  });

  test('--tags-from-gitlab takes the API token from GITLAB_TOKEN only, and says so when it is missing', async () => {
    writeFileSync(join(dir, 'config.toml'), terraform);
    const before = process.env.GITLAB_TOKEN;
    delete process.env.GITLAB_TOKEN;
    try {
      const r = await runCli(['migrate', '--from', join(dir, 'config.toml'), '--tags-from-gitlab']);
      expect(r.code).toBe(2);
      expect(r.err).toContain('environment variable GITLAB_TOKEN');
      const gitlab = await fakeGitLab({ 4711: { tag_list: ['a'], run_untagged: true }, 4712: { tag_list: ['b'], run_untagged: false } }, {});
      process.env.GITLAB_TOKEN = API_TOKEN;
      try {
        const ok = await runCli(['migrate', '--from', join(dir, 'config.toml'), '--tags-from-gitlab', '--gitlab-url', gitlab.url]);
        expect(ok.code).toBe(0);
        expect(parseConfig(ok.out).pools.map((p) => p.tags)).toEqual([['a'], ['b']]);
        expect(ok.err).toContain('Tags read from GitLab for 2 runner(s).');
        expect(ok.out + ok.err).not.toContain(API_TOKEN);
      } finally {
        await gitlab.close();
      }
    } finally {
      if (before === undefined) delete process.env.GITLAB_TOKEN;
      else process.env.GITLAB_TOKEN = before;
    }
  });

  test('--keep-cache-keys keeps an AWS S3 cache of another account, its keys from SSM', () => {
    const text = readFileSync(join(FIXTURES, 'real', 'odd-inputs.toml'), 'utf8');
    const managed = migrateConfigToml(text).config.pools[1];
    expect(managed.worker.cache.bucketName).toBe('partner-account-cache');
    const kept = migrateConfigToml(text, { keepCacheKeys: true }).config.pools[1];
    expect(kept.worker.cache.bucketName).toBeUndefined();
    expect(kept.runner?.cache).toMatchObject({ Type: 's3', s3: { BucketName: 'partner-account-cache', ServerAddress: 's3.amazonaws.com' } });
    expect(kept.runnerSecrets.map((s) => s.setting)).toEqual(['cache.s3.AccessKey', 'cache.s3.SecretKey']);
  });
});

describe('worker-config command', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'gsa-worker-config-'));
    writeFileSync(join(dir, 'corp.yaml'), migrateConfigToml(multiTeam, { deployment: 'corp', readFile: () => readFileSync(join(FIXTURES, 'files', 'acme-root-ca.crt'), 'utf8') }).yaml);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test('prints the config.toml the worker writes, secrets as {{ssm:NAME}}, notes on stderr', async () => {
    const r = await runCli(['worker-config', '--config', join(dir, 'corp.yaml'), '--pool', 'team-web', '--stage', 'prod']);
    expect(r.code).toBe(0);
    const config = parseConfig(readFileSync(join(dir, 'corp.yaml'), 'utf8'));
    expect(r.out).toBe(workerConfigToml({ config, pool: config.pools[0], stage: 'prod', region: 'us-east-2' }));
    const runner = (parseToml(r.out) as any).runners[0];
    expect(runner).toMatchObject({ name: 'corp-prod-team-web', executor: 'docker', 'tls-ca-file': '/etc/gsa-worker/ca.crt', token: '{{ssm:/gitlab-spot-autoscaler/corp/prod/secrets/runner-token/team-web}}' });
    expect(runner.cache.s3.SecretKey).toBe('{{ssm:/gitlab-spot-autoscaler/corp/prod/secrets/runner/team-web/cache/s3/SecretKey}}');
    expect(runner.feature_flags).toEqual({ FF_NETWORK_PER_BUILD: true, FF_USE_FASTZIP: true, FF_SCRIPT_SECTIONS: true });
    expect(r.err).toContain('note: secrets are shown as {{ssm:NAME}}');
  });

  test('a pool on the deployment cache shows the bucket placeholder until --cache-bucket is given; a bad pool is named', async () => {
    const r = await runCli(['worker-config', '--config', join(dir, 'corp.yaml'), '--pool', 'team-data']);
    expect(r.out).toContain('BucketName = "__DEPLOYMENT_CACHE_BUCKET__"');
    expect(r.err).toContain('pass --cache-bucket BUCKET');
    const exact = await runCli(['worker-config', '--config', join(dir, 'corp.yaml'), '--pool', 'team-data', '--cache-bucket', 'corp-cache-1a2b']);
    expect(exact.out).toContain('BucketName = "corp-cache-1a2b"');
    const bad = await runCli(['worker-config', '--config', join(dir, 'corp.yaml'), '--pool', 'nope']);
    expect(bad.code).toBe(2);
    expect(bad.err).toContain('unknown pool "nope" (pools in');
    const help = await runCli(['worker-config', '--help']);
    expect(help.out).toMatch(/--cache-bucket BUCKET +the deployment's cache bucket/);
  });
});
