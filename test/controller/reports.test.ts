/**
 * Worker reports (lib/controller/reports.ts): the body format the worker's printf builds, who may
 * speak for an instance (SenderId), newest-wins merging, and the few tag sets that record them.
 */
import { applyReports, decodeReport, encodeReport, ReportError, ReportMemory, senderProblem, type WorkerReport } from '../../lib/controller/reports';
import type { FleetWorker } from '../../lib/controller/ports';
import { TAGS } from '../../lib/controller/tags';
import type { ReportedState } from '../../lib/model';

const T0 = Date.parse('2026-11-30T10:00:30Z');
const ROLE = 'AROAWORKER00000000001';
const KEYS = { ready: TAGS.ready, state: TAGS.state, idleSince: TAGS.idleSince, stoppedAt: TAGS.stoppedAt, builds: TAGS.builds };
const id = (k: number) => `i-${k.toString(16).padStart(17, '0')}`;

function booting(k: number): FleetWorker {
  return { id: id(k), pool: 'docker', state: 'booting', launchedAt: T0 - 300_000, builds: 0, instanceState: 'running' };
}
function report(k: number, seq: number, state: ReportedState, extra: Partial<WorkerReport> = {}): WorkerReport {
  return { id: `m-${k}-${seq}`, instanceId: id(k), seq, state, builds: seq, at: T0, readyAt: T0 - 60_000, sender: `${ROLE}:${id(k)}`, sentAt: T0, receiveCount: 1, ...extra };
}
const apply = (ws: FleetWorker[], rs: WorkerReport[], memory = new ReportMemory()) => applyReports(ws, rs, { memory, workerRoleIds: [ROLE], tagKeys: KEYS, now: T0 });

describe('the report body', () => {
  test('round-trips; what the worker script sends decodes', () => {
    const body = encodeReport({ instanceId: id(1), seq: 7, state: 'idle', builds: 3, at: T0, readyAt: T0 - 60_000, idleSince: T0 - 5_000, retireSeen: '2026-11-30T09:00:00.000Z' });
    expect(JSON.parse(body)).toEqual({ v: 1, i: id(1), q: 7, s: 'idle', n: 3, t: Math.floor(T0 / 1000), r: Math.floor((T0 - 60_000) / 1000), is: Math.floor((T0 - 5_000) / 1000), rt: '2026-11-30T09:00:00.000Z' });
    // The exact shape lib/worker/script.ts prints (test/worker/lifecycle.test.ts checks the script side).
    const fromBash = `{"v":1,"i":"${id(1)}","q":2,"s":"busy","n":1,"t":1764496800,"r":1764496700}`;
    expect(decodeReport('m', fromBash, { sender: 'x' })).toMatchObject({ instanceId: id(1), seq: 2, state: 'busy', builds: 1, at: 1764496800_000, readyAt: 1764496700_000, sender: 'x' });
  });

  test('an unreadable body is an error that names what is wrong (the message is left for the dead-letter queue)', () => {
    for (const [body, msg] of [
      ['nope', /not JSON/],
      ['{"v":2}', /unknown report version 2/],
      ['{"v":1,"i":"x"}', /instance id/],
      [`{"v":1,"i":"${id(1)}","q":-1}`, /sequence number/],
      [`{"v":1,"i":"${id(1)}","q":1,"s":"dancing","n":0,"t":1}`, /not one of idle, busy, draining, stopped/],
    ] as const)
      expect(() => decodeReport('m', body)).toThrow(ReportError), expect(() => decodeReport('m', body)).toThrow(msg);
  });
});

