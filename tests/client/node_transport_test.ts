/** nodeTransport (node:net), exercised under Deno's Node compatibility. */
import assert from "node:assert/strict";
import { StageClient } from "../../core/client/mod.ts";
import { nodeTransport } from "../../core/client/node_transport.ts";
import { TestServer } from "./_servers.ts";

Deno.test("nodeTransport carries requests and pipelined frames, and closes cleanly", async () => {
  await using server = new TestServer("echo");
  await using client = await StageClient.connect({
    port: server.port,
    codec: "json",
    transport: nodeTransport,
  });
  assert.deepEqual(await client.request({ op: "ping" }, { timeout: 5000 }), { op: "ping", id: 1 });
  const big = "b".repeat(300_000);
  await Promise.all([client.send({ big }), client.send({ after: true })]);
  assert.deepEqual(await client.next(5000), { big });
  assert.deepEqual(await client.next(5000), { after: true });
});

Deno.test("nodeTransport rejects a refused connection with the runtime's error", async () => {
  const server = new TestServer("echo");
  const port = server.port;
  await server.close();
  await assert.rejects(
    StageClient.connect({ port, transport: nodeTransport }),
    /ECONNREFUSED|refused/i,
  );
});
