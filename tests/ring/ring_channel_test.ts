import assert from "node:assert/strict";
import fc from "fast-check";
import { RingBuffer, RingReceiver, RingSender } from "../../core/ring/mod.ts";
import { fill, fnv1a, keepAlive, nextMessage, payload, startWorker } from "./_helpers.ts";
import type { EchoReport, EchoRequest } from "./_echo_worker.ts";

const SMALL = 4096;

interface Received {
  tag: number;
  a: number;
  b: number;
  body: Uint8Array;
}

/** Drains `receiver` on timer turns until `count` records arrived or `timeoutMs` passed. */
async function receiveAll(
  receiver: RingReceiver,
  count: number,
  timeoutMs = 5000,
): Promise<Received[]> {
  const records: Received[] = [];
  const deadline = performance.now() + timeoutMs;
  while (records.length < count && performance.now() < deadline) {
    receiver.drain((tag, a, b, body) => records.push({ tag, a, b, body }));
    // A timer turn lets the sender's flush loop run after its waitWritable resolves.
    await new Promise((resolve) => setTimeout(resolve, 0));
  }
  return records;
}

Deno.test("RingSender writes straight to the ring while there is room", () => {
  const ring = RingBuffer.create(SMALL);
  using sender = new RingSender(ring);
  sender.send(3, 4, 5, new Uint8Array([1, 2]), new Uint8Array([3]));
  assert.equal(sender.queuedRecords, 0);
  assert.equal(sender.queuedBytes, 0);
  assert.deepEqual(ring.read(), { tag: 3, a: 4, b: 5, body: new Uint8Array([1, 2, 3]) });
});

Deno.test("RingSender rejects tags with the fragment bit and fields that are not uint32", () => {
  using sender = new RingSender(RingBuffer.create(SMALL));
  assert.throws(() => sender.send(0x80000000, 0, 0), {
    name: "RangeError",
    message: "Record tag 2147483648 is outside 0..0x7FFFFFFF (the top bit marks fragments)",
  });
  assert.throws(() => sender.send(-1, 0, 0), { name: "RangeError" });
  assert.throws(() => sender.send(1, -1, 0), {
    name: "RangeError",
    message: "Record a -1 is not a uint32 (0..4294967295)",
  });
  assert.throws(() => sender.send(1, 0, 2 ** 32), { name: "RangeError" });
  sender.send(0x7FFFFFFF, 0xFFFFFFFF, 0);
});

Deno.test("RingSender overflow queue preserves order", async () => {
  const ring = RingBuffer.create(SMALL);
  using sender = new RingSender(ring);
  const receiver = new RingReceiver(ring);
  const count = 2000;
  let queuedBytes = 0;
  for (let i = 0; i < count; i++) {
    const size = (i * 37) % 300;
    sender.send(1, i, size, fill(new Uint8Array(size), i));
    if (sender.queuedRecords > 0) queuedBytes += size;
  }
  assert.ok(sender.queuedRecords > 1000, `only ${sender.queuedRecords} records queued`);
  assert.equal(sender.queuedBytes, queuedBytes);
  let flushed = false;
  const done = sender.flushed().then(() => flushed = true);
  const records = await receiveAll(receiver, count);
  await done;
  assert.equal(flushed, true);
  assert.equal(sender.queuedRecords, 0);
  assert.equal(sender.queuedBytes, 0);
  assert.equal(records.length, count);
  records.forEach((record, i) => {
    assert.equal(record.a, i);
    assert.deepEqual(record.body, fill(new Uint8Array(record.b), i));
  });
});

Deno.test("RingSender fragments a body 10x maxBodyLength and RingReceiver reassembles it byte-exact", async () => {
  const ring = RingBuffer.create(SMALL);
  using sender = new RingSender(ring);
  const receiver = new RingReceiver(ring);
  const body = new Uint8Array(10 * ring.maxBodyLength + 5);
  crypto.getRandomValues(body);
  sender.send(7, 8, 9, new Uint8Array([1, 2]));
  sender.send(0x7FFFFFFF, 10, 11, body.subarray(0, 3001), body.subarray(3001));
  sender.send(12, 13, 14);
  const records = await receiveAll(receiver, 3);
  assert.deepEqual(records, [
    { tag: 7, a: 8, b: 9, body: new Uint8Array([1, 2]) },
    { tag: 0x7FFFFFFF, a: 10, b: 11, body },
    { tag: 12, a: 13, b: 14, body: new Uint8Array(0) },
  ]);
});

Deno.test("RingReceiver keeps a partially received fragmented record across drain calls", async () => {
  const ring = RingBuffer.create(SMALL);
  using sender = new RingSender(ring);
  const receiver = new RingReceiver(ring);
  const body = fill(new Uint8Array(5 * ring.maxBodyLength), 3);
  sender.send(1, 2, 3, body);
  // Four fragments fill the ring; the fifth waits in the overflow queue.
  assert.equal(sender.queuedRecords, 1);
  const seen: Uint8Array[] = [];
  assert.equal(receiver.drain((_tag, _a, _b, part) => seen.push(part)), 0);
  assert.equal(seen.length, 0);
  await keepAlive(sender.flushed());
  assert.equal(receiver.drain((_tag, _a, _b, whole) => seen.push(whole)), 1);
  assert.deepEqual(seen, [body]);
});

