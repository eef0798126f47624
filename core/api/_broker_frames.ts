/**
 * Frame delivery to a socket's receive function on its home worker:
 * decrypted first when the socket is encrypted, then decoded by its codec.
 *
 * @module
 */
import type { Logger } from "@logtape/logtape";
import { CloseReason } from "../pool/wire.ts";
import type { Home } from "./_socket_homes.ts";
import { decodeFrame } from "./payload_codec.ts";
import { DecryptError, type SocketCipher } from "./socket_crypto.ts";

/** A frame's bytes for `home`: decrypted and decoded, then delivered (a closing socket's are dropped). */
export function deliverFrame(home: Home, frame: Uint8Array, log: Logger): unknown {
  if (home.failed) return undefined;
  const cipher = home.socket.cipher;
  if (cipher !== undefined) return decrypted(home, cipher, frame, log);
  return deliver(home, decodeFrame(frame, home.format.codec), log);
}

/** An encrypted socket's frame: decrypted, then decoded and delivered; else the socket closes. */
async function decrypted(
  home: Home,
  cipher: SocketCipher,
  frame: Uint8Array,
  log: Logger,
): Promise<unknown> {
  let plain: Uint8Array;
  try {
    plain = await cipher.open(frame);
  } catch (error) {
    if (!(error instanceof DecryptError)) throw error;
    // Only this socket: the main thread logs and counts the close (decrypt_failed).
    home.failed = true;
    home.socket.abort(CloseReason.DecryptFailed, error.message);
    return undefined;
  }
  return deliver(home, decodeFrame(plain, home.format.codec), log);
}

/** Calls the socket's receive function with a decoded value. */
export function deliver(home: Home, data: unknown, log: Logger): unknown {
  const receive = home.socket.receive;
  if (receive === undefined) {
    // A socket refused by onAccept (or closed) gets no warning per frame still
    // arriving: a refused UDP peer may send many before it is forgotten.
    if (home.socket.closed) return undefined;
    log.warning("Socket {id} has no receive function; frame dropped", {
      id: home.socket.id,
    });
    return undefined;
  }
  return receive(home.socket, data);
}
