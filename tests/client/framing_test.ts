/** The client's standalone framing, codecs and backoff. */
import assert from "node:assert/strict";
import {
  backoffDelay,
  bsonCodec,
  frameBytes,
  FrameError,
  FrameSplitter,
  jsonCodec,
  rawCodec,
  resolveCodec,
} from "../../core/client/mod.ts";

Deno.test("FrameSplitter reassembles frames fed one byte at a time and many per chunk", () => {
  const frames = [
    jsonCodec.encode({ a: 1 }),
    bsonCodec.encode({ b: "two" }),
    frameBytes(new Uint8Array(0)),
  ];
  const stream = new Uint8Array(frames.reduce((n, f) => n + f.length, 0));
  let offset = 0;
  for (const frame of frames) {
    stream.set(frame, offset);
    offset += frame.length;
  }
  const byteByByte = new FrameSplitter(1024);
  const out: Uint8Array[] = [];
  for (let i = 0; i < stream.length; i++) out.push(...byteByByte.push(stream.subarray(i, i + 1)));
  assert.deepEqual(out, frames);
  assert.equal(byteByByte.buffered, 0);
  assert.deepEqual(new FrameSplitter(1024).push(stream), frames);
});

Deno.test("FrameSplitter copies frames out of the caller's reused buffer", () => {
  const splitter = new FrameSplitter(64);
  const buffer = frameBytes(new Uint8Array([1, 2, 3]));
  assert.deepEqual(splitter.push(buffer.subarray(0, 5)), []);
  const rest = buffer.slice(5);
  buffer.fill(0);
  const [frame] = splitter.push(rest);
  assert.deepEqual([...frame!], [7, 0, 0, 0, 1, 2, 3]);
});

Deno.test("FrameSplitter rejects headers above maxFrame or below the header size", () => {
  const big = new Uint8Array(4);
  new DataView(big.buffer).setInt32(0, 1025, true);
  assert.throws(() => new FrameSplitter(1024).push(big), (error: unknown) => {
    assert.ok(error instanceof FrameError);
    assert.equal(error.code, "too_large");
    assert.match(error.message, /total length 1025, above maxFrame 1024/);
    return true;
  });
  assert.throws(() => new FrameSplitter(1024).push(new Uint8Array([2, 0, 0, 0])), {
    name: "FrameError",
    code: "too_small",
  });
  assert.throws(() => new FrameSplitter(3), RangeError);
});

Deno.test("codecs round-trip their values and refuse what they cannot encode", () => {
  assert.deepEqual(bsonCodec.decode(bsonCodec.encode({ x: [1, 2], y: "z" })), {
    x: [1, 2],
    y: "z",
  });
  assert.deepEqual(jsonCodec.decode(jsonCodec.encode("text")), "text");
  assert.deepEqual([...(rawCodec.decode(rawCodec.encode(new Uint8Array([5, 6]))) as Uint8Array)], [
    5,
    6,
  ]);
  assert.throws(() => bsonCodec.encode([1]), /expected a plain object/);
  assert.throws(() => jsonCodec.encode(undefined), TypeError);
  assert.throws(() => rawCodec.encode("no"), TypeError);
  assert.throws(() => resolveCodec("xml" as "raw"), /Unknown codec "xml"/);
});

Deno.test("backoffDelay doubles per attempt up to maxMs, jittered within the upper half", () => {
  const options = { initialMs: 10, maxMs: 100 };
  assert.deepEqual([0, 1, 2, 3, 4, 60].map((a) => backoffDelay(a, options, () => 0)), [
    5,
    10,
    20,
    40,
    50,
    50,
  ]);
  assert.equal(backoffDelay(2, options, () => 0.999), 40 / 2 + 0.999 * 20);
});
