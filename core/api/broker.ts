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
import { frameOutLimit, udpOptions } from "../net/udp_address.ts";
import { fromErrorRecord } from "../message/mod.ts";
import type { ErrorRecord } from "../message/mod.ts";
import {
  CloseReason,
  type CloseReasonCode,
  closeReasonNames,
  InjectMode,
  type InterfaceAddress,
  type MainControl,
  type SocketOpenInfo,
  ToMain,
} from "../pool/wire.ts";
import type { PlatformPort } from "./platform_port.ts";
import { aton, ntoa } from "./net_address.ts";
import { decodeFrame } from "./payload_codec.ts";
import { describeScriptError, here } from "./script_error.ts";
import { type ReceiveFunction, Socket, type SocketFormat } from "./socket.ts";
import { DecryptError, type SocketCipher } from "./socket_crypto.ts";
import { type ExportResolver, runSocketSubmit, sendSocketSubmit } from "./socket_submit.ts";

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
  /** A frame failed to decrypt: the socket is closing, its later frames are dropped. */
  failed?: boolean;
}

/** Own properties of a socket that are not user fields. */
const SOCKET_PROPERTIES = new Set(["id", "local", "remote", "receive", "moved"]);

/** Where the synced fields keep `socket.crypto` (no script field can have this name). */
const CRYPTO_FIELD = "\u0000crypto";

/** The `broker` global of one worker. */
export class Broker {
  #port: PlatformPort;
  #log: Logger;
  #servers = new Map<string, Server>();
  #joins = new Map<number, Join>();
  #nextJoin = 1;
  #sockets = new Map<number, Home>();
  #resolve: ExportResolver | undefined;

  /** @param resolve loads `"file+export"` names for `broker.submit` */
  constructor(port: PlatformPort, log: Logger, resolve?: ExportResolver) {
    this.#port = port;
    this.#log = log;
    this.#resolve = resolve;
  }

