/**
 * Worker logs to CloudWatch Logs (lib/worker/script.ts, "logs to CloudWatch Logs"), run for real:
 *  - under bash with the worker harness (fake `aws`, IMDS stand-in): what a worker ships (its boot
 *    steps, gitlab-runner's output, why it shut down), where (its pool's group, the stream named by
 *    its instance id and address), and what it never ships (the runner token, job secrets);
 *  - the shipper program alone, against a fake `aws`, on a large spool: batches within
 *    PutLogEvents' limits, in order, bounded in bytes, masked.
 */
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WORKER_SCRIPT } from '../../lib/worker/script';
import { TAGS } from '../../lib/controller/tags';
import { indexOf, runScenario, TOKEN, type RunResult } from './harness';

jest.setTimeout(60_000);

const GROUP = '/gitlab-spot-autoscaler/ci/test/workers/default';
const STREAM = 'i-0fa1afe1c0ffee000/10.0.1.23';
const JOB_SECRET = 'npm-secret-value-7f3a9c';
const SECRET_PARAM = '/gitlab-spot-autoscaler/ci/test/secrets/runner/default/environment/NPM_TOKEN';

const logCalls = (r: RunResult) => r.calls.filter((c) => c.cmd === 'aws' && / logs /.test(` ${c.args} `));
const messages = (r: RunResult) => r.logEvents.map((e) => e.message);

function expectNothingSecretShipped(r: RunResult): void {
  for (const v of [TOKEN, JOB_SECRET]) {
    for (const m of messages(r)) expect(m).not.toContain(v);
    for (const c of logCalls(r)) expect(c.args).not.toContain(v);
  }
  // The shipper's aws calls ran with an environment that never held the token (env.log has every call's).
  expect(r.envDump).not.toContain(TOKEN);
}

