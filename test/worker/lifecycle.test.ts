/**
 * The rendered user data, run for real under bash against fakes and an IMDS / GitLab stand-in
 * (harness.ts). Each scenario asserts the order of what the worker did, and that the runner token
 * never shows up in its output, in any command's argv or in any command's environment.
 */
import { join } from 'node:path';
import { TAGS } from '../../lib/controller/tags';
import { decodeReport } from '../../lib/controller/reports';
import { WORKER_DEFAULTS } from '../../lib/worker/userdata';
import { indexOf, reportsSent, runScenario, TOKEN, type RunResult } from './harness';

jest.setTimeout(60_000);

function expectNoTokenLeak(r: RunResult): void {
  expect(r.userData).not.toContain(TOKEN);
  expect(r.output).not.toContain(TOKEN);
  for (const c of r.calls) expect(c.args).not.toContain(TOKEN);
  expect(r.envDump).not.toContain(TOKEN);
}

/** The last call is the power-off, with the reason; nothing runs after it. */
function expectShutdown(r: RunResult, reason: RegExp): void {
  expect(r.exitCode).toBe(0);
  const last = r.calls[r.calls.length - 1];
  expect(last.cmd).toBe('shutdown');
  expect(last.args).toMatch(/^-h now gsa-worker: /);
  expect(last.args).toMatch(reason);
  expect(r.output).toMatch(new RegExp(`shutting down: .*${reason.source}`));
  expect(r.calls.filter((c) => c.cmd === 'shutdown' && c.args.startsWith('-h now'))).toHaveLength(1);
}

/** The worker never tags itself (its role has no ec2:CreateTags): it reports to SQS. */
function expectNoTagCalls(r: RunResult): void {
  expect(r.calls.filter((c) => c.cmd === 'aws' && c.args.startsWith('ec2 '))).toEqual([]);
}
const readyReport = (r: RunResult) => indexOf(r.calls, 'aws', /^sqs send-message .*"s":"idle".*"r":\d+/);

