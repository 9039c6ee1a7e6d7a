/**
 * lib/host-paths.ts: host paths handed to CI jobs are judged on canonical paths, and each refusal
 * says what the path would expose. Also through `validate` (lib/config.ts), where users meet it.
 */
import { canonicalHostPath, containerBoundaryProblems, hostPathProblems, type HostPathUse } from '../lib/host-paths';
import { ConfigError, validateConfig } from '../lib/config';
import { poolInput } from './helpers/config';

const vol = (...specs: string[]): HostPathUse[] => specs.map((spec, i) => ({ at: `volumes[${i}]`, spec, kind: 'volume' }));
const dev = (...specs: string[]): HostPathUse[] => specs.map((spec, i) => ({ at: `devices[${i}]`, spec, kind: 'device' }));
const unprivileged = { privileged: false };

describe('canonicalHostPath', () => {
  it.each([
    ['/etc/./gsa-worker', '/etc/gsa-worker'],
    ['//etc', '/etc'],
    ['/etc//gsa-worker/', '/etc/gsa-worker'],
    ['/srv/../etc', '/etc'],
    ['/../../etc', '/etc'],
    ['/var/run/docker.sock', '/run/docker.sock'],
    ['/var/./run/../run/docker.sock', '/run/docker.sock'],
    ['/var/lock/x', '/run/lock/x'],
    ['/lib/modules', '/usr/lib/modules'],
    ['/bin/sh', '/usr/bin/sh'],
    ['/', '/'],
  ])('%s is %s', (input, canonical) => expect(canonicalHostPath(input)).toBe(canonical));
});

