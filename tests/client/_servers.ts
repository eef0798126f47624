/**
 * Plain `Deno.listen` servers the client tests control byte by byte: echo the
 * bytes back, or hold them unread (backpressure), and drop connections at will.
 */

/** A loopback server whose connections echo or stay unread. */
export class TestServer implements AsyncDisposable {
  #listener: Deno.TcpListener;
  #conns = new Set<Deno.TcpConn>();
  #tasks = new Set<Promise<void>>();
  #accepting: Promise<void>;
  /**
   * `echo` writes every byte back; `hold` does not read new connections at all (and
   * echo connections opened before stop answering).
   */
  mode: "echo" | "hold";
  /** Connections accepted so far. */
  accepted = 0;

  constructor(mode: "echo" | "hold", port = 0) {
    this.mode = mode;
    this.#listener = Deno.listen({ hostname: "127.0.0.1", port });
    this.#accepting = this.#accept();
  }

  get port(): number {
    return this.#listener.addr.port;
  }

  /** Closes the open connections (the listener keeps accepting). */
  dropConnections(): void {
    for (const conn of this.#conns) close(conn);
    this.#conns.clear();
  }

  /** Reads and discards `bytes` bytes from the held connections. */
  async drain(bytes: number): Promise<void> {
    const conn = [...this.#conns][0];
    if (conn === undefined) throw new Error("no connection to drain");
    const buffer = new Uint8Array(256 * 1024);
    for (let read = 0; read < bytes;) {
      const n = await conn.read(buffer);
      if (n === null) return;
      read += n;
    }
  }

  async close(): Promise<void> {
    close(this.#listener);
    this.dropConnections();
    await this.#accepting;
    await Promise.all(this.#tasks);
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async #accept(): Promise<void> {
    try {
      for await (const conn of this.#listener) {
        this.accepted++;
        this.#conns.add(conn);
        if (this.mode === "echo") {
          const task = this.#echo(conn).then(() => {
            this.#tasks.delete(task);
          });
          this.#tasks.add(task);
        }
      }
    } catch { /* listener closed */ }
  }

  async #echo(conn: Deno.TcpConn): Promise<void> {
    const buffer = new Uint8Array(64 * 1024);
    try {
      for (;;) {
        const n = await conn.read(buffer);
        if (n === null) break;
        // Switched to "hold" later: keep reading, stop answering.
        if (this.mode !== "echo") continue;
        for (let written = 0; written < n;) {
          written += await conn.write(buffer.subarray(written, n));
        }
      }
    } catch { /* dropped */ }
    this.#conns.delete(conn);
    close(conn);
  }
}

function close(resource: { close(): void }): void {
  try {
    resource.close();
  } catch { /* already closed */ }
}

/** Resolves with `"pending"` if `promise` has not settled within `ms`, else with its outcome. */
export async function settledWithin<T>(
  promise: Promise<T>,
  ms: number,
): Promise<"pending" | { value: T } | { error: unknown }> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const pending = new Promise<"pending">((resolve) =>
    timer = setTimeout(() => resolve("pending"), ms)
  );
  try {
    return await Promise.race([
      promise.then((value) => ({ value }), (error) => ({ error })),
      pending,
    ]);
  } finally {
    clearTimeout(timer);
  }
}
