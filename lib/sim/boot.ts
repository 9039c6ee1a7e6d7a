/**
 * How long a worker takes from CreateFleet to ready, and what its first job pays on top, by worker
 * image (`worker.image`: prebuilt or base). The steps are the worker's own boot timeline
 * (lib/worker/script.ts, docs/worker.md "Boot timeline"); each is a triangular distribution whose
 * figures are measured here where the step is the script's own work (`npm run bench -- boot`, the
 * worker harness) and taken from published sources otherwise. docs/simulation.md, "Boot model",
 * lists every figure with its source; where no source was found the figure is an estimate and says so.
 */
import type { Rng } from './rng';

export type WorkerImage = 'prebuilt' | 'base';

/** A step of a boot: triangular(min, mode, max) seconds. */
export interface BootStep {
  name: string;
  min: number;
  mode: number;
  max: number;
  /** Where the figure comes from (docs/simulation.md repeats it). */
  source: string;
}

/** From CreateFleet until cloud-init runs the user data: the same whatever the image. */
const LAUNCH: BootStep[] = [
  {
    name: 'pending → running',
    min: 14,
    mode: 17,
    max: 28,
    source: 'measured by others: 16.4–16.6 s for m6i/m7i/c7i/t3, independent of type (brevdev/ec2-coldboot-research); encrypted EBS slows launches (martysweet.co.uk, "EC2 Launch Times", 2023): the tail',
  },
  {
    name: 'running → user data starts',
    min: 5,
    mode: 8,
    max: 15,
    source: 'estimate: AL2023 reaches SSH 3.2 s after boot with cloud-init (brevdev/ec2-coldboot-research); cloud-init then runs its config and final stages before the user data',
  },
];

/** The worker script's own work outside installs and AWS calls (IMDS, tags, scheduling), measured. */
const SCRIPT: BootStep = { name: 'worker script (IMDS, tags, config)', min: 0.1, mode: 0.2, max: 1, source: 'measured: npm run bench -- boot, 0.1-0.5 s from the user data to the ready report with every command answering at once (the worker harness)' };

/** From the user data to docker answering and gitlab-runner in place. */
const TOOLS: Record<WorkerImage, BootStep[]> = {
  base: [
    { name: 'dnf install docker', min: 12, mode: 20, max: 45, source: 'estimate, no published timing found: AL2023 repository metadata plus docker 25, containerd, runc and 7 dependencies (yeongki0944.tistory.com, "Amazon Linux 2023 docker packages")' },
    { name: 'docker starts', min: 1, mode: 2, max: 5, source: 'docker.service 0.3-0.5 s in systemd-analyze (bottlerocket-os#4163), "around 4 seconds" to restart (moby#48243)' },
    { name: 'gitlab-runner download + sha256', min: 3, mode: 6, max: 15, source: 'estimate: the release binary (tens of MB) and release.sha256 from gitlab-runner-downloads (S3, us-east-1), checked with sha256sum' },
  ],
  prebuilt: [
    { name: 'docker starts (image blocks fetched lazily from the snapshot)', min: 1.5, mode: 3, max: 8, source: 'as base, plus EBS lazy loading of a new volume (terraform-aws-github-runner#1166; moby#48243 for an extreme case)' },
    { name: 'gitlab-runner --version check', min: 0.2, mode: 0.5, max: 3, source: 'estimate: one exec of the baked binary, paged in from a fresh volume' },
  ],
};

/** After gitlab-runner: the AWS CLI calls (queue URL, token, secrets), GitLab's verify, the ready report. */
const READY: BootStep = { name: 'queue URL, token, verify, ready report', min: 2, mode: 3.5, max: 8, source: 'estimate: three AWS CLI v2 processes (about 0.5-1 s each to start and call) and one HTTPS request to GitLab' };

/** What a worker's first job pulls that a pre-built image already holds: the helper and the job image. */
const FIRST_PULL: Record<WorkerImage, BootStep | undefined> = {
  base: { name: 'first job pulls the helper and job image', min: 3, mode: 6, max: 20, source: 'estimate: gitlab-runner-helper (alpine flavour) and a small job image from their registries; a large job image takes longer' },
  prebuilt: undefined,
};

export function bootSteps(image: WorkerImage): BootStep[] {
  return [...LAUNCH, SCRIPT, ...TOOLS[image], READY];
}

export function firstPullStep(image: WorkerImage): BootStep | undefined {
  return FIRST_PULL[image];
}

/** Inverse CDF of triangular(min, mode, max) at u in [0, 1). */
export function triangular(step: Pick<BootStep, 'min' | 'mode' | 'max'>, u: number): number {
  const { min, mode, max } = step;
  if (max <= min) return min;
  const f = (mode - min) / (max - min);
  return u < f ? min + Math.sqrt(u * (max - min) * (mode - min)) : max - Math.sqrt((1 - u) * (max - min) * (max - mode));
}

/** Seconds from CreateFleet to ready: the sum of the image's steps, each drawn independently. */
export function sampleBoot(image: WorkerImage, rng: Rng): number {
  return bootSteps(image).reduce((sum, step) => sum + triangular(step, rng.next()), 0);
}

/** Seconds the first job of a worker pays on top of its duration (0 for a pre-built image). */
export function sampleFirstPull(image: WorkerImage, rng: Rng): number {
  const step = firstPullStep(image);
  return step ? triangular(step, rng.next()) : 0;
}
