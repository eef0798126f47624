/// <reference types="../../core/api/globals.d.ts" />
/**
 * `broker.aton` / `broker.ntoa` / `broker.ifaddr` and `broker.submit`: the
 * address conversions and their errors, and, with real workers, submits that
 * run in the socket's own order with its frames and interface addresses that
 * the main thread reads for workers without the `sys` permission.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { Broker } from "../../core/api/broker.ts";
import { aton, ntoa } from "../../core/api/net_address.ts";
import type { PlatformPort } from "../../core/api/platform_port.ts";
import { StageClient } from "../../core/client/mod.ts";
import { coreLogger } from "../../core/log/mod.ts";
import { unpackValues } from "../../core/message/mod.ts";
import {
  InjectMode,
  type InterfaceAddress,
  type MainControl,
  ToMain,
  type WorkerControl,
} from "../../core/pool/wire.ts";
import { REFERENCE, startFixture } from "../_helpers/stage_fixture.ts";

/** True only when A and B are assignable both ways. */
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const ambientMatches: true = true satisfies Same<Stage.InterfaceAddress, InterfaceAddress>;

Deno.test("aton reads dotted quads as uint32 in network order and IPv6 as 16 bytes", () => {
  assert.equal(aton("0.0.0.0"), 0);
  assert.equal(aton("1.2.3.4"), 0x01020304);
  assert.equal(aton("255.255.255.255"), 0xffff_ffff);
  assert.deepEqual(aton("::1"), Uint8Array.of(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1));
  assert.deepEqual(
    aton("2001:DB8::ff00:42:8329"),
    Uint8Array.of(0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0xff, 0, 0, 0x42, 0x83, 0x29),
  );
  assert.deepEqual(
    Array.from((aton("::ffff:192.0.2.1") as Uint8Array).subarray(10)),
    [0xff, 0xff, 192, 0, 2, 1],
  );
});

Deno.test("aton names the bad address and part", () => {
  const cases: [unknown, string, RegExp][] = [
    [42, "TypeError", /expected an address string; got number 42/],
    ["1.2.3", "TypeError", /"1.2.3"\): not an IPv4 or IPv6 address/],
    ["1.2.3.256", "RangeError", /"1.2.3.256"\): octet 256 is above 255/],
    ["010.0.0.1", "TypeError", /octet "010" has a leading zero/],
    ["1::2::3", "TypeError", /'::' may appear only once/],
    ["1:2:3:4:5:6:7", "TypeError", /expected 8 groups; got 7/],
    ["12345::", "TypeError", /"12345" is not a group of 1 to 4 hex digits/],
    ["[::1]", "TypeError", /without brackets/],
    ["fe80::1%eth0", "TypeError", /zone id/],
    ["localhost", "TypeError", /"localhost"\): not an IPv4 or IPv6 address/],
  ];
  for (const [input, name, message] of cases) {
    assert.throws(() => aton(input as string), { name, message }, String(input));
  }
});

Deno.test("ntoa formats numbers, 4 bytes and 16 bytes (canonical IPv6)", () => {
  assert.equal(ntoa(0x7f000001), "127.0.0.1");
  const mask = (aton("10.1.2.3") as number) & (aton("255.255.0.0") as number);
  assert.equal(ntoa(mask), "10.1.0.0");
  assert.equal(ntoa((aton("192.168.1.1") as number) & ~0xff), "192.168.1.0"); // a signed int32
  assert.equal(ntoa(Uint8Array.of(8, 8, 4, 4)), "8.8.4.4");
  assert.equal(ntoa(aton("2001:0db8:0000:0000:0001:0000:0000:0001")), "2001:db8::1:0:0:1");
  assert.equal(ntoa(aton("0:0:0:0:0:0:0:0")), "::");
  assert.equal(ntoa(aton("1:0:2:3:4:5:6:7")), "1:0:2:3:4:5:6:7"); // a single zero stays
  assert.equal(ntoa(aton("::ffff:1.2.3.4")), "::ffff:1.2.3.4");
  assert.throws(() => ntoa(2 ** 32), { name: "RangeError", message: /ntoa\(4294967296\)/ });
  assert.throws(() => ntoa(1.5), RangeError);
  assert.throws(() => ntoa(new Uint8Array(5)), { name: "RangeError", message: /got 5/ });
  assert.throws(() => ntoa("1.2.3.4" as never), { name: "TypeError", message: /got string/ });
});

