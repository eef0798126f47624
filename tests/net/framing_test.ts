import assert from "node:assert/strict";
import fc from "fast-check";
import { BSON } from "bson";
import { encodeFrame, FrameDecoder, FrameError, writeFrameHeader } from "../../core/net/mod.ts";

const bytes = (...values: number[]) => new Uint8Array(values);
const header = (length: number) => {
  const target = new Uint8Array(4);
  new DataView(target.buffer).setInt32(0, length, true);
  return target;
};
const concat = (parts: Uint8Array[]) => {
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
};

/** Pushes every chunk and returns copies of the decoded payloads. */
function decodeAll(decoder: FrameDecoder, chunks: Uint8Array[]): Uint8Array[] {
  const frames: Uint8Array[] = [];
  for (const chunk of chunks) decoder.push(chunk, (payload) => frames.push(payload.slice()));
  return frames;
}

/** Splits `data` at the given cut points (any order, duplicates allowed). */
function split(data: Uint8Array, cuts: number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((cut) => cut % (data.length + 1)))].sort((a, b) => a - b);
  const chunks: Uint8Array[] = [];
  let start = 0;
  for (const point of points) {
    chunks.push(data.subarray(start, point));
    start = point;
  }
  chunks.push(data.subarray(start));
  return chunks;
}

Deno.test("encodeFrame prepends the total length, little-endian", () => {
  assert.deepEqual(encodeFrame(bytes(1, 2, 3)), bytes(7, 0, 0, 0, 1, 2, 3));
  assert.deepEqual(encodeFrame(new Uint8Array(0)), bytes(4, 0, 0, 0));
  assert.deepEqual(encodeFrame(new Uint8Array(0x1_0000 - 4)).subarray(0, 4), bytes(0, 0, 1, 0));
});

Deno.test("writeFrameHeader writes at an offset and rejects bad lengths and offsets", () => {
  const target = new Uint8Array(8);
  writeFrameHeader(target, 3, 0x01020304);
  assert.deepEqual(target, bytes(0, 0, 0, 4, 3, 2, 1, 0));
  writeFrameHeader(target, 4, 0x7fffffff);
  assert.deepEqual(target.subarray(4), bytes(0xff, 0xff, 0xff, 0x7f));
  assert.throws(() => writeFrameHeader(target, 0, 3), /total length 3 is not an integer in 4\.\./);
  assert.throws(() => writeFrameHeader(target, 0, 2 ** 31), RangeError);
  assert.throws(() => writeFrameHeader(target, 0, 4.5), RangeError);
  assert.throws(() => writeFrameHeader(target, 5, 8), /offset 5 leaves no room/);
  assert.throws(() => writeFrameHeader(target, -1, 8), RangeError);
});

Deno.test("FrameDecoder rejects a maxFrame outside 4..2147483647", () => {
  for (const bad of [3, 0, -1, 4.5, 2 ** 31, Number.NaN]) {
    assert.throws(() => new FrameDecoder(bad), RangeError, `maxFrame ${bad}`);
  }
  assert.equal(new FrameDecoder(4).maxFrame, 4);
});

Deno.test("FrameDecoder delivers every pipelined frame in one push", () => {
  const decoder = new FrameDecoder(1024);
  const frames = decodeAll(decoder, [
    concat([encodeFrame(bytes(1)), encodeFrame(bytes()), encodeFrame(bytes(2, 3))]),
  ]);
  assert.deepEqual(frames, [bytes(1), bytes(), bytes(2, 3)]);
  assert.equal(decoder.bufferedBytes, 0);
  assert.equal(decoder.pendingHeader, false);
});

Deno.test("FrameDecoder delivers a whole frame as a view of the chunk, without copying", () => {
  const decoder = new FrameDecoder(1024);
  const chunk = encodeFrame(bytes(9, 8, 7));
  let seen: Uint8Array | undefined;
  decoder.push(chunk, (payload) => seen = payload);
  assert.equal(seen?.buffer, chunk.buffer);
  assert.equal(seen?.byteOffset, 4);
});

Deno.test("FrameDecoder reports buffered bytes and a pending frame byte by byte", () => {
  const decoder = new FrameDecoder(1024);
  const frame = encodeFrame(bytes(1, 2, 3));
  const frames: Uint8Array[] = [];
  for (let i = 0; i < frame.length; i++) {
    decoder.push(frame.subarray(i, i + 1), (payload) => frames.push(payload.slice()));
    const complete = i === frame.length - 1;
    assert.equal(decoder.bufferedBytes, complete ? 0 : i + 1);
    assert.equal(decoder.pendingHeader, !complete);
    assert.equal(decoder.pendingFrameLength, i >= 3 && !complete ? frame.length : 0);
  }
  assert.deepEqual(frames, [bytes(1, 2, 3)]);
});

