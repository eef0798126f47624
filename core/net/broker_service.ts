/**
 * The main-thread half of `broker`: binds the addresses scripts listen on,
 * accepts and connects, gives each socket a home worker, moves frames into the
 * workers' rings and committed frames out to the sockets. `udp://` addresses
 * are served by a {@link UdpBroker}, whose peers are sockets like the others.
 *
 * @module
 */
import type { Logger } from "@logtape/logtape";
import { toErrorRecord } from "../message/mod.ts";
import {
  CloseReason,
  type CloseReasonCode,
  type MainControl,
  type SocketOpenInfo,
  SocketOption,
  ToMain,
  ToWorker,
} from "../pool/wire.ts";
import type { Clock } from "../time/mod.ts";
import type { BrokerSocket } from "./_broker_socket.ts";
import { SocketLedger } from "./_socket_ledger.ts";
import { type BrokerLimits, defaultBrokerLimits } from "./broker_limits.ts";
import type { FlowGate } from "./flow_gate.ts";
import { Admission } from "./admission.ts";
import { Connection, type ConnectionEvents } from "./connection.ts";
import { ConnectionQuota, type RefusalReason, remoteIp } from "./connection_quota.ts";
import { isSharedAddress, type ListenAddress, parseListenAddress } from "./listen_address.ts";
import {
  type DatagramTransport,
  denoDatagramTransport,
  type StreamConn,
  type StreamListener,
  type Transport,
} from "./transport.ts";
import { UdpBroker, type UdpDropReason, UdpEndpoint } from "./udp_broker.ts";
import type { HandshakeFailure } from "./websocket_upgrade.ts";
import { WebSocketGateway } from "./_websocket_gateway.ts";

/**
 * Which worker is a socket's home (the stage's scheduler). A socket's home may
 * change when its worker is stuck or lost; the scheduler moves it.
 */
export interface SocketHomes {
  /** Gives socket `id` a home (`worker`, or the best eligible one) and returns it. */
  bind(id: number, eligible?: (worker: number) => boolean, worker?: number): number;
  /** The socket's current home. */
  workerOf(id: number): number | undefined;
  /** The socket closed (its records already queued still run, the Closed one last). */
  unbind(id: number): void;
}

/** Where the broker service sends records and control messages (the worker pool). */
export interface WorkerSink {
  send(
    worker: number,
    tag: number,
    a: number,
    b: number,
    body?: Uint8Array,
    body2?: Uint8Array,
  ): void;
  post(worker: number, message: MainControl): void;
}

/** What {@link BrokerService.sockets} reports per socket. */
export interface SocketInfo {
  id: number;
  url: string;
  remote: string;
  /** The worker that owns the socket's state. */
  home: number | undefined;
  /** Frames waiting for their handlers. */
  pendingFrames: number;
  /** Committed bytes not yet written. */
  queuedOutBytes: number;
  bytesIn: number;
  bytesOut: number;
}

export { type BrokerLimits, defaultBrokerLimits } from "./broker_limits.ts";

/** Sizes of a {@link BrokerService}'s per-socket tables (all 0 once every socket closed). */
export interface BrokerRegistrySizes {
  /** Open sockets. */
  connections: number;
  /** Sockets with output waiting for the end of the turn. */
  dirty: number;
  /** Accepted sockets holding a slot of the connection quota. */
  inbound: number;
  /** Remote addresses in the quota's per-IP table (the shared table, if the quota is shared). */
  perIp: number;
}

/** Dependencies of a {@link BrokerService}. */
export interface BrokerServiceOptions {
  stageId: string;
  transport: Transport;
  workers: WorkerSink;
  scheduler: SocketHomes;
  clock: Clock;
  log: Logger;
  limits?: Partial<BrokerLimits>;
  /**
   * Open-connection accounting shared with the process's other broker services,
   * so `#flow.max_connections` and `max_per_ip` bound the process; its limits
   * then replace `limits.maxConnections` and `maxPerIp`. Default: a quota of
   * this service's own.
   */
  quota?: ConnectionQuota;
  /** The process's input gate (the `#threads` bound and overload read budgets). */
  gate?: FlowGate;
  /**
   * `#services` TCP addresses: listening on one of them shares the port with
   * the other processes that do (SO_REUSEPORT); any other address is exclusive.
   */
  sharedAddresses?: readonly string[];
  /** UDP sockets for `udp://` addresses (default: Deno's, which needs `--unstable-net`). */
  datagrams?: DatagramTransport;
}

