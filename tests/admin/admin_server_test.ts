/**
 * serveAdmin over a real port, and its refusal to expose an unprotected API.
 */
import assert from "node:assert/strict";
import { getLogger } from "@logtape/logtape";
import {
  adminApp,
  AdminExposedError,
  type AdminSources,
  emptySocketsReport,
  isLoopback,
  serveAdmin,
} from "../../core/admin/mod.ts";

const log = getLogger(["stage", "admin", "test"]);

const sources: AdminSources = {
  health: () => ({ live: true, ready: true, state: "ready" }),
  metricsText: () => "stage_overloaded 0\n",
  stages: () => [],
  sockets: () => emptySocketsReport(),
  tickets: () => [],
  routes: () => [],
  workers: () => [],
  signal: (_target, values) => Promise.resolve(values.length),
  reload: () => Promise.resolve(),
  drain: () => Promise.resolve(),
};

Deno.test("serveAdmin serves the admin app on a real port with the token", async () => {
  const token = "port-token";
  await using server = serveAdmin(
    adminApp(sources, { token }),
    { hostname: "127.0.0.1", port: 0, token },
    log,
  );
  assert.match(server.address, /^127\.0\.0\.1:\d+$/);
  assert.ok(server.port > 0);
  const base = `http://${server.address}`;
  const health = await fetch(`${base}/health`);
  assert.equal(health.status, 200);
  assert.deepEqual(await health.json(), { live: true, ready: true, state: "ready" });
  const denied = await fetch(`${base}/metrics`);
  assert.equal(denied.status, 401);
  await denied.body?.cancel();
  const metrics = await fetch(`${base}/metrics`, {
    headers: { authorization: `Bearer ${token}` },
  });
  assert.equal(metrics.status, 200);
  assert.equal(await metrics.text(), "stage_overloaded 0\n");
  const signal = await fetch(`${base}/signal`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify({ target: "calc:add", values: [1, 2, 3] }),
  });
  assert.deepEqual(await signal.json(), { reply: 3 });
  await server.shutdown();
  await server.shutdown(); // twice is fine
  await assert.rejects(() => fetch(`${base}/health`));
});

Deno.test("serveAdmin refuses a non-loopback address without a token", () => {
  const app = adminApp(sources);
  for (const hostname of ["0.0.0.0", "", "::", "192.168.1.10", "example.com", "128.0.0.1"]) {
    assert.throws(
      () => serveAdmin(app, { hostname, port: 0 }, log),
      (error: unknown) =>
        error instanceof AdminExposedError && error.message.includes(`"${hostname}:0"`) &&
        error.message.includes("#admin.token"),
      hostname,
    );
    assert.throws(() => serveAdmin(app, { hostname, port: 0, token: "" }, log), AdminExposedError);
  }
});

Deno.test("isLoopback accepts 127.0.0.0/8, ::1 and localhost only", () => {
  for (const host of ["127.0.0.1", "127.1.2.3", "localhost", "LOCALHOST", "::1", "[::1]"]) {
    assert.ok(isLoopback(host), host);
  }
  assert.ok(isLoopback("::ffff:127.0.0.1"));
  for (
    const host of ["0.0.0.0", "", "::", "127.0.0", "127.0.0.256", "10.0.0.1", "localhost.evil"]
  ) {
    assert.ok(!isLoopback(host), host);
  }
});

Deno.test("serveAdmin names the address it cannot bind", async () => {
  await using first = serveAdmin(adminApp(sources), { hostname: "127.0.0.1", port: 0 }, log);
  assert.throws(
    () => serveAdmin(adminApp(sources), { hostname: "127.0.0.1", port: first.port }, log),
    (error: unknown) =>
      error instanceof Error && error.message.includes(`"127.0.0.1:${first.port}"`) &&
      error.cause !== undefined,
  );
  assert.throws(
    () => serveAdmin(adminApp(sources), { hostname: "127.0.0.1", port: 70000 }, log),
    TypeError,
  );
});
