/**
 * Per-socket encryption (`socket.crypto`): AES-GCM through WebCrypto, in the
 * socket's home worker (the main thread never sees plaintext).
 *
 * Frame layout of an encrypted socket, both ways:
 *
 * ```text
 * [u32 LE total length][12-byte IV][ciphertext][16-byte GCM tag]
 * ```
 *
 * The plaintext is the whole frame the socket's codec would carry unencrypted
 * (its own 4-byte length header included; for `bson`, the BSON document). The
 * IV is random per frame, there is no additional authenticated data, and the
 * key is the socket's raw 16, 24 or 32 bytes (AES-128/192/256). An encrypted
 * frame is {@link CRYPTO_OVERHEAD} bytes longer than its plaintext frame.
 *
 * @module
 */

/** The modes `socket.crypto` accepts. */
export type SocketCryptoMode = "aes-gcm";

/** What a script assigns to `socket.crypto`. */
export interface SocketCryptoOptions {
  /** The raw AES key: 16, 24 or 32 bytes. */
  key: Uint8Array;
  /** The cipher mode (default and only one so far: `"aes-gcm"`). */
  mode?: SocketCryptoMode;
}

/** Bytes of the random IV at the start of an encrypted payload. */
export const CRYPTO_IV_BYTES = 12;
/** Bytes of the GCM authentication tag at the end of an encrypted payload. */
export const CRYPTO_TAG_BYTES = 16;
/** Bytes an encrypted frame adds to its plaintext frame: header, IV and tag. */
export const CRYPTO_OVERHEAD: number = 4 + CRYPTO_IV_BYTES + CRYPTO_TAG_BYTES;

/** A frame that failed to decrypt: too short, or its tag did not verify. */
export class DecryptError extends Error {
  override name = "DecryptError";
}

/**
 * The cipher of one socket: seals outgoing plaintext frames and opens incoming
 * encrypted ones. The key is imported once (WebCrypto is asynchronous); calls
 * made meanwhile wait for it.
 *
 * @example
 * ```ts
 * import { SocketCipher } from "./socket_crypto.ts";
 * const cipher = SocketCipher.from({ key: new Uint8Array(16).fill(7) }, "socket.crypto");
 * const plain = new Uint8Array([6, 0, 0, 0, 104, 105]); // a raw frame: "hi"
 * const [head, body] = await cipher.seal(plain);
 * const frame = new Uint8Array([...head, ...body]);
 * const opened = await cipher.open(frame);
 * if (opened.join() !== plain.join()) throw new Error("round trip failed");
 * ```
 */
export class SocketCipher {
  /** The mode in use. */
  readonly mode: SocketCryptoMode;
  #raw: Uint8Array;
  #key: Promise<CryptoKey>;

  private constructor(raw: Uint8Array, mode: SocketCryptoMode) {
    this.#raw = raw;
    this.mode = mode;
    this.#key = crypto.subtle.importKey("raw", raw as Uint8Array<ArrayBuffer>, "AES-GCM", false, [
      "encrypt",
      "decrypt",
    ]);
    this.#key.catch(() => {}); // reported by `ready` and by the first seal/open
  }

  /**
   * Checks `options` and starts importing the key (a copy: later changes to the
   * caller's bytes do not matter).
   *
   * @param what names the setting in error messages (`"socket.crypto"`)
   * @throws TypeError when `options` is not `{ key: Uint8Array, mode? }` or the mode is unknown
   * @throws RangeError when the key is not 16, 24 or 32 bytes long
   */
  static from(options: SocketCryptoOptions, what: string): SocketCipher {
    if (typeof options !== "object" || options === null) {
      throw new TypeError(`${what} must be { key: Uint8Array, mode?: "aes-gcm" }; got ${options}`);
    }
    const { key, mode = "aes-gcm" } = options;
    if (mode !== "aes-gcm") {
      throw new TypeError(`${what}: unknown mode ${JSON.stringify(mode)}; expected "aes-gcm"`);
    }
    if (!(key instanceof Uint8Array)) {
      throw new TypeError(`${what}: key must be a Uint8Array of 16, 24 or 32 bytes`);
    }
    if (key.length !== 16 && key.length !== 24 && key.length !== 32) {
      throw new RangeError(
        `${what}: an AES key has 16, 24 or 32 bytes; got ${key.length}`,
      );
    }
    return new SocketCipher(key.slice(), mode);
  }

  /** The options as set (a fresh copy of the key), e.g. to hand on to another socket. */
  get options(): { key: Uint8Array; mode: SocketCryptoMode } {
    return { key: this.#raw.slice(), mode: this.mode };
  }

  /** Resolves once the key is imported (rejects if WebCrypto refused it). */
  async ready(): Promise<void> {
    await this.#key;
  }

  /**
   * Encrypts one whole plaintext frame; returns the encrypted frame in two parts:
   * the 4-byte header with the IV, then the ciphertext with its tag.
   */
  async seal(plain: Uint8Array): Promise<[Uint8Array, Uint8Array]> {
    const head = new Uint8Array(4 + CRYPTO_IV_BYTES);
    const iv = head.subarray(4);
    crypto.getRandomValues(iv);
    const sealed = new Uint8Array(
      await crypto.subtle.encrypt(
        { name: "AES-GCM", iv },
        await this.#key,
        plain as Uint8Array<ArrayBuffer>,
      ),
    );
    new DataView(head.buffer).setInt32(0, head.length + sealed.length, true);
    return [head, sealed];
  }

  /**
   * Decrypts one whole encrypted frame (header included) into the plaintext frame.
   *
   * @throws DecryptError (rejects) when the frame is too short or does not authenticate
   * @throws TypeError (rejects) when the decrypted frame's own length header is wrong
   */
  async open(frame: Uint8Array): Promise<Uint8Array> {
    if (frame.length < CRYPTO_OVERHEAD) {
      throw new DecryptError(
        `an encrypted frame has at least ${CRYPTO_OVERHEAD} bytes; got ${frame.length}`,
      );
    }
    const key = await this.#key;
    let plain: Uint8Array;
    try {
      plain = new Uint8Array(
        await crypto.subtle.decrypt(
          {
            name: "AES-GCM",
            iv: frame.subarray(4, 4 + CRYPTO_IV_BYTES) as Uint8Array<ArrayBuffer>,
          },
          key,
          frame.subarray(4 + CRYPTO_IV_BYTES) as Uint8Array<ArrayBuffer>,
        ),
      );
    } catch (error) {
      throw new DecryptError(
        `a frame of ${frame.length} bytes failed AES-GCM authentication (wrong key or altered)`,
        { cause: error },
      );
    }
    // Authentic, so from a key holder: a wrong inner header is a bad frame, not an attack.
    const length = plain.length >= 4 ? new DataView(plain.buffer).getInt32(0, true) : -1;
    if (length !== plain.length) {
      throw new TypeError(`A decrypted frame of ${plain.length} bytes says it has ${length}`);
    }
    return plain;
  }
}
