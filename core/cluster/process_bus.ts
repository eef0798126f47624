/**
 * The bus of one process among several on a machine: stages of this process
 * are delivered to directly, stages elsewhere through the local {@link BusHub}.
 * It implements every target form across processes:
 *
 * - `one` (`"stage:msg"`): round robin over every instance of the stage, here
 *   and in the other processes, skipping processes that are overloaded or
 *   draining (unless no other instance is left);
 * - `all` (`"*stage:msg"`): this process's instance and every other one;
 * - `local` (`"=stage:msg"`): like `one`, among the instances on this machine
 *   (the hub connects one machine, so that is all of them);
 * - `remote` (`"+stage:msg"`): like `one`, among other machines' (none here);
 * - replies and exact deliveries (`to`): to the process that asked;
 * - ordering locks: the hub keeps them (machine-wide), or with `#cluster` the
 *   cluster's lock keeper ({@link ClusterLocks}: cluster-wide).
 *
 * A message that leaves the process is stamped with where it came from
 * (`from.at`, `reply.at`), so answers find their way back. A message nobody
 * can take is answered with a `StageNotFoundError` (or `BusUnavailableError`
 * once the hub is gone) when its sender waits for a reply.
 *
 * @module
 */
import type { Logger } from "@logtape/logtape";
import { carriesCode, packValues, toErrorRecord } from "../message/mod.ts";
import {
  decodeSignalHeader,
  encodeSignal,
  type ReplyAddress,
  replyHeader,
  type SignalHeader,
} from "../pool/wire.ts";
import {
  BusFrame,
  decodeFrame,
  encodeControl,
  encodeMessage,
  type EndpointInfo,
  type EndpointLoad,
  type EndpointState,
} from "./bus_frames.ts";
import { type BusConnection, connectBus, framedConnection } from "./bus_socket.ts";
import type { Bus, BusMember, BusView } from "./local_bus.ts";
import { ClusterLocks } from "./cluster_locks.ts";
import type { NatsLink } from "./nats_link.ts";
import { NatsPeers } from "./nats_peers.ts";
import type { Clock } from "../time/mod.ts";

/** Unanswered requests kept before the oldest are checked for age. */
const AWAITING_PRUNE_SIZE = 10_000;
/** How long an unanswered request to another process is remembered. */
const AWAITING_MAX_AGE_MS = 10 * 60_000;

/** Options of {@link ProcessBus.connect}. */
export interface ProcessBusOptions {
  /** The hub's socket file. */
  path: string;
  /** This process's node name (its machine). */
  node: string;
  /** This process's endpoint name, unique on the bus (`node/group`). */
  endpoint: string;
  log: Logger;
  /** Other machines, over NATS (`#cluster`); absent: this machine only. */
  nats?: {
    link: NatsLink;
    /** `#cluster.backup`: serves stage ids that have no live member in the primary cluster. */
    backup?: NatsLink;
    clock: Clock;
    /** Accept functions in messages from other machines (`#cluster.allowRemoteCode`). */
    allowRemoteCode: boolean;
    heartbeatMs?: number;
  };
  /** This process's load, for the heartbeats (default: none sent). */
  load?: () => EndpointLoad;
}

/** The error a sender gets when another machine refuses the code it sent. */
export const REMOTE_CODE_REFUSED = "RemoteCodeRefusedError";

/** A process's end of the local bus. */
export class ProcessBus implements Bus, AsyncDisposable {
  readonly endpoint: string;
  readonly node: string;
  #members = new Map<string, BusMember>();
  #connection: BusConnection;
  /** {@link ProcessBus.peers} with other machines, kept while neither list changes. */
  #allPeers:
    | { hub: readonly EndpointInfo[]; remote: EndpointInfo[]; all: EndpointInfo[] }
    | undefined;
  /** Other machines: the primary cluster's, then the backup cluster's. */
  #remotes: { peers: NatsPeers; link: NatsLink }[] = [];
  #allowRemoteCode = false;
  /** With `#cluster`: the cluster's ordering locks, and since when this process can keep them. */
  #locks: ClusterLocks | undefined;
  #lockKeeperSince: number | undefined;
  #log: Logger;
  #peers: EndpointInfo[] = [];
  #cursors = new Map<string, number>();
  #state: EndpointState = "starting";
  #admin: string | undefined;
  /** Overloaded (the flow monitor's verdict), whatever the lifecycle state. */
  #overloaded = false;
  #open = true;
  /**
   * Requests sent to other processes and not answered yet: reply key → the
   * endpoint that has them, so they fail at once when it dies (not at their timeout).
   */
  #awaiting = new Map<
    string,
    { endpoint: string; reply: ReplyAddress; message: string; at: number }
  >();

