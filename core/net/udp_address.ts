/**
 * What a `udp://` broker URL means beyond the common grammar
 * (listen_address.ts): datagram size limits, multicast groups and socket flags.
 *
 * - `packet=IN,OUT` bounds the datagrams themselves (the bytes on the wire), at
 *   most {@link MAX_DATAGRAM_SIZE}; the default `64k` is therefore 65,507.
 * - `join=GROUP[,GROUP…]` (listeners): multicast groups joined on the bound
 *   socket. A multicast host (`udp://239.1.2.3:5000`) is joined without saying so.
 * - `if=ADDRESS` (listeners): the interface of the joins: for IPv4 groups the
 *   interface's IPv4 address (default `0.0.0.0`, the kernel's choice), for IPv6
 *   groups its numeric index (default `0`).
 * - `loopback`: multicast datagrams this socket sends are looped back to
 *   listeners on the same host.
 * - `reuse` (listeners): SO_REUSEADDR, so several processes can receive one
 *   multicast group on the same port.
 *
 * @module
 */
import type { ListenAddress } from "./listen_address.ts";

/** The largest UDP payload over IPv4 (65,535 − 20 bytes of IP header − 8 of UDP header). */
export const MAX_DATAGRAM_SIZE = 65_507;

/** The meaning of a `udp://` URL's options. */
export interface UdpOptions {
  /** Largest incoming datagram, in bytes. */
  maxIn: number;
  /** Largest outgoing datagram, in bytes. */
  maxOut: number;
  /** Multicast groups to join (IP addresses). */
  groups: string[];
  /** The interface of the IPv4 joins (an IPv4 address). */
  interfaceV4: string;
  /** The interface of the IPv6 joins (an interface index). */
  interfaceV6: number;
  /** Loop multicast sent by this socket back to local listeners. */
  loopback: boolean;
  /** Bind with SO_REUSEADDR. */
  reuse: boolean;
}

const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

/**
 * Whether `ip` is an IPv4 (224.0.0.0/4) or IPv6 (ff00::/8) multicast address.
 *
 * @example
 * ```ts
 * import { isMulticast } from "./udp_address.ts";
 * if (!isMulticast("239.1.2.3") || !isMulticast("ff02::1")) throw new Error("multicast");
 * if (isMulticast("127.0.0.1") || isMulticast("::1")) throw new Error("unicast");
 * ```
 */
export function isMulticast(ip: string): boolean {
  const v4 = IPV4.exec(ip);
  if (v4 !== null) {
    const first = Number(v4[1]);
    return first >= 224 && first <= 239 && v4.slice(2).every((part) => Number(part) <= 255);
  }
  return ip.includes(":") && /^ff[0-9a-f]{2}:/i.test(ip);
}

/**
 * Reads the UDP options of a parsed `udp://` URL, for `broker.ready`
 * (`"listen"`) or `broker.join` (`"join"`).
 *
 * @example
 * ```ts
 * import { parseListenAddress } from "./listen_address.ts";
 * import { udpOptions } from "./udp_address.ts";
 * import assert from "node:assert/strict";
 *
 * const url = "udp://0.0.0.0:5000?join=239.1.2.3&if=127.0.0.1&packet=1k";
 * const options = udpOptions(parseListenAddress(url), "listen", url);
 * assert.deepEqual(options.groups, ["239.1.2.3"]);
 * assert.equal(options.interfaceV4, "127.0.0.1");
 * assert.equal(options.maxIn, 1024);
 * assert.equal(udpOptions(parseListenAddress("udp://:0"), "listen", "udp://:0").maxOut, 65507);
 * ```
 *
 * @param address the parsed URL (its protocol must be `udp`)
 * @param role what the URL is given to
 * @param url the URL as written, for error messages
 * @throws {TypeError} naming the URL and the option: a group that is not a
 *   multicast address, an `if` of the wrong kind, a flag with a value, or a
 *   listener-only option (`join`, `if`, `reuse`) given to `broker.join`
 */
export function udpOptions(
  address: ListenAddress,
  role: "listen" | "join",
  url: string,
): UdpOptions {
  const fail = (problem: string): never => {
    throw new TypeError(`Cannot use UDP address "${url}": ${problem}`);
  };
  if (address.protocol !== "udp") fail(`expected a udp:// address`);
  const given = address.options;
  if (role === "join") {
    for (const key of ["join", "if", "reuse"]) {
      if (key in given) fail(`option "${key}" is for broker.ready listeners only`);
    }
  }
  for (const flag of ["loopback", "reuse"]) {
    if (given[flag] !== undefined && given[flag] !== "") {
      fail(`flag "${flag}" takes no value, found "${given[flag]}"`);
    }
  }
  const groups: string[] = [];
  if (role === "listen" && isMulticast(address.hostname)) groups.push(address.hostname);
  for (const group of (given.join ?? "").split(",")) {
    if (group === "") continue;
    const ip = group.replace(/^\[(.*)\]$/, "$1");
    if (!isMulticast(ip)) fail(`join group "${group}" is not a multicast address`);
    if (!groups.includes(ip)) groups.push(ip);
  }
  if ("join" in given && groups.length === 0) fail(`option "join" needs a group: join=239.1.2.3`);
  let interfaceV4 = "0.0.0.0";
  let interfaceV6 = 0;
  const iface = given.if;
  if (iface !== undefined) {
    if (groups.length === 0) fail(`option "if" needs a multicast group to join`);
    const v6 = groups.some((group) => group.includes(":"));
    const v4 = groups.some((group) => !group.includes(":"));
    if (v4 && v6) fail(`option "if=${iface}" cannot serve both IPv4 and IPv6 groups`);
    if (v4 && !IPV4.test(iface)) fail(`option "if=${iface}" is not an IPv4 interface address`);
    if (v6 && !/^\d+$/.test(iface)) fail(`option "if=${iface}" is not an IPv6 interface index`);
    if (v4) interfaceV4 = iface;
    else interfaceV6 = Number(iface);
  }
  return {
    maxIn: Math.min(address.maxIn, MAX_DATAGRAM_SIZE),
    maxOut: Math.min(address.maxOut, MAX_DATAGRAM_SIZE),
    groups,
    interfaceV4,
    interfaceV6,
    loopback: "loopback" in given,
    reuse: "reuse" in given,
  };
}

/**
 * The largest frame a worker may encode for a socket of `address`: its `OUT`,
 * except for `udp://`, where `OUT` bounds the datagram and a `json`/`raw` frame
 * carries a 4-byte header that is not sent.
 *
 * @example
 * ```ts
 * import { parseListenAddress } from "./listen_address.ts";
 * import { frameOutLimit } from "./udp_address.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(frameOutLimit(parseListenAddress("tcp://:0?packet=1k&json")), 1024);
 * assert.equal(frameOutLimit(parseListenAddress("udp://:0?packet=1k&json")), 1028);
 * assert.equal(frameOutLimit(parseListenAddress("udp://:0?packet=1k")), 1024);
 * ```
 */
export function frameOutLimit(address: ListenAddress): number {
  if (address.protocol !== "udp") return address.maxOut;
  const maxOut = Math.min(address.maxOut, MAX_DATAGRAM_SIZE);
  return address.codec === "bson" ? maxOut : maxOut + 4;
}
