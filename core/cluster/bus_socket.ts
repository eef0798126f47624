/**
 * The runtime adapter of the local bus: Unix domain sockets carrying frames
 * (`[int32 LE total length][payload]`). The hub listens on a socket file in
 * a folder only its owner can enter; each process connects to it.
 *
 * @module
 */
import { chmod } from "node:fs/promises";
import { FrameDecoder } from "../net/framing.ts";

/** Largest bus frame: a stage message plus its routing (16 MiB). */
export const MAX_BUS_FRAME = 16 * 1024 * 1024;

/** One framed connection of the bus. */
export interface BusConnection {
  /** Queues a whole frame (see `bus_frames.ts`); frames are written in order. */
  send(frame: Uint8Array): void;
  /** Closes the connection; `closed` resolves. */
  close(): void;
  /** Resolves once the connection is closed, by either side. */
  readonly closed: Promise<void>;
}

/**
 * Wraps a connected socket: every frame read goes to `onPayload` (its
 * payload, without the length header; a view valid during the call).
 * A malformed frame closes the connection (reported to `onError`).
 */
export function framedConnection(
  conn: Deno.Conn,
  onPayload: (payload: Uint8Array) => void,
  onError: (error: unknown) => void = () => {},
): BusConnection {
  const decoder = new FrameDecoder(MAX_BUS_FRAME);
  const queue: Uint8Array[] = [];
  let writing = false;
  let open = true;
  let resolveClosed!: () => void;
  const closed = new Promise<void>((resolve) => resolveClosed = resolve);
  const close = () => {
    if (!open) return;
    open = false;
    try {
      conn.close();
    } catch {
      // already closed by the peer
    }
    resolveClosed();
  };
  const write = async () => {
    writing = true;
    try {
      while (open && queue.length > 0) {
        let chunk = queue.shift()!;
        while (chunk.length > 0) chunk = chunk.subarray(await conn.write(chunk));
      }
    } catch (error) {
      if (open) onError(error);
      close();
    } finally {
      writing = false;
    }
  };
  (async () => {
    const buffer = new Uint8Array(64 * 1024);
    try {
      for (;;) {
        const n = await conn.read(buffer);
        if (n === null) break;
        decoder.push(buffer.subarray(0, n), onPayload);
      }
    } catch (error) {
      if (open) onError(error);
    }
    close();
  })();
  return {
    send(frame) {
      if (!open) return;
      queue.push(frame);
      if (!writing) write();
    },
    close,
    closed,
  };
}

/** A listening hub socket. */
export interface BusListener extends AsyncDisposable {
  /** The socket file. */
  readonly path: string;
  /** Stops accepting and removes the socket file (connections stay open). */
  close(): Promise<void>;
}

/**
 * Listens on a new socket file in a fresh owner-only (0700) folder, so only
 * this user's processes can connect; the socket itself is 0600 as well.
 */
export async function listenBus(onConnection: (conn: Deno.Conn) => void): Promise<BusListener> {
  const dir = await Deno.makeTempDir({ prefix: "stage-bus-" });
  await chmod(dir, 0o700);
  const path = `${dir}/bus.sock`;
  const listener = Deno.listen({ transport: "unix", path });
  await chmod(path, 0o600);
  let open = true;
  const accepting = (async () => {
    try {
      for await (const conn of listener) onConnection(conn);
    } catch (error) {
      if (open) throw error;
    }
  })();
  const close = async () => {
    if (!open) return;
    open = false;
    listener.close();
    await accepting.catch(() => {});
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  return { path, close, [Symbol.asyncDispose]: close };
}

/** Connects to a hub's socket file. */
export function connectBus(path: string): Promise<Deno.Conn> {
  return Deno.connect({ transport: "unix", path });
}
