/**
 * {@link encryptedCodec}: the client side of `socket.crypto` — a codec that wraps
 * another one and encrypts every frame with AES-GCM.
 *
 * Frame layout (both ways), as a Stage socket with `socket.crypto` set uses it:
 *
 * ```text
 * [u32 LE total length][12-byte random IV][ciphertext][16-byte GCM tag]
 * ```
 *
 * The plaintext is the whole frame the wrapped codec makes (its 4-byte length
 * header included: for bson, the BSON document itself); no additional
 * authenticated data; the key is the raw 16, 24 or 32 bytes the server set.
 *
 * @module
 */
import { AesGcm, GCM_IV_BYTES, GCM_TAG_BYTES } from "./_aes_gcm.ts";
import { type Codec, type CodecName, resolveCodec } from "./codecs.ts";
import { FRAME_HEADER_BYTES } from "./framing.ts";

/** Bytes an encrypted frame adds to the wrapped codec's frame (header, IV and tag). */
export const ENCRYPTION_OVERHEAD_BYTES: number = FRAME_HEADER_BYTES + GCM_IV_BYTES + GCM_TAG_BYTES;

/** A codec that encrypts while it has a key; see {@link encryptedCodec}. */
export interface EncryptedCodec extends Codec {
  /** Whether frames are encrypted now (a key is set). */
  readonly encrypting: boolean;
  /**
   * Sets the key (16, 24 or 32 bytes) for the frames encoded and decoded from
   * now on, or `null` for plain frames (the wrapped codec alone).
   *
   * @throws {RangeError} when the key is not 16, 24 or 32 bytes
   */
  setKey(key: Uint8Array | null): void;
}

/** Options of {@link encryptedCodec}. */
export interface EncryptedCodecOptions {
  /** Fills an IV with random bytes (default `crypto.getRandomValues`). */
  random?: (bytes: Uint8Array) => void;
}

/**
 * Wraps `codec` so that frames are AES-GCM encrypted with `key`, the way a Stage
 * socket with `socket.crypto = { key }` expects them. With `null`, frames stay
 * plain until {@link EncryptedCodec.setKey} is called: for a handshake in the
 * clear that agrees on the key first (switch when the server cannot be sending
 * anything in between, e.g. right after sending the last plain request).
 *
 * Decoding a frame that does not authenticate throws (the client then drops the
 * connection as undecodable).
 *
 * @throws {TypeError} for an unknown codec, or when no random source exists
 * @throws {RangeError} when the key is not 16, 24 or 32 bytes
 * @example
 * ```ts
 * import { encryptedCodec } from "./crypto_codec.ts";
 * const key = crypto.getRandomValues(new Uint8Array(16));
 * const codec = encryptedCodec("json", key);
 * const frame = codec.encode({ hello: "world" });
 * if (frame.length !== 4 + 12 + (4 + 17) + 16) throw new Error("layout");
 * const value = codec.decode(frame) as { hello: string };
 * if (value.hello !== "world") throw new Error("round trip");
 * ```
 */
export function encryptedCodec(
  codec: CodecName | Codec,
  key: Uint8Array | null,
  options: EncryptedCodecOptions = {},
): EncryptedCodec {
  const inner = resolveCodec(codec);
  const random = options.random ?? defaultRandom();
  let cipher = key === null ? undefined : new AesGcm(key);
  return {
    name: `aes-gcm+${inner.name}`,
    get encrypting() {
      return cipher !== undefined;
    },
    setKey(next) {
      cipher = next === null ? undefined : new AesGcm(next);
    },
    encode(value) {
      const plain = inner.encode(value);
      if (cipher === undefined) return plain;
      const frame = new Uint8Array(ENCRYPTION_OVERHEAD_BYTES + plain.length);
      new DataView(frame.buffer).setInt32(0, frame.length, true);
      const iv = frame.subarray(FRAME_HEADER_BYTES, FRAME_HEADER_BYTES + GCM_IV_BYTES);
      random(iv);
      cipher.seal(iv, plain, frame.subarray(FRAME_HEADER_BYTES + GCM_IV_BYTES));
      return frame;
    },
    decode(frame) {
      if (cipher === undefined) return inner.decode(frame);
      if (frame.length < ENCRYPTION_OVERHEAD_BYTES) {
        throw new Error(
          `An encrypted frame has at least ${ENCRYPTION_OVERHEAD_BYTES} bytes; got ${frame.length}`,
        );
      }
      const plain = cipher.open(
        frame.subarray(FRAME_HEADER_BYTES, FRAME_HEADER_BYTES + GCM_IV_BYTES),
        frame.subarray(FRAME_HEADER_BYTES + GCM_IV_BYTES),
      );
      if (plain === undefined) {
        throw new Error(
          `A frame of ${frame.length} bytes failed AES-GCM authentication (wrong key or altered)`,
        );
      }
      const length = plain.length >= FRAME_HEADER_BYTES
        ? new DataView(plain.buffer, plain.byteOffset, 4).getInt32(0, true)
        : -1;
      if (length !== plain.length) {
        throw new Error(`A decrypted frame of ${plain.length} bytes says it has ${length}`);
      }
      return inner.decode(plain);
    },
  };
}

function defaultRandom(): (bytes: Uint8Array) => void {
  const source = (globalThis as { crypto?: Crypto }).crypto;
  if (source?.getRandomValues === undefined) {
    throw new TypeError(
      "encryptedCodec: this runtime has no crypto.getRandomValues; pass options.random",
    );
  }
  return (bytes) => source.getRandomValues(bytes);
}
