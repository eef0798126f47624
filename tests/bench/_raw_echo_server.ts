// deno-lint-ignore-file no-console
/**
 * The echo benchmark's baseline: a plain `Deno.listen` echo that writes back
 * whatever bytes it reads (no framing, no workers).
 *
 * Usage: `deno run -A tests/bench/_raw_echo_server.ts <port>`. Prints `listening`
 * once bound; exits 0 on SIGTERM or SIGINT.
 *
 * @module
 */

const port = Number(Deno.args[0]);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`usage: _raw_echo_server.ts <port> (got ${JSON.stringify(Deno.args[0])})`);
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

async function echo(conn: Deno.TcpConn): Promise<void> {
  connections.add(conn);
  conn.setNoDelay(true);
  const buffer = new Uint8Array(64 * 1024);
  try {
    for (;;) {
      const n = await conn.read(buffer);
      if (n === null) break;
      let written = 0;
      while (written < n) written += await conn.write(buffer.subarray(written, n));
    }
  } catch {
    // reset by the peer or closed on shutdown
  } finally {
    connections.delete(conn);
    try {
      conn.close();
    } catch { /* already closed */ }
  }
}

console.log(`listening on 127.0.0.1:${(listener.addr as Deno.NetAddr).port}`);
try {
  for await (const conn of listener) echo(conn);
} catch {
  // listener closed on shutdown
}