interface Server {
  url: string;
  address: ListenAddress;
  listener: StreamListener | UdpEndpoint;
  /** Workers whose script registered this URL (only they may be a socket's home). */
  workers: Set<number>;
  expireMs: number;
  stopped: boolean;
}

const MAX_SOCKET_ID = 0xffff_fffe;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** See the module documentation. */
export class BrokerService {
  #options: BrokerServiceOptions;
  #limits: BrokerLimits;
  #servers = new Map<string, Server>();
  #connections = new Map<number, BrokerSocket>();
  #dirty = new Set<BrokerSocket>();
  #nextId = 1;
  #closing = false;
  /** Accept loops; `undefined` until {@link startAccepting}. */
  #accepting: Set<Promise<void>> | undefined;
  #admission: Admission;
  #ledger: SocketLedger;
  #quota: ConnectionQuota;
  /** `ws://` handshakes and closing handshakes. */
  #gateway: WebSocketGateway;
  #udp: UdpBroker;
  #failedListens: { url: string; error: unknown }[] = [];

  constructor(options: BrokerServiceOptions) {
    this.#options = options;
    this.#limits = { ...defaultBrokerLimits, ...options.limits };
    this.#admission = new Admission(options.clock);
    this.#quota = options.quota ?? new ConnectionQuota(this.#limits);
    this.#ledger = new SocketLedger(this.#quota, options.clock, options.log);
    this.#gateway = new WebSocketGateway(
      options.clock,
      options.log,
      this.#limits.frameDeadlineMs,
    );
    this.#udp = new UdpBroker({
      datagrams: options.datagrams ?? denoDatagramTransport,
      host: {
        allocateId: () => this.#allocateId(),
        bindHome: (id, eligible, worker) => options.scheduler.bind(id, eligible, worker),
        announce: (peer, home, join) => this.#announce(peer, home, join),
        frame: (peer, header, payload) => this.#frame(peer, header, payload),
        closed: (peer, reason, detail) => this.#closed(peer, reason, detail),
        joinFailed: (worker, requestId, error) => this.#joinFailed(worker, requestId, error),
        acceptPaused: () => this.#admission.isClosed,
      },
      ledger: this.#ledger,
      limits: this.#limits,
      ...(options.gate === undefined ? {} : { gate: options.gate }),
      clock: options.clock,
      log: options.log,
    });
  }

  /** Open sockets. */
  get socketCount(): number {
    return this.#connections.size;
  }

  /** A snapshot of every open socket (for inspection and metrics). */
  sockets(): SocketInfo[] {
    return [...this.#connections.values()].map((connection) => ({
      id: connection.id,
      url: connection.url,
      remote: connection.remote,
      home: this.#options.scheduler.workerOf(connection.id),
      pendingFrames: connection.pendingFrames,
      queuedOutBytes: connection.queuedOutBytes,
      bytesIn: connection.bytesIn,
      bytesOut: connection.bytesOut,
    }));
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
    return this.#connections.get(id)?.url;
  }

  /** Bytes read and written so far, every socket (open or closed) included. */
  byteTotals(): { in: number; out: number } {
    let bytesIn = this.#ledger.closedBytesIn;
    let bytesOut = this.#ledger.closedBytesOut;
    for (const connection of this.#connections.values()) {
      bytesIn += connection.bytesIn;
      bytesOut += connection.bytesOut;
    }
    return { in: bytesIn, out: bytesOut };
  }

  /** Sizes of the per-socket tables, to check that closed sockets leave nothing behind. */
  registrySizes(): BrokerRegistrySizes {
    return {
      connections: this.#connections.size,
      dirty: this.#dirty.size,
      inbound: this.#ledger.inbound,
      perIp: this.#ledger.addresses,
    };
  }

  /** Bound listeners: URL → actual address. */
  listeners(): Map<string, string> {
    return new Map([...this.#servers].map(([url, server]) => [url, server.listener.address]));
  }

  /** A worker's script called `broker.ready(url)`: bind once, answer every asking worker. */
  listen(worker: number, url: string): void {
    const existing = this.#servers.get(url);
    if (existing !== undefined) {
      existing.workers.add(worker);
      this.#listenResult(existing, worker);
      return;
    }
    let address: ListenAddress;
    let listener: StreamListener | UdpEndpoint;
    try {
      address = parseListenAddress(url);
      const reusePort = address.port !== 0 &&
        isSharedAddress(this.#options.sharedAddresses ?? [], address.hostname, address.port);
      listener = address.protocol === "udp"
        ? this.#udp.listen(url, address)
        : this.#options.transport.listen(address.hostname, address.port, { reusePort });
    } catch (error) {
      this.#options.log.error("Stage {stage} cannot listen on {url}: {error}", {
        stage: this.#options.stageId,
        url,
        error,
      });
      this.#options.workers.post(worker, {
        type: "listen-result",
        url,
        error: toErrorRecord(error),
      });
      this.#failedListens.push({ url, error });
      return;
    }
    const server: Server = {
      url,
      address,
      listener,
      workers: new Set([worker]),
      expireMs: 0,
      stopped: false,
    };
    this.#servers.set(url, server);
    this.#options.log.info("Stage {stage} listening on {address} ({url})", {
      stage: this.#options.stageId,
      address: listener.address,
      url,
    });
    if (listener instanceof UdpEndpoint) {
      listener.ready.catch((error) => this.#groupsFailed(server, error));
    }
    this.#listenResult(server, worker);
    // Bound now (so errors surface at start), accepting only once every worker has
    // loaded the script: a socket accepted earlier could only be homed on the
    // workers registered so far.
    if (this.#accepting !== undefined) this.#startAccepting(server);
  }

  /** Answers a worker's `listen` once the address is ready (udp: its multicast groups joined). */
  #listenResult(server: Server, worker: number): void {
    const post = (error?: unknown) =>
      this.#options.workers.post(worker, {
        type: "listen-result",
        url: server.url,
        ...(error === undefined ? {} : { error: toErrorRecord(error) }),
      });
    if (!(server.listener instanceof UdpEndpoint)) return post();
    server.listener.ready.then(() => post(), post);
  }

  /** A `udp://` listener could not join its multicast groups: it is closed. */
  #groupsFailed(server: Server, error: unknown): void {
    this.#options.log.error("Stage {stage} cannot listen on {url}: {error}", {
      stage: this.#options.stageId,
      url: server.url,
      error,
    });
    this.#failedListens.push({ url: server.url, error });
    if (this.#servers.get(server.url) === server) this.#servers.delete(server.url);
    server.stopped = true;
    server.listener.close();
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

  #startAccepting(server: Server): void {
    const loops = this.#accepting!;
    const listener = server.listener;
    const loop = listener instanceof UdpEndpoint
      ? this.#udp.serve(listener, server.url, server.address, server)
      : this.#acceptLoop(server, listener);
    loops.add(loop);
    loop.finally(() => loops.delete(loop));
  }

  /** Listen requests that failed (a stage fails to start when there are any). */
  get failedListens(): readonly { url: string; error: unknown }[] {
    return this.#failedListens;
  }

  /** `server.expire = ms`: the default idle timeout of that server's new sockets. */
  setServerExpire(url: string, ms: number): void {
    const server = this.#servers.get(url);
    if (server !== undefined) server.expireMs = ms;
  }

  /** `server.stop()`: stop accepting on that address; open sockets stay. */
  stopServer(url: string): void {
    const server = this.#servers.get(url);
    if (server === undefined || server.stopped) return;
    server.stopped = true;
    server.listener.close();
    this.#options.log.info("Stage {stage} stopped listening on {url}", {
      stage: this.#options.stageId,
      url,
    });
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
    this.#connect(url, address).then(
      (conn) => {
        if (this.#closing) {
          conn.close();
          return;
        }
        const id = this.#allocateId();
        this.#options.scheduler.bind(id, undefined, worker);
        this.#open(id, url, address, conn, worker, requestId);
      },
      (error) => this.#joinFailed(worker, requestId, error),
    );
  }

  /** Connects out; a `ws://` URL does the opening handshake first. */
  async #connect(url: string, address: ListenAddress): Promise<StreamConn> {
    const conn = await this.#options.transport.connect(address.hostname, address.port);
    if (address.protocol !== "ws" || this.#closing) return conn;
    return await this.#gateway.connect(conn, address, url);
  }

  /** Handles a socket record from a worker; returns false for records it does not own. */
  record(tag: number, a: number, b: number, body: Uint8Array): boolean {
    switch (tag) {
      case ToMain.Commit: {
        const connection = this.#connections.get(a);
        if (connection !== undefined) {
          connection.queue(body);
          this.#dirty.add(connection);
        }
        return true;
      }
      case ToMain.Close:
        // b = 0: `socket.close()`; else a close reason the worker found (`decrypt_failed`).
        if (b === 0) this.#connections.get(a)?.closeAfterFlush();
        else this.#connections.get(a)?.close(b as CloseReasonCode, decoder.decode(body));
        return true;
      case ToMain.Inject: {
        const home = this.#options.scheduler.workerOf(a);
        if (home !== undefined && this.#connections.has(a)) {
          this.#options.workers.send(home, ToWorker.Inject, a, b, body);
        }
        return true;
      }
      case ToMain.SocketOption: {
        const connection = this.#connections.get(a);
        if (connection === undefined || body.length < 8) return true;
        const value = new DataView(body.buffer, body.byteOffset, 8).getFloat64(0, true);
        if (b === SocketOption.Expire) connection.expireMs = value;
        else if (b === SocketOption.CommitMs) connection.commitMs = value;
        return true;
      }
      case ToMain.SocketFields: {
        const connection = this.#connections.get(a);
        if (connection !== undefined) connection.fields = body.slice();
        return true;
      }
      default:
        return false;
    }
  }

  /** End of a scheduling turn: flush every socket that got output. */
  flush(): void {
    for (const connection of this.#dirty) connection.flush();
    this.#dirty.clear();
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
    this.#connections.get(id)?.frameDone();
  }

  /**
   * The `Open` record of socket `id` for the worker it moves to (its home was
   * stuck or lost), with its synced user fields and options; `undefined` when
   * it cannot move (closed, or an outgoing connection whose callback lives on
   * its worker).
   */
  reopen(id: number): Uint8Array | undefined {
    const connection = this.#connections.get(id);
    if (connection === undefined || !this.#servers.has(connection.url)) return undefined;
    const fields = connection.fields;
    const info: SocketOpenInfo = {
      url: connection.url,
      local: connection.local,
      remote: connection.remote,
      moved: {
        expire: connection.expireMs,
        commitMs: connection.commitMs,
        ...(fields === undefined ? {} : { fields: toBase64(fields) }),
      },
    };
    return encoder.encode(JSON.stringify(info));
  }

  /** Stops accepting on every address. */
  stopAccepting(): void {
    for (const url of this.#servers.keys()) this.stopServer(url);
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
    const drained = Promise.all([...this.#connections.values()].map((c) => c.drained()));
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([drained, new Promise((resolve) => timer = setTimeout(resolve, graceMs))]);
    clearTimeout(timer);
    for (const connection of [...this.#connections.values()]) {
      connection.close(CloseReason.Shutdown, "");
    }
    await Promise.allSettled([...this.#accepting ?? []]);
    await udpClosed;
    await this.#gateway.close();
  }

  async #acceptLoop(server: Server, listener: StreamListener): Promise<void> {
    const log = this.#options.log;
    while (!server.stopped) {
      // Overloaded (or ramping up after it): new connections wait in the kernel's backlog.
      await this.#admission.take();
      if (server.stopped) return;
      let conn: StreamConn | undefined;
      try {
        conn = await listener.accept();
      } catch (error) {
        // Transient (e.g. out of file descriptors): keep the listener, back off briefly.
        log.warning("Accept failed on {url}: {error}", { url: server.url, error });
        await new Promise((resolve) => setTimeout(resolve, 50));
        continue;
      }
      if (conn === undefined) return;
      // Accepted just as the process became overloaded: hold it until admitted.
      if (this.#admission.rate !== Infinity) await this.#admission.take();
      if (this.#closing || server.stopped) {
        conn.close();
        continue;
      }
      if (this.#ledger.admit(conn.remote, server.url) !== undefined) {
        conn.close(); // over a connection limit: closed before any worker hears of it
        continue;
      }
      if (server.address.protocol === "ws") {
        // The handshake runs beside the accept loop; its quota slot is held meanwhile.
        const remote = conn.remote;
        this.#gateway.accept(
          conn,
          server.address,
          server.url,
          (ws) => {
            if (!this.#closing) return this.#openAccepted(server, ws);
            ws.close();
            this.#quota.release(remoteIp(remote));
          },
          () => this.#quota.release(remoteIp(remote)),
        );
        continue;
      }
      this.#openAccepted(server, conn);
    }
  }

  /** An accepted (and for `ws://`, upgraded) connection, admitted by the quota: open it. */
  #openAccepted(server: Server, conn: StreamConn): void {
    const id = this.#allocateId();
    this.#ledger.opened(id, conn.remote);
    const home = this.#options.scheduler.bind(id, (worker) => server.workers.has(worker));
    const connection = this.#open(id, server.url, server.address, conn, home, undefined);
    if (server.expireMs > 0) connection.expireMs = server.expireMs;
  }

  #open(
    id: number,
    url: string,
    address: ListenAddress,
    conn: StreamConn,
    home: number,
    join: number | undefined,
  ): Connection {
    const connection = new Connection(id, url, conn, this.#events, {
      maxIn: address.maxIn,
      maxQueuedOut: this.#limits.maxQueuedOutBytes,
      maxPendingFrames: this.#limits.maxPendingFramesPerSocket,
      readBufferBytes: this.#limits.readBufferBytes,
      ...(this.#options.gate === undefined ? {} : { gate: this.#options.gate }),
      frameDeadlineMs: this.#limits.frameDeadlineMs,
      clock: this.#options.clock,
      log: this.#options.log,
    });
    this.#announce(connection, home, join);
    connection.start();
    return connection;
  }

  /** Registers an opened socket and tells its home worker. */
  #announce(socket: BrokerSocket, home: number, join: number | undefined): void {
    this.#connections.set(socket.id, socket);
    const info: SocketOpenInfo = { url: socket.url, local: socket.local, remote: socket.remote };
    if (join !== undefined) info.join = join;
    const body = encoder.encode(JSON.stringify(info));
    this.#options.workers.send(home, ToWorker.Open, socket.id, 0, body);
  }

  #frame(socket: BrokerSocket, header: Uint8Array, payload: Uint8Array | undefined): void {
    const home = this.#options.scheduler.workerOf(socket.id);
    if (home === undefined) return;
    this.#options.workers.send(home, ToWorker.Frame, socket.id, 0, header, payload);
  }

  #events: ConnectionEvents = {
    frame: (connection, header, payload) => this.#frame(connection, header, payload),
    closed: (connection, reason, detail) => this.#closed(connection, reason, detail),
  };

  #closed(connection: BrokerSocket, reason: CloseReasonCode, detail: string): void {
    const id = connection.id;
    this.#connections.delete(id);
    this.#dirty.delete(connection);
    this.#ledger.closed(connection, reason, detail);
    const home = this.#options.scheduler.workerOf(id);
    this.#options.scheduler.unbind(id);
    if (home !== undefined) {
      this.#options.workers.send(home, ToWorker.Closed, id, reason, encoder.encode(detail));
    }
  }

  #joinFailed(worker: number, requestId: number, error: unknown): void {
    this.#options.log.warning("Outgoing connection {request} failed: {error}", {
      request: requestId,
      error,
    });
    const body = encoder.encode(JSON.stringify(toErrorRecord(error)));
    this.#options.workers.send(worker, ToWorker.JoinFailed, 0, requestId, body);
  }

  #allocateId(): number {
    for (;;) {
      const id = this.#nextId;
      this.#nextId = id >= MAX_SOCKET_ID ? 1 : id + 1;
      if (!this.#connections.has(id)) return id;
    }
  }
}

function toBase64(bytes: Uint8Array): string {
  let text = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(text);
}
