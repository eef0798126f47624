/**
 * Client SDK transports for the benchmarks' load generators, beyond the SDK's own
 * `denoTransport`: a connect that an `AbortSignal` cancels (a session that gives up
 * while the server is not accepting), and a connection opened elsewhere handed to a
 * {@linkcode StageClient} (c10k drives some of its already-open idle connections).
 *
 * @module
 */
import type { ClientConnection, ClientTransport } from "../../core/client/mod.ts";

/** A `Deno.TcpConn` as the SDK's {@linkcode ClientConnection}. */
class TcpConnection implements ClientConnection {
  readonly #conn: Deno.TcpConn;
  #closed = false;

  constructor(conn: Deno.TcpConn) {
    this.#conn = conn;
    conn.setNoDelay(true);
  }

  read(buffer: Uint8Array): Promise<number | null> {
    return this.#conn.read(buffer);
  }

  write(bytes: Uint8Array): Promise<number> {
    return this.#conn.write(bytes);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#conn.close();
    } catch { /* closed by its owner or reset by the peer */ }
  }
}

/** TCP through `Deno.connect`, cancelled by `signal` (the connect rejects with its reason). */
export function abortableTransport(signal: AbortSignal): ClientTransport {
  return {
    async connect(host, port) {
      return new TcpConnection(await Deno.connect({ hostname: host, port, signal }));
    },
  };
}

/**
 * Hands out `conn`, already open, to the first `connect` (host and port are not used);
 * a second `connect` rejects (the benchmarks' clients do not reconnect).
 */
export function adoptedTransport(conn: Deno.TcpConn): ClientTransport {
  let taken = false;
  return {
    connect() {
      if (taken) return Promise.reject(new Error("adoptedTransport: the connection was taken"));
      taken = true;
      return Promise.resolve(new TcpConnection(conn));
    },
  };
}
