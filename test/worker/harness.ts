/**
 * Runs the rendered user data for real under bash, in a sandbox:
 *  - fake `aws`, `docker`, `gitlab-runner`, `shutdown`, `systemctl` on PATH (each logs its argv to
 *    calls.log and its environment to env.log);
 *  - a stand-in on 127.0.0.1 (free port) for IMDSv2 (token, instance-id, region, spot notice,
 *    instance tags) and for GitLab's POST /api/v4/runners/verify; the fakes tell it what they do
 *    through POST /_test/event/<name>, so a scenario reacts to events, never to timing;
 *  - GSA_ROOT points the script's files into a temp dir; GSA_POLL and friends shorten the waits.
 * Everything it starts is stopped by its own PID / process group.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { parseConfig, type Config } from '../../lib/config';
import { renderImageBuildScript, renderUserData, WORKER_DEFAULTS } from '../../lib/worker/userdata';
import { TAGS } from '../../lib/controller/tags';

export const TOKEN = 'glrt-t3_SECRETrunnerTOKEN1234567';
export const INSTANCE_ID = 'i-0fa1afe1c0ffee000';
const RUNNER_VERSION = WORKER_DEFAULTS.runnerVersion;

export interface RunnerScenario {
  /** Jobs the fake GitLab hands out. */
  jobs: number;
  /** Job number (1-based) that waits for SIGQUIT or SIGTERM before it completes. */
  waitSignalInJob?: number;
  /** Job number that ignores SIGQUIT and runs until SIGTERM aborts it. */
  untilTermInJob?: number;
  /** Exit with status 2 at once, every time it is started. */
  crash?: boolean;
  /** Seconds the fake idles after its jobs before it exits as --wait-timeout would (default 30). */
  idleSeconds?: number;
  /** Print the whole runner token in its log (a runner bug, or a debug log level): the shipper must mask it. */
  leakToken?: boolean;
  /**
   * Log job start/end in words the worker does not know (a changed log format); each job then
   * runs until the worker has tagged itself busy (from `docker ps`, its cross-check), and the next
   * starts once it has tagged itself idle again.
   */
  unknownLogFormat?: boolean;
}

export interface Scenario {
  name: string;
  /** Pool settings merged into the test pool. */
  pool?: Record<string, unknown>;
  /** Deployment-level settings merged into the test config (workerLogRetentionDays ...). */
  config?: Record<string, unknown>;
  runner: RunnerScenario;
  /** The SSM parameter holds the token (default true). */
  tokenInSsm?: boolean;
  /** The token GitLab accepts (default TOKEN). */
  gitlabAccepts?: string;
  /** Called for every event the fakes report; may change IMDS state. */
  onEvent?: (event: string, imds: ImdsState) => void;
  /** Files created under the sandboxed root before the run. */
  preexisting?: string[];
  env?: Record<string, string>;
  /** Leave config.region out, so the worker reads the region from IMDS. */
  noRegion?: boolean;
  /** `docker info` fails: always (true), or its first N calls (docker answers late). */
  dockerFails?: boolean | number;
  /** SSM parameters besides the token (job secrets), by name. */
  ssm?: Record<string, string>;
  /** Files under the sandboxed root to read into RunResult.files after the run. */
  collect?: string[];
  /** Seconds before the script starts that the controller launched the instance (its launched-at tag); default 5. */
  launchedSecondsAgo?: number;
  /** Instance tags besides the controller's launch tags (as IMDS shows them), e.g. `limits`. */
  tags?: Record<string, string>;
  /** `aws sqs send-message` fails (the report queue is unreachable or the role may not send). */
  reportsFail?: boolean;
  /**
   * gitlab-runner is not installed: the worker downloads it from the stand-in (GSA_RUNNER_DOWNLOADS),
   * which serves the fake runner and a release.sha256 that matches it, or not when 'bad'.
   */
  download?: 'good' | 'bad';
  /** A `snap` command exists (Ubuntu): a fake that logs its calls. */
  snap?: boolean;
  /** The aws command reads its stdin to the end (as a wrapper or a prompting credential process may). */
  awsReadsStdin?: boolean;
  /**
   * A pre-built worker image (lib/deploy/image.ts): its marker file, and gitlab-runner baked into
   * /usr/local/bin (reporting `runner`, default the pinned release) instead of on PATH.
   */
  prebuilt?: { runner?: string; marker?: string };
  /** Run the image build (`build-image`, renderImageBuildScript) instead of a boot. */
  buildImage?: boolean;
  /** The kernel's boot time (/proc/stat btime), seconds before the script starts. */
  kernelBootedSecondsAgo?: number;
  /** `aws logs ...` fails (CloudWatch Logs unreachable, or the role may not write). */
  logsFail?: boolean;
  /** The worker's primary private IPv4 in IMDS (default 10.0.1.23; null: none). */
  localIpv4?: string | null;
}