  /**
   * Listens on `url` (`"tcp://host:port?packet=IN,OUT&json"`,
   * `"ws://host:port/path?…"` for WebSocket clients: one message per frame, or
   * `"udp://host:port?…"`: one datagram per frame, each remote address a socket);
   * every accepted socket runs `onAccept` once, on the worker that takes it.
   *
   * @throws TypeError for a malformed URL (or bad `udp://` options), or a second
   *   `ready` on the same URL
   */
  ready(url: string, onAccept: AcceptFunction): ServerHandle {
    if (typeof onAccept !== "function") {
      throw new TypeError(`broker.ready("${url}"): onAccept must be a function`);
    }
    const address = parseListenAddress(url);
    if (address.protocol === "udp") udpOptions(address, "listen", url);
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
      format: { codec: address.codec, maxOut: frameOutLimit(address) },
      settle,
    });
    port.post({ type: "listen", url, ...here() });
    return handle;
  }

  /**
   * Connects out to `url` (same framing as `ready`); `onConnect` runs like
   * `onAccept` once connected. Resolves with the socket. For `udp://` the
   * socket is a UDP socket of its own whose datagrams go to `host:port`, and
   * the datagrams that address sends back are its frames.
   */
  join(url: string, onConnect: AcceptFunction): Promise<Socket> {
    if (typeof onConnect !== "function") {
      return Promise.reject(new TypeError(`broker.join("${url}"): onConnect must be a function`));
    }
    let address;
    try {
      address = parseListenAddress(url);
      if (address.protocol === "udp") udpOptions(address, "join", url);
    } catch (error) {
      return Promise.reject(error);
    }
    const requestId = this.#nextJoin++;
    return new Promise<Socket>((resolve, reject) => {
      this.#joins.set(requestId, {
        url,
        format: { codec: address.codec, maxOut: frameOutLimit(address) },
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

  /**
   * Runs `fn(...args)` in the socket's own order: on its home worker, queued
   * behind the frames it has received so far, never at the same time as one of
   * them. A numeric result runs it again after that many ms (behind what
   * arrived meanwhile). Unlike `stage.submit(socket.id, …)`, whose number is a
   * user key of its own, this shares the socket's order. Dropped once the
   * socket is closed. `fn` travels as source (the sandbox rule: a function that
   * uses an outer variable fails with `CapturedVariableError` where it runs, logged).
   *
   * @throws TypeError for a socket that is neither a socket nor an id, or a bad `fn`
   */
  submit(
    socket: Socket | number,
    fn: ((...args: never[]) => unknown) | string,
    ...args: unknown[]
  ): void {
    const id = typeof socket === "number" ? socket : socket instanceof Socket ? socket.id : NaN;
    if (!Number.isInteger(id) || id < 0 || id > 0xffff_ffff) {
      throw new TypeError(`broker.submit: expected a socket or a socket id; got ${String(socket)}`);
    }
    sendSocketSubmit(this.#port, id, fn as (...args: unknown[]) => unknown, args);
  }

  /** An IP address as a number (IPv4, network order) or 16 bytes (IPv6); see {@link aton}. */
  aton(address: string): number | Uint8Array {
    return aton(address);
  }

  /** A number or 4/16 address bytes as text; see {@link ntoa}. */
  ntoa(value: number | Uint8Array): string {
    return ntoa(value);
  }

  /**
   * The machine's network interface addresses. The main thread reads them
   * (workers usually lack the `sys` permission this needs), hence a promise.
   *
   * @throws Error (rejects) when the main thread cannot read them
   */
  async ifaddr(): Promise<InterfaceAddress[]> {
    const answer = await this.#port.request<Extract<MainControl, { type: "ifaddr-result" }>>(
      (requestId) => ({ type: "ifaddr", requestId }),
    );
    if (answer.error !== undefined) throw fromErrorRecord(answer.error);
    return answer.addresses ?? [];
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
    const crypto = home.socket.crypto;
    if (crypto !== undefined) (fields ??= {})[CRYPTO_FIELD] = crypto;
    if (fields === undefined && home.fields === undefined) return;
    let bytes: Uint8Array;
    try {
      bytes = serialize(fields ?? {});
    } catch {
      // Fields that cannot be cloned (functions) stay on this worker only; the key must
      // move with the socket all the same, or a moved socket would talk in the clear.
      if (crypto === undefined) return;
      bytes = serialize({ [CRYPTO_FIELD]: crypto });
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
    if (home.failed) return undefined;
    const cipher = home.socket.cipher;
    if (cipher !== undefined) return this.#decrypted(home, cipher, frame);
    return this.#deliver(home, decodeFrame(frame, home.format.codec));
  }

  /** An encrypted socket's frame: decrypted, then decoded and delivered; else the socket closes. */
  async #decrypted(home: Home, cipher: SocketCipher, frame: Uint8Array): Promise<unknown> {
    let plain: Uint8Array;
    try {
      plain = await cipher.open(frame);
    } catch (error) {
      if (!(error instanceof DecryptError)) throw error;
      // Only this socket: the main thread logs and counts the close (decrypt_failed).
      home.failed = true;
      home.socket.abort(CloseReason.DecryptFailed, error.message);
      return undefined;
    }
    return this.#deliver(home, decodeFrame(plain, home.format.codec));
  }

  /** An `Inject` record: a `broker.signal` value, a commit from another worker, or a `broker.submit`. */
  inject(id: number, mode: number, body: Uint8Array): unknown {
    const home = this.#sockets.get(id);
    if (home === undefined) return undefined;
    if (mode === InjectMode.Submit) {
      return runSocketSubmit(id, body, this.#resolve, this.#port, this.#log);
    }
    const value = deserialize(body);
    if (mode === InjectMode.Commit) {
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
    format.protocol ??= info.url.slice(0, Math.max(0, info.url.indexOf(":")));
    const socket = new Socket(
      id,
      info.local,
      info.remote,
      this.#port,
      format,
      moved !== undefined,
      (socket, error) =>
        this.#log.error("Socket {id}: a frame could not be encrypted; closing it: {error}", {
          id: socket.id,
          error,
        }),
    );
    const home: Home = { socket, format, server };
    this.#sockets.set(id, home);
    if (moved !== undefined) {
      socket.restoreOptions(moved.expire, moved.commitMs);
      if (moved.fields !== undefined) {
        const bytes = Uint8Array.from(atob(moved.fields), (c) => c.charCodeAt(0));
        home.fields = bytes;
        const fields = deserialize(bytes) as Record<string, unknown>;
        for (const [key, value] of Object.entries(fields)) {
          if (key === CRYPTO_FIELD) this.#restoreCrypto(socket, value);
          else if (!SOCKET_PROPERTIES.has(key)) {
            (socket as unknown as Record<string, unknown>)[key] = value;
          }
        }
      }
    } else if (server !== undefined && server.handle.expire > 0) {
      socket.expire = server.handle.expire;
    }
    return socket;
  }

  #restoreCrypto(socket: Socket, options: unknown): void {
    try {
      socket.crypto = options as Socket["crypto"];
    } catch (error) {
      this.#log.error("Socket {id} moved without its encryption; closing it: {error}", {
        id: socket.id,
        error,
      });
      socket.close();
    }
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
      // A socket refused by onAccept (or closed) gets no warning per frame still
      // arriving: a refused UDP peer may send many before it is forgotten.
      if (home.socket.closed) return undefined;
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
