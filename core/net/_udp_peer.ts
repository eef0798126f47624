/**
 * One remote address of a UDP socket, as a socket of the broker service: its
 * datagrams become frames (in order, under its socket id), what its script
 * commits becomes datagrams to it, and it is forgotten after `expireMs` of
 * silence, on `socket.close()` or at shutdown. A UDP peer has no connection to
 * lose: nothing tells Stage it went away, so idle expiry is what frees it.
 *
 * @module
 */
import { CloseReason, type CloseReasonCode } from "../pool/wire.ts";
import type { Clock, TimerHandle } from "../time/mod.ts";
import type { BrokerSocket } from "./_broker_socket.ts";
import type { UdpDropReason } from "./_udp_drops.ts";
import type { PayloadCodec } from "./listen_address.ts";

/** What a {@link UdpPeer} reports to the broker service. */
export interface UdpPeerEvents {
  /** A datagram arrived as a frame: `header` and `payload` are valid only during the call. */
  frame(peer: UdpPeer, header: Uint8Array, payload: Uint8Array | undefined): void;
  /** The peer was forgotten (exactly once). */
  closed(peer: UdpPeer, reason: CloseReasonCode, detail: string): void;
}

/** The UDP socket a {@link UdpPeer} belongs to. */
export interface UdpLink {
  /** Sends one datagram to the peer; throws when the system refuses it. */
  send(peer: UdpPeer, datagram: Uint8Array): Promise<void>;
  /** Counts (and logs) a datagram to or from the peer that was dropped. */
  drop(reason: UdpDropReason, peer: UdpPeer, detail: string): void;
  /** The peer ended: take it out of the socket's table. */
  forget(peer: UdpPeer): void;
}

/** Limits and dependencies of a {@link UdpPeer}. */
export interface UdpPeerOptions {
  codec: PayloadCodec;
  /** Datagrams allowed to wait for their handlers; more are dropped (`pending`). */
  maxPendingFrames: number;
  /** Bytes of output allowed to wait for sending; more are dropped (`out_queue_full`). */
  maxQueuedOut: number;
  clock: Clock;
}

/** Scratch for the 4-byte header of json/raw frames (used synchronously). */
const header = new Uint8Array(4);
const headerView = new DataView(header.buffer);

/** See the module documentation. */
export class UdpPeer implements BrokerSocket {
  readonly id: number;
  readonly url: string;
  readonly local: string;
  /** `"ip:port"` or `"[ip6]:port"`. */
  readonly remote: string;
  /** The address datagrams to the peer go to. */
  readonly hostname: string;
  readonly port: number;
  fields: Uint8Array | undefined;
  #link: UdpLink;
  #events: UdpPeerEvents;
  #options: UdpPeerOptions;
  #pending = 0;
  #out: Uint8Array[] = [];
  #outBytes = 0;
  #sending = false;
  #closeAfterFlush = false;
  #ended = false;
  #lastInput: number;
  #expireMs = 0;
  #expireTimer: TimerHandle | undefined;
  #commitMs = 0;
  #commitTimer: TimerHandle | undefined;
  #bytesIn = 0;
  #bytesOut = 0;

  constructor(
    id: number,
    where: { url: string; local: string; remote: string; hostname: string; port: number },
    link: UdpLink,
    events: UdpPeerEvents,
    options: UdpPeerOptions,
  ) {
    this.id = id;
    this.url = where.url;
    this.local = where.local;
    this.remote = where.remote;
    this.hostname = where.hostname;
    this.port = where.port;
    this.#link = link;
    this.#events = events;
    this.#options = options;
    this.#lastInput = options.clock.now();
  }

  get ended(): boolean {
    return this.#ended;
  }

  get pendingFrames(): number {
    return this.#pending;
  }

  get queuedOutBytes(): number {
    return this.#outBytes;
  }

  get bytesIn(): number {
    return this.#bytesIn;
  }

  get bytesOut(): number {
    return this.#bytesOut;
  }

