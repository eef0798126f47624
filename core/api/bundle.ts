/**
 * The `bundle` global of scripts: watched objects (`proxy`), the socket
 * payload codecs (`json`, `bson`), a seedable worker-safe PRNG (`random`) and
 * typed record views over files (`viewof`).
 *
 * @module
 */
import { denoRecordFiles, type RecordFiles } from "./bundle_files.ts";
import { proxy } from "./bundle_proxy.ts";
import { nextWord, random, type RandomState, seedRandom } from "./bundle_random.ts";
import { resolve } from "node:path";
import { type RecordView, viewof } from "./bundle_viewof.ts";
import { decodeFrame, encodeFrameParts } from "./payload_codec.ts";

/** `bundle.random`: the generator, with `seed` and `next` attached. */
export interface BundleRandom {
  (state: RandomState, lo?: number, hi?: number): number;
  /** A state from an integer seed (or fresh entropy). */
  seed(seed?: number): RandomState;
  /** The raw WELL512a output: an unsigned 32-bit integer. */
  next(state: RandomState): number;
}

/** The `bundle` global. */
export interface Bundle {
  proxy: typeof proxy;
  json: { encode(value: unknown): string; decode(text: string): unknown };
  bson: { encode(value: unknown): Uint8Array; decode(bytes: Uint8Array): unknown };
  random: BundleRandom;
  viewof(file: string, struct: string, start?: number, rows?: number): RecordView;
}

/** The JSON codec of `json` sockets, on strings. */
const json: Bundle["json"] = {
  encode(value) {
    let text: string | undefined;
    try {
      text = JSON.stringify(value);
    } catch (error) {
      throw new TypeError(`bundle.json.encode: ${(error as Error).message}`, { cause: error });
    }
    if (text === undefined) {
      throw new TypeError(`bundle.json.encode cannot encode ${describe(value)}`);
    }
    return text;
  },
  decode(text) {
    if (typeof text !== "string") {
      throw new TypeError(`bundle.json.decode needs a string; got ${describe(text)}`);
    }
    try {
      return JSON.parse(text);
    } catch (error) {
      throw new TypeError(
        `bundle.json.decode: invalid JSON of ${text.length} characters: ${
          (error as Error).message
        }`,
        { cause: error },
      );
    }
  },
};

/** The BSON codec of `bson` sockets: a document's bytes are exactly a frame. */
const bson: Bundle["bson"] = {
  encode: (value) => encodeFrameParts(value, "bson", Infinity)[0],
  decode(bytes) {
    if (!(bytes instanceof Uint8Array)) {
      throw new TypeError(`bundle.bson.decode needs a Uint8Array; got ${describe(bytes)}`);
    }
    return decodeFrame(bytes, "bson");
  },
};

/**
 * Builds a `bundle` whose `viewof` opens files through `files`, relative paths
 * resolved against `baseDir` (the config file's folder; default: the working directory).
 *
 * @example
 * ```ts
 * import { createBundle } from "./bundle.ts";
 * const bundle = createBundle();
 * const state = bundle.random.seed(3);
 * const roll = bundle.random(state, 1, 6);
 * const back = bundle.bson.decode(bundle.bson.encode({ roll })) as { roll: number };
 * if (back.roll !== roll) throw new Error("bson round trip failed");
 * if (bundle.json.encode({ roll }) !== `{"roll":${roll}}`) throw new Error("json differs");
 * ```
 */
export function createBundle(files: RecordFiles = denoRecordFiles, baseDir?: string): Bundle {
  const randomFn =
    ((state: RandomState, lo?: number, hi?: number) => random(state, lo, hi)) as BundleRandom;
  randomFn.seed = (seed?: number) => seedRandom(seed);
  randomFn.next = (state: RandomState) => nextWord(state);
  return Object.freeze({
    proxy,
    json: Object.freeze({ ...json }),
    bson: Object.freeze({ ...bson }),
    random: Object.freeze(randomFn),
    viewof: (file: string, struct: string, start?: number, rows?: number) =>
      viewof(
        typeof file === "string" && baseDir !== undefined ? resolve(baseDir, file) : file,
        struct,
        start,
        rows,
        files,
      ),
  });
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "bigint") return "a bigint";
  return typeof value;
}
