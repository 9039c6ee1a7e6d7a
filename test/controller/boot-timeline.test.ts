/**
 * From a worker's ready report to the controller's log and metrics: the boot timeline the worker
 * measured (lib/worker/script.ts) reaches the pass report (PassReport.boots), a log line per
 * worker, and the EMF boot metrics per pool and image (lib/lambda/metrics.ts).
 */
import { reconcilePass } from '../../lib/controller/reconcile';
import { decodeReport, encodeReport, ReportMemory } from '../../lib/controller/reports';
import { MemoryStateStore } from '../../lib/controller/state';
import { passMetricLines } from '../../lib/lambda/metrics';
import { FakeFleet, ManualClock, MemoryLogger, testConfig } from './fixtures';

const ROLE = 'AROAWORKERROLE0000001';

test('a ready report\'s timeline is logged once per worker and emitted as boot metrics of its pool', async () => {
  const clock = new ManualClock();
  const fleet = new FakeFleet(clock);
  const log = new MemoryLogger();
  const config = testConfig();
  const deps = { config, stage: 'test', fleet, store: new MemoryStateStore(log), clock, log, reportMemory: new ReportMemory(), workerRoleIds: [ROLE] };
  const w = fleet.add({ pool: 'docker', state: 'booting', launchedAt: clock.now() - 30_000 });
  const boot = { running: 16.6, userData: 21.9, docker: 23.4, runner: 23.5, ready: 26.1, image: 'prebuilt' as const };
  const body = encodeReport({ instanceId: w.id, seq: 1, state: 'idle', builds: 0, at: clock.now(), readyAt: clock.now(), boot });
  const ready = decodeReport('m1', body, { sender: `${ROLE}:${w.id}`, sentAt: clock.now(), receiveCount: 1 });
  const r = await reconcilePass(deps, { events: [], reports: [ready], trigger: 'queue', passId: 'p1' });
  expect(r.boots).toEqual([{ instanceId: w.id, pool: 'docker', boot }]);
  expect(log.lines.filter((l) => l.message === 'worker boot timeline')).toEqual([{ level: 'info', message: 'worker boot timeline', fields: { passId: 'p1', instanceId: w.id, pool: 'docker', ...boot } }]);
  const metric = passMetricLines(r, 'ci', 'test', 'queue').map((l) => JSON.parse(l)).find((l) => 'BootReady' in l);
  expect(metric).toMatchObject({ Pool: 'docker', Image: 'prebuilt', BootRunning: [16.6], BootReady: [26.1] });
  // The next pass has nothing new to say about it.
  const again = await reconcilePass(deps, { events: [], reports: [], trigger: 'schedule', passId: 'p2' });
  expect(again.boots).toEqual([]);
});
