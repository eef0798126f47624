/**
 * The sockets whose home is this worker, and their user fields: sent to the
 * main thread when they change, so a socket that moves to another worker
 * (this one was stuck) arrives there with them.
 *
 * @module
 */
import { deserialize, serialize } from "node:v8";
import type { Logger } from "@logtape/logtape";
import { type SocketOpenInfo, ToMain } from "../pool/wire.ts";
import type { PlatformPort } from "./platform_port.ts";
import type { ListenServer } from "./server_handle.ts";
import { Socket, type SocketFormat } from "./socket.ts";

/** A socket at home on this worker. */
export interface Home {
  socket: Socket;
  format: SocketFormat;
  server: ListenServer | undefined;
  /** The user fields as last sent to the main thread (for moving the socket). */
  fields?: Uint8Array;
  /** A frame failed to decrypt: the socket is closing, its later frames are dropped. */
  failed?: boolean;
}

/** Own properties of a socket that are not user fields. */
const SOCKET_PROPERTIES = new Set(["id", "local", "remote", "receive", "moved"]);

/** Where the synced fields keep `socket.crypto` (no script field can have this name). */
const CRYPTO_FIELD = "\u0000crypto";

/** The table of this worker's sockets, by id. */
export class SocketHomes {
  #port: PlatformPort;
  #log: Logger;
  #homes = new Map<number, Home>();

  constructor(port: PlatformPort, log: Logger) {
    this.#port = port;
    this.#log = log;
  }

  /** The home of socket `id`, if this worker holds it. */
  get(id: number): Home | undefined {
    return this.#homes.get(id);
  }

  /** Removes socket `id` from the table and returns its home. */
  take(id: number): Home | undefined {
    const home = this.#homes.get(id);
    this.#homes.delete(id);
    return home;
  }

  /** Number of sockets whose home is this worker. */
  get size(): number {
    return this.#homes.size;
  }

  /**
   * Makes this worker the home of socket `id`: a new socket gets its server's
   * idle timeout; a moved one gets back its options and user fields.
   */
  adopt(
    id: number,
    info: SocketOpenInfo,
    format: SocketFormat,
    server: ListenServer | undefined,
  ): Socket {
    const moved = info.moved;
    format.protocol ??= info.url.slice(0, Math.max(0, info.url.indexOf(":")));
    const socket = new Socket(
      id,
      info.local,
      info.remote,
      this.#port,
      format,
      moved !== undefined,
      (socket, error) =>
        this.#log.error("Socket {id}: a frame could not be encrypted; closing it: {error}", {
          id: socket.id,
          error,
        }),
    );
    const home: Home = { socket, format, server };
    this.#homes.set(id, home);
    if (moved !== undefined) {
      socket.restoreOptions(moved.expire, moved.commitMs);
      if (moved.fields !== undefined) {
        const bytes = Uint8Array.from(atob(moved.fields), (c) => c.charCodeAt(0));
        home.fields = bytes;
        const fields = deserialize(bytes) as Record<string, unknown>;
        for (const [key, value] of Object.entries(fields)) {
          if (key === CRYPTO_FIELD) this.#restoreCrypto(socket, value);
          else if (!SOCKET_PROPERTIES.has(key)) {
            (socket as unknown as Record<string, unknown>)[key] = value;
          }
        }
      }
    } else if (server !== undefined && server.handle.expire > 0) {
      socket.expire = server.handle.expire;
    }
    return socket;
  }

  /** Sends socket `id`'s user fields (and `socket.crypto`) to the main thread when they changed. */
  syncFields(id: number): void {
    const home = this.#homes.get(id);
    if (home === undefined) return;
    const socket = home.socket as unknown as Record<string, unknown>;
    let fields: Record<string, unknown> | undefined;
    for (const key in socket) {
      if (!SOCKET_PROPERTIES.has(key)) (fields ??= {})[key] = socket[key];
    }
    const crypto = home.socket.crypto;
    if (crypto !== undefined) (fields ??= {})[CRYPTO_FIELD] = crypto;
    if (fields === undefined && home.fields === undefined) return;
    let bytes: Uint8Array;
    try {
      bytes = serialize(fields ?? {});
    } catch {
      // Fields that cannot be cloned (functions) stay on this worker only; the key must
      // move with the socket all the same, or a moved socket would talk in the clear.
      if (crypto === undefined) return;
      bytes = serialize({ [CRYPTO_FIELD]: crypto });
    }
    if (home.fields !== undefined && sameBytes(home.fields, bytes)) return;
    home.fields = bytes;
    this.#port.send(ToMain.SocketFields, id >>> 0, 0, bytes);
  }

  #restoreCrypto(socket: Socket, options: unknown): void {
    try {
      socket.crypto = options as Socket["crypto"];
    } catch (error) {
      this.#log.error("Socket {id} moved without its encryption; closing it: {error}", {
        id: socket.id,
        error,
      });
      socket.close();
    }
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
