import assert from "node:assert/strict";
import { type ListenAddress, parseByteSize, parseListenAddress } from "../../core/net/mod.ts";

const K64 = 64 * 1024;
const base: ListenAddress = {
  protocol: "tcp",
  hostname: "127.0.0.1",
  port: 8801,
  path: "",
  maxIn: K64,
  maxOut: K64,
  codec: "bson",
  options: {},
};

const valid: [string, Partial<ListenAddress>][] = [
  ["tcp://127.0.0.1:8801", {}],
  ["TCP://127.0.0.1:8801", {}],
  ["tcp://127.0.0.1:8801/", {}],
  ["tcp://127.0.0.1:8801?", {}],
  ["tcp://0.0.0.0:0", { hostname: "0.0.0.0", port: 0 }],
  ["tcp://:8801", { hostname: "0.0.0.0" }],
  ["tcp://localhost:65535", { hostname: "localhost", port: 65535 }],
  ["tcp://game-1.example.com:8801", { hostname: "game-1.example.com" }],
  ["tcp://[::1]:8801", { hostname: "::1" }],
  ["tcp://[::]:8801", { hostname: "::" }],
  ["tcp://[fe80::1%eth0]:8801", { hostname: "fe80::1%eth0" }],
  ["tcp://[::ffff:10.0.0.1]:8801", { hostname: "::ffff:10.0.0.1" }],
  ["udp://239.1.2.3:9000", { protocol: "udp", hostname: "239.1.2.3", port: 9000 }],
  ["ws://127.0.0.1:8801/game/v1", { protocol: "ws", path: "/game/v1" }],
  ["tcp://127.0.0.1:8801?packet=16k", { maxIn: 16384, maxOut: 16384 }],
  ["tcp://127.0.0.1:8801?packet=16k,1m", { maxIn: 16384, maxOut: 1048576 }],
  ["tcp://127.0.0.1:8801?packet=4096,2M", { maxIn: 4096, maxOut: 2097152 }],
  ["tcp://127.0.0.1:8801?packet=4,4", { maxIn: 4, maxOut: 4 }],
  ["tcp://127.0.0.1:8801?packet=2147483647", { maxIn: 2147483647, maxOut: 2147483647 }],
  ["tcp://127.0.0.1:8801?packet=1K,2k", { maxIn: 1024, maxOut: 2048 }],
  ["tcp://127.0.0.1:8801?json", { codec: "json" }],
  ["tcp://127.0.0.1:8801?raw", { codec: "raw" }],
  ["tcp://127.0.0.1:8801?bson", { codec: "bson" }],
  ["tcp://127.0.0.1:8801?JSON", { codec: "json" }],
  ["tcp://127.0.0.1:8801?codec=json", { codec: "json" }],
  ["tcp://127.0.0.1:8801?codec=RAW", { codec: "raw" }],
  ["tcp://127.0.0.1:8801?json&codec=json", { codec: "json" }],
  ["tcp://127.0.0.1:8801?packet=8k,32k&json", { maxIn: 8192, maxOut: 32768, codec: "json" }],
  ["tcp://127.0.0.1:8801?json&packet=8k", { maxIn: 8192, maxOut: 8192, codec: "json" }],
  ["tcp://127.0.0.1:8801?json&&raw_mode=1", { codec: "json", options: { raw_mode: "1" } }],
  ["tcp://127.0.0.1:8801?expire=5000&nodelay", {
    options: { expire: "5000", nodelay: "" },
  }],
  ["tcp://127.0.0.1:8801?name=a%20b+c", { options: { name: "a b+c" } }],
  ["udp://0.0.0.0:9000?group=239.1.2.3&raw", {
    protocol: "udp",
    hostname: "0.0.0.0",
    port: 9000,
    codec: "raw",
    options: { group: "239.1.2.3" },
  }],
];

for (const [url, expected] of valid) {
  Deno.test(`parseListenAddress parses ${url}`, () => {
    assert.deepEqual(parseListenAddress(url), { ...base, ...expected });
  });
}

