/**
 * The one adapter around the NATS client (`@nats-io/transport-node`): a connection
 * that sends bytes, takes bytes and reconnects by itself. Everything above it (the
 * NATS bus, membership) talks to a {@link NatsLink} and never to the client.
 *
 * Unlike the client's default, a link never buffers while disconnected: `publish`
 * and `request` fail at once with {@link BusDisconnectedError}, and requests in
 * flight when the connection drops are rejected then, so a node never silently
 * loses a send nor blocks on one.
 *
 * @module
 */
import type { Logger } from "@logtape/logtape";
import {
  type ConnectionOptions,
  createInbox,
  type Msg,
  type NatsConnection,
  NatsConnectionImpl,
  setTransportFactory,
  type Subscription,
} from "@nats-io/transport-node";
import { nodeResolveHost, NodeTransport } from "@nats-io/transport-node/lib/node_transport.js";
import type { Socket } from "node:net";
import { registerErrorClass } from "../message/mod.ts";
import { type Clock, systemClock, type TimerHandle } from "../time/mod.ts";

/** Raised when a send is attempted (or was in flight) while the link is disconnected or closed. */
export class BusDisconnectedError extends Error {
  override name = "BusDisconnectedError";
}

/** Raised when a request gets no reply within its timeout. */
export class BusTimeoutError extends Error {
  override name = "BusTimeoutError";
}

/** Raised when a request's subject has no subscriber at all (the server says so at once). */
export class BusNoRespondersError extends Error {
  override name = "BusNoRespondersError";
}

/** Raised by {@link NatsLink.connect} when the first connection fails (unreachable, bad URL, auth). */
export class BusConnectError extends Error {
  override name = "BusConnectError";
}

// Errors cross boundaries as records; these come back as their own classes.
registerErrorClass("BusDisconnectedError", BusDisconnectedError);
registerErrorClass("BusTimeoutError", BusTimeoutError);
registerErrorClass("BusNoRespondersError", BusNoRespondersError);
registerErrorClass("BusConnectError", BusConnectError);

/** Credentials of a link: user and password, or a token. */
export interface NatsAuth {
  user?: string;
  pass?: string;
  token?: string;
}

/** Reconnect backoff: waits double from `initialMs` up to `maxMs`, each jittered. */
export interface ReconnectBackoff {
  initialMs: number;
  maxMs: number;
}

/** Options of {@link NatsLink.connect}. */
export interface NatsLinkOptions {
  /** Server URLs, e.g. `["nats://127.0.0.1:4222"]`. */
  servers: string[];
  /** The client name the server shows (e.g. the node name). */
  name: string;
  auth?: NatsAuth;
  /** Where connection transitions and handler failures are logged. */
  log: Logger;
  /** Backoff between reconnect attempts (default 250 ms doubling to 5 s). */
  reconnect?: ReconnectBackoff;
  /** Times request timeouts (default: the system clock). */
  clock?: Clock;
}

/** The connection state reported by {@link NatsLink.onStatus}. */
export type LinkStatus = "connected" | "disconnected";

/** What a subscription handler learns about a message besides its bytes. */
export interface LinkMessage {
  readonly subject: string;
  /** The reply subject of a request. */
  readonly reply?: string;
  /**
   * Answers a request (publishes to `reply`).
   *
   * @throws {TypeError} if the message has no reply subject
   * @throws {BusDisconnectedError} if the link is disconnected
   */
  respond(bytes: Uint8Array): void;
}

/**
 * Takes the messages of a subscription; errors (and rejections) are logged.
 * `bytes` is a view into the client's receive buffer: `slice()` it before keeping
 * or transferring it.
 */
export type LinkHandler = (bytes: Uint8Array, message: LinkMessage) => void | Promise<void>;

/** A live subscription. */
export interface LinkSubscription {
  /** Stops delivery; calling it twice is harmless. */
  unsubscribe(): void;
}

const DEFAULT_BACKOFF: ReconnectBackoff = { initialMs: 250, maxMs: 5000 };

interface PendingRequest {
  subject: string;
  resolve(bytes: Uint8Array): void;
  reject(error: Error): void;
  timer: TimerHandle;
}

