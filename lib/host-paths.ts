/**
 * Which host paths a pool may hand to its CI jobs (docker volumes, devices), decided on canonical
 * paths. A job is untrusted code: whatever host path its container sees, the job owns. Some paths
 * give it the runner token or root on the worker, and through them the instance role; those are
 * refused at `validate`, with the reason. Pure: no file system, no AWS.
 *
 * Canonical means: `.` and `..` resolved, repeated and trailing slashes removed, and the symbolic
 * links every supported AMI has (Amazon Linux 2023, Ubuntu 22.04/24.04) followed: /var/run -> /run,
 * /bin, /sbin, /lib, /lib64 -> /usr/... So `/etc/./gsa-worker`, `//etc`, `/srv/../etc` and
 * `/var/run/docker.sock` are judged as `/etc/gsa-worker`, `/etc`, `/etc` and `/run/docker.sock`.
 * Other symbolic links on the host are not known here: a path that passes through a directory a
 * job can write is refused too (the job could plant a link there for the next job's mount).
 *
 * Issue 12 passes more [runners.docker] keys through (devices, and whatever else names host
 * paths): each goes through `hostPathProblems` with its kind.
 */

export type HostPathKind = 'volume' | 'device';

export interface HostPathUse {
  /** Where in the config, e.g. `pools[0].worker.docker.volumes[2]`. */
  at: string;
  /** The entry as written: a docker volume (`host:container[:options]`, `/container`, `name:/container`) or device (`host[:container[:perms]]`). */
  spec: string;
  kind: HostPathKind;
}

/** Directories that give a job the runner token, the host's processes or devices, or another job's data: refused read-only too. */
const NEVER: [path: string, why: string][] = [
  ['/etc/gsa-worker', "the worker's runner token (config.toml)"],
  ['/var/lib/gsa-worker', "the worker's own state"],
  ['/proc', "the host's processes (/proc/1/root is the host's whole file system, /proc/*/environ their environments)"],
  ['/sys', "the kernel's interfaces (cgroups, devices, firmware)"],
  ['/dev', "the host's devices (the raw disk holds the runner token); name single devices under devices, not volumes"],
  ['/run', "the host's runtime sockets (Docker, containerd, systemd, D-Bus: each is root on the worker)"],
  ['/var/lib/docker', "Docker's state: every container's file system and secrets"],
  ['/var/lib/containerd', "containerd's state: every container's file system"],
  ['/var/lib/cloud', "cloud-init's instance data and the scripts it runs as root"],
  ['/root', "root's home (credentials, shell start-up files)"],
  ['/home', "the host users' homes (credentials, shell start-up files)"],
];

/** Directories whose programs or configuration root runs: refused writable, allowed `:ro` (e.g. `/etc/ssl/certs:/certs:ro`). */
const NOT_WRITABLE: [path: string, why: string][] = [
  ['/etc', "the host's configuration (users, sudoers, systemd units)"],
  ['/usr', "the host's programs and libraries (the worker script is /usr/local/sbin/gsa-worker)"],
  ['/boot', 'the kernel and boot loader'],
  ['/var/spool/cron', "root's scheduled commands"],
];

/** Docker's and containerd's API sockets: whoever reaches one is root on the worker, exactly what `privileged: true` means. */
const ENGINE_SOCKETS = ['/run/docker.sock', '/run/containerd/containerd.sock'];

/** Links on Amazon Linux 2023 and Ubuntu 22.04/24.04 (usrmerge, /var/run). */
const ALIASES: [from: string, to: string][] = [
  ['/var/run', '/run'],
  ['/var/lock', '/run/lock'],
  ['/bin', '/usr/bin'],
  ['/sbin', '/usr/sbin'],
  ['/lib', '/usr/lib'],
  ['/lib64', '/usr/lib64'],
  ['/lib32', '/usr/lib32'],
];

/** `path` and `dir` are canonical; whether `path` is `dir` or below it. */
export function isWithin(path: string, dir: string): boolean {
  return dir === '/' || path === dir || path.startsWith(dir + '/');
}

/** An absolute path, canonical as described in the header; `..` above the root stays at the root, as the kernel does. */
export function canonicalHostPath(path: string): string {
  const parts: string[] = [];
  for (const p of path.split('/')) {
    if (p === '' || p === '.') continue;
    if (p === '..') parts.pop();
    else parts.push(p);
  }
  let out = '/' + parts.join('/');
  // Follow the links until none applies (/var/run/lock -> /run/lock, once).
  for (let changed = true; changed; ) {
    changed = false;
    for (const [from, to] of ALIASES)
      if (isWithin(out, from)) {
        out = to + out.slice(from.length);
        changed = true;
      }
  }
  return out;
}

