/**
 * The write half of a WebSocket connection: a stream of Stage frames (4-byte
 * LE total length + payload) becomes one WebSocket message per frame.
 *
 * @module
 */
import { applyMask, headerSize, Opcode, writeFrameHeader } from "./_websocket_frames.ts";

/** Options of a {@link WebSocketMessageWriter}. */
export interface MessageWriterOptions {
  /** A message is the whole frame (bson) rather than its payload (json, raw). */
  document: boolean;
  /** Mask every frame (clients must). */
  masked: boolean;
  /** Text messages (json) rather than binary. */
  text: boolean;
}

/**
 * Splits written bytes into frames and encodes each as one WebSocket frame; a
 * frame split across writes is held until it is complete.
 */
export class WebSocketMessageWriter {
  readonly #options: MessageWriterOptions;
  #pending: Uint8Array | undefined;

  constructor(options: MessageWriterOptions) {
    this.#options = options;
  }

  /** Bytes of an incomplete frame held for the next write. */
  get pendingBytes(): number {
    return this.#pending?.length ?? 0;
  }

  /**
   * The WebSocket frames for the complete Stage frames in `bytes` (after any
   * held bytes), as one buffer (empty when no frame completed).
   *
   * @throws {RangeError} if a frame header declares fewer than 4 bytes
   */
  encode(bytes: Uint8Array): Uint8Array {
    if (this.#pending !== undefined) {
      const joined = new Uint8Array(this.#pending.length + bytes.length);
      joined.set(this.#pending);
      joined.set(bytes, this.#pending.length);
      bytes = joined;
      this.#pending = undefined;
    }
    const { document, masked, text } = this.#options;
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const frames: [number, number][] = [];
    let size = 0;
    let offset = 0;
    while (bytes.length - offset >= 4) {
      const length = view.getInt32(offset, true);
      if (length < 4) {
        throw new RangeError(`Cannot send a frame declaring ${length} bytes over a WebSocket`);
      }
      if (bytes.length - offset < length) break;
      const start = document ? offset : offset + 4;
      const payload = offset + length - start;
      frames.push([start, payload]);
      size += headerSize(payload, masked) + payload;
      offset += length;
    }
    if (offset < bytes.length) this.#pending = bytes.slice(offset);
    const out = new Uint8Array(size);
    const opcode = text ? Opcode.Text : Opcode.Binary;
    let at = 0;
    for (const [start, length] of frames) {
      const mask = masked ? crypto.getRandomValues(new Uint8Array(4)) : undefined;
      at += writeFrameHeader(out, at, opcode, length, true, mask);
      out.set(bytes.subarray(start, start + length), at);
      if (mask !== undefined) applyMask(out.subarray(at, at + length), mask, 0);
      at += length;
    }
    return out;
  }
}
