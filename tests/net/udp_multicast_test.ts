/**
 * Multicast `udp://` listeners against a real Stage runtime, on the loopback
 * interface only. Delivery runs where this host loops multicast back on `lo`
 * (probed first with plain sockets); the join/leave test reads the kernel's
 * membership table (`/proc/net/igmp`, Linux).
 */
import assert from "node:assert/strict";
import { REFERENCE, startFixture } from "../_helpers/stage_fixture.ts";
import { poll } from "../_helpers/poll.ts";
import { UdpClient } from "./_udp_client.ts";

const GROUP = "239.255.42.7";
/** The group as /proc/net/igmp writes it: the address's bytes in host (little-endian) order. */
const GROUP_HEX = "072AFFEF";

/** Whether a datagram sent from 127.0.0.1 to a group joined on 127.0.0.1 arrives here. */
async function loopbackMulticastWorks(): Promise<boolean> {
  const receiver = Deno.listenDatagram({ hostname: "0.0.0.0", port: 0, transport: "udp" });
  const sender = Deno.listenDatagram({ hostname: "127.0.0.1", port: 0, transport: "udp" });
  const timer = setTimeout(() => receiver.close(), 1000);
  try {
    await receiver.joinMulticastV4("239.255.42.8", "127.0.0.1");
    const port = (receiver.addr as Deno.NetAddr).port;
    await sender.send(new Uint8Array([1]), { transport: "udp", hostname: "239.255.42.8", port });
    await receiver.receive();
    return true;
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
    try {
      receiver.close();
    } catch { /* closed by the timer */ }
    sender.close();
  }
}

async function loopbackGroups(): Promise<string | undefined> {
  try {
    const table = await Deno.readTextFile("/proc/net/igmp");
    // Groups are listed under their device's line; keep the lines of `lo`.
    const lo = table.split(/\n(?=\d)/).find((block) => /^\d+\s+lo\s/.test(block));
    return lo ?? "";
  } catch {
    return undefined;
  }
}

const deliveryWorks = await loopbackMulticastWorks();
const igmpReadable = (await loopbackGroups()) !== undefined;

const START = REFERENCE + `
const server = broker.ready("udp://0.0.0.0:0?json&join=${GROUP}&if=127.0.0.1", () =>
  (socket: Stage.Socket, data: any) => {
    if (data.op === "stop") {
      server.stop();
      socket.commit({ stopping: true });
      return socket.close();
    }
    socket.commit({ group: data, remote: socket.remote });
  });
`;

Deno.test({
  name: "broker.ready udp:// with join= receives datagrams sent to the group",
  ignore: !deliveryWorks,
  async fn() {
    await using fixture = await startFixture({ scripts: { "start.ts": START } });
    const port = fixture.port("join=");
    await using client = new UdpClient();
    await client.send(port, new TextEncoder().encode(JSON.stringify({ n: 1 })), GROUP);
    // The reply is unicast, from the listener's own address, to the sender.
    const reply = await client.nextJson();
    assert.deepEqual(reply, { group: { n: 1 }, remote: client.address });
  },
});

Deno.test({
  name: "broker.ready udp:// joins its group on the interface and leaves it once stopped",
  ignore: !igmpReadable,
  async fn() {
    assert.ok(!(await loopbackGroups())!.includes(GROUP_HEX), "joined before the test");
    await using fixture = await startFixture({ scripts: { "start.ts": START } });
    await poll("group joined on lo", loopbackGroups, (groups) => groups!.includes(GROUP_HEX));
    const port = fixture.port("join=");
    await using client = new UdpClient();
    // Unicast reaches the listener too (it is bound to 0.0.0.0).
    assert.deepEqual(await client.json(port, { op: "stop" }), { stopping: true });
    // Stopped, and its last peer gone: the socket closes and the kernel leaves the group.
    await poll("group left", loopbackGroups, (groups) => !groups!.includes(GROUP_HEX));
    assert.equal(fixture.stage().broker.socketCount, 0);
  },
});

Deno.test("broker.ready udp:// fails the stage when a group cannot be joined", async () => {
  // No interface has 198.51.100.77 (TEST-NET-2): the join fails with "No such device".
  const script = REFERENCE + `broker.ready("udp://0.0.0.0:0?join=239.255.42.9&if=198.51.100.77",
    () => () => {});`;
  const started = startFixture({ scripts: { "start.ts": script } });
  const outcome = await started.then(
    async (fixture) => {
      // The join answered after the start check: the listener is closed and the
      // failure recorded.
      await using _ = fixture;
      await poll(
        "join failure recorded",
        () => Promise.resolve(fixture.stage().broker.failedListens.length),
        (n) => n === 1,
      );
      return String(fixture.stage().broker.failedListens[0]!.error);
    },
    (error) => String(error),
  );
  assert.match(outcome, /Cannot join multicast group 239\.255\.42\.9 on 198\.51\.100\.77/);
});