export interface ImdsState {
  tags: Map<string, string>;
  spotAction?: string;
  /** Instance tags cannot be read (tags/instance answers 500). */
  tagsDown?: boolean;
}

export interface Call {
  cmd: string;
  args: string;
}

export interface RunResult {
  exitCode: number | null;
  output: string;
  calls: Call[];
  /** Every fake's environment, concatenated. */
  envDump: string;
  events: string[];
  /** Bodies GitLab's verify endpoint received. */
  verifyBodies: string[];
  userData: string;
  /** What the fake runner found: modes of config.toml and its directory, token present in it. */
  runnerSaw: string;
  root: string;
  /** Files in the sandbox's /usr/local/bin after the run (where a downloaded gitlab-runner goes). */
  localBin: string[];
  /** The config.toml gitlab-runner was started with ('' if it never started). */
  runnerConfig: string;
  /** Scenario.collect files that exist after the run. */
  files: Record<string, string>;
  /** The log events the worker shipped to CloudWatch Logs (put-log-events batches, in order). */
  logEvents: { timestamp: number; message: string }[];
}

function fakeScripts(fake: string, server: string): Record<string, string> {
  const log = (name: string) => `printf '%s\\t%s\\n' ${name} "$*" >>${fake}/calls.log
{ echo "=== ${name} $$"; env; } >>${fake}/env.log`;
  return {
    aws: `#!/bin/bash
${log('aws')}
[ -f ${fake}/aws.reads-stdin ] && cat >/dev/null
case "$1 $2" in
  "sqs get-queue-url")
    echo "https://sqs.eu-west-1.amazonaws.com/123456789012/gsa-reports"; exit 0 ;;
  "sqs send-message")
    [ -f ${fake}/sqs.fail ] && { echo "An error occurred (AccessDenied) when calling the SendMessage operation" >&2; exit 254; }
    exit 0 ;;
  "--region "*)
    # The log shipper: aws --region R logs create-log-stream | put-log-events --log-events file://BATCH
    [ -f ${fake}/logs.fail ] && { echo "An error occurred (AccessDeniedException) when calling the $4 operation" >&2; exit 254; }
    if [ "$4" = put-log-events ]; then
      f=''; prev=''; for a in "$@"; do [ "$prev" = --log-events ] && f=\${a#file://}; prev=$a; done
      { cat "$f"; echo; } >>${fake}/log-batches
    fi
    exit 0 ;;
  "ssm get-parameter")
    # Job secrets (Scenario.ssm) by name; any other name is the runner token.
    name=''; prev=''; for a in "$@"; do [ "$prev" = --name ] && name=$a; prev=$a; done
    f=${fake}/ssm/$(printf '%s' "$name" | tr / _)
    if [ -f "$f" ]; then cat "$f"; echo; exit 0; fi
    if [[ $name == */runner-token/* || $name == */tokens/* ]] && [ -f ${fake}/token ]; then cat ${fake}/token; echo; exit 0; fi
    echo "An error occurred (ParameterNotFound) when calling the GetParameter operation: " >&2
    exit 254 ;;
esac
exit 0
`,
    docker: `#!/bin/bash
${log('docker')}
if [ "$1" = info ] && [ -f ${fake}/docker.fail ]; then
  n=$(cat ${fake}/docker.fail)
  [ -z "$n" ] && exit 1
  [ "$n" -gt 0 ] && echo $((n - 1)) >${fake}/docker.fail && exit 1
fi
# A job's containers exist while the fake runner runs a job.
[ "$1" = ps ] && [ -f ${fake}/job.running ] && echo 0123456789ab
exit 0
`,
    shutdown: `#!/bin/bash
${log('shutdown')}
exit 0
`,
    snap: `#!/bin/bash
${log('snap')}
exit 0
`,
    'update-ca-trust': `#!/bin/bash
${log('update-ca-trust')}
exit 0
`,
    'update-ca-certificates': `#!/bin/bash
${log('update-ca-certificates')}
exit 0
`,
    systemctl: `#!/bin/bash
${log('systemctl')}
# "start" runs the unit's ExecStart in the foreground, under the sandboxed root.
if [ "$1" = start ] && [[ " $* " == *" gsa-worker.service "* ]]; then
  exe=$(sed -n 's/^ExecStart=//p' "$GSA_ROOT/etc/systemd/system/gsa-worker.service")
  # shellcheck disable=SC2086
  set -- $exe
  prog=$1; shift
  exec "$GSA_ROOT$prog" "$@"
fi
exit 0
`,
    'gitlab-runner': `#!/bin/bash
${log('gitlab-runner')}
[ "$1" = --version ] && { printf 'Version:      %s\\nGit revision: fake\\n' "\${FAKE_RUNNER_VERSION:-${RUNNER_VERSION.slice(1)}}"; exit 0; }
. ${fake}/runner.conf
ev() { printf '%s\\t%s\\n' gitlab-runner "$1" >>${fake}/calls.log; curl -sf -X POST "${server}/_test/event/$1" >/dev/null; }
quit=0 term=0
trap 'quit=1; ev signal-QUIT' QUIT
trap 'term=1; ev signal-TERM' TERM
conf='' max=0 wt=0
while [ $# -gt 0 ]; do case $1 in -c) conf=$2; shift ;; --max-builds) max=$2; shift ;; --wait-timeout) wt=$2; shift ;; esac; shift; done
tok=$(cat ${fake}/token 2>/dev/null)
has=no; [ -n "$tok" ] && [[ $(cat "$conf") == *"token = \\"$tok\\""* ]] && has=yes
cp "$conf" ${fake}/runner-config.toml
echo "conf=$(stat -c %a "$conf") dir=$(stat -c %a "$(dirname "$conf")") token-in-conf=$has $(grep -o 'BucketLocation = .*' "$conf")" >${fake}/runner-saw
short=\${tok:5:9}
echo "Runtime platform                                    arch=amd64 os=linux pid=$$ revision=fake version=17.9.0"
if [ "\${CRASH:-0}" = 1 ]; then echo "FATAL: fake crash"; ev exit-2; exit 2; fi
echo "Starting runner for ${server} with token $short ..."
[ "\${LEAK_TOKEN:-0}" = 1 ] && echo "DEBUG config token=$tok"
n=0
while [ $quit = 0 ] && [ $term = 0 ] && [ $n -lt "$JOBS" ] && { [ "$max" = 0 ] || [ $n -lt "$max" ]; }; do
  n=$((n + 1)); id=$((1000 + n))
  if [ "\${UNKNOWN_LOG_FORMAT:-0}" = 1 ]; then echo "Picked up job $id (a log line in a new format)"; else
  echo "Checking for jobs... received                       job=$id repo_url=https://gitlab.example.com/g/p.git runner=$short"; fi
  touch ${fake}/job.running
  ev job-start-$n
  docker run --rm --label com.gitlab.gitlab-runner.job.id=$id alpine:latest sh -c 'make test'
  waited=0
  if [ "\${UNKNOWN_LOG_FORMAT:-0}" = 1 ]; then
    until [ "$(grep -c '"s":"busy"' ${fake}/calls.log)" -ge $n ] || [ $waited -ge 400 ]; do sleep 0.05; waited=$((waited + 1)); done
    waited=0
  fi
  if [ "\${WAIT_SIGNAL_IN_JOB:-0}" = $n ]; then
    while [ $quit = 0 ] && [ $term = 0 ] && [ $waited -lt 400 ]; do sleep 0.05; waited=$((waited + 1)); done
  fi
  if [ "\${UNTIL_TERM_IN_JOB:-0}" = $n ]; then
    while [ $term = 0 ] && [ $waited -lt 400 ]; do sleep 0.05; waited=$((waited + 1)); done
  fi
  if [ $term = 1 ]; then
    rm -f ${fake}/job.running
    echo "Job failed: aborted: terminated                     duration_s=1.0 job=$id project=1 runner=$short"
    ev job-aborted-$n; ev exit-1; exit 1
  fi
  rm -f ${fake}/job.running
  if [ "\${UNKNOWN_LOG_FORMAT:-0}" = 1 ]; then
    # Wait until the worker saw the containers go (idle reports: one at ready, one per job).
    until [ "$(grep -c '"s":"idle"' ${fake}/calls.log)" -gt $n ] || [ $waited -ge 400 ]; do sleep 0.05; waited=$((waited + 1)); done
    echo "Finished job $id (a log line in a new format)"; else
  echo "Job succeeded                                       duration_s=0.1 job=$id project=1 runner=$short"; fi
  ev job-end-$n
done
if [ "$max" != 0 ] && [ $n -ge "$max" ]; then echo "This runner has processed its build limit, so now exiting"; ev exit-0; exit 0; fi
waited=0
while [ $quit = 0 ] && [ $term = 0 ] && [ $waited -lt $((IDLE_SECONDS * 20)) ]; do sleep 0.05; waited=$((waited + 1)); done
[ $quit = 1 ] || [ $term = 1 ] || echo "This runner has not received a job in $wt seconds, so now exiting"
ev exit-0
exit 0
`,
  };
}

