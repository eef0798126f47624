/**
 * The UDP books of a broker service: datagrams in and out, and datagrams
 * dropped, counted by reason and logged without flooding the log.
 *
 * @module
 */
import type { Logger } from "@logtape/logtape";
import type { Clock } from "../time/mod.ts";
import { WarningLimiter } from "./_warning_limiter.ts";

/**
 * Why a datagram was dropped:
 * - `too_large`: over the listener's `IN`;
 * - `malformed`: a `bson` datagram that is not one whole document (its int32
 *   length is not the datagram's, or it does not end with 0);
 * - `pending`: its peer already has as many datagrams waiting for handlers as
 *   a socket may (`#flow.socket_pending`);
 * - `max_pending`: the process holds as many queued messages as it may (`#threads`);
 * - `overload`: from a new peer while accepting is paused (`#router`);
 * - `stopped`: from a new peer after `server.stop()` or during shutdown;
 * - `stranger`: to a `broker.join` socket from an address other than its server;
 * - `max_connections`, `max_per_ip`: from a new peer over a connection limit;
 * - `out_queue_full`: committed while `#flow.socket_out_bytes` of output waited;
 * - `send_error`: the operating system refused to send it.
 */
export type UdpDropReason =
  | "too_large"
  | "malformed"
  | "pending"
  | "max_pending"
  | "overload"
  | "stopped"
  | "stranger"
  | "max_connections"
  | "max_per_ip"
  | "out_queue_full"
  | "send_error";

/** Least time between two warnings of one drop reason. */
const WARNING_INTERVAL_MS = 1000;

/** See the module documentation. */
export class UdpDrops {
  /** Datagrams dropped so far, by reason. */
  readonly byReason = new Map<UdpDropReason, number>();
  /** Datagrams received (dropped ones included). */
  datagramsIn = 0;
  /** Datagrams sent. */
  datagramsOut = 0;
  readonly #warnings: WarningLimiter;
  readonly #log: Logger;

  constructor(clock: Clock, log: Logger) {
    this.#warnings = new WarningLimiter(clock, WARNING_INTERVAL_MS);
    this.#log = log;
  }

  /**
   * Counts a dropped datagram and logs it (one warning per reason per second,
   * with the number held back); `warn: false` counts only (the refusal was
   * logged already).
   */
  drop(reason: UdpDropReason, url: string, remote: string, detail: string, warn = true): void {
    this.byReason.set(reason, (this.byReason.get(reason) ?? 0) + 1);
    if (!warn) return;
    const suppressed = this.#warnings.take(reason);
    if (suppressed === undefined) return;
    this.#log.warning(
      "Dropped a datagram {direction} {remote} on {url}: {reason} ({detail}); {suppressed} more dropped for this reason since the last such warning",
      {
        direction: reason === "out_queue_full" || reason === "send_error" ? "to" : "from",
        remote,
        url,
        reason,
        detail,
        suppressed,
      },
    );
  }
}
