/**
 * Length-prefixed framing for stream sockets.
 *
 * A frame is a 4-byte little-endian int32 holding the frame's *total* length
 * (the header included) followed by the payload: exactly the layout of a BSON
 * document, so a BSON document is a frame as it stands.
 *
 * @module
 */

/** Size in bytes of the length header that starts every frame. */
export const FRAME_HEADER_SIZE = 4;

/** The largest total frame length the int32 header can declare. */
export const MAX_FRAME_LENGTH = 0x7fff_ffff;

/**
 * Partial-frame buffers start at most this big and, up to this size, are kept
 * for the next partial frame: small enough to hold per idle connection.
 */
const SMALL_BUFFER_SIZE = 4 * 1024;

/** Why a {@linkcode FrameError} was raised. */
export type FrameErrorCode = "frame_too_small" | "frame_too_large";

/**
 * A frame header declared an impossible length: below the 4-byte header
 * (`frame_too_small`) or above the decoder's limit (`frame_too_large`).
 * The stream cannot be resynchronised, so the socket should be closed.
 *
 * @example
 * ```ts
 * import { FrameDecoder, FrameError } from "./framing.ts";
 * import assert from "node:assert/strict";
 *
 * const decoder = new FrameDecoder(16);
 * assert.throws(() => decoder.push(new Uint8Array([100, 0, 0, 0]), () => {}), FrameError);
 * ```
 */
export class FrameError extends Error {
  override name = "FrameError";
  /** `frame_too_small` or `frame_too_large`. */
  readonly code: FrameErrorCode;
  /** The total length the header declared (may be negative). */
  readonly declaredLength: number;
  /** The decoder's `maxFrame`. */
  readonly limit: number;

  /**
   * @param code which bound was broken
   * @param declaredLength the total length the header declared
   * @param limit the decoder's `maxFrame`
   */
  constructor(code: FrameErrorCode, declaredLength: number, limit: number) {
    super(
      code === "frame_too_large"
        ? `Frame of ${declaredLength} bytes exceeds the limit of ${limit}`
        : `Frame of ${declaredLength} bytes is shorter than its ${FRAME_HEADER_SIZE}-byte header`,
    );
    this.code = code;
    this.declaredLength = declaredLength;
    this.limit = limit;
  }
}

/**
 * Incremental decoder for a stream of frames. Feed it the chunks a socket
 * yields, in order; it calls `onFrame` once per complete frame.
 *
 * Every complete frame in a chunk is delivered during that `push`, so
 * pipelined frames never wait for more bytes. A frame lying wholly inside a
 * chunk is delivered without copying; only an incomplete tail is buffered.
 *
 * Once `push` has thrown (a {@linkcode FrameError}, or an error thrown by
 * `onFrame`), the decoder is unusable: every later `push` rethrows that error.
 *
 * @example
 * ```ts
 * import { encodeFrame, FrameDecoder } from "./framing.ts";
 * import assert from "node:assert/strict";
 *
 * const decoder = new FrameDecoder(64 * 1024);
 * const frames: string[] = [];
 * const onFrame = (payload: Uint8Array) => frames.push(new TextDecoder().decode(payload));
 * const bytes = new Uint8Array([
 *   ...encodeFrame(new TextEncoder().encode("hello")),
 *   ...encodeFrame(new TextEncoder().encode("world")),
 * ]);
 * decoder.push(bytes.subarray(0, 11), onFrame); // "hello" and 2 bytes of the next header
 * assert.deepEqual(frames, ["hello"]);
 * assert.equal(decoder.pendingHeader, true);
 * decoder.push(bytes.subarray(11), onFrame);
 * assert.deepEqual(frames, ["hello", "world"]);
 * assert.equal(decoder.bufferedBytes, 0);
 * ```
 */
