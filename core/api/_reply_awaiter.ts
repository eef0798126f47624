/**
 * Awaiting one reply: a one-off waitfor, a timeout, and the promise
 * `stage.request` and `requestTo` return.
 *
 * @module
 */
import { fromErrorRecord } from "../message/mod.ts";
import type { ReplyAddress } from "../pool/wire.ts";
import type { MessageLine } from "./_message_line.ts";
import { RequestTimeoutError } from "./messaging_errors.ts";

/** Default `stage.request` timeout. */
export const REQUEST_TIMEOUT_MS = 10_000;

/**
 * Registers a one-off reply waitfor, calls `send` with its address, and
 * settles with the first reply (or its error), or a `RequestTimeoutError`.
 */
export function awaitReply(
  line: MessageLine,
  timeoutMs: number,
  describe: () => string,
  send: (reply: ReplyAddress) => void,
): Promise<unknown> {
  return new Promise((resolve, reject) => {
    let timer: ReturnType<typeof setTimeout> | undefined = undefined;
    const id = line.registry.generate((...reply: unknown[]) => {
      clearTimeout(timer);
      line.registry.unregister(id);
      const error = line.context.getStore()?.errorRecord;
      if (error !== undefined) reject(fromErrorRecord(error));
      else resolve(reply[0]);
    });
    timer = setTimeout(() => {
      line.registry.unregister(id);
      reject(new RequestTimeoutError(describe()));
    }, timeoutMs);
    try {
      send({ stage: line.stage, worker: line.worker, id });
    } catch (error) {
      clearTimeout(timer);
      line.registry.unregister(id);
      reject(error);
    }
  });
}

/** `stage.request`'s arguments without a last `{ timeout: ms }`, and the timeout it sets. */
export function requestTimeout(args: unknown[]): { timeoutMs: number; args: unknown[] } {
  const last = args[args.length - 1];
  if (
    typeof last === "object" && last !== null && Object.keys(last).length === 1 &&
    typeof (last as { timeout?: unknown }).timeout === "number"
  ) {
    return { timeoutMs: (last as { timeout: number }).timeout, args: args.slice(0, -1) };
  }
  return { timeoutMs: REQUEST_TIMEOUT_MS, args };
}
