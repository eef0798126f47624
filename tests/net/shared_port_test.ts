/**
 * `#services` ports: processes that listen on one share it (SO_REUSEPORT);
 * any other port stays exclusive ("address in use" as usual).
 */
import assert from "node:assert/strict";
import { isSharedAddress } from "../../core/net/mod.ts";
import { REFERENCE, startFixture } from "../_helpers/stage_fixture.ts";

function freePort(): number {
  const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (probe.addr as Deno.NetAddr).port;
  probe.close();
  return port;
}

const script = (port: number) =>
  REFERENCE + `broker.ready("tcp://127.0.0.1:${port}?json", () => (socket) => socket.commit(1));\n`;

Deno.test("isSharedAddress matches host and port; an empty host is 0.0.0.0; IPv6 in brackets", () => {
  assert.ok(isSharedAddress(["127.0.0.1:8801"], "127.0.0.1", 8801));
  assert.ok(isSharedAddress([":8801"], "0.0.0.0", 8801));
  assert.ok(isSharedAddress(["[::1]:8801"], "::1", 8801));
  assert.ok(!isSharedAddress(["127.0.0.1:8801"], "127.0.0.1", 8802));
  assert.ok(!isSharedAddress(["127.0.0.1:8801"], "0.0.0.0", 8801));
  assert.ok(!isSharedAddress([], "127.0.0.1", 8801));
});

Deno.test("two processes listening on a #services port share it; without #services the second fails", async () => {
  const port = freePort();
  const shared = { "#services": { tcp: [`127.0.0.1:${port}`] } };
  await using first = await startFixture({ config: shared, scripts: { "start.ts": script(port) } });
  await using second = await startFixture({
    config: shared,
    scripts: { "start.ts": script(port) },
  });
  assert.equal(first.port(), port);
  assert.equal(second.port(), port);

  const other = freePort();
  await using exclusive = await startFixture({ scripts: { "start.ts": script(other) } });
  assert.equal(exclusive.port(), other);
  await assert.rejects(
    startFixture({ scripts: { "start.ts": script(other) } }),
    /cannot listen on tcp:\/\/127\.0\.0\.1:\d+\?json: .*(in use|AddrInUse)/i,
  );
});