describe('volumes', () => {
  it.each([
    ['/etc/gsa-worker:/x:ro', /is \/etc\/gsa-worker: the worker's runner token.*refused even read-only/],
    ['/etc/./gsa-worker:/x', /\/etc\/gsa-worker \(as written: \/etc\/.\/gsa-worker\).*runner token/],
    ['//etc:/x:ro', /\/etc \(as written: \/\/etc\).*contains \/etc\/gsa-worker/],
    ['/etc/gsa-worker/config.toml:/c:ro', /is \/etc\/gsa-worker: the worker's runner token/],
    ['/:/host:ro', /contains \/etc\/gsa-worker/],
    ['/srv/../etc:/x', /contains \/etc\/gsa-worker/],
    ['/proc/1/root:/host', /is \/proc: the host's processes \(\/proc\/1\/root is the host's whole file system/],
    ['/proc:/p:ro', /is \/proc/],
    ['/sys/fs/cgroup:/c', /is \/sys/],
    ['/dev:/dev', /is \/dev: the host's devices/],
    ['/dev/nvme0n1:/d', /is \/dev/],
    ['/run:/run', /is \/run: the host's runtime sockets/],
    ['/run/systemd/private:/s', /is \/run/],
    ['/var/run/dbus/system_bus_socket:/d:ro', /\/run\/dbus\/system_bus_socket \(as written: \/var\/run\/dbus\/system_bus_socket\).*is \/run/],
    ['/var:/var', /contains \/var\/lib\/gsa-worker/],
    ['/var/lib/docker:/d:ro', /is \/var\/lib\/docker: Docker's state/],
    ['/var/lib/cloud/instance:/c:ro', /is \/var\/lib\/cloud/],
    ['/root/.ssh:/k:ro', /is \/root/],
    ['/home:/h:ro', /is \/home/],
    ['/etc:/e', /contains \/etc\/gsa-worker/],
    ['/etc/systemd/system:/s', /writable.*is \/etc: the host's configuration.*root on the worker — add :ro/],
    ['/usr/local/sbin:/s', /writable.*is \/usr.*\/usr\/local\/sbin\/gsa-worker/],
    ['/lib/modules:/m', /\/usr\/lib\/modules \(as written: \/lib\/modules\) writable.*is \/usr/],
    ['/boot:/b:rw', /writable.*is \/boot/],
    ['/usr:/u:ro,Z', null], // read-only programs: allowed
    ['./data:/data', /neither an absolute host path nor a docker volume name/],
    ['~/cache:/cache', /neither an absolute host path/],
  ])('%s', (spec, problem) => {
    const out = hostPathProblems(vol(spec), unprivileged);
    if (problem === null) expect(out).toEqual([]);
    else {
      expect(out).toHaveLength(1);
      expect(out[0]).toMatch(problem);
      expect(out[0]).toContain(`volumes[0]: ${JSON.stringify(spec)}`);
    }
  });

  it.each(['/cache', 'cache:/cache', '/certs/client', '/srv/cache:/cache', '/tmp/build:/b', '/etc/ssl/certs:/certs:ro', '/etcetera:/x', '/opt/tools:/tools:ro', '/var/cache/apt:/apt', "/srv/o'brien \"data\":/data:ro"])(
    'allows %s',
    (spec) => expect(hostPathProblems(vol(spec), unprivileged)).toEqual([]),
  );

  it('hands out the Docker or containerd socket only in a privileged pool (it is root on the worker either way)', () => {
    for (const spec of ['/var/run/docker.sock:/var/run/docker.sock', '/run/docker.sock:/var/run/docker.sock', '//var/run/./docker.sock:/s', '/run/containerd/containerd.sock:/c']) {
      const [p] = hostPathProblems(vol(spec), unprivileged);
      expect(p).toMatch(/the container engine's API.*root on the worker.*only a pool with privileged: true/);
      expect(hostPathProblems(vol(spec), { privileged: true })).toEqual([]);
    }
    // privileged hands out the socket, not the rest of /run or the token.
    expect(hostPathProblems(vol('/run:/run', '/etc/gsa-worker:/t:ro'), { privileged: true })).toHaveLength(2);
  });

  it('refuses a host path inside another writable host mount of the pool (a job could plant a symbolic link there)', () => {
    const out = hostPathProblems(vol('/srv/shared:/shared', '/srv/shared/tools:/tools:ro'), unprivileged);
    expect(out).toEqual([expect.stringMatching(/volumes\[1\]: .*\/srv\/shared\/tools lies inside \/srv\/shared, which volumes\[0\] mounts writable/)]);
    expect(hostPathProblems(vol('/srv/shared:/shared:ro', '/srv/shared/tools:/tools:ro'), unprivileged)).toEqual([]);
  });
});

describe('devices (for [runners.docker] devices, issue 12)', () => {
  it.each(['/dev/kvm', '/dev/fuse', '/dev/net/tun', '/dev/nvidia0', '/dev/dri/renderD128:/dev/dri/renderD128:rwm', '/dev/snd'])('allows %s', (spec) =>
    expect(hostPathProblems(dev(spec), unprivileged)).toEqual([]),
  );
  it.each([
    ['/dev/nvme0n1', /raw disk, memory or console device/],
    ['/dev/xvda1', /raw disk/],
    ['/dev/sda', /raw disk/],
    ['/dev/mapper/root', /raw disk/],
    ['/dev/disk/by-id/x', /raw disk/],
    ['/dev/mem', /raw disk, memory/],
    ['/dev/../etc/shadow', /\/etc\/shadow \(as written: \/dev\/..\/etc\/shadow\) is not a single device under \/dev/],
    ['/dev', /not a single device/],
    ['kvm', /not an absolute path under \/dev/],
  ])('refuses %s', (spec, problem) => {
    const [p] = hostPathProblems(dev(spec), unprivileged);
    expect(p).toMatch(problem);
  });
});

describe('through validate', () => {
  const problems = (docker: Record<string, unknown>) => {
    try {
      validateConfig({ deployment: 'ci', gitlab: { url: 'https://gitlab.example.com' }, pools: [poolInput({ worker: { ...(poolInput().worker as object), docker } })] });
    } catch (e) {
      if (e instanceof ConfigError) return e.problems;
      throw e;
    }
    return [];
  };
  it('names the entry by its path in the config, and accepts the usual volumes', () => {
    expect(problems({ volumes: ['/cache', '/etc/./gsa-worker:/x'] })).toEqual([expect.stringMatching(/^pools\[0\]\.worker\.docker\.volumes\[1\]: "\/etc\/.\/gsa-worker:\/x": .*runner token/)]);
    expect(problems({ volumes: ['/cache', '/certs/client', '/srv/cache:/cache'] })).toEqual([]);
    expect(problems({ privileged: true, volumes: ['/var/run/docker.sock:/var/run/docker.sock'] })).toEqual([]);
    expect(problems({ volumes: ['/var/run/docker.sock:/var/run/docker.sock'] })).toEqual([expect.stringMatching(/privileged: true/)]);
  });
});

describe("a pool's runner.docker settings (gitlab-runner's own, issue 12)", () => {
  const check = (docker: Record<string, unknown>, privileged = false) => containerBoundaryProblems(docker, 'pools[0].runner.docker', { privileged });
  it.each([
    [{ network_mode: 'host' }, /^pools\[0\]\.runner\.docker\.network_mode: .*one hop from instance metadata/],
    [{ ipcmode: 'host' }, /ipcmode: .*IPC namespace/],
    [{ services_privileged: true }, /services_privileged: .*run privileged/],
    [{ cap_add: ['NET_ADMIN', 'SYS_ADMIN'] }, /cap_add: capabilities "SYS_ADMIN" reach past the container/],
    [{ cap_add: ['cap_sys_ptrace'] }, /"cap_sys_ptrace"/],
    [{ cap_add: ['ALL'] }, /"ALL"/],
    [{ security_opt: ['apparmor:unconfined'] }, /security_opt: "apparmor:unconfined" turns off the confinement/],
    [{ services_security_opt: ['seccomp=unconfined'] }, /services_security_opt/],
    [{ device_cgroup_rules: ['b 259:* rmw'] }, /device_cgroup_rules: .*host's disks or memory/],
    [{ device_cgroup_rules: ['c 1:1 rwm'] }, /device_cgroup_rules/],
  ])('refuses %j in an unprivileged pool, allows it in a privileged one', (docker, problem) => {
    const out = check(docker);
    expect(out).toHaveLength(1);
    expect(out[0]).toMatch(problem);
    expect(out[0]).toMatch(/only a pool with worker\.docker\.privileged: true .* hands that out/);
    expect(check(docker, true)).toEqual([]);
  });
  it('checks devices and services_devices as host devices, in every pool', () => {
    expect(check({ devices: ['/dev/fuse', '/dev/nvme0n1:/dev/disk0'] }, true)).toEqual([expect.stringMatching(/^pools\[0\]\.runner\.docker\.devices: .*\/dev\/nvme0n1.*raw disk/)]);
    expect(check({ services_devices: { 'redis:*': ['/dev/mem'] } })).toEqual([expect.stringMatching(/services_devices\."redis:\*": .*\/dev\/mem/)]);
  });
  it('allows what does not reach past the container', () => {
    expect(check({ cap_add: ['NET_ADMIN'], security_opt: ['no-new-privileges'], network_mode: 'bridge', devices: ['/dev/kvm', '/dev/net/tun'], device_cgroup_rules: ['c 10:200 rwm'], services_privileged: false })).toEqual([]);
    expect(check(undefined as any)).toEqual([]);
  });
  it('through validate: names the key', () => {
    expect(() => validateConfig({ deployment: 'ci', gitlab: { url: 'https://gitlab.example.com' }, pools: [poolInput({ runner: { docker: { network_mode: 'host' } } })] })).toThrow(/pools\[0\]\.runner\.docker\.network_mode: network_mode "host"/);
  });
});