const NAMED_VOLUME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

interface Mount {
  host?: string;
  writable: boolean;
  error?: string;
}

/** Docker's short volume syntax: `/container`, `name:/container[:opts]`, `/host:/container[:opts]`. */
function parseVolume(spec: string): Mount {
  const parts = spec.split(':');
  if (parts.length === 1) return { writable: true }; // a container path only: an anonymous volume
  const [source, , options = ''] = parts;
  const writable = !options.split(',').includes('ro');
  if (source.startsWith('/')) return { host: source, writable };
  if (NAMED_VOLUME.test(source)) return { writable }; // a named volume, managed by docker
  return { writable, error: `the source ${JSON.stringify(source)} is neither an absolute host path nor a docker volume name (letters, digits, _ . -)` };
}

/** Docker's device syntax: `/host[:/container[:permissions]]`. */
function parseDevice(spec: string): Mount {
  const host = spec.split(':')[0];
  if (!host.startsWith('/')) return { writable: true, error: `the device ${JSON.stringify(host)} is not an absolute path under /dev` };
  return { host, writable: true };
}

/** Raw disks, memory and I/O ports: reading one is reading every file on the host. */
const DEVICE_REFUSED = /^\/dev\/(?:(?:nvme|xvd|sd|vd|hd|loop|dm-|md|nbd|sr|mmcblk|zram|ram)[^/]*|mapper(?:\/.*)?|disk(?:\/.*)?|block(?:\/.*)?|mem|kmem|port|root|console|tty\d*|vcs.*|cpu(?:\/.*)?|cpu_dma_latency|mcelog|kmsg|snapshot|watchdog\d*)$/;

/**
 * Every problem with the host paths these entries hand to jobs, one line each, naming the entry,
 * the canonical path and what it would expose. `privileged` is the pool's `privileged`: only such a
 * pool may hand out the Docker socket (it already gives jobs the host).
 */
export function hostPathProblems(uses: readonly HostPathUse[], opts: { privileged: boolean }): string[] {
  const problems: string[] = [];
  const mounts = uses.map((u) => ({ ...u, ...(u.kind === 'volume' ? parseVolume(u.spec) : parseDevice(u.spec)) }));
  for (const m of mounts) {
    const what = `${m.at}: ${JSON.stringify(m.spec)}`;
    if (m.error) {
      problems.push(`${what}: ${m.error}`);
      continue;
    }
    if (m.host === undefined) continue;
    const host = canonicalHostPath(m.host);
    const shown = host === m.host ? host : `${host} (as written: ${m.host})`;

    if (m.kind === 'device') {
      if (!isWithin(host, '/dev') || host === '/dev') problems.push(`${what}: ${shown} is not a single device under /dev`);
      else if (DEVICE_REFUSED.test(host)) problems.push(`${what}: hands every job ${shown}, a raw disk, memory or console device of the host, which reads every file on it (the runner token included); refused`);
      continue;
    }

    if (ENGINE_SOCKETS.includes(host)) {
      if (!opts.privileged)
        problems.push(
          `${what}: mounts ${shown}, the container engine's API, into every job: that is root on the worker (its runner token and instance role), which only a pool with privileged: true hands out; set privileged: true on this pool (trusted projects only) or build images without the socket (kaniko, buildah)`,
        );
      continue;
    }
    const never = NEVER.find(([dir]) => isWithin(host, dir) || isWithin(dir, host));
    if (never) {
      const [dir, why] = never;
      problems.push(`${what}: mounts ${shown} into every job, which ${isWithin(host, dir) ? 'is' : 'contains'} ${dir}: ${why}; refused even read-only — mount a narrower host path`);
      continue;
    }
    const notWritable = NOT_WRITABLE.find(([dir]) => isWithin(host, dir) || isWithin(dir, host));
    if (notWritable && m.writable) {
      const [dir, why] = notWritable;
      problems.push(`${what}: mounts ${shown} writable into every job, which ${isWithin(host, dir) ? 'is' : 'contains'} ${dir}: ${why}; a job writing there is root on the worker — add :ro, or mount a narrower path`);
      continue;
    }
    // A host path below another writable host mount: a job could replace part of it with a symbolic
    // link, and docker follows links when it mounts, for the next job on the worker.
    const parent = mounts.find((o) => o !== m && o.host !== undefined && !o.error && o.kind === 'volume' && o.writable && canonicalHostPath(o.host) !== host && isWithin(host, canonicalHostPath(o.host)));
    if (parent) problems.push(`${what}: ${shown} lies inside ${canonicalHostPath(parent.host!)}, which ${parent.at} mounts writable: a job could put a symbolic link there that the next job's mount follows; mount one or the other`);
  }
  return problems;
}

