/**
 * Admission of incoming connections: a bound on open sockets in total and
 * per remote IP address.
 *
 * @module
 */

/** Why an incoming connection was refused: the limit it would have broken. */
export type RefusalReason = "max_connections" | "max_per_ip";

/** The limits of a {@link ConnectionQuota}. */
export interface ConnectionQuotaLimits {
  /** Open connections in total. */
  maxConnections: number;
  /** Open connections per remote IP address. */
  maxPerIp: number;
}

/**
 * Counts open incoming connections, in total and per remote IP, and refuses
 * those over a limit. Every {@link admit} that succeeds must be matched by one
 * {@link release}; an address's entry is deleted when its count reaches zero,
 * so the table holds only addresses with open connections.
 *
 * One quota may be shared by the broker services of a process to bound the
 * whole process.
 *
 * @example
 * ```ts
 * import { ConnectionQuota } from "./connection_quota.ts";
 * import assert from "node:assert/strict";
 *
 * const quota = new ConnectionQuota({ maxConnections: 3, maxPerIp: 2 });
 * assert.equal(quota.admit("10.0.0.1"), undefined);
 * assert.equal(quota.admit("10.0.0.1"), undefined);
 * assert.equal(quota.admit("10.0.0.1"), "max_per_ip");
 * assert.equal(quota.admit("10.0.0.2"), undefined);
 * assert.equal(quota.admit("10.0.0.3"), "max_connections");
 * quota.release("10.0.0.1");
 * assert.equal(quota.openFrom("10.0.0.1"), 1);
 * assert.equal(quota.open, 2);
 * ```
 */
export class ConnectionQuota {
  readonly maxConnections: number;
  readonly maxPerIp: number;
  #open = 0;
  #perIp = new Map<string, number>();

  /**
   * @param limits the bounds
   * @throws {RangeError} if a limit is not a positive integer
   */
  constructor(limits: ConnectionQuotaLimits) {
    for (const key of ["maxConnections", "maxPerIp"] as const) {
      const value = limits[key];
      if (!Number.isSafeInteger(value) || value < 1) {
        throw new RangeError(
          `Cannot create ConnectionQuota: ${key} ${value} is not a positive integer`,
        );
      }
    }
    this.maxConnections = limits.maxConnections;
    this.maxPerIp = limits.maxPerIp;
  }

  /** Open connections admitted and not released. */
  get open(): number {
    return this.#open;
  }

  /** Remote addresses with at least one open connection (the size of the per-IP table). */
  get addresses(): number {
    return this.#perIp.size;
  }

  /** Open connections from `ip`. */
  openFrom(ip: string): number {
    return this.#perIp.get(ip) ?? 0;
  }

  /**
   * Counts a new connection from `ip`, or returns the limit it would break
   * (the total is checked first) and counts nothing.
   *
   * @param ip the remote address without port (see {@link remoteIp})
   */
  admit(ip: string): RefusalReason | undefined {
    if (this.#open >= this.maxConnections) return "max_connections";
    const count = this.#perIp.get(ip) ?? 0;
    if (count >= this.maxPerIp) return "max_per_ip";
    this.#perIp.set(ip, count + 1);
    this.#open++;
    return undefined;
  }

  /**
   * A connection admitted from `ip` closed.
   *
   * @returns false (and changes nothing) if `ip` has no open connection
   */
  release(ip: string): boolean {
    const count = this.#perIp.get(ip);
    if (count === undefined) return false;
    if (count <= 1) this.#perIp.delete(ip);
    else this.#perIp.set(ip, count - 1);
    this.#open--;
    return true;
  }
}

const MAPPED_IPV4 = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/;

/**
 * The IP address of a `"host:port"` or `"[ipv6]:port"` remote address, as the
 * key of per-IP accounting: IPv6 without brackets and in lower case, and an
 * IPv4-mapped IPv6 address (`::ffff:a.b.c.d`, a dual-stack listener's view of
 * an IPv4 client) as the plain IPv4 address.
 *
 * @example
 * ```ts
 * import { remoteIp } from "./connection_quota.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(remoteIp("127.0.0.1:50123"), "127.0.0.1");
 * assert.equal(remoteIp("[2001:DB8::1]:443"), "2001:db8::1");
 * assert.equal(remoteIp("[::ffff:10.1.2.3]:8080"), "10.1.2.3");
 * ```
 *
 * @param remote the address as the transport formats it
 */
export function remoteIp(remote: string): string {
  let host: string;
  if (remote.startsWith("[")) {
    const end = remote.indexOf("]");
    host = end < 0 ? remote.slice(1) : remote.slice(1, end);
  } else {
    const colon = remote.lastIndexOf(":");
    // More than one colon without brackets: a bare IPv6 address, no port.
    host = colon < 0 || remote.indexOf(":") !== colon ? remote : remote.slice(0, colon);
  }
  host = host.toLowerCase();
  return MAPPED_IPV4.exec(host)?.[1] ?? host;
}
