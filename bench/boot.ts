/**
 * The worker's boot timeline, measured where it can be here: the rendered user data runs under
 * bash with the worker harness (test/worker/harness.ts: fake docker / aws / gitlab-runner that
 * answer at once, an IMDS and GitLab stand-in on 127.0.0.1), and its ready report carries the
 * timeline it measured itself (lib/worker/script.ts boot_timeline). What this measures is the
 * script's own work between its steps (reading IMDS and tags, scheduling the hard lifetime,
 * checking the image, writing config.toml), not EC2, dnf, registries or AWS API latency, which
 * docs/simulation.md ("Boot model") takes from published figures.
 *
 *   npm run bench -- boot            (RUNS=N for more runs; default 7)
 *
 * Scenarios: a pre-built image (marker present, gitlab-runner baked, its release checked); the base
 * AMI with gitlab-runner downloaded from the stand-in and checked against release.sha256 (the real
 * download's network time is not in it); the image build (build-image).
 */
import { decodeReport } from '../lib/controller/reports';
import { reportsSent, runScenario, type Scenario } from '../test/worker/harness';

const RUNS = Number(process.env.RUNS ?? 7);
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const fmt = (xs: number[]) => `${median(xs).toFixed(2)} (${Math.min(...xs).toFixed(2)}-${Math.max(...xs).toFixed(2)})`;

const scenarios: [string, Omit<Scenario, 'name'>][] = [
  ['pre-built image', { prebuilt: {}, pool: { MaxBuilds: 1 }, runner: { jobs: 1 }, launchedSecondsAgo: 0 }],
  ['base AMI (docker there), gitlab-runner downloaded over loopback', { download: 'good', pool: { MaxBuilds: 1 }, runner: { jobs: 1 }, launchedSecondsAgo: 0 }],
];

async function main(): Promise<void> {
  console.log(`Worker boot under the harness, ${RUNS} runs each; seconds, median (min-max), from the user data's start:`);
  console.log(['scenario', 'to docker answers', 'to gitlab-runner in place', 'to ready report', 'whole script (to power-off)'].join(' | '));
  for (const [label, s] of scenarios) {
    const docker: number[] = [];
    const runner: number[] = [];
    const ready: number[] = [];
    const whole: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const started = performance.now();
      const r = await runScenario({ ...s, name: `bench-${i}` });
      whole.push((performance.now() - started) / 1000);
      const first = reportsSent(r.calls)[0];
      const boot = first && decodeReport('m', JSON.stringify(first)).boot;
      if (r.exitCode !== 0 || !boot || boot.userData === undefined) throw new Error(`${label}: no boot timeline (exit ${r.exitCode})\n${r.output}`);
      docker.push(boot.docker! - boot.userData);
      runner.push(boot.runner! - boot.userData);
      ready.push(boot.ready! - boot.userData);
    }
    console.log([label, fmt(docker), fmt(runner), fmt(ready), fmt(whole)].join(' | '));
  }
  const build: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const started = performance.now();
    const r = await runScenario({ name: `bench-build-${i}`, buildImage: true, download: 'good', runner: { jobs: 0 } });
    if (r.exitCode !== 0) throw new Error(`image build failed\n${r.output}`);
    build.push((performance.now() - started) / 1000);
  }
  console.log(`image build (build-image: runner downloaded and checked, two pulls, marker): ${fmt(build)} s whole`);
  console.log('The offsets have 0.1 s resolution (the timeline the worker reports); EC2, dnf, registries and AWS calls are not in them (docs/simulation.md, "Boot model").');
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
