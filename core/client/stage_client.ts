/**
 * {@link StageClient}: a framed connection to a Stage listener with codecs,
 * request correlation, reconnect with backoff and backpressure-aware sends.
 * Runtime-neutral: sockets come from a {@link ClientTransport}.
 *
 * @module
 */
import { backoffDelay, type ReconnectOptions } from "./backoff.ts";
import type { ClientTimer } from "./clock.ts";
import {
  type ClientSettings,
  defaultTransport,
  resolveOptions,
  type StageClientOptions,
  timeout as checkTimeout,
} from "./client_options.ts";
import { isDocument } from "./codecs.ts";
import {
  ClientClosedError,
  ConnectionLostError,
  FrameError,
  RequestTimeoutError,
} from "./errors.ts";
import { FrameSplitter } from "./framing.ts";
import { Inbox } from "./_inbox.ts";
import { type PendingRequest, RequestTable } from "./_requests.ts";
import { concatFrames, SendQueue } from "./_send_queue.ts";
import type { ClientConnection, ClientTransport } from "./transport.ts";

/** Queued frames written together in one socket write, up to this many bytes. */
const WRITE_BATCH_BYTES = 64 * 1024;
const READ_BUFFER_BYTES = 64 * 1024;

/** Options of {@link StageClient.request}. */
export interface RequestOptions {
  /** Milliseconds to wait for the reply (default: the client's `requestTimeoutMs`). */
  timeout?: number;
  /**
   * Picks the reply among incoming messages instead of the correlation id; the
   * request is then sent as it is (no id is set).
   */
  match?: (message: unknown) => boolean;
}

/** `open`, `reconnecting` after a loss, `lost` when reconnecting is off or gave up, `closed`. */
export type ClientState = "open" | "reconnecting" | "lost" | "closed";

/** The events of {@link StageClient.on} and their listeners. */
export interface StageClientEvents {
  /** A message that no request took (while any are registered, messages skip `next()`). */
  message: (value: unknown) => void;
  /** The connection was lost; `error.cause` says why when known. */
  disconnect: (error: ConnectionLostError) => void;
  /** A new connection is up after `attempt` attempts; queued sends are flushed on it. */
  reconnect: (attempt: number) => void;
}

type Listeners = { [K in keyof StageClientEvents]: Set<StageClientEvents[K]> };

/**
 * A client of a Stage listener. Connect with {@link StageClient.connect}; release
 * with `close()` or `await using`.
 *
 * Incoming messages go to a pending `request` they answer, else to `message`
 * listeners if there are any, else to `next()` and async iteration.
 *
 * @example
 * ```ts ignore
 * import { StageClient } from "./mod.ts";
 * await using client = await StageClient.connect({ port: 8801 });
 * await client.send({ message: "echo", text: "hello" });
 * console.log(await client.next(1000));
 * ```
 */
