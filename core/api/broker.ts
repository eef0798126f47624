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
  type CloseReasonCode,
  closeReasonNames,
  InjectMode,
  type InterfaceAddress,
  type MainControl,
  type SocketOpenInfo,
  ToMain,
} from "../pool/wire.ts";
import { deliver, deliverFrame } from "./_broker_frames.ts";
import { SocketHomes } from "./_socket_homes.ts";
import type { PlatformPort } from "./platform_port.ts";
import { aton, ntoa } from "./net_address.ts";
import { here } from "./script_error.ts";
import {
  type AcceptFunction,
  acceptSocket,
  createListenServer,
  type ListenServer,
  type ServerHandle,
} from "./server_handle.ts";
import { Socket, type SocketFormat } from "./socket.ts";
import { type ExportResolver, runSocketSubmit, sendSocketSubmit } from "./socket_submit.ts";

export type { AcceptFunction, ServerHandle } from "./server_handle.ts";

interface Join {
  url: string;
  format: SocketFormat;
  onConnect: AcceptFunction;
  resolve(socket: Socket): void;
  reject(error: Error): void;
}

/** The `broker` global of one worker. */
export class Broker {
  #port: PlatformPort;
  #log: Logger;
  #servers = new Map<string, ListenServer>();
  #joins = new Map<number, Join>();
  #nextJoin = 1;
  #sockets: SocketHomes;
  #resolve: ExportResolver | undefined;

  /** @param resolve loads `"file+export"` names for `broker.submit` */
  constructor(port: PlatformPort, log: Logger, resolve?: ExportResolver) {
    this.#port = port;
    this.#log = log;
    this.#resolve = resolve;
    this.#sockets = new SocketHomes(port, log);
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
    const format = { codec: address.codec, maxOut: frameOutLimit(address) };
    const server = createListenServer(url, onAccept, format, this.#port);
    this.#servers.set(url, server);
    this.#port.post({ type: "listen", url, ...here() });
    return server.handle;
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
      const socket = this.#sockets.adopt(id, info, join.format, undefined);
      acceptSocket(socket, join.onConnect, `broker.join("${join.url}")`, this.#log);
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
    const socket = this.#sockets.adopt(id, info, server.format, server);
    acceptSocket(socket, server.onAccept, `broker.ready("${info.url}")`, this.#log);
    this.#sockets.syncFields(id);
  }

  /**
   * Socket `id` moved to another worker (this one was stuck): forget it without
   * running its close callback.
   */
  forget(id: number): void {
    this.#sockets.take(id)?.socket.markClosed();
  }

  /**
   * Runs after a socket's handler (sync, or once its promise settles): sends the
   * socket's user fields to the main thread when they changed, so a socket that
   * has to move to another worker keeps them.
   */
  afterHandler(id: number, result: unknown): unknown {
    if (result instanceof Promise) return result.finally(() => this.#sockets.syncFields(id));
    this.#sockets.syncFields(id);
    return result;
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
    return deliverFrame(home, frame, this.#log);
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
    return deliver(home, value, this.#log);
  }

  /** Socket `id` closed; runs the server's close callback and forgets the socket. */
  closed(id: number, reason: number, body: Uint8Array): unknown {
    const home = this.#sockets.take(id);
    if (home === undefined) return undefined;
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
}
