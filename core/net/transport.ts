/**
 * The runtime adapter of the network layer: the only place that calls
 * `Deno.listen` / `Deno.connect` / `Deno.listenDatagram`.
 *
 * @module
 */
import { lookup } from "node:dns/promises";

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
    close: () => closeQuietly(conn),
    local: formatAddress(local.hostname, local.port),
    remote: formatAddress(remote.hostname, remote.port),
  };
}

/**
 * Listening sockets per address on Linux. Deno's accept backlog is fixed at 511;
 * several SO_REUSEPORT sockets on one port let the kernel spread a burst of
 * connects over several accept queues (1,000 simultaneous connects fit).
 */
const ACCEPTORS = Deno.build.os === "linux" ? 4 : 1;

function closeQuietly(resource: { close(): void }): void {
  try {
    resource.close();
  } catch (error) {
    if (!(error instanceof Deno.errors.BadResource)) throw error;
  }
}

function isClosedError(error: unknown): boolean {
  return error instanceof Deno.errors.BadResource || error instanceof Deno.errors.Interrupted;
}

/** Binds `count` sockets to one address (SO_REUSEPORT when more than one). */
function bind(hostname: string, port: number, count: number, shared: boolean): Deno.TcpListener[] {
  if (count === 1) {
    return [
      Deno.listen({ hostname, port, transport: "tcp", ...(shared ? { reusePort: true } : {}) }),
    ];
  }
  if (!shared && port !== 0) {
    // SO_REUSEPORT would let a second server on this port share it silently;
    // a plain bind first makes "address in use" fail loudly as usual.
    closeQuietly(Deno.listen({ hostname, port, transport: "tcp" }));
  }
  const first = Deno.listen({ hostname, port, transport: "tcp", reusePort: true });
  const listeners = [first];
  try {
    const actual = (first.addr as Deno.NetAddr).port;
    for (let i = 1; i < count; i++) {
      listeners.push(Deno.listen({ hostname, port: actual, transport: "tcp", reusePort: true }));
    }
  } catch (error) {
    for (const listener of listeners) closeQuietly(listener);
    throw error;
  }
  return listeners;
}

/** The real transport over Deno's TCP API. */
export const denoTransport: Transport = {
  listen(hostname, port, options) {
    const listeners = bind(hostname, port, ACCEPTORS, options?.reusePort ?? false);
    const addr = listeners[0]!.addr as Deno.NetAddr;
    const ready: StreamConn[] = [];
    const waiters: ((conn: StreamConn | undefined) => void)[] = [];
    const failures: unknown[] = [];
    let open = listeners.length;
    const deliver = (conn: StreamConn) => {
      const waiter = waiters.shift();
      if (waiter !== undefined) waiter(conn);
      else ready.push(conn);
    };
    // One accept loop per socket, merged into one queue for the caller.
    for (const listener of listeners) {
      (async () => {
        for (;;) {
          try {
            const conn = await listener.accept();
            try {
              deliver(wrap(conn));
            } catch {
              closeQuietly(conn); // reset before we could configure it
            }
          } catch (error) {
            if (isClosedError(error)) break;
            failures.push(error);
            const waiter = waiters.shift();
            if (waiter !== undefined) waiter(undefined);
            await new Promise((resolve) => setTimeout(resolve, 50));
          }
        }
        if (--open === 0) { for (const waiter of waiters.splice(0)) waiter(undefined); }
      })();
    }
    return {
      address: formatAddress(addr.hostname, addr.port),
      port: addr.port,
      close: () => {
        for (const listener of listeners) closeQuietly(listener);
        for (const conn of ready.splice(0)) conn.close();
      },
      accept() {
        const failure = failures.shift();
        if (failure !== undefined) return Promise.reject(failure);
        const conn = ready.shift();
        if (conn !== undefined) return Promise.resolve(conn);
        if (open === 0) return Promise.resolve(undefined);
        return new Promise<StreamConn | undefined>((resolve) => waiters.push(resolve)).then(
          (conn) => {
            if (conn !== undefined || open === 0) return conn;
            const error = failures.shift();
            return error === undefined ? this.accept() : Promise.reject(error);
          },
        );
      },
    };
  },
  async connect(hostname, port) {
    return wrap(await Deno.connect({ hostname, port, transport: "tcp" }));
  },
};