function testConfig(gitlabUrl: string, pool: Record<string, unknown> = {}, noRegion = false, extra: Record<string, unknown> = {}): Config {
  return parseConfig(
    JSON.stringify({
      ...extra,
      deployment: 'ci',
      ...(noRegion ? {} : { region: 'eu-west-1' }),
      gitlab: { url: gitlabUrl },
      pools: [
        {
          name: 'default',
          runUntagged: true,
          IdleTime: 600,
          ...pool,
          worker: {
            instanceTypes: ['m6i.large'],
            subnets: ['subnet-0abc123'],
            ami: 'ami-0123456789abcdef0',
            cache: { bucketName: 'ci-cache' },
            ...((pool.worker as object) ?? {}),
          },
        },
      ],
    }),
    'harness',
  );
}

async function startStandIn(
  scenario: Scenario,
  events: string[],
  verifyBodies: string[],
  downloads: Map<string, string>,
): Promise<{ server: Server; url: string; state: ImdsState }> {
  const launchedAt = new Date(Date.now() - (scenario.launchedSecondsAgo ?? 5) * 1000).toISOString();
  const state: ImdsState = { tags: new Map([[TAGS.pool, 'default'], [TAGS.deployment, 'ci'], [TAGS.launchedAt, launchedAt], ['Name', 'ci-test-default'], ...Object.entries(scenario.tags ?? {})]) };
  const imdsToken = 'imds-session-token-1';
  const accepts = scenario.gitlabAccepts ?? TOKEN;
  const handler = (req: IncomingMessage, res: ServerResponse, body: string) => {
    const url = req.url ?? '';
    const send = (code: number, text = '') => {
      res.writeHead(code, { 'Content-Type': 'text/plain' });
      res.end(text);
    };
    if (req.method === 'PUT' && url === '/latest/api/token') {
      return req.headers['x-aws-ec2-metadata-token-ttl-seconds'] ? send(200, imdsToken) : send(400);
    }
    if (req.method === 'GET' && url.startsWith('/latest/meta-data/')) {
      if (req.headers['x-aws-ec2-metadata-token'] !== imdsToken) return send(401);
      const path = decodeURIComponent(url.slice('/latest/meta-data/'.length));
      if (path === 'instance-id') return send(200, INSTANCE_ID);
      if (path === 'placement/region') return send(200, 'eu-west-1');
      if (path === 'local-ipv4') return scenario.localIpv4 === null ? send(404) : send(200, scenario.localIpv4 ?? '10.0.1.23');
      if (path === 'spot/instance-action') return state.spotAction ? send(200, state.spotAction) : send(404);
      if (path.startsWith('tags/instance') && state.tagsDown) return send(500);
      if (path === 'tags/instance') return send(200, [...state.tags.keys()].join('\n'));
      if (path.startsWith('tags/instance/')) {
        const v = state.tags.get(path.slice('tags/instance/'.length));
        return v === undefined ? send(404) : send(200, v);
      }
      return send(404);
    }
    if (req.method === 'POST' && url === '/api/v4/runners/verify') {
      verifyBodies.push(body);
      let token: unknown;
      try {
        token = (JSON.parse(body) as { token?: unknown }).token;
      } catch {
        return send(400);
      }
      return token === accepts ? send(200, '{"id":1}') : send(403, '{"message":"403 Forbidden"}');
    }
    if (req.method === 'GET' && url.startsWith('/downloads/')) {
      events.push(`download ${url.slice('/downloads/'.length)}`);
      const file = downloads.get(url.slice('/downloads/'.length));
      return file === undefined ? send(404) : send(200, file);
    }
    if (req.method === 'POST' && url.startsWith('/_test/event/')) {
      const ev = url.slice('/_test/event/'.length);
      events.push(ev);
      scenario.onEvent?.(ev, state);
      return send(200);
    }
    return send(404);
  };
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => handler(req, res, body));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, state };
}