/**
 * A connection to a NATS cluster that reconnects forever with backoff and fails
 * sends fast while it is down.
 *
 * @example
 * ```ts
 * import { getLogger } from "@logtape/logtape";
 * import { BusConnectError, NatsLink } from "./nats_link.ts";
 * // Nothing listens on port 1: the first connection fails with an error naming the server.
 * const failed = await NatsLink.connect({
 *   servers: ["nats://127.0.0.1:1"],
 *   name: "example",
 *   log: getLogger(["stage", "cluster"]),
 * }).catch((error) => error);
 * if (!(failed instanceof BusConnectError) || !failed.message.includes("127.0.0.1:1")) {
 *   throw new Error(`unexpected: ${failed}`);
 * }
 * ```
 */
export class NatsLink implements AsyncDisposable {
  readonly #nc: NatsConnection;
  readonly #name: string;
  readonly #servers: string;
  readonly #log: Logger;
  readonly #clock: Clock;
  readonly #inbox: string;
  readonly #pending = new Map<string, PendingRequest>();
  readonly #listeners = new Set<(status: LinkStatus) => void>();
  readonly #backoff: ReconnectState;
  #nextToken = 0;
  #connected = true;
  #closed = false;
  #closing: Promise<void> | undefined;
  #watching: Promise<void>;
  #outageError = false;

