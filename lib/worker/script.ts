/**
 * The worker's shell program: the part of the user data that is the same for every pool.
 * renderUserData (userdata.ts) puts the pool's values in front of it as shell variables.
 *
 * It is a template literal, so the shell's `\${` and backslashes are escaped here; read the
 * rendered script instead (`gitlab-spot-autoscaler user-data --config FILE --pool NAME`), which
 * shellcheck checks in test/worker. Lines starting with "##" are dropped from the rendered script,
 * the image build's code ("##@build" to "##@end") from the user data, and the cache-bucket tag
 * read ("##@cache-tag" to "##@end") from scripts that do not need it (userdata.ts scriptBody).
 */
import { DEPLOYMENT_CACHE_PLACEHOLDER } from './runner-config';

export const WORKER_SCRIPT = `## ---- everything below is the same for every pool (lib/worker/script.ts) ----
## Lines starting with "##" are rationale for maintainers; the renderer drops them to keep the user
## data well under EC2's 16 KB limit. docs/worker.md has the whole design.
set -uo pipefail
umask 077
export TZ=UTC LC_ALL=C
PATH=$PATH:\${GSA_ROOT:-}/usr/local/bin:/snap/bin

## GSA_* variables exist for the test harness only (test/worker): a sandboxed root, a local
## IMDS stand-in and short delays. Nothing sets them on an instance.
ROOT=\${GSA_ROOT:-}
IMDS=\${GSA_IMDS_URL:-http://169.254.169.254}
POLL=\${GSA_POLL:-5}
RETRY_DELAY=\${GSA_RETRY_DELAY:-5}
INTERRUPT_MARGIN=\${GSA_INTERRUPT_MARGIN:-20}
KILL_GRACE=\${GSA_KILL_GRACE:-30}
## A worker that cannot read its instance tags would not see a retirement request, yet the
## controller ends a worker that ignored one (jobTimeout + 10 min after it): past this many
## seconds without its tags it stops taking jobs itself.
TAGS_BLIND=\${GSA_TAGS_BLIND:-300}
HEARTBEAT=\${GSA_HEARTBEAT:-$HEARTBEAT}
DOWNLOADS=\${GSA_RUNNER_DOWNLOADS:-https://gitlab-runner-downloads.s3.amazonaws.com}
MAX_RESTARTS=3
SELF=$ROOT/usr/local/sbin/gsa-worker
UNIT=$ROOT/etc/systemd/system/gsa-worker.service
CONF_DIR=$ROOT/etc/gsa-worker
CONF=$CONF_DIR/config.toml
STATE_DIR=$ROOT/var/lib/gsa-worker
RUN=$ROOT/run/gsa-worker
## Written by "gsa-worker build-image" into a pre-built worker image (lib/deploy/image.ts); its
## presence is how a boot knows there is nothing to install.
IMAGE_MARKER=$ROOT/etc/gsa-worker-image
runner_pid='' monitor_pid='' FINISHING='' IMDS_TOKEN='' IMDS_TOKEN_AT=0 REPORT_URL='' INSTANCE_ID=''
IMAGE_KIND=base BUILDING='' LAUNCHED_MS=0
SPOOL=$STATE_DIR/log.spool shipper_pid='' LOG_STREAM=''

now() { printf '%(%s)T' -1; }
## Epoch milliseconds, for the boot timeline: bash 5's EPOCHREALTIME (AL2023, Ubuntu 22.04+), else date.
now_ms() {
  if [ -n "\${EPOCHREALTIME:-}" ]; then
    local t=\${EPOCHREALTIME/./}
    printf '%s' "\${t:0:13}"
  else
    date +%s%3N
  fi
}
iso() { printf '%(%Y-%m-%dT%H:%M:%SZ)T' -1; }
## Every line the worker prints also goes to the spool the log shipper reads (ship_logs): the
## console and CloudWatch Logs get the same lines, nothing more.
log() {
  local line
  printf -v line '%s gsa-worker: %s' "$(iso)" "$*"
  printf '%s\\n' "$line" >&2
  spool "$line"
}
## spool LINE: "<epoch ms><TAB><line>" (bash 5's EPOCHREALTIME gives the milliseconds).
spool() {
  [ -n "\${LOG_GROUP:-}" ] && [ -d "$STATE_DIR" ] || return 0
  local t=\${EPOCHREALTIME:-}
  t=\${t/./}
  printf '%s\\t%s\\n' "\${t:0:13}" "$1" >>"$SPOOL" 2>/dev/null
  return 0
}

## The only way out. The launch template sets InstanceInitiatedShutdownBehavior=terminate, so a
## power-off is a termination: nothing is left behind and billing stops.
## Its last report says "stopped": the runner is gone, no job runs and none can start, so the
## controller may end the instance if the power-off fails.
finish() {
  [ -n "$FINISHING" ] && return 0
  FINISHING=1
  ## Building an image (build-image): the build fails, the build instance stays up for Image Builder.
  [ -n "$BUILDING" ] && { log "image build failed: $1"; exit 1; }
  log "shutting down: $1"
  if [ -n "$runner_pid" ] && kill -0 "$runner_pid" 2>/dev/null; then kill -KILL "$runner_pid" 2>/dev/null; fi
  [ -n "$monitor_pid" ] && kill "$monitor_pid" 2>/dev/null
  rm -f "$CONF"
  if [ -n "$REPORT_URL" ] && [ -d "$RUN" ]; then
    touch "$RUN/stopped"
    printf '%s' "$1" >"$RUN/why"
    report 1
  fi
  flush_logs
  shutdown -h now "gsa-worker: $1"
  exit 0
}

## ---- logs to CloudWatch Logs (docs/worker.md, "Logs") ---------------------------------------
## One stream per worker, "<instance id>/<primary private IPv4>", in its pool's group: the IAM grant
## pins the address part to the caller's own (aws:EC2InstanceSourcePrivateIPv4), so no worker writes
## another's stream. A small shipper, not the CloudWatch agent: stock AMIs lack the agent, and the
## last lines (why the worker shut down) must be sent before the power-off, which this controls.
## It reads only the spool, which holds exactly the console lines; it starts before the token is
## read, so neither it nor its aws calls ever hold the token; and it masks token-shaped strings. At
## most one PutLogEvents per LOG_INTERVAL and only with new lines (the account's PutLogEvents quota
## is shared by every worker), batches within PutLogEvents' limits, at most LOG_CAP bytes of runner
## output per boot. Best effort: a worker never waits on CloudWatch Logs longer than LOG_FLUSH_WAIT.
## CreateLogStream is 50 TPS per account and region, shared with every other user of the account
## (an ECS task whose stream cannot be created does not start): the first call waits a random
## 0-LOG_SPREAD s (not when the worker is finishing), so a pass that launches 1,000 workers asks
## about 17 a second, and retries back off with jitter, so a throttled cohort does not retry in step.
LOG_INTERVAL=\${GSA_LOG_INTERVAL:-15}
LOG_FLUSH_WAIT=\${GSA_LOG_FLUSH_WAIT:-20}
LOG_SPREAD=\${GSA_LOG_SPREAD:-60}
SHIPPER='
import json, os, random, re, subprocess, sys, time
aws_cli, spool, group, stream, region, final, batch, interval, cap, spread = sys.argv[1:11]
interval, cap = float(interval), int(cap)
first = time.time() + random.uniform(0, float(spread))
while time.time() < first and not os.path.exists(final):
    time.sleep(0.2)
mask = re.compile(r"\\b((?:glrt|glpat|gldt|glcbt|glptt|glsoat|glrtr|glimt|glagent|glwt|glffct|gloas)-)[A-Za-z0-9_.=-]{8,}|\\bGR1348941[A-Za-z0-9_-]{8,}|\\b(?:AKIA|ASIA)[A-Z0-9]{16}\\b")
pos = sent = last = 0
created = noted = False
wait = interval
def aws(*a):
    try:
        r = subprocess.run([aws_cli, "--region", region, "logs", *a], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=30)
        return r.returncode, r.stderr.decode(errors="replace")[:300]
    except Exception as e:
        return 1, str(e)[:300]
def put(events):
    with open(batch, "w") as f:
        json.dump(events, f)
    return aws("put-log-events", "--log-group-name", group, "--log-stream-name", stream, "--log-events", "file://" + batch)
while True:
    done = os.path.exists(final)
    events, size, end, last0 = [], 0, pos, last
    try:
        with open(spool, "rb") as f:
            f.seek(pos)
            data = f.read(4 << 20)
    except OSError:
        data = b""
    lines = data.split(b"\\n")
    tail = lines.pop()
    if not lines and len(tail) >= 4 << 20:
        lines, tail = [tail], None
    for raw in lines:
        step = len(raw) + (0 if tail is None else 1)
        end += step
        t, _, msg = raw.decode(errors="replace").partition("\\t")
        msg = mask.sub(lambda m: (m.group(1) or m.group(0)[:4]) + "[MASKED]", msg)[:16384]
        if sent + size > cap and " gsa-worker: " not in msg:
            if noted:
                continue
            noted, msg = True, "gsa-worker log shipper: %d bytes shipped; from here on only lines of gsa-worker itself" % (sent + size)
        t = max(int(t) if t.isdigit() else int(time.time() * 1000), last)
        if len(events) >= 10000 or size + len(msg.encode()) + 26 > 1000000 or events and t - events[0]["timestamp"] > 82800000:
            end -= step
            break
        last = t
        events.append({"timestamp": t, "message": msg or " "})
        size += len(msg.encode()) + 26
    ok = True
    if events:
        if not created:
            rc, err = aws("create-log-stream", "--log-group-name", group, "--log-stream-name", stream)
            created = rc == 0 or "ResourceAlreadyExists" in err
        rc, err = put(events) if created else (1, err)
        ok = rc == 0
        if ok:
            pos, sent = end, sent + size
        else:
            last = last0
            print("gsa-worker: shipping the log to %s failed: %s" % (group, err.strip()), file=sys.stderr)
    elif end > pos:
        pos = end
    if done and (ok and end >= pos and not events or wait > 8 * interval):
        sys.exit(0 if ok else 1)
    wait = interval if ok else min(wait * 2, 300)
    time.sleep(0.2 if done else wait if ok else random.uniform(wait / 2, wait))
'

## Starts the shipper once the AWS CLI, python3 (cloud-init is a Python program), the region, the
## instance id and its address are known; before the token is read.
start_shipper() {
  [ -n "\${LOG_GROUP:-}" ] && [ -z "$shipper_pid" ] && [ -n "$INSTANCE_ID" ] && [ -n "$REGION" ] || return 0
  command -v aws >/dev/null && command -v python3 >/dev/null || return 0
  local ip
  if ! imds_refresh || ! ip=$(imds local-ipv4); then
    log "no primary private IPv4 in instance metadata: this log is not shipped to CloudWatch Logs"
    LOG_GROUP=''
    return 0
  fi
  LOG_STREAM=$INSTANCE_ID/$ip
  ## The subshell marks the end (a process that exited stays visible to kill -0 until it is reaped).
  (
    python3 -c "$SHIPPER" "$(command -v aws)" "$SPOOL" "$LOG_GROUP" "$LOG_STREAM" "$REGION" "$RUN/log.final" "$RUN/log.batch" "$LOG_INTERVAL" $((50 << 20)) "$LOG_SPREAD" </dev/null
    touch "$RUN/log.shipped"
  ) &
  shipper_pid=$!
  log "shipping this log to CloudWatch Logs: group $LOG_GROUP, stream $LOG_STREAM"
}

## Before the power-off: the shipper sends what is left (the reason included) and exits, or is
## stopped after LOG_FLUSH_WAIT. A worker that fails before the shipper ran starts it for this.
flush_logs() {
  [ -n "\${LOG_GROUP:-}" ] && [ -d "$RUN" ] || return 0
  start_shipper
  [ -n "$shipper_pid" ] || return 0
  touch "$RUN/log.final"
  local i
  for ((i = 0; i < LOG_FLUSH_WAIT * 10; i++)); do
    [ -e "$RUN/log.shipped" ] && break
    sleep 0.1
  done
  [ -e "$RUN/log.shipped" ] || { pkill -P "$shipper_pid"; log "the log shipper did not finish within $LOG_FLUSH_WAIT s"; }
  wait "$shipper_pid" 2>/dev/null
  shipper_pid=''
}

## retry ATTEMPTS SECONDS WHAT COMMAND...: every attempt bounded by timeout(1), backoff between
## attempts, and never past the boot deadline.
retry() {
  local n=$1 t=$2 what=$3 i
  shift 3
  for ((i = 1; i <= n; i++)); do
    timeout "$t" "$@" && return 0
    log "$what failed (attempt $i/$n)"
    [ "$(now)" -lt "$BOOT_DEADLINE" ] || break
    [ "$i" -lt "$n" ] && sleep $((RETRY_DELAY * i))
  done
  return 1
}

## IMDSv2 only (the launch template sets HttpTokens=required). Hop limit 1 keeps job containers,
## which sit one network hop further, away from the instance role.
imds_refresh() {
  local t
  t=$(now)
  [ -n "$IMDS_TOKEN" ] && [ $((t - IMDS_TOKEN_AT)) -lt 600 ] && return 0
  IMDS_TOKEN=$(curl -sf --max-time 3 -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 21600' "$IMDS/latest/api/token") || return 1
  IMDS_TOKEN_AT=$t
}
imds() { curl -sf --max-time 3 -H "X-aws-ec2-metadata-token: $IMDS_TOKEN" "$IMDS/latest/meta-data/$1"; }

## report [TRIES]: sends the worker's current state to the worker-report queue (docs/worker.md,
## "Reports"): idle, busy, draining (leaving; its runner may still finish a job) or stopped (the
## runner is gone for good). The worker never tags itself: CreateTags has one small bucket for the
## whole account. The state comes from the files under $RUN, read under a lock together with the
## next sequence number, so the newest report is always the latest truth whichever of the runner
## monitor and the watch loop sends it. Best effort, except where the caller decides.
report() {
  local body i tries=\${1:-3}
  body=$(
    exec 9>>"$RUN/report.lock" && flock 9 || exit 1
    seq=$(($(cat "$RUN/seq" 2>/dev/null || echo 0) + 1))
    echo "$seq" >"$RUN/seq"
    st=$(cat "$RUN/state")
    if [ -e "$RUN/stopped" ]; then st=stopped; elif [ -e "$RUN/draining" ]; then st=draining; elif [ "$st" = booting ]; then exit 1; fi
    printf '{"v":1,"i":"%s","q":%d,"s":"%s","n":%d,"t":%d' "$INSTANCE_ID" "$seq" "$st" "$(cat "$RUN/builds")" "$(now)"
    [ -s "$RUN/ready-at" ] && printf ',"r":%d' "$(cat "$RUN/ready-at")"
    [ "$st" = idle ] && [ -s "$RUN/idle-since" ] && printf ',"is":%d' "$(cat "$RUN/idle-since")"
    [ -s "$RUN/retire-seen" ] && printf ',"rt":"%s"' "$(tr -cd 'A-Za-z0-9:.-' <"$RUN/retire-seen" | head -c 64)"
    [ -s "$RUN/why" ] && printf ',"w":"%s"' "$(tr -cd 'A-Za-z0-9 ().,:_/+=-' <"$RUN/why" | head -c 200)"
    ## The ready report (always the first) carries the boot timeline (docs/worker.md, "Boot timeline").
    [ "$seq" = 1 ] && [ -s "$RUN/boot.json" ] && printf ',"b":%s' "$(tr -cd 'A-Za-z0-9{}:,".-' <"$RUN/boot.json" | head -c 200)"
    printf '}'
  ) || return 1
  for ((i = 1; i <= tries; i++)); do
    ## stdin from /dev/null: the runner monitor reads the runner's log on its own stdin.
    timeout 20 aws sqs send-message --region "$REGION" --queue-url "$REPORT_URL" --message-body "$body" </dev/null >/dev/null && return 0
    [ "$i" -lt "$tries" ] && sleep $((RETRY_DELAY * i))
  done
  log "could not send a report to $REPORT_QUEUE ($body)"
  return 1
}

## Reports state changes: STATE is written first, then reported (the report reads the files).
become() {
  echo "$1" >"$RUN/state"
  [ "$1" = idle ] && now >"$RUN/idle-since"
  report
}

pkg_install() {
  if command -v dnf >/dev/null; then
    retry 3 600 "dnf install $1" dnf install -y -q "$1"
  elif command -v apt-get >/dev/null; then
    ## cloud-init and unattended-upgrades may hold the dpkg lock at boot: wait for it.
    retry 3 600 "apt-get update" apt-get -o DPkg::Lock::Timeout=300 update -q &&
      retry 3 600 "apt-get install $2" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -q "$2"
  else
    return 1
  fi
}

## ---- the pool's host settings (docs/worker.md, "Before the runner starts"); each is a no-op
## when the pool does not set it.

## worker.proxy: for the worker's own downloads (package managers, curl, the AWS CLI), for
## gitlab-runner (RUNNER_ENV) and, in configure_dockerd, for image pulls. IMDS is never proxied.
RUNNER_ENV=()
apply_proxy() {
  [ -n "$PROXY_HTTP$PROXY_HTTPS" ] || return 0
  PROXY_NO=\${PROXY_NO:+$PROXY_NO,}169.254.169.254
  export http_proxy=$PROXY_HTTP HTTP_PROXY=$PROXY_HTTP https_proxy=$PROXY_HTTPS HTTPS_PROXY=$PROXY_HTTPS no_proxy=$PROXY_NO NO_PROXY=$PROXY_NO
  RUNNER_ENV=("http_proxy=$PROXY_HTTP" "HTTP_PROXY=$PROXY_HTTP" "https_proxy=$PROXY_HTTPS" "HTTPS_PROXY=$PROXY_HTTPS" "no_proxy=$PROXY_NO" "NO_PROXY=$PROXY_NO")
  ## snapd downloads for the snap command (Ubuntu installs the AWS CLI as a snap) and reads no
  ## proxy from this environment: it has its own setting.
  if command -v snap >/dev/null; then
    timeout 60 snap set system \${PROXY_HTTP:+proxy.http="$PROXY_HTTP"} \${PROXY_HTTPS:+proxy.https="$PROXY_HTTPS"} || log "could not set snapd's proxy"
  fi
  log "using proxy http=\${PROXY_HTTP:-none} https=\${PROXY_HTTPS:-none} no_proxy=$PROXY_NO"
}

## worker.caCertificate: the runner's tls-ca-file (it also hands it to jobs as CI_SERVER_TLS_CA_FILE),
## and the system trust store, so curl (the token check), docker pulls and downloads trust it too.
install_ca() {
  [ -n "$CA_PEM" ] || return 0
  local store
  { mkdir -p "$CONF_DIR" && chmod 0700 "$CONF_DIR" && printf '%s\n' "$CA_PEM" >"$CONF_DIR/ca.crt"; } || finish "cannot write $CONF_DIR/ca.crt"
  if [ -d "$ROOT/etc/pki/ca-trust/source/anchors" ]; then
    store=$ROOT/etc/pki/ca-trust/source/anchors
    install -m 0644 "$CONF_DIR/ca.crt" "$store/gsa-worker.crt" && update-ca-trust extract
  elif [ -d "$ROOT/usr/local/share/ca-certificates" ]; then
    store=$ROOT/usr/local/share/ca-certificates
    install -m 0644 "$CONF_DIR/ca.crt" "$store/gsa-worker.crt" && update-ca-certificates
  else
    false
  fi || finish "cannot add worker.caCertificate to the system trust store (update-ca-trust or update-ca-certificates)"
  log "added worker.caCertificate to $store"
}

## worker.userScript: run as root before docker and gitlab-runner are set up, as docker-machine ran
## amazonec2-userdata before it provisioned docker. Bounded by the boot deadline.
run_user_script() {
  [ -n "$USER_SCRIPT" ] || return 0
  local left rc=0
  { printf '%s\n' "$USER_SCRIPT" >"$RUN/user-script" && chmod 0700 "$RUN/user-script"; } || finish "cannot write $RUN/user-script"
  left=$((BOOT_DEADLINE - $(now)))
  [ "$left" -gt 0 ] || finish "no boot time left for worker.userScript"
  log "running worker.userScript (at most $left s)"
  ## umask 022, as cloud-init ran amazonec2-userdata: what it installs is readable by all (job
  ## containers mount tools it puts on the host); this script's own files stay 077.
  (umask 022 && exec timeout "$left" "$RUN/user-script") </dev/null || rc=$?
  [ "$rc" = 0 ] || finish "worker.userScript failed (status $rc)"
}

## worker.registryMirrors / insecureRegistries (merged into /etc/docker/daemon.json) and the proxy
## (a systemd drop-in: dockerd reads no proxy from daemon.json before docker 23). Docker is then
## (re)started, so a pre-baked AMI whose docker already runs picks them up. python3 is there:
## cloud-init, which runs the user data, is a Python program.
DOCKER_START=start
configure_dockerd() {
  if [ -n "$DOCKERD_JSON" ]; then
    { mkdir -p "$ROOT/etc/docker" && python3 -c '
import json, os, sys
path, extra = sys.argv[1], json.loads(sys.argv[2])
conf = {}
if os.path.exists(path):
    with open(path) as f:
        conf = json.load(f)
for key, values in extra.items():
    conf[key] = conf.get(key, []) + [v for v in values if v not in conf.get(key, [])]
with open(path + ".gsa", "w") as f:
    json.dump(conf, f, indent=2)
os.replace(path + ".gsa", path)
' "$ROOT/etc/docker/daemon.json" "$DOCKERD_JSON"; } || finish "cannot merge the registry settings into /etc/docker/daemon.json"
    DOCKER_START=restart
  fi
  if [ -n "$PROXY_HTTP$PROXY_HTTPS" ]; then
    { mkdir -p "$ROOT/etc/systemd/system/docker.service.d" &&
      printf '[Service]\nEnvironment="HTTP_PROXY=%s" "HTTPS_PROXY=%s" "NO_PROXY=%s"\n' "$PROXY_HTTP" "$PROXY_HTTPS" "$PROXY_NO" >"$ROOT/etc/systemd/system/docker.service.d/gsa-proxy.conf" &&
      systemctl daemon-reload; } || finish "cannot set the proxy for docker"
    DOCKER_START=restart
  fi
}

## Each tool is installed only when missing, so a pre-baked AMI boots in seconds.
ensure_tools() {
  local arch
  if ! command -v aws >/dev/null; then
    log "installing the AWS CLI"
    if command -v snap >/dev/null; then retry 3 600 "snap install aws-cli" snap install aws-cli --classic; else pkg_install awscli awscli; fi ||
      finish "the AWS CLI is missing and could not be installed"
  fi
  if ! command -v docker >/dev/null; then
    log "installing docker"
    pkg_install docker docker.io || finish "docker is missing and could not be installed"
  fi
  configure_dockerd
  retry 3 120 "starting docker" systemctl "$DOCKER_START" docker.service || finish "the docker service does not start"
  retry 5 30 "docker info" docker info >/dev/null || finish "docker does not answer (docker info)"
  mark docker
  ## A pre-built image (and an image build) must hold the release the pool wants: another one is
  ## replaced (a runnerVersion changed since the image was built). Any other AMI's runner is used as is.
  local why=''
  if ! command -v gitlab-runner >/dev/null; then
    why=missing
  elif { [ "$IMAGE_KIND" = prebuilt ] || [ -n "$BUILDING" ]; } && ! runner_is "$RUNNER_VERSION"; then
    why="not $RUNNER_VERSION"
  fi
  if [ -n "$why" ]; then
    case $(uname -m) in x86_64) arch=amd64 ;; aarch64) arch=arm64 ;; *) finish "no gitlab-runner build for CPU $(uname -m)" ;; esac
    log "installing gitlab-runner $RUNNER_VERSION ($arch): the one here is $why"
    install_runner "$arch" || finish "gitlab-runner is $why and $RUNNER_VERSION could not be downloaded and verified"
  fi
  mark runner
}

## runner_is vX.Y.Z: the installed gitlab-runner reports that release ("Version:      18.3.1").
runner_is() {
  [[ $(timeout 30 gitlab-runner --version 2>/dev/null) =~ Version:[[:space:]]+v?([0-9]+[.][0-9]+[.][0-9]+) ]] && [ "v\${BASH_REMATCH[1]}" = "$1" ]
}

## ---- boot timeline and pre-built images (docs/worker.md, "Boot timeline", "Pre-built images")

## mark STEP: when a boot step finished (epoch ms), for the timeline the ready report carries.
mark() { [ -n "$BUILDING" ] || now_ms >"$RUN/t-$1"; }

## Seconds from launched-at (the controller's CreateFleet) to an epoch-ms instant, one decimal.
since_launch() {
  local d=$((($1 - LAUNCHED_MS) / 100)) sign=''
  [ "$d" -lt 0 ] && sign=- d=$((-d))
  printf '%s%d.%d' "$sign" $((d / 10)) $((d % 10))
}

## The timeline, relative to launched-at: k the kernel booted (the instance runs), u cloud-init ran
## the user data, d docker answers, g gitlab-runner is in place, r the ready report is sent.
## Logged on the console and kept for the ready report.
boot_timeline() {
  local step t json='' line='' btime label
  btime=$(awk '$1 == "btime" { print $2 }' "$ROOT/proc/stat" 2>/dev/null) && [ -n "$btime" ] && echo "\${btime}000" >"$RUN/t-kernel"
  for step in kernel:k:running userdata:u:user_data docker:d:docker runner:g:gitlab-runner ready:r:ready; do
    t=$(cat "$RUN/t-\${step%%:*}" 2>/dev/null) || continue
    [[ $t =~ ^[0-9]+$ ]] || continue
    t=$(since_launch "$t")
    json+="\${json:+,}\\"$(cut -d: -f2 <<<"$step")\\":$t"
    label=\${step##*:}
    line+="\${line:+, }\${label//_/ } +$t"
  done
  printf '{%s,"img":"%s"}' "$json" "$IMAGE_KIND" >"$RUN/boot.json"
  log "boot timeline, seconds after launch: \${line:-none}; image: $IMAGE_KIND"
}

## A pre-built image: log what it holds. The boot installs nothing that is there (ensure_tools), and
## replaces a gitlab-runner that is not the pool's release.
read_image() {
  if [ ! -r "$IMAGE_MARKER" ]; then
    log "base image (no $IMAGE_MARKER): installing what is missing"
    return 0
  fi
  IMAGE_KIND=prebuilt
  log "pre-built image: $(tr '\\n' ' ' <"$IMAGE_MARKER" | tr -cd 'A-Za-z0-9 =:/@._+-' | head -c 400)"
  grep -qF " $JOB_IMAGE " <<<" $(sed -n 's/^images=//p' "$IMAGE_MARKER") " || log "job image $JOB_IMAGE not in the image: its first job pulls it"
}

##@build: to the matching "##@end", only in the image build's script (renderImageBuildScript), not in user data.
## gsa-worker build-image: what the pool's image pipeline runs on its build instance (the component
## of lib/deploy/image.ts): the same installs as a boot (the pinned gitlab-runner checked against
## its release.sha256), the job and helper images pulled, and the marker a boot looks for. It
## writes no worker state into the image (no started marker, no config, no token).
build_image() {
  local image images helper arch pulled=''
  BUILDING=1
  BOOT_DEADLINE=$(($(now) + 3600))
  mkdir -p "$RUN" || finish "cannot create $RUN"
  log "building the worker image of pool $POOL: gitlab-runner $RUNNER_VERSION, job image $JOB_IMAGE"
  apply_proxy
  install_ca
  ensure_tools
  case $(uname -m) in x86_64) arch=x86_64 ;; aarch64) arch=arm64 ;; *) finish "no gitlab-runner helper image for CPU $(uname -m)" ;; esac
  ## The helper image gitlab-runner's docker executor uses by default for this release and CPU.
  ## HELPER_IMAGE: the pool's runner.docker.helper_image; "none" when it holds variables.
  helper=\${HELPER_IMAGE:-registry.gitlab.com/gitlab-org/gitlab-runner/gitlab-runner-helper:$arch-$RUNNER_VERSION}
  images=("$JOB_IMAGE")
  [ "$helper" = none ] || images+=("$helper")
  for image in "\${images[@]}"; do
    retry 3 900 "docker pull $image" docker pull -q "$image" >/dev/null || finish "cannot pull $image"
    pulled+="\${pulled:+ }$image"
  done
  { mkdir -p "\${IMAGE_MARKER%/*}" && printf 'format=1\\npool=%s\\nrunner=%s\\nimages=%s\\nbuilt=%s\\n' "$POOL" "$RUNNER_VERSION" "$pulled" "$(iso)" >"$IMAGE_MARKER.part" &&
    chmod 0644 "$IMAGE_MARKER.part" && mv -f "$IMAGE_MARKER.part" "$IMAGE_MARKER"; } || finish "cannot write $IMAGE_MARKER"
  rm -rf "$RUN"
  log "worker image ready: $(tr '\\n' ' ' <"$IMAGE_MARKER")"
}
##@end

## The binary is checked against release.sha256 from the same release directory: that catches a
## truncated or corrupted download, not a compromised bucket (docs/worker.md, "Trust chain").
install_runner() {
  local i want got url=$DOWNLOADS/$RUNNER_VERSION file=binaries/gitlab-runner-linux-$1 tmp=$ROOT/usr/local/bin/.gitlab-runner.part
  mkdir -p "$ROOT/usr/local/bin" || return 1
  for ((i = 1; i <= 3; i++)); do
    if timeout 300 curl -fsSL --max-time 280 -o "$tmp" "$url/$file" &&
      want=$(timeout 60 curl -fsSL --max-time 50 "$url/release.sha256" | awk -v f="$file" '{ n = $2; sub(/^[*]/, "", n); sub(/^[.][/]/, "", n) } n == f { print $1 }') &&
      [[ $want =~ ^[0-9a-f]{64}$ ]]; then
      got=$(sha256sum "$tmp") && got=\${got%% *}
      [ "$got" = "$want" ] && chmod 0755 "$tmp" && mv -f "$tmp" "$ROOT/usr/local/bin/gitlab-runner" && return 0
      log "gitlab-runner $RUNNER_VERSION: sha256 $got is not the $want in release.sha256 (attempt $i/3)"
    else
      log "downloading gitlab-runner $RUNNER_VERSION or its release.sha256 failed (attempt $i/3)"
    fi
    [ "$(now)" -lt "$BOOT_DEADLINE" ] || break
    sleep $((RETRY_DELAY * i))
  done
  rm -f "$tmp"
  return 1
}

## ssm_value NAME: prints the decrypted parameter. Retries throttling and IAM errors within the
## boot deadline; status 2 at once when the parameter does not exist.
ssm_value() {
  local i err
  for ((i = 1; i <= 5; i++)); do
    ## stdin from /dev/null: read_secrets feeds its list of names on stdin.
    if timeout 60 aws ssm get-parameter --region "$REGION" --name "$1" --with-decryption --query Parameter.Value --output text </dev/null 2>"$RUN/ssm.err"; then
      rm -f "$RUN/ssm.err"
      return 0
    fi
    err=$(head -c 300 "$RUN/ssm.err")
    log "reading SSM parameter $1 failed: $err"
    case $err in *ParameterNotFound*) return 2 ;; esac
    [ "$(now)" -lt "$BOOT_DEADLINE" ] || break
    sleep $((RETRY_DELAY * i))
  done
  return 1
}

## The token goes from the aws CLI's stdout into a shell variable and from there into a 0600 file
## in a 0700 directory: never into argv, the environment, the log or a job container.
read_token() {
  RUNNER_TOKEN=$(ssm_value "$TOKEN_PARAM") || finish "cannot read the runner token from SSM parameter $TOKEN_PARAM"
  [[ $RUNNER_TOKEN =~ ^[A-Za-z0-9._-]+$ ]] || finish "SSM parameter $TOKEN_PARAM does not hold a runner authentication token"
}

## Job secrets (the pool's runnerSecrets): read like the token, kept in shell variables, escaped for
## a TOML basic string ("..."), and put where their {{ssm:NAME}} reference stands in config.toml.
read_secrets() {
  local name value
  SECRETS=()
  while IFS= read -r name; do
    [ -n "$name" ] || continue
    value=$(ssm_value "$name") || finish "cannot read job secret $name from SSM (runnerSecrets of pool $POOL)"
    value=\${value//"\\\\"/"\\\\\\\\"}
    value=\${value//'"'/'\\"'}
    value=\${value//$'\\n'/'\\n'}
    value=\${value//$'\\r'/'\\r'}
    value=\${value//$'\\t'/'\\t'}
    [[ $value == *[[:cntrl:]]* ]] && finish "job secret $name holds a control character that config.toml cannot carry"
    SECRETS+=("{{ssm:$name}}" "$value")
  done <<<"$SECRET_PARAMS"
}

write_config() {
  local toml i
  { mkdir -p "$CONF_DIR" && chmod 0700 "$CONF_DIR"; } || finish "cannot create $CONF_DIR"
  toml=$(runner_toml)
  toml=\${toml//__GSA_REGION__/$REGION}
  ##@cache-tag
  toml=\${toml//"${DEPLOYMENT_CACHE_PLACEHOLDER}"/"$CACHE_BUCKET"}
  ##@end
  ## Quoted pattern and replacement: taken literally (bash 5.2's patsub_replacement leaves them alone).
  toml=\${toml//"{{ssm:$TOKEN_PARAM}}"/"$RUNNER_TOKEN"}
  for ((i = 0; i < \${#SECRETS[@]}; i += 2)); do toml=\${toml//"\${SECRETS[i]}"/"\${SECRETS[i + 1]}"}; done
  ## Every reference must be filled: a job must never run with a literal {{ssm:...}} for a secret.
  [[ $toml == *'{{ssm:/'* ]] && finish "config.toml still holds an {{ssm:...}} reference after reading the pool's secrets"
  { printf '%s\\n' "$toml" >"$CONF" && chmod 0600 "$CONF"; } || finish "cannot write $CONF"
}

## POST /api/v4/runners/verify with the token on stdin: a rejected token or an unreachable GitLab
## is found here, at boot, with a clear reason, instead of a runner that polls forever.
verify_token() {
  local i code
  for ((i = 1; ; i++)); do
    code=$(printf '{"token":"%s"}' "$RUNNER_TOKEN" | curl -s -o /dev/null -w '%{http_code}' --max-time 20 \\
      -H 'Content-Type: application/json' --data-binary @- "$GITLAB_URL/api/v4/runners/verify")
    case $code in
      200) return 0 ;;
      401 | 403 | 410) finish "GitLab at $GITLAB_URL rejected the runner token from $TOKEN_PARAM (HTTP $code)" ;;
    esac
    log "GitLab at $GITLAB_URL not reachable (HTTP $code), attempt $i"
    [ "$(now)" -lt "$BOOT_DEADLINE" ] || finish "GitLab at $GITLAB_URL unreachable for bootTimeout ($BOOT_TIMEOUT s)"
    sleep $((RETRY_DELAY * (i < 6 ? i : 6)))
  done
}

## Reads gitlab-runner's log: copies it to the console and turns job start/end lines into state
## tags. The lines are the runner's own ("Checking for jobs... received", "Job succeeded",
## "Job failed"), logged at info level by run-single (the pinned release and earlier ones).
## watch_jobs cross-checks against docker in case a release changes them.
monitor() {
  local line builds t fail_since=0 last_fail=0
  trap - EXIT TERM
  while IFS= read -r line; do
    printf '%s\\n' "$line" >&2
    spool "$line"
    case $line in
      *'Checking for jobs... received'*)
        fail_since=0
        rm -f "$RUN/busy-by-docker"
        builds=$(($(cat "$RUN/builds") + 1))
        echo "$builds" >"$RUN/builds"
        become busy ;;
      *'Job succeeded'* | *'Job failed'*)
        if [ "$(cat "$RUN/state")" = busy ]; then
          rm -f "$RUN/busy-by-docker"
          ## A worker that is leaving stays "draining" for the controller (the report says so).
          become idle
        fi ;;
      *'Checking for jobs... failed'* | *'Checking for jobs... forbidden'* | *'is not healthy'*)
        ## A runner that cannot reach GitLab, or whose token was revoked, retries forever.
        t=$(now)
        [ $((t - last_fail)) -gt 120 ] && fail_since=$t
        last_fail=$t
        [ $((t - fail_since)) -ge "$BOOT_TIMEOUT" ] && echo "GitLab unreachable or token rejected for $((t - fail_since)) s" >"$RUN/stop" ;;
    esac
  done
}

start_runner() {
  local left=0 builds
  builds=$(cat "$RUN/builds")
  if [ "$MAX_BUILDS" -gt 0 ]; then
    left=$((MAX_BUILDS - builds))
    [ "$left" -gt 0 ] || finish "MaxBuilds ($MAX_BUILDS) reached"
  fi
  rm -f "$RUN/fifo"
  mkfifo "$RUN/fifo" || finish "cannot create $RUN/fifo"
  monitor <"$RUN/fifo" &
  monitor_pid=$!
  ## A clean environment (nothing of this script's leaks into jobs), and SIGQUIT/SIGINT back to
  ## their defaults: bash starts background commands with both ignored.
  env -i --default-signal=INT,QUIT PATH="$PATH" HOME=/root LANG=C.UTF-8 \${RUNNER_ENV[@]+"\${RUNNER_ENV[@]}"} \\
    gitlab-runner run-single -c "$CONF" -r "$RUNNER_NAME" --max-builds "$left" --wait-timeout "$WAIT_TIMEOUT" >"$RUN/fifo" 2>&1 &
  runner_pid=$!
  log "gitlab-runner started (pid $runner_pid, --max-builds $left, --wait-timeout $WAIT_TIMEOUT)"
}

## stop REASON DEADLINE: SIGQUIT makes gitlab-runner take no new job and finish the current one;
## at DEADLINE it gets SIGTERM (abort the job, tell GitLab), KILL_GRACE later the machine goes.
stop_reason='' stop_deadline=0 term_at=0
stop() {
  if [ -z "$stop_reason" ]; then
    stop_reason=$1 stop_deadline=$2
    log "stopping: $1; SIGQUIT to gitlab-runner, deadline in $(($2 - $(now))) s"
    kill -QUIT "$runner_pid" 2>/dev/null
    touch "$RUN/draining"
    printf '%s' "$1" >"$RUN/why"
    report
  elif [ "$2" -lt "$stop_deadline" ]; then
    stop_reason="$stop_reason; $1" stop_deadline=$2
    log "$1: deadline moved to $(($2 - $(now))) s from now"
  fi
}

## The cross-check on the log: a container labelled by gitlab-runner with a job id means a job runs,
## whatever the log said. Such a job makes the worker busy, and idle again once its containers are
## gone. Never the other way round: between "received" and the first container the runner pulls
## images, and the log is right. Builds are counted from the log only (the runner enforces
## --max-builds itself).
watch_jobs() {
  local ids
  ids=$(timeout 10 docker ps -q --filter label=com.gitlab.gitlab-runner.job.id 2>/dev/null) || return 0
  if [ -n "$ids" ] && [ "$(cat "$RUN/state")" != busy ]; then
    touch "$RUN/busy-by-docker"
    log "WARNING: a job container runs but gitlab-runner's log shows no job start (log format changed, or the log is behind)"
    become busy
  elif [ -z "$ids" ] && [ -e "$RUN/busy-by-docker" ]; then
    rm -f "$RUN/busy-by-docker"
    become idle
  fi
}

watch_runner() {
  local t rc restarts=0 keys value at next_heartbeat tags_seen
  next_heartbeat=$(($(now) + HEARTBEAT))
  tags_seen=$(now)
  while :; do
    t=$(now)
    if ! kill -0 "$runner_pid" 2>/dev/null; then
      wait "$runner_pid"
      rc=$?
      wait "$monitor_pid" 2>/dev/null
      monitor_pid=''
      [ -n "$stop_reason" ] && finish "$stop_reason; gitlab-runner exited ($rc)"
      if [ "$rc" = 0 ]; then
        [ "$MAX_BUILDS" -gt 0 ] && [ "$(cat "$RUN/builds")" -ge "$MAX_BUILDS" ] && finish "MaxBuilds ($MAX_BUILDS) reached"
        finish "gitlab-runner left after $(cat "$RUN/builds") builds (--wait-timeout $WAIT_TIMEOUT s)"
      fi
      restarts=$((restarts + 1))
      timeout 30 docker info >/dev/null 2>&1 || finish "gitlab-runner exited ($rc) and docker does not answer"
      [ "$restarts" -le "$MAX_RESTARTS" ] || finish "gitlab-runner crashed $restarts times (last exit status $rc)"
      log "gitlab-runner exited with status $rc; restart $restarts of $MAX_RESTARTS"
      if [ "$(cat "$RUN/state")" = busy ]; then
        rm -f "$RUN/busy-by-docker"
        become idle
      fi
      sleep $((RETRY_DELAY * restarts))
      start_runner
      continue
    fi
    if imds_refresh; then
      action=$(imds spot/instance-action) && {
        at=$(date -d "$(sed -n 's/.*"time" *: *"\\([^"]*\\)".*/\\1/p' <<<"$action")" +%s 2>/dev/null) || at=$((t + 120))
        stop "spot interruption notice ($action)" $((at - INTERRUPT_MARGIN))
      }
      keys=$(imds tags/instance) && [ -n "$keys" ] && tags_seen=$t
      if grep -qxF "$TAG_PREFIX:interrupted" <<<"$keys"; then
        value=$(imds "tags/instance/$TAG_PREFIX:interrupted")
        case $value in interruption*) stop "interrupted ($value)" $((t + 120 - INTERRUPT_MARGIN)) ;; esac
      fi
      if grep -qxF "$TAG_PREFIX:retire" <<<"$keys"; then
        value=$(imds "tags/instance/$TAG_PREFIX:retire")
        [ -s "$RUN/retire-seen" ] || printf '%s' "$value" >"$RUN/retire-seen"
        stop "retirement requested ($value)" $((t + JOB_TIMEOUT))
      fi
    fi
    [ $((t - tags_seen)) -ge "$TAGS_BLIND" ] && stop "instance tags unreadable for $((t - tags_seen)) s" $((t + JOB_TIMEOUT))
    watch_jobs
    ## maxLifetime counts from launch, as the controller's end of life does.
    [ $((t - LAUNCHED_AT)) -ge "$MAX_LIFETIME" ] && stop "max lifetime ($MAX_LIFETIME s after launch) reached" $((t + JOB_TIMEOUT))
    ## The heartbeat repairs a report that was lost (SQS accepted nothing, the controller dropped it).
    if [ "$t" -ge "$next_heartbeat" ]; then
      report
      next_heartbeat=$((t + HEARTBEAT))
    fi
    [ -s "$RUN/stop" ] && stop "$(cat "$RUN/stop")" $((t + 60))
    if [ -n "$stop_reason" ]; then
      if [ "$term_at" = 0 ] && [ "$t" -ge "$stop_deadline" ]; then
        log "deadline passed: SIGTERM to gitlab-runner (aborts the running job)"
        kill -TERM "$runner_pid" 2>/dev/null
        term_at=$t
      elif [ "$term_at" != 0 ] && [ $((t - term_at)) -ge "$KILL_GRACE" ]; then
        finish "$stop_reason; gitlab-runner still running $KILL_GRACE s after SIGTERM"
      fi
    fi
    sleep "$POLL"
  done
}

## The boot deadline is launched-at + bootTimeout, launched-at being the controller's own tag
## (CreateFleet TagSpecifications, read here through instance-metadata tags), so the worker and the
## controller count from the same instant: past it the controller may end an instance that never
## reported ready, and so the worker never reports ready nor starts its runner after it.
## The limits it runs by are the ones the controller launched it with (its limits tag, which the
## fence counts with), when the tag is there: a config changed since the user data was rendered
## (or since the launch) cannot put the two sides out of step.
read_launch_time() {
  local i v
  for ((i = 1; i <= 10; i++)); do
    if v=$(imds "tags/instance/$TAG_PREFIX:launched-at") && LAUNCHED_MS=$(date -d "$v" +%s%3N 2>/dev/null); then
      LAUNCHED_AT=$((LAUNCHED_MS / 1000))
      v=$(imds "tags/instance/$TAG_PREFIX:limits") || v=''
      if [[ $v =~ ^boot=([0-9]{1,9}),job=([0-9]{1,9}),life=([0-9]{1,9})$ ]]; then
        BOOT_TIMEOUT=$((10#\${BASH_REMATCH[1]})) JOB_TIMEOUT=$((10#\${BASH_REMATCH[2]})) MAX_LIFETIME=$((10#\${BASH_REMATCH[3]}))
        log "limits tag: $v"
      fi
      return 0
    fi
    sleep $((RETRY_DELAY * (i < 4 ? i : 4)))
  done
  finish "cannot read its launched-at tag from instance metadata (launch template InstanceMetadataTags=enabled?)"
}

## The deployment's cache bucket (docs/worker.md, "The cache"): CloudFormation generates its name,
## so the user data (gzip, the same for every launch: EC2's 16 KB) holds a placeholder, and the
## controller tags the instance with the name at launch. The tag is the controller's: no worker role
## may write it (lib/deploy/stack.ts, NeverTheControllersTags). A runner without its cache would run
## every job slower and nobody would notice: no valid name, no runner. Same rules as the
## controller's (lib/controller/tags.ts bucketNameProblem), so nothing but a bucket name reaches config.toml.
##@cache-tag
CACHE_BUCKET=''
valid_bucket() {
  [[ $1 =~ ^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$ && $1 != *..* && ! $1 =~ ^[0-9]{1,3}(\\.[0-9]{1,3}){3}$|^(xn--|sthree-|amzn-s3-demo-)|(-s3alias|--ol-s3|\\.mrap|--x-s3|--table-s3)$ ]]
}
## Read once: its launched-at tag, set in the same call, was just read.
## Only in the user data of a pool whose config.toml holds the placeholder (lib/worker/userdata.ts scriptBody).
read_cache_bucket() {
  { imds_refresh && CACHE_BUCKET=$(imds "tags/instance/$TAG_PREFIX:cache-bucket"); } ||
    finish "no $TAG_PREFIX:cache-bucket tag (the deployment's cache bucket; the controller sets it at launch): no jobs without their cache"
  valid_bucket "$CACHE_BUCKET" || finish "its cache-bucket tag is not an S3 bucket name: $(printf %q "\${CACHE_BUCKET:0:70}")"
  log "cache bucket: $CACHE_BUCKET"
}
##@end

## Before reporting ready and before starting the runner: within the boot deadline and the
## lifetime (a runner started past it could take a job in the moment before its SIGQUIT), and not
## asked to leave.
check_may_start() {
  [ "$(now)" -lt "$BOOT_DEADLINE" ] || finish "not ready within bootTimeout ($BOOT_TIMEOUT s after launch); the controller no longer counts on this worker"
  [ $(($(now) - LAUNCHED_AT)) -lt "$MAX_LIFETIME" ] || finish "max lifetime ($MAX_LIFETIME s after launch) reached before its runner started"
  if imds_refresh && grep -qxF "$TAG_PREFIX:retire" <<<"$(imds tags/instance)"; then finish "retirement requested before it was ready"; fi
}

run_worker() {
  trap 'finish "worker script ended unexpectedly (status $?)"' EXIT
  trap 'finish "stopped by SIGTERM (system shutdown or systemctl stop)"' TERM
  STARTED=$(now)
  ## Until launched-at is read: the script cannot have started before the launch.
  BOOT_DEADLINE=$((STARTED + BOOT_TIMEOUT))
  mkdir -p "$RUN" "$STATE_DIR" || finish "cannot create $RUN"
  ## A worker lives for one boot: after a reboot its state is gone, so it leaves.
  [ -e "$STATE_DIR/started" ] && finish "rebooted: a worker lives for one boot only"
  iso >"$STATE_DIR/started"
  echo 0 >"$RUN/builds"
  echo booting >"$RUN/state"
  log "starting: pool $POOL of $DEPLOYMENT/$STAGE"
  for ((i = 1; i <= 10; i++)); do
    imds_refresh && INSTANCE_ID=$(imds instance-id) && break
    sleep $((RETRY_DELAY * (i < 4 ? i : 4)))
  done
  [ -n "$INSTANCE_ID" ] || finish "instance metadata (IMDSv2) not reachable at $IMDS"
  [ -n "$REGION" ] || REGION=$(imds placement/region) || finish "cannot read the region from instance metadata"
  read_launch_time
  BOOT_DEADLINE=$((LAUNCHED_AT + BOOT_TIMEOUT))
  ##@cache-tag
  read_cache_bucket
  ##@end
  start_shipper
  ## Independent of this script: whatever happens to it, the machine powers off after the
  ## lifetime, the time to finish a job, and a grace period, counted from launch.
  shutdown -h "+$(((LAUNCHED_AT + MAX_LIFETIME + JOB_TIMEOUT + 600 - $(now) + 59) / 60))" "gsa-worker: hard lifetime limit" ||
    log "could not schedule the hard lifetime shutdown"
  check_may_start
  read_image
  apply_proxy
  install_ca
  run_user_script
  ensure_tools
  start_shipper
  REPORT_URL=$(retry 5 30 "finding the report queue $REPORT_QUEUE" aws sqs get-queue-url --region "$REGION" --queue-name "$REPORT_QUEUE" --query QueueUrl --output text) || REPORT_URL=''
  [ -n "$REPORT_URL" ] || finish "cannot find the worker-report queue $REPORT_QUEUE (does the instance role allow sqs:GetQueueUrl on it?)"
  read_token
  read_secrets
  write_config
  verify_token
  unset RUNNER_TOKEN SECRETS
  check_may_start
  ## Ready must reach the controller before the runner takes a job: past bootTimeout it ends an
  ## instance that never reported ready. So the runner starts only once SQS accepted the report,
  ## and only if that happened before the deadline.
  now >"$RUN/ready-at"
  mark ready
  boot_timeline
  become idle || finish "cannot send its ready report to $REPORT_QUEUE (does the instance role allow sqs:SendMessage on it?)"
  check_may_start
  start_runner
  watch_runner
}

## cloud-init runs user data once, inside cloud-final.service. The worker runs as its own systemd
## unit instead: its log goes to the journal and the serial console, and cloud-init finishes.
install_service() {
  trap 'rc=$?; [ "$rc" = 0 ] || finish "installing gsa-worker.service failed (status $rc)"' EXIT
  ## When cloud-init ran the user data: the timeline's "user data" step (/run: gone after a reboot).
  mkdir -p "$RUN" && now_ms >"$RUN/t-userdata"
  mkdir -p "\${SELF%/*}" "\${UNIT%/*}" && cp "$0" "$SELF" && chmod 0700 "$SELF" || exit 1
  cat >"$UNIT" <<'UNIT' || exit 1
[Unit]
Description=gitlab-spot-autoscaler worker: gitlab-runner run-single, then power off
Wants=network-online.target
After=network-online.target docker.service

[Service]
Type=simple
ExecStart=/usr/local/sbin/gsa-worker run
StandardOutput=journal+console
StandardError=journal+console
TimeoutStopSec=60

[Install]
WantedBy=multi-user.target
UNIT
  chmod 0644 "$UNIT"
  systemctl daemon-reload && systemctl enable gsa-worker.service && systemctl start --no-block gsa-worker.service || exit 1
  log "gsa-worker.service started (journalctl -u gsa-worker)"
}

case \${1:-} in
  run) run_worker ;;
  ##@build
  build-image) build_image ;;
  ##@end
  *) install_service ;;
esac
`;
