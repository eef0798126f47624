/**
 * `stage.waitfor`, `stage.signal`, `stage.request` and `stage.context` inside one
 * worker: registrations, sending through the main thread's bus, and running
 * handlers for the messages this worker receives.
 *
 * @module
 */
import type { Logger } from "@logtape/logtape";
import { parseTarget, type WaitforRegistry } from "../message/mod.ts";
import { MessageLine, modifiers, SUBMIT_MESSAGE } from "./_message_line.ts";
import type { Handler } from "./_message_line.ts";
import { MessageReceiver } from "./_message_receiver.ts";
import { MessageThreads } from "./_message_threads.ts";
import { awaitReply, REQUEST_TIMEOUT_MS, requestTimeout } from "./_reply_awaiter.ts";
import { holdTicket } from "./_ticket_grants.ts";
import type { Address, DeliveryOptions, MessageContext, ThreadHandle } from "./messaging_types.ts";
import type { PlatformPort } from "./platform_port.ts";
import { here } from "./script_error.ts";

export type { Address, DeliveryOptions, MessageContext, ThreadHandle } from "./messaging_types.ts";
export {
  RequestTimeoutError,
  StageNotFoundError,
  WaitforNotFoundError,
  WorkerTerminatedError,
} from "./messaging_errors.ts";

/** The messaging half of the `stage` global of one worker. */
export class Messaging {
  readonly registry: WaitforRegistry;
  #line: MessageLine;
  #port: PlatformPort;
  #threads: MessageThreads;
  #receiver: MessageReceiver;

