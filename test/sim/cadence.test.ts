/**
 * The simulation drives the controller at the deployment's own cadence (issue 13: one definition,
 * lib/controller/loop.ts CADENCE): the same schedule as the stack, the same batching window and
 * tick as the handler's loop.
 */
import { CADENCE, LOOP_DEFAULTS, scheduleRate } from '../../lib/controller/loop';
import { LOOP_FOR_MS } from '../../handlers/reconcile';
import { DEFAULT_AUTOSCALER } from '../../lib/sim/autoscaler';

describe('one cadence for the stack, the handler and the simulation', () => {
  it('the simulated autoscaler uses the deployed schedule, loop length, batching window and tick', () => {
    expect(DEFAULT_AUTOSCALER.scheduleEverySeconds * 1000).toBe(CADENCE.scheduleEveryMs);
    expect(DEFAULT_AUTOSCALER.loopSeconds * 1000).toBe(CADENCE.loopForMs);
    expect(DEFAULT_AUTOSCALER.minPassIntervalSeconds * 1000).toBe(CADENCE.minPassIntervalMs);
    expect(DEFAULT_AUTOSCALER.tickSeconds * 1000).toBe(CADENCE.tickIntervalMs);
  });

  it('the handler loops for CADENCE.loopForMs with the loop defaults of CADENCE', () => {
    expect(LOOP_FOR_MS).toBe(CADENCE.loopForMs);
    expect(LOOP_DEFAULTS.minPassIntervalMs).toBe(CADENCE.minPassIntervalMs);
    expect(LOOP_DEFAULTS.tickIntervalMs).toBe(CADENCE.tickIntervalMs);
    expect(CADENCE.loopForMs).toBeLessThan(CADENCE.scheduleEveryMs);
  });

  it('the schedule expression follows the period (whole minutes only)', () => {
    expect(scheduleRate()).toBe('rate(1 minute)');
    expect(scheduleRate(120_000)).toBe('rate(2 minutes)');
    expect(() => scheduleRate(30_000)).toThrow(/whole number of minutes/);
  });
});
