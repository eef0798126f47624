// deno-lint-ignore-file no-console
/**
 * The flow benchmark's baseline: a plain `Deno.listen` server with no flow control.
 *
 * One event loop does everything. Each connection reads as fast as the kernel gives
 * it bytes, runs {@linkcode flowHandler} on every frame of a read at once (inline:
 * nothing else runs meanwhile), and appends the replies to an unbounded output queue
 * that a writer drains as fast as the client reads. No input bound, no output bound,
 * no connection limit, no time slice: the server Stage is compared with.
 *
 * Usage: `deno run -A tests/bench/_naive_server.ts <port> [--greet]`. With `--greet`
 * (the `overload` scenario) every accepted connection first gets the greeting frame
 * ({@linkcode GREETING_PAYLOAD}). Prints `listening on 127.0.0.1:<port>` once bound;
 * exits 0 on SIGTERM or SIGINT.
 *
 * @module
 */
import { encodeFrame, flowHandler, FrameReader, GREETING_PAYLOAD } from "./_flow_protocol.ts";

/** Bytes read per `read` call (a common default of naive servers). */
const READ_BUFFER_BYTES = 16 * 1024;

const port = Number(Deno.args[0]);
const greet = Deno.args[1] === "--greet";
if (
  !Number.isInteger(port) || port < 0 || port > 65535 ||
  Deno.args.length > (greet ? 2 : 1)
) {
  console.error(`usage: _naive_server.ts <port> [--greet] (got ${JSON.stringify(Deno.args)})`);
  Deno.exit(2);
}

const listener = Deno.listen({ hostname: "127.0.0.1", port });
const connections = new Set<Deno.TcpConn>();

function shutdown(): void {
  try {
    listener.close();
  } catch { /* already closed */ }
  for (const conn of connections) {
    try {
      conn.close();
    } catch { /* already closed */ }
  }
  Deno.exit(0);
}
Deno.addSignalListener("SIGTERM", shutdown);
Deno.addSignalListener("SIGINT", shutdown);

/** Replies waiting to be written, without bound, drained by one writer per connection. */
class OutputQueue {
  readonly #conn: Deno.TcpConn;
  #frames: Uint8Array[] = [];
  #bytes = 0;
  #writing = false;

  constructor(conn: Deno.TcpConn) {
    this.#conn = conn;
  }

  push(frame: Uint8Array): void {
    this.#frames.push(frame);
    this.#bytes += frame.length;
    if (!this.#writing) this.#drain();
  }

  async #drain(): Promise<void> {
    this.#writing = true;
    try {
      while (this.#frames.length > 0) {
        const batch = new Uint8Array(this.#bytes);
        let offset = 0;
        for (const frame of this.#frames) {
          batch.set(frame, offset);
          offset += frame.length;
        }
        this.#frames = [];
        this.#bytes = 0;
        let written = 0;
        while (written < batch.length) written += await this.#conn.write(batch.subarray(written));
      }
    } catch {
      // the peer went away; the read loop closes the connection
      this.#frames = [];
      this.#bytes = 0;
    } finally {
      this.#writing = false;
    }
  }
}

async function serve(conn: Deno.TcpConn): Promise<void> {
  connections.add(conn);
  conn.setNoDelay(true);
  const output = new OutputQueue(conn);
  if (greet) output.push(encodeFrame(GREETING_PAYLOAD));
  const reader = new FrameReader();
  const buffer = new Uint8Array(READ_BUFFER_BYTES);
  try {
    for (;;) {
      const n = await conn.read(buffer);
      if (n === null) break;
      reader.push(
        buffer.subarray(0, n),
        (payload) => output.push(encodeFrame(flowHandler(payload))),
      );
    }
  } catch {
    // reset by the peer, a bad frame, or closed on shutdown
  } finally {
    connections.delete(conn);
    try {
      conn.close();
    } catch { /* already closed */ }
  }
}

console.log(`listening on 127.0.0.1:${listener.addr.port}`);
try {
  for await (const conn of listener) serve(conn);
} catch {
  // listener closed on shutdown
}