Deno.test("ntoa and aton are inverse on every IPv4 number and IPv6 byte string", () => {
  fc.assert(fc.property(fc.nat({ max: 0xffff_ffff }), (n) => aton(ntoa(n)) === n));
  fc.assert(
    fc.property(
      fc.uint8Array({ minLength: 16, maxLength: 16 }),
      (bytes) => ntoa(aton(ntoa(bytes))) === ntoa(bytes) && sameBytes(aton(ntoa(bytes)), bytes),
    ),
  );
});

function sameBytes(a: number | Uint8Array, b: Uint8Array): boolean {
  return a instanceof Uint8Array && a.length === b.length && a.every((x, i) => x === b[i]);
}

interface Recorded {
  sent: { tag: number; a: number; b: number; body?: Uint8Array }[];
  asked: WorkerControl[];
}

function fakePort(answer: (message: WorkerControl) => unknown): PlatformPort & Recorded {
  const recorded: Recorded = { sent: [], asked: [] };
  return {
    ...recorded,
    send(tag, a, b, body) {
      recorded.sent.push({ tag, a, b, ...(body === undefined ? {} : { body }) });
    },
    post() {},
    request<T>(make: (requestId: number) => WorkerControl): Promise<T> {
      const message = make(1);
      recorded.asked.push(message);
      return Promise.resolve(answer(message) as T);
    },
  };
}

Deno.test("broker.submit sends the call into the socket's flow and checks its arguments", () => {
  const port = fakePort(() => undefined);
  const broker = new Broker(port, coreLogger("test"));
  broker.submit(9, (n: number) => n + 1, 41);
  assert.equal(port.sent.length, 1);
  const record = port.sent[0]!;
  assert.deepEqual([record.tag, record.a, record.b], [ToMain.Inject, 9, InjectMode.Submit]);
  const [fn, arg] = unpackValues(record.body!) as [(n: number) => number, number];
  assert.equal(fn(arg), 42);
  assert.throws(() => broker.submit("9" as never, () => {}), {
    name: "TypeError",
    message: /expected a socket or a socket id; got 9/,
  });
  assert.throws(() => broker.submit(-1, () => {}), TypeError);
  assert.throws(() => broker.submit(9, 5 as never), {
    name: "TypeError",
    message: /broker.submit\(socket 9\): expected a function or "file\+export"; got number/,
  });
  // A captured variable is found where the function runs (and logged there).
  const outer = 3;
  broker.submit(9, () => outer);
  const [captured] = unpackValues(port.sent[1]!.body!) as [() => number];
  assert.throws(() => captured(), { name: "CapturedVariableError", message: /"outer"/ });
});

Deno.test("broker.ifaddr asks the main thread and rebuilds its error", async () => {
  const addresses: InterfaceAddress[] = [{
    name: "lo",
    family: "IPv4",
    address: "127.0.0.1",
    netmask: "255.0.0.0",
    cidr: "127.0.0.1/8",
    scopeid: 0,
    mac: "00:00:00:00:00:00",
  }];
  const ok = fakePort((): MainControl => ({ type: "ifaddr-result", requestId: 1, addresses }));
  assert.deepEqual(await new Broker(ok, coreLogger("test")).ifaddr(), addresses);
  assert.deepEqual(ok.asked, [{ type: "ifaddr", requestId: 1 }]);
  const denied = fakePort((): MainControl => ({
    type: "ifaddr-result",
    requestId: 1,
    error: { name: "TypeError", message: "Requires sys access to networkInterfaces" },
  }));
  await assert.rejects(new Broker(denied, coreLogger("test")).ifaddr(), {
    name: "TypeError",
    message: /networkInterfaces/,
  });
});

