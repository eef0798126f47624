/**
 * The main-thread half of `broker`: binds the addresses scripts listen on,
 * accepts and connects, gives each socket a home worker, moves frames into the
 * workers' rings and committed frames out to the sockets. `udp://` addresses
 * are served by a {@link UdpBroker}, whose peers are sockets like the others.
 *
 * @module
 */
import { toErrorRecord } from "../message/mod.ts";
import { CloseReason, ToWorker } from "../pool/wire.ts";
import { type ListenServer, ListenServers } from "./_listen_servers.ts";
import { SocketLedger } from "./_socket_ledger.ts";
import { SocketTable } from "./_socket_table.ts";
import { StreamSockets } from "./_stream_sockets.ts";
import { WebSocketGateway } from "./_websocket_gateway.ts";
import { Admission } from "./admission.ts";
import { type BrokerLimits, defaultBrokerLimits } from "./broker_limits.ts";
import type {
  BrokerRegistrySizes,
  BrokerServiceOptions,
  SocketInfo,
} from "./broker_service_types.ts";
import { ConnectionQuota, type RefusalReason } from "./connection_quota.ts";
import { type ListenAddress, parseListenAddress } from "./listen_address.ts";
import { denoDatagramTransport } from "./transport.ts";
import { UdpBroker, type UdpDropReason, UdpEndpoint } from "./udp_broker.ts";
import type { HandshakeFailure } from "./websocket_upgrade.ts";

export type {
  BrokerRegistrySizes,
  BrokerServiceOptions,
  SocketHomes,
  SocketInfo,
  WorkerSink,
} from "./broker_service_types.ts";
export { type BrokerLimits, defaultBrokerLimits } from "./broker_limits.ts";

const encoder = new TextEncoder();

/** See the module documentation. */
export class BrokerService {
  #options: BrokerServiceOptions;
  #limits: BrokerLimits;
  #servers: ListenServers;
  #table: SocketTable;
  #closing = false;
  /** Accept loops; `undefined` until {@link startAccepting}. */
  #accepting: Set<Promise<void>> | undefined;
  #admission: Admission;
  #ledger: SocketLedger;
  #quota: ConnectionQuota;
  /** `ws://` handshakes and closing handshakes. */
  #gateway: WebSocketGateway;
  #udp: UdpBroker;
  #streams: StreamSockets;

