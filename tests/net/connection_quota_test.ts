/** ConnectionQuota, remoteIp and the broker limits a `#flow` section sets. */
import assert from "node:assert/strict";
import { parseConfig } from "../../core/config/mod.ts";
import {
  brokerLimitsFromFlow,
  ConnectionQuota,
  defaultBrokerLimits,
  remoteIp,
} from "../../core/net/mod.ts";

Deno.test("ConnectionQuota refuses past the per-IP limit and admits again after a release", () => {
  const quota = new ConnectionQuota({ maxConnections: 100, maxPerIp: 5 });
  for (let i = 0; i < 5; i++) assert.equal(quota.admit("10.0.0.1"), undefined);
  assert.equal(quota.admit("10.0.0.1"), "max_per_ip");
  assert.equal(quota.admit("10.0.0.2"), undefined, "other addresses are not affected");
  assert.equal(quota.openFrom("10.0.0.1"), 5);
  assert.equal(quota.open, 6);
  assert.equal(quota.release("10.0.0.1"), true);
  assert.equal(quota.admit("10.0.0.1"), undefined);
  assert.equal(quota.admit("10.0.0.1"), "max_per_ip");
});

Deno.test("ConnectionQuota refuses past the total limit before looking at the address", () => {
  const quota = new ConnectionQuota({ maxConnections: 3, maxPerIp: 1 });
  assert.equal(quota.admit("a"), undefined);
  assert.equal(quota.admit("b"), undefined);
  assert.equal(quota.admit("c"), undefined);
  assert.equal(quota.admit("a"), "max_connections");
  assert.equal(quota.admit("d"), "max_connections");
  quota.release("b");
  assert.equal(quota.admit("d"), undefined);
  assert.equal(quota.open, 3);
});

Deno.test("ConnectionQuota deletes an address's entry when its last connection is released", () => {
  const quota = new ConnectionQuota({ maxConnections: 1000, maxPerIp: 1000 });
  for (let i = 0; i < 300; i++) quota.admit(`10.0.${i % 100}.1`);
  assert.equal(quota.addresses, 100);
  for (let i = 0; i < 300; i++) quota.release(`10.0.${i % 100}.1`);
  assert.equal(quota.addresses, 0);
  assert.equal(quota.open, 0);
  assert.equal(quota.release("10.0.0.1"), false, "a release without an admit changes nothing");
  assert.equal(quota.open, 0);
});

Deno.test("ConnectionQuota rejects limits that are not positive integers", () => {
  assert.throws(
    () => new ConnectionQuota({ maxConnections: 0, maxPerIp: 1 }),
    new RangeError("Cannot create ConnectionQuota: maxConnections 0 is not a positive integer"),
  );
  assert.throws(
    () => new ConnectionQuota({ maxConnections: 1, maxPerIp: 1.5 }),
    new RangeError("Cannot create ConnectionQuota: maxPerIp 1.5 is not a positive integer"),
  );
});

const remotes: [remote: string, ip: string][] = [
  ["127.0.0.1:50123", "127.0.0.1"],
  ["192.168.1.20:0", "192.168.1.20"],
  ["[::1]:8080", "::1"],
  ["[2001:DB8::a:1]:443", "2001:db8::a:1"],
  ["[fe80::1%eth0]:22", "fe80::1%eth0"],
  ["[::ffff:10.1.2.3]:8080", "10.1.2.3"],
  ["[::FFFF:10.1.2.3]:8080", "10.1.2.3"],
  ["::1", "::1"],
  ["10.0.0.1", "10.0.0.1"],
];

for (const [remote, ip] of remotes) {
  Deno.test(`remoteIp takes ${JSON.stringify(ip)} from ${JSON.stringify(remote)}`, () => {
    assert.equal(remoteIp(remote), ip);
  });
}

Deno.test("brokerLimitsFromFlow maps the #flow keys onto BrokerLimits; defaults match", () => {
  assert.deepEqual(
    brokerLimitsFromFlow(parseConfig("{}", "/srv/config/stage.json").flow),
    defaultBrokerLimits,
  );
  const flow = parseConfig(
    `{ "#flow": { "socket_pending": 8, "read_bytes": 1024, "socket_out_bytes": 2048,
      "frame_deadline_ms": 300, "max_connections": 9, "max_per_ip": 3, "slice_ms": 10 } }`,
    "/srv/config/stage.json",
  ).flow;
  assert.deepEqual(brokerLimitsFromFlow(flow), {
    maxPendingFramesPerSocket: 8,
    maxQueuedOutBytes: 2048,
    readBufferBytes: 1024,
    maxConnections: 9,
    maxPerIp: 3,
    frameDeadlineMs: 300,
  });
});
