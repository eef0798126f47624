/**
 * The in-process bus: routes stage messages between the script stages of this
 * process. The multi-process issue puts other transports (local socket bus, NATS)
 * behind the same {@link Bus} interface without touching script-facing code.
 *
 * @module
 */
import type { Logger } from "@logtape/logtape";
import { toErrorRecord } from "../message/mod.ts";
import { BusLocks } from "./bus_locks.ts";
import type { EndpointInfo, EndpointState } from "./bus_frames.ts";
import type { Clock } from "../time/mod.ts";
import { packValues } from "../message/mod.ts";
import { decodeSignalHeader, encodeSignal, replyHeader, type SignalHeader } from "../pool/wire.ts";

/** A stage that can take messages. */
export interface BusMember {
  readonly id: string;
  /** Delivers an encoded stage message to one of the stage's workers. */
  deliver(header: SignalHeader, body: Uint8Array): void;
}

/** How a process's bus routes: where this process is, and the other processes it knows. */
export interface BusView {
  /** This process's endpoint (`node/group`; `"local"` for a process alone). */
  endpoint: string;
  node: string;
  state: EndpointState;
  /** The stages served here (replies-only members such as `#caller` left out). */
  stages: string[];
  /** The other processes (this machine's and, with `#cluster`, other machines'). */
  peers: EndpointInfo[];
}

/** Moves stage messages to the stages they address. */
export interface Bus {
  join(member: BusMember): void;
  leave(id: string): void;
  /** Routes an encoded stage message (see `encodeSignal`). */
  route(body: Uint8Array): void;
  /** While true this process takes no routed work from peers (it is overloaded). */
  detached: boolean;
  /** Every stage of the process started: peers may route work to it. */
  ready?(): void;
  /** Takes no new routed work from peers from now on (shutdown); replies still arrive. */
  drain?(): void;
  /** Releases what the bus holds (lock timers, its link to other processes). */
  close(): void;
  /** The routing view (for the admin API's `/routes`). */
  view(): BusView;
}

/**
 * The bus of one process: every instance lives here, so `=` (this server) reaches
 * them and `+` (other servers) reaches none.
 */
export class LocalBus implements Bus {
  /**
   * Set while the process is overloaded: peers should route it no work. In one
   * process there are no peers; the multi-process bus publishes this state.
   */
  detached = false;
  #members = new Map<string, BusMember>();
  #log: Logger;
  #locks: BusLocks;

  constructor(log: Logger, clock: Clock) {
    this.#log = log;
    this.#locks = new BusLocks(clock, log, (owner, header, body) => {
      this.#members.get(owner.stage)?.deliver(header, body);
    });
  }

  /** Stops lock expiry timers. */
  close(): void {
    this.#locks.close();
  }

  join(member: BusMember): void {
    this.#members.set(member.id, member);
  }

  view(): BusView {
    return {
      endpoint: "local",
      node: "local",
      state: this.detached ? "overloaded" : "ready",
      stages: [...this.#members.keys()].filter((id) => !id.startsWith("#")),
      peers: [],
    };
  }

  leave(id: string): void {
    this.#members.delete(id);
  }

  route(body: Uint8Array): void {
    const { header, values } = decodeSignalHeader(body);
    if (header.lock !== undefined) {
      this.#locks.handle(header, values);
      return;
    }
    const member = header.scope === "remote" ? undefined : this.#members.get(header.stage);
    if (member !== undefined) {
      member.deliver(header, body);
      return;
    }
    const why = header.scope === "remote"
      ? `no instance of stage "${header.stage}" on other servers (this process is alone)`
      : `no stage "${header.stage}" in this process`;
    this.#log.warning("Message {message} from {from} not delivered: {why}", {
      message: header.message,
      from: header.from.stage,
      why,
    });
    // A sender waiting for a reply learns at once instead of timing out.
    const reply = header.reply;
    const back = reply === undefined || header.error ? undefined : this.#members.get(reply.stage);
    if (reply === undefined || back === undefined) return;
    const error = toErrorRecord(Object.assign(new Error(`Undeliverable: ${why}`), {
      name: "StageNotFoundError",
    }));
    const errorHeader = replyHeader(reply, { stage: header.stage, worker: -1 }, true);
    back.deliver(errorHeader, encodeSignal(errorHeader, packValues([error]).bytes));
  }
}