describe('who may speak for an instance', () => {
  test('only a session of a worker role named after the instance itself', () => {
    expect(senderProblem({ instanceId: id(1), sender: `${ROLE}:${id(1)}` }, [ROLE])).toBeUndefined();
    expect(senderProblem({ instanceId: id(1), sender: `${ROLE}:${id(2)}` }, [ROLE])).toMatch(/sent by "i-0+2", speaks for i-0+1/);
    expect(senderProblem({ instanceId: id(1), sender: `AROAOTHER0000000000001:${id(1)}` }, [ROLE])).toMatch(/not a worker role/);
    expect(senderProblem({ instanceId: id(1), sender: 'AIDAIT2UOQQY3AUEKVGXU' }, [ROLE])).toMatch(/not an instance-profile session/); // an IAM user (moto's default)
    expect(senderProblem({ instanceId: id(1) }, [ROLE])).toBe('no SenderId');
    // Without known role ids (never when deployed: the env requires them) the session is still checked.
    expect(senderProblem({ instanceId: id(1), sender: `AROAANY:${id(2)}` }, [])).toMatch(/speaks for/);
  });
});

describe('applyReports', () => {
  test('at scale the busy and idle reports of a pass share a handful of tag sets', () => {
    const ws = Array.from({ length: 2000 }, (_, k) => ({ ...booting(k), state: 'idle' as const, reported: 'idle' as const, readyAt: T0 - 3_600_000, idleSince: T0 - 600_000 }));
    // 400 go busy, 400 others go idle within the same minute, 20 become ready, 5 drain, 3 stop.
    const rs = [
      ...Array.from({ length: 400 }, (_, k) => report(k, 5, 'busy')),
      ...Array.from({ length: 400 }, (_, k) => report(1000 + k, 5, 'idle', { idleSince: T0 - (k % 30) * 1000 })),
      ...Array.from({ length: 5 }, (_, k) => report(1500 + k, 5, 'draining')),
      ...Array.from({ length: 3 }, (_, k) => report(1600 + k, 5, 'stopped')),
    ];
    const ready = Array.from({ length: 20 }, (_, k) => booting(3000 + k));
    const readyReports = ready.map((w, k) => report(3000 + k, 1, 'idle', { readyAt: T0 - (k % 20) * 1000, idleSince: T0 - (k % 20) * 1000 }));
    const out = apply([...ws, ...ready], [...rs, ...readyReports]);
    expect(out.counts).toMatchObject({ applied: 400 + 400 + 5 + 3 + 20, refused: 0, stale: 0 });
    // busy; idle (idle-since rounded up to the minute); ready+idle; draining; stopped.
    expect(out.writes.length).toBeLessThanOrEqual(6);
    expect(out.writes.find((w) => w.write.tags[TAGS.state] === 'busy')!.write.ids).toHaveLength(400);
    const newlyReady = out.writes.filter((w) => w.write.tags[TAGS.ready]);
    expect(newlyReady.reduce((n, w) => n + w.write.ids.length, 0)).toBe(20);
  });

  test('5,000 workers retired at once (a drain, a template change), each with its own build count: a tag set for draining and one per minute for stopped, not one per build count', () => {
    const ws = Array.from({ length: 5000 }, (_, k) => ({ ...booting(k), state: 'busy' as const, reported: 'busy' as const, readyAt: T0 - 3_600_000, builds: k % 150 }));
    const draining = apply(ws, ws.map((w, k) => report(k, 100, 'draining', { builds: w.builds })));
    // One tag set: 10 CreateTags of 500 instances (it was one set per build count: 150 calls, over the bucket's 100).
    expect(draining.writes).toHaveLength(1);
    expect(draining.writes[0].write.tags).toEqual({ [TAGS.state]: 'draining' });
    const stopped = apply(draining.workers, ws.map((w, k) => report(k, 101, 'stopped', { builds: w.builds, sentAt: T0 + (k % 90) * 1000 })));
    expect(stopped.writes.length).toBeLessThanOrEqual(2);
    expect(stopped.counts.applied).toBe(5000);
  });

  test('the newest report wins: a pass, a container that remembers, and a worker that never comes back from draining', () => {
    const memory = new ReportMemory();
    const w = { ...booting(1), state: 'idle' as const, reported: 'idle' as const, readyAt: T0 - 600_000, idleSince: T0 - 60_000 };
    const a = apply([w], [report(1, 4, 'busy'), report(1, 3, 'idle')], memory);
    expect(a.workers[0].reported).toBe('busy');
    expect(a.counts.stale).toBe(1);
    memory.set(id(1), 4, 1);
    // An older report delivered late (SQS standard queues reorder) is dropped.
    const b = apply([{ ...w, reported: 'busy', state: 'busy' }], [report(1, 2, 'idle')], memory);
    expect(b.workers[0].reported).toBe('busy');
    expect(b.settled).toEqual(['m-1-2']);
    // A cold container has no memory; the tags still order draining before idle.
    const c = apply([{ ...w, reported: 'draining', state: 'retiring' }], [report(1, 1, 'idle')]);
    expect(c.workers[0]).toMatchObject({ reported: 'draining', state: 'retiring' });
    expect(c.counts.stale).toBe(1);
  });

  test('until the tags show a report the pass applied (its write failed, or DescribeInstances lags), the container plans from the report', () => {
    const memory = new ReportMemory();
    const idleTags = { ...booting(1), state: 'idle' as const, reported: 'idle' as const, readyAt: T0 - 600_000, idleSince: T0 - 60_000 };
    // Ready, then busy: applied (remembered) before the write; the write fails; the tags say nothing yet.
    apply([booting(1)], [report(1, 2, 'busy')], memory);
    expect(apply([booting(1)], [], memory).workers[0]).toMatchObject({ reported: 'busy', state: 'busy', readyAt: expect.any(Number) });
    // Draining is final, whatever older tags say.
    apply([idleTags], [report(1, 3, 'draining')], memory);
    expect(apply([idleTags], [], memory).workers[0]).toMatchObject({ reported: 'draining', state: 'retiring' });
    // Idle remembered, busy tagged (another container wrote a newer report, or this one lags): busy wins until the next report.
    const m2 = new ReportMemory();
    apply([idleTags], [report(1, 5, 'idle')], m2);
    expect(apply([{ ...idleTags, reported: 'busy', state: 'busy', idleSince: undefined }], [], m2).workers[0]).toMatchObject({ reported: 'busy', state: 'busy' });
    // Nothing remembered: the tags as they are.
    expect(apply([idleTags], []).workers[0]).toEqual(idleTags);
  });

  test('a heartbeat that says what the tags say costs no write; its message is done at once', () => {
    const w = { ...booting(1), state: 'idle' as const, reported: 'idle' as const, readyAt: Date.parse('2026-11-30T09:59:00Z'), idleSince: Date.parse('2026-11-30T10:00:00Z') };
    const out = apply([w], [report(1, 9, 'idle', { readyAt: Date.parse('2026-11-30T09:59:10Z'), idleSince: Date.parse('2026-11-30T09:59:40Z') })]);
    expect(out.writes).toEqual([]);
    expect(out.settled).toEqual(['m-1-9']);
    expect(out.counts.unchanged).toBe(1);
  });

  test('a report for an instance discovery does not show is delivered again twice, then dropped; one for an instance shutting down is done', () => {
    const out = apply([{ ...booting(2), instanceState: 'shutting-down', state: 'retiring' }], [report(1, 1, 'idle'), report(3, 1, 'idle', { receiveCount: 3 }), report(2, 1, 'busy')]);
    expect(out.retry).toEqual(['m-1-1']);
    expect(out.settled.sort()).toEqual(['m-2-1', 'm-3-1']);
  });

  test('a stopped report records when (SQS clock, rounded up), and keeps the first time when repeated', () => {
    const out = apply([{ ...booting(1), state: 'idle', reported: 'idle', readyAt: T0 - 600_000 }], [report(1, 5, 'stopped', { sentAt: Date.parse('2026-11-30T10:00:01Z') })]);
    expect(out.workers[0]).toMatchObject({ reported: 'stopped', state: 'retiring', stoppedAt: Date.parse('2026-11-30T10:01:00Z') });
    expect(out.writes[0].write.tags).toEqual({ [TAGS.state]: 'stopped', [TAGS.stoppedAt]: '2026-11-30T10:01:00.000Z' });
    const again = apply([out.workers[0]], [report(1, 6, 'stopped', { builds: 5, sentAt: T0 + 300_000 })]);
    expect(again.writes).toEqual([]);
  });
});

