/**
 * The runtime adapter of the network layer: the only place that calls
 * `Deno.listen` / `Deno.connect`.
 *
 * @module
 */

/** A byte stream connection as the network layer uses it. */
export interface StreamConn {
  read(buffer: Uint8Array): Promise<number | null>;
  write(bytes: Uint8Array): Promise<number>;
  close(): void;
  readonly local: string;
  readonly remote: string;
}

/** A bound listener. */
export interface StreamListener {
  /** The bound address, `"ip:port"` (the port is real even when 0 was asked for). */
  readonly address: string;
  readonly port: number;
  /**
   * The next connection; `undefined` once the listener is closed.
   * Throws on transient failures (e.g. out of file descriptors): callers retry.
   */
  accept(): Promise<StreamConn | undefined>;
  close(): void;
}

/** Opens listeners and outgoing connections. */
export interface Transport {
  listen(hostname: string, port: number, options?: { reusePort?: boolean }): StreamListener;
  connect(hostname: string, port: number): Promise<StreamConn>;
}

/** Formats a network address as `"ip:port"` or `"[ip6]:port"`. */
export function formatAddress(hostname: string, port: number): string {
  return hostname.includes(":") ? `[${hostname}]:${port}` : `${hostname}:${port}`;
}

function wrap(conn: Deno.TcpConn): StreamConn {
  // TCP_NODELAY: without it, request/reply latency jumps to tens of ms (Nagle + delayed ACK).
  conn.setNoDelay(true);
  conn.setKeepAlive(true);
  const local = conn.localAddr;
  const remote = conn.remoteAddr;
  return {
    read: (buffer) => conn.read(buffer),
    write: (bytes) => conn.write(bytes),
    close: () => {
      try {
        conn.close();
      } catch (error) {
        if (!(error instanceof Deno.errors.BadResource)) throw error;
      }
    },
    local: formatAddress(local.hostname, local.port),
    remote: formatAddress(remote.hostname, remote.port),
  };
}

/** The real transport over Deno's TCP API. */
export const denoTransport: Transport = {
  listen(hostname, port, options) {
    const listener = Deno.listen({
      hostname,
      port,
      transport: "tcp",
      ...(options?.reusePort ? { reusePort: true } : {}),
    });
    const addr = listener.addr as Deno.NetAddr;
    return {
      address: formatAddress(addr.hostname, addr.port),
      port: addr.port,
      close: () => {
        try {
          listener.close();
        } catch (error) {
          if (!(error instanceof Deno.errors.BadResource)) throw error;
        }
      },
      async accept() {
        try {
          return wrap(await listener.accept());
        } catch (error) {
          if (
            error instanceof Deno.errors.BadResource || error instanceof Deno.errors.Interrupted
          ) {
            return undefined;
          }
          throw error;
        }
      },
    };
  },
  async connect(hostname, port) {
    return wrap(await Deno.connect({ hostname, port, transport: "tcp" }));
  },
};
