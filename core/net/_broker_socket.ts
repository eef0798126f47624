/**
 * What the broker service needs of a socket, whatever carries it: a framed
 * stream (`Connection`: tcp://, ws://) or a UDP peer (`UdpPeer`).
 *
 * @module
 */
import type { CloseReasonCode } from "../pool/wire.ts";

/** A socket of the broker service; see the module documentation. */
export interface BrokerSocket {
  readonly id: number;
  /** The listen (or join) URL the socket belongs to. */
  readonly url: string;
  readonly local: string;
  readonly remote: string;
  /** Frames dispatched and not yet finished by their handlers. */
  readonly pendingFrames: number;
  /** Committed bytes not yet written. */
  readonly queuedOutBytes: number;
  readonly bytesIn: number;
  readonly bytesOut: number;
  /** The user fields as last synced by the socket's worker (v8-serialized). */
  fields: Uint8Array | undefined;
  /** Idle timeout in ms (0 = none). */
  expireMs: number;
  /** Flush cadence in ms (0 = once per scheduling turn). */
  commitMs: number;
  /** Queues a committed frame (header included) for the next flush. */
  queue(frame: Uint8Array): void;
  /** Writes what is queued, now or on the `commitMs` cadence. */
  flush(): void;
  /** A handler finished one of the socket's frames. */
  frameDone(): void;
  /** Closes once everything queued so far is written (a script's `socket.close()`). */
  closeAfterFlush(): void;
  /** Closes now, discarding unwritten output. */
  close(reason: CloseReasonCode, detail: string): void;
  /** Resolves once the queued output is written (or the socket ended). */
  drained(): Promise<void>;
}