  private constructor(options: ProcessBusOptions, conn: Deno.Conn) {
    this.endpoint = options.endpoint;
    this.node = options.node;
    this.#log = options.log;
    this.#connection = framedConnection(
      conn,
      (payload) => this.#frame(payload),
      (error) => this.#log.warning("Bus link failed: {error}", { error }),
    );
    this.#connection.closed.then(() => {
      if (!this.#open) return;
      this.#open = false;
      this.#peers = [];
      this.#locks?.refresh();
      this.#log.error(
        "Lost the local bus (hub {path}): messages to other processes fail until restart",
        { path: options.path },
      );
    });
  }

  /** Connects to the hub (and NATS, when configured) and says hello. */
  static async connect(options: ProcessBusOptions): Promise<ProcessBus> {
    const bus = new ProcessBus(options, await connectBus(options.path));
    const nats = options.nats;
    if (nats !== undefined) {
      bus.#allowRemoteCode = nats.allowRemoteCode;
      bus.#lockKeeperSince = nats.clock.wallNow();
      for (const link of nats.backup === undefined ? [nats.link] : [nats.link, nats.backup]) {
        const peers = NatsPeers.start({
          link,
          endpoint: options.endpoint,
          node: options.node,
          clock: nats.clock,
          log: options.log,
          ...(nats.heartbeatMs === undefined ? {} : { heartbeatMs: nats.heartbeatMs }),
          onMessage: (message) => bus.#arrived(message, true),
          onGone: (gone) => {
            bus.#failAwaiting(gone);
            bus.#locks?.gone(gone);
          },
          onChange: () => bus.#locks?.refresh(),
          ...(options.load === undefined ? {} : { load: options.load }),
        });
        bus.#remotes.push({ peers, link });
      }
      bus.#locks = new ClusterLocks({
        endpoint: options.endpoint,
        clock: nats.clock,
        log: options.log,
        members: () => [bus.#info(), ...bus.peers],
        send: (endpoint, message) => bus.#sendTo(endpoint, message),
        deliver: (header, body) => {
          const member = bus.#members.get(header.stage);
          if (member !== undefined) member.deliver(header, body);
          else bus.#undeliverable(header, `no stage "${header.stage}" in this process`);
        },
      });
    }
    bus.#connection.send(encodeControl(BusFrame.Hello, bus.#info()));
    for (const remote of bus.#remotes) remote.peers.announce(bus.#info());
    return bus;
  }

  /** With `#cluster`: who keeps the cluster's ordering locks, and (on the keeper) their state. */
  get locks(): Pick<ClusterLocks, "keeper" | "inspect"> | undefined {
    return this.#locks;
  }

  /** While true this process takes no routed work from the others (overloaded). */
  get detached(): boolean {
    return this.#overloaded;
  }

  set detached(value: boolean) {
    if (value === this.#overloaded) return;
    this.#overloaded = value;
    if (this.#state === "ready" || this.#state === "overloaded") {
      this.#state = value ? "overloaded" : "ready";
      this.#update();
    }
  }

  /** Announces where this process's admin API listens (see {@link EndpointInfo.admin}). */
  set admin(address: string | undefined) {
    this.#admin = address;
    this.#update();
  }

  /** Where this process's admin API listens, if it was announced. */
  get admin(): string | undefined {
    return this.#admin;
  }

  /** The routing view: this endpoint, its stages and state, and its peers. */
  view(): BusView {
    return {
      endpoint: this.endpoint,
      node: this.node,
      state: this.#state,
      stages: this.#info().stages,
      peers: this.peers.filter((peer) => peer.endpoint !== this.endpoint).map((peer) => ({
        ...peer,
      })),
    };
  }

  /** Every stage of this process started: it takes routed work (unless overloaded). */
  ready(): void {
    if (this.#state !== "starting") return;
    this.#state = this.#overloaded ? "overloaded" : "ready";
    this.#update();
  }

  /** Takes no new routed work from now on (shutdown); replies still arrive. */
  drain(): void {
    this.#state = "draining";
    this.#update();
  }

  /**
   * The other processes on the bus: this machine's (from the hub) and other
   * machines' in the primary cluster (the backup cluster's are used only for
   * stages nobody here or in the primary serves).
   */
  get peers(): readonly EndpointInfo[] {
    const primary = this.#remotes[0];
    if (primary === undefined) return this.#peers;
    const remote = primary.peers.peers;
    const cache = this.#allPeers;
    if (cache?.hub === this.#peers && cache.remote === remote) return cache.all;
    const all = [...this.#peers, ...remote];
    this.#allPeers = { hub: this.#peers, remote, all };
    return all;
  }

  join(member: BusMember): void {
    this.#members.set(member.id, member);
    this.#update();
  }

  leave(id: string): void {
    this.#members.delete(id);
    this.#update();
  }

  route(body: Uint8Array): void {
    const { header, values } = decodeSignalHeader(body);
    if (header.lock !== undefined) {
      // Cluster-wide with #cluster (the keeper); else machine-wide (the hub).
      if (this.#locks !== undefined) this.#locks.request(header, values);
      else this.#send(undefined, header, values, BusFrame.Lock);
      return;
    }
    if (header.to !== undefined && header.to !== this.endpoint) {
      this.#send(header.to, header, values);
      return;
    }
    const local = this.#members.get(header.stage);
    if (header.to !== undefined || header.worker !== undefined) {
      // An answer or an exact delivery for this process.
      if (local !== undefined) local.deliver(header, body);
      else this.#undeliverable(header, `no stage "${header.stage}" in this process`);
      return;
    }
    const serving = (peers: readonly EndpointInfo[]) =>
      peers.filter((peer) =>
        peer.endpoint !== this.endpoint && peer.stages.includes(header.stage) &&
        (header.scope !== "remote" || peer.node !== this.node) &&
        (header.scope !== "local" || peer.node === this.node)
      );
    let others = serving(this.peers);
    const backup = this.#remotes[1];
    if (local === undefined && others.length === 0 && backup !== undefined) {
      others = serving(backup.peers.peers); // nobody in the primary cluster serves it
    }
    if (header.scope === "all") {
      local?.deliver(header, body);
      for (const peer of others) this.#send(peer.endpoint, header, values);
      if (local === undefined && others.length === 0) {
        this.#undeliverable(header, `no instance of stage "${header.stage}" on the bus`);
      }
      return;
    }
    const here = local !== undefined && header.scope !== "remote" ? [this.endpoint] : [];
    const ready = [
      ...(this.#state === "ready" ? here : []),
      ...others.filter((peer) => peer.state === "ready").map((peer) => peer.endpoint),
    ];
    // Skip overloaded or draining processes, unless nobody else can take it.
    const candidates = ready.length > 0 ? ready : [...here, ...others.map((p) => p.endpoint)];
    if (candidates.length === 0) {
      const where = header.scope === "remote" ? "on other servers" : "on the bus";
      this.#undeliverable(header, `no instance of stage "${header.stage}" ${where}`);
      return;
    }
    const cursor = this.#cursors.get(header.stage) ?? 0;
    this.#cursors.set(header.stage, cursor + 1);
    const chosen = candidates[cursor % candidates.length]!;
    if (chosen === this.endpoint) local!.deliver(header, body);
    else this.#send(chosen, header, values);
  }

  /** Closes the link to the hub (and to NATS). */
  close(): void {
    this.#open = false;
    this.#connection.close();
    this.#locks?.close();
    for (const { peers, link } of this.#remotes) {
      peers.close();
      link.close().catch(() => {});
    }
    this.#remotes = [];
  }

  [Symbol.asyncDispose](): Promise<void> {
    this.close();
    return this.#connection.closed;
  }

  #info(): EndpointInfo {
    return {
      endpoint: this.endpoint,
      node: this.node,
      // `#caller` and the like take replies only: nothing is routed to them by id.
      stages: [...this.#members.keys()].filter((id) => !id.startsWith("#")),
      state: this.#state,
      ...(this.#admin === undefined ? {} : { admin: this.#admin }),
      ...(this.#lockKeeperSince === undefined ? {} : { lockKeeperSince: this.#lockKeeperSince }),
    };
  }

  #update(): void {
    if (this.#open) this.#connection.send(encodeControl(BusFrame.Update, this.#info()));
    for (const remote of this.#remotes) remote.peers.announce(this.#info());
  }

  /**
   * Sends a laid-out message to another process: through NATS when it is on
   * another machine, else through the hub. Returns why it could not, if so.
   */
  #sendTo(endpoint: string, message: Uint8Array): string | undefined {
    const remote = this.#remotes.find(({ peers }) => peers.has(endpoint));
    if (remote !== undefined) {
      try {
        remote.peers.send(endpoint, message);
        return undefined;
      } catch (error) {
        return `the bus to other machines is down (${(error as Error).message})`;
      }
    }
    if (!this.#open) return "the local bus is not connected";
    this.#connection.send(encodeMessage(BusFrame.Send, message, endpoint));
    return undefined;
  }

  /** Sends a message out of this process, stamped with where answers go. */
  #send(
    target: string | undefined,
    header: SignalHeader,
    values: Uint8Array,
    type: number = BusFrame.Send,
  ): void {
    if (!this.#open) {
      this.#undeliverable(header, "the local bus is not connected", "BusUnavailableError");
      return;
    }
    const stamped: SignalHeader = {
      ...header,
      from: header.from.at === undefined ? { ...header.from, at: this.endpoint } : header.from,
      ...(header.reply === undefined || header.reply.at !== undefined
        ? {}
        : { reply: { ...header.reply, at: this.endpoint } }),
    };
    const message = encodeSignal(stamped, values);
    if (type !== BusFrame.Send || target === undefined) {
      this.#connection.send(encodeMessage(type, message)); // locks: the hub keeps them
      return;
    }
    const failed = this.#sendTo(target, message);
    if (failed !== undefined) {
      this.#undeliverable(header, failed, "BusUnavailableError");
      return;
    }
    if (header.reply !== undefined && header.reply.at === undefined) {
      this.#remember(target, header.reply, header.message);
    }
  }

  #frame(payload: Uint8Array): void {
    let frame;
    try {
      frame = decodeFrame(payload);
    } catch (error) {
      this.#log.error("Bad frame from the bus hub: {error}", { error });
      return;
    }
    if (frame.type === BusFrame.Membership) {
      const gone = new Set(this.#peers.map((peer) => peer.endpoint));
      for (const peer of frame.members) gone.delete(peer.endpoint);
      this.#peers = frame.members;
      if (gone.size > 0) this.#failAwaiting(gone);
      this.#locks?.gone(gone);
      return;
    }
    if (frame.type !== BusFrame.Deliver) {
      this.#log.error("The bus hub sent frame type {type}", { type: frame.type });
      return;
    }
    this.#arrived(frame.message, false);
  }

  /** A stage message from another process, of this machine or (`remote`) another one. */
  #arrived(message: Uint8Array, remote: boolean): void {
    let header: SignalHeader;
    let values: Uint8Array;
    try {
      ({ header, values } = decodeSignalHeader(message));
    } catch (error) {
      this.#log.error("Bad stage message from another process: {error}", { error });
      return;
    }
    if (header.lock !== undefined && this.#locks !== undefined) {
      this.#locks.arrived(header, values); // a request for the keeper, or a grant
      return;
    }
    if (remote && !this.#allowRemoteCode && header.lock === undefined && carriesCode(values)) {
      this.#undeliverable(
        header,
        `it carries a function from another machine (${header.from.at ?? "unknown"}) and ` +
          "#cluster.allowRemoteCode is off",
        REMOTE_CODE_REFUSED,
      );
      return;
    }
    if (header.to === this.endpoint && header.worker !== undefined) {
      this.#awaiting.delete(`${header.stage}/${header.worker}/${header.message}`);
    }
    const member = this.#members.get(header.stage);
    if (member !== undefined) member.deliver(header, message);
    else this.#undeliverable(header, `no stage "${header.stage}" in process ${this.endpoint}`);
  }

  #remember(endpoint: string, reply: ReplyAddress, message: string): void {
    const now = Date.now();
    this.#awaiting.set(`${reply.stage}/${reply.worker}/${reply.id}`, {
      endpoint,
      reply,
      message,
      at: now,
    });
    // Replies that never come (a handler that answers nobody) are forgotten after a while.
    if (this.#awaiting.size > AWAITING_PRUNE_SIZE) {
      for (const [key, entry] of this.#awaiting) {
        if (now - entry.at < AWAITING_MAX_AGE_MS) break;
        this.#awaiting.delete(key);
      }
    }
  }

  /** Processes left the bus: what they owed answers to learns at once. */
  #failAwaiting(gone: Set<string>): void {
    for (const [key, entry] of this.#awaiting) {
      if (!gone.has(entry.endpoint)) continue;
      this.#awaiting.delete(key);
      const error = toErrorRecord(Object.assign(
        new Error(
          `The handler of "${entry.message}" did not complete: its process ${entry.endpoint} left the bus (it exited or crashed)`,
        ),
        { name: "WorkerTerminatedError" },
      ));
      const back = replyHeader(entry.reply, { stage: "", worker: -1, at: entry.endpoint }, true);
      this.#members.get(entry.reply.stage)?.deliver(
        back,
        encodeSignal(back, packValues([error]).bytes),
      );
    }
  }

  /** Logs a message nobody can take and answers a sender that waits for a reply. */
  #undeliverable(header: SignalHeader, why: string, name = "StageNotFoundError"): void {
    this.#log.warning("Message {message} from {from} not delivered: {why}", {
      message: header.message,
      from: header.from.stage,
      why,
    });
    const reply = header.reply;
    if (reply === undefined || header.error) return;
    const error = toErrorRecord(Object.assign(new Error(`Undeliverable: ${why}`), { name }));
    const back = replyHeader(reply, { stage: header.stage, worker: -1 }, true);
    const body = encodeSignal(back, packValues([error]).bytes);
    if (reply.at === undefined || reply.at === this.endpoint) {
      this.#members.get(reply.stage)?.deliver(back, body);
    } else {
      this.#sendTo(reply.at, body);
    }
  }
}