/** Capabilities that reach past the container: kernel modules, raw I/O, other processes, the file system by handle, eBPF, AppArmor policy. */
const DANGEROUS_CAPS = new Set(['ALL', 'SYS_ADMIN', 'SYS_MODULE', 'SYS_RAWIO', 'SYS_PTRACE', 'DAC_READ_SEARCH', 'BPF', 'PERFMON', 'MAC_ADMIN', 'MAC_OVERRIDE']);
const UNCONFINED_OPT = /^(seccomp|apparmor|systempaths)[=:]unconfined$|^label[=:]disable$/i;

const strings = (v: unknown): string[] => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []);

/**
 * gitlab-runner [runners.docker] settings (a pool's `runner.docker`, issue 12) that take a job
 * container past its boundary, refused in a pool that is not `privileged: true` (where jobs own the
 * host anyway), each with the reason; devices are checked like host paths in every pool. `at` is
 * the table's path (`pools[0].runner.docker`); each problem names a whole key, so `migrate` drops
 * that key with the reason.
 */
export function containerBoundaryProblems(docker: unknown, at: string, opts: { privileged: boolean }): string[] {
  if (typeof docker !== 'object' || docker === null || Array.isArray(docker)) return [];
  const d = docker as Record<string, unknown>;
  const problems: string[] = [];
  const unlessPrivileged = (key: string, what: string) => {
    if (!opts.privileged) problems.push(`${at}.${key}: ${what}; only a pool with worker.docker.privileged: true (whose jobs own the worker anyway) hands that out — set it (trusted projects only) or remove ${key}`);
  };
  const devices = (key: string, list: string[]) => {
    const found = hostPathProblems(list.map((spec, i) => ({ at: `${key}[${i}]`, spec, kind: 'device' as const })), opts);
    if (found.length) problems.push(`${at}.${key}: ${found.map((p) => p.slice(p.indexOf(': ') + 2)).join('; ')}`);
  };
  devices('devices', strings(d.devices));
  if (typeof d.services_devices === 'object' && d.services_devices !== null)
    for (const [image, list] of Object.entries(d.services_devices as Record<string, unknown>)) devices(`services_devices.${JSON.stringify(image)}`, strings(list));
  if (d.network_mode === 'host') unlessPrivileged('network_mode', 'network_mode "host" puts job containers on the host\'s network, one hop from instance metadata: the instance role, which reads the runner token');
  if (d.ipcmode === 'host') unlessPrivileged('ipcmode', 'ipcmode "host" shares the host\'s IPC namespace (its processes\' shared memory) with jobs');
  if (d.services_privileged === true) unlessPrivileged('services_privileged', 'services (docker:dind ...) run privileged, which is root on the worker, and jobs reach them');
  for (const key of ['cap_add'] as const) {
    const bad = strings(d[key]).filter((c) => DANGEROUS_CAPS.has(c.toUpperCase().replace(/^CAP_/, '')));
    if (bad.length) unlessPrivileged(key, `capabilities ${bad.map((c) => JSON.stringify(c)).join(', ')} reach past the container (kernel modules, raw I/O, other processes, files by handle): root on the worker`);
  }
  for (const key of ['security_opt', 'services_security_opt'] as const) {
    const bad = strings(d[key]).filter((o) => UNCONFINED_OPT.test(o.trim()));
    if (bad.length) unlessPrivileged(key, `${bad.map((o) => JSON.stringify(o)).join(', ')} turns off the confinement docker puts around jobs`);
  }
  // "b 8:* rwm" / "a *:* rwm": jobs may create and open the host's disks (CAP_MKNOD is a default capability).
  const rules = strings(d.device_cgroup_rules).filter((r) => /^\s*[ab]\b/i.test(r) || /^\s*c\s+(\*|1):/i.test(r));
  if (rules.length) unlessPrivileged('device_cgroup_rules', `${rules.map((r) => JSON.stringify(r)).join(', ')} lets jobs create and open the host's disks or memory`);
  return problems;
}
