/**
 * The addresses one broker service listens on: bound once for every worker
 * whose script asked (`broker.ready`), answered per worker, stopped on
 * request, and the failures a stage reports at start.
 *
 * @module
 */
import type { Logger } from "@logtape/logtape";
import { toErrorRecord } from "../message/mod.ts";
import type { WorkerSink } from "./broker_service_types.ts";
import { isSharedAddress, type ListenAddress, parseListenAddress } from "./listen_address.ts";
import type { StreamListener, Transport } from "./transport.ts";
import { type UdpBroker, UdpEndpoint } from "./udp_broker.ts";

/** One bound address. */
export interface ListenServer {
  url: string;
  address: ListenAddress;
  listener: StreamListener | UdpEndpoint;
  /** Workers whose script registered this URL (only they may be a socket's home). */
  workers: Set<number>;
  expireMs: number;
  stopped: boolean;
}

/** What {@link ListenServers} binds with and reports to. */
export interface ListenServersOptions {
  stageId: string;
  transport: Transport;
  udp: UdpBroker;
  workers: WorkerSink;
  log: Logger;
  /** `#services` TCP addresses (shared with other processes: SO_REUSEPORT). */
  sharedAddresses?: readonly string[];
}

/** The bound addresses by URL; see the module documentation. */
export class ListenServers {
  #options: ListenServersOptions;
  #servers = new Map<string, ListenServer>();
  #failedListens: { url: string; error: unknown }[] = [];

  constructor(options: ListenServersOptions) {
    this.#options = options;
  }

  /** Whether `url` is bound (and not failed). */
  has(url: string): boolean {
    return this.#servers.has(url);
  }

  /** Every bound address. */
  values(): IterableIterator<ListenServer> {
    return this.#servers.values();
  }

  /** Bound listeners: URL → actual address. */
  addresses(): Map<string, string> {
    return new Map([...this.#servers].map(([url, server]) => [url, server.listener.address]));
  }

  /** Listen requests that failed (a stage fails to start when there are any). */
  get failed(): readonly { url: string; error: unknown }[] {
    return this.#failedListens;
  }

  /**
   * A worker's script called `broker.ready(url)`: binds once, answers every
   * asking worker. Returns the server when this call bound it (for the caller
   * to start accepting on), else `undefined`.
   */
  listen(worker: number, url: string): ListenServer | undefined {
    const existing = this.#servers.get(url);
    if (existing !== undefined) {
      existing.workers.add(worker);
      this.#listenResult(existing, worker);
      return undefined;
    }
    let address: ListenAddress;
    let listener: StreamListener | UdpEndpoint;
    try {
      address = parseListenAddress(url);
      const reusePort = address.port !== 0 &&
        isSharedAddress(this.#options.sharedAddresses ?? [], address.hostname, address.port);
      listener = address.protocol === "udp"
        ? this.#options.udp.listen(url, address)
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
      return undefined;
    }
    const server: ListenServer = {
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
    return server;
  }

  /** Answers a worker's `listen` once the address is ready (udp: its multicast groups joined). */
  #listenResult(server: ListenServer, worker: number): void {
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
  #groupsFailed(server: ListenServer, error: unknown): void {
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

  /** `server.expire = ms`: the default idle timeout of that server's new sockets. */
  setExpire(url: string, ms: number): void {
    const server = this.#servers.get(url);
    if (server !== undefined) server.expireMs = ms;
  }

  /** `server.stop()`: stop accepting on that address; open sockets stay. */
  stop(url: string): void {
    const server = this.#servers.get(url);
    if (server === undefined || server.stopped) return;
    server.stopped = true;
    server.listener.close();
    this.#options.log.info("Stage {stage} stopped listening on {url}", {
      stage: this.#options.stageId,
      url,
    });
  }

  /** Stops accepting on every address. */
  stopAll(): void {
    for (const url of this.#servers.keys()) this.stop(url);
  }
}