Deno.test("FrameDecoder reports the declared length of a pending frame only once its header is whole", () => {
  const decoder = new FrameDecoder(1024);
  const stream = concat([encodeFrame(bytes(1, 2)), encodeFrame(new Uint8Array(20))]);
  decoder.push(stream.subarray(0, 8), () => {}); // one frame and 2 bytes of the next header
  assert.equal(decoder.pendingFrameLength, 0);
  assert.equal(decoder.bufferedBytes, 2);
  decoder.push(stream.subarray(8, 12), () => {});
  assert.equal(decoder.pendingFrameLength, 24);
  assert.equal(decoder.bufferedBytes, 6);
  decoder.push(stream.subarray(12), () => {});
  assert.equal(decoder.pendingFrameLength, 0);
  assert.equal(decoder.pendingHeader, false);
});

Deno.test("FrameDecoder finishes a split frame and the frames after it in the same push", () => {
  const decoder = new FrameDecoder(1024);
  const stream = concat([encodeFrame(bytes(1, 2)), encodeFrame(bytes(3)), encodeFrame(bytes(4))]);
  assert.deepEqual(decodeAll(decoder, [stream.subarray(0, 5)]), []);
  assert.deepEqual(decodeAll(decoder, [stream.subarray(5)]), [bytes(1, 2), bytes(3), bytes(4)]);
  assert.equal(decoder.pendingHeader, false);
});

Deno.test("FrameDecoder ignores empty chunks", () => {
  const decoder = new FrameDecoder(1024);
  assert.deepEqual(decodeAll(decoder, [bytes(), bytes(5, 0), bytes(), bytes(0, 0, 1), bytes()]), [
    bytes(1),
  ]);
});

Deno.test("FrameDecoder accepts a frame of exactly maxFrame and rejects maxFrame + 1", () => {
  const max = 64;
  const accepted = decodeAll(new FrameDecoder(max), [encodeFrame(new Uint8Array(max - 4))]);
  assert.equal(accepted.length, 1);
  assert.equal(accepted[0]!.length, max - 4);

  assert.throws(
    () => new FrameDecoder(max).push(header(max + 1), () => {}),
    (error: unknown) =>
      error instanceof FrameError && error.code === "frame_too_large" &&
      error.declaredLength === 65 && error.limit === 64 &&
      error.message === "Frame of 65 bytes exceeds the limit of 64",
  );
});

Deno.test("FrameDecoder rejects a frame too large as soon as its header is complete", () => {
  const decoder = new FrameDecoder(65536);
  decoder.push(header(70000).subarray(0, 3), () => {});
  assert.throws(
    () => decoder.push(header(70000).subarray(3), () => {}),
    {
      name: "FrameError",
      code: "frame_too_large",
      message: /Frame of 70000 bytes exceeds the limit of 65536/,
    },
  );
});

Deno.test("FrameDecoder accepts length 4 (empty payload) and rejects 3, 0 and negative lengths", () => {
  assert.deepEqual(decodeAll(new FrameDecoder(4), [header(4)]), [bytes()]);
  for (const length of [3, 0, -1, -0x80000000]) {
    assert.throws(
      () => new FrameDecoder(1024).push(header(length), () => {}),
      { name: "FrameError", code: "frame_too_small", declaredLength: length },
    );
  }
});

Deno.test("FrameDecoder is unusable after an error: later pushes rethrow it", () => {
  const decoder = new FrameDecoder(16);
  let first: unknown;
  try {
    decoder.push(concat([encodeFrame(bytes(1)), header(17)]), () => {});
  } catch (error) {
    first = error;
  }
  assert.ok(first instanceof FrameError);
  assert.throws(
    () => decoder.push(encodeFrame(bytes(2)), () => assert.fail("delivered")),
    (e) => e === first,
  );
});

Deno.test("FrameDecoder is unusable after onFrame throws", () => {
  const decoder = new FrameDecoder(16);
  const boom = new Error("boom");
  assert.throws(() =>
    decoder.push(encodeFrame(bytes(1)), () => {
      throw boom;
    }), (e) => e === boom);
  assert.throws(() => decoder.push(encodeFrame(bytes(2)), () => {}), (e) => e === boom);
});

Deno.test("FrameDecoder payload from a buffered frame stays intact while a later frame is buffered", () => {
  // The decoder reuses its partial-frame buffer; a payload is valid during its callback.
  const decoder = new FrameDecoder(1024);
  const stream = concat([encodeFrame(bytes(1, 2, 3)), encodeFrame(bytes(4, 5, 6))]);
  const seen: number[][] = [];
  for (const chunk of [stream.subarray(0, 2), stream.subarray(2, 9), stream.subarray(9)]) {
    decoder.push(chunk, (payload) => seen.push([...payload]));
  }
  assert.deepEqual(seen, [[1, 2, 3], [4, 5, 6]]);
});

