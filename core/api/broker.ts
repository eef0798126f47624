/**
 * `broker`: listening, connecting out, and the socket lifecycle inside a worker.
 *
 * Every worker runs the main script, so every worker registers the same
 * listeners; the main thread binds each address once and hands each accepted
 * socket to one worker (its home), where `onAccept` runs once.
 *
 * @module
 */
import { deserialize, serialize } from "node:v8";
import type { Logger } from "@logtape/logtape";
import { parseListenAddress } from "../net/listen_address.ts";
import { fromErrorRecord } from "../message/mod.ts";
import type { ErrorRecord } from "../message/mod.ts";
import {
  type CloseReasonCode,
  closeReasonNames,
  type SocketOpenInfo,
  ToMain,
} from "../pool/wire.ts";
import type { PlatformPort } from "./platform_port.ts";
import { decodeFrame } from "./payload_codec.ts";
import { describeScriptError, here } from "./script_error.ts";
import { type ReceiveFunction, Socket, type SocketFormat } from "./socket.ts";

/** `onAccept(socket)`: return `false` to refuse, or a receive function. */
export type AcceptFunction = (socket: Socket) => false | ReceiveFunction | void;

/** The handle `broker.ready` returns. */
export interface ServerHandle {
  /** The listen URL as given. */
  readonly url: string;
  /** Called on the socket's worker when one of this server's sockets closes. */
  close: ((socket: Socket, reason: string) => void) | undefined;
  /** Default idle timeout of this server's sockets, in ms (0 = none). */
  expire: number;
  /** Resolves once the address is bound (rejects if binding failed). */
  readonly listening: Promise<void>;
  /** Stops accepting new connections; open sockets stay. */
  stop(): void;
}

interface Server {
  handle: ServerHandle;
  onAccept: AcceptFunction;
  format: SocketFormat;
  settle(error?: ErrorRecord): void;
}

interface Join {
  url: string;
  format: SocketFormat;
  onConnect: AcceptFunction;
  resolve(socket: Socket): void;
  reject(error: Error): void;
}

interface Home {
  socket: Socket;
  format: SocketFormat;
  server: Server | undefined;
  /** The user fields as last sent to the main thread (for moving the socket). */
  fields?: Uint8Array;
}

/** Own properties of a socket that are not user fields. */
const SOCKET_PROPERTIES = new Set(["id", "local", "remote", "receive", "moved"]);

/** The `broker` global of one worker. */
export class Broker {
  #port: PlatformPort;
  #log: Logger;
  #servers = new Map<string, Server>();
  #joins = new Map<number, Join>();
  #nextJoin = 1;
  #sockets = new Map<number, Home>();

  constructor(port: PlatformPort, log: Logger) {
    this.#port = port;
    this.#log = log;
  }

