/**
 * SharedArrayBuffer ring buffers that move Stage's messages between threads: the
 * low-level {@linkcode RingBuffer} and the message layer {@linkcode RingSender} /
 * {@linkcode RingReceiver} used by the worker pool.
 *
 * @example Passing a record through a ring
 * ```ts
 * import { RingBuffer, RingReceiver, RingSender } from "./mod.ts";
 * const ring = RingBuffer.create();
 * using sender = new RingSender(ring);
 * sender.send(1, 42, 0, new Uint8Array([1, 2, 3]));
 * const receiver = new RingReceiver(ring);
 * receiver.drain((tag, a, _b, body) => {
 *   if (tag !== 1 || a !== 42 || body.byteLength !== 3) throw new Error("bad record");
 * });
 * ```
 *
 * @module
 */

export {
  type RecordHandler,
  RingBuffer,
  type RingBufferOptions,
  type RingRecord,
} from "./ring_buffer.ts";
export { RingReceiver, RingSender } from "./ring_channel.ts";
