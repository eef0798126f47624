/**
 * A FIFO queue with O(1) push, shift and unshift (an array with a moving head,
 * compacted now and then), for the scheduler's per-key queues.
 *
 * @module
 */

/**
 * A double-ended queue.
 *
 * @example
 * ```ts
 * import { Deque } from "./deque.ts";
 * const queue = new Deque<number>();
 * queue.push(2);
 * queue.unshift(1);
 * if (queue.shift() !== 1 || queue.peek() !== 2 || queue.length !== 1) throw new Error("order");
 * ```
 */
export class Deque<T> {
  #items: (T | undefined)[] = [];
  #head = 0;

  /** Number of items. */
  get length(): number {
    return this.#items.length - this.#head;
  }

  /** Appends an item. */
  push(item: T): void {
    this.#items.push(item);
  }

  /** Puts an item in front. */
  unshift(item: T): void {
    if (this.#head > 0) this.#items[--this.#head] = item;
    else this.#items.unshift(item);
  }

  /** The first item, without removing it. */
  peek(): T | undefined {
    return this.#head < this.#items.length ? this.#items[this.#head] : undefined;
  }

  /** Removes and returns the first item. */
  shift(): T | undefined {
    if (this.#head >= this.#items.length) return undefined;
    const item = this.#items[this.#head];
    this.#items[this.#head++] = undefined;
    if (this.#head === this.#items.length) {
      this.#items = [];
      this.#head = 0;
    } else if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    return item;
  }

  /** Removes every item matching `predicate`; returns how many. */
  remove(predicate: (item: T) => boolean): number {
    const kept = this.#items.slice(this.#head).filter((item) => !predicate(item as T));
    const removed = this.length - kept.length;
    this.#items = kept;
    this.#head = 0;
    return removed;
  }

  /** Iterates front to back. */
  *[Symbol.iterator](): IterableIterator<T> {
    for (let i = this.#head; i < this.#items.length; i++) yield this.#items[i] as T;
  }
}
