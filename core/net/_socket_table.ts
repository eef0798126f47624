/**
 * The broker service's open sockets, by id: id allocation, the `Open`,
 * `Frame` and `Closed` records to each socket's home worker, the socket
 * records workers send back (commit, close, inject, options, fields), and the
 * per-turn flush of sockets that got output.
 *
 * @module
 */
import {
  type CloseReasonCode,
  type SocketOpenInfo,
  SocketOption,
  ToMain,
  ToWorker,
} from "../pool/wire.ts";
import type { BrokerSocket } from "./_broker_socket.ts";
import type { SocketLedger } from "./_socket_ledger.ts";
import type { SocketHomes, SocketInfo, WorkerSink } from "./broker_service_types.ts";
import type { ConnectionEvents } from "./connection.ts";

const MAX_SOCKET_ID = 0xffff_fffe;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The open sockets of one broker service; see the module documentation. */
export class SocketTable {
  #workers: WorkerSink;
  #scheduler: SocketHomes;
  #ledger: SocketLedger;
  #connections = new Map<number, BrokerSocket>();
  #dirty = new Set<BrokerSocket>();
  #nextId = 1;

  constructor(workers: WorkerSink, scheduler: SocketHomes, ledger: SocketLedger) {
    this.#workers = workers;
    this.#scheduler = scheduler;
    this.#ledger = ledger;
  }

  /** What a `Connection` reports: its frames and its end. */
  readonly events: ConnectionEvents = {
    frame: (connection, header, payload) => this.frame(connection, header, payload),
    closed: (connection, reason, detail) => this.closed(connection, reason, detail),
  };

  /** Open sockets. */
  get size(): number {
    return this.#connections.size;
  }

  /** Sockets with output waiting for the end of the turn. */
  get dirtySize(): number {
    return this.#dirty.size;
  }

  /** Open socket `id`. */
  get(id: number): BrokerSocket | undefined {
    return this.#connections.get(id);
  }

  /** Every open socket. */
  values(): IterableIterator<BrokerSocket> {
    return this.#connections.values();
  }

  /** A socket id no open socket has (ids wrap around below 2^32 - 1). */
  allocateId(): number {
    for (;;) {
      const id = this.#nextId;
      this.#nextId = id >= MAX_SOCKET_ID ? 1 : id + 1;
      if (!this.#connections.has(id)) return id;
    }
  }

  /** Registers an opened socket and tells its home worker. */
  announce(socket: BrokerSocket, home: number, join: number | undefined): void {
    this.#connections.set(socket.id, socket);
    const info: SocketOpenInfo = { url: socket.url, local: socket.local, remote: socket.remote };
    if (join !== undefined) info.join = join;
    const body = encoder.encode(JSON.stringify(info));
    this.#workers.send(home, ToWorker.Open, socket.id, 0, body);
  }

  /** A socket's frame: to its home worker's ring. */
  frame(socket: BrokerSocket, header: Uint8Array, payload: Uint8Array | undefined): void {
    const home = this.#scheduler.workerOf(socket.id);
    if (home === undefined) return;
    this.#workers.send(home, ToWorker.Frame, socket.id, 0, header, payload);
  }

  /** A socket ended: forgotten, counted, and reported to its home worker. */
  closed(connection: BrokerSocket, reason: CloseReasonCode, detail: string): void {
    const id = connection.id;
    this.#connections.delete(id);
    this.#dirty.delete(connection);
    this.#ledger.closed(connection, reason, detail);
    const home = this.#scheduler.workerOf(id);
    this.#scheduler.unbind(id);
    if (home !== undefined) {
      this.#workers.send(home, ToWorker.Closed, id, reason, encoder.encode(detail));
    }
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
        const home = this.#scheduler.workerOf(a);
        if (home !== undefined && this.#connections.has(a)) {
          this.#workers.send(home, ToWorker.Inject, a, b, body);
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
   * The `Open` record of socket `id` for the worker it moves to, with its
   * synced user fields and options; `undefined` when it is closed or `served`
   * says its URL is not (or no longer) listened on.
   */
  reopen(id: number, served: (url: string) => boolean): Uint8Array | undefined {
    const connection = this.#connections.get(id);
    if (connection === undefined || !served(connection.url)) return undefined;
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

  /** A snapshot of every open socket (for inspection and metrics). */
  sockets(): SocketInfo[] {
    return [...this.#connections.values()].map((connection) => ({
      id: connection.id,
      url: connection.url,
      remote: connection.remote,
      home: this.#scheduler.workerOf(connection.id),
      pendingFrames: connection.pendingFrames,
      queuedOutBytes: connection.queuedOutBytes,
      bytesIn: connection.bytesIn,
      bytesOut: connection.bytesOut,
    }));
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
}

function toBase64(bytes: Uint8Array): string {
  let text = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(text);
}
