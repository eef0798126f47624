/** `UdpPeer` and `UdpEndpoint` with an in-memory datagram socket and a manual clock. */
import assert from "node:assert/strict";
import { getLogger } from "@logtape/logtape";
import { CloseReason, type CloseReasonCode } from "../../core/pool/wire.ts";
import { UdpDrops } from "../../core/net/_udp_drops.ts";
import { UdpEndpoint } from "../../core/net/_udp_endpoint.ts";
import { UdpPeer } from "../../core/net/_udp_peer.ts";
import type { Datagram, DatagramSocket } from "../../core/net/transport.ts";
import { ManualClock } from "../_helpers/manual_clock.ts";

/** A datagram socket fed by the test; what it sends is recorded. */
class FakeSocket implements DatagramSocket {
  readonly address = "127.0.0.1:5000";
  readonly port = 5000;
  readonly sent: { bytes: number[]; to: string }[] = [];
  closed = false;
  #inbox: (Datagram | undefined)[] = [];
  #wake: (() => void) | undefined;

  deliver(bytes: number[], port = 40000): void {
    this.#inbox.push({ bytes: new Uint8Array(bytes), hostname: "127.0.0.1", port });
    this.#wake?.();
  }

  async receive(buffer: Uint8Array): Promise<Datagram | undefined> {
    while (this.#inbox.length === 0) {
      if (this.closed) return undefined;
      await new Promise<void>((resolve) => this.#wake = resolve);
    }
    const next = this.#inbox.shift()!;
    const length = Math.min(next.bytes.length, buffer.length);
    buffer.set(next.bytes.subarray(0, length));
    return { ...next, bytes: buffer.subarray(0, length) };
  }

  send(bytes: Uint8Array, hostname: string, port: number): Promise<void> {
    this.sent.push({ bytes: [...bytes], to: `${hostname}:${port}` });
    return Promise.resolve();
  }

  joinMulticast(): Promise<void> {
    return Promise.resolve();
  }

  close(): void {
    this.closed = true;
    this.#wake?.();
  }
}

function setup(maxPendingFrames = 2) {
  const clock = new ManualClock();
  const log = getLogger(["stage", "test"]);
  const drops = new UdpDrops(clock, log);
  const socket = new FakeSocket();
  const endpoint = new UdpEndpoint(socket, {
    url: "udp://x",
    codec: "raw",
    maxIn: 8,
    drops,
    clock,
    log,
  });
  const frames: { id: number; bytes: number[] }[] = [];
  const closed: { id: number; reason: CloseReasonCode }[] = [];
  let nextId = 1;
  const events = {
    frame: (peer: UdpPeer, header: Uint8Array, payload: Uint8Array | undefined) =>
      frames.push({ id: peer.id, bytes: [...header, ...(payload ?? [])] }),
    closed: (peer: UdpPeer, reason: CloseReasonCode) => closed.push({ id: peer.id, reason }),
  };
  const peers: UdpPeer[] = [];
  const loop = endpoint.serve((remote, hostname, port) => {
    const where = { url: "udp://x", local: socket.address, remote, hostname, port };
    const peer = new UdpPeer(nextId++, where, endpoint, events, {
      codec: "raw",
      maxPendingFrames,
      maxQueuedOut: 6,
      clock,
    });
    peers.push(peer);
    return peer;
  });
  return { clock, drops, socket, endpoint, frames, closed, peers, loop };
}

const turn = () => new Promise((resolve) => setTimeout(resolve, 0));

Deno.test("UdpEndpoint gives each remote address a peer and frames its datagrams in order", async () => {
  const t = setup();
  t.socket.deliver([1], 40000);
  t.socket.deliver([2], 40001);
  t.socket.deliver([3], 40000);
  await turn();
  // A raw frame is a 4-byte length header (payload + 4) and the payload.
  assert.deepEqual(t.frames, [
    { id: 1, bytes: [5, 0, 0, 0, 1] },
    { id: 2, bytes: [5, 0, 0, 0, 2] },
    { id: 1, bytes: [5, 0, 0, 0, 3] },
  ]);
  assert.deepEqual(t.peers.map((peer) => peer.remote), ["127.0.0.1:40000", "127.0.0.1:40001"]);
  assert.equal(t.drops.datagramsIn, 3);
  for (const peer of t.peers) peer.close(CloseReason.Shutdown, "");
  t.endpoint.close();
  await t.loop;
  assert.equal(t.socket.closed, true);
});

Deno.test("UdpEndpoint drops datagrams over IN and over a peer's pending bound", async () => {
  const t = setup(2);
  t.socket.deliver([1, 2, 3, 4, 5, 6, 7, 8, 9]); // 9 bytes, IN is 8
  t.socket.deliver([1]);
  t.socket.deliver([2]);
  t.socket.deliver([3]); // the peer's 2 frames are still pending
  await turn();
  assert.deepEqual(Object.fromEntries(t.drops.byReason), { too_large: 1, pending: 1 });
  assert.equal(t.frames.length, 2);
  t.peers[0]!.frameDone();
  t.socket.deliver([4]);
  await turn();
  assert.equal(t.frames.length, 3);
  t.peers[0]!.close(CloseReason.Shutdown, "");
  t.endpoint.close();
  await t.loop;
});

Deno.test("UdpPeer expires after expireMs of silence, each datagram restarting the wait", async () => {
  const t = setup();
  t.socket.deliver([1]);
  await turn();
  const peer = t.peers[0]!;
  peer.expireMs = 1000;
  t.clock.advance(900);
  t.socket.deliver([2]);
  await turn();
  t.clock.advance(900); // 1800 since the start, 900 since the last datagram
  assert.deepEqual(t.closed, []);
  t.clock.advance(100);
  assert.deepEqual(t.closed, [{ id: 1, reason: CloseReason.Expired }]);
  assert.equal(t.endpoint.peers, 0);
  t.socket.deliver([3]); // the same address again: a new peer
  await turn();
  assert.equal(t.peers.length, 2);
  t.peers[1]!.close(CloseReason.Shutdown, "");
  t.endpoint.close();
  await t.loop;
});

Deno.test("UdpPeer sends each committed frame as a datagram without its header, bounded", async () => {
  const t = setup();
  t.socket.deliver([1]);
  await turn();
  const peer = t.peers[0]!;
  peer.queue(new Uint8Array([7, 0, 0, 0, 9, 8, 7]));
  peer.queue(new Uint8Array([7, 0, 0, 0, 6, 5, 4])); // 6 bytes queued: the limit
  peer.queue(new Uint8Array([5, 0, 0, 0, 3])); // over maxQueuedOut: dropped
  assert.equal(peer.queuedOutBytes, 6);
  peer.flush();
  await turn();
  assert.deepEqual(t.socket.sent, [
    { bytes: [9, 8, 7], to: "127.0.0.1:40000" },
    { bytes: [6, 5, 4], to: "127.0.0.1:40000" },
  ]);
  assert.equal(t.drops.byReason.get("out_queue_full"), 1);
  assert.equal(peer.bytesOut, 6);
  peer.closeAfterFlush();
  assert.deepEqual(t.closed, [{ id: 1, reason: CloseReason.Script }]);
  t.endpoint.close();
  await t.loop;
});