  /**
   * A datagram from the peer (already checked against `IN` and, for bson, as a
   * document): hands it on as a frame, or returns false when the peer already
   * has its share of frames waiting (the caller drops it).
   */
  receive(datagram: Uint8Array): boolean {
    if (this.#ended) return false;
    if (this.#pending >= this.#options.maxPendingFrames) return false;
    this.#pending++;
    this.#bytesIn += datagram.length;
    this.#lastInput = this.#options.clock.now();
    if (this.#options.codec === "bson") {
      this.#events.frame(this, datagram, undefined); // a BSON document is a frame as it stands
    } else {
      headerView.setInt32(0, datagram.length + 4, true);
      this.#events.frame(this, header, datagram);
    }
    return true;
  }

  frameDone(): void {
    if (this.#pending > 0) this.#pending--;
  }

  set expireMs(ms: number) {
    this.#expireMs = ms;
    this.#expireTimer?.cancel();
    this.#expireTimer = undefined;
    if (ms > 0 && !this.#ended) this.#armExpiry(ms);
  }

  get expireMs(): number {
    return this.#expireMs;
  }

  set commitMs(ms: number) {
    this.#commitMs = ms;
  }

  get commitMs(): number {
    return this.#commitMs;
  }

  /** Queues a committed frame as one datagram (a json/raw frame's header is not sent). */
  queue(frame: Uint8Array): void {
    if (this.#ended || this.#closeAfterFlush) return;
    const datagram = this.#options.codec === "bson" ? frame : frame.subarray(4);
    if (this.#outBytes + datagram.length > this.#options.maxQueuedOut) {
      this.#link.drop(
        "out_queue_full",
        this,
        `${this.#outBytes} bytes already wait to be sent, the limit is ${this.#options.maxQueuedOut}`,
      );
      return;
    }
    this.#out.push(datagram);
    this.#outBytes += datagram.length;
  }

  flush(): void {
    if (this.#ended || this.#out.length === 0 || this.#sending) return;
    if (this.#commitMs > 0) {
      this.#commitTimer ??= this.#options.clock.setTimeout(() => {
        this.#commitTimer = undefined;
        this.#startSending();
      }, this.#commitMs);
      return;
    }
    this.#startSending();
  }

  closeAfterFlush(): void {
    if (this.#ended) return;
    this.#closeAfterFlush = true;
    if (this.#sending) return;
    if (this.#out.length > 0) this.#startSending();
    else this.close(CloseReason.Script, "");
  }

  close(reason: CloseReasonCode, detail: string): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#expireTimer?.cancel();
    this.#commitTimer?.cancel();
    this.#expireTimer = undefined;
    this.#commitTimer = undefined;
    this.#out = [];
    this.#outBytes = 0;
    this.#link.forget(this);
    this.#events.closed(this, reason, detail);
  }

  async drained(): Promise<void> {
    while (!this.#ended && (this.#sending || this.#out.length > 0)) {
      if (!this.#sending) this.#startSending();
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
  }

  #startSending(): void {
    if (this.#sending || this.#ended) return;
    this.#sending = true;
    this.#sendQueued().finally(() => {
      this.#sending = false;
      if (this.#ended) return;
      // Queued and flushed while the last send was in flight.
      if (this.#out.length > 0 && (this.#commitMs === 0 || this.#closeAfterFlush)) {
        this.#startSending();
      } else if (this.#closeAfterFlush) this.close(CloseReason.Script, "");
    });
  }

  async #sendQueued(): Promise<void> {
    while (this.#out.length > 0 && !this.#ended) {
      const batch = this.#out;
      this.#out = [];
      for (const datagram of batch) {
        if (this.#ended) return;
        this.#outBytes -= datagram.length;
        try {
          await this.#link.send(this, datagram);
          this.#bytesOut += datagram.length;
        } catch (error) {
          const detail = error instanceof Error ? error.message : String(error);
          this.#link.drop("send_error", this, detail);
        }
      }
    }
  }

  #armExpiry(ms: number): void {
    const idle = this.#options.clock.now() - this.#lastInput;
    this.#expireTimer = this.#options.clock.setTimeout(() => {
      this.#expireTimer = undefined;
      if (this.#ended || this.#expireMs !== ms) return;
      const quiet = this.#options.clock.now() - this.#lastInput;
      if (quiet >= ms) this.close(CloseReason.Expired, `no datagram for ${Math.round(quiet)} ms`);
      else this.#armExpiry(ms);
    }, Math.max(0, ms - idle));
  }
}
