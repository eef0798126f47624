/**
 * `broker.submit(socket, fn, ...args)`: a function call queued in a socket's own
 * flow, so it runs on the socket's home worker in order with its frames, never
 * at the same time as one of them.
 *
 * The call travels as an `Inject` record (mode {@link InjectMode.Submit}) through
 * the main thread, which queues it behind the socket's waiting frames like any
 * other record of that socket.
 *
 * @module
 */
import type { Logger } from "@logtape/logtape";
import { packValues, unpackValues } from "../message/mod.ts";
import { InjectMode, ToMain } from "../pool/wire.ts";
import type { PlatformPort } from "./platform_port.ts";
import { describeScriptError } from "./script_error.ts";

type Handler = (...args: unknown[]) => unknown;

/** Loads `"file+export"` names (the script loader's `require`). */
export type ExportResolver = (name: string) => Promise<unknown>;

/**
 * Sends `fn(...args)` to socket `id`'s flow. `fn` travels as source (the sandbox
 * rule: a captured variable fails where it runs) or is a `"file+export"` name.
 *
 * @throws TypeError when `fn` is neither a function nor a string
 * @example
 * ```ts ignore
 * sendSocketSubmit(port, socket.id, (id: number) => broker.f(id).commit({ tick: true }), [socket.id]);
 * ```
 */
export function sendSocketSubmit(
  port: PlatformPort,
  id: number,
  fn: Handler | string,
  args: unknown[],
): void {
  if (typeof fn !== "function" && typeof fn !== "string") {
    throw new TypeError(
      `broker.submit(socket ${id}): expected a function or "file+export"; got ${typeof fn}`,
    );
  }
  port.send(ToMain.Inject, id, InjectMode.Submit, packValues([fn, ...args]).bytes);
}

/**
 * Runs a `broker.submit` call that reached the socket's home worker. A numeric
 * result (ms ≥ 0) sends the same call again after that long, queued behind
 * whatever the socket received meanwhile; a failure is logged.
 */
export async function runSocketSubmit(
  id: number,
  body: Uint8Array,
  resolve: ExportResolver | undefined,
  port: PlatformPort,
  log: Logger,
): Promise<void> {
  try {
    let [fn, ...args] = unpackValues(body);
    if (typeof fn === "string") {
      if (resolve === undefined) throw new TypeError(`cannot load "${fn}" here`);
      fn = await resolve(fn);
    }
    if (typeof fn !== "function") throw new TypeError(`not a function: ${typeof fn}`);
    const result = await (fn as Handler)(...args);
    if (typeof result === "number" && Number.isFinite(result) && result >= 0) {
      // A closed socket's flow is gone by then: the main thread drops the call.
      setTimeout(() => port.send(ToMain.Inject, id, InjectMode.Submit, body), result);
    }
  } catch (error) {
    log.error("broker.submit(socket {id}) failed: {text}", {
      id,
      text: describeScriptError(error),
      error,
    });
  }
}
