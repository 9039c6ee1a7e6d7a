/**
 * Does the webhook's answer to a wrong X-Gitlab-Token take a different time when the token has the
 * secret's length than when it does not (which would let a caller learn the length), or when it
 * shares a longer prefix with the secret? tokenMatches hashes both sides before comparing, so it
 * should not. Measured on decideDelivery, the whole 401 path, in interleaved rounds so that drift
 * of the machine hits every class alike; the figure is each class's median per call and its ratio
 * to the right-length class.
 *
 *   npx tsx bench/webhook-token-timing.ts      (ROUNDS=40, PER_ROUND=2000 by default)
 */
import { randomBytes } from 'node:crypto';
import { decideDelivery } from '../lib/webhook/job-hook';

// 64 hex characters, as `openssl rand -hex 32` makes them; drawn per run, so no secret-shaped literal is committed.
const SECRET = randomBytes(32).toString('hex');
const ROUNDS = Number(process.env.ROUNDS ?? 40);
const PER_ROUND = Number(process.env.PER_ROUND ?? 2000);

const classes: Record<string, string> = {
  'length 1': 'x',
  'length 32': 'x'.repeat(32),
  'length 63 (one short)': SECRET.slice(0, 63),
  'length 65 (one long)': SECRET + 'x',
  'length 64, first character wrong': 'x' + SECRET.slice(1),
  'length 64, last character wrong': SECRET.slice(0, 63) + 'x',
  'length 200': 'y'.repeat(200),
};
const body = JSON.stringify({ object_kind: 'build', build_id: 1, project_id: 1, build_status: 'pending' });
const request = (token: string) => ({ headers: { 'x-gitlab-token': token, 'x-gitlab-event': 'Job Hook', 'content-type': 'application/json' }, body });

const samples: Record<string, number[]> = Object.fromEntries(Object.keys(classes).map((k) => [k, []]));
for (let round = 0; round < ROUNDS + 2; round++) {
  for (const [name, token] of Object.entries(classes)) {
    const req = request(token);
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < PER_ROUND; i++) if (decideDelivery(req, { secret: SECRET, now: 0 }).status !== 401) throw new Error(`${name} was not refused`);
    const ns = Number(process.hrtime.bigint() - t0) / PER_ROUND;
    if (round >= 2) samples[name].push(ns); // two warm-up rounds
  }
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const reference = median(samples['length 64, last character wrong']);
console.log(`401 path (decideDelivery) per call, ${ROUNDS} interleaved rounds of ${PER_ROUND}; secret of 64 characters:`);
for (const [name, xs] of Object.entries(samples)) console.log(`  ${name.padEnd(34)} median ${(median(xs) / 1000).toFixed(2)} µs   x${(median(xs) / reference).toFixed(2)} of the right-length class`);
