/**
 * The broker URL grammar: `"tcp://host:port?packet=IN,OUT&json"`.
 *
 * @module
 */

/** Transport named by a broker URL's scheme. */
export type ListenProtocol = "tcp" | "udp" | "ws";

/** How frame payloads are encoded: BSON (default), UTF-8 JSON, or raw bytes. */
export type PayloadCodec = "bson" | "json" | "raw";

/** A parsed broker URL, as given to `broker.ready` and `broker.join`. */
export interface ListenAddress {
  /** Transport: `tcp`, `udp` or `ws`. */
  protocol: ListenProtocol;
  /** Host name or IP address; IPv6 without brackets; `0.0.0.0` when the URL gives none. */
  hostname: string;
  /** Port number, 0..65535 (0 = any free port). */
  port: number;
  /** Path after the port (`ws://` only); `""` when absent. */
  path: string;
  /** Largest accepted incoming frame in bytes, header included. */
  maxIn: number;
  /** Largest allowed outgoing frame in bytes, header included. */
  maxOut: number;
  /** Payload codec. */
  codec: PayloadCodec;
  /** Query options other than `packet`, `codec` and the codec flags; a bare key maps to `""`. */
  options: Record<string, string>;
}

/** Default largest frame in each direction (64 KiB). */
export const DEFAULT_PACKET_SIZE = 64 * 1024;

/** The largest frame the int32 length header can declare. */
const MAX_PACKET_SIZE = 0x7fff_ffff;
/** The smallest frame: a header with an empty payload. */
const MIN_PACKET_SIZE = 4;