export class FrameDecoder {
  readonly #maxFrame: number;
  /** Bytes of a header split across chunks. */
  // Made on first use: most connections never see a header split across reads,
  // and with many idle connections every small allocation counts.
  #headerStore: Uint8Array | undefined;
  get #header(): Uint8Array {
    return this.#headerStore ??= new Uint8Array(FRAME_HEADER_SIZE);
  }
  #headerLength = 0;
  /** Buffer of the incomplete frame (header included) once its length is known. */
  #frame: Uint8Array | undefined;
  #frameLength = 0;
  #frameFilled = 0;
  /** A small buffer kept from the last partial frame for the next one. */
  #spare: Uint8Array | undefined;
  #failure: { error: unknown } | undefined;

  /**
   * @param maxFrame the largest accepted total frame length, header included
   * @throws {RangeError} if `maxFrame` is not an integer in 4..2147483647
   */
  constructor(maxFrame: number) {
    if (
      !Number.isInteger(maxFrame) || maxFrame < FRAME_HEADER_SIZE || maxFrame > MAX_FRAME_LENGTH
    ) {
      throw new RangeError(
        `Cannot create FrameDecoder: maxFrame ${maxFrame} is not an integer in ${FRAME_HEADER_SIZE}..${MAX_FRAME_LENGTH}`,
      );
    }
    this.#maxFrame = maxFrame;
  }

  /** The largest accepted total frame length, header included. */
  get maxFrame(): number {
    return this.#maxFrame;
  }

  /** Bytes held for a frame that has begun but is not complete. */
  get bufferedBytes(): number {
    return this.#frame === undefined ? this.#headerLength : this.#frameFilled;
  }

  /**
   * True while a frame has begun (at least one byte of it is buffered) but is
   * incomplete; the slowloris defence times how long this stays true.
   */
  get pendingHeader(): boolean {
    return this.bufferedBytes > 0;
  }

  /**
   * The total length (header included) the buffered frame's header declared;
   * 0 while no frame is buffered or its 4-byte header is itself incomplete.
   *
   * @example
   * ```ts
   * import { FrameDecoder } from "./framing.ts";
   * import assert from "node:assert/strict";
   *
   * const decoder = new FrameDecoder(1024);
   * decoder.push(new Uint8Array([100, 0]), () => {});
   * assert.equal(decoder.pendingFrameLength, 0); // half a header
   * decoder.push(new Uint8Array([0, 0, 1, 2]), () => {});
   * assert.equal(decoder.pendingFrameLength, 100);
   * assert.equal(decoder.bufferedBytes, 6);
   * ```
   */
  get pendingFrameLength(): number {
    return this.#frame === undefined ? 0 : this.#frameLength;
  }

  /**
   * Consumes `chunk` and calls `onFrame` with the payload of every frame it
   * completes, in order.
   *
   * The payload may be a view into `chunk` or into the decoder's buffer: it is
   * valid only during the callback; copy it to keep it.
   *
   * @param chunk the next bytes of the stream (not retained after the call)
   * @param onFrame receives each complete frame's payload (header excluded)
   * @throws {FrameError} if a header declares a length below 4 or above `maxFrame`
   */
  push(chunk: Uint8Array, onFrame: (payload: Uint8Array) => void): void {
    if (this.#failure !== undefined) throw this.#failure.error;
    try {
      this.#push(chunk, onFrame);
    } catch (error) {
      this.#failure = { error };
      this.#frame = undefined;
      throw error;
    }
  }

  #push(chunk: Uint8Array, onFrame: (payload: Uint8Array) => void): void {
    let offset = 0;
    if (this.bufferedBytes > 0) {
      offset = this.#continuePartial(chunk, onFrame);
      if (this.bufferedBytes > 0) return; // the chunk ended inside the frame
    }
    // Whole frames inside the chunk are delivered as views, without copying.
    while (chunk.length - offset >= FRAME_HEADER_SIZE) {
      const length = this.#checkedLength(readInt32LE(chunk, offset));
      if (chunk.length - offset < length) break;
      onFrame(chunk.subarray(offset + FRAME_HEADER_SIZE, offset + length));
      offset += length;
    }
    if (offset < chunk.length) this.#startPartial(chunk.subarray(offset));
  }

  /** Feeds the buffered partial frame; returns how much of `chunk` it took. */
  #continuePartial(chunk: Uint8Array, onFrame: (payload: Uint8Array) => void): number {
    let offset = 0;
    if (this.#frame === undefined) {
      const take = Math.min(FRAME_HEADER_SIZE - this.#headerLength, chunk.length);
      this.#header.set(chunk.subarray(0, take), this.#headerLength);
      this.#headerLength += take;
      offset = take;
      if (this.#headerLength < FRAME_HEADER_SIZE) return offset;
      this.#beginFrame(this.#checkedLength(readInt32LE(this.#header, 0)));
      this.#reserve(FRAME_HEADER_SIZE).set(this.#header, 0);
      this.#frameFilled = FRAME_HEADER_SIZE;
      this.#headerLength = 0;
    }
    const take = Math.min(this.#frameLength - this.#frameFilled, chunk.length - offset);
    const frame = this.#reserve(this.#frameFilled + take);
    frame.set(chunk.subarray(offset, offset + take), this.#frameFilled);
    this.#frameFilled += take;
    offset += take;
    if (this.#frameFilled === this.#frameLength) {
      const payload = frame.subarray(FRAME_HEADER_SIZE, this.#frameLength);
      this.#frame = undefined;
      this.#frameFilled = 0;
      this.#frameLength = 0;
      this.#spare = frame.length <= SMALL_BUFFER_SIZE ? frame : undefined;
      onFrame(payload);
    }
    return offset;
  }

  /** Buffers an incomplete tail (shorter than its frame) that starts a frame. */
  #startPartial(tail: Uint8Array): void {
    if (tail.length < FRAME_HEADER_SIZE) {
      this.#header.set(tail, 0);
      this.#headerLength = tail.length;
      return;
    }
    // The length was already checked by the caller's loop.
    this.#beginFrame(readInt32LE(tail, 0));
    this.#reserve(tail.length).set(tail, 0);
    this.#frameFilled = tail.length;
  }

  #beginFrame(length: number): void {
    this.#frame = this.#spare ?? new Uint8Array(Math.min(length, SMALL_BUFFER_SIZE));
    this.#spare = undefined;
    this.#frameLength = length;
  }

  /**
   * Returns the partial-frame buffer with room for `needed` bytes. It grows
   * with the bytes received rather than with the declared length, so a
   * header alone cannot make the decoder allocate `maxFrame` bytes.
   */
  #reserve(needed: number): Uint8Array {
    const frame = this.#frame!;
    if (frame.length >= needed) return frame;
    const grown = new Uint8Array(Math.min(this.#frameLength, Math.max(needed, frame.length * 2)));
    grown.set(frame.subarray(0, this.#frameFilled), 0);
    this.#frame = grown;
    return grown;
  }

  #checkedLength(length: number): number {
    if (length < FRAME_HEADER_SIZE) throw new FrameError("frame_too_small", length, this.#maxFrame);
    if (length > this.#maxFrame) throw new FrameError("frame_too_large", length, this.#maxFrame);
    return length;
  }
}

/**
 * Returns `payload` with a frame header in front of it (a new array).
 *
 * @example
 * ```ts
 * import { encodeFrame } from "./framing.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(encodeFrame(new Uint8Array([7])), new Uint8Array([5, 0, 0, 0, 7]));
 * ```
 *
 * @param payload the frame's body
 * @throws {RangeError} if the frame would exceed 2147483647 bytes
 */
export function encodeFrame(payload: Uint8Array): Uint8Array {
  const frame = new Uint8Array(FRAME_HEADER_SIZE + payload.length);
  writeFrameHeader(frame, 0, frame.length);
  frame.set(payload, FRAME_HEADER_SIZE);
  return frame;
}

/**
 * Writes a frame header declaring `totalLength` into `target` at `offset`,
 * for writers that lay several frames out in one buffer.
 *
 * @example
 * ```ts
 * import { writeFrameHeader } from "./framing.ts";
 * import assert from "node:assert/strict";
 *
 * const buffer = new Uint8Array(6);
 * writeFrameHeader(buffer, 1, 260);
 * assert.deepEqual(buffer, new Uint8Array([0, 4, 1, 0, 0, 0]));
 * ```
 *
 * @param target the buffer to write into
 * @param offset where the header starts in `target`
 * @param totalLength the frame's total length, header included
 * @throws {RangeError} if `totalLength` is not an integer in 4..2147483647 or
 *   the header does not fit in `target` at `offset`
 */
export function writeFrameHeader(target: Uint8Array, offset: number, totalLength: number): void {
  if (
    !Number.isInteger(totalLength) || totalLength < FRAME_HEADER_SIZE ||
    totalLength > MAX_FRAME_LENGTH
  ) {
    throw new RangeError(
      `Cannot write frame header: total length ${totalLength} is not an integer in ${FRAME_HEADER_SIZE}..${MAX_FRAME_LENGTH}`,
    );
  }
  if (!Number.isInteger(offset) || offset < 0 || offset + FRAME_HEADER_SIZE > target.length) {
    throw new RangeError(
      `Cannot write frame header: offset ${offset} leaves no room for ${FRAME_HEADER_SIZE} bytes in a buffer of ${target.length}`,
    );
  }
  target[offset] = totalLength & 0xff;
  target[offset + 1] = (totalLength >>> 8) & 0xff;
  target[offset + 2] = (totalLength >>> 16) & 0xff;
  target[offset + 3] = (totalLength >>> 24) & 0xff;
}

function readInt32LE(bytes: Uint8Array, offset: number): number {
  return (bytes[offset]! | (bytes[offset + 1]! << 8) | (bytes[offset + 2]! << 16) |
    (bytes[offset + 3]! << 24));
}
