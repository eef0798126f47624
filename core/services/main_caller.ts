/**
 * The process's own way into the bus from the main thread: what the admin
 * API's `POST /signal` and the HTTP gateway send through. A {@link MainCaller}
 * is a member of the bus (so replies reach it) that handles nothing but the
 * replies to its own requests.
 *
 * @module
 */
import type { Logger } from "@logtape/logtape";
import type { Messaging } from "../api/messaging.ts";
import { parseTarget } from "../message/mod.ts";
import type { SignalHeader } from "../pool/wire.ts";
import { mainThreadMessaging, type ServiceBus } from "./service_stage.ts";

/** The stage id of every process's caller (replies address it with `to` = its process). */
export const CALLER_STAGE_ID = "#caller";

/** Sends stage messages from the main thread. */
export interface StageCaller {
  /**
   * Sends `values` to `target` (the `stage.request` grammar) and resolves with
   * the first reply value.
   *
   * @throws {TypeError} (rejects) a target that is not a stage message target
   * @throws {RequestTimeoutError} (rejects) no reply within `timeoutMs`
   * @throws {StageNotFoundError} (rejects) nothing serves the target's stage
   */
  request(target: string, values: unknown[], timeoutMs: number): Promise<unknown>;
  /**
   * Sends without waiting for a reply (the `stage.signal` grammar).
   *
   * @throws {TypeError} a target that is not a stage message target
   */
  signal(target: string, values: unknown[]): void;
}

/** Only `"stage:msg"` forms: the caller has no messages of its own and holds no locks. */
function checkTarget(target: string): void {
  if (typeof target !== "string" || parseTarget(target).kind !== "stage") {
    throw new TypeError(
      `Cannot send to "${target}" from the main thread: expected a stage message target ("stage:msg")`,
    );
  }
}

/**
 * The bus member behind a process's {@link StageCaller}.
 *
 * @example
 * ```ts ignore
 * const caller = new MainCaller(bus, log);
 * bus.join(caller);
 * const sum = await caller.request("calc:add", [2, 3], 1000);
 * ```
 */
export class MainCaller implements StageCaller {
  readonly id = CALLER_STAGE_ID;
  #messaging: Messaging;

  constructor(bus: ServiceBus, log: Logger) {
    this.#messaging = mainThreadMessaging(CALLER_STAGE_ID, bus, log);
  }

  /** Takes a reply (the bus delivers nothing else here: nobody else knows this stage). */
  deliver(_header: SignalHeader, body: Uint8Array): void {
    // Settling a reply's promise only queues its continuation: safe inside the bus's call.
    this.#messaging.receive(body.slice());
  }

  request(target: string, values: unknown[], timeoutMs: number): Promise<unknown> {
    try {
      checkTarget(target);
    } catch (error) {
      return Promise.reject(error);
    }
    if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) {
      return Promise.reject(new RangeError(`Request timeout must be > 0 ms; got ${timeoutMs}`));
    }
    // The options object last, always: a caller's own last value is never taken for it.
    return this.#messaging.request(target, ...values, { timeout: timeoutMs });
  }

  signal(target: string, values: unknown[]): void {
    checkTarget(target);
    this.#messaging.signal(target, ...values);
  }
}