describe('worker lifecycle (bash, fakes, IMDS stand-in)', () => {
  test('normal life: boot, MaxBuilds builds, leaves on its own', async () => {
    const r = await runScenario({ name: 'maxbuilds', pool: { MaxBuilds: 3 }, runner: { jobs: 5 } });
    expectShutdown(r, /MaxBuilds \(3\) reached/);
    expectNoTokenLeak(r);
    // The hard lifetime power-off is scheduled first: (86400 + 10800 + 600 + 59) / 60 minutes.
    expect(indexOf(r.calls, 'shutdown', '-h +1630 ')).toBe(indexOf(r.calls, 'shutdown', ''));
    const ssm = indexOf(r.calls, 'aws', 'ssm get-parameter');
    expect(r.calls[ssm].args).toContain('--name /gitlab-spot-autoscaler/ci/test/secrets/runner-token/default --with-decryption');
    const ready = readyReport(r);
    const runner = indexOf(r.calls, 'gitlab-runner', 'run-single');
    expect(ssm).toBeGreaterThan(-1);
    expect(ready).toBeGreaterThan(ssm);
    expect(runner).toBeGreaterThan(ready);
    expect(r.calls[indexOf(r.calls, 'aws', 'sqs get-queue-url')].args).toContain('--queue-name gsa-ci-test-worker-reports');
    expect(r.calls[runner].args).toMatch(/-r ci-test-default --max-builds 3 --wait-timeout 600$/);
    expect(r.events).toEqual(['job-start-1', 'job-end-1', 'job-start-2', 'job-end-2', 'job-start-3', 'job-end-3', 'exit-0']);
    // The token reached GitLab's verify endpoint in a request body and the 0600 config file, nowhere else.
    expect(r.verifyBodies).toEqual([JSON.stringify({ token: TOKEN })]);
    expect(r.runnerSaw.trim()).toBe('conf=600 dir=700 token-in-conf=yes BucketLocation = "eu-west-1"');
    expectNoTagCalls(r);
    const reports = reportsSent(r.calls);
    expect(reports[0]).toMatchObject({ i: 'i-0fa1afe1c0ffee000', q: 1, s: 'idle', n: 0 });
    expect(reports[0].r).toBeGreaterThan(0);
    // The controller reads what the script's printf builds.
    for (const x of reports) expect(decodeReport('m', JSON.stringify(x)).instanceId).toBe('i-0fa1afe1c0ffee000');
    // Every report carries the next sequence number: the controller keeps the newest.
    expect(reports.map((x) => x.q)).toEqual(reports.map((_, k) => k + 1));
    // (The docker cross-check may also report busy before the log line is read, with the count so far.)
    expect([...new Set(reports.filter((x) => x.s === 'busy').map((x) => x.n))].filter((n) => n > 0)).toEqual([1, 2, 3]);
    // The last word: its runner is gone, no job runs, it powers off.
    expect(reports[reports.length - 1]).toMatchObject({ s: 'stopped', n: 3, w: 'MaxBuilds (3) reached' });
    expect(r.calls.some((c) => c.cmd === 'gitlab-runner' && c.args.startsWith('signal-'))).toBe(false);
  });

  test('normal life: builds, then the controller retires the idle worker', async () => {
    const r = await runScenario({
      name: 'retire-idle',
      noRegion: true, // the region comes from IMDS, into the AWS CLI calls and the cache config
      runner: { jobs: 2 },
      onEvent: (ev, imds) => ev === 'job-end-2' && imds.tags.set(TAGS.retire, '2030-01-01T00:00:00.000Z'),
    });
    expectShutdown(r, /retirement requested \(2030-01-01T00:00:00.000Z\)/);
    expectNoTokenLeak(r);
    expect(r.events).toEqual(['job-start-1', 'job-end-1', 'job-start-2', 'job-end-2', 'signal-QUIT', 'exit-0']);
    expect(r.runnerSaw).toContain('BucketLocation = "eu-west-1"');
    expect(r.calls[indexOf(r.calls, 'aws', 'ssm get-parameter')].args).toContain('--region eu-west-1');
    expect(indexOf(r.calls, 'gitlab-runner', 'run-single')).toBeGreaterThan(-1);
    expect(r.calls.find((c) => c.cmd === 'gitlab-runner' && c.args.startsWith('run-single'))!.args).toMatch(/--max-builds 0 --wait-timeout 600$/);
  });

  test('retirement requested mid-job: the job finishes first, SIGQUIT and never SIGTERM/SIGKILL', async () => {
    const r = await runScenario({
      name: 'retire-busy',
      runner: { jobs: 3, waitSignalInJob: 1 },
      onEvent: (ev, imds) => ev === 'job-start-1' && imds.tags.set(TAGS.retire, '2030-01-01T00:00:00.000Z'),
    });
    expectShutdown(r, /retirement requested/);
    expectNoTokenLeak(r);
    // exit-0 is the fake's own clean exit: it was not killed.
    expect(r.events).toEqual(['job-start-1', 'signal-QUIT', 'job-end-1', 'exit-0']);
    const draining = indexOf(r.calls, 'aws', '"s":"draining"');
    expect(draining).toBeGreaterThan(indexOf(r.calls, 'gitlab-runner', 'job-start-1'));
    // After the job the worker reports draining, not idle: the controller must not count it as available.
    expect(indexOf(r.calls, 'aws', '"s":"idle"', draining)).toBe(-1);
    // It acknowledges the request it saw, and its last report says its runner is gone.
    const reports = reportsSent(r.calls);
    expect(reports.find((x) => x.s === 'draining')).toMatchObject({ rt: '2030-01-01T00:00:00.000Z' });
    expect(reports[reports.length - 1].s).toBe('stopped');
    expect(indexOf(r.calls, 'aws', '"s":"stopped"')).toBeGreaterThan(indexOf(r.calls, 'gitlab-runner', 'exit-0'));
  });

  test('spot interruption: SIGQUIT at once, SIGTERM before the reclaim time, then power off', async () => {
    const r = await runScenario({
      name: 'spot',
      runner: { jobs: 2, untilTermInJob: 1 },
      // The notice says the instance goes in 120 s; with a margin of 118 s the deadline is ~2 s away.
      env: { GSA_INTERRUPT_MARGIN: '118' },
      onEvent: (ev, imds) => {
        if (ev === 'job-start-1')
          imds.spotAction = JSON.stringify({ action: 'terminate', time: new Date(Date.now() + 120_000).toISOString().replace(/\.\d+Z$/, 'Z') });
      },
    });
    expectShutdown(r, /spot interruption notice/);
    expectNoTokenLeak(r);
    expect(r.events).toEqual(['job-start-1', 'signal-QUIT', 'signal-TERM', 'job-aborted-1', 'exit-1']);
    expect(r.output).toMatch(/deadline passed: SIGTERM to gitlab-runner/);
  });

  test('missing token: no runner, no ready tag, power off with the reason', async () => {
    const r = await runScenario({ name: 'no-token', tokenInSsm: false, runner: { jobs: 1 } });
    expectShutdown(r, /cannot read the runner token from SSM parameter \/gitlab-spot-autoscaler\/ci\/test\/secrets\/runner-token\/default/);
    expect(r.output).toContain('ParameterNotFound');
    expect(r.calls.filter((c) => c.cmd === 'aws' && c.args.startsWith('ssm get-parameter'))).toHaveLength(1); // not retried
    expect(indexOf(r.calls, 'gitlab-runner', '')).toBe(-1);
    // Never ready: its only report is the last word, without a ready time.
    expect(reportsSent(r.calls)).toEqual([expect.objectContaining({ s: 'stopped', n: 0 })]);
    expect(reportsSent(r.calls)[0].r).toBeUndefined();
  });

  test('token rejected by GitLab: power off at boot with the reason', async () => {
    const r = await runScenario({ name: 'rejected', gitlabAccepts: 'glrt-some-other-token', runner: { jobs: 1 } });
    expectShutdown(r, /rejected the runner token .*HTTP 403/);
    expectNoTokenLeak(r);
    expect(indexOf(r.calls, 'gitlab-runner', '')).toBe(-1);
  });

  test('crashing runner: bounded restarts, then power off', async () => {
    const r = await runScenario({ name: 'crash', runner: { jobs: 1, crash: true } });
    expectShutdown(r, /gitlab-runner crashed 4 times \(last exit status 2\)/);
    expectNoTokenLeak(r);
    expect(r.calls.filter((c) => c.cmd === 'gitlab-runner' && c.args.startsWith('run-single'))).toHaveLength(4);
  });

  test('docker not answering: bounded retries, then power off with the reason', async () => {
    const r = await runScenario({ name: 'docker', dockerFails: true, runner: { jobs: 1 } });
    expectShutdown(r, /docker does not answer/);
    expect(r.calls.filter((c) => c.cmd === 'docker' && c.args === 'info')).toHaveLength(5);
    expect(indexOf(r.calls, 'gitlab-runner', '')).toBe(-1);
  });

  test('log format changed: a running job container makes the worker busy, its end idle again', async () => {
    const r = await runScenario({
      name: 'log-format',
      runner: { jobs: 2, unknownLogFormat: true },
      onEvent: (ev, imds) => ev === 'job-end-2' && imds.tags.set(TAGS.retire, '2030-01-01T00:00:00.000Z'),
    });
    expectShutdown(r, /retirement requested/);
    expectNoTokenLeak(r);
    expect(r.events).toEqual(['job-start-1', 'job-end-1', 'job-start-2', 'job-end-2', 'signal-QUIT', 'exit-0']);
    expect(r.output).toContain("WARNING: a job container runs but gitlab-runner's log shows no job start");
    const states = reportsSent(r.calls).map((x) => x.s);
    // ready (idle), then busy for each job: the fake finishes a job only once the worker tagged it busy.
    expect(states[0]).toBe('idle');
    expect(states.filter((v) => v === 'busy')).toHaveLength(2);
    const firstBusy = states.indexOf('busy');
    expect(states.indexOf('idle', firstBusy)).toBeGreaterThan(firstBusy); // idle again after job 1's container went
    expect(states[states.length - 2]).toBe('draining');
    expect(states[states.length - 1]).toBe('stopped');
  });

  test('gitlab-runner missing: downloaded, checked against release.sha256, then used', async () => {
    const r = await runScenario({ name: 'download', download: 'good', pool: { MaxBuilds: 1 }, runner: { jobs: 1 } });
    expectShutdown(r, /MaxBuilds \(1\) reached/);
    expectNoTokenLeak(r);
    expect(r.events.filter((e) => e.startsWith('download '))).toEqual([
      `download ${WORKER_DEFAULTS.runnerVersion}/binaries/gitlab-runner-linux-amd64`,
      `download ${WORKER_DEFAULTS.runnerVersion}/release.sha256`,
    ]);
    expect(r.events).toContain('job-end-1');
    expect(r.localBin).toEqual(['gitlab-runner']);
  });

  test('gitlab-runner download does not match release.sha256: bounded retries, not installed, power off', async () => {
    const r = await runScenario({ name: 'download-bad', download: 'bad', runner: { jobs: 1 } });
    expectShutdown(r, /gitlab-runner is missing and v[0-9.]+ could not be downloaded and verified/);
    expect(r.events.filter((e) => e.endsWith('/release.sha256'))).toHaveLength(3);
    expect(r.output).toMatch(/sha256 [0-9a-f]{64} is not the [0-9a-f]{64} in release.sha256 \(attempt 3\/3\)/);
    expect(indexOf(r.calls, 'gitlab-runner', '')).toBe(-1);
    expect(r.localBin).toEqual([]); // neither the binary nor the partial download is left
    expect(reportsSent(r.calls)).toHaveLength(0);
  });

  test('after a reboot the worker leaves at once', async () => {
    const r = await runScenario({ name: 'reboot', preexisting: ['var/lib/gsa-worker/started'], runner: { jobs: 1 } });
    expectShutdown(r, /rebooted/);
    expect(indexOf(r.calls, 'aws', '')).toBe(-1);
  });

  test('past its boot deadline (launched-at + bootTimeout) it never reports ready nor starts the runner', async () => {
    // The controller launched it an hour ago (its launched-at tag): whatever the reason it boots
    // only now, the controller no longer counts on it and may end it.
    const r = await runScenario({ name: 'late-launch', pool: { worker: { bootTimeout: 600 } }, launchedSecondsAgo: 3600, runner: { jobs: 1 } });
    expectShutdown(r, /not ready within bootTimeout \(600 s after launch\)/);
    expect(indexOf(r.calls, 'gitlab-runner', '')).toBe(-1);
    expect(reportsSent(r.calls).filter((x) => x.s !== 'stopped')).toEqual([]);
    expectNoTagCalls(r);
  });

  test('it runs by the limits the controller launched it with (its limits tag), not by older or newer values in its user data', async () => {
    // The user data says maxLifetime 24 h; the pool's config at launch said 60 s (the controller's
    // fence counts with the tag): the worker leaves by the tag.
    const r = await runScenario({
      name: 'limits-tag',
      launchedSecondsAgo: 120,
      tags: { [TAGS.limits]: 'boot=600,job=10800,life=60' },
      runner: { jobs: 3, waitSignalInJob: 1 },
    });
    expectShutdown(r, /max lifetime \(60 s after launch\) reached before its runner started/);
    // Past its lifetime at boot, it never reports ready nor starts a runner that could take a job.
    expect(indexOf(r.calls, 'gitlab-runner', 'run-single')).toBe(-1);
    expect(readyReport(r)).toBe(-1);
    // The hard power-off counts with them too: (-120 + 60 + 10800 + 600 + 59) / 60 minutes from now.
    expect(indexOf(r.calls, 'shutdown', '-h +189 ')).toBe(indexOf(r.calls, 'shutdown', ''));
    expect(r.output).toMatch(/limits tag: boot=600,job=10800,life=60/);
  });

  test('a boot that outlasts the deadline: no ready report and no runner after launched-at + bootTimeout', async () => {
    // Launched 50 s before the script starts, bootTimeout 60: 10 s left. docker answers from its
    // 4th `docker info` (retries ~2, 4, 6 s apart: at ~0, 2, 6 and 12 s), past the deadline; the
    // 3rd try (~6 s) comes before it, so the retries go on. Counted from its own start (as before)
    // the worker would have reported ready at ~12 s and taken a job.
    const r = await runScenario({
      name: 'late-ready',
      pool: { worker: { bootTimeout: 60 } },
      launchedSecondsAgo: 50,
      dockerFails: 3,
      env: { GSA_RETRY_DELAY: '2' },
      runner: { jobs: 1, idleSeconds: 0 },
    });
    expect(r.calls.filter((c) => c.cmd === 'docker' && c.args.startsWith('info')).length).toBe(4);
    expectShutdown(r, /not ready within bootTimeout \(60 s after launch\)/);
    expect(readyReport(r)).toBe(-1);
    expect(indexOf(r.calls, 'gitlab-runner', '')).toBe(-1);
  }, 60_000);

  test('a ready report that SQS refuses: the runner never starts', async () => {
    const r = await runScenario({ name: 'no-report', reportsFail: true, runner: { jobs: 1 } });
    expectShutdown(r, /cannot send its ready report to gsa-ci-test-worker-reports/);
    expect(r.calls.filter((c) => c.cmd === 'aws' && c.args.startsWith('sqs send-message')).length).toBeGreaterThanOrEqual(3);
    expect(indexOf(r.calls, 'gitlab-runner', '')).toBe(-1);
  });

  test('instance tags unreadable for TAGS_BLIND seconds mid-job: the worker stops taking jobs itself, its job finishes', async () => {
    // It could not see a retirement request, and the controller ends a worker that ignored one.
    const r = await runScenario({
      name: 'tags-blind',
      env: { GSA_TAGS_BLIND: '1' },
      runner: { jobs: 3, waitSignalInJob: 1 },
      onEvent: (ev, imds) => {
        if (ev === 'job-start-1') imds.tagsDown = true;
      },
    });
    expectShutdown(r, /instance tags unreadable for \d+ s/);
    expect(r.events).toEqual(['job-start-1', 'signal-QUIT', 'job-end-1', 'exit-0']);
    const reports = reportsSent(r.calls);
    expect(reports.find((x) => x.s === 'draining')?.w).toMatch(/instance tags unreadable/);
    expect(reports[reports.length - 1].s).toBe('stopped');
  });

  test('heartbeat: an idle worker repeats its state, so a lost report is repaired', async () => {
    const r = await runScenario({
      name: 'heartbeat',
      env: { GSA_HEARTBEAT: '1' },
      runner: { jobs: 1, idleSeconds: 4 },
      onEvent: (ev, imds) => ev === 'job-end-1' && setTimeout(() => imds.tags.set(TAGS.retire, '2030-01-01T00:00:00.000Z'), 3000),
    });
    expectShutdown(r, /retirement requested/);
    const reports = reportsSent(r.calls);
    const afterJob = reports.slice(reports.findIndex((x) => x.s === 'busy') + 1);
    expect(afterJob.filter((x) => x.s === 'idle').length).toBeGreaterThanOrEqual(3);
    expect(reports.map((x) => x.q)).toEqual(reports.map((_, k) => k + 1));
    expect(new Set(afterJob.filter((x) => x.s === 'idle').map((x) => x.is)).size).toBe(1); // idle since the job ended, not since each heartbeat
  });
});