  /** @param resolve loads `"file+export"` names (the script loader's `require`) */
  constructor(
    stage: string,
    worker: number,
    port: PlatformPort,
    log: Logger,
    resolve: (name: string) => Promise<unknown>,
    options: { service?: boolean } = {},
  ) {
    this.#port = port;
    this.#line = new MessageLine(stage, worker, port, log);
    this.registry = this.#line.registry;
    this.#threads = new MessageThreads(this.#line);
    this.#receiver = new MessageReceiver(
      this.#line,
      this.#threads,
      resolve,
      options.service ?? false,
    );
  }

  /** The context of the message being handled, if any. */
  get context(): MessageContext | undefined {
    const store = this.#line.context.getStore();
    if (store === undefined) return undefined;
    const { replied: _replied, errorRecord: _error, thread: _thread, ...context } = store;
    return context;
  }

  /**
   * `waitfor(id, fn, ...bound)` registers; `waitfor(fn)` registers under a
   * generated id and returns it; `waitfor(id, null)` unregisters; `waitfor(id)`
   * returns `[fn, bound]` or undefined.
   */
  waitfor(idOrFn: string | Handler, fn?: Handler | null, ...bound: unknown[]): unknown {
    if (typeof idOrFn === "function") {
      return this.registry.generate(
        idOrFn,
        [fn, ...bound].filter((_, i) => i > 0 || fn !== undefined),
      );
    }
    if (fn === null) {
      this.#port.post({ type: "unwaitfor", id: idOrFn });
      return this.registry.unregister(idOrFn);
    }
    if (fn === undefined) {
      const found = this.registry.get(idOrFn);
      return found === undefined ? undefined : [found.fn, found.bound];
    }
    this.registry.register(idOrFn, fn, bound);
    this.#port.post({ type: "waitfor", id: idOrFn, serial: false, ...here() });
    return idOrFn;
  }

  /**
   * Registers `fn` for `id` so that messages to it run one at a time, in arrival
   * order, across every worker (an async handler holds its turn until it settles).
   */
  waitforSerial(id: string, fn: Handler, ...bound: unknown[]): string {
    this.registry.register(id, fn, bound, true);
    this.#port.post({ type: "waitfor", id, serial: true, ...here() });
    return id;
  }

  /**
   * Sends a message (see DESIGN.md §4 for the target forms). Returns the delivery
   * result: the handler's result for a synchronous `":msg"`, `true` once sent, or a
   * `TypeError` value (also logged) naming the bad part of a malformed target or
   * saying that a `null` reply has no message to answer.
   */
  signal(target: string | null, ...values: unknown[]): unknown {
    const line = this.#line;
    let parsed;
    try {
      parsed = parseTarget(target);
    } catch (error) {
      // The delivery result of a malformed target is the error, named and logged.
      line.log.warning("{text}", { text: (error as Error).message });
      return error;
    }
    switch (parsed.kind) {
      case "reply": {
        const store = line.context.getStore();
        if (store?.reply === undefined && store?.ticket?.hold) {
          return holdTicket(line, store, values);
        }
        if (store?.reply === undefined) {
          const error = new TypeError(
            "stage.signal(null): there is no message being handled that expects a reply",
          );
          line.log.warning("{text}", { text: error.message });
          return error;
        }
        store.replied = true;
        line.sendReply(store.reply, values);
        return true;
      }
      case "self":
        if (parsed.sync) return this.#receiver.runLocal(parsed.message, values);
        line.send({
          stage: line.stage,
          scope: parsed.scope,
          message: parsed.message,
          from: line.from(),
          ...line.replyTo(parsed.reply),
          ...modifiers(parsed),
        }, values);
        return true;
      case "stage":
        line.send({
          stage: parsed.stage,
          scope: parsed.scope,
          message: parsed.bySender ? `${line.stage}:${parsed.message}` : parsed.message,
          from: line.from(),
          ...line.replyTo(parsed.reply),
          ...modifiers(parsed),
        }, values);
        return true;
      case "lock":
      case "unlock": {
        const op = parsed.kind === "unlock" ? "release" : parsed.op;
        let ms: number | undefined;
        if (op === "extend") {
          ms = values[0] as number;
          if (typeof ms !== "number" || !Number.isFinite(ms) || ms <= 0) {
            throw new TypeError(`stage.signal("${target}", ms): expected a positive number of ms`);
          }
        }
        line.send({
          stage: line.stage,
          scope: "one",
          message: parsed.callback,
          from: line.from(),
          lock: {
            op,
            name: parsed.name,
            callback: parsed.callback,
            ...(ms === undefined ? {} : { ms }),
          },
        }, op === "acquire" ? values : []);
        return true;
      }
    }
  }

  /**
   * Sends a message and resolves with the reply (the first reply value), or
   * rejects with the receiver's error or a `RequestTimeoutError`. A last argument
   * `{ timeout: ms }` sets the timeout (default 10 s).
   */
  request(target: string, ...rest: unknown[]): Promise<unknown> {
    const line = this.#line;
    const { timeoutMs, args } = requestTimeout(rest);
    let parsed;
    try {
      parsed = parseTarget(target);
    } catch (error) {
      return Promise.reject(error);
    }
    if (parsed.kind !== "self" && parsed.kind !== "stage") {
      return Promise.reject(
        new TypeError(`stage.request("${target}"): expected a stage message target`),
      );
    }
    if (parsed.kind === "self" && parsed.sync) {
      return Promise.resolve(this.#receiver.runLocal(parsed.message, args));
    }
    const message = parsed.kind === "stage" && parsed.bySender
      ? `${line.stage}:${parsed.message}`
      : parsed.message;
    return awaitReply(
      line,
      timeoutMs,
      () => `stage.request("${target}") got no reply within ${timeoutMs} ms`,
      (reply) =>
        line.send({
          stage: parsed.kind === "stage" ? parsed.stage : line.stage,
          scope: parsed.scope === "all" ? "all" : parsed.scope,
          message,
          from: line.from(),
          reply,
          ...modifiers(parsed),
        }, args),
    );
  }

  /**
   * Runs `fn(...args)` on any worker of this stage; calls with the same non-zero
   * key never overlap and run in submission order. A numeric result reschedules
   * the call after that many ms. `fn` may be a function (sent as source: the
   * sandbox rule applies) or `"file+export"`.
   *
   * @throws TypeError for a key that is not a number or string, or a bad `fn`
   */
  submit(key: number | string, fn: Handler | string, ...args: unknown[]): void {
    if ((typeof key !== "number" || !Number.isFinite(key)) && typeof key !== "string") {
      throw new TypeError(`stage.submit: the key must be a number or a string; got ${String(key)}`);
    }
    if (typeof fn !== "function" && typeof fn !== "string") {
      throw new TypeError(`stage.submit(${String(key)}): expected a function or "file+export"`);
    }
    this.#line.send({
      stage: this.#line.stage,
      scope: "one",
      message: SUBMIT_MESSAGE,
      from: this.#line.from(),
      submit: key,
    }, [fn, ...args]);
  }

  /** A stage message for this worker arrived (ring record `ToWorker.Signal`). */
  receive(body: Uint8Array): unknown {
    return this.#receiver.receive(body);
  }

  /**
   * Sends `values` to an exact address, optionally with a reply address, a
   * sender and a ticket: what service stages use to answer, forward and grant.
   */
  deliverTo(to: Address, values: unknown[], options: DeliveryOptions = {}): void {
    this.#line.send({
      stage: to.stage,
      scope: "one",
      ...(to.worker === undefined ? {} : { worker: to.worker }),
      ...(to.at === undefined ? {} : { to: to.at }),
      message: to.id,
      from: options.from ?? this.#line.from(),
      ...(options.reply === undefined ? {} : { reply: options.reply }),
      ...(options.ticket === undefined ? {} : { ticket: options.ticket }),
      ...(options.error ? { error: true } : {}),
      ...(options.query === undefined ? {} : { query: options.query }),
      ...(options.optional ? { optional: true } : {}),
    }, values);
  }

  /**
   * Sends `values` to an exact address and resolves with the reply, like
   * {@link Messaging.request} (rejects with the receiver's error or
   * `RequestTimeoutError` after `timeoutMs`).
   */
  requestTo(
    to: Address,
    values: unknown[],
    timeoutMs = REQUEST_TIMEOUT_MS,
    options: Omit<DeliveryOptions, "reply" | "error"> = {},
  ): Promise<unknown> {
    return awaitReply(
      this.#line,
      timeoutMs,
      () =>
        `No reply from ${to.stage}:${to.id} (worker ${to.worker ?? "any"}) within ${timeoutMs} ms`,
      (reply) => this.deliverTo(to, values, { ...options, reply }),
    );
  }

  /**
   * `thread.new(fn, ...args)`: runs `fn(...args)` on any worker of this stage.
   * Inside, `thread.signal(v)` sends `v` to the handle's waitfor callbacks; the
   * return value arrives last, then the callbacks are removed.
   */
  newThread(fn: Handler, ...args: unknown[]): ThreadHandle {
    return this.#threads.start(fn, ...args);
  }

  /** Inside a `thread.new` function: sends `value` to the handle's callbacks. */
  threadSignal(value: unknown): void {
    this.#threads.signal(value);
  }

  /** The id of the `thread.new` run this code is part of, if any. */
  get threadId(): string | undefined {
    return this.#threads.id;
  }
}