  private constructor(
    nc: NatsConnection,
    options: NatsLinkOptions,
    servers: string,
    backoff: ReconnectState,
  ) {
    this.#nc = nc;
    this.#name = options.name;
    this.#servers = servers;
    this.#log = options.log;
    this.#clock = options.clock ?? systemClock;
    this.#backoff = backoff;
    // One wildcard subscription takes the replies of every request of this link.
    this.#inbox = `${createInbox()}.`;
    nc.subscribe(`${this.#inbox}*`, { callback: (error, msg) => this.#reply(error, msg) });
    this.#watching = Promise.all([this.#watchStatus(), this.#watchClosed()]).then(() => {});
  }

  /**
   * Connects to one of `servers`.
   *
   * @throws {TypeError} for no servers, or a token combined with a user
   * @throws {RangeError} for a backoff that is not `0 < initialMs <= maxMs`
   * @throws {BusConnectError} (rejects) when no server can be reached or authentication fails;
   *   the message names the servers (never the password)
   */
  static async connect(options: NatsLinkOptions): Promise<NatsLink> {
    if (options.servers.length === 0) {
      throw new TypeError(`NatsLink "${options.name}": servers must list at least one URL`);
    }
    const backoff = options.reconnect ?? DEFAULT_BACKOFF;
    if (!(backoff.initialMs > 0 && backoff.maxMs >= backoff.initialMs)) {
      throw new RangeError(
        `NatsLink "${options.name}": reconnect needs 0 < initialMs <= maxMs, got ${
          JSON.stringify(backoff)
        }`,
      );
    }
    const auth = options.auth ?? {};
    if (auth.token !== undefined && (auth.user !== undefined || auth.pass !== undefined)) {
      throw new TypeError(`NatsLink "${options.name}": auth takes a token or user/pass, not both`);
    }
    const servers = options.servers.map(redact).join(", ");
    const state = new ReconnectState(backoff);
    const clientOptions: ConnectionOptions = {
      servers: options.servers,
      name: options.name,
      reconnect: true,
      maxReconnectAttempts: -1,
      // Credentials may be fixed on the server while we retry: keep retrying.
      ignoreAuthErrorAbort: true,
      reconnectDelayHandler: () => state.delay(),
      // A dead peer (no FIN) is noticed after about three missed pings.
      pingInterval: 10_000,
      maxPingOut: 3,
      timeout: 5000,
      noAsyncTraces: true,
    };
    if (auth.user !== undefined) clientOptions.user = auth.user;
    if (auth.pass !== undefined) clientOptions.pass = auth.pass;
    if (auth.token !== undefined) clientOptions.token = auth.token;
    let nc: NatsConnection;
    try {
      useGuardedTransport();
      nc = await NatsConnectionImpl.connect(clientOptions);
    } catch (error) {
      throw new BusConnectError(
        `NatsLink "${options.name}" cannot connect to NATS ${servers}: ${describe(error)}`,
        { cause: error },
      );
    }
    state.attach(nc);
    const link = new NatsLink(nc, options, servers, state);
    options.log.info("NATS link {name} connected to {server}", {
      name: options.name,
      server: nc.getServer(),
    });
    return link;
  }

  /** Whether sends go out now (false while reconnecting and after close). */
  get connected(): boolean {
    return this.#connected && !this.#closed;
  }

  /**
   * Calls `fn` on each change between connected and disconnected.
   *
   * @returns a function that removes `fn`
   */
  onStatus(fn: (status: LinkStatus) => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  /**
   * Publishes `bytes` to `subject` (fire and forget).
   *
   * @throws {BusDisconnectedError} at once while disconnected or after close (nothing is queued)
   */
  publish(subject: string, bytes: Uint8Array): void {
    this.#ensureConnected(`publish to "${subject}"`);
    try {
      this.#nc.publish(subject, bytes);
    } catch (error) {
      throw new Error(
        `NatsLink "${this.#name}" cannot publish to "${subject}": ${describe(error)}`,
        { cause: error },
      );
    }
  }

  /**
   * Sends a request and resolves with the first reply's bytes.
   *
   * @throws {BusDisconnectedError} (rejects) at once while disconnected, or when the
   *   connection drops before the reply
   * @throws {BusNoRespondersError} (rejects) when nothing subscribes to `subject`
   * @throws {BusTimeoutError} (rejects) when no reply comes within `timeoutMs`
   * @throws {RangeError} (rejects) for a timeout that is not a positive number
   */
  request(subject: string, bytes: Uint8Array, timeoutMs: number): Promise<Uint8Array> {
    try {
      if (!(timeoutMs > 0)) {
        throw new RangeError(`request to "${subject}": timeoutMs must be > 0, got ${timeoutMs}`);
      }
      this.#ensureConnected(`request "${subject}"`);
    } catch (error) {
      return Promise.reject(error);
    }
    const token = String(++this.#nextToken);
    return new Promise<Uint8Array>((resolve, reject) => {
      const timer = this.#clock.setTimeout(() => {
        this.#pending.delete(token);
        reject(new BusTimeoutError(`No reply to request "${subject}" within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#pending.set(token, { subject, resolve, reject, timer });
      try {
        this.#nc.publish(subject, bytes, { reply: this.#inbox + token });
      } catch (error) {
        this.#settle(token)?.reject(
          new Error(`NatsLink "${this.#name}" cannot request "${subject}": ${describe(error)}`, {
            cause: error,
          }),
        );
      }
    });
  }

  /**
   * Subscribes `handler` to `subject` (wildcards allowed). Subscribers sharing a
   * `queue` split the messages (each goes to one of them); plain subscribers each
   * get every message. Subscriptions survive reconnects.
   *
   * @throws {BusDisconnectedError} after close
   */
  subscribe(
    subject: string,
    handler: LinkHandler,
    options: { queue?: string } = {},
  ): LinkSubscription {
    if (this.#closed) throw this.#unavailable(`subscribe to "${subject}"`);
    const sub: Subscription = this.#nc.subscribe(subject, {
      ...(options.queue === undefined ? {} : { queue: options.queue }),
      callback: (error, msg) => {
        if (error !== null) {
          this.#log.warning("NATS subscription to {subject} failed: {error}", {
            subject,
            error: describe(error),
          });
          return;
        }
        this.#deliver(subject, handler, msg);
      },
    });
    return {
      unsubscribe: () => {
        if (!sub.isClosed() && !this.#nc.isClosed()) sub.unsubscribe();
      },
    };
  }

  /**
   * Resolves after a round trip to the server: everything sent before (subscriptions
   * included) has reached it.
   *
   * @throws {BusDisconnectedError} (rejects) while disconnected or after close, or when
   *   the connection drops before the answer
   */
  async flush(): Promise<void> {
    this.#ensureConnected("flush");
    try {
      await this.#nc.flush();
    } catch (error) {
      // The client rejects pending flushes when the connection drops.
      throw new BusDisconnectedError(
        `Cannot flush: the NATS link "${this.#name}" to ${this.#servers} lost its connection`,
        { cause: error },
      );
    }
  }

  /** Drains subscriptions and closes the connection; pending requests reject. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  /** Same as {@link close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async #close(): Promise<void> {
    const wasConnected = this.connected;
    this.#closed = true;
    this.#rejectPending("closed");
    if (!this.#nc.isClosed()) {
      // Draining needs the server's answer; while disconnected just close.
      if (wasConnected) await this.#nc.drain().catch(() => this.#nc.close());
      else await this.#nc.close();
    }
    await this.#watching;
  }

  #deliver(subject: string, handler: LinkHandler, msg: Msg): void {
    const reply = msg.reply;
    const message: LinkMessage = {
      subject: msg.subject,
      ...(reply ? { reply } : {}),
      respond: (bytes) => {
        if (!reply) throw new TypeError(`Message on "${msg.subject}" has no reply subject`);
        this.publish(reply, bytes);
      },
    };
    const failed = (error: unknown) =>
      this.#log.error("NATS handler for {subject} failed on {message}: {error}", {
        subject,
        message: msg.subject,
        error: describe(error),
      });
    try {
      const result = handler(msg.data, message);
      if (result instanceof Promise) result.catch(failed);
    } catch (error) {
      failed(error);
    }
  }

  #reply(error: Error | null, msg: Msg): void {
    if (error !== null) return;
    const pending = this.#settle(msg.subject.slice(this.#inbox.length));
    if (pending === undefined) return; // late reply after a timeout or disconnect
    if (msg.data.length === 0 && msg.headers?.code === 503) {
      pending.reject(
        new BusNoRespondersError(`No subscriber takes requests on "${pending.subject}"`),
      );
    } else {
      pending.resolve(msg.data);
    }
  }

  /** Removes a pending request and stops its timer. */
  #settle(token: string): PendingRequest | undefined {
    const pending = this.#pending.get(token);
    if (pending === undefined) return undefined;
    this.#pending.delete(token);
    pending.timer.cancel();
    return pending;
  }

  #rejectPending(why: "closed" | "disconnected"): void {
    for (const token of [...this.#pending.keys()]) {
      const pending = this.#settle(token)!;
      pending.reject(
        new BusDisconnectedError(
          why === "closed"
            ? `Request "${pending.subject}" abandoned: the NATS link "${this.#name}" to ${this.#servers} was closed`
            : `Request "${pending.subject}" lost: the NATS link "${this.#name}" disconnected from ${this.#servers} (reconnecting)`,
        ),
      );
    }
  }

  #ensureConnected(what: string): void {
    if (!this.connected) throw this.#unavailable(what);
  }

  #unavailable(what: string): BusDisconnectedError {
    return new BusDisconnectedError(
      this.#closed
        ? `Cannot ${what}: the NATS link "${this.#name}" to ${this.#servers} is closed`
        : `Cannot ${what}: the NATS link "${this.#name}" is disconnected from ${this.#servers} (reconnecting)`,
    );
  }

  #setConnected(connected: boolean): void {
    if (this.#connected === connected) return;
    this.#connected = connected;
    if (!connected) this.#rejectPending("disconnected");
    const status: LinkStatus = connected ? "connected" : "disconnected";
    for (const fn of [...this.#listeners]) {
      try {
        fn(status);
      } catch (error) {
        this.#log.error("NATS link {name} status listener failed: {error}", {
          name: this.#name,
          error: describe(error),
        });
      }
    }
  }

  async #watchStatus(): Promise<void> {
    for await (const status of this.#nc.status()) {
      if (this.#closed) continue;
      switch (status.type) {
        // Once per outage ("reconnecting" comes per attempt and is not logged).
        case "disconnect":
          if (this.#connected) {
            this.#log.warning("NATS link {name} disconnected from {server}; reconnecting", {
              name: this.#name,
              server: status.server,
            });
            this.#setConnected(false);
          }
          break;
        case "reconnect":
          this.#backoff.reset();
          this.#outageError = false;
          if (!this.#connected) {
            this.#log.info("NATS link {name} reconnected to {server}", {
              name: this.#name,
              server: status.server,
            });
            this.#setConnected(true);
          }
          break;
        case "error":
          // Repeated per attempt during an outage (e.g. rejected credentials): log once.
          if (!this.#outageError) {
            this.#outageError = !this.#connected;
            this.#log.warning("NATS link {name}: server error: {error}", {
              name: this.#name,
              error: describe(status.error),
            });
          }
          break;
      }
    }
  }

  async #watchClosed(): Promise<void> {
    const error = await this.#nc.closed();
    if (this.#closed) return;
    // The client gave up on its own (it should not, reconnecting forever).
    this.#closed = true;
    this.#log.error("NATS link {name} to {servers} closed unexpectedly: {error}", {
      name: this.#name,
      servers: this.#servers,
      error: error ? describe(error) : "no error",
    });
    this.#rejectPending("closed");
    this.#setConnected(false);
  }
}

