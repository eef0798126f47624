/**
 * Payload codecs of sockets: `bson` (default), `json` and `raw`. Workers decode
 * and encode; the main thread only moves whole frames.
 *
 * @module
 */
import { BSON } from "bson";

/** A socket's payload codec. */
export type Codec = "bson" | "json" | "raw";

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/**
 * Decodes a whole frame (4-byte header included) with a codec.
 *
 * @throws TypeError when the payload is not valid for the codec
 * @example
 * ```ts
 * import { decodeFrame, encodeFrameParts } from "./payload_codec.ts";
 * const [head, body] = encodeFrameParts({ message: "echo" }, "json", 1024);
 * const frame = new Uint8Array([...head, ...(body ?? [])]); // copy before the next call
 * const value = decodeFrame(frame, "json") as { message: string };
 * if (value.message !== "echo") throw new Error("round trip failed");
 * ```
 */
export function decodeFrame(frame: Uint8Array, codec: Codec): unknown {
  switch (codec) {
    case "bson":
      try {
        return BSON.deserialize(frame);
      } catch (error) {
        throw new TypeError(`Invalid BSON frame of ${frame.length} bytes: ${messageOf(error)}`, {
          cause: error,
        });
      }
    case "json": {
      let text: string;
      try {
        text = decoder.decode(frame.subarray(4));
      } catch (error) {
        throw new TypeError(`Invalid UTF-8 in a JSON frame of ${frame.length} bytes`, {
          cause: error,
        });
      }
      try {
        return JSON.parse(text);
      } catch (error) {
        throw new TypeError(`Invalid JSON frame of ${frame.length} bytes: ${messageOf(error)}`, {
          cause: error,
        });
      }
    }
    case "raw":
      return frame.subarray(4);
  }
}

/** The 4-byte header of json/raw frames, reused: the caller copies it at once. */
const scratchHeader = new Uint8Array(4);
const scratchView = new DataView(scratchHeader.buffer);

/**
 * Encodes a value as a frame, returned in up to two parts (header and payload)
 * so the caller can write them without concatenating. For `json` and `raw` the
 * first part is a shared scratch header, valid only until the next call.
 *
 * @param maxOut the largest frame allowed (the socket's `OUT`)
 * @throws TypeError when the value cannot be encoded with the codec
 * @throws RangeError when the frame would exceed `maxOut`
 */
export function encodeFrameParts(
  value: unknown,
  codec: Codec,
  maxOut: number,
): [Uint8Array, Uint8Array | undefined] {
  let parts: [Uint8Array, Uint8Array | undefined];
  switch (codec) {
    case "bson": {
      if (value === null || typeof value !== "object" || Array.isArray(value)) {
        throw new TypeError(
          `A bson socket commits documents (plain objects); got ${describe(value)}`,
        );
      }
      // A BSON document is a frame as it stands.
      parts = [BSON.serialize(value as Record<string, unknown>), undefined];
      break;
    }
    case "json": {
      const text = JSON.stringify(value);
      if (text === undefined) {
        throw new TypeError(`A json socket cannot commit ${describe(value)}`);
      }
      parts = [scratchHeader, encoder.encode(text)];
      break;
    }
    case "raw": {
      let bytes: Uint8Array;
      if (value instanceof Uint8Array) bytes = value;
      else if (value instanceof ArrayBuffer) bytes = new Uint8Array(value);
      else if (typeof value === "string") bytes = encoder.encode(value);
      else {
        throw new TypeError(
          `A raw socket commits a Uint8Array, ArrayBuffer or string; got ${describe(value)}`,
        );
      }
      parts = [scratchHeader, bytes];
      break;
    }
  }
  const total = parts[0].length + (parts[1]?.length ?? 0);
  if (total > maxOut) {
    throw new RangeError(`Frame of ${total} bytes exceeds the socket's OUT limit of ${maxOut}`);
  }
  if (parts[1] !== undefined) scratchView.setInt32(0, total, true);
  return parts;
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  return typeof value;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
