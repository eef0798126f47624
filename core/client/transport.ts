/**
 * The transport interface: the only place the client meets a runtime. The core
 * (framing, codecs, {@link StageClient}) is runtime-neutral; adapters implement
 * this for Deno (`deno_transport.ts`) and Node (`node_transport.ts`). Browsers
 * have no raw TCP: `websocket_transport.ts` reaches `ws://` listeners through
 * the standard `WebSocket` (browsers, Deno, Node ≥ 22).
 *
 * @module
 */

/** One open byte stream to a Stage listener. */
export interface ClientConnection {
  /**
   * Reads into `buffer`; resolves with the bytes read, or `null` at the end of the
   * stream. Rejects (or resolves `null`) once `close()` was called.
   */
  read(buffer: Uint8Array): Promise<number | null>;
  /** Writes some of `bytes`; resolves with how many the socket took (may be fewer). */
  write(bytes: Uint8Array): Promise<number>;
  /** Closes the stream; pending reads and writes settle. Calling it twice is harmless. */
  close(): void;
}

/** Opens connections. */
export interface ClientTransport {
  /** Connects to `host:port`; rejects with the runtime's error when that fails. */
  connect(host: string, port: number): Promise<ClientConnection>;
}