const PROTOCOLS: readonly string[] = ["tcp", "udp", "ws"];
const CODECS: readonly string[] = ["bson", "json", "raw"];
const HOSTNAME = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*\.?$/;
const IPV6 = /^[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*(%[A-Za-z0-9_.-]+)?$/;

/**
 * Parses a byte size: plain bytes (`"4096"`) or a number with unit `k`
 * (×1024) or `m` (×1048576), case-insensitive.
 *
 * @example
 * ```ts
 * import { parseByteSize } from "./listen_address.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(parseByteSize("64k"), 65536);
 * assert.equal(parseByteSize("1M"), 1048576);
 * assert.equal(parseByteSize("512"), 512);
 * ```
 *
 * @param text the size as written
 * @returns the size in bytes
 * @throws {TypeError} if `text` is not digits optionally followed by `k` or `m`,
 *   or the size is not a safe integer
 */
export function parseByteSize(text: string): number {
  const match = /^(\d+)([kKmM]?)$/.exec(text);
  if (match === null) {
    throw new TypeError(
      `Cannot parse byte size "${text}": expected digits optionally followed by k or m`,
    );
  }
  const unit = match[2]!.toLowerCase();
  const size = Number(match[1]) * (unit === "k" ? 1024 : unit === "m" ? 1024 * 1024 : 1);
  if (!Number.isSafeInteger(size)) {
    throw new TypeError(`Cannot parse byte size "${text}": ${size} is too large`);
  }
  return size;
}

/**
 * Parses a broker URL: `protocol://host:port[/path][?options]`.
 *
 * - protocol: `tcp`, `udp` or `ws`; a path is allowed only for `ws`.
 * - host: a name, an IPv4 address, or an IPv6 address in brackets
 *   (`tcp://[::1]:8801`); empty means every interface (`0.0.0.0`).
 * - `packet=IN,OUT`: largest incoming/outgoing frame (see
 *   {@linkcode parseByteSize}); one value sets both; default `64k,64k`.
 * - codec: a bare flag `json`, `raw` or `bson`, or `codec=NAME`; default `bson`.
 * - any other `key` or `key=value` is kept in `options` (percent-decoded;
 *   `+` stays `+`). A key given twice is an error.
 *
 * @example
 * ```ts
 * import { parseListenAddress } from "./listen_address.ts";
 * import assert from "node:assert/strict";
 *
 * const address = parseListenAddress("tcp://0.0.0.0:8801?packet=16k,1m&json");
 * assert.equal(address.port, 8801);
 * assert.equal(address.maxIn, 16384);
 * assert.equal(address.maxOut, 1048576);
 * assert.equal(address.codec, "json");
 * ```
 *
 * @param url the broker URL
 * @throws {TypeError} naming the URL and the bad part, e.g.
 *   `Cannot parse listen address "tcp://x:99999": port 99999 is out of range 0..65535`
 */
export function parseListenAddress(url: string): ListenAddress {
  const fail = (problem: string): never => {
    throw new TypeError(`Cannot parse listen address "${url}": ${problem}`);
  };
  if (typeof url !== "string") fail(`expected a string, found ${typeof url}`);

  const schemeEnd = url.indexOf("://");
  if (schemeEnd < 0) fail(`missing "://" after the protocol (tcp, udp or ws)`);
  const protocol = url.slice(0, schemeEnd).toLowerCase();
  if (!PROTOCOLS.includes(protocol)) {
    fail(`unsupported protocol "${url.slice(0, schemeEnd)}" (expected tcp, udp or ws)`);
  }
  if (url.includes("#")) fail(`unexpected fragment "${url.slice(url.indexOf("#"))}"`);

  let rest = url.slice(schemeEnd + 3);
  const queryStart = rest.indexOf("?");
  const query = queryStart < 0 ? "" : rest.slice(queryStart + 1);
  if (queryStart >= 0) rest = rest.slice(0, queryStart);
  const pathStart = rest.indexOf("/");
  let path = pathStart < 0 ? "" : rest.slice(pathStart);
  const authority = pathStart < 0 ? rest : rest.slice(0, pathStart);
  if (path === "/") path = "";
  if (path !== "" && protocol !== "ws") fail(`path "${path}" is only allowed for ws:// addresses`);

  const { hostname, port } = parseAuthority(authority, fail);
  const address: ListenAddress = {
    protocol: protocol as ListenProtocol,
    hostname,
    port,
    path,
    maxIn: DEFAULT_PACKET_SIZE,
    maxOut: DEFAULT_PACKET_SIZE,
    codec: "bson",
    options: {},
  };
  applyQuery(address, query, fail);
  return address;
}

function parseAuthority(
  authority: string,
  fail: (problem: string) => never,
): { hostname: string; port: number } {
  if (authority.includes("@")) fail(`user information is not allowed in "${authority}"`);
  let hostname: string;
  let portText: string | undefined;
  if (authority.startsWith("[")) {
    const close = authority.indexOf("]");
    if (close < 0) fail(`missing "]" after IPv6 address "${authority}"`);
    hostname = authority.slice(1, close);
    if (!IPV6.test(hostname)) fail(`"${hostname}" is not an IPv6 address`);
    const after = authority.slice(close + 1);
    if (after !== "" && !after.startsWith(":")) {
      fail(`expected ":port" after "]", found "${after}"`);
    }
    if (after !== "") portText = after.slice(1);
  } else {
    const colon = authority.lastIndexOf(":");
    hostname = colon < 0 ? authority : authority.slice(0, colon);
    if (colon >= 0) portText = authority.slice(colon + 1);
    if (hostname.includes(":")) fail(`IPv6 address "${hostname}" must be written in brackets`);
    if (hostname !== "" && !HOSTNAME.test(hostname)) fail(`"${hostname}" is not a valid host`);
  }
  if (portText === undefined || portText === "") fail(`missing port after host "${hostname}"`);
  if (!/^\d+$/.test(portText!)) fail(`port "${portText}" is not a number`);
  const port = Number(portText);
  if (port > 65535) fail(`port ${portText} is out of range 0..65535`);
  return { hostname: hostname === "" ? "0.0.0.0" : hostname, port };
}

function applyQuery(address: ListenAddress, query: string, fail: (problem: string) => never): void {
  const seen = new Set<string>();
  const options: [string, string][] = [];
  let codecSource: string | undefined;
  const setCodec = (codec: string, source: string) => {
    if (!CODECS.includes(codec)) fail(`unknown codec "${codec}" (expected bson, json or raw)`);
    if (codecSource !== undefined && codec !== address.codec) {
      fail(`codec "${source}" conflicts with "${codecSource}"`);
    }
    address.codec = codec as PayloadCodec;
    codecSource = source;
  };
  for (const part of query.split("&")) {
    if (part === "") continue;
    const equals = part.indexOf("=");
    const key = decode(equals < 0 ? part : part.slice(0, equals), fail);
    const value = equals < 0 ? undefined : decode(part.slice(equals + 1), fail);
    if (key === "") fail(`option "${part}" has an empty name`);
    if (seen.has(key)) fail(`option "${key}" is given twice`);
    seen.add(key);
    if (key === "packet") {
      if (value === undefined || value === "") fail(`option "packet" needs a value: packet=IN,OUT`);
      const sizes = value!.split(",");
      if (sizes.length > 2) fail(`packet "${value}" has more than two sizes (expected IN,OUT)`);
      const [maxIn, maxOut = maxIn] = sizes.map((size) => packetSize(size, fail));
      address.maxIn = maxIn!;
      address.maxOut = maxOut!;
    } else if (key === "codec") {
      if (value === undefined || value === "") {
        fail(`option "codec" needs a value: codec=bson|json|raw`);
      }
      setCodec(value!.toLowerCase(), part);
    } else if (CODECS.includes(key.toLowerCase())) {
      if (value !== undefined) fail(`codec flag "${key}" takes no value, found "${value}"`);
      setCodec(key.toLowerCase(), part);
    } else {
      options.push([key, value ?? ""]);
    }
  }
  // fromEntries defines own properties, so a key like "__proto__" stays data.
  address.options = Object.fromEntries(options);
}

function packetSize(text: string, fail: (problem: string) => never): number {
  let size: number;
  try {
    size = parseByteSize(text);
  } catch {
    return fail(`packet size "${text}" is not a byte size (digits optionally followed by k or m)`);
  }
  if (size < MIN_PACKET_SIZE || size > MAX_PACKET_SIZE) {
    fail(`packet size "${text}" is out of range ${MIN_PACKET_SIZE}..${MAX_PACKET_SIZE} bytes`);
  }
  return size;
}

function decode(text: string, fail: (problem: string) => never): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return fail(`"${text}" is not validly percent-encoded`);
  }
}

/**
 * Whether `hostname:port` is one of the `"host:port"` addresses of `#services`
 * (shared by several processes through SO_REUSEPORT). An empty host and
 * `0.0.0.0` are the same; IPv6 hosts are written in brackets.
 *
 * @example
 * ```ts
 * import { isSharedAddress } from "./listen_address.ts";
 * if (!isSharedAddress(["0.0.0.0:8801"], "0.0.0.0", 8801)) throw new Error("shared");
 * if (isSharedAddress(["0.0.0.0:8801"], "127.0.0.1", 8801)) throw new Error("another host");
 * ```
 */
export function isSharedAddress(
  shared: readonly string[],
  hostname: string,
  port: number,
): boolean {
  const host = (name: string) => name === "" ? "0.0.0.0" : name.replace(/^\[(.*)\]$/, "$1");
  return shared.some((entry) => {
    const colon = entry.lastIndexOf(":");
    return Number(entry.slice(colon + 1)) === port &&
      host(entry.slice(0, colon)) === host(hostname);
  });
}