/** One datagram received: its bytes (a view of the caller's buffer) and where it came from. */
export interface Datagram {
  bytes: Uint8Array;
  hostname: string;
  port: number;
}

/** A bound UDP socket as the network layer uses it. */
export interface DatagramSocket {
  /** The bound address, `"ip:port"` (the port is real even when 0 was asked for). */
  readonly address: string;
  readonly port: number;
  /**
   * The next datagram, copied into `buffer` (a longer one is cut to its size);
   * `undefined` once the socket is closed. Throws on other failures.
   */
  receive(buffer: Uint8Array): Promise<Datagram | undefined>;
  /** Sends one datagram to `hostname:port` (an IP address). */
  send(bytes: Uint8Array, hostname: string, port: number): Promise<void>;
  /**
   * Joins a multicast group: IPv4 on the interface with that address, IPv6 on
   * that index. The group is left when the socket closes.
   */
  joinMulticast(group: string, networkInterface: string | number): Promise<void>;
  close(): void;
}

/** Binds UDP sockets and resolves host names to addresses. */
export interface DatagramTransport {
  bind(
    hostname: string,
    port: number,
    options?: { loopback?: boolean; reuseAddress?: boolean },
  ): DatagramSocket;
  /** The IP address of `hostname` (itself when it is an address). */
  resolve(hostname: string): Promise<string>;
}

/**
 * The real datagram transport over Deno's UDP API (which needs `--unstable-net`).
 *
 * @example
 * ```ts
 * import { denoDatagramTransport } from "./transport.ts";
 * const a = denoDatagramTransport.bind("127.0.0.1", 0);
 * const b = denoDatagramTransport.bind("127.0.0.1", 0);
 * await a.send(new Uint8Array([1, 2]), "127.0.0.1", b.port);
 * const datagram = await b.receive(new Uint8Array(16));
 * if (datagram?.port !== a.port || datagram.bytes.length !== 2) throw new Error("not received");
 * a.close();
 * b.close();
 * ```
 *
 * @throws Error from `bind` when Deno runs without `--unstable-net`
 */
export const denoDatagramTransport: DatagramTransport = {
  bind(hostname, port, options) {
    if (typeof Deno.listenDatagram !== "function") {
      throw new Error(
        `Cannot bind udp://${formatAddress(hostname, port)}: UDP needs Deno's --unstable-net flag`,
      );
    }
    const conn = Deno.listenDatagram({
      hostname,
      port,
      transport: "udp",
      ...(options?.loopback ? { loopback: true } : {}),
      ...(options?.reuseAddress ? { reuseAddress: true } : {}),
    });
    const addr = conn.addr as Deno.NetAddr;
    return {
      address: formatAddress(addr.hostname, addr.port),
      port: addr.port,
      async receive(buffer) {
        try {
          const [bytes, from] = await conn.receive(buffer);
          const remote = from as Deno.NetAddr;
          return { bytes, hostname: remote.hostname, port: remote.port };
        } catch (error) {
          if (isClosedError(error)) return undefined;
          throw error;
        }
      },
      async send(bytes, hostname, port) {
        await conn.send(bytes, { transport: "udp", hostname, port });
      },
      async joinMulticast(group, networkInterface) {
        if (typeof networkInterface === "number") {
          await conn.joinMulticastV6(group, networkInterface);
        } else await conn.joinMulticastV4(group, networkInterface);
      },
      close: () => closeQuietly(conn),
    };
  },
  async resolve(hostname) {
    if (/^[\d.]+$/.test(hostname) || hostname.includes(":")) return hostname;
    return (await lookup(hostname)).address;
  },
};