const invalid: [string, string][] = [
  ["tcp://x:99999", "port 99999 is out of range 0..65535"],
  ["tcp://x:65536", "port 65536 is out of range 0..65535"],
  ["tcp://x", 'missing port after host "x"'],
  ["tcp://x:", 'missing port after host "x"'],
  ["tcp://x:port", 'port "port" is not a number'],
  ["tcp://x:-1", 'port "-1" is not a number'],
  ["127.0.0.1:8801", 'missing "://" after the protocol'],
  ["http://x:80", 'unsupported protocol "http" (expected tcp, udp or ws)'],
  ["tcp://x:1/path", 'path "/path" is only allowed for ws:// addresses'],
  ["tcp://::1:8801", 'IPv6 address "::1" must be written in brackets'],
  ["tcp://[::1:8801", 'missing "]" after IPv6 address'],
  ["tcp://[::1]8801", 'expected ":port" after "]", found "8801"'],
  ["tcp://[zz]:8801", '"zz" is not an IPv6 address'],
  ["tcp://bad host:1", '"bad host" is not a valid host'],
  ["tcp://user@x:1", 'user information is not allowed in "user@x:1"'],
  ["tcp://x:1#frag", 'unexpected fragment "#frag"'],
  ["tcp://x:1?packet=12x", 'packet size "12x" is not a byte size'],
  ["tcp://x:1?packet=1.5k", 'packet size "1.5k" is not a byte size'],
  ["tcp://x:1?packet=", 'option "packet" needs a value'],
  ["tcp://x:1?packet", 'option "packet" needs a value'],
  ["tcp://x:1?packet=1k,", 'packet size "" is not a byte size'],
  ["tcp://x:1?packet=1k,2k,3k", 'packet "1k,2k,3k" has more than two sizes'],
  ["tcp://x:1?packet=3", 'packet size "3" is out of range 4..2147483647 bytes'],
  ["tcp://x:1?packet=2048m", 'packet size "2048m" is out of range 4..2147483647 bytes'],
  ["tcp://x:1?packet=1k&packet=2k", 'option "packet" is given twice'],
  ["tcp://x:1?json&raw", 'codec "raw" conflicts with "json"'],
  ["tcp://x:1?codec=json&raw", 'codec "raw" conflicts with "codec=json"'],
  ["tcp://x:1?codec=xml", 'unknown codec "xml" (expected bson, json or raw)'],
  ["tcp://x:1?codec", 'option "codec" needs a value'],
  ["tcp://x:1?json=1", 'codec flag "json" takes no value, found "1"'],
  ["tcp://x:1?=1", 'option "=1" has an empty name'],
  ["tcp://x:1?a=%zz", '"%zz" is not validly percent-encoded'],
];

for (const [url, problem] of invalid) {
  Deno.test(`parseListenAddress rejects ${url}`, () => {
    assert.throws(() => parseListenAddress(url), {
      name: "TypeError",
      message: new RegExp(`^${escape(`Cannot parse listen address "${url}": ${problem}`)}`),
    });
  });
}

Deno.test("parseListenAddress rejects a non-string with a TypeError", () => {
  assert.throws(() => parseListenAddress(42 as unknown as string), {
    name: "TypeError",
    message: 'Cannot parse listen address "42": expected a string, found number',
  });
});

const sizes: [string, number][] = [
  ["0", 0],
  ["4", 4],
  ["65536", 65536],
  ["1k", 1024],
  ["1K", 1024],
  ["64k", 65536],
  ["1m", 1048576],
  ["16M", 16777216],
  ["0k", 0],
];

for (const [text, expected] of sizes) {
  Deno.test(`parseByteSize parses "${text}" as ${expected}`, () => {
    assert.equal(parseByteSize(text), expected);
  });
}

for (const text of ["", "k", "1g", "1kb", " 1k", "1k ", "-1", "1.5k", "0x10", "1e3"]) {
  Deno.test(`parseByteSize rejects "${text}"`, () => {
    assert.throws(() => parseByteSize(text), {
      name: "TypeError",
      message: `Cannot parse byte size "${text}": expected digits optionally followed by k or m`,
    });
  });
}

Deno.test("parseByteSize rejects sizes beyond the safe integer range", () => {
  assert.throws(() => parseByteSize("99999999999999999999m"), {
    name: "TypeError",
    message: /Cannot parse byte size "99999999999999999999m": .* is too large/,
  });
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
