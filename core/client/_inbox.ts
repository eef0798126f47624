/** Incoming messages waiting for `next()` / iteration, bounded, with timed takes. */
import type { ClientClock, ClientTimer } from "./clock.ts";
import { ReceiveTimeoutError } from "./errors.ts";

interface Taker {
  resolve(value: unknown): void;
  reject(error: Error): void;
  timer: ClientTimer | undefined;
}

export class Inbox {
  readonly #limit: number;
  readonly #clock: ClientClock;
  #values: unknown[] = [];
  #head = 0;
  #takers: Taker[] = [];
  #ended: Error | undefined;
  #drained: (() => void)[] = [];

  constructor(limit: number, clock: ClientClock) {
    this.#limit = limit;
    this.#clock = clock;
  }

  get size(): number {
    return this.#values.length - this.#head;
  }

  /** Whether the reader should stop reading the socket until `drained()` resolves. */
  get full(): boolean {
    return this.size >= this.#limit && this.#ended === undefined;
  }

  push(value: unknown): void {
    const taker = this.#takers.shift();
    if (taker !== undefined) {
      taker.timer?.cancel();
      taker.resolve(value);
      return;
    }
    this.#values.push(value);
  }

  take(timeoutMs: number | undefined): Promise<unknown> {
    if (this.size > 0) {
      const value = this.#values[this.#head];
      this.#values[this.#head++] = undefined;
      if (this.#head > 1024 && this.#head * 2 > this.#values.length) {
        this.#values = this.#values.slice(this.#head);
        this.#head = 0;
      }
      if (this.size < this.#limit) this.#wakeDrained();
      return Promise.resolve(value);
    }
    if (this.#ended !== undefined) return Promise.reject(this.#ended);
    return new Promise((resolve, reject) => {
      const taker: Taker = { resolve, reject, timer: undefined };
      if (timeoutMs !== undefined) {
        taker.timer = this.#clock.setTimeout(() => {
          this.#takers = this.#takers.filter((t) => t !== taker);
          reject(new ReceiveTimeoutError(`No message arrived within ${timeoutMs} ms`));
        }, timeoutMs);
      }
      this.#takers.push(taker);
      this.#wakeDrained();
    });
  }

  /** Resolves once the inbox has room again (or ended). */
  drained(): Promise<void> {
    if (!this.full) return Promise.resolve();
    return new Promise((resolve) => this.#drained.push(resolve));
  }

  /** Ends the inbox: queued values can still be taken, then takes reject with `error`. */
  end(error: Error): void {
    if (this.#ended !== undefined) return;
    this.#ended = error;
    for (const taker of this.#takers.splice(0)) {
      taker.timer?.cancel();
      taker.reject(error);
    }
    this.#wakeDrained();
  }

  #wakeDrained(): void {
    for (const wake of this.#drained.splice(0)) wake();
  }
}
