/**
 * The UDP half of the broker service: `udp://` listeners and joins. Each
 * distinct remote address of a listener is a socket for the script (its own
 * socket id, so its datagrams run in order and share the workers fairly with
 * every other socket), admitted like an accepted connection (per-IP and total
 * limits, paused while overloaded) and forgotten after a silence
 * ({@link DEFAULT_PEER_EXPIRE_MS} unless `server.expire` or `socket.expire`
 * says otherwise). UDP has no backpressure, so what cannot be taken is dropped
 * and counted by reason (`_udp_drops.ts`), never queued without bound.
 *
 * @module
 */
import type { Logger } from "@logtape/logtape";
import type { CloseReasonCode } from "../pool/wire.ts";
import type { Clock } from "../time/mod.ts";
import type { SocketLedger } from "./_socket_ledger.ts";
import { type UdpDropReason, UdpDrops } from "./_udp_drops.ts";
import { UdpEndpoint } from "./_udp_endpoint.ts";
import { UdpPeer, type UdpPeerEvents } from "./_udp_peer.ts";
import type { BrokerLimits } from "./broker_limits.ts";
import type { FlowGate } from "./flow_gate.ts";
import type { ListenAddress } from "./listen_address.ts";
import { type DatagramSocket, type DatagramTransport, formatAddress } from "./transport.ts";
import { isMulticast, udpOptions } from "./udp_address.ts";

export { UdpEndpoint } from "./_udp_endpoint.ts";
export type { UdpDropReason } from "./_udp_drops.ts";

/** Idle time after which a listener's peer is forgotten, unless the script set another. */
export const DEFAULT_PEER_EXPIRE_MS = 60_000;

/** What the {@link UdpBroker} needs of the broker service it belongs to. */
export interface UdpBrokerHost {
  /** A socket id not in use. */
  allocateId(): number;
  /** Gives socket `id` a home worker (see `SocketHomes.bind`). */
  bindHome(id: number, eligible?: (worker: number) => boolean, worker?: number): number;
  /** Registers an opened socket and sends its `Open` record to `home`. */
  announce(peer: UdpPeer, home: number, join: number | undefined): void;
  /** A frame of a socket for its home worker. */
  frame(peer: UdpPeer, header: Uint8Array, payload: Uint8Array | undefined): void;
  /** A socket ended. */
  closed(peer: UdpPeer, reason: CloseReasonCode, detail: string): void;
  /** A join failed. */
  joinFailed(worker: number, requestId: number, error: unknown): void;
  /** Whether new connections (and so new peers) wait: the process is overloaded. */
  acceptPaused(): boolean;
}

/** Dependencies of a {@link UdpBroker}. */
export interface UdpBrokerOptions {
  datagrams: DatagramTransport;
  host: UdpBrokerHost;
  ledger: SocketLedger;
  limits: BrokerLimits;
  gate?: FlowGate;
  clock: Clock;
  log: Logger;
}

/** What a listener's peers take from its server (`broker.ready` handle). */
export interface UdpServer {
  /** Workers whose script registered the URL (only they may be a peer's home). */
  readonly workers: ReadonlySet<number>;
  /** `server.expire` (0 = {@link DEFAULT_PEER_EXPIRE_MS}). */
  readonly expireMs: number;
}

/**
 * See the module documentation. The broker service owns one and hands it the
 * `udp://` URLs; scripts reach it through `broker.ready` and `broker.join`.
 *
 * @example
 * ```ts ignore
 * const udp = new UdpBroker({ datagrams: denoDatagramTransport, host, ledger, limits, clock, log });
 * const endpoint = udp.listen(url, parseListenAddress(url)); // bound; groups joining
 * await endpoint.ready;
 * const loop = udp.serve(endpoint, url, address, { workers: new Set([0]), expireMs: 0 });
 * ```
 */
export class UdpBroker {
  readonly #options: UdpBrokerOptions;
  readonly #drops: UdpDrops;
  readonly #events: UdpPeerEvents;
  /** Receive loops of join sockets (listeners' loops belong to the broker service). */
  readonly #joinLoops = new Set<Promise<void>>();
  #closing = false;

