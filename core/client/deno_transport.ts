/**
 * The Deno adapter of {@link ClientTransport}: TCP through `Deno.connect`.
 *
 * @module
 */
import type { ClientConnection, ClientTransport } from "./transport.ts";

/**
 * TCP connections through `Deno.connect`, with Nagle's algorithm off (frames are
 * small and latency matters more than packet count).
 *
 * @example
 * ```ts
 * import { denoTransport } from "./deno_transport.ts";
 * if (typeof denoTransport.connect !== "function") throw new Error("not a transport");
 * ```
 */
export const denoTransport: ClientTransport = denoTransportWith();

/**
 * {@link denoTransport} whose connects `signal` cancels (the connect rejects
 * with its reason): for callers that give up on a server that is not accepting.
 *
 * @example
 * ```ts
 * import { denoTransportWith } from "./deno_transport.ts";
 * const transport = denoTransportWith({ signal: AbortSignal.timeout(1000) });
 * if (typeof transport.connect !== "function") throw new Error("not a transport");
 * ```
 */
export function denoTransportWith(options: { signal?: AbortSignal } = {}): ClientTransport {
  const { signal } = options;
  return {
    async connect(host, port) {
      const conn = await Deno.connect({
        hostname: host,
        port,
        ...(signal === undefined ? {} : { signal }),
      });
      return denoConnection(conn);
    },
  };
}

/**
 * An open `Deno.TcpConn` as a {@link ClientConnection} (Nagle off), for a
 * transport that hands out connections opened elsewhere.
 */
export function denoConnection(conn: Deno.TcpConn): ClientConnection {
  conn.setNoDelay(true);
  return new DenoConnection(conn);
}

class DenoConnection implements ClientConnection {
  readonly #conn: Deno.TcpConn;
  #closed = false;

  constructor(conn: Deno.TcpConn) {
    this.#conn = conn;
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
    } catch { /* the peer's reset already closed it */ }
  }
}
