/**
 * The main-thread half of `broker`: binds the addresses scripts listen on,
 * accepts and connects, gives each socket a home worker, moves frames into the
 * workers' rings and committed frames out to the sockets.
 *
 * @module
 */
import type { Logger } from "@logtape/logtape";
import { toErrorRecord } from "../message/mod.ts";
import type { KeyScheduler } from "../pool/key_scheduler.ts";
import {
  CloseReason,
  type CloseReasonCode,
  closeReasonNames,
  type MainControl,
  type SocketOpenInfo,
  SocketOption,
  ToMain,
  ToWorker,
} from "../pool/wire.ts";
import type { Clock } from "../time/mod.ts";
import { Connection, type ConnectionEvents } from "./connection.ts";
import { type ListenAddress, parseListenAddress } from "./listen_address.ts";
import type { StreamConn, StreamListener, Transport } from "./transport.ts";

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

/** Limits of the broker service. */
export interface BrokerLimits {
  /** Frames of one socket waiting for handlers before its reading pauses. */
  maxPendingFramesPerSocket: number;
  /** Output bytes queued for one socket before it is closed as a slow reader. */
  maxQueuedOutBytes: number;
  readBufferBytes: number;
}

/** Default {@link BrokerLimits}. */
export const defaultBrokerLimits: BrokerLimits = {
  maxPendingFramesPerSocket: 256,
  maxQueuedOutBytes: 16 * 1024 * 1024,
  readBufferBytes: 64 * 1024,
};

/** Dependencies of a {@link BrokerService}. */
export interface BrokerServiceOptions {
  stageId: string;
  transport: Transport;
  workers: WorkerSink;
  scheduler: KeyScheduler;
  clock: Clock;
  log: Logger;
  limits?: Partial<BrokerLimits>;
}

interface Server {
  url: string;
  address: ListenAddress;
  listener: StreamListener;
  /** Workers whose script registered this URL (only they may be a socket's home). */
  workers: Set<number>;
  expireMs: number;
  stopped: boolean;
}

const MAX_SOCKET_ID = 0xffff_fffe;
const encoder = new TextEncoder();

/** See the module documentation. */
export class BrokerService {
  #options: BrokerServiceOptions;
  #limits: BrokerLimits;
  #servers = new Map<string, Server>();
  #connections = new Map<number, Connection>();
  #dirty = new Set<Connection>();
  #nextId = 1;
  #closing = false;
  /** Accept loops; `undefined` until {@link startAccepting}. */
  #accepting: Set<Promise<void>> | undefined;
  #closedByReason = new Map<string, number>();
  #failedListens: { url: string; error: unknown }[] = [];

  constructor(options: BrokerServiceOptions) {
    this.#options = options;
    this.#limits = { ...defaultBrokerLimits, ...options.limits };
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
    return this.#closedByReason;
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
      this.#options.workers.post(worker, { type: "listen-result", url });
      return;
    }
    let address: ListenAddress;
    let listener: StreamListener;
    try {
      address = parseListenAddress(url);
      listener = this.#options.transport.listen(address.hostname, address.port);
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
    this.#options.workers.post(worker, { type: "listen-result", url });
    // Bound now (so errors surface at start), accepting only once every worker has
    // loaded the script: a socket accepted earlier could only be homed on the
    // workers registered so far.
    if (this.#accepting !== undefined) this.#startAccepting(server);
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
    const loop = this.#acceptLoop(server);
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
    this.#options.transport.connect(address.hostname, address.port).then(
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
        this.#connections.get(a)?.closeAfterFlush();
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
      case ToMain.Done:
        if (b === ToWorker.Frame) this.#connections.get(a)?.frameDone();
        return true;
      default:
        return false;
    }
  }

  /** End of a scheduling turn: flush every socket that got output. */
  flush(): void {
    for (const connection of this.#dirty) connection.flush();
    this.#dirty.clear();
  }

  /** Worker `worker` was replaced: its sockets' state is gone, so they close. */
  workerLost(worker: number): void {
    for (const id of this.#options.scheduler.unbindWorker(worker)) {
      this.#connections.get(id)?.close(CloseReason.ReadError, `worker ${worker} was lost`);
    }
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
  }

  async #acceptLoop(server: Server): Promise<void> {
    const log = this.#options.log;
    while (!server.stopped) {
      let conn: StreamConn | undefined;
      try {
        conn = await server.listener.accept();
      } catch (error) {
        // Transient (e.g. out of file descriptors): keep the listener, back off briefly.
        log.warning("Accept failed on {url}: {error}", { url: server.url, error });
        await new Promise((resolve) => setTimeout(resolve, 50));
        continue;
      }
      if (conn === undefined) return;
      if (this.#closing || server.stopped) {
        conn.close();
        continue;
      }
      const id = this.#allocateId();
      const home = this.#options.scheduler.bind(id, (worker) => server.workers.has(worker));
      const connection = this.#open(id, server.url, server.address, conn, home, undefined);
      if (server.expireMs > 0) connection.expireMs = server.expireMs;
    }
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
      clock: this.#options.clock,
      log: this.#options.log,
    });
    this.#connections.set(id, connection);
    const info: SocketOpenInfo = { url, local: connection.local, remote: connection.remote };
    if (join !== undefined) info.join = join;
    this.#options.workers.send(home, ToWorker.Open, id, 0, encoder.encode(JSON.stringify(info)));
    connection.start();
    return connection;
  }

  #events: ConnectionEvents = {
    frame: (connection, header, payload) => {
      const home = this.#options.scheduler.workerOf(connection.id);
      if (home === undefined) return;
      this.#options.workers.send(home, ToWorker.Frame, connection.id, 0, header, payload);
    },
    closed: (connection, reason, detail) => this.#closed(connection, reason, detail),
  };

  #closed(connection: Connection, reason: CloseReasonCode, detail: string): void {
    const id = connection.id;
    this.#connections.delete(id);
    this.#dirty.delete(connection);
    const name = closeReasonNames[reason];
    this.#closedByReason.set(name, (this.#closedByReason.get(name) ?? 0) + 1);
    if (
      reason !== CloseReason.Peer && reason !== CloseReason.Script &&
      reason !== CloseReason.Shutdown && reason !== CloseReason.Expired
    ) {
      this.#options.log.warning("Socket {id} ({remote}) closed: {reason} {detail}", {
        id,
        remote: connection.remote,
        reason: name,
        detail,
      });
    }
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