describe('the boot timeline (docs/worker.md, "Boot timeline")', () => {
  test('round-trips; what the worker script prints decodes; a malformed one is dropped, never the report', () => {
    const boot = { running: 16.4, userData: 24.1, docker: 45.9, runner: 51.2, ready: 53.8, image: 'base' as const };
    const body = encodeReport({ instanceId: id(1), seq: 1, state: 'idle', builds: 0, at: T0, readyAt: T0, boot });
    expect(JSON.parse(body).b).toEqual({ k: 16.4, u: 24.1, d: 45.9, g: 51.2, r: 53.8, img: 'base' });
    expect(decodeReport('m', body).boot).toEqual(boot);
    const fromBash = `{"v":1,"i":"${id(1)}","q":1,"s":"idle","n":0,"t":1764496800,"r":1764496800,"b":{"k":17.0,"u":20.0,"d":20.3,"g":20.3,"r":20.4,"img":"prebuilt"}}`;
    expect(decodeReport('m', fromBash).boot).toEqual({ running: 17, userData: 20, docker: 20.3, runner: 20.3, ready: 20.4, image: 'prebuilt' });
    // Without btime (no /proc/stat) the step is left out; a clock an hour off, a string, an array: dropped.
    expect(decodeReport('m', fromBash.replace('"k":17.0,', '').replace('"g":20.3', '"g":"x"').replace('"d":20.3', '"d":99999')).boot).toEqual({ userData: 20, ready: 20.4, image: 'prebuilt' });
    expect(decodeReport('m', fromBash.replace(/"b":\{[^}]*\}/, '"b":[1,2]')).boot).toBeUndefined();
    expect(decodeReport('m', fromBash.replace(/"img":"prebuilt"/, '"img":"<script>"')).boot!.image).toBeUndefined();
  });

  test('applyReports hands on each newly ready worker\'s timeline once, with its pool, also when a later report of the pass wins', () => {
    const boot = { running: 17, ready: 55, image: 'prebuilt' as const };
    const ws = [booting(1), booting(2), { ...booting(3), state: 'idle' as const, reported: 'idle' as const, readyAt: T0 - 120_000 }];
    const out = apply(ws, [report(1, 1, 'idle', { boot }), report(1, 2, 'busy'), report(2, 1, 'idle'), report(3, 1, 'idle', { boot })]);
    // 1: ready and busy in the same pass; 2: an older worker without a timeline; 3: already known ready (a repeat).
    expect(out.boots).toEqual([{ instanceId: id(1), pool: 'docker', boot }]);
    // A refused report's timeline is not taken.
    const refused = apply([booting(4)], [report(4, 1, 'idle', { boot, sender: `${ROLE}:${id(5)}` })]);
    expect(refused.boots).toEqual([]);
  });

  test('applyReports counts each worker\'s boot (launch to ready) once: not twice for ready and busy in one pass, not again when the reports come back, never from a refused report', () => {
    const memory = new ReportMemory();
    const ws = [booting(1), booting(2)];
    const out = apply(ws, [report(1, 1, 'idle'), report(1, 2, 'busy'), report(2, 1, 'idle', { sender: `${ROLE}:${id(9)}` })], memory);
    // booting() launched at T0 - 300 s, report() says ready at T0 - 60 s.
    expect(out.readied).toEqual([{ instanceId: id(1), pool: 'docker', seconds: 240 }]);
    // The tag write failed: the same reports come back next pass (the tags still show no ready).
    expect(apply(ws, [report(1, 1, 'idle'), report(1, 2, 'busy')], memory).readied).toEqual([]);
    // A ready time later than SQS received the report is capped there.
    expect(apply([booting(3)], [report(3, 1, 'idle', { readyAt: T0 + 3_600_000, sentAt: T0 - 10_000 })]).readied).toEqual([{ instanceId: id(3), pool: 'docker', seconds: 290 }]);
  });
});
