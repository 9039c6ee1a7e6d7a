import { validateConfig, type Config, type Pool } from '../../lib/config';
import type { Retirement, Termination } from '../../lib/model';
import type { Clock, Fleet, FleetWorker, LaunchRequest, LaunchResult, Logger } from '../../lib/controller/ports';
import type { WorkerStateWrite } from '../../lib/controller/reports';

export function testConfig(overrides: Record<string, unknown> = {}, pools?: Record<string, unknown>[]): Config {
  return validateConfig({
    deployment: 'ci',
    gitlab: { url: 'https://gitlab.example.com' },
    pools: pools ?? [
      {
        name: 'docker',
        runUntagged: true,
        tags: ['docker'],
        IdleCount: 2,
        IdleTime: 600,
        limit: 20,
        worker: { instanceTypes: ['m6i.large', 'm5.large'], subnets: ['subnet-0a', 'subnet-0b'], ami: 'ami-0123456789abcdef0' },
      },
    ],
    ...overrides,
  });
}

export class ManualClock implements Clock {
  constructor(public t = Date.parse('2025-03-03T10:00:00Z')) {}
  now() {
    return this.t;
  }
  advance(seconds: number) {
    this.t += seconds * 1000;
  }
}

export class MemoryLogger implements Logger {
  lines: { level: string; message: string; fields?: Record<string, unknown> }[] = [];
  info(message: string, fields?: Record<string, unknown>) {
    this.lines.push({ level: 'info', message, fields });
  }
  warn(message: string, fields?: Record<string, unknown>) {
    this.lines.push({ level: 'warn', message, fields });
  }
  error(message: string, fields?: Record<string, unknown>) {
    this.lines.push({ level: 'error', message, fields });
  }
  at(level: string) {
    return this.lines.filter((l) => l.level === level).map((l) => l.message);
  }
}

/** A Fleet in memory for the controller's unit tests; `launchImpl` decides what a launch returns. */
export class FakeFleet implements Fleet {
  workers = new Map<string, FleetWorker>();
  launches: LaunchRequest[] = [];
  retired: Retirement[] = [];
  terminated: Termination[] = [];
  /** Worker-state tag writes (recordWorkerState), in order; `failWrites` makes them fail. */
  stateWrites: WorkerStateWrite[] = [];
  failWrites = false;
  private next = 1;
  launchImpl?: (req: LaunchRequest) => LaunchResult;
  /** Set to report a launch template version per pool (Fleet.currentTemplateVersion). */
  currentTemplateVersion?: (pool: Pool) => Promise<string | undefined>;

  constructor(private readonly clock: Clock) {}

  /** A worker as discovery shows it: one that is not booting has reported ready (and idle or busy), unless `w` says otherwise. */
  add(w: Partial<FleetWorker> & { pool: string; state: FleetWorker['state'] }): FleetWorker {
    const launchedAt = w.launchedAt ?? this.clock.now();
    const evidence: Partial<FleetWorker> = w.state === 'booting' ? {} : { readyAt: launchedAt, ...(w.state === 'idle' || w.state === 'busy' ? { reported: w.state } : {}) };
    const worker: FleetWorker = { id: `i-${(this.next++).toString(16).padStart(17, '0')}`, launchedAt, builds: 0, ...evidence, ...w };
    this.workers.set(worker.id, worker);
    return worker;
  }
  async discover(): Promise<FleetWorker[]> {
    return [...this.workers.values()].map((w) => ({ ...w }));
  }
  async launch(req: LaunchRequest): Promise<LaunchResult> {
    this.launches.push(req);
    if (this.launchImpl) {
      const r = this.launchImpl(req);
      for (const w of r.launched) this.workers.set(w.id, w as FleetWorker);
      return r;
    }
    const launched = Array.from({ length: req.count }, () => this.add({ pool: req.pool.name, state: 'booting', passId: req.passId, instanceType: 'm6i.large', subnet: 'subnet-0a' }));
    return { launched, errors: [] };
  }
  async requestRetirement(rs: readonly Retirement[]) {
    for (const r of rs) {
      this.retired.push(r);
      const w = this.workers.get(r.id);
      if (w) {
        w.state = 'retiring';
        w.retireRequestedAt = this.clock.now();
      }
    }
  }
  async terminate(ts: readonly Termination[]) {
    for (const t of ts) {
      this.terminated.push(t);
      this.workers.delete(t.id);
    }
  }
  async recordWorkerState(writes: readonly WorkerStateWrite[]): Promise<boolean[]> {
    if (this.failWrites) return writes.map(() => false);
    this.stateWrites.push(...writes);
    return writes.map(() => true);
  }
}

/** A DescribeLaunchTemplateVersions answer for a template the adapter accepts (IMDSv2, tags, terminate, encrypted root, profile). */
export function launchTemplateVersions(version: number) {
  return {
    LaunchTemplateVersions: [
      {
        VersionNumber: version,
        LaunchTemplateData: {
          MetadataOptions: { HttpTokens: 'required' as const, InstanceMetadataTags: 'enabled' as const },
          InstanceInitiatedShutdownBehavior: 'terminate' as const,
          BlockDeviceMappings: [{ DeviceName: '/dev/xvda', Ebs: { Encrypted: true } }],
          IamInstanceProfile: { Name: 'worker' },
        },
      },
    ],
  };
}