/**
 * The client's reconnect wait: it asks before every dial (and again while it
 * waits), so the wait is fixed per attempt; attempts are counted by the pool's
 * last dial time changing.
 */
class ReconnectState {
  #backoff: ReconnectBackoff;
  #nc: NatsConnection | undefined;
  #lastDial = -1;
  #attempt = 0;
  #wait: number;

  constructor(backoff: ReconnectBackoff) {
    this.#backoff = backoff;
    this.#wait = backoff.initialMs;
  }

  attach(nc: NatsConnection): void {
    this.#nc = nc;
  }

  /** Back to the initial wait (after a successful reconnect). */
  reset(): void {
    this.#attempt = 0;
  }

  delay(): number {
    const servers = this.#nc?.getServers() ?? [];
    const lastDial = Math.max(0, ...servers.map((s) => s.lastConnect));
    if (lastDial !== this.#lastDial) {
      this.#lastDial = lastDial;
      // The first call of an outage sees the dial of the lost connection, long ago,
      // so the first retry is immediate; after that waits double from initialMs.
      const base = Math.min(
        this.#backoff.maxMs,
        this.#backoff.initialMs * 2 ** Math.max(0, this.#attempt - 1),
      );
      this.#attempt++;
      // "Equal jitter": half the wait fixed, half random, so nodes do not retry in step.
      this.#wait = base / 2 + Math.random() * (base / 2);
    }
    return this.#wait;
  }
}