describe('a worker ships its log to its pool\'s group, into its own stream', () => {
  test('boot steps, gitlab-runner\'s output and the reason it shut down; in order; nothing secret, even when the runner prints its token', async () => {
    const r = await runScenario({
      name: 'logs-life',
      pool: { runnerSecrets: [{ setting: 'environment.NPM_TOKEN' }] },
      ssm: { [SECRET_PARAM]: JOB_SECRET },
      runner: { jobs: 2, leakToken: true },
      onEvent: (ev, imds) => ev === 'job-end-2' && imds.tags.set(TAGS.retire, '2030-01-01T00:00:00.000Z'),
    });
    expect(r.exitCode).toBe(0);
    // Stream named by instance id and address, in the pool's group; created once.
    const creates = logCalls(r).filter((c) => c.args.includes('create-log-stream'));
    expect(creates).toHaveLength(1);
    expect(creates[0].args).toBe(`--region eu-west-1 logs create-log-stream --log-group-name ${GROUP} --log-stream-name ${STREAM}`);
    for (const c of logCalls(r).filter((x) => x.args.includes('put-log-events'))) expect(c.args).toContain(`--log-group-name ${GROUP} --log-stream-name ${STREAM} --log-events file://`);
    const text = messages(r).join('\n');
    expect(text).toMatch(/gsa-worker: starting: pool default of ci\/test/);
    expect(text).toMatch(/gsa-worker: gitlab-runner started \(pid \d+/);
    expect(text).toMatch(/Checking for jobs\.\.\. received +job=1001/);
    expect(text).toMatch(/Job succeeded +duration_s=0\.1 job=1002/);
    expect(text).toMatch(/gsa-worker: shutting down: retirement requested \(2030-01-01T00:00:00\.000Z\)/);
    // The last shipped line is the reason, and it was shipped before the power-off.
    expect(messages(r).at(-1)).toMatch(/shutting down: retirement requested/);
    expect(indexOf(r.calls, 'shutdown', '-h now')).toBeGreaterThan(r.calls.findLastIndex((c) => c.args.includes('put-log-events')));
    // PutLogEvents needs chronological events.
    const ts = r.logEvents.map((e) => e.timestamp);
    expect(ts).toEqual([...ts].sort((a, b) => a - b));
    // The token the runner printed is masked on the way out; job secrets never reach the console.
    expect(text).toContain('DEBUG config token=glrt-[MASKED]');
    expectNothingSecretShipped(r);
    // What went out is what the console showed (less the mask): the shipper adds nothing.
    for (const m of messages(r)) expect(r.output.replace(TOKEN, 'glrt-[MASKED]')).toContain(m);
  });

  test('a worker that fails at boot still ships why (the final flush)', async () => {
    const r = await runScenario({ name: 'logs-notoken', tokenInSsm: false, runner: { jobs: 1 } });
    expect(messages(r).at(-1)).toMatch(/shutting down: cannot read the runner token from SSM parameter/);
    expect(r.calls.at(-1)!.cmd).toBe('shutdown');
    expectNothingSecretShipped(r);
  });

  test('CloudWatch Logs refusing every call: the worker still powers off, within the flush bound, and says so on its console', async () => {
    const started = Date.now();
    const r = await runScenario({ name: 'logs-fail', tokenInSsm: false, runner: { jobs: 1 }, logsFail: true });
    expect(r.calls.at(-1)!.cmd).toBe('shutdown');
    expect(r.output).toMatch(/gsa-worker: shipping the log to \/gitlab-spot-autoscaler\/ci\/test\/workers\/default failed: An error occurred \(AccessDeniedException\)/);
    expect(r.logEvents).toEqual([]);
    expect(Date.now() - started).toBeLessThan(20_000); // the harness's flush bound is 5 s
  });

  test('workerLogRetentionDays: 0 ships nothing and writes no spool', async () => {
    const r = await runScenario({ name: 'logs-off', config: { workerLogRetentionDays: 0 }, pool: { MaxBuilds: 1 }, runner: { jobs: 1 }, collect: ['var/lib/gsa-worker/log.spool'] });
    expect(r.exitCode).toBe(0);
    expect(logCalls(r)).toEqual([]);
    expect(r.files['var/lib/gsa-worker/log.spool']).toBeUndefined();
    expect(r.userData).toMatch(/^LOG_GROUP=''$/m);
  });

  test('without an IPv4 address in instance metadata nothing is shipped (IAM pins the stream to it), and the console says so', async () => {
    const r = await runScenario({ name: 'logs-noip', localIpv4: null, pool: { MaxBuilds: 1 }, runner: { jobs: 1 } });
    expect(r.exitCode).toBe(0);
    expect(logCalls(r)).toEqual([]);
    expect(r.output).toMatch(/no primary private IPv4 in instance metadata: this log is not shipped/);
  });
});

describe('the shipper program', () => {
  const shipper = /\nSHIPPER='\n([\s\S]*?)\n'\n/.exec(WORKER_SCRIPT)![1];

  it('is one single-quoted shell word (no quote inside), taken verbatim by bash', () => {
    expect(shipper).not.toContain("'");
  });

  function ship(spool: string[], cap: number) {
    const dir = mkdtempSync(join(tmpdir(), 'gsa-shipper-'));
    try {
      const aws = join(dir, 'aws');
      writeFileSync(
        aws,
        `#!/bin/bash\nprintf '%s\\n' "$*" >>${dir}/calls\nif [ "$4" = put-log-events ]; then f=''; prev=''; for a in "$@"; do [ "$prev" = --log-events ] && f=\${a#file://}; prev=$a; done; { cat "$f"; echo; } >>${dir}/batches; fi\n`,
      );
      chmodSync(aws, 0o755);
      writeFileSync(join(dir, 'spool'), spool.join('\n') + '\n');
      writeFileSync(join(dir, 'final'), '');
      execFileSync('python3', ['-c', shipper, aws, join(dir, 'spool'), 'G', 'S', 'eu-west-1', join(dir, 'final'), join(dir, 'batch'), '0.01', String(cap), '0'], { timeout: 30_000 });
      const batches = readFileSync(join(dir, 'batches'), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as { timestamp: number; message: string }[]);
      return { batches, calls: readFileSync(join(dir, 'calls'), 'utf8').split('\n').filter(Boolean) };
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  it('sends a large spool in batches within PutLogEvents\' limits (10,000 events, 1 MB), in order, each line once', () => {
    const t0 = 1_790_000_000_000;
    const lines = Array.from({ length: 25_000 }, (_, k) => `${t0 + k}\trunner line ${k} ${'x'.repeat(k % 7 === 0 ? 300 : 20)}`);
    const { batches, calls } = ship(lines, 1 << 30);
    expect(calls.filter((c) => c.includes('create-log-stream'))).toHaveLength(1);
    for (const b of batches) {
      expect(b.length).toBeLessThanOrEqual(10_000);
      expect(b.reduce((n, e) => n + Buffer.byteLength(e.message) + 26, 0)).toBeLessThanOrEqual(1_048_576);
    }
    const all = batches.flat();
    expect(all).toHaveLength(25_000);
    expect(all.map((e) => e.timestamp)).toEqual(all.map((_, k) => t0 + k));
  });

  it('spreads a cohort\'s first CreateLogStream over the spread (50 TPS per account): 20 workers booted together do not call at once', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gsa-shipper-'));
    try {
      const aws = join(dir, 'aws');
      // Records when it was called; every call succeeds.
      writeFileSync(aws, `#!/bin/bash\nif [ "$4" = create-log-stream ]; then date +%s.%N >>${dir}/creates; fi\n`);
      chmodSync(aws, 0o755);
      const created = () => readFileSync(join(dir, 'creates'), { encoding: 'utf8', flag: 'a+' }).split('\n').filter(Boolean).length;
      const runs = Array.from({ length: 20 }, (_, k) => {
        writeFileSync(join(dir, `spool${k}`), `${Date.now()}\tboot line\n`);
        return new Promise<void>((resolve, reject) => {
          const child = spawn('python3', ['-c', shipper, aws, join(dir, `spool${k}`), 'G', `S${k}`, 'eu-west-1', join(dir, 'final'), join(dir, `batch${k}`), '0.05', '1000000', '4'], { stdio: 'ignore' });
          child.on('error', reject);
          child.on('exit', () => resolve());
        });
      });
      // Once every stream exists, the workers finish (a finishing worker would not wait for its turn).
      for (let i = 0; i < 200 && created() < 20; i++) await new Promise((r) => setTimeout(r, 50));
      writeFileSync(join(dir, 'final'), '');
      await Promise.all(runs);
      const times = readFileSync(join(dir, 'creates'), 'utf8').split('\n').filter(Boolean).map(Number);
      expect(times).toHaveLength(20);
      // Uniform over 4 s: all 20 within 2 s of each other has a chance of about 20 x 0.5^19 (without the spread: within ~1 s, the time 20 Pythons take to start on a busy machine).
      expect(Math.max(...times) - Math.min(...times)).toBeGreaterThan(2);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  /** Runs the shipper until it has sent everything, against a fake `aws` (Python) that refuses what PutLogEvents refuses. */
  function shipStrict(spool: Buffer, failFirstPut = false) {
    const dir = mkdtempSync(join(tmpdir(), 'gsa-shipper-'));
    try {
      const aws = join(dir, 'aws');
      // PutLogEvents: a batch may not span more than 24 hours (the call fails as a whole); the first put fails when asked (throttled).
      writeFileSync(
        aws,
        [
          '#!/usr/bin/env python3',
          'import json, os, sys',
          'a = sys.argv[1:]',
          'if a[3] != "put-log-events": sys.exit(0)',
          'events = json.load(open(a[a.index("--log-events") + 1][len("file://"):]))',
          `if ${failFirstPut ? 'True' : 'False'} and not os.path.exists("${dir}/failed"):`,
          `    open("${dir}/failed", "w").close(); print("ThrottlingException: Rate exceeded", file=sys.stderr); sys.exit(254)`,
          'if events[-1]["timestamp"] - events[0]["timestamp"] > 24 * 3600 * 1000:',
          '    print("InvalidParameterException: batch spans more than 24 hours", file=sys.stderr); sys.exit(254)',
          `open("${dir}/batches", "a").write(json.dumps(events) + "\\n")`,
        ].join('\n') + '\n',
      );
      chmodSync(aws, 0o755);
      writeFileSync(join(dir, 'spool'), spool);
      writeFileSync(join(dir, 'final'), '');
      execFileSync('python3', ['-c', shipper, aws, join(dir, 'spool'), 'G', 'S', 'eu-west-1', join(dir, 'final'), join(dir, 'batch'), '0.01', String(1 << 30), '0'], { timeout: 30_000 });
      return readFileSync(join(dir, 'batches'), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as { timestamp: number; message: string }[]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  it('never sends a batch spanning more than 24 hours (PutLogEvents refuses it whole, and the shipper retried it forever)', () => {
    const t0 = 1_790_000_000_000;
    const batches = shipStrict(Buffer.from([`${t0}\tbooted`, `${t0 + 3_600_000}\tjob`, `${t0 + 25 * 3_600_000}\tshutting down`].join('\n') + '\n'));
    expect(batches.flat().map((e) => e.message)).toEqual(['booted', 'job', 'shutting down']);
    expect(batches.length).toBe(2);
  });

  it('a refused batch is sent again with its own timestamps (they collapsed to the last one)', () => {
    const t0 = 1_790_000_000_000;
    const batches = shipStrict(Buffer.from([0, 1500, 3000].map((d) => `${t0 + d}\tline ${d}`).join('\n') + '\n'), true);
    expect(batches.flat().map((e) => e.timestamp)).toEqual([t0, t0 + 1500, t0 + 3000]);
  });

  it('a line longer than one read (4 MB) is sent cut, and the lines after it still go (the shipper stopped there)', () => {
    const t0 = 1_790_000_000_000;
    const batches = shipStrict(Buffer.concat([Buffer.from(`${t0}\t${'z'.repeat(5 << 20)}\n`), Buffer.from(`${t0 + 1}\tafter the long line\n`)]));
    const messages = batches.flat().map((e) => e.message);
    expect(messages[0]).toMatch(/^z{16384}$/);
    expect(messages.at(-1)).toBe('after the long line');
  });

  it('stops sending runner output past its byte cap but keeps the worker\'s own lines; masks token shapes; keeps time moving forward', () => {
    const t0 = 1_790_000_000_000;
    const lines = [
      ...Array.from({ length: 2_000 }, (_, k) => `${t0 + k}\trunner line ${k} ${'y'.repeat(100)}`),
      `${t0 + 1}\t2026-11-30T10:00:00Z gsa-worker: shutting down: MaxBuilds (3) reached`,
      `${t0 + 3000}\tleaked glpat-abcdefghijklmnopqrst and AKIAIOSFODNN7EXAMPLE and GR1348941abcdefghijkl`,
    ];
    const { batches } = ship(lines, 50_000);
    const all = batches.flat();
    const messages = all.map((e) => e.message);
    expect(all.length).toBeLessThan(1_000); // the cap, not the 2,002 lines
    expect(messages).toContain('2026-11-30T10:00:00Z gsa-worker: shutting down: MaxBuilds (3) reached');
    expect(messages.some((m) => /log shipper: \d+ bytes shipped; from here on only lines of gsa-worker itself/.test(m))).toBe(true);
    expect(messages.join('\n')).not.toMatch(/abcdefghijklmnopqrst|AKIAIOSFODNN7EXAMPLE|GR1348941abcdefghijkl/);
    const ts = all.map((e) => e.timestamp);
    expect(ts).toEqual([...ts].sort((a, b) => a - b)); // the shutdown line's earlier clock is moved forward, never back
  });
});
