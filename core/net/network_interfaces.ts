/**
 * The runtime adapter behind `broker.ifaddr()`: the only place that calls
 * `Deno.networkInterfaces`. It runs on the main thread, which answers workers
 * (they usually lack the `sys` permission it needs).
 *
 * @module
 */
import type { InterfaceAddress } from "../pool/wire.ts";

/** Lists the machine's interface addresses. */
export type NetworkInterfaces = () => InterfaceAddress[];

/**
 * The machine's interface addresses, as plain data.
 *
 * @throws Deno.errors.NotCapable (or PermissionDenied) without `--allow-sys=networkInterfaces`
 * @example
 * ```ts
 * import { denoNetworkInterfaces } from "./network_interfaces.ts";
 * const loopback = denoNetworkInterfaces().find((entry) => entry.address === "127.0.0.1");
 * if (loopback !== undefined && loopback.family !== "IPv4") throw new Error("family");
 * ```
 */
export const denoNetworkInterfaces: NetworkInterfaces = () =>
  Deno.networkInterfaces().map((entry) => ({
    name: entry.name,
    family: entry.family,
    address: entry.address,
    netmask: entry.netmask,
    cidr: entry.cidr,
    scopeid: entry.scopeid ?? 0,
    mac: entry.mac,
  }));
