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

Deno.test("FrameSplitter hands out one push's frames as views into one copy of the chunk", () => {
  const chunk = new Uint8Array(3 * 6);
  for (let i = 0; i < 3; i++) chunk.set(frameBytes(new Uint8Array([i, i])), i * 6);
  const frames = new FrameSplitter(64).push(chunk);
  chunk.fill(0xff);
  assert.deepEqual(frames.map((frame) => [...frame]), [
    [6, 0, 0, 0, 0, 0],
    [6, 0, 0, 0, 1, 1],
    [6, 0, 0, 0, 2, 2],
  ]);
  assert.notEqual(frames[0]!.buffer, chunk.buffer);
  assert.equal(frames[1]!.buffer, frames[0]!.buffer, "one allocation per push, not per frame");
});

Deno.test("frameBytes pools small frames side by side without overlap; large ones stand alone", () => {
  const small = Array.from({ length: 100 }, (_, i) => frameBytes(new Uint8Array(60).fill(i)));
  small.forEach((frame, i) => {
    assert.equal(frame.length, 64);
    assert.equal(new DataView(frame.buffer, frame.byteOffset).getInt32(0, true), 64);
    assert.ok(frame.subarray(4).every((byte) => byte === i), `frame ${i} kept its bytes`);
  });
  assert.equal(small[1]!.buffer, small[0]!.buffer, "small frames share a pooled buffer");
  const large = frameBytes(new Uint8Array(4096).fill(7));
  assert.equal(large.byteOffset, 0);
  assert.equal(large.buffer.byteLength, 4100);
  assert.equal(new DataView(large.buffer).getInt32(0, true), 4100);
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
