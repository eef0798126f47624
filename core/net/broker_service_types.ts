/**
 * The shapes at the broker service's edges: what it depends on (the stage's
 * scheduler, the worker pool, the transports) and what it reports.
 *
 * @module
 */
import type { Logger } from "@logtape/logtape";
import type { MainControl } from "../pool/wire.ts";
import type { Clock } from "../time/mod.ts";
import type { BrokerLimits } from "./broker_limits.ts";
import type { ConnectionQuota } from "./connection_quota.ts";
import type { FlowGate } from "./flow_gate.ts";
import type { DatagramTransport, Transport } from "./transport.ts";

/**
 * Which worker is a socket's home (the stage's scheduler). A socket's home may
 * change when its worker is stuck or lost; the scheduler moves it.
 */
export interface SocketHomes {
  /** Gives socket `id` a home (`worker`, or the best eligible one) and returns it. */
  bind(id: number, eligible?: (worker: number) => boolean, worker?: number): number;
  /** The socket's current home. */
  workerOf(id: number): number | undefined;
  /** The socket closed (its records already queued still run, the Closed one last). */
  unbind(id: number): void;
}

/** Where the broker service sends records and control messages (the worker pool). */
export interface WorkerSink {
  send(
    worker: number,
    tag: number,
    a: number,
    b: number,
    body?: Uint8Array,
    body2?: Uint8Array,
  ): void;
  post(worker: number, message: MainControl): void;
}

/** What `BrokerService.sockets` reports per socket. */
export interface SocketInfo {
  id: number;
  url: string;
  remote: string;
  /** The worker that owns the socket's state. */
  home: number | undefined;
  /** Frames waiting for their handlers. */
  pendingFrames: number;
  /** Committed bytes not yet written. */
  queuedOutBytes: number;
  bytesIn: number;
  bytesOut: number;
}

/** Sizes of a `BrokerService`'s per-socket tables (all 0 once every socket closed). */
export interface BrokerRegistrySizes {
  /** Open sockets. */
  connections: number;
  /** Sockets with output waiting for the end of the turn. */
  dirty: number;
  /** Accepted sockets holding a slot of the connection quota. */
  inbound: number;
  /** Remote addresses in the quota's per-IP table (the shared table, if the quota is shared). */
  perIp: number;
}

/** Dependencies of a `BrokerService`. */
export interface BrokerServiceOptions {
  stageId: string;
  transport: Transport;
  workers: WorkerSink;
  scheduler: SocketHomes;
  clock: Clock;
  log: Logger;
  limits?: Partial<BrokerLimits>;
  /**
   * Open-connection accounting shared with the process's other broker services,
   * so `#flow.max_connections` and `max_per_ip` bound the process; its limits
   * then replace `limits.maxConnections` and `maxPerIp`. Default: a quota of
   * this service's own.
   */
  quota?: ConnectionQuota;
  /** The process's input gate (the `#threads` bound and overload read budgets). */
  gate?: FlowGate;
  /**
   * `#services` TCP addresses: listening on one of them shares the port with
   * the other processes that do (SO_REUSEPORT); any other address is exclusive.
   */
  sharedAddresses?: readonly string[];
  /** UDP sockets for `udp://` addresses (default: Deno's, which needs `--unstable-net`). */
  datagrams?: DatagramTransport;
}
