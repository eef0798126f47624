/**
 * The processes of other machines, reached over NATS (`#cluster`): every
 * process announces itself on a membership subject with a lease it renews
 * every heartbeat, keeps the leases of the others, and takes deliveries on a
 * subject of its own. Routing stays with the {@link ProcessBus}: it sees these
 * endpoints next to its own machine's and sends to them through here.
 *
 * Subjects: `stage.members` (heartbeats: JSON `{ info, leaseMs, hello? }`; a
 * lease of 0 says goodbye; `hello: true` on a process's first one asks the
 * others to announce themselves at once, not at their next heartbeat) and `stage.ep.<hex of the endpoint>` (stage messages as
 * `encodeSignal` laid them out).
 *
 * @module
 */
import type { Logger } from "@logtape/logtape";
import type { Clock, TimerHandle } from "../time/mod.ts";
import type { EndpointInfo, EndpointLoad } from "./bus_frames.ts";
import type { LinkSubscription, NatsLink } from "./nats_link.ts";

/** The membership subject. */
export const MEMBERS_SUBJECT = "stage.members";

/** How often a process renews its lease, by default (ms). */
export const HEARTBEAT_MS = 1000;

/** Leases last this many heartbeats: a process silent that long is gone. */
const LEASE_HEARTBEATS = 3;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The delivery subject of an endpoint (hex, so any node name is a valid token). */
export function endpointSubject(endpoint: string): string {
  const hex = [...encoder.encode(endpoint)].map((byte) => byte.toString(16).padStart(2, "0"));
  return `stage.ep.${hex.join("")}`;
}

/** Options of {@link NatsPeers.start}. */
export interface NatsPeersOptions {
  link: NatsLink;
  /** This process's endpoint and node (its own machine's endpoints come from the hub). */
  endpoint: string;
  node: string;
  clock: Clock;
  log: Logger;
  heartbeatMs?: number;
  /** A stage message for this process arrived from another machine. */
  onMessage(message: Uint8Array): void;
  /** Endpoints whose lease ended (or that said goodbye). */
  onGone(endpoints: Set<string>): void;
  /** {@link NatsPeers.peers} changed: an endpoint joined, left or announced a change. */
  onChange?(): void;
  /** This process's load, sent with every heartbeat. */
  load?(): EndpointLoad;
}

/** Other machines' endpoints, by lease. */
export class NatsPeers implements AsyncDisposable {
  #options: NatsPeersOptions;
  #leases = new Map<string, { info: EndpointInfo; until: number }>();
  /** {@link NatsPeers.peers}, rebuilt only when the leases change (routing reads it per message). */
  #list: EndpointInfo[] | undefined;
  #info: EndpointInfo | undefined;
  #subscriptions: LinkSubscription[] = [];
  #timer: TimerHandle;
  #heartbeatMs: number;
  /** Whether this process's first lease (its hello) went out. */
  #greeted = false;

  private constructor(options: NatsPeersOptions) {
    this.#options = options;
    this.#heartbeatMs = options.heartbeatMs ?? HEARTBEAT_MS;
    this.#timer = options.clock.setInterval(() => this.#beat(), this.#heartbeatMs);
  }

  /** Subscribes to the membership and this endpoint's subjects. */
  static start(options: NatsPeersOptions): NatsPeers {
    const peers = new NatsPeers(options);
    const { link } = options;
    peers.#subscriptions.push(
      link.subscribe(MEMBERS_SUBJECT, (bytes) => peers.#heard(bytes)),
      link.subscribe(endpointSubject(options.endpoint), (bytes) => {
        options.onMessage(bytes.slice());
      }),
    );
    return peers;
  }

  /** Live endpoints of other machines. */
  get peers(): EndpointInfo[] {
    return this.#list ??= [...this.#leases.values()].map((lease) => lease.info);
  }

  /** Whether `endpoint` is a live endpoint of another machine. */
  has(endpoint: string): boolean {
    return this.#leases.has(endpoint);
  }

  /** This process's info, announced now and with every heartbeat. */
  announce(info: EndpointInfo): void {
    this.#info = info;
    this.#publishLease(this.#heartbeatMs * LEASE_HEARTBEATS);
  }

  /**
   * Sends a stage message to an endpoint of another machine.
   *
   * @throws BusDisconnectedError at once while the NATS connection is down
   */
  send(endpoint: string, message: Uint8Array): void {
    this.#options.link.publish(endpointSubject(endpoint), message);
  }

  /** Says goodbye (a lease of 0), stops the heartbeat and the subscriptions. */
  close(): void {
    this.#timer.cancel();
    this.#publishLease(0);
    for (const subscription of this.#subscriptions) subscription.unsubscribe();
    this.#subscriptions = [];
  }

  [Symbol.asyncDispose](): Promise<void> {
    this.close();
    return Promise.resolve();
  }

  #beat(): void {
    this.#publishLease(this.#heartbeatMs * LEASE_HEARTBEATS);
    const now = this.#options.clock.now();
    const gone = new Set<string>();
    for (const [endpoint, lease] of this.#leases) {
      if (lease.until <= now) gone.add(endpoint);
    }
    this.#forget(gone);
  }

  #publishLease(leaseMs: number): void {
    if (this.#info === undefined || !this.#options.link.connected) return;
    const load = this.#options.load?.();
    const info = load === undefined ? this.#info : { ...this.#info, load };
    const hello = !this.#greeted && leaseMs > 0;
    try {
      this.#options.link.publish(
        MEMBERS_SUBJECT,
        encoder.encode(JSON.stringify(hello ? { info, leaseMs, hello } : { info, leaseMs })),
      );
      if (hello) this.#greeted = true;
    } catch {
      // Disconnected: the link logs it; our lease runs out at the others unless we return in time.
    }
  }

  #heard(bytes: Uint8Array): void {
    let lease: { info: EndpointInfo; leaseMs: number; hello?: boolean };
    try {
      lease = JSON.parse(decoder.decode(bytes));
      if (typeof lease.info?.endpoint !== "string" || typeof lease.leaseMs !== "number") {
        throw new TypeError("not a lease");
      }
    } catch (error) {
      this.#options.log.warning("Bad membership message on NATS: {error}", { error });
      return;
    }
    const { info, leaseMs } = lease;
    // This machine's own endpoints come from its hub.
    if (info.node === this.#options.node) return;
    if (leaseMs <= 0) {
      this.#forget(new Set([info.endpoint]));
      return;
    }
    if (!this.#leases.has(info.endpoint)) {
      this.#options.log.info("Remote endpoint {endpoint} joined with stages {stages}", {
        endpoint: info.endpoint,
        stages: info.stages.join(", "),
      });
    }
    const known = this.#leases.get(info.endpoint);
    const changed = known === undefined || JSON.stringify(known.info) !== JSON.stringify(info);
    if (changed) this.#list = undefined;
    this.#leases.set(info.endpoint, { info, until: this.#options.clock.now() + leaseMs });
    // A newcomer learns of us now rather than at our next heartbeat.
    if (lease.hello === true) this.#publishLease(this.#heartbeatMs * LEASE_HEARTBEATS);
    if (changed) this.#options.onChange?.();
  }

  #forget(gone: Set<string>): void {
    for (const endpoint of [...gone]) {
      if (!this.#leases.delete(endpoint)) gone.delete(endpoint);
      else this.#options.log.info("Remote endpoint {endpoint} left", { endpoint });
    }
    if (gone.size === 0) return;
    this.#list = undefined;
    this.#options.onGone(gone);
    this.#options.onChange?.();
  }
}
