import assert from "node:assert/strict";
import fc from "fast-check";
import { RING_LAYOUT, RingBuffer, type RingRecord } from "../../core/ring/ring_buffer.ts";
import { fill, keepAlive, nextMessage, startWorker } from "./_helpers.ts";
import type { WriteRequest } from "./_echo_worker.ts";

const SMALL = 4096;

/** A ring whose head and tail both start at `position` (a multiple of 8). */
function ringAt(position: number, pooledBodies = false, capacity = SMALL): RingBuffer {
  const buffer = new SharedArrayBuffer(RING_LAYOUT.headerBytes + capacity);
  const control = new Int32Array(buffer, 0, RING_LAYOUT.headerBytes / 4);
  control[RING_LAYOUT.headSlot] = position;
  control[RING_LAYOUT.tailSlot] = position;
  return new RingBuffer(buffer, { pooledBodies });
}

function recordBytes(bodyLength: number): number {
  return 16 + Math.ceil(bodyLength / 8) * 8;
}

function readAll(ring: RingBuffer): RingRecord[] {
  const records: RingRecord[] = [];
  ring.drain((tag, a, b, body) => records.push({ tag, a, b, body }));
  return records;
}

/** Small deterministic PRNG so failures reproduce. */
function prng(seed: number): (bound: number) => number {
  let state = seed | 1;
  return (bound) => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) % bound;
  };
}

Deno.test("RingBuffer.create rejects capacities that are not a power of two in range", () => {
  for (const capacity of [0, 2048, 5000, 4096.5, 2 ** 31, Number.NaN]) {
    assert.throws(() => RingBuffer.create(capacity), {
      name: "RangeError",
      message: `Ring capacity ${capacity} is not a power of two between 4096 and 1073741824`,
    });
  }
});

Deno.test("RingBuffer constructor rejects buffers that are not rings", () => {
  assert.throws(
    () => new RingBuffer(new ArrayBuffer(4352) as unknown as SharedArrayBuffer),
    {
      name: "TypeError",
      message: "RingBuffer needs a SharedArrayBuffer, got [object ArrayBuffer]",
    },
  );
  assert.throws(() => new RingBuffer(new SharedArrayBuffer(5000)), {
    name: "RangeError",
    message: /^SharedArrayBuffer of 5000 bytes is not a ring/,
  });
});

Deno.test("RingBuffer.create sizes the data area and the largest body", () => {
  const ring = RingBuffer.create();
  assert.equal(ring.capacity, 1 << 20);
  assert.equal(ring.buffer.byteLength, RING_LAYOUT.headerBytes + (1 << 20));
  assert.equal(ring.maxBodyLength, (1 << 18) - 16);
  const small = RingBuffer.create(SMALL);
  assert.equal(small.maxBodyLength, 1008);
  assert.equal(small.maxBodyLength % 8, 0);
  assert.equal(small.usedBytes, 0);
});

Deno.test("RingBuffer.tryWrite rejects bodies over maxBodyLength and fields that are not uint32", () => {
  const ring = RingBuffer.create(SMALL);
  assert.throws(() => ring.tryWrite(1, 0, 0, new Uint8Array(1009)), {
    name: "RangeError",
    message: "Record body of 1009 bytes exceeds the ring's maximum of 1008",
  });
  assert.throws(() => ring.tryWrite(1, 0, 0, new Uint8Array(1000), new Uint8Array(9)), {
    name: "RangeError",
    message: "Record body of 1009 bytes exceeds the ring's maximum of 1008",
  });
  assert.throws(() => ring.tryWrite(-1, 0, 0), {
    name: "RangeError",
    message: "Record tag -1 is not a uint32 (0..4294967295)",
  });
  assert.throws(() => ring.tryWrite(0, 2 ** 32, 0), { message: /^Record a 4294967296 / });
  assert.throws(() => ring.tryWrite(0, 0, 0.5), { message: /^Record b 0.5 / });
  assert.equal(ring.usedBytes, 0);
  assert.equal(ring.tryWrite(1, 0, 0, new Uint8Array(1008)), true);
});