Deno.test("a BSON document is a frame as it stands", () => {
  const documents = [{ hello: "world" }, { n: 1, list: [1, 2, 3], nested: { ok: true } }, {}];
  const stream = concat(documents.map((document) => BSON.serialize(document)));
  const decoder = new FrameDecoder(1024);
  const decoded: unknown[] = [];
  for (const chunk of split(stream, [3, 17, 30, 41])) {
    decoder.push(chunk, (payload) => {
      // The payload is the document minus its length; the header re-attaches it.
      const frame = encodeFrame(payload);
      decoded.push(BSON.deserialize(frame));
    });
  }
  assert.deepEqual(decoded, documents);
  const document = new Uint8Array(BSON.serialize({ a: 1 }));
  assert.deepEqual(encodeFrame(document.subarray(4)), document);
});

const payloadArbitrary = fc.uint8Array({ maxLength: 300 });

Deno.test("FrameDecoder property: any split of any valid frame sequence decodes to the same frames", () => {
  fc.assert(
    fc.property(
      fc.array(payloadArbitrary, { maxLength: 12 }),
      fc.array(fc.nat(), { maxLength: 20 }),
      (payloads, cuts) => {
        const stream = concat(payloads.map(encodeFrame));
        const decoder = new FrameDecoder(304);
        const frames = decodeAll(decoder, split(stream, cuts));
        assert.deepEqual(frames, payloads);
        assert.equal(decoder.bufferedBytes, 0);
        assert.equal(decoder.pendingHeader, false);
      },
    ),
    { numRuns: 500 },
  );
});

Deno.test("FrameDecoder property: large frames split into many pieces decode intact", () => {
  // Frames above the decoder's small initial buffer make it grow as bytes arrive.
  fc.assert(
    fc.property(
      fc.array(fc.uint8Array({ minLength: 3000, maxLength: 40_000 }), {
        minLength: 1,
        maxLength: 4,
      }),
      fc.array(fc.nat(), { maxLength: 40 }),
      (payloads, cuts) => {
        const decoder = new FrameDecoder(40_004);
        const frames = decodeAll(decoder, split(concat(payloads.map(encodeFrame)), cuts));
        assert.deepEqual(frames, payloads);
        assert.equal(decoder.pendingHeader, false);
      },
    ),
    // Shrinking 40 kB arrays takes minutes; report the first failure as found.
    { numRuns: 60, endOnFailure: true },
  );
});

Deno.test("FrameDecoder property: a truncated sequence decodes the complete prefix and buffers the rest", () => {
  fc.assert(
    fc.property(
      fc.array(payloadArbitrary, { minLength: 1, maxLength: 8 }),
      fc.nat(),
      fc.array(fc.nat(), { maxLength: 10 }),
      (payloads, cut, cuts) => {
        const stream = concat(payloads.map(encodeFrame));
        const end = cut % (stream.length + 1);
        const decoder = new FrameDecoder(304);
        const frames = decodeAll(decoder, split(stream.subarray(0, end), cuts));
        let complete = 0;
        let consumed = 0;
        for (const payload of payloads) {
          if (consumed + payload.length + 4 > end) break;
          consumed += payload.length + 4;
          complete++;
        }
        assert.deepEqual(frames, payloads.slice(0, complete));
        assert.equal(decoder.bufferedBytes, end - consumed);
        assert.equal(decoder.pendingHeader, end > consumed);
      },
    ),
    { numRuns: 300 },
  );
});

Deno.test("FrameDecoder property: random bytes either decode or throw a FrameError", () => {
  fc.assert(
    fc.property(
      fc.array(fc.uint8Array({ maxLength: 64 }), { maxLength: 10 }),
      fc.integer({ min: 4, max: 128 }),
      (chunks, maxFrame) => {
        const decoder = new FrameDecoder(maxFrame);
        let total = 0;
        try {
          for (const chunk of chunks) {
            decoder.push(chunk, (payload) => {
              assert.ok(payload.length + 4 <= maxFrame);
              total += payload.length + 4;
            });
          }
        } catch (error) {
          if (!(error instanceof FrameError)) throw error;
          return;
        }
        const pushed = chunks.reduce((sum, chunk) => sum + chunk.length, 0);
        assert.equal(total + decoder.bufferedBytes, pushed);
      },
    ),
    { numRuns: 1000 },
  );
});
