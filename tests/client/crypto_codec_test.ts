/**
 * The client SDK's AES-GCM codec: the specification's test vectors, agreement
 * with WebCrypto on random keys, IVs and lengths, and interoperation with the
 * server side of `socket.crypto` (SocketCipher, WebCrypto in the worker).
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { AesGcm } from "../../core/client/_aes_gcm.ts";
import {
  bsonCodec,
  encryptedCodec,
  ENCRYPTION_OVERHEAD_BYTES,
  jsonCodec,
  rawCodec,
} from "../../core/client/mod.ts";
import { CRYPTO_OVERHEAD, DecryptError, SocketCipher } from "../../core/api/socket_crypto.ts";

const hex = (bytes: Uint8Array) =>
  Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
const bytes = (text: string) =>
  Uint8Array.from(text.match(/../g) ?? [], (pair) => parseInt(pair, 16));

Deno.test("AesGcm matches the GCM specification's test vectors", () => {
  // McGrew & Viega, "The Galois/Counter Mode of Operation", test cases 1-3.
  const zero = new AesGcm(new Uint8Array(16));
  const tag1 = new Uint8Array(16);
  zero.seal(new Uint8Array(12), new Uint8Array(0), tag1);
  assert.equal(hex(tag1), "58e2fccefa7e3061367f1d57a4e7455a");
  const case2 = new Uint8Array(32);
  zero.seal(new Uint8Array(12), new Uint8Array(16), case2);
  assert.equal(hex(case2), "0388dace60b6a392f328c2b971b2fe78" + "ab6e47d42cec13bdf53a67b21257bddf");
  const key = bytes("feffe9928665731c6d6a8f9467308308");
  const iv = bytes("cafebabefacedbaddecaf888");
  const plain = bytes(
    "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72" +
      "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255",
  );
  const sealed = new Uint8Array(plain.length + 16);
  new AesGcm(key).seal(iv, plain, sealed);
  assert.equal(
    hex(sealed),
    "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e" +
      "21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091473f5985" +
      "4d5c2af327cd64a62cf35abd2ba6fab4",
  );
  assert.equal(hex(new AesGcm(key).open(iv, sealed)!), hex(plain));
});

Deno.test("AesGcm agrees with WebCrypto both ways on random keys, IVs and lengths", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.constantFrom(16, 24, 32).chain((length) =>
        fc.uint8Array({ minLength: length, maxLength: length })
      ),
      fc.uint8Array({ minLength: 12, maxLength: 12 }),
      fc.uint8Array({ maxLength: 300 }),
      async (key, iv, plain) => {
        const webKey = await crypto.subtle.importKey(
          "raw",
          key as Uint8Array<ArrayBuffer>,
          "AES-GCM",
          false,
          ["encrypt", "decrypt"],
        );
        const expected = new Uint8Array(
          await crypto.subtle.encrypt(
            { name: "AES-GCM", iv: iv as Uint8Array<ArrayBuffer> },
            webKey,
            plain as Uint8Array<ArrayBuffer>,
          ),
        );
        const gcm = new AesGcm(key);
        const sealed = new Uint8Array(plain.length + 16);
        gcm.seal(iv, plain, sealed);
        assert.equal(hex(sealed), hex(expected));
        assert.equal(hex(gcm.open(iv, expected)!), hex(plain));
      },
    ),
    { numRuns: 150 },
  );
});

Deno.test("AesGcm.open refuses any altered byte and a wrong key", () => {
  const key = crypto.getRandomValues(new Uint8Array(32));
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const plain = new TextEncoder().encode("attack at dawn");
  const sealed = new Uint8Array(plain.length + 16);
  new AesGcm(key).seal(iv, plain, sealed);
  for (let i = 0; i < sealed.length; i++) {
    const altered = sealed.slice();
    altered[i]! ^= 0x01;
    assert.equal(new AesGcm(key).open(iv, altered), undefined, `byte ${i} altered`);
  }
  const otherKey = key.slice();
  otherKey[0]! ^= 0xff;
  assert.equal(new AesGcm(otherKey).open(iv, sealed), undefined);
  assert.throws(() => new AesGcm(new Uint8Array(20)), RangeError);
});

Deno.test("encryptedCodec round-trips every codec and lays frames out as documented", () => {
  const key = crypto.getRandomValues(new Uint8Array(16));
  const cases: [typeof jsonCodec, unknown][] = [
    [jsonCodec, { text: "héllo", n: [1, 2] }],
    [bsonCodec, { text: "hi", nested: { ok: true } }],
    [rawCodec, new Uint8Array([0, 1, 2, 255])],
  ];
  for (const [inner, value] of cases) {
    const codec = encryptedCodec(inner, key);
    assert.equal(codec.name, `aes-gcm+${inner.name}`);
    const plain = inner.encode(value);
    const frame = codec.encode(value);
    assert.equal(frame.length, plain.length + ENCRYPTION_OVERHEAD_BYTES);
    assert.equal(new DataView(frame.buffer).getInt32(0, true), frame.length);
    assert.notEqual(hex(frame).includes(hex(plain)), true, "the plaintext must not show");
    assert.deepEqual(codec.decode(frame), value);
  }
  assert.equal(ENCRYPTION_OVERHEAD_BYTES, CRYPTO_OVERHEAD);
});

Deno.test("encryptedCodec uses a fresh IV per frame and rejects altered or foreign frames", () => {
  const key = crypto.getRandomValues(new Uint8Array(24));
  const codec = encryptedCodec("json", key);
  const a = codec.encode({ same: 1 });
  const b = codec.encode({ same: 1 });
  assert.notEqual(hex(a), hex(b));
  const altered = a.slice();
  altered[a.length - 1]! ^= 0x80;
  assert.throws(() => codec.decode(altered), /failed AES-GCM authentication/);
  const other = encryptedCodec("json", crypto.getRandomValues(new Uint8Array(24)));
  assert.throws(() => other.decode(a), /failed AES-GCM authentication/);
  assert.throws(() => codec.decode(a.subarray(0, 20)), /at least 32 bytes; got 20/);
});

Deno.test("encryptedCodec with a null key stays plain until setKey", () => {
  const codec = encryptedCodec("json", null);
  assert.equal(codec.encrypting, false);
  assert.deepEqual(codec.encode({ hello: 1 }), jsonCodec.encode({ hello: 1 }));
  const key = crypto.getRandomValues(new Uint8Array(16));
  codec.setKey(key);
  assert.equal(codec.encrypting, true);
  const frame = codec.encode({ secret: 2 });
  assert.equal(frame.length, jsonCodec.encode({ secret: 2 }).length + ENCRYPTION_OVERHEAD_BYTES);
  assert.deepEqual(encryptedCodec("json", key).decode(frame), { secret: 2 });
  codec.setKey(null);
  assert.deepEqual(codec.decode(jsonCodec.encode([3])), [3]);
  assert.throws(() => codec.setKey(new Uint8Array(15)), /16, 24 or 32 bytes; got 15/);
  assert.throws(() => encryptedCodec("xml" as "json", key), TypeError);
});

Deno.test("encryptedCodec interoperates with the server's SocketCipher (WebCrypto)", async () => {
  const key = crypto.getRandomValues(new Uint8Array(32));
  const codec = encryptedCodec("json", key);
  const server = SocketCipher.from({ key, mode: "aes-gcm" }, "socket.crypto");
  // Client → server: the server opens it to exactly the plain json frame.
  const opened = await server.open(codec.encode({ up: "stream" }));
  assert.equal(hex(opened), hex(jsonCodec.encode({ up: "stream" })));
  // Server → client.
  const [head, body] = await server.seal(jsonCodec.encode({ down: "stream" }));
  const frame = new Uint8Array(head.length + body.length);
  frame.set(head);
  frame.set(body, head.length);
  assert.deepEqual(codec.decode(frame), { down: "stream" });
  // A client with another key is refused by the server.
  const stranger = encryptedCodec("json", crypto.getRandomValues(new Uint8Array(32)));
  await assert.rejects(server.open(stranger.encode({ up: 1 })), DecryptError);
});