Deno.test("RingBuffer round-trips tag, a, b and body, including zero and uint32 maxima", () => {
  const ring = RingBuffer.create(SMALL);
  const max = 0xFFFFFFFF;
  assert.equal(ring.tryWrite(0, 0, 0), true);
  assert.equal(ring.tryWrite(max, max, max, new Uint8Array([1, 2, 3])), true);
  assert.equal(ring.tryWrite(5, 6, 7, new Uint8Array([1, 2]), new Uint8Array([3, 4, 5])), true);
  assert.equal(ring.usedBytes, 16 + 24 + 24);
  assert.deepEqual(ring.read(), { tag: 0, a: 0, b: 0, body: new Uint8Array(0) });
  assert.deepEqual(ring.read(), { tag: max, a: max, b: max, body: new Uint8Array([1, 2, 3]) });
  assert.deepEqual(ring.read(), { tag: 5, a: 6, b: 7, body: new Uint8Array([1, 2, 3, 4, 5]) });
  assert.equal(ring.read(), undefined);
  assert.equal(ring.usedBytes, 0);
});

Deno.test("RingBuffer.read returns a body copy on a plain ArrayBuffer", () => {
  const ring = RingBuffer.create(SMALL);
  ring.tryWrite(1, 0, 0, new TextEncoder().encode("héllo"));
  const record = ring.read();
  assert.ok(record);
  assert.ok(record.body.buffer instanceof ArrayBuffer);
  assert.equal(new TextDecoder().decode(record.body), "héllo");
  // The slot is reused by the next record; the copy must not change.
  for (let i = 0; i < 100; i++) ring.tryWrite(2, 0, 0, new Uint8Array(6).fill(0xEE)) && ring.read();
  assert.equal(new TextDecoder().decode(record.body), "héllo");
});

Deno.test("RingBuffer with pooledBodies hands out plain views that later reads do not overwrite", () => {
  const ring = RingBuffer.create(SMALL, { pooledBodies: true });
  const kept: Uint8Array[] = [];
  for (let i = 0; i < 500; i++) {
    assert.equal(ring.tryWrite(1, i, 0, fill(new Uint8Array(i % 200), i)), true);
    const record = ring.read();
    assert.ok(record);
    assert.ok(record.body.buffer instanceof ArrayBuffer);
    assert.equal(record.body.byteOffset % 8, 0);
    kept.push(record.body);
  }
  kept.forEach((body, i) => assert.deepEqual(body, fill(new Uint8Array(i % 200), i)));
  assert.ok(kept.some((body) => body.byteOffset > 0), "bodies were not pooled");
  // Bodies over 1 KiB get a buffer of their own.
  const larger = RingBuffer.create(4 * SMALL, { pooledBodies: true });
  larger.tryWrite(1, 0, 0, new Uint8Array(1025));
  assert.equal(larger.read()?.body.buffer.byteLength, 1025);
});

Deno.test("RingBuffer with pooledBodies recovers when a body's buffer is transferred", () => {
  const ring = RingBuffer.create(SMALL, { pooledBodies: true });
  ring.tryWrite(1, 0, 0, fill(new Uint8Array(16), 1));
  const first = ring.read();
  assert.ok(first);
  structuredClone(first.body.buffer, { transfer: [first.body.buffer] });
  assert.equal(first.body.byteLength, 0);
  ring.tryWrite(1, 0, 0, fill(new Uint8Array(16), 2));
  ring.tryWrite(1, 0, 0);
  assert.deepEqual(ring.read()?.body, fill(new Uint8Array(16), 2));
  assert.deepEqual(ring.read()?.body, new Uint8Array(0));
});

Deno.test("RingBuffer preserves order and content across wrap-around", () => {
  const ring = RingBuffer.create(SMALL);
  const random = prng(12345);
  let written = 0;
  let read = 0;
  let wraps = 0;
  let lastOffset = 0;
  while (read < 20_000) {
    const burst = random(8);
    for (let i = 0; i < burst; i++) {
      const size = random(ring.maxBodyLength + 1);
      if (!ring.tryWrite(written & 0xFF, written, size, fill(new Uint8Array(size), written))) break;
      written++;
    }
    ring.drain((tag, a, b, body) => {
      assert.equal(a, read);
      assert.equal(tag, read & 0xFF);
      assert.equal(body.byteLength, b);
      assert.deepEqual(body, fill(new Uint8Array(b), read));
      read++;
    }, 1 + random(8));
    const offset = new Int32Array(ring.buffer)[RING_LAYOUT.headSlot]! & (SMALL - 1);
    if (offset < lastOffset) wraps++;
    lastOffset = offset;
  }
  assert.ok(wraps > 100, `only ${wraps} wrap-arounds`);
  assert.equal(readAll(ring).length, written - read);
});