export async function runScenario(scenario: Scenario, timeoutMs = 40_000): Promise<RunResult> {
  const dir = mkdtempSync(join(tmpdir(), `gsa-worker-${scenario.name}-`));
  const fake = join(dir, 'fake');
  const bin = join(dir, 'bin');
  const root = join(dir, 'root');
  for (const d of [fake, bin, root]) mkdirSync(d, { recursive: true });
  const events: string[] = [];
  const verifyBodies: string[] = [];
  const downloads = new Map<string, string>();
  const { server, url } = await startStandIn(scenario, events, verifyBodies, downloads);
  try {
    for (const [name, text] of Object.entries(fakeScripts(fake, url))) {
      if (name === 'snap' && !scenario.snap) continue;
      if (name === 'gitlab-runner' && scenario.prebuilt && !scenario.download) continue;
      if (name === 'gitlab-runner' && scenario.download) {
        // Served by the stand-in instead, as GitLab's bucket lays a release out.
        const sha = createHash('sha256').update(scenario.download === 'good' ? text : `${text}# tampered\n`).digest('hex');
        const other = createHash('sha256').update('other').digest('hex');
        for (const arch of ['amd64', 'arm64']) downloads.set(`${RUNNER_VERSION}/binaries/gitlab-runner-linux-${arch}`, text);
        downloads.set(
          `${RUNNER_VERSION}/release.sha256`,
          [`${other}  binaries/gitlab-runner-linux-amd64-fips`, `${sha}  binaries/gitlab-runner-linux-amd64`, `${sha}  binaries/gitlab-runner-linux-arm64`, `${other}  deb/gitlab-runner_amd64.deb`, ''].join('\n'),
        );
        continue;
      }
      writeFileSync(join(bin, name), text);
      chmodSync(join(bin, name), 0o755);
    }
    writeFileSync(join(fake, 'calls.log'), '');
    writeFileSync(join(fake, 'env.log'), '');
    if (scenario.dockerFails) writeFileSync(join(fake, 'docker.fail'), scenario.dockerFails === true ? '' : String(scenario.dockerFails));
    if (scenario.awsReadsStdin) writeFileSync(join(fake, 'aws.reads-stdin'), '');
    if (scenario.reportsFail) writeFileSync(join(fake, 'sqs.fail'), '');
    if (scenario.logsFail) writeFileSync(join(fake, 'logs.fail'), '');
    if (scenario.tokenInSsm ?? true) writeFileSync(join(fake, 'token'), TOKEN);
    if (scenario.prebuilt) {
      // Baked into the image: in the root's /usr/local/bin (where a replacement is installed), not on PATH.
      const runner = scenario.prebuilt.runner ?? RUNNER_VERSION;
      const text = fakeScripts(fake, url)['gitlab-runner'].replace('#!/bin/bash\n', `#!/bin/bash\nFAKE_RUNNER_VERSION=${runner.slice(1)}\n`);
      mkdirSync(join(root, 'usr/local/bin'), { recursive: true });
      writeFileSync(join(root, 'usr/local/bin/gitlab-runner'), text);
      chmodSync(join(root, 'usr/local/bin/gitlab-runner'), 0o755);
      mkdirSync(join(root, 'etc'), { recursive: true });
      writeFileSync(
        join(root, 'etc/gsa-worker-image'),
        scenario.prebuilt.marker ?? `format=1\npool=default\nrunner=${runner}\nimages=alpine:latest registry.gitlab.com/gitlab-org/gitlab-runner/gitlab-runner-helper:x86_64-${runner}\nbuilt=2030-01-01T00:00:00Z\n`,
      );
    }
    if (scenario.kernelBootedSecondsAgo !== undefined) {
      mkdirSync(join(root, 'proc'), { recursive: true });
      writeFileSync(join(root, 'proc/stat'), `cpu  1 2 3 4\nbtime ${Math.floor(Date.now() / 1000) - scenario.kernelBootedSecondsAgo}\nprocesses 42\n`);
    }
    mkdirSync(join(fake, 'ssm'));
    for (const [name, value] of Object.entries(scenario.ssm ?? {})) writeFileSync(join(fake, 'ssm', name.replace(/\//g, '_')), value);
    const r = scenario.runner;
    writeFileSync(
      join(fake, 'runner.conf'),
      `JOBS=${r.jobs}\nWAIT_SIGNAL_IN_JOB=${r.waitSignalInJob ?? 0}\nUNTIL_TERM_IN_JOB=${r.untilTermInJob ?? 0}\nCRASH=${r.crash ? 1 : 0}\nIDLE_SECONDS=${r.idleSeconds ?? 30}\nUNKNOWN_LOG_FORMAT=${r.unknownLogFormat ? 1 : 0}\nLEAK_TOKEN=${r.leakToken ? 1 : 0}\n`,
    );
    for (const p of scenario.preexisting ?? []) {
      mkdirSync(join(root, p, '..'), { recursive: true });
      writeFileSync(join(root, p), 'x\n');
    }
    const config = testConfig(url, scenario.pool, scenario.noRegion, scenario.config);
    const userData = scenario.buildImage ? renderImageBuildScript({ config, pool: config.pools[0], stage: 'test' }) : renderUserData({ config, pool: config.pools[0], stage: 'test' });
    const script = join(dir, 'user-data');
    writeFileSync(script, userData);

    const child = spawn('bash', scenario.buildImage ? [script, 'build-image'] : [script], {
      cwd: dir,
      detached: true, // its own process group, so leftovers are stopped by our own PID
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        PATH: `${bin}:${process.env.PATH}`,
        HOME: dir,
        GSA_ROOT: root,
        GSA_IMDS_URL: url,
        GSA_POLL: '0.1',
        GSA_RETRY_DELAY: '0',
        GSA_KILL_GRACE: '2',
        GSA_RUNNER_DOWNLOADS: `${url}/downloads`,
        GSA_LOG_INTERVAL: '0.3',
        GSA_LOG_SPREAD: '0',
        GSA_LOG_FLUSH_WAIT: '5',
        ...scenario.env,
      },
    });
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr.on('data', (c: Buffer) => (output += c.toString()));
    const exitCode = await new Promise<number | null>((resolve) => {
      const timer = setTimeout(() => {
        output += '\n[harness] timed out; killing the process group\n';
        resolve(null);
      }, timeoutMs);
      child.on('exit', (code) => {
        clearTimeout(timer);
        resolve(code);
      });
    });
    try {
      process.kill(-child.pid!, 'SIGKILL'); // leftovers (a bug), by our own process group id
    } catch {
      /* ESRCH: nothing left, as it should be */
    }
    const calls = readFileSync(join(fake, 'calls.log'), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => {
        const i = l.indexOf('\t');
        return { cmd: l.slice(0, i), args: l.slice(i + 1) };
      });
    const runnerSawPath = join(fake, 'runner-saw');
    return {
      exitCode,
      output,
      calls,
      envDump: readFileSync(join(fake, 'env.log'), 'utf8'),
      events,
      verifyBodies,
      userData,
      runnerSaw: existsSync(runnerSawPath) ? readFileSync(runnerSawPath, 'utf8') : '',
      root,
      localBin: existsSync(join(root, 'usr/local/bin')) ? readdirSync(join(root, 'usr/local/bin')).sort() : [],
      runnerConfig: existsSync(join(fake, 'runner-config.toml')) ? readFileSync(join(fake, 'runner-config.toml'), 'utf8') : '',
      files: Object.fromEntries((scenario.collect ?? []).filter((p) => existsSync(join(root, p))).map((p) => [p, readFileSync(join(root, p), 'utf8')])),
      logEvents: existsSync(join(fake, 'log-batches'))
        ? readFileSync(join(fake, 'log-batches'), 'utf8')
            .split('\n')
            .filter(Boolean)
            .flatMap((l) => JSON.parse(l) as { timestamp: number; message: string }[])
        : [],
    };
  } finally {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The reports the worker sent (`aws sqs send-message`), decoded, in order. */
export function reportsSent(calls: Call[]): { s: string; q: number; n: number; t: number; r?: number; is?: number; rt?: string; w?: string; i: string }[] {
  return calls
    .filter((c) => c.cmd === 'aws' && c.args.startsWith('sqs send-message'))
    .map((c) => JSON.parse(c.args.slice(c.args.indexOf('--message-body ') + '--message-body '.length)));
}

/** Index of the first call matching, or -1. */
export function indexOf(calls: Call[], cmd: string, argsPart: string | RegExp, from = 0): number {
  for (let i = from; i < calls.length; i++) {
    const c = calls[i];
    if (c.cmd === cmd && (typeof argsPart === 'string' ? c.args.includes(argsPart) : argsPart.test(c.args))) return i;
  }
  return -1;
}
