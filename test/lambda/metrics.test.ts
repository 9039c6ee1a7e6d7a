/** The boot-timeline metrics (lib/lambda/metrics.ts bootMetricLines): EMF per pool and image, value arrays in seconds. */
import { bootMetricLines, emfLine, passMetricLines } from '../../lib/lambda/metrics';

describe('boot timeline metrics', () => {
  const report = {
    passId: 'p1',
    plan: { pools: [] },
    launched: {},
    launchErrors: [],
    retired: [],
    terminated: [],
    durationMs: 12,
    boots: [
      { pool: 'general', boot: { running: 16.5, userData: 22, docker: 23, runner: 23.1, ready: 25.3, image: 'prebuilt' } },
      { pool: 'general', boot: { running: 17.2, userData: 23, docker: 24, runner: 24.2, ready: 26.9, image: 'prebuilt' } },
      { pool: 'general', boot: { userData: 24, ready: 70.1, image: 'base' } },
      { pool: 'heavy', boot: { ready: 60 } },
    ],
  };

  test('one EMF line per pool and image, each step an array of the workers\' seconds', () => {
    const lines = bootMetricLines(report, 'acme-ci', 'prod', 'queue', 1_000).map((l) => JSON.parse(l));
    expect(lines.map((l) => [l.Pool, l.Image])).toEqual([
      ['general', 'prebuilt'],
      ['general', 'base'],
      ['heavy', 'unknown'],
    ]);
    expect(lines[0]).toMatchObject({ Deployment: 'acme-ci', Stage: 'prod', BootRunning: [16.5, 17.2], BootReady: [25.3, 26.9], passId: 'p1' });
    expect(lines[0]._aws.CloudWatchMetrics[0].Dimensions).toEqual([['Deployment', 'Stage', 'Pool', 'Image']]);
    expect(lines[0]._aws.CloudWatchMetrics[0].Metrics).toEqual(['BootRunning', 'BootUserData', 'BootDocker', 'BootRunner', 'BootReady'].map((Name) => ({ Name, Unit: 'Seconds' })));
    expect(lines[1]).toMatchObject({ BootUserData: [24], BootReady: [70.1] });
    expect(lines[1].BootRunning).toBeUndefined();
    // The pass's lines carry them; a pass without boots has none.
    expect(passMetricLines(report, 'acme-ci', 'prod', 'queue').filter((l) => l.includes('BootReady'))).toHaveLength(3);
    expect(passMetricLines({ ...report, boots: [] }, 'acme-ci', 'prod', 'queue').filter((l) => l.includes('Boot'))).toEqual([]);
  });

  test('EMF value arrays: at most 100 values, all finite', () => {
    expect(JSON.parse(emfLine({ D: 'x' }, { A: { value: [1, 2], unit: 'Seconds' }, B: { value: [1, NaN] }, C: { value: [] } }, {}, 1)).A).toEqual([1, 2]);
    expect(JSON.parse(emfLine({ D: 'x' }, { B: { value: [1, NaN] } }, {}, 1)).B).toBeUndefined();
  });
});
