/**
 * `broker.aton` / `broker.ntoa`: IP addresses between text and numbers or bytes.
 *
 * An IPv4 address is a uint32 in network order: the first octet is the most
 * significant byte (`"1.2.3.4"` ↔ `0x01020304`), so masks and ranges are plain
 * integer arithmetic. An IPv6 address is its 16 bytes in network order.
 *
 * @module
 */

const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;
const HEX_GROUP = /^[0-9a-fA-F]{1,4}$/;

/**
 * Parses an IP address: a dotted quad becomes a uint32 in network order, an
 * IPv6 address (`"::1"`, `"2001:db8::8a2e:370:7334"`, `"::ffff:10.0.0.1"`) its
 * 16 bytes. Only the address itself: no port, brackets or zone (`%eth0`).
 *
 * @throws TypeError when `address` is not a string or not an IP address (naming it)
 * @throws RangeError when an IPv4 octet is above 255
 * @example
 * ```ts
 * import { aton } from "./net_address.ts";
 * if (aton("192.168.1.20") !== 0xc0a80114) throw new Error("network order");
 * const bytes = aton("::1") as Uint8Array;
 * if (bytes.length !== 16 || bytes[15] !== 1) throw new Error("IPv6 bytes");
 * ```
 */
export function aton(address: string): number | Uint8Array {
  if (typeof address !== "string") {
    throw new TypeError(`broker.aton: expected an address string; got ${describe(address)}`);
  }
  if (address.includes(":")) return parseIpv6(address);
  return parseIpv4(address, address);
}

/**
 * Formats an address: a number as a dotted quad (any integer from -2^31 to
 * 2^32 - 1: the signed results of `&`, `|` and `~` are read as uint32), 4 bytes
 * as a dotted quad, 16 bytes as IPv6 text in its canonical form (RFC 5952:
 * lower case, the longest run of zero groups as `::`, IPv4-mapped addresses as
 * `::ffff:a.b.c.d`).
 *
 * @throws TypeError when `value` is neither a number nor a Uint8Array
 * @throws RangeError for a number that is not such an integer, or bytes that are not 4 or 16
 * @example
 * ```ts
 * import { aton, ntoa } from "./net_address.ts";
 * const network = (aton("192.168.1.20") as number) & (aton("255.255.255.0") as number);
 * if (ntoa(network) !== "192.168.1.0") throw new Error("mask");
 * if (ntoa(aton("2001:0db8:0:0:0:0:0:1")) !== "2001:db8::1") throw new Error("canonical");
 * ```
 */
export function ntoa(value: number | Uint8Array): string {
  if (typeof value === "number") {
    if (!Number.isInteger(value) || value < -0x8000_0000 || value > 0xffff_ffff) {
      throw new RangeError(
        `broker.ntoa(${value}): an IPv4 address is an integer from -2^31 to 2^32 - 1`,
      );
    }
    const n = value >>> 0;
    return `${n >>> 24}.${(n >>> 16) & 0xff}.${(n >>> 8) & 0xff}.${n & 0xff}`;
  }
  if (!(value instanceof Uint8Array)) {
    throw new TypeError(
      `broker.ntoa: expected a number or a Uint8Array of 4 or 16 bytes; got ${describe(value)}`,
    );
  }
  if (value.length === 4) return Array.from(value).join(".");
  if (value.length !== 16) {
    throw new RangeError(
      `broker.ntoa: an address has 4 (IPv4) or 16 (IPv6) bytes; got ${value.length}`,
    );
  }
  return formatIpv6(value);
}

function parseIpv4(text: string, whole: string): number {
  const match = IPV4.exec(text);
  if (match === null) {
    throw new TypeError(`broker.aton("${whole}"): not an IPv4 or IPv6 address`);
  }
  let n = 0;
  for (let i = 1; i <= 4; i++) {
    const part = match[i]!;
    if (part.length > 1 && part.startsWith("0")) {
      // Elsewhere a leading zero can mean octal ("010" = 8): refuse the ambiguity.
      throw new TypeError(`broker.aton("${whole}"): octet "${part}" has a leading zero`);
    }
    const octet = Number(part);
    if (octet > 255) {
      throw new RangeError(`broker.aton("${whole}"): octet ${octet} is above 255`);
    }
    n = n * 256 + octet;
  }
  return n;
}

function parseIpv6(address: string): Uint8Array {
  const bad = (why: string) => new TypeError(`broker.aton("${address}"): ${why}`);
  if (address.startsWith("[")) throw bad("write the address without brackets (and port)");
  if (address.includes("%")) throw bad("a zone id (%…) is not part of the address");
  const halves = address.split("::");
  if (halves.length > 2) throw bad("'::' may appear only once");
  const groups = (text: string): string[] => text === "" ? [] : text.split(":");
  const head = groups(halves[0]!);
  const tail = halves.length === 2 ? groups(halves[1]!) : [];
  const words: number[] = [];
  const last = tail.length > 0 ? tail : head;
  let ipv4: number | undefined;
  if (last.length > 0 && last[last.length - 1]!.includes(".")) {
    ipv4 = parseIpv4(last.pop()!, address);
  }
  for (const part of [...head, ...tail]) {
    if (!HEX_GROUP.test(part)) throw bad(`"${part}" is not a group of 1 to 4 hex digits`);
  }
  const given = head.length + tail.length + (ipv4 === undefined ? 0 : 2);
  if (halves.length === 1 && given !== 8) throw bad(`expected 8 groups; got ${given}`);
  if (halves.length === 2 && given > 7) throw bad("too many groups around '::'");
  words.push(...head.map((part) => parseInt(part, 16)));
  for (let i = given; i < 8; i++) words.push(0);
  words.push(...tail.map((part) => parseInt(part, 16)));
  if (ipv4 !== undefined) words.push(ipv4 >>> 16, ipv4 & 0xffff);
  const bytes = new Uint8Array(16);
  words.forEach((word, i) => {
    bytes[i * 2] = word >>> 8;
    bytes[i * 2 + 1] = word & 0xff;
  });
  return bytes;
}

function formatIpv6(bytes: Uint8Array): string {
  const words: number[] = [];
  for (let i = 0; i < 16; i += 2) words.push(bytes[i]! << 8 | bytes[i + 1]!);
  const mapped = words.slice(0, 5).every((word) => word === 0) && words[5] === 0xffff;
  if (mapped) return `::ffff:${Array.from(bytes.subarray(12)).join(".")}`;
  // The longest run of two or more zero groups (the first of equal runs) becomes "::".
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8;) {
    if (words[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = words.map((word) => word.toString(16));
  if (bestStart < 0) return hex.join(":");
  return `${hex.slice(0, bestStart).join(":")}::${hex.slice(bestStart + bestLength).join(":")}`;
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "object") return `a ${value.constructor?.name ?? "object"}`;
  return `${typeof value} ${String(value)}`;
}