/**
 * The client's Node transport, except that its sockets always keep an `error`
 * listener. The client removes every listener when it drops a socket (after
 * `-ERR 'Authorization Violation'`, for one), and under Deno's `node:net` the
 * socket can still report `read ECONNRESET` after that: with no listener, an
 * uncaught exception that kills the process. The client learns of socket
 * errors through its own listeners, so ignoring them here changes nothing else.
 */
class GuardedNodeTransport extends NodeTransport {
  override async dial(hp: { hostname: string; port: number }): Promise<Socket> {
    const socket = await super.dial(hp);
    const ignore = () => {};
    const removeAll = socket.removeAllListeners.bind(socket);
    socket.removeAllListeners = ((...args: Parameters<Socket["removeAllListeners"]>) => {
      removeAll(...args);
      socket.on("error", ignore);
      return socket;
    }) as Socket["removeAllListeners"];
    socket.on("error", ignore);
    return socket;
  }
}

/**
 * Makes the client dial through {@link GuardedNodeTransport}. The factory is
 * global to the client library (its own `connect()` installs the plain one), so
 * it is set again before each link connects; reconnects use whichever is set.
 */
function useGuardedTransport(): void {
  setTransportFactory({ factory: () => new GuardedNodeTransport(), dnsResolveFn: nodeResolveHost });
}

/** A server URL without credentials (`nats://user:pass@host` → `nats://host`). */
function redact(url: string): string {
  return url.replace(/^([a-z]+:\/\/)?[^@/]*@/i, "$1");
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
