/**
 * The hub of the local bus: the processes of one machine connect to it (the
 * supervisor runs it), tell it which stages they serve, and send it messages
 * addressed to one another. The hub keeps the membership every process routes
 * by, forwards messages, answers for endpoints that are gone, and keeps the
 * machine's ordering locks.
 *
 * Routing decisions (which instance takes a message) are made by the sending
 * process ({@link ProcessBus}); the hub only moves frames.
 *
 * @module
 */
import type { Logger } from "@logtape/logtape";
import { packValues, toErrorRecord } from "../message/mod.ts";
import { decodeSignalHeader, encodeSignal, replyHeader } from "../pool/wire.ts";
import type { Clock } from "../time/mod.ts";
import {
  BusFrame,
  decodeFrame,
  encodeControl,
  encodeMessage,
  type EndpointInfo,
} from "./bus_frames.ts";
import { BusLocks } from "./bus_locks.ts";
import { type BusConnection, type BusListener, framedConnection, listenBus } from "./bus_socket.ts";

interface Peer {
  connection: BusConnection;
  info?: EndpointInfo;
}

/** Options of {@link BusHub.start}. */
export interface BusHubOptions {
  clock: Clock;
  log: Logger;
  /** An endpoint reported that every stage of its process started (each time it does). */
  onReady?(endpoint: string): void;
}

/** The local bus's hub. */
export class BusHub implements AsyncDisposable {
  #listener: BusListener | undefined;
  #peers = new Set<Peer>();
  #byEndpoint = new Map<string, Peer>();
  #locks: BusLocks;
  #log: Logger;
  #onReady: (endpoint: string) => void;

  private constructor(options: BusHubOptions) {
    this.#log = options.log;
    this.#onReady = options.onReady ?? (() => {});
    this.#locks = new BusLocks(options.clock, options.log, (owner, _header, body) => {
      this.#deliver(owner.at, body);
    });
  }

  /** Listens on a fresh owner-only socket (see {@link BusHub.path}). */
  static async start(options: BusHubOptions): Promise<BusHub> {
    const hub = new BusHub(options);
    hub.#listener = await listenBus((conn) => hub.#accept(conn));
    return hub;
  }

  /** The socket file processes connect to. */
  get path(): string {
    return this.#listener!.path;
  }

  /** The endpoints connected now. */
  get members(): EndpointInfo[] {
    return [...this.#byEndpoint.values()].map((peer) => peer.info!);
  }

  /** Stops listening, closes every connection and the lock timers. */
  async close(): Promise<void> {
    await this.#listener?.close();
    for (const peer of this.#peers) peer.connection.close();
    this.#locks.close();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #accept(conn: Deno.Conn): void {
    const peer: Peer = {
      connection: framedConnection(
        conn,
        (payload) => this.#frame(peer, payload),
        (error) => {
          // A process that exits resets its connection: its departure is logged on close.
          if (error instanceof Deno.errors.ConnectionReset) return;
          this.#log.warning("Bus connection failed: {error}", { error });
        },
      ),
    };
    this.#peers.add(peer);
    peer.connection.closed.then(() => {
      this.#peers.delete(peer);
      const endpoint = peer.info?.endpoint;
      if (endpoint !== undefined && this.#byEndpoint.get(endpoint) === peer) {
        this.#byEndpoint.delete(endpoint);
        this.#log.info("Bus endpoint {endpoint} left", { endpoint });
        this.#announce();
      }
    });
  }

  #frame(peer: Peer, payload: Uint8Array): void {
    let frame;
    try {
      frame = decodeFrame(payload);
    } catch (error) {
      this.#log.error("Bad frame from bus endpoint {endpoint}: {error}; closing it", {
        endpoint: peer.info?.endpoint ?? "(no hello yet)",
        error,
      });
      peer.connection.close();
      return;
    }
    if (peer.info === undefined && frame.type !== BusFrame.Hello) {
      this.#log.error("Bus connection sent a frame before its hello; closing it");
      peer.connection.close();
      return;
    }
    switch (frame.type) {
      case BusFrame.Hello:
      case BusFrame.Update: {
        const known = this.#byEndpoint.get(frame.info.endpoint);
        if (known !== undefined && known !== peer) {
          // A restarted process reconnects under its old name before the old link is seen closed.
          known.connection.close();
        }
        if (frame.type === BusFrame.Hello) {
          this.#log.info("Bus endpoint {endpoint} joined with stages {stages}", {
            endpoint: frame.info.endpoint,
            stages: frame.info.stages.join(", "),
          });
        }
        const wasStarting = peer.info === undefined || peer.info.state === "starting";
        peer.info = frame.info;
        this.#byEndpoint.set(frame.info.endpoint, peer);
        this.#announce();
        const up = frame.info.state === "ready" || frame.info.state === "overloaded";
        if (wasStarting && up) this.#onReady(frame.info.endpoint);
        return;
      }
      case BusFrame.Send:
        this.#deliver(frame.target, frame.message);
        return;
      case BusFrame.Lock: {
        const { header, values } = decodeSignalHeader(frame.message);
        if (header.lock !== undefined) this.#locks.handle(header, values);
        return;
      }
      default:
        this.#log.error("Bus endpoint {endpoint} sent frame type {type}", {
          endpoint: peer.info?.endpoint,
          type: frame.type,
        });
    }
  }

  /**
   * Forwards a stage message to an endpoint. When that endpoint is gone, a
   * message its sender only chose by round robin goes to another instance;
   * anything else is answered with an error (when its sender waits for one).
   */
  #deliver(target: string | undefined, message: Uint8Array): void {
    let peer = target === undefined ? undefined : this.#byEndpoint.get(target);
    const header = peer === undefined ? decodeSignalHeader(message).header : undefined;
    if (
      header !== undefined && header.to === undefined && header.worker === undefined &&
      header.scope !== "all"
    ) {
      const others = [...this.#byEndpoint.values()].filter((p) =>
        p.info!.stages.includes(header.stage)
      );
      peer = others.find((p) => p.info!.state === "ready") ?? others[0];
    }
    if (peer !== undefined) {
      peer.connection.send(encodeMessage(BusFrame.Deliver, message));
      return;
    }
    if (header === undefined) return;
    this.#log.warning("Message {message} for {stage} not delivered: endpoint {target} is gone", {
      message: header.message,
      stage: header.stage,
      target,
    });
    const reply = header.reply;
    if (reply === undefined || header.error || reply.at === undefined) return;
    const back = this.#byEndpoint.get(reply.at);
    if (back === undefined) return;
    const error = toErrorRecord(Object.assign(
      new Error(
        `Undeliverable: the process ${target} serving stage "${header.stage}" is gone`,
      ),
      { name: "StageNotFoundError" },
    ));
    const errorHeader = replyHeader(reply, { stage: header.stage, worker: -1 }, true);
    back.connection.send(
      encodeMessage(BusFrame.Deliver, encodeSignal(errorHeader, packValues([error]).bytes)),
    );
  }

  #announce(): void {
    const frame = encodeControl(BusFrame.Membership, this.members);
    for (const peer of this.#byEndpoint.values()) peer.connection.send(frame);
  }
}
