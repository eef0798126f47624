/**
 * The main thread's read loop over one worker's outbound ring.
 *
 * @module
 */
import type { RingReceiver } from "../ring/mod.ts";
import { MacrotaskYield } from "./macrotask_yield.ts";

/** Longest stretch a read loop runs before letting I/O in. */
const YIELD_EVERY_MS = 2;

/**
 * Reads records from `receiver` as they come until `signal` aborts, calling
 * `onTurnEnd` after each batch.
 *
 * @example
 * ```ts ignore
 * await readRing(receiver, abort.signal, (tag, a, b, body) => route(tag, body), flush);
 * ```
 */
export async function readRing(
  receiver: RingReceiver,
  signal: AbortSignal,
  onRecord: (tag: number, a: number, b: number, body: Uint8Array) => void,
  onTurnEnd: () => void,
): Promise<void> {
  using pause = new MacrotaskYield(YIELD_EVERY_MS);
  while (!signal.aborted) {
    const count = receiver.drain(onRecord);
    if (count > 0) {
      onTurnEnd();
      // A busy worker must not starve sockets, timers and the other workers' loops.
      await pause.maybe();
      continue;
    }
    try {
      await receiver.wait(undefined, signal);
    } catch {
      return; // aborted
    }
    pause.reset();
  }
}
