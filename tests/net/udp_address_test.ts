import assert from "node:assert/strict";
import { parseListenAddress } from "../../core/net/listen_address.ts";
import {
  frameOutLimit,
  isMulticast,
  MAX_DATAGRAM_SIZE,
  udpOptions,
} from "../../core/net/udp_address.ts";

const listen = (url: string) => udpOptions(parseListenAddress(url), "listen", url);
const join = (url: string) => udpOptions(parseListenAddress(url), "join", url);

Deno.test("isMulticast knows the IPv4 and IPv6 multicast ranges", () => {
  for (const ip of ["224.0.0.1", "239.255.255.255", "ff02::1", "FF05::1:3"]) {
    assert.equal(isMulticast(ip), true, ip);
  }
  for (const ip of ["223.255.255.255", "240.0.0.1", "127.0.0.1", "::1", "fe80::1", "239.1.1.256"]) {
    assert.equal(isMulticast(ip), false, ip);
  }
});

Deno.test("udpOptions caps IN and OUT at the largest datagram", () => {
  assert.equal(listen("udp://:0").maxIn, MAX_DATAGRAM_SIZE);
  assert.equal(listen("udp://:0?packet=1m").maxOut, MAX_DATAGRAM_SIZE);
  const small = listen("udp://:0?packet=512,2k");
  assert.deepEqual([small.maxIn, small.maxOut], [512, 2048]);
});

Deno.test("udpOptions joins a multicast host and the join= groups, once each", () => {
  const options = listen("udp://239.1.2.3:5000?join=239.1.2.3,239.1.2.4");
  assert.deepEqual(options.groups, ["239.1.2.3", "239.1.2.4"]);
  assert.equal(options.interfaceV4, "0.0.0.0");
  assert.deepEqual(listen("udp://[::]:5000?join=[ff02::1:3]&if=2").groups, ["ff02::1:3"]);
  assert.equal(listen("udp://[::]:5000?join=ff02::1:3&if=2").interfaceV6, 2);
  assert.deepEqual(listen("udp://127.0.0.1:0").groups, []);
  const flags = listen("udp://0.0.0.0:0?join=239.9.9.9&if=127.0.0.1&loopback&reuse");
  assert.deepEqual([flags.interfaceV4, flags.loopback, flags.reuse], ["127.0.0.1", true, true]);
});

Deno.test("udpOptions names the URL and the bad option", () => {
  const cases: [string, "listen" | "join", string][] = [
    ["udp://:0?join=10.1.1.1", "listen", `join group "10.1.1.1" is not a multicast address`],
    ["udp://:0?join", "listen", `option "join" needs a group: join=239.1.2.3`],
    ["udp://:0?if=127.0.0.1", "listen", `option "if" needs a multicast group to join`],
    ["udp://:0?join=239.1.1.1&if=2", "listen", `option "if=2" is not an IPv4 interface address`],
    ["udp://:0?join=ff02::1&if=lo", "listen", `option "if=lo" is not an IPv6 interface index`],
    [
      "udp://:0?join=ff02::1,239.1.1.1&if=1",
      "listen",
      `option "if=1" cannot serve both IPv4 and IPv6 groups`,
    ],
    ["udp://:0?reuse=yes", "listen", `flag "reuse" takes no value, found "yes"`],
    ["udp://h:1?join=239.1.1.1", "join", `option "join" is for broker.ready listeners only`],
    ["udp://h:1?reuse", "join", `option "reuse" is for broker.ready listeners only`],
  ];
  for (const [url, role, problem] of cases) {
    assert.throws(
      () => udpOptions(parseListenAddress(url), role, url),
      { name: "TypeError", message: `Cannot use UDP address "${url}": ${problem}` },
      url,
    );
  }
  assert.throws(() => udpOptions(parseListenAddress("tcp://:0"), "listen", "tcp://:0"), TypeError);
  assert.equal(join("udp://h:1?loopback&json").loopback, true);
});

Deno.test("frameOutLimit adds the unsent json/raw header to a udp OUT", () => {
  assert.equal(frameOutLimit(parseListenAddress("udp://:0?raw&packet=100")), 104);
  assert.equal(frameOutLimit(parseListenAddress("udp://:0?bson&packet=100")), 100);
  assert.equal(frameOutLimit(parseListenAddress("udp://:0?json")), MAX_DATAGRAM_SIZE + 4);
  assert.equal(frameOutLimit(parseListenAddress("ws://:0?json&packet=100")), 100);
});
