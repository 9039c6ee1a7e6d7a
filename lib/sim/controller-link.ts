/** The real controller, as the simulation drives it: reconcilePass and the in-memory state store. */
import { reconcilePass } from '../controller/reconcile';
import { MemoryStateStore } from '../controller/state';
import type { ControllerLink } from './simulate';

export const realController: ControllerLink = {
  reconcilePass: (deps, input) => reconcilePass(deps, input),
  createStore: (log) => new MemoryStateStore(log),
};