Deno.test("RingBuffer preserves order and content under random interleavings (property)", () => {
  const max = 1008;
  const op = fc.oneof(
    {
      weight: 3,
      arbitrary: fc.record({
        kind: fc.constant("write" as const),
        size: fc.oneof(fc.nat(max), fc.integer({ min: max - 64, max })),
        split: fc.nat(max),
      }),
    },
    {
      weight: 2,
      arbitrary: fc.record({
        kind: fc.constant("read" as const),
        count: fc.integer({ min: 1, max: 6 }),
      }),
    },
  );
  const start = fc.oneof(
    fc.constant(0),
    fc.integer({ min: 2 ** 32 - 3 * SMALL, max: 2 ** 32 - 8 }),
    fc.nat(2 ** 32 - 1),
  ).map((position) => position - (position % 8));
  fc.assert(
    fc.property(fc.array(op, { minLength: 20, maxLength: 400 }), start, fc.boolean(), (
      ops,
      position,
      pooled,
    ) => {
      const ring = ringAt(position, pooled);
      const expected: { seq: number; size: number }[] = [];
      let seq = 0;
      const check = (tag: number, a: number, b: number, body: Uint8Array) => {
        const next = expected.shift();
        assert.ok(next, "read a record that was never written");
        assert.equal(tag, next.seq);
        assert.equal(a, next.size);
        assert.equal(b, 0xFFFFFFFF - next.seq);
        assert.ok(body.buffer instanceof ArrayBuffer);
        assert.deepEqual(body, fill(new Uint8Array(next.size), next.seq));
      };
      for (const step of ops) {
        if (step.kind === "read") {
          const available = expected.length;
          assert.equal(ring.drain(check, step.count), Math.min(step.count, available));
          continue;
        }
        const body = fill(new Uint8Array(step.size), seq);
        const cut = Math.min(step.split, step.size);
        const free = SMALL - ring.usedBytes;
        const size = recordBytes(step.size);
        const ok = ring.tryWrite(
          seq,
          step.size,
          0xFFFFFFFF - seq,
          body.subarray(0, cut),
          body.subarray(cut),
        );
        // A record always fits in `size` plus a skipped tail shorter than itself.
        if (ok) assert.ok(free >= size, `wrote ${size} bytes into ${free} free`);
        else assert.ok(free < 2 * size, `refused ${size} bytes with ${free} free`);
        if (ok) expected.push({ seq: seq++, size: step.size });
        assert.ok(ring.usedBytes <= SMALL);
      }
      ring.drain(check);
      assert.equal(expected.length, 0);
      assert.equal(ring.usedBytes, 0);
    }),
    { numRuns: 300 },
  );
});

Deno.test("RingBuffer keeps working when its position counters wrap past 2^32", () => {
  const ring = ringAt(2 ** 32 - 2 * SMALL);
  let written = 0;
  let read = 0;
  for (let round = 0; round < 200; round++) {
    while (ring.tryWrite(1, written, 0, fill(new Uint8Array(100 + (written % 300)), written))) {
      written++;
    }
    ring.drain((_tag, a, _b, body) => {
      assert.equal(a, read);
      assert.deepEqual(body, fill(new Uint8Array(100 + (read % 300)), read));
      read++;
    });
  }
  assert.equal(read, written);
  const head = new Int32Array(ring.buffer)[RING_LAYOUT.headSlot]! >>> 0;
  assert.ok(head < 2 ** 31, `head ${head} did not wrap`);
});

Deno.test("RingBuffer.tryWrite returns false when full and succeeds after the reader drains", () => {
  const ring = RingBuffer.create(SMALL);
  const body = new Uint8Array(ring.maxBodyLength);
  let count = 0;
  while (ring.tryWrite(1, count, 0, body)) count++;
  assert.equal(count, 4);
  assert.equal(ring.usedBytes, SMALL);
  assert.equal(ring.tryWrite(1, 99, 0), false);
  assert.equal(ring.usedBytes, SMALL, "a refused write changed the ring");
  assert.equal(ring.drain(() => {}, 1), 1);
  assert.equal(ring.tryWrite(1, 4, 0, body), true);
  assert.equal(ring.tryWrite(1, 5, 0), false);
  assert.deepEqual(readAll(ring).map((record) => record.a), [1, 2, 3, 4]);
});

Deno.test("RingBuffer.drain reads at most max records and releases each before its handler", () => {
  const ring = RingBuffer.create(SMALL);
  for (let i = 0; i < 5; i++) ring.tryWrite(1, i, 0, new Uint8Array(8));
  assert.equal(ring.drain(() => {}, 2), 2);
  assert.throws(() =>
    ring.drain((_tag, a) => {
      if (a === 3) throw new Error("handler failed");
    }), { message: "handler failed" });
  assert.deepEqual(readAll(ring).map((record) => record.a), [4]);
  assert.equal(ring.drain(() => {}), 0);
});

