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
export const denoTransport: ClientTransport = {
  async connect(host, port) {
    const conn = await Deno.connect({ hostname: host, port });
    conn.setNoDelay(true);
    return new DenoConnection(conn);
  },
};

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
