/** The bounded queue of frames not yet handed to the socket. */
import { SendQueueFullError } from "./errors.ts";

export interface Outgoing {
  frame: Uint8Array;
  resolve(): void;
  reject(error: Error): void;
}

export class SendQueue {
  readonly #maxFrames: number;
  readonly #maxBytes: number;
  #entries: Outgoing[] = [];
  #bytes = 0;

  constructor(maxFrames: number, maxBytes: number) {
    this.#maxFrames = maxFrames;
    this.#maxBytes = maxBytes;
  }

  get frames(): number {
    return this.#entries.length;
  }

  get bytes(): number {
    return this.#bytes;
  }

  /** Queues a frame; an empty queue always takes one frame, however large. */
  push(entry: Outgoing): void {
    const frames = this.#entries.length;
    if (
      frames > 0 && (frames >= this.#maxFrames || this.#bytes + entry.frame.length > this.#maxBytes)
    ) {
      throw new SendQueueFullError(
        `Cannot send a ${entry.frame.length}-byte frame: the outgoing queue holds ${frames} frames ` +
          `(${this.#bytes} bytes), limits ${this.#maxFrames} frames / ${this.#maxBytes} bytes`,
        frames,
        this.#bytes,
      );
    }
    this.#entries.push(entry);
    this.#bytes += entry.frame.length;
  }

  /** The first frames, up to `maxBytes` together (at least one), without removing them. */
  peek(maxBytes: number): Outgoing[] {
    const batch: Outgoing[] = [];
    let bytes = 0;
    for (const entry of this.#entries) {
      if (batch.length > 0 && bytes + entry.frame.length > maxBytes) break;
      batch.push(entry);
      bytes += entry.frame.length;
    }
    return batch;
  }

  /**
   * Removes the written `batch` from the head, entry by entry while it is still there:
   * after a reconnect the same frames may be written twice (at least once), never settled twice.
   */
  complete(batch: Outgoing[]): Outgoing[] {
    let count = 0;
    while (count < batch.length && this.#entries[count] === batch[count]) count++;
    return this.shift(count);
  }

  /** Removes the first `count` frames. */
  shift(count: number): Outgoing[] {
    const done = this.#entries.splice(0, count);
    for (const entry of done) this.#bytes -= entry.frame.length;
    return done;
  }

  /** Empties the queue, rejecting every frame with `error`. */
  rejectAll(error: Error): void {
    for (const entry of this.shift(this.#entries.length)) entry.reject(error);
  }
}

/** The frames of `batch` in one buffer, in order (one socket write for many frames). */
export function concatFrames(batch: Outgoing[]): Uint8Array {
  let length = 0;
  for (const entry of batch) length += entry.frame.length;
  const bytes = new Uint8Array(length);
  let offset = 0;
  for (const entry of batch) {
    bytes.set(entry.frame, offset);
    offset += entry.frame.length;
  }
  return bytes;
}
