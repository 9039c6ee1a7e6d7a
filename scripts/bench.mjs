// `npm run bench`: runs every bench/*.ts in turn and prints their figures. Benchmarks print;
// they never fail on a slow machine (timing goals are not tests).
import { readdirSync } from 'node:fs';
import { spawnSync } from 'node:child_process';

const only = process.argv.slice(2);
const files = readdirSync('bench').filter((f) => f.endsWith('.ts') && (only.length === 0 || only.some((o) => f.includes(o)))).sort();
let failed = 0;
for (const f of files) {
  console.log(`\n== bench/${f}`);
  // The SDK's multi-line notice that its 2027 releases need Node 22 would repeat in every bench on
  // Node 20 (the benches create SDK clients for moto themselves; the CLI silences it on its own).
  const env = { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' };
  const r = spawnSync(process.execPath, ['--import', 'tsx', `bench/${f}`], { stdio: 'inherit', env });
  if (r.status !== 0) {
    failed++;
    console.log(`bench/${f} exited with ${r.status}`);
  }
}
process.exit(failed ? 1 : 0);