Deno.test("RingBuffer.waitWritable resolves after a drain", async () => {
  const ring = RingBuffer.create(SMALL);
  const body = new Uint8Array(ring.maxBodyLength);
  while (ring.tryWrite(1, 0, 0, body));
  let resolved = false;
  const writable = ring.waitWritable(ring.maxBodyLength, 5000).then((ok) => {
    resolved = true;
    return ok;
  });
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.equal(resolved, false, "waitWritable resolved while the ring was full");
  ring.drain(() => {}, 1);
  assert.equal(await keepAlive(writable), true);
  assert.equal(ring.tryWrite(1, 0, 0, body), true);
});

Deno.test("RingBuffer.waitWritable resolves true at once when the record fits", async () => {
  const ring = RingBuffer.create(SMALL);
  assert.equal(await ring.waitWritable(ring.maxBodyLength, 0), true);
  assert.throws(() => ring.waitWritable(ring.maxBodyLength + 1), { name: "RangeError" });
  assert.throws(() => ring.waitWritable(-1), {
    message: "Record body length -1 is not a non-negative integer",
  });
});

Deno.test("RingBuffer.waitWritable returns false on timeout and on abort", async () => {
  const ring = RingBuffer.create(SMALL);
  while (ring.tryWrite(1, 0, 0, new Uint8Array(ring.maxBodyLength)));
  const started = performance.now();
  assert.equal(await keepAlive(ring.waitWritable(8, 50)), false);
  assert.ok(performance.now() - started >= 45);
  const controller = new AbortController();
  const waiting = ring.waitWritable(8, undefined, controller.signal);
  setTimeout(() => controller.abort(), 10);
  assert.equal(await keepAlive(waiting), false);
});

Deno.test("RingBuffer.waitReadable returns false on timeout and true at once when readable", async () => {
  const ring = RingBuffer.create(SMALL);
  const started = performance.now();
  assert.equal(await keepAlive(ring.waitReadable(50)), false);
  assert.ok(performance.now() - started >= 45);
  ring.tryWrite(1, 0, 0);
  assert.equal(await ring.waitReadable(0), true);
});

Deno.test("RingBuffer.waitReadable returns false when aborted", async () => {
  const ring = RingBuffer.create(SMALL);
  const controller = new AbortController();
  const waiting = ring.waitReadable(undefined, controller.signal);
  setTimeout(() => controller.abort(), 10);
  assert.equal(await keepAlive(waiting), false);
  assert.equal(await ring.waitReadable(1000, controller.signal), false);
});

Deno.test("RingBuffer.waitReadable resolves on a write from another thread", async () => {
  const ring = RingBuffer.create(SMALL);
  const worker = startWorker();
  try {
    const written = nextMessage<string>(worker);
    const request: WriteRequest = {
      mode: "write",
      ring: ring.buffer,
      delayMs: 50,
      tag: 5,
      a: 6,
      b: 7,
      body: new Uint8Array([1, 2, 3]),
    };
    worker.postMessage(request);
    assert.equal(ring.usedBytes, 0);
    const started = performance.now();
    assert.equal(await ring.waitReadable(10_000), true);
    assert.ok(performance.now() - started < 5000);
    assert.deepEqual(ring.read(), { tag: 5, a: 6, b: 7, body: new Uint8Array([1, 2, 3]) });
    assert.equal(await written, "written");
  } finally {
    worker.terminate();
  }
});

Deno.test("RingBuffer with a doorbell wakes a sleeping reader and writer through the port", async () => {
  const bell = new MessageChannel();
  const writer = new RingBuffer(RingBuffer.create(4096).buffer, { doorbell: bell.port1 });
  const reader = new RingBuffer(writer.buffer, { doorbell: bell.port2, pooledBodies: true });
  try {
    const readable = reader.waitReadable(2000);
    await new Promise((resolve) => setTimeout(resolve, 10)); // the reader is asleep now
    assert.ok(writer.tryWrite(7, 1, 2, new Uint8Array([1, 2, 3])));
    assert.equal(await readable, true);
    assert.deepEqual(reader.read()?.body, new Uint8Array([1, 2, 3]));
    // Fill the ring, then wait for space on the writer side.
    let written = 0;
    while (writer.tryWrite(1, 0, 0, new Uint8Array(512))) written++;
    const writable = writer.waitWritable(512, 2000);
    await new Promise((resolve) => setTimeout(resolve, 10));
    assert.equal(reader.drain(() => {}), written);
    assert.equal(await writable, true);
    // close() ends a pending wait with false.
    const pending = reader.waitReadable();
    reader.close();
    assert.equal(await pending, false);
  } finally {
    reader.close();
    writer.close();
  }
});