export class StageClient implements AsyncDisposable, AsyncIterable<unknown> {
  readonly #settings: ClientSettings;
  readonly #transport: ClientTransport;
  readonly #queue: SendQueue;
  readonly #inbox: Inbox;
  readonly #requests: RequestTable;
  readonly #listeners: Listeners = {
    message: new Set(),
    disconnect: new Set(),
    reconnect: new Set(),
  };
  readonly #sessions = new Set<Promise<void>>();
  #conn: ClientConnection | undefined;
  #state: ClientState = "open";
  #lostError: ConnectionLostError | undefined;
  #wakeWriter: (() => void) | undefined;
  #reconnectTimer: ClientTimer | undefined;
  #connecting: Promise<void> | undefined;
  #closing: Promise<void> | undefined;
  #nextId = 1;
  #receivedAt = Number.NaN;

  private constructor(
    conn: ClientConnection,
    settings: ClientSettings,
    transport: ClientTransport,
  ) {
    this.#settings = settings;
    this.#transport = transport;
    this.#queue = new SendQueue(settings.maxQueuedFrames, settings.maxQueuedBytes);
    this.#inbox = new Inbox(settings.inboxLimit, settings.clock);
    this.#requests = new RequestTable(settings.correlationField);
    this.#attach(conn);
  }

  /**
   * Connects once (a failure rejects; reconnecting covers later losses only).
   *
   * @throws {TypeError|RangeError} for bad options, naming the option
   * @throws the transport's error when the connection cannot be opened
   */
  static async connect(options: StageClientOptions): Promise<StageClient> {
    const settings = resolveOptions(options);
    const transport = options.transport ?? await defaultTransport();
    const conn = await transport.connect(settings.host, settings.port);
    return new StageClient(conn, settings, transport);
  }

  /** The connection state. */
  get state(): ClientState {
    return this.#state;
  }

  /** Frames queued and not yet handed to the socket. */
  get queuedFrames(): number {
    return this.#queue.frames;
  }

  /**
   * The clock's `now()` when the client last read bytes from the socket (NaN before the
   * first read). Read in a `message` listener, it is when the delivered message arrived:
   * a receive timestamp that costs one clock reading per socket read, not per message.
   */
  get receivedAt(): number {
    return this.#receivedAt;
  }

  /** Requests waiting for their reply. */
  get pendingRequests(): number {
    return this.#requests.size;
  }

  /**
   * Queues `value` as one frame; resolves once its bytes are handed to the socket
   * (so awaiting each send paces the caller to the peer).
   *
   * @throws {TypeError} (rejects) if the codec cannot encode `value`
   * @throws {FrameError} (rejects) `too_large` if the frame exceeds `maxFrame`
   * @throws {SendQueueFullError} (rejects) if the outgoing queue is full
   * @throws {ConnectionLostError} (rejects) at a loss with reconnecting off or exhausted
   * @throws {ClientClosedError} (rejects) after or at `close()`
   */
  send(value: unknown): Promise<void> {
    try {
      const frame = this.#encode(value);
      return new Promise<void>((resolve, reject) => {
        this.#queue.push({ frame, resolve, reject });
        this.#wake();
      });
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Queues `value` as one frame like {@link StageClient.send}, with no promise: for hot
   * paths (load generators) that follow completion by the replies or by `queuedFrames`.
   * `value` is encoded before `post` returns, so the caller may reuse it at once. A frame
   * still queued when the connection is lost for good is dropped (`disconnect` reports
   * the loss); with `reconnect` it is written on the next connection, as with `send`.
   *
   * @example
   * ```ts ignore
   * import { StageClient } from "./mod.ts";
   * await using client = await StageClient.connect({ port: 8801, codec: "raw" });
   * const payload = new Uint8Array(16);
   * for (let i = 0; i < 8; i++) {
   *   payload[0] = i;
   *   client.post(payload); // 8 frames in flight, written together
   * }
   * ```
   *
   * @throws {TypeError} if the codec cannot encode `value`
   * @throws {FrameError} `too_large` if the frame exceeds `maxFrame`
   * @throws {SendQueueFullError} if the outgoing queue is full
   * @throws {ConnectionLostError} after a loss with reconnecting off or exhausted
   * @throws {ClientClosedError} after `close()`
   */
  post(value: unknown): void {
    this.#queue.push({ frame: this.#encode(value), resolve: ignore, reject: ignore });
    this.#wake();
  }

  /**
   * Sends `value` with the correlation field set to a fresh id and resolves with the
   * first incoming message carrying that id (or, with `match`, the first it accepts).
   *
   * @throws {TypeError} (rejects) without `match`, if `value` is not a plain object
   * @throws {RequestTimeoutError} (rejects) when no reply arrives in time
   * @throws {ConnectionLostError} (rejects) when the connection is lost after it was sent
   * @throws everything {@link StageClient.send} throws
   */
  request<T = unknown>(value: unknown, options: RequestOptions = {}): Promise<T> {
    const { match } = options;
    const field = this.#settings.correlationField;
    let ms: number;
    try {
      ms = checkTimeout(options.timeout ?? this.#settings.requestTimeoutMs, "request timeout");
    } catch (error) {
      return Promise.reject(error);
    }
    let id: number | undefined;
    let outgoing = value;
    if (match === undefined) {
      if (!isDocument(value)) {
        return Promise.reject(
          new TypeError(
            `Cannot correlate a request: expected a plain object to set "${field}" on; pass options.match for other values`,
          ),
        );
      }
      id = this.#nextId++;
      outgoing = { ...value, [field]: id };
    }
    return new Promise<T>((resolve, reject) => {
      const request: PendingRequest = {
        id,
        match,
        sent: false,
        timer: undefined,
        resolve: resolve as (value: unknown) => void,
        reject,
      };
      request.timer = this.#settings.clock.setTimeout(() => {
        if (!this.#requests.remove(request)) return;
        const which = id === undefined ? "(match)" : `${field} ${id}`;
        reject(
          new RequestTimeoutError(
            `No reply to request ${which} from ${this.#address()} within ${ms} ms`,
            ms,
          ),
        );
      }, ms);
      this.#requests.add(request);
      this.send(outgoing).then(
        () => request.sent = true,
        (error) => this.#requests.remove(request) && reject(error),
      );
    });
  }

  /**
   * The next incoming message (one no request took).
   *
   * @param timeoutMs reject after this long (default: wait until closed)
   * @throws {ReceiveTimeoutError} (rejects) when nothing arrives within `timeoutMs`
   * @throws {ConnectionLostError} (rejects) once the connection is lost for good
   * @throws {ClientClosedError} (rejects) once closed and drained
   */
  next<T = unknown>(timeoutMs?: number): Promise<T> {
    try {
      if (timeoutMs !== undefined) checkTimeout(timeoutMs, "next timeoutMs");
    } catch (error) {
      return Promise.reject(error);
    }
    return this.#inbox.take(timeoutMs) as Promise<T>;
  }

  /** Incoming messages until `close()`; throws {@link ConnectionLostError} if lost for good. */
  async *[Symbol.asyncIterator](): AsyncGenerator<unknown, void, undefined> {
    for (;;) {
      let value: unknown;
      try {
        value = await this.#inbox.take(undefined);
      } catch (error) {
        if (error instanceof ClientClosedError) return;
        throw error;
      }
      yield value;
    }
  }

  /** Adds an event listener; returns the function that removes it. */
  on<K extends keyof StageClientEvents>(event: K, listener: StageClientEvents[K]): () => void {
    const set = this.#listeners[event] as Set<StageClientEvents[K]>;
    set.add(listener);
    return () => set.delete(listener);
  }

  /**
   * Closes the connection and stops reconnecting: queued sends and pending requests
   * reject with {@link ClientClosedError}; resolves once nothing is left running.
   */
  close(): Promise<void> {
    if (this.#closing !== undefined) return this.#closing;
    const error = new ClientClosedError(`The client of ${this.#address()} was closed`);
    this.#state = "closed";
    this.#reconnectTimer?.cancel();
    const conn = this.#conn;
    this.#conn = undefined;
    conn?.close();
    this.#queue.rejectAll(error);
    this.#requests.rejectWhere(error);
    this.#inbox.end(error);
    this.#wake();
    this.#closing = (async () => {
      await this.#connecting;
      await Promise.all(this.#sessions);
    })();
    return this.#closing;
  }

  /** Same as {@link StageClient.close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #usable(): void {
    if (this.#state === "closed") {
      throw new ClientClosedError(`The client of ${this.#address()} is closed`);
    }
    if (this.#lostError !== undefined) throw this.#lostError;
  }

  #encode(value: unknown): Uint8Array {
    this.#usable();
    const frame = this.#settings.codec.encode(value);
    if (frame.length > this.#settings.maxFrame) {
      throw new FrameError(
        `Cannot send a ${frame.length}-byte frame to ${this.#address()}: above maxFrame ${this.#settings.maxFrame}`,
        "too_large",
        "outgoing",
      );
    }
    return frame;
  }

  #address(): string {
    return `${this.#settings.host}:${this.#settings.port}`;
  }

  #wake(): void {
    const wake = this.#wakeWriter;
    this.#wakeWriter = undefined;
    wake?.();
  }

  #emit<K extends keyof StageClientEvents>(event: K, ...args: Parameters<StageClientEvents[K]>) {
    for (const listener of this.#listeners[event]) {
      try {
        (listener as (...values: unknown[]) => void)(...args);
      } catch (error) {
        // A listener's bug must not break the connection: surface it as uncaught.
        queueMicrotask(() => {
          throw error;
        });
      }
    }
  }

  #attach(conn: ClientConnection): void {
    this.#conn = conn;
    const session = Promise.all([this.#readLoop(conn), this.#writeLoop(conn)]).then(() => {
      this.#sessions.delete(session);
    });
    this.#sessions.add(session);
  }

  async #readLoop(conn: ClientConnection): Promise<void> {
    const splitter = new FrameSplitter(this.#settings.maxFrame);
    const buffer = new Uint8Array(READ_BUFFER_BYTES);
    let cause: unknown;
    try {
      while (this.#conn === conn) {
        if (this.#inbox.full) {
          // Stop reading: TCP backpressure reaches the server until next() catches up.
          await this.#inbox.drained();
          continue;
        }
        const n = await conn.read(buffer);
        if (n === null) break;
        this.#receivedAt = this.#settings.clock.now();
        for (const frame of splitter.push(buffer.subarray(0, n))) {
          this.#dispatch(this.#decode(frame));
        }
      }
    } catch (error) {
      cause = error;
    }
    this.#lost(conn, cause);
  }

  async #writeLoop(conn: ClientConnection): Promise<void> {
    let cause: unknown;
    try {
      while (this.#conn === conn) {
        if (this.#queue.frames === 0) {
          await new Promise<void>((resolve) => this.#wakeWriter = resolve);
          continue;
        }
        const batch = this.#queue.peek(WRITE_BATCH_BYTES);
        const bytes = batch.length === 1 ? batch[0]!.frame : concatFrames(batch);
        for (let written = 0; written < bytes.length;) {
          written += await conn.write(bytes.subarray(written));
        }
        for (const entry of this.#queue.complete(batch)) entry.resolve();
      }
    } catch (error) {
      cause = error;
    }
    this.#lost(conn, cause);
  }

  #decode(frame: Uint8Array): unknown {
    try {
      return this.#settings.codec.decode(frame);
    } catch (error) {
      throw new FrameError(
        `Cannot decode a ${frame.length}-byte frame from ${this.#address()} with the ${this.#settings.codec.name} codec: ${
          (error as Error).message
        }`,
        "undecodable",
        "incoming",
        { cause: error },
      );
    }
  }

  #dispatch(message: unknown): void {
    // No pending request (the load generators' case): skip the table entirely.
    if (this.#requests.size > 0 && this.#requests.deliver(message)) return;
    if (this.#listeners.message.size > 0) this.#emit("message", message);
    else this.#inbox.push(message);
  }

  #lost(conn: ClientConnection, cause: unknown): void {
    if (this.#conn !== conn) return;
    this.#conn = undefined;
    conn.close();
    this.#wake();
    const why = cause === undefined ? "closed by the server" : (cause as Error).message;
    const error = new ConnectionLostError(
      `Lost the connection to ${this.#address()}: ${why}`,
      cause === undefined ? undefined : { cause },
    );
    this.#requests.rejectWhere(error, (request) => request.sent);
    this.#emit("disconnect", error);
    if (this.#state === "closed") return;
    const reconnect = this.#settings.reconnect;
    if (reconnect === false) return this.#giveUp(error);
    this.#state = "reconnecting";
    this.#scheduleReconnect(reconnect, 0, error);
  }

  #giveUp(error: ConnectionLostError): void {
    this.#state = "lost";
    this.#lostError = error;
    this.#queue.rejectAll(error);
    this.#requests.rejectWhere(error);
    this.#inbox.end(error);
  }

  #scheduleReconnect(options: ReconnectOptions, attempt: number, last: unknown): void {
    if (options.attempts !== undefined && attempt >= options.attempts) {
      return this.#giveUp(
        new ConnectionLostError(
          `Lost the connection to ${this.#address()}: gave up after ${attempt} reconnect attempts`,
          { cause: last },
        ),
      );
    }
    const delay = backoffDelay(attempt, options, this.#settings.random);
    this.#reconnectTimer = this.#settings.clock.setTimeout(() => {
      this.#reconnectTimer = undefined;
      const connecting = this.#tryReconnect(options, attempt).then(() => {
        if (this.#connecting === connecting) this.#connecting = undefined;
      });
      this.#connecting = connecting;
    }, delay);
  }

  async #tryReconnect(options: ReconnectOptions, attempt: number): Promise<void> {
    let conn: ClientConnection;
    try {
      conn = await this.#transport.connect(this.#settings.host, this.#settings.port);
    } catch (error) {
      if (this.#state === "reconnecting") this.#scheduleReconnect(options, attempt + 1, error);
      return;
    }
    if (this.#state !== "reconnecting") return conn.close();
    this.#state = "open";
    this.#attach(conn);
    this.#emit("reconnect", attempt + 1);
  }
}

function ignore(): void {}