  /**
   * Listens on `url` (`"tcp://host:port?packet=IN,OUT&json"`, or
   * `"ws://host:port/path?…"` for WebSocket clients: one message per frame);
   * every accepted socket runs `onAccept` once, on the worker that takes it.
   *
   * @throws TypeError for a malformed URL, a `udp://` URL, or a second `ready` on the same URL
   */
  ready(url: string, onAccept: AcceptFunction): ServerHandle {
    if (typeof onAccept !== "function") {
      throw new TypeError(`broker.ready("${url}"): onAccept must be a function`);
    }
    const address = parseListenAddress(url);
    if (address.protocol === "udp") {
      throw new TypeError(
        `broker.ready("${url}"): only tcp:// and ws:// listeners are available so far`,
      );
    }
    if (this.#servers.has(url)) {
      throw new TypeError(`broker.ready("${url}"): this worker already listens there`);
    }
    let settle!: (error?: ErrorRecord) => void;
    const listening = new Promise<void>((resolve, reject) => {
      settle = (error) => error === undefined ? resolve() : reject(fromErrorRecord(error));
    });
    listening.catch(() => {}); // the main thread logs bind failures
    const port = this.#port;
    let expire = 0;
    const handle: ServerHandle = {
      url,
      close: undefined,
      listening,
      get expire() {
        return expire;
      },
      set expire(ms: number) {
        if (typeof ms !== "number" || !Number.isFinite(ms) || ms < 0) {
          throw new RangeError(`server.expire must be a non-negative number of ms; got ${ms}`);
        }
        expire = ms;
        port.post({ type: "server-expire", url, ms });
      },
      stop() {
        port.post({ type: "server-stop", url });
      },
    };
    this.#servers.set(url, {
      handle,
      onAccept,
      format: { codec: address.codec, maxOut: address.maxOut },
      settle,
    });
    port.post({ type: "listen", url, ...here() });
    return handle;
  }

  /**
   * Connects out to `url` (same framing as `ready`); `onConnect` runs like
   * `onAccept` once connected. Resolves with the socket.
   */
  join(url: string, onConnect: AcceptFunction): Promise<Socket> {
    if (typeof onConnect !== "function") {
      return Promise.reject(new TypeError(`broker.join("${url}"): onConnect must be a function`));
    }
    let address;
    try {
      address = parseListenAddress(url);
    } catch (error) {
      return Promise.reject(error);
    }
    const requestId = this.#nextJoin++;
    return new Promise<Socket>((resolve, reject) => {
      this.#joins.set(requestId, {
        url,
        format: { codec: address.codec, maxOut: address.maxOut },
        onConnect,
        resolve,
        reject,
      });
      this.#port.post({ type: "join", url, requestId });
    });
  }

  /** Closes one socket or several by id. */
  close(ids: number | number[]): void {
    for (const id of Array.isArray(ids) ? ids : [ids]) {
      const home = this.#sockets.get(id);
      if (home !== undefined) home.socket.close();
      else this.#port.send(ToMain.Close, id >>> 0, 0);
    }
  }

  /**
   * The socket handle for an id. On the socket's own worker it is the full handle
   * (with user fields); elsewhere a handle whose `commit` and `close` are routed
   * through the socket's worker, in order with its frames.
   */
  f(id: number): Socket {
    const home = this.#sockets.get(id);
    if (home !== undefined) return home.socket;
    return new Socket(id >>> 0, "", "", this.#port, undefined);
  }

  /** Injects `value` into socket `id` as if the client had sent it. */
  signal(id: number, value: unknown): void {
    this.#port.send(ToMain.Inject, id >>> 0, 0, serialize(value));
  }

  /** Main thread answered a `listen` request. */
  listenResult(url: string, error: ErrorRecord | undefined): void {
    this.#servers.get(url)?.settle(error);
  }

  /** A socket opened and this worker is its home. */
  open(id: number, body: Uint8Array): void {
    const info = JSON.parse(new TextDecoder().decode(body)) as SocketOpenInfo;
    if (info.join !== undefined) {
      const join = this.#joins.get(info.join);
      this.#joins.delete(info.join);
      if (join === undefined) return;
      const socket = this.#adopt(id, info, join.format, undefined);
      this.#accept(socket, join.onConnect, `broker.join("${join.url}")`);
      join.resolve(socket);
      return;
    }
    const server = this.#servers.get(info.url);
    if (server === undefined) {
      this.#log.error("Socket {id} opened for {url}, which this worker does not serve", {
        id,
        url: info.url,
      });
      this.#port.send(ToMain.Close, id, 0);
      return;
    }
    const socket = this.#adopt(id, info, server.format, server);
    this.#accept(socket, server.onAccept, `broker.ready("${info.url}")`);
    this.#syncFields(id);
  }

  /**
   * Socket `id` moved to another worker (this one was stuck): forget it without
   * running its close callback.
   */
  forget(id: number): void {
    this.#sockets.get(id)?.socket.markClosed();
    this.#sockets.delete(id);
  }

  /**
   * Runs after a socket's handler (sync, or once its promise settles): sends the
   * socket's user fields to the main thread when they changed, so a socket that
   * has to move to another worker keeps them.
   */
  afterHandler(id: number, result: unknown): unknown {
    if (result instanceof Promise) return result.finally(() => this.#syncFields(id));
    this.#syncFields(id);
    return result;
  }

  #syncFields(id: number): void {
    const home = this.#sockets.get(id);
    if (home === undefined) return;
    const socket = home.socket as unknown as Record<string, unknown>;
    let fields: Record<string, unknown> | undefined;
    for (const key in socket) {
      if (!SOCKET_PROPERTIES.has(key)) (fields ??= {})[key] = socket[key];
    }
    if (fields === undefined && home.fields === undefined) return;
    let bytes: Uint8Array;
    try {
      bytes = serialize(fields ?? {});
    } catch {
      return; // fields that cannot be cloned (functions) stay on this worker only
    }
    if (home.fields !== undefined && sameBytes(home.fields, bytes)) return;
    home.fields = bytes;
    this.#port.send(ToMain.SocketFields, id >>> 0, 0, bytes);
  }

  /** An outgoing connection failed. */
  joinFailed(requestId: number, body: Uint8Array): void {
    const join = this.#joins.get(requestId);
    this.#joins.delete(requestId);
    if (join === undefined) return;
    join.reject(fromErrorRecord(JSON.parse(new TextDecoder().decode(body)) as ErrorRecord));
  }

  /** A frame arrived for socket `id`. */
  frame(id: number, frame: Uint8Array): unknown {
    const home = this.#sockets.get(id);
    if (home === undefined) {
      // A frame can only get here for a socket this worker does not hold if the
      // platform misrouted it: say so rather than drop it silently.
      this.#log.error("Frame for socket {id}, which this worker does not hold; dropped", { id });
      return undefined;
    }
    return this.#deliver(home, decodeFrame(frame, home.format.codec));
  }

  /** A value injected by `broker.signal` (mode 0) or committed from another worker (mode 1). */
  inject(id: number, mode: number, body: Uint8Array): unknown {
    const home = this.#sockets.get(id);
    if (home === undefined) return undefined;
    const value = deserialize(body);
    if (mode === 1) {
      home.socket.commit(value);
      return undefined;
    }
    return this.#deliver(home, value);
  }

  /** Socket `id` closed; runs the server's close callback and forgets the socket. */
  closed(id: number, reason: number, body: Uint8Array): unknown {
    const home = this.#sockets.get(id);
    if (home === undefined) return undefined;
    this.#sockets.delete(id);
    home.socket.markClosed();
    const callback = home.server?.handle.close;
    if (callback === undefined) return undefined;
    const name = closeReasonNames[reason as CloseReasonCode] ?? "unknown";
    const detail = new TextDecoder().decode(body);
    return callback(home.socket, detail.length > 0 ? `${name}: ${detail}` : name);
  }

  /** Number of sockets whose home is this worker. */
  get socketCount(): number {
    return this.#sockets.size;
  }

  #adopt(id: number, info: SocketOpenInfo, format: SocketFormat, server: Server | undefined) {
    const moved = info.moved;
    const socket = new Socket(id, info.local, info.remote, this.#port, format, moved !== undefined);
    const home: Home = { socket, format, server };
    this.#sockets.set(id, home);
    if (moved !== undefined) {
      socket.restoreOptions(moved.expire, moved.commitMs);
      if (moved.fields !== undefined) {
        const bytes = Uint8Array.from(atob(moved.fields), (c) => c.charCodeAt(0));
        home.fields = bytes;
        const fields = deserialize(bytes) as Record<string, unknown>;
        for (const [key, value] of Object.entries(fields)) {
          if (!SOCKET_PROPERTIES.has(key)) {
            (socket as unknown as Record<string, unknown>)[key] = value;
          }
        }
      }
    } else if (server !== undefined && server.handle.expire > 0) {
      socket.expire = server.handle.expire;
    }
    return socket;
  }

  #accept(socket: Socket, onAccept: AcceptFunction, where: string): void {
    let result;
    try {
      result = onAccept(socket);
    } catch (error) {
      this.#log.error("{where}: onAccept threw for socket {id}; closing it: {message}", {
        where,
        id: socket.id,
        message: describeScriptError(error),
        error,
      });
      socket.close();
      return;
    }
    if (result === false) {
      socket.close();
      return;
    }
    if (typeof result === "function") socket.receive = result;
  }

  #deliver(home: Home, data: unknown): unknown {
    const receive = home.socket.receive;
    if (receive === undefined) {
      this.#log.warning("Socket {id} has no receive function; frame dropped", {
        id: home.socket.id,
      });
      return undefined;
    }
    return receive(home.socket, data);
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
