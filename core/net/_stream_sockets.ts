/**
 * The broker service's stream sockets (`tcp://`, `ws://`): the accept loop of
 * a listener — paced by admission (an overloaded process lets connections
 * wait in the kernel's backlog), bounded by the connection quota, with `ws://`
 * handshakes run beside the loop — outgoing `broker.join` connections, and
 * opening each as a {@link Connection} announced to its home worker.
 *
 * @module
 */
import type { ListenServer } from "./_listen_servers.ts";
import type { SocketLedger } from "./_socket_ledger.ts";
import type { SocketTable } from "./_socket_table.ts";
import type { WebSocketGateway } from "./_websocket_gateway.ts";
import type { Admission } from "./admission.ts";
import type { BrokerLimits } from "./broker_limits.ts";
import type { BrokerServiceOptions } from "./broker_service_types.ts";
import { CloseReason } from "../pool/wire.ts";
import { Connection } from "./connection.ts";
import { type ConnectionQuota, remoteIp } from "./connection_quota.ts";
import type { ListenAddress } from "./listen_address.ts";
import type { StreamConn, StreamListener } from "./transport.ts";

/** What the stream side of a broker service shares with the rest of it. */
export interface StreamSocketsDeps {
  options: BrokerServiceOptions;
  limits: BrokerLimits;
  table: SocketTable;
  ledger: SocketLedger;
  quota: ConnectionQuota;
  admission: Admission;
  gateway: WebSocketGateway;
  /** Whether the broker service is shutting down. */
  closing(): boolean;
  /** Tells `worker` that its `broker.join` request failed. */
  joinFailed(worker: number, requestId: number, error: unknown): void;
}

/** Accepting and connecting stream sockets; see the module documentation. */
export class StreamSockets {
  #deps: StreamSocketsDeps;

  constructor(deps: StreamSocketsDeps) {
    this.#deps = deps;
  }

  /** Accepts on `listener` until `server` is stopped or the listener ends. */
  async accept(server: ListenServer, listener: StreamListener): Promise<void> {
    const { admission, options: { log } } = this.#deps;
    while (!server.stopped) {
      // Overloaded (or ramping up after it): new connections wait in the kernel's backlog.
      await admission.take();
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
      if (admission.rate !== Infinity) await admission.take();
      if (this.#deps.closing() || server.stopped) {
        conn.close();
        continue;
      }
      if (this.#deps.ledger.admit(conn.remote, server.url) !== undefined) {
        conn.close(); // over a connection limit: closed before any worker hears of it
        continue;
      }
      if (server.address.protocol === "ws") {
        // The handshake runs beside the accept loop; its quota slot is held meanwhile.
        const remote = conn.remote;
        this.#deps.gateway.accept(
          conn,
          server.address,
          server.url,
          (ws) => {
            if (!this.#deps.closing()) return this.#openAccepted(server, ws);
            ws.close();
            this.#deps.quota.release(remoteIp(remote));
          },
          () => this.#deps.quota.release(remoteIp(remote)),
        );
        continue;
      }
      this.#openAccepted(server, conn);
    }
  }

  /** `broker.join(url)` to a stream address: connects, then opens the socket on `worker`. */
  join(worker: number, url: string, address: ListenAddress, requestId: number): void {
    this.#connect(url, address).then(
      (conn) => {
        if (this.#deps.closing()) {
          conn.close();
          return;
        }
        const id = this.#deps.table.allocateId();
        this.#deps.options.scheduler.bind(id, undefined, worker);
        this.#open(id, url, address, conn, worker, requestId);
      },
      (error) => this.#deps.joinFailed(worker, requestId, error),
    );
  }

  /** Connects out; a `ws://` URL does the opening handshake first. */
  async #connect(url: string, address: ListenAddress): Promise<StreamConn> {
    const conn = await this.#deps.options.transport.connect(address.hostname, address.port);
    if (address.protocol !== "ws" || this.#deps.closing()) return conn;
    return await this.#deps.gateway.connect(conn, address, url);
  }

  /** An accepted (and for `ws://`, upgraded) connection, admitted by the quota: open it. */
  #openAccepted(server: ListenServer, conn: StreamConn): void {
    const id = this.#deps.table.allocateId();
    this.#deps.ledger.opened(id, conn.remote);
    let home: number;
    try {
      home = this.#deps.options.scheduler.bind(id, (worker) => server.workers.has(worker));
    } catch (error) {
      // No worker takes this listener's sockets: refuse this one (its slot back), keep accepting.
      this.#deps.ledger.closed(
        { id, remote: conn.remote, bytesIn: 0, bytesOut: 0 },
        CloseReason.Refused,
        error instanceof Error ? error.message : String(error),
      );
      conn.close();
      return;
    }
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
    const { options, limits, table } = this.#deps;
    const connection = new Connection(id, url, conn, table.events, {
      maxIn: address.maxIn,
      maxQueuedOut: limits.maxQueuedOutBytes,
      maxPendingFrames: limits.maxPendingFramesPerSocket,
      readBufferBytes: limits.readBufferBytes,
      ...(options.gate === undefined ? {} : { gate: options.gate }),
      frameDeadlineMs: limits.frameDeadlineMs,
      clock: options.clock,
      log: options.log,
    });
    table.announce(connection, home, join);
    connection.start();
    return connection;
  }
}
