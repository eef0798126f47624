/**
 * The Node adapter of {@link ClientTransport}: TCP through `node:net` (also works
 * under Deno's Node compatibility).
 *
 * @module
 */
import { connect as netConnect, type Socket } from "node:net";
import type { ClientConnection, ClientTransport } from "./transport.ts";

/** Received bytes held before the socket is paused (the reader is slower than the peer). */
const HIGH_WATER_BYTES = 256 * 1024;

/**
 * TCP connections through `node:net`, with Nagle's algorithm off.
 *
 * @example
 * ```ts
 * import { nodeTransport } from "./node_transport.ts";
 * if (typeof nodeTransport.connect !== "function") throw new Error("not a transport");
 * ```
 */
export const nodeTransport: ClientTransport = {
  connect(host, port) {
    return new Promise((resolve, reject) => {
      const socket = netConnect({ host, port, noDelay: true });
      const fail = (error: Error) => reject(error);
      socket.once("error", fail);
      socket.once("connect", () => {
        socket.off("error", fail);
        resolve(new NodeConnection(socket));
      });
    });
  },
};

class NodeConnection implements ClientConnection {
  readonly #socket: Socket;
  #chunks: Uint8Array[] = [];
  #bytes = 0;
  #ended = false;
  #error: Error | undefined;
  #wake: (() => void) | undefined;

  constructor(socket: Socket) {
    this.#socket = socket;
    socket.on("data", (chunk: Uint8Array) => {
      this.#chunks.push(chunk);
      this.#bytes += chunk.length;
      if (this.#bytes >= HIGH_WATER_BYTES) socket.pause();
      this.#notify();
    });
    socket.on("end", () => {
      this.#ended = true;
      this.#notify();
    });
    socket.on("error", (error: Error) => {
      this.#error = error;
      this.#notify();
    });
    socket.on("close", () => {
      this.#ended = true;
      this.#notify();
    });
  }

  async read(buffer: Uint8Array): Promise<number | null> {
    while (this.#chunks.length === 0) {
      if (this.#error !== undefined) throw this.#error;
      if (this.#ended) return null;
      await new Promise<void>((resolve) => this.#wake = resolve);
    }
    const chunk = this.#chunks[0]!;
    const n = Math.min(buffer.length, chunk.length);
    buffer.set(chunk.subarray(0, n), 0);
    if (n === chunk.length) this.#chunks.shift();
    else this.#chunks[0] = chunk.subarray(n);
    this.#bytes -= n;
    if (this.#bytes < HIGH_WATER_BYTES) this.#socket.resume();
    return n;
  }

  write(bytes: Uint8Array): Promise<number> {
    return new Promise((resolve, reject) => {
      // The callback runs once the bytes are handed to the operating system.
      this.#socket.write(bytes, (error) => error ? reject(error) : resolve(bytes.length));
    });
  }

  close(): void {
    this.#ended = true;
    this.#socket.destroy();
    this.#notify();
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }
}
