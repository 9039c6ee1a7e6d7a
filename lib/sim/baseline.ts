/**
 * The docker+machine baseline: what the same trace costs and waits under gitlab-runner's
 * docker+machine autoscaler (executors/docker/machine, idle_limit_strategy.go;
 * docs.gitlab.com/runner/configuration/autoscale/), on on-demand instances.
 *
 * Every check_interval (3 s, gitlab-runner's default) the runner manager, per pool:
 *  - removes idle machines, checked in order: builds >= MaxBuilds; Total >= limit; idle longer
 *    than IdleTime while the idle target is exceeded without it (facts.md);
 *  - creates machines while the idle target is not met, Creating < MaxGrowthRate and Total < limit;
 *  - takes pending jobs: with IdleCount > 0 in force, only onto idle machines (a job waits until
 *    the idle pool has one; the replacement is created after); with IdleCount = 0, it creates a
 *    machine for each job it takes (the job waits through the boot), within limit and MaxGrowthRate.
 * `concurrent` caps the jobs running at once (the world refuses pickups past it). There are no
 * job-driven launches while IdleCount > 0, no spot, hence no capacity errors or interruptions.
 * Machines boot like the controller's workers (same distribution): a conservative choice, as
 * docker-machine's SSH provisioning is usually slower.
 */
import type { Config } from '../config';
import { activeSettings } from '../periods';
import { idleTarget } from '../planner';
import type { SimWorker, World } from './cloud';

export const CHECK_INTERVAL_MS = 3000;

export class DockerMachineBaseline {
  constructor(
    private readonly world: World,
    private readonly config: Config,
  ) {}

  start(): void {
    const tick = () => {
      this.check();
      this.world.at(this.world.now + CHECK_INTERVAL_MS, tick);
    };
    this.world.at(this.world.now, tick);
  }

  check(): void {
    const world = this.world;
    const now = world.now;
    for (const pool of this.config.pools) {
      const settings = activeSettings(pool, new Date(now));
      const machines: SimWorker[] = [];
      for (const w of world.workers.values()) if (w.pool.name === pool.name) machines.push(w);
      const counts = () => {
        let creating = 0, idle = 0, used = 0, total = 0;
        for (const w of machines) {
          if (w.state === 'gone') continue;
          total++;
          if (w.state === 'booting' && !w.boundJob) creating++;
          else if (w.state === 'idle') idle++;
          else if (w.state === 'busy' || w.boundJob) used++;
        }
        return { creating, idle, used, total, available: creating + idle };
      };

      // Removal of idle machines, oldest idle first.
      const idleMachines = machines.filter((w) => w.state === 'idle').sort((a, b) => (a.idleSince ?? 0) - (b.idleSince ?? 0));
      for (const w of idleMachines) {
        const c = counts();
        const target = idleTarget(settings, c.used);
        const maxBuilds = pool.MaxBuilds > 0 && w.builds >= pool.MaxBuilds;
        const overLimit = pool.limit > 0 && c.total >= pool.limit && world.pendingJobs(pool.name).length === 0;
        const idleTooLong = now - (w.idleSince ?? now) >= settings.IdleTime * 1000 && c.available - 1 >= target;
        if (maxBuilds || overLimit || idleTooLong) world.leave(w);
      }

      // Jobs onto machines created for them, when no idle pool is kept (IdleCount 0).
      const growthRoom = () => pool.MaxGrowthRate <= 0 || counts().creating + machines.filter((w) => w.state === 'booting' && w.boundJob).length < pool.MaxGrowthRate;
      const underLimit = () => pool.limit <= 0 || counts().total < pool.limit;
      const underConcurrent = () => this.config.concurrent <= 0 || world.runningJobs() < this.config.concurrent;
      if (settings.IdleCount === 0) {
        while (world.pendingJobs(pool.name).length > 0 && underLimit() && growthRoom() && underConcurrent()) {
          const job = world.takePending(pool.name)!;
          const w = world.launchWorker(pool, pool.worker.instanceTypes[0], pool.worker.subnets[machines.length % pool.worker.subnets.length], 'on-demand', false);
          w.boundJob = job;
          machines.push(w);
        }
      }

      // The idle pool.
      for (;;) {
        const c = counts();
        if (c.available >= idleTarget(settings, c.used) || !underLimit() || !growthRoom()) break;
        machines.push(world.launchWorker(pool, pool.worker.instanceTypes[0], pool.worker.subnets[machines.length % pool.worker.subnets.length], 'on-demand', false));
      }
    }
  }
}