  constructor(options: UdpBrokerOptions) {
    this.#options = options;
    this.#drops = new UdpDrops(options.clock, options.log);
    const host = options.host;
    this.#events = {
      frame: (peer, header, payload) => host.frame(peer, header, payload),
      closed: (peer, reason, detail) => host.closed(peer, reason, detail),
    };
  }

  /** Datagrams dropped so far, by reason. */
  get droppedByReason(): ReadonlyMap<UdpDropReason, number> {
    return this.#drops.byReason;
  }

  /** Datagrams received (dropped ones included) and sent so far. */
  get datagrams(): { in: number; out: number } {
    return { in: this.#drops.datagramsIn, out: this.#drops.datagramsOut };
  }

  /**
   * Binds a listener's socket and starts joining its multicast groups
   * (`endpoint.ready` settles when they are joined). It receives nothing
   * until {@link serve}: datagrams wait in the kernel meanwhile.
   *
   * @throws TypeError for bad UDP options, or the bind error
   */
  listen(url: string, address: ListenAddress): UdpEndpoint {
    const udp = udpOptions(address, "listen", url);
    const socket = this.#options.datagrams.bind(address.hostname, address.port, {
      loopback: udp.loopback,
      reuseAddress: udp.reuse,
    });
    const endpoint = this.#endpoint(url, address, udp.maxIn, socket);
    endpoint.join(udp.groups, udp.interfaceV4, udp.interfaceV6);
    return endpoint;
  }

  /** Receives on a listener's socket until it closes; new addresses become peers of `server`. */
  serve(
    endpoint: UdpEndpoint,
    url: string,
    address: ListenAddress,
    server: UdpServer,
  ): Promise<void> {
    const options = this.#options;
    const host = options.host;
    return endpoint.serve((remote, hostname, port) => {
      if (this.#closing) return "stopped";
      if (host.acceptPaused()) return "overload";
      const refusal = options.ledger.admit(remote, url);
      if (refusal !== undefined) return refusal;
      const id = host.allocateId();
      options.ledger.opened(id, remote);
      const home = host.bindHome(id, (worker) => server.workers.has(worker));
      const where = { url, local: endpoint.address, remote, hostname, port };
      const peer = new UdpPeer(id, where, endpoint, this.#events, this.#peerOptions(address));
      host.announce(peer, home, undefined);
      peer.expireMs = server.expireMs > 0 ? server.expireMs : DEFAULT_PEER_EXPIRE_MS;
      return peer;
    });
  }

  /**
   * `broker.join("udp://host:port")`: a socket of its own (bound to any
   * address, port 0) whose one peer is `host:port`; its datagrams come back as
   * that socket's frames (from any member, when `host` is a multicast group).
   */
  join(worker: number, url: string, address: ListenAddress, requestId: number): void {
    const options = this.#options;
    let udp;
    try {
      udp = udpOptions(address, "join", url);
    } catch (error) {
      options.host.joinFailed(worker, requestId, error);
      return;
    }
    options.datagrams.resolve(address.hostname).then((ip) => {
      if (this.#closing) return;
      const socket = options.datagrams.bind(ip.includes(":") ? "::" : "0.0.0.0", 0, {
        loopback: udp.loopback,
      });
      const endpoint = this.#endpoint(url, address, udp.maxIn, socket);
      const id = options.host.allocateId();
      const remote = formatAddress(ip, address.port);
      const where = { url, local: endpoint.address, remote, hostname: ip, port: address.port };
      const peer = new UdpPeer(id, where, endpoint, this.#events, this.#peerOptions(address));
      options.host.bindHome(id, undefined, worker);
      options.host.announce(peer, worker, requestId);
      const loop = endpoint.attach(peer, isMulticast(ip));
      this.#joinLoops.add(loop);
      loop.finally(() => this.#joinLoops.delete(loop));
    }).catch((error) => options.host.joinFailed(worker, requestId, error));
  }

  /**
   * Shutdown: takes no new peers or joins from now on; resolves once the join
   * sockets are closed (they close with their peer, which the broker service closes).
   */
  async close(): Promise<void> {
    this.#closing = true;
    await Promise.allSettled([...this.#joinLoops]);
  }

  #endpoint(
    url: string,
    address: ListenAddress,
    maxIn: number,
    socket: DatagramSocket,
  ): UdpEndpoint {
    return new UdpEndpoint(socket, {
      url,
      codec: address.codec,
      maxIn,
      drops: this.#drops,
      ...(this.#options.gate === undefined ? {} : { gate: this.#options.gate }),
      clock: this.#options.clock,
      log: this.#options.log,
    });
  }

  #peerOptions(address: ListenAddress) {
    return {
      codec: address.codec,
      maxPendingFrames: this.#options.limits.maxPendingFramesPerSocket,
      maxQueuedOut: this.#options.limits.maxQueuedOutBytes,
      clock: this.#options.clock,
    };
  }
}
