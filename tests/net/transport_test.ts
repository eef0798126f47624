/**
 * denoTransport: several accept sockets per address, yet a busy port still fails loudly.
 */
import assert from "node:assert/strict";
import { denoTransport } from "../../core/net/transport.ts";

Deno.test("denoTransport.listen refuses a port another server holds instead of sharing it", () => {
  const holder = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const port = (holder.addr as Deno.NetAddr).port;
    assert.throws(() => denoTransport.listen("127.0.0.1", port), Deno.errors.AddrInUse);
  } finally {
    holder.close();
  }
  const first = denoTransport.listen("127.0.0.1", 0);
  try {
    assert.throws(() => denoTransport.listen("127.0.0.1", first.port), Deno.errors.AddrInUse);
  } finally {
    first.close();
  }
});

Deno.test("denoTransport.listen accepts connections and ends accept() with undefined on close", async () => {
  const listener = denoTransport.listen("127.0.0.1", 0);
  const clients = await Promise.all(
    Array.from({ length: 20 }, () => Deno.connect({ hostname: "127.0.0.1", port: listener.port })),
  );
  const accepted = [];
  for (let i = 0; i < 20; i++) accepted.push(await listener.accept());
  assert.equal(accepted.filter((conn) => conn !== undefined).length, 20);
  assert.match(accepted[0]!.remote, /^127\.0\.0\.1:\d+$/);
  const pending = listener.accept();
  listener.close();
  assert.equal(await pending, undefined);
  for (const conn of accepted) conn?.close();
  for (const client of clients) client.close();
});
