/**
 * Payload codecs: how a value becomes a frame and back. The same three Stage
 * listeners speak: `bson` (default; the frame is exactly a BSON document), `json`
 * (UTF-8 JSON after the header) and `raw` (the bytes after the header).
 *
 * @module
 */
import { BSON } from "bson";
import { FRAME_HEADER_BYTES, frameBytes } from "./framing.ts";

/** The codecs a Stage listener speaks, by the name its URL uses (`?json`, `?raw`). */
export type CodecName = "bson" | "json" | "raw";

/** Turns values into whole frames and whole frames (header included) back into values. */
export interface Codec {
  /** The codec's name, for messages. */
  readonly name: string;
  /**
   * Encodes `value` as one whole frame, header included.
   *
   * @throws {TypeError} if the codec cannot encode `value`
   */
  encode(value: unknown): Uint8Array;
  /**
   * Decodes one whole frame, header included (the frame is not reused afterwards).
   *
   * @throws {Error} if the payload is not valid for the codec
   */
  decode(frame: Uint8Array): unknown;
}

/**
 * BSON: values are documents (plain objects); the frame is the BSON document itself.
 *
 * @example
 * ```ts
 * import { bsonCodec } from "./codecs.ts";
 * const doc = bsonCodec.decode(bsonCodec.encode({ message: "echo" })) as { message: string };
 * if (doc.message !== "echo") throw new Error("round trip");
 * ```
 */
export const bsonCodec: Codec = {
  name: "bson",
  encode(value) {
    if (!isDocument(value)) {
      throw new TypeError(
        `Cannot encode ${
          describe(value)
        } with the bson codec: expected a plain object (a document)`,
      );
    }
    const bytes = BSON.serialize(value);
    // A plain view: under Node (and Deno's npm layer) `serialize` returns a Buffer.
    return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  },
  decode(frame) {
    return BSON.deserialize(frame);
  },
};

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/**
 * JSON: any JSON value as UTF-8 text after the header.
 *
 * @example
 * ```ts
 * import { jsonCodec } from "./codecs.ts";
 * if (jsonCodec.decode(jsonCodec.encode([1, "a"])) + "" !== "1,a") throw new Error("round trip");
 * ```
 */
export const jsonCodec: Codec = {
  name: "json",
  encode(value) {
    const text = JSON.stringify(value);
    if (text === undefined) {
      throw new TypeError(`Cannot encode ${describe(value)} with the json codec: not a JSON value`);
    }
    return frameBytes(encoder.encode(text));
  },
  decode(frame) {
    return JSON.parse(decoder.decode(frame.subarray(FRAME_HEADER_BYTES)));
  },
};

/**
 * Raw: the payload bytes as they are; values are `Uint8Array`s.
 *
 * @example
 * ```ts
 * import { rawCodec } from "./codecs.ts";
 * const bytes = rawCodec.decode(rawCodec.encode(new Uint8Array([9]))) as Uint8Array;
 * if (bytes[0] !== 9) throw new Error("round trip");
 * ```
 */
export const rawCodec: Codec = {
  name: "raw",
  encode(value) {
    if (!(value instanceof Uint8Array)) {
      throw new TypeError(
        `Cannot encode ${describe(value)} with the raw codec: expected a Uint8Array`,
      );
    }
    return frameBytes(value);
  },
  decode(frame) {
    return frame.subarray(FRAME_HEADER_BYTES);
  },
};

/**
 * The codec for a name, or the given codec object itself.
 *
 * @throws {TypeError} if `codec` is neither a known name nor a {@link Codec}
 */
export function resolveCodec(codec: CodecName | Codec): Codec {
  if (typeof codec === "object" && codec !== null) return codec;
  switch (codec) {
    case "bson":
      return bsonCodec;
    case "json":
      return jsonCodec;
    case "raw":
      return rawCodec;
  }
  throw new TypeError(`Unknown codec ${JSON.stringify(codec)}: expected "bson", "json" or "raw"`);
}

/** Whether `value` is a plain object usable as a BSON document or a request to tag with an id. */
export function isDocument(value: unknown): value is Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
  if (ArrayBuffer.isView(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (value instanceof Uint8Array) return "a Uint8Array";
  return typeof value === "object"
    ? `a ${value.constructor?.name ?? "object"}`
    : `a ${typeof value}`;
}