Deno.test("RingReceiver.drain counts logical records against max", () => {
  const ring = RingBuffer.create(1 << 16);
  using sender = new RingSender(ring);
  const receiver = new RingReceiver(ring);
  sender.send(1, 0, 0, new Uint8Array(3 * ring.maxBodyLength));
  sender.send(2, 0, 0, new Uint8Array(8));
  sender.send(3, 0, 0);
  const tags: number[] = [];
  assert.equal(receiver.drain((tag) => tags.push(tag), 2), 2);
  assert.deepEqual(tags, [1, 2]);
  assert.equal(receiver.drain((tag) => tags.push(tag)), 1);
  assert.deepEqual(tags, [1, 2, 3]);
});

Deno.test("RingReceiver rejects a fragmented record interrupted by another record", () => {
  const ring = RingBuffer.create(SMALL);
  ring.tryWrite(0x80000001, 0, 0, new Uint8Array(4));
  ring.tryWrite(2, 0, 0, new Uint8Array(4));
  assert.throws(() => new RingReceiver(ring).drain(() => {}), {
    message: "Fragmented record (tag 1, a 0, b 0) was interrupted by a record with tag 2, a 0, b 0",
  });
});

Deno.test("RingSender and RingReceiver round-trip arbitrary bodies in order (property)", async () => {
  const max = RingBuffer.create(SMALL).maxBodyLength;
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.tuple(fc.nat(3 * max), fc.nat(2 * max)), { maxLength: 30 }),
      async (sizes) => {
        const ring = RingBuffer.create(SMALL);
        using sender = new RingSender(ring);
        const receiver = new RingReceiver(ring);
        sizes.forEach(([size1, size2], i) => {
          const body = fill(new Uint8Array(size1 + size2), i);
          sender.send(i, size1, size2, body.subarray(0, size1), body.subarray(size1));
        });
        const records = await receiveAll(receiver, sizes.length);
        assert.equal(records.length, sizes.length);
        records.forEach((record, i) => {
          assert.equal(record.tag, i);
          assert.deepEqual(record.body, fill(new Uint8Array(record.a + record.b), i));
        });
        assert.equal(ring.usedBytes, 0);
      },
    ),
    { numRuns: 40 },
  );
});

Deno.test("RingSender.close discards the queue, settles flushed() and stops the flush loop", async () => {
  const ring = RingBuffer.create(SMALL);
  const sender = new RingSender(ring);
  for (let i = 0; i < 100; i++) sender.send(1, i, 0, new Uint8Array(200));
  assert.ok(sender.queuedRecords > 0);
  const flushed = sender.flushed();
  sender.close();
  await flushed;
  assert.equal(sender.queuedRecords, 0);
  assert.equal(sender.queuedBytes, 0);
  assert.throws(() => sender.send(1, 0, 0), { message: "Cannot send on a closed RingSender" });
  const before = ring.usedBytes;
  ring.drain(() => {});
  await new Promise((resolve) => setTimeout(resolve, 10));
  assert.equal(ring.usedBytes, 0, "a closed sender kept writing");
  assert.ok(before > 0);
  sender.close();
});

Deno.test("RingSender and RingReceiver exchange 1,000,000 checksummed messages with a worker", async () => {
  const count = 1_000_000;
  const toWorker = RingBuffer.create();
  const toMain = RingBuffer.create();
  const worker = startWorker();
  using sender = new RingSender(toWorker);
  const receiver = new RingReceiver(toMain);
  try {
    const report = nextMessage<EchoReport>(worker);
    const request: EchoRequest = {
      mode: "echo",
      toWorker: toWorker.buffer,
      toMain: toMain.buffer,
      count,
    };
    worker.postMessage(request);
    let sent = 0;
    let received = 0;
    let sentBytes = 0;
    let receivedBytes = 0;
    const onEcho = (tag: number, a: number, b: number, body: Uint8Array) => {
      assert.equal(tag, 1);
      assert.equal(a, received);
      assert.equal(b, fnv1a(payload(received)), `checksum of message ${received}`);
      assert.equal(fnv1a(body), b, `echoed body of message ${received}`);
      receivedBytes += body.byteLength;
      received++;
    };
    let idle = 0;
    while (received < count) {
      // Bound what is in flight so neither ring's overflow queue grows without limit.
      while (sent < count && sent - received < 16_384 && sender.queuedRecords === 0) {
        const body = payload(sent);
        sender.send(1, sent, fnv1a(body), body);
        sentBytes += body.byteLength;
        sent++;
      }
      if (receiver.drain(onEcho) > 0) idle = 0;
      else if (!(await receiver.wait(1000)) && ++idle >= 10) {
        assert.fail(`stalled after ${sent} sent and ${received} received`);
      }
    }
    assert.deepEqual(await report, { received: count, errors: 0, bytes: sentBytes });
    assert.equal(receivedBytes, sentBytes);
  } finally {
    worker.terminate();
  }
});