  constructor(options: BrokerServiceOptions) {
    this.#options = options;
    this.#limits = { ...defaultBrokerLimits, ...options.limits };
    this.#admission = new Admission(options.clock);
    this.#quota = options.quota ?? new ConnectionQuota(this.#limits);
    this.#ledger = new SocketLedger(this.#quota, options.clock, options.log);
    this.#table = new SocketTable(options.workers, options.scheduler, this.#ledger);
    this.#gateway = new WebSocketGateway(
      options.clock,
      options.log,
      this.#limits.frameDeadlineMs,
    );
    const table = this.#table;
    this.#udp = new UdpBroker({
      datagrams: options.datagrams ?? denoDatagramTransport,
      host: {
        allocateId: () => table.allocateId(),
        bindHome: (id, eligible, worker) => options.scheduler.bind(id, eligible, worker),
        announce: (peer, home, join) => table.announce(peer, home, join),
        frame: (peer, header, payload) => table.frame(peer, header, payload),
        closed: (peer, reason, detail) => table.closed(peer, reason, detail),
        joinFailed: (worker, requestId, error) => this.#joinFailed(worker, requestId, error),
        acceptPaused: () => this.#admission.isClosed,
      },
      ledger: this.#ledger,
      limits: this.#limits,
      ...(options.gate === undefined ? {} : { gate: options.gate }),
      clock: options.clock,
      log: options.log,
    });
    this.#servers = new ListenServers({
      stageId: options.stageId,
      transport: options.transport,
      udp: this.#udp,
      workers: options.workers,
      log: options.log,
      ...(options.sharedAddresses === undefined
        ? {}
        : { sharedAddresses: options.sharedAddresses }),
    });
    this.#streams = new StreamSockets({
      options,
      limits: this.#limits,
      table,
      ledger: this.#ledger,
      quota: this.#quota,
      admission: this.#admission,
      gateway: this.#gateway,
      closing: () => this.#closing,
      joinFailed: (worker, requestId, error) => this.#joinFailed(worker, requestId, error),
    });
  }

  /** Open sockets. */
  get socketCount(): number {
    return this.#table.size;
  }

  /** A snapshot of every open socket (for inspection and metrics). */
  sockets(): SocketInfo[] {
    return this.#table.sockets();
  }

  /** Sockets closed so far, by reason name. */
  get closedByReason(): ReadonlyMap<string, number> {
    return this.#ledger.closedByReason;
  }

  /**
   * Incoming connections closed at once because of a connection limit, by the
   * limit's name (`max_connections`, `max_per_ip`).
   */
  get refusedByReason(): ReadonlyMap<RefusalReason, number> {
    return this.#ledger.refusedByReason;
  }

  /** Failed WebSocket handshakes (`ws://` listeners and joins) by kind. */
  get handshakeFailures(): ReadonlyMap<HandshakeFailure, number> {
    return this.#gateway.failures;
  }

  /** `udp://` datagrams dropped so far, by reason (see `UdpDropReason`). */
  get udpDroppedByReason(): ReadonlyMap<UdpDropReason, number> {
    return this.#udp.droppedByReason;
  }

  /** `udp://` datagrams received (dropped ones included) and sent so far. */
  udpDatagrams(): { in: number; out: number } {
    return this.#udp.datagrams;
  }

  /** The listen (or join) URL of open socket `id`. */
  urlOf(id: number): string | undefined {
    return this.#table.get(id)?.url;
  }

  /** Bytes read and written so far, every socket (open or closed) included. */
  byteTotals(): { in: number; out: number } {
    return this.#table.byteTotals();
  }

  /** Sizes of the per-socket tables, to check that closed sockets leave nothing behind. */
  registrySizes(): BrokerRegistrySizes {
    return {
      connections: this.#table.size,
      dirty: this.#table.dirtySize,
      inbound: this.#ledger.inbound,
      perIp: this.#ledger.addresses,
    };
  }

  /** Bound listeners: URL → actual address. */
  listeners(): Map<string, string> {
    return this.#servers.addresses();
  }

  /** A worker's script called `broker.ready(url)`: bind once, answer every asking worker. */
  listen(worker: number, url: string): void {
    const server = this.#servers.listen(worker, url);
    // Bound now (so errors surface at start), accepting only once every worker has
    // loaded the script: a socket accepted earlier could only be homed on the
    // workers registered so far.
    if (server !== undefined && this.#accepting !== undefined) this.#startAccepting(server);
  }

  /**
   * Starts accepting on every bound address (and on addresses bound later).
   * Until then, connections wait in the kernel's backlog.
   */
  startAccepting(): void {
    if (this.#accepting !== undefined) return;
    this.#accepting = new Set();
    for (const server of this.#servers.values()) this.#startAccepting(server);
  }

  #startAccepting(server: ListenServer): void {
    const loops = this.#accepting!;
    const listener = server.listener;
    const loop = listener instanceof UdpEndpoint
      ? this.#udp.serve(listener, server.url, server.address, server)
      : this.#streams.accept(server, listener);
    loops.add(loop);
    loop.finally(() => loops.delete(loop));
  }

  /** Listen requests that failed (a stage fails to start when there are any). */
  get failedListens(): readonly { url: string; error: unknown }[] {
    return this.#servers.failed;
  }

  /** `server.expire = ms`: the default idle timeout of that server's new sockets. */
  setServerExpire(url: string, ms: number): void {
    this.#servers.setExpire(url, ms);
  }

  /** `server.stop()`: stop accepting on that address; open sockets stay. */
  stopServer(url: string): void {
    this.#servers.stop(url);
  }

  /** A worker's script called `broker.join(url)`. */
  join(worker: number, url: string, requestId: number): void {
    let address: ListenAddress;
    try {
      address = parseListenAddress(url);
    } catch (error) {
      this.#joinFailed(worker, requestId, error);
      return;
    }
    if (address.protocol === "udp") return this.#udp.join(worker, url, address, requestId);
    this.#streams.join(worker, url, address, requestId);
  }

  /** Handles a socket record from a worker; returns false for records it does not own. */
  record(tag: number, a: number, b: number, body: Uint8Array): boolean {
    return this.#table.record(tag, a, b, body);
  }

  /** End of a scheduling turn: flush every socket that got output. */
  flush(): void {
    this.#table.flush();
  }

  /**
   * How many new connections per second to let in (Infinity: all, 0: none —
   * they wait in the kernel's backlog). The overload controller sets it.
   */
  setAdmissionRate(rate: number): void {
    this.#admission.setRate(rate);
  }

  /** Whether accepting is paused. */
  get acceptPaused(): boolean {
    return this.#admission.isClosed;
  }

  /** A handler finished one of socket `id`'s frames (reading resumes below its bound). */
  frameDone(id: number): void {
    this.#table.get(id)?.frameDone();
  }

  /**
   * The `Open` record of socket `id` for the worker it moves to (its home was
   * stuck or lost), with its synced user fields and options; `undefined` when
   * it cannot move (closed, or an outgoing connection whose callback lives on
   * its worker).
   */
  reopen(id: number): Uint8Array | undefined {
    return this.#table.reopen(id, (url) => this.#servers.has(url));
  }

  /** Stops accepting on every address. */
  stopAccepting(): void {
    this.#servers.stopAll();
  }

  /**
   * Shuts down: stops accepting, writes what is queued (bounded by `graceMs`),
   * closes every socket.
   */
  async close(graceMs: number): Promise<void> {
    this.#closing = true;
    const udpClosed = this.#udp.close(); // no new joins from here on
    this.#admission.release(); // paused accept loops must end
    this.stopAccepting();
    this.flush();
    const drained = Promise.all([...this.#table.values()].map((c) => c.drained()));
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([drained, new Promise((resolve) => timer = setTimeout(resolve, graceMs))]);
    clearTimeout(timer);
    for (const connection of [...this.#table.values()]) {
      connection.close(CloseReason.Shutdown, "");
    }
    await Promise.allSettled([...this.#accepting ?? []]);
    await udpClosed;
    await this.#gateway.close();
  }

  #joinFailed(worker: number, requestId: number, error: unknown): void {
    this.#options.log.warning("Outgoing connection {request} failed: {error}", {
      request: requestId,
      error,
    });
    const body = encoder.encode(JSON.stringify(toErrorRecord(error)));
    this.#options.workers.send(worker, ToWorker.JoinFailed, 0, requestId, body);
  }
}
