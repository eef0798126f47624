/**
 * The limits of the broker service and their mapping from the `#flow`
 * config section.
 *
 * @module
 */
import type { FlowConfig } from "../config/mod.ts";

/** Limits of the broker service (see `BrokerService`). */
export interface BrokerLimits {
  /** Frames of one socket waiting for handlers before its reading pauses. */
  maxPendingFramesPerSocket: number;
  /** Output bytes queued for one socket before it is closed as a slow reader. */
  maxQueuedOutBytes: number;
  /** Per-socket read budget per scheduling round: the size of its read buffer. */
  readBufferBytes: number;
  /**
   * Open accepted sockets (outgoing `broker.join` sockets are not counted);
   * a connection over it is closed at once and counted as `max_connections`.
   */
  maxConnections: number;
  /**
   * Open accepted sockets per remote IP address; a connection over it is
   * closed at once and counted as `max_per_ip`.
   */
  maxPerIp: number;
  /**
   * Once a frame's first byte arrived, the whole frame must arrive within this
   * many ms, else the socket closes with `frame_deadline`; 0 = no deadline.
   */
  frameDeadlineMs: number;
}

/**
 * Default {@link BrokerLimits}: the `#flow` defaults.
 *
 * @example
 * ```ts
 * import { defaultBrokerLimits } from "./broker_limits.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(defaultBrokerLimits.maxPerIp, 1000);
 * assert.equal(defaultBrokerLimits.frameDeadlineMs, 10_000);
 * ```
 */
export const defaultBrokerLimits: BrokerLimits = {
  maxPendingFramesPerSocket: 256,
  maxQueuedOutBytes: 16 * 1024 * 1024,
  readBufferBytes: 64 * 1024,
  maxConnections: 100_000,
  maxPerIp: 1000,
  frameDeadlineMs: 10_000,
};

/**
 * The broker limits a `#flow` section sets (`slice_ms` and `hard_limit_ms`
 * belong to the watchdog and are not among them).
 *
 * @example
 * ```ts
 * import { brokerLimitsFromFlow } from "./broker_limits.ts";
 * import { parseConfig } from "../config/mod.ts";
 * import assert from "node:assert/strict";
 *
 * const config = parseConfig(`{ "#flow": { "max_per_ip": 20 } }`, "/srv/config/stage.json");
 * const limits = brokerLimitsFromFlow(config.flow);
 * assert.equal(limits.maxPerIp, 20);
 * assert.equal(limits.readBufferBytes, 65536);
 * ```
 *
 * @param flow the normalised `#flow` section
 * @returns a new limits object
 */
export function brokerLimitsFromFlow(flow: FlowConfig): BrokerLimits {
  return {
    maxPendingFramesPerSocket: flow.socketPending,
    maxQueuedOutBytes: flow.socketOutBytes,
    readBufferBytes: flow.readBytes,
    maxConnections: flow.maxConnections,
    maxPerIp: flow.maxPerIp,
    frameDeadlineMs: flow.frameDeadlineMs,
  };
}
