/**
 * The broker service's books on sockets: connection limits per process and per
 * remote IP, refusals and closes counted by reason, bytes of closed sockets,
 * and the (rate-limited) warnings about them.
 *
 * @module
 */
import type { Logger } from "@logtape/logtape";
import { CloseReason, type CloseReasonCode, closeReasonNames } from "../pool/wire.ts";
import type { Clock } from "../time/mod.ts";
import { WarningLimiter } from "./_warning_limiter.ts";
import { type ConnectionQuota, type RefusalReason, remoteIp } from "./connection_quota.ts";

/** Least time between two warnings of one kind about refused or deadline-closed sockets. */
const WARNING_INTERVAL_MS = 1000;

/** What the ledger needs to know of a closing socket. */
export interface ClosingSocket {
  readonly id: number;
  readonly remote: string;
  readonly bytesIn: number;
  readonly bytesOut: number;
}

/** Counts and limits; see the module documentation. */
export class SocketLedger {
  readonly closedByReason = new Map<string, number>();
  readonly refusedByReason = new Map<RefusalReason, number>();
  closedBytesIn = 0;
  closedBytesOut = 0;
  #quota: ConnectionQuota;
  /** Accepted sockets → the remote IP their quota slot is counted under. */
  #inboundIp = new Map<number, string>();
  #warnings: WarningLimiter;
  #log: Logger;

  constructor(quota: ConnectionQuota, clock: Clock, log: Logger) {
    this.#quota = quota;
    this.#warnings = new WarningLimiter(clock, WARNING_INTERVAL_MS);
    this.#log = log;
  }

  /** Accepted sockets counted against the limits now. */
  get inbound(): number {
    return this.#inboundIp.size;
  }

  /** Remote addresses with open sockets now. */
  get addresses(): number {
    return this.#quota.addresses;
  }

  /**
   * Counts an accepted connection from `remote` against the limits; returns the
   * limit it would break (then it was not counted, and the refusal is logged).
   */
  admit(remote: string, url: string): RefusalReason | undefined {
    const ip = remoteIp(remote);
    const refusal = this.#quota.admit(ip);
    if (refusal === undefined) return undefined;
    this.refusedByReason.set(refusal, (this.refusedByReason.get(refusal) ?? 0) + 1);
    const suppressed = this.#warnings.take(refusal);
    if (suppressed !== undefined) {
      const limit = refusal === "max_connections"
        ? this.#quota.maxConnections
        : this.#quota.maxPerIp;
      this.#log.warning(
        "Refused a connection from {remote} on {url}: {reason} ({limit}) reached; {suppressed} more refused since the last such warning",
        { remote, url, reason: refusal, limit, suppressed },
      );
    }
    return refusal;
  }

  /**
   * The connection from `remote` just admitted got socket id `id`; its slot is
   * released when it closes (recorded before the socket opens: every close path
   * comes through {@link closed}).
   */
  opened(id: number, remote: string): void {
    this.#inboundIp.set(id, remoteIp(remote));
  }

  /** Socket `socket` closed: release its slot, count and (for abnormal reasons) log it. */
  closed(socket: ClosingSocket, reason: CloseReasonCode, detail: string): void {
    const id = socket.id;
    this.closedBytesIn += socket.bytesIn;
    this.closedBytesOut += socket.bytesOut;
    const ip = this.#inboundIp.get(id);
    if (ip !== undefined) {
      this.#inboundIp.delete(id);
      this.#quota.release(ip);
    }
    const name = closeReasonNames[reason];
    this.closedByReason.set(name, (this.closedByReason.get(name) ?? 0) + 1);
    if (reason === CloseReason.FrameDeadline) {
      // Slowloris comes in crowds: one line per second, with the count held back.
      const suppressed = this.#warnings.take(name);
      if (suppressed !== undefined) {
        this.#log.warning(
          "Socket {id} ({remote}) closed: {reason} {detail} ({suppressed} more since the last such warning)",
          { id, remote: socket.remote, reason: name, detail, suppressed },
        );
      }
    } else if (
      reason !== CloseReason.Peer && reason !== CloseReason.Script &&
      reason !== CloseReason.Shutdown && reason !== CloseReason.Expired
    ) {
      this.#log.warning("Socket {id} ({remote}) closed: {reason} {detail}", {
        id,
        remote: socket.remote,
        reason: name,
        detail,
      });
    }
  }
}
