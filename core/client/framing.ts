/**
 * Stage's wire framing, standalone: a frame is a 4-byte little-endian int32 holding
 * the frame's TOTAL length (header included), then the payload. (For BSON the frame
 * is exactly the BSON document, whose own length prefix is that header.)
 *
 * @module
 */
import { FrameError } from "./errors.ts";

/** Size in bytes of the length header that starts every frame. */
export const FRAME_HEADER_BYTES = 4;

/** The largest total frame length the int32 header can declare. */
export const MAX_FRAME_BYTES = 0x7fffffff;

/** The client's default `maxFrame`: 16 MiB, header included. */
export const DEFAULT_MAX_FRAME = 16 * 1024 * 1024;

/**
 * Checks a `maxFrame` option.
 *
 * @throws {RangeError} if `maxFrame` is not an integer in 4..2147483647
 */
export function checkMaxFrame(maxFrame: number, where: string): number {
  if (!Number.isInteger(maxFrame) || maxFrame < FRAME_HEADER_BYTES || maxFrame > MAX_FRAME_BYTES) {
    throw new RangeError(
      `${where}: maxFrame ${maxFrame} is not an integer in ${FRAME_HEADER_BYTES}..${MAX_FRAME_BYTES}`,
    );
  }
  return maxFrame;
}

// Small frames are carved out of a shared slab (as Node's Buffer pool does): one
// allocation per slab instead of one per frame, which dominated a busy client's send path.
const POOL_BYTES = 16 * 1024;
const POOLED_MAX = 1024;
let pool = new Uint8Array(0);
let poolUsed = 0;

/**
 * Builds a frame around `payload`: the header, then the payload bytes. A frame of at
 * most 1 KiB is a view into a shared pooled buffer: its `buffer` holds other frames too
 * (do not transfer or detach it).
 *
 * @example
 * ```ts
 * import { frameBytes } from "./framing.ts";
 * const frame = frameBytes(new Uint8Array([7]));
 * if (frame.length !== 5 || frame[0] !== 5 || frame[4] !== 7) throw new Error("bad frame");
 * ```
 */
export function frameBytes(payload: Uint8Array): Uint8Array {
  const length = FRAME_HEADER_BYTES + payload.length;
  let frame: Uint8Array;
  if (length <= POOLED_MAX) {
    if (poolUsed + length > pool.length) {
      pool = new Uint8Array(POOL_BYTES);
      poolUsed = 0;
    }
    frame = pool.subarray(poolUsed, poolUsed + length);
    poolUsed += (length + 7) & ~7; // 8-byte aligned, like a fresh allocation
  } else {
    frame = new Uint8Array(length);
  }
  frame[0] = length & 0xff;
  frame[1] = (length >>> 8) & 0xff;
  frame[2] = (length >>> 16) & 0xff;
  frame[3] = length >>> 24;
  frame.set(payload, FRAME_HEADER_BYTES);
  return frame;
}

/**
 * Splits a byte stream into frames, incrementally: feed it chunks as they arrive,
 * get back every frame they complete (whole frames, header included, as copies: the
 * frames one `push` completes are views into one copy of their bytes).
 *
 * @example
 * ```ts
 * import { FrameSplitter, frameBytes } from "./framing.ts";
 * const splitter = new FrameSplitter(1024);
 * const frame = frameBytes(new Uint8Array([1, 2, 3]));
 * if (splitter.push(frame.subarray(0, 2)).length !== 0) throw new Error("too early");
 * if (splitter.push(frame.subarray(2)).length !== 1) throw new Error("one frame");
 * ```
 */
export class FrameSplitter {
  readonly #maxFrame: number;
  // The incomplete tail: `#buffer[0, #filled)`, grown by doubling as bytes arrive (not by the
  // declared length, so a lone header cannot make the client allocate `maxFrame` bytes).
  #buffer: Uint8Array = new Uint8Array(0);
  #filled = 0;

  /**
   * @param maxFrame the largest accepted total frame length, header included
   * @throws {RangeError} if `maxFrame` is not an integer in 4..2147483647
   */
  constructor(maxFrame: number) {
    this.#maxFrame = checkMaxFrame(maxFrame, "Cannot create FrameSplitter");
  }

  /** Bytes of an incomplete frame held back for the next chunk. */
  get buffered(): number {
    return this.#filled;
  }

  /**
   * Adds `chunk` (not kept: it may be reused by the caller) and returns the frames completed.
   *
   * @throws {FrameError} `too_large` / `too_small` when a header declares a length above
   *   `maxFrame` or below 4; the stream cannot be resynchronised after that
   */
  push(chunk: Uint8Array): Uint8Array[] {
    if (this.#filled === 0) {
      const frames: Uint8Array[] = [];
      const used = this.#split(chunk, frames);
      this.#append(chunk.subarray(used));
      return frames;
    }
    this.#append(chunk);
    const frames: Uint8Array[] = [];
    const used = this.#split(this.#buffer.subarray(0, this.#filled), frames);
    if (used > 0) {
      this.#buffer.copyWithin(0, used, this.#filled);
      this.#filled -= used;
    }
    return frames;
  }

  /** Pushes the whole frames at the start of `bytes` (as copies); returns the bytes used. */
  #split(bytes: Uint8Array, frames: Uint8Array[]): number {
    let offset = 0;
    while (bytes.length - offset >= FRAME_HEADER_BYTES) {
      const length = this.#checked(readLength(bytes, offset));
      if (bytes.length - offset < length) break;
      offset += length;
    }
    if (offset === 0) return 0;
    // One copy for all of them (one allocation per read, not per frame), then views into it.
    const copy = bytes.slice(0, offset);
    for (let start = 0; start < offset;) {
      const end = start + readLength(copy, start);
      frames.push(copy.subarray(start, end));
      start = end;
    }
    return offset;
  }

  #append(bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    const needed = this.#filled + bytes.length;
    if (needed > this.#buffer.length) {
      const grown = new Uint8Array(Math.max(needed, this.#buffer.length * 2, 256));
      grown.set(this.#buffer.subarray(0, this.#filled), 0);
      this.#buffer = grown;
    }
    this.#buffer.set(bytes, this.#filled);
    this.#filled = needed;
  }

  #checked(length: number): number {
    if (length < FRAME_HEADER_BYTES) {
      throw new FrameError(
        `Cannot read frame: header declares total length ${length}, below the ${FRAME_HEADER_BYTES}-byte header`,
        "too_small",
        "incoming",
      );
    }
    if (length > this.#maxFrame) {
      throw new FrameError(
        `Cannot read frame: header declares total length ${length}, above maxFrame ${this.#maxFrame}`,
        "too_large",
        "incoming",
      );
    }
    return length;
  }
}

/** The int32 little-endian length header at `offset` of `bytes`. */
function readLength(bytes: Uint8Array, offset: number): number {
  return bytes[offset]! | bytes[offset + 1]! << 8 | bytes[offset + 2]! << 16 |
    bytes[offset + 3]! << 24;
}
