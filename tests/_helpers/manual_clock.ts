/** A Clock whose time moves only when the test says so. */
import type { Clock, TimerHandle } from "../../core/time/mod.ts";

export class ManualClock implements Clock {
  #now = 0;
  #timers: { at: number; fn: () => void; every?: number; cancelled: boolean }[] = [];

  now(): number {
    return this.#now;
  }

  wallNow(): number {
    return 1_700_000_000_000 + this.#now;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const timer = { at: this.#now + Math.max(0, ms), fn, cancelled: false };
    this.#timers.push(timer);
    return { cancel: () => timer.cancelled = true };
  }

  setInterval(fn: () => void, ms: number): TimerHandle {
    const timer = { at: this.#now + ms, fn, every: ms, cancelled: false };
    this.#timers.push(timer);
    return { cancel: () => timer.cancelled = true };
  }

  /** Moves time forward, running due timers in order. */
  advance(ms: number): void {
    const end = this.#now + ms;
    for (;;) {
      const due = this.#timers
        .filter((t) => !t.cancelled && t.at <= end)
        .sort((a, b) => a.at - b.at)[0];
      if (due === undefined) break;
      this.#now = due.at;
      if (due.every !== undefined) due.at += due.every;
      else due.cancelled = true;
      due.fn();
    }
    this.#now = end;
    this.#timers = this.#timers.filter((t) => !t.cancelled);
  }

  /** Timers still pending. */
  get pending(): number {
    return this.#timers.filter((t) => !t.cancelled).length;
  }
}
