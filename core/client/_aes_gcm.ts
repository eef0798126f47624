/**
 * AES-GCM for the client SDK, synchronous and runtime-neutral, over
 * `@noble/ciphers` (audited, constant-time, pure JavaScript: works in
 * browsers, Deno and Node).
 *
 * Why not WebCrypto: a {@link Codec} encodes and decodes synchronously and
 * WebCrypto only answers with promises. tests/client/crypto_codec_test.ts
 * checks it against the specification's test vectors and against WebCrypto
 * (what the server side uses) both ways.
 *
 * @module
 */
import { gcm } from "@noble/ciphers/aes.js";

/** Bytes of the AES-GCM authentication tag. */
export const GCM_TAG_BYTES = 16;
/** Bytes of the AES-GCM nonce (IV). */
export const GCM_IV_BYTES = 12;

/** One AES-GCM key: seal and open frames with a 12-byte IV and a 16-byte tag. */
export class AesGcm {
  #key: Uint8Array;

  /** @throws {RangeError} a key that is not 16, 24 or 32 bytes */
  constructor(key: Uint8Array) {
    if (!(key instanceof Uint8Array) || ![16, 24, 32].includes(key.length)) {
      const found = key instanceof Uint8Array ? `${key.length} bytes` : typeof key;
      throw new RangeError(`An AES key has 16, 24 or 32 bytes; got ${found}`);
    }
    this.#key = key.slice();
  }

  /** Encrypts `plain` into `out`: ciphertext then tag, `plain.length + 16` bytes. */
  seal(iv: Uint8Array, plain: Uint8Array, out: Uint8Array): void {
    checkIv(iv);
    out.set(gcm(this.#key, iv).encrypt(plain));
  }

  /** The plaintext of `sealed` (ciphertext then tag), or `undefined` when it does not authenticate. */
  open(iv: Uint8Array, sealed: Uint8Array): Uint8Array | undefined {
    checkIv(iv);
    if (sealed.length < GCM_TAG_BYTES) return undefined;
    try {
      return gcm(this.#key, iv).decrypt(sealed);
    } catch {
      return undefined;
    }
  }
}

function checkIv(iv: Uint8Array): void {
  if (iv.length !== GCM_IV_BYTES) {
    throw new RangeError(`An AES-GCM IV has ${GCM_IV_BYTES} bytes; got ${iv.length}`);
  }
}
