/**
 * The server a worker's `broker.ready` registers: the handle the script gets,
 * and what the worker keeps to adopt the sockets it accepts.
 *
 * @module
 */
import type { Logger } from "@logtape/logtape";
import { fromErrorRecord } from "../message/mod.ts";
import type { ErrorRecord } from "../message/mod.ts";
import type { PlatformPort } from "./platform_port.ts";
import { describeScriptError } from "./script_error.ts";
import type { ReceiveFunction, Socket, SocketFormat } from "./socket.ts";

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

/** A server as one worker keeps it: the script's handle and how its sockets start. */
export interface ListenServer {
  handle: ServerHandle;
  onAccept: AcceptFunction;
  format: SocketFormat;
  /** Settles `handle.listening` with the main thread's answer to the `listen` request. */
  settle(error?: ErrorRecord): void;
}

/**
 * Builds the server for `broker.ready(url, onAccept)`: its handle forwards
 * `expire` and `stop()` to the main thread through `port`. Sends nothing itself.
 *
 * @example
 * ```ts ignore
 * const server = createListenServer("tcp://127.0.0.1:0", onAccept, { codec: "json" }, port);
 * port.post({ type: "listen", url: server.handle.url });
 * ```
 */
export function createListenServer(
  url: string,
  onAccept: AcceptFunction,
  format: SocketFormat,
  port: PlatformPort,
): ListenServer {
  let settle!: (error?: ErrorRecord) => void;
  const listening = new Promise<void>((resolve, reject) => {
    settle = (error) => error === undefined ? resolve() : reject(fromErrorRecord(error));
  });
  listening.catch(() => {}); // the main thread logs bind failures
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
  return { handle, onAccept, format, settle };
}

/**
 * Runs `onAccept(socket)` for a socket that just opened (`where` names the
 * `broker.ready`/`broker.join` call in the log): `false` or a throw closes the
 * socket, a function becomes its receive function.
 *
 * @example
 * ```ts ignore
 * acceptSocket(socket, server.onAccept, `broker.ready("${url}")`, log);
 * ```
 */
export function acceptSocket(
  socket: Socket,
  onAccept: AcceptFunction,
  where: string,
  log: Logger,
): void {
  let result;
  try {
    result = onAccept(socket);
  } catch (error) {
    log.error("{where}: onAccept threw for socket {id}; closing it: {message}", {
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