const SUBMIT_SCRIPT = REFERENCE + `
/** Runs one step of the socket's log: start, a pause, end; notes any overlap. */
async function step(id: number, name: string): Promise<void> {
  const socket = broker.f(id);
  const log = socket.log as string[];
  if (socket.busy === true) log.push("overlap:" + name);
  socket.busy = true;
  log.push(name + ":start");
  await new Promise((resolve) => setTimeout(resolve, 5));
  log.push(name + ":end");
  socket.busy = false;
}

broker.ready("tcp://127.0.0.1:0?json", (socket) => {
  socket.log = [];
  return async (socket, data) => {
    if (data.op === "go") {
      const socketStep = async (id: number, name: string) => {
        const socket = broker.f(id);
        const log = socket.log as string[];
        if (socket.busy === true) log.push("overlap:" + name);
        socket.busy = true;
        log.push(name + ":start");
        await new Promise((resolve) => setTimeout(resolve, 5));
        log.push(name + ":end");
        socket.busy = false;
      };
      // Submitted while this frame runs: they must wait for it, then run in order.
      broker.submit(socket, socketStep, socket.id, "s1");
      broker.submit(socket.id, socketStep, socket.id, "s2");
      socket.commit({ submitted: true });
      await step(socket.id, "go");
      await new Promise((resolve) => setTimeout(resolve, 30));
      return;
    }
    if (data.op === "frame") return step(socket.id, "f" + data.n);
    if (data.op === "ticks") {
      broker.submit(socket, (id: number) => {
        const socket = broker.f(id);
        socket.ticks = Number(socket.ticks ?? 0) + 1;
        if (socket.ticks < 3) return 10; // again in 10 ms, in the socket's order
        socket.commit({ ticks: socket.ticks, worker: stage.worker });
      }, socket.id);
      return;
    }
    if (data.op === "named") return broker.submit(socket, "jobs+mark", socket.id, data.text);
    if (data.op === "ifaddr") return socket.commit(await broker.ifaddr());
    if (data.op === "report") socket.commit({ log: socket.log, worker: stage.worker });
  };
});
`;

const JOBS_SCRIPT = REFERENCE + `
export function mark(id: number, text: string): void {
  broker.f(id).commit({ marked: text });
}
`;

Deno.test("broker.submit runs in the socket's order: after the running frame, before later frames", async () => {
  await using fixture = await startFixture({
    scripts: { "start.ts": SUBMIT_SCRIPT, "jobs.ts": JOBS_SCRIPT },
  });
  await using client = await StageClient.connect({ port: fixture.port(), codec: "json" });
  await client.send({ op: "go" });
  // Both submits reached the main thread before this reply did: frames sent now queue after them.
  assert.deepEqual(await client.next(5000), { submitted: true });
  for (let n = 1; n <= 2; n++) client.post({ op: "frame", n });
  await client.send({ op: "report" });
  const { log } = await client.next(5000) as { log: string[] };
  assert.deepEqual(log, [
    "go:start",
    "go:end",
    "s1:start",
    "s1:end",
    "s2:start",
    "s2:end",
    "f1:start",
    "f1:end",
    "f2:start",
    "f2:end",
  ]);
});

Deno.test("broker.submit reschedules on a numeric result and loads file+export names", async () => {
  await using fixture = await startFixture({
    scripts: { "start.ts": SUBMIT_SCRIPT, "jobs.ts": JOBS_SCRIPT },
  });
  await using client = await StageClient.connect({ port: fixture.port(), codec: "json" });
  await client.send({ op: "ticks" });
  assert.equal((await client.next(5000) as { ticks: number }).ticks, 3);
  await client.send({ op: "named", text: "hello" });
  assert.deepEqual(await client.next(5000), { marked: "hello" });
});

Deno.test("broker.ifaddr answers workers without the sys permission", async () => {
  await using fixture = await startFixture({
    scripts: { "start.ts": SUBMIT_SCRIPT, "jobs.ts": JOBS_SCRIPT },
  });
  await using client = await StageClient.connect({ port: fixture.port(), codec: "json" });
  await client.send({ op: "ifaddr" });
  const addresses = await client.next(5000) as InterfaceAddress[];
  const expected = Deno.networkInterfaces();
  assert.equal(addresses.length, expected.length);
  assert.ok(addresses.some((entry) => entry.address === "127.0.0.1" && entry.family === "IPv4"));
  for (const entry of addresses) {
    assert.ok(expected.some((real) => real.name === entry.name && real.address === entry.address));
  }
  assert.equal(ambientMatches, true);
});
