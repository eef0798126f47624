/**
 * A gate that pauses input process-wide: socket reads wait while it is closed
 * (the `#threads` bound on queued messages, or overload). Plain state, shared
 * by every connection of a process.
 *
 * @module
 */

/**
 * Open/closed with waiters; `readBytes` is the per-socket read budget per round
 * (shrunk while the process is overloaded).
 *
 * @example
 * ```ts
 * import { FlowGate } from "./flow_gate.ts";
 * const gate = new FlowGate(65536);
 * gate.close();
 * const waiting = gate.wait();
 * gate.open();
 * await waiting;
 * ```
 */
export class FlowGate {
  /** Bytes a socket may read per round. */
  readBytes: number;
  #closed = false;
  #waiters: (() => void)[] = [];

  constructor(readBytes: number) {
    this.readBytes = readBytes;
  }

  /** Whether reads may proceed. */
  get isOpen(): boolean {
    return !this.#closed;
  }

  /** Pauses reads. */
  close(): void {
    this.#closed = true;
  }

  /** Lets reads proceed and wakes the waiting ones. */
  open(): void {
    this.#closed = false;
    for (const wake of this.#waiters.splice(0)) wake();
  }

  /** Resolves once the gate is open. */
  wait(): Promise<void> {
    if (!this.#closed) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push(resolve));
  }
}

/**
 * The `#threads` bound: frames queued in the process; the gate closes at `max`
 * and opens again below 90 % of it.
 */
export class PendingBound {
  readonly max: number;
  readonly gate: FlowGate;
  #count = 0;

  constructor(max: number, gate: FlowGate) {
    this.max = max;
    this.gate = gate;
  }

  /** Frames queued now. */
  get count(): number {
    return this.#count;
  }

  /** One more frame queued. */
  add(): void {
    if (++this.#count >= this.max && this.gate.isOpen) this.gate.close();
  }

  /** One frame finished (or was dropped). */
  remove(): void {
    if (this.#count > 0) this.#count--;
    if (!this.gate.isOpen && this.#count < this.max * 0.9) this.gate.open();
  }
}
