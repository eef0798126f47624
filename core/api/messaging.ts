/**
 * `stage.waitfor`, `stage.signal`, `stage.request` and `stage.context` inside one
 * worker: registrations, sending through the main thread's bus, and running
 * handlers for the messages this worker receives.
 *
 * @module
 */
import { AsyncLocalStorage } from "node:async_hooks";
import type { Logger } from "@logtape/logtape";
import {
  CapturedVariableError,
  type ErrorRecord,
  fromErrorRecord,
  type MessageParts,
  packValues,
  parseTarget,
  registerErrorClass,
  toErrorRecord,
  unpackData,
  unpackValues,
  WaitforRegistry,
} from "../message/mod.ts";
import {
  decodeSignalHeader,
  encodeSignal,
  type ReplyAddress,
  replyHeader,
  type SignalHeader,
  ticketHeader,
  type TicketRef,
  ToMain,
} from "../pool/wire.ts";
import type { PlatformPort } from "./platform_port.ts";
import { describeScriptError, here } from "./script_error.ts";

/** What `stage.context` says inside a handler. */
export interface MessageContext {
  /** The waitfor id that matched. */
  waitfor: string;
  /** The message id as delivered. */
  message: string;
  /** Who sent it (`at`: its process, once the message has crossed processes). */
  from: SignalHeader["from"];
  /** Where a reply goes (absent: none expected). */
  reply?: ReplyAddress;
  /** The target's `?query`: an argument for the receiver. */
  query?: string;
  /** The target's `!fail`: the sender's waitfor for values nobody took. */
  fail?: string;
  /** The ticket this message concerns (a grant holds it while its handler runs). */
  ticket?: TicketRef;
}

/**
 * Where a message goes when a service addresses it precisely: a stage, one
 * worker of it or any, and the message id its waitfor lookup matches.
 */
export interface Address {
  stage: string;
  /** Deliver to this worker (absent: any worker, round robin). */
  worker?: number;
  /** The message id. */
  id: string;
  /** The process (bus endpoint) the worker is in, when it is not this one. */
  at?: string;
}

/** What {@link Messaging.deliverTo} may add to a message. */
export interface DeliveryOptions {
  /** Where the receiver's reply goes (e.g. the original sender of a routed message). */
  reply?: ReplyAddress;
  /** Who the receiver sees as the sender (default: this stage and worker). */
  from?: SignalHeader["from"];
  /** The ticket the message concerns (`stage.context.ticket`). */
  ticket?: TicketRef;
  /** The values are `[ErrorRecord]`: the message reports a failure to `to`. */
  error?: boolean;
  /** Passed on as the receiver's `stage.context.query`. */
  query?: string;
  /** A notification the receiver may have no waitfor for (no warning, no error back). */
  optional?: boolean;
}

/** Raised when `stage.request` gets no reply in time. */
export class RequestTimeoutError extends Error {
  override name = "RequestTimeoutError";
}

/** Raised when a message addresses a stage that has no instance to take it. */
export class StageNotFoundError extends Error {
  override name = "StageNotFoundError";
}

/** Raised when a message reaches a stage where no waitfor matches its id. */
export class WaitforNotFoundError extends Error {
  override name = "WaitforNotFoundError";
}

/**
 * A message's handler was running on a worker that was terminated (it ran past
 * the hard limit without yielding) or crashed; the message did not complete.
 */
export class WorkerTerminatedError extends Error {
  override name = "WorkerTerminatedError";
}

// Errors cross threads as records; these come back as their own classes.
registerErrorClass("WorkerTerminatedError", WorkerTerminatedError);
registerErrorClass("RequestTimeoutError", RequestTimeoutError);
registerErrorClass("StageNotFoundError", StageNotFoundError);
registerErrorClass("WaitforNotFoundError", WaitforNotFoundError);
registerErrorClass("CapturedVariableError", CapturedVariableError as never);

/** The message id of `stage.submit` calls (never matched against waitfors). */
const SUBMIT_MESSAGE = "\u0000submit";

/** The `?query` and `!fail` of a parsed target, as header fields. */
function modifiers(parts: MessageParts): Pick<SignalHeader, "query" | "fail"> {
  return {
    ...(parts.query === undefined ? {} : { query: parts.query }),
    ...(parts.fail === undefined ? {} : { fail: parts.fail }),
  };
}

function resubmit(
  key: number | string,
  packed: Uint8Array,
  from: SignalHeader["from"],
): Uint8Array {
  return encodeSignal({
    stage: from.stage,
    scope: "one",
    message: SUBMIT_MESSAGE,
    from,
    submit: key,
  }, packed);
}

/** Default `stage.request` timeout. */
const REQUEST_TIMEOUT_MS = 10_000;

type Handler = (...args: unknown[]) => unknown;

/** The per-handler state behind `stage.context`. */
type Store = MessageContext & { replied: boolean; errorRecord?: ErrorRecord; thread?: string };

/** What `thread.new` returns. */
export interface ThreadHandle {
  readonly id: string;
  /** Adds a callback for the thread's messages: `(value, done)`; `done` marks the return value. */
  waitfor(callback: (value: unknown, done: boolean) => void): ThreadHandle;
}

/** The messaging half of the `stage` global of one worker. */
export class Messaging {
  readonly registry: WaitforRegistry;
  #stage: string;
  #worker: number;
  #port: PlatformPort;
  #log: Logger;
  #context = new AsyncLocalStorage<Store>();

  #resolve: (name: string) => Promise<unknown>;
  /** A service stage's: argument errors are the sender's mistakes (logged as warnings). */
  #service: boolean;

  /** @param resolve loads `"file+export"` names (the script loader's `require`) */
  constructor(
    stage: string,
    worker: number,
    port: PlatformPort,
    log: Logger,
    resolve: (name: string) => Promise<unknown>,
    options: { service?: boolean } = {},
  ) {
    this.#service = options.service ?? false;
    this.#resolve = resolve;
    this.#stage = stage;
    this.#worker = worker;
    this.#port = port;
    this.#log = log;
    this.registry = new WaitforRegistry(`${stage}.${worker}`);
  }

  /** The context of the message being handled, if any. */
  get context(): MessageContext | undefined {
    const store = this.#context.getStore();
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
    let parsed;
    try {
      parsed = parseTarget(target);
    } catch (error) {
      // The delivery result of a malformed target is the error, named and logged.
      this.#log.warning("{text}", { text: (error as Error).message });
      return error;
    }
    switch (parsed.kind) {
      case "reply": {
        const store = this.#context.getStore();
        if (store?.reply === undefined && store?.ticket?.hold) {
          return this.#holdTicket(store, values);
        }
        if (store?.reply === undefined) {
          const error = new TypeError(
            "stage.signal(null): there is no message being handled that expects a reply",
          );
          this.#log.warning("{text}", { text: error.message });
          return error;
        }
        store.replied = true;
        this.#sendReply(store.reply, values);
        return true;
      }
      case "self":
        if (parsed.sync) return this.#runLocal(parsed.message, values);
        this.#send({
          stage: this.#stage,
          scope: parsed.scope,
          message: parsed.message,
          from: this.#from(),
          ...this.#replyTo(parsed.reply),
          ...modifiers(parsed),
        }, values);
        return true;
      case "stage":
        this.#send({
          stage: parsed.stage,
          scope: parsed.scope,
          message: parsed.bySender ? `${this.#stage}:${parsed.message}` : parsed.message,
          from: this.#from(),
          ...this.#replyTo(parsed.reply),
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
        this.#send({
          stage: this.#stage,
          scope: "one",
          message: parsed.callback,
          from: this.#from(),
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
  request(target: string, ...args: unknown[]): Promise<unknown> {
    let timeoutMs = REQUEST_TIMEOUT_MS;
    const last = args[args.length - 1];
    if (
      typeof last === "object" && last !== null && Object.keys(last).length === 1 &&
      typeof (last as { timeout?: unknown }).timeout === "number"
    ) {
      timeoutMs = (last as { timeout: number }).timeout;
      args = args.slice(0, -1);
    }
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
      return Promise.resolve(this.#runLocal(parsed.message, args));
    }
    const message = parsed.kind === "stage" && parsed.bySender
      ? `${this.#stage}:${parsed.message}`
      : parsed.message;
    return this.#awaitReply(
      timeoutMs,
      () => `stage.request("${target}") got no reply within ${timeoutMs} ms`,
      (reply) =>
        this.#send({
          stage: parsed.kind === "stage" ? parsed.stage : this.#stage,
          scope: parsed.scope === "all" ? "all" : parsed.scope,
          message,
          from: this.#from(),
          reply,
          ...modifiers(parsed),
        }, args),
    );
  }

  /**
   * Registers a one-off reply waitfor, calls `send` with its address, and
   * settles with the first reply (or its error), or a `RequestTimeoutError`.
   */
  #awaitReply(
    timeoutMs: number,
    describe: () => string,
    send: (reply: ReplyAddress) => void,
  ): Promise<unknown> {
    return new Promise((resolve, reject) => {
      let timer: ReturnType<typeof setTimeout> | undefined = undefined;
      const id = this.registry.generate((...reply: unknown[]) => {
        clearTimeout(timer);
        this.registry.unregister(id);
        const error = this.#context.getStore()?.errorRecord;
        if (error !== undefined) reject(fromErrorRecord(error));
        else resolve(reply[0]);
      });
      timer = setTimeout(() => {
        this.registry.unregister(id);
        reject(new RequestTimeoutError(describe()));
      }, timeoutMs);
      try {
        send({ stage: this.#stage, worker: this.#worker, id });
      } catch (error) {
        clearTimeout(timer);
        this.registry.unregister(id);
        reject(error);
      }
    });
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
    this.#send({
      stage: this.#stage,
      scope: "one",
      message: SUBMIT_MESSAGE,
      from: this.#from(),
      submit: key,
    }, [fn, ...args]);
  }

  /** A stage message for this worker arrived (ring record `ToWorker.Signal`). */
  receive(body: Uint8Array): unknown {
    const { header, values: packed } = decodeSignalHeader(body);
    if (this.#service && (header.submit !== undefined || header.thread !== undefined)) {
      this.#log.warning("Service stage {stage} runs no code: refused a submit/thread from {from}", {
        stage: this.#stage,
        from: header.from.stage,
      });
      return undefined;
    }
    if (header.submit !== undefined) return this.#runSubmit(header.submit, packed);
    if (header.thread !== undefined) return this.#runThread(header, packed);
    let values: unknown[];
    try {
      // A service (outside the sandbox) never rebuilds — evaluates — a function a script sent.
      values = this.#service ? unpackData(packed) : unpackValues(packed);
    } catch (error) {
      this.#log.error("Cannot read message {message} from {from}: {error}", {
        message: header.message,
        from: header.from.stage,
        error,
      });
      return undefined;
    }
    const waitfor = this.registry.match(header.message);
    if (waitfor === undefined) {
      if (header.optional) return undefined;
      // A reply whose request timed out, or a message nobody waits for.
      if (!header.message.startsWith("~")) {
        this.#log.warning("No waitfor matches message {message} (from {from})", {
          message: header.message,
          from: header.from.stage,
        });
      }
      this.#replyError(
        header,
        new WaitforNotFoundError(
          `No waitfor matches message "${header.message}" in stage "${this.#stage}"`,
        ),
      );
      this.#settled(header);
      return undefined;
    }
    const store: Store = {
      waitfor: waitfor.id,
      message: header.message,
      from: header.from,
      ...(header.reply === undefined ? {} : { reply: header.reply }),
      ...(header.query === undefined ? {} : { query: header.query }),
      ...(header.fail === undefined ? {} : { fail: header.fail }),
      ...(header.ticket === undefined ? {} : { ticket: header.ticket }),
      replied: false,
      ...(header.error ? { errorRecord: values[0] as ErrorRecord } : {}),
    };
    // A failure reaching a named waitfor (`"stage:msg=cb"` whose handler threw) arrives
    // as the rebuilt error, so the callback can tell it from a value (`instanceof Error`).
    if (header.error) values = [fromErrorRecord(values[0] as ErrorRecord)];
    return this.#context.run(store, () => {
      let result: unknown;
      try {
        result = waitfor.fn(...waitfor.bound, ...values);
      } catch (error) {
        this.#failed(header, store, error);
        this.#settled(header);
        return undefined;
      }
      if (result instanceof Promise) {
        return result.then(
          (value) => this.#autoReply(header, store, value),
          (error) => this.#failed(header, store, error),
        ).finally(() => this.#settled(header));
      }
      this.#autoReply(header, store, result);
      this.#settled(header);
      return undefined;
    });
  }

  /** A handler finished: a ticket grant gives its slot back. */
  #settled(header: SignalHeader): void {
    const ticket = header.ticket;
    if (ticket?.hold !== true) return;
    this.#send(ticketHeader(ticket, header.from, "<", this.#from()), [ticket.id]);
  }

  /**
   * `stage.signal(null, ms)` inside a ticket grant: keep the slot `ms` more
   * (from now); `ms <= 0` releases it at once.
   */
  #holdTicket(store: Store, values: unknown[]): unknown {
    const ticket = store.ticket!;
    const ms = values[0];
    if (typeof ms !== "number" || Number.isNaN(ms)) {
      const error = new TypeError(
        `stage.signal(null, ms) inside ticket ${ticket.id}: expected a number of ms; got ${
          String(ms)
        }`,
      );
      this.#log.warning("{text}", { text: error.message });
      return error;
    }
    const release = ms <= 0;
    this.#send(
      ticketHeader(ticket, store.from, release ? "<" : ">", this.#from()),
      release ? [ticket.id] : [ticket.id, ms],
    );
    return true;
  }

  /**
   * Sends `values` to an exact address, optionally with a reply address, a
   * sender and a ticket: what service stages use to answer, forward and grant.
   */
  deliverTo(to: Address, values: unknown[], options: DeliveryOptions = {}): void {
    this.#send({
      stage: to.stage,
      scope: "one",
      ...(to.worker === undefined ? {} : { worker: to.worker }),
      ...(to.at === undefined ? {} : { to: to.at }),
      message: to.id,
      from: options.from ?? this.#from(),
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
    return this.#awaitReply(
      timeoutMs,
      () =>
        `No reply from ${to.stage}:${to.id} (worker ${to.worker ?? "any"}) within ${timeoutMs} ms`,
      (reply) => this.deliverTo(to, values, { ...options, reply }),
    );
  }

  async #runSubmit(key: number | string, packed: Uint8Array): Promise<void> {
    let fn: unknown;
    let args: unknown[] = [];
    try {
      [fn, ...args] = unpackValues(packed);
      if (typeof fn === "string") fn = await this.#resolve(fn);
      if (typeof fn !== "function") throw new TypeError(`stage.submit(${key}): not a function`);
      const result = await (fn as Handler)(...args);
      if (typeof result === "number" && Number.isFinite(result) && result >= 0) {
        // A numeric result reschedules the same call, behind whatever the key queued meanwhile.
        setTimeout(
          () => this.#port.send(ToMain.Signal, 0, 0, resubmit(key, packed, this.#from())),
          result,
        );
      }
    } catch (error) {
      this.#log.error("stage.submit({key}) failed: {text}", {
        key,
        text: describeScriptError(error),
        error,
      });
    }
  }

  /**
   * `thread.new(fn, ...args)`: runs `fn(...args)` on any worker of this stage.
   * Inside, `thread.signal(v)` sends `v` to the handle's waitfor callbacks; the
   * return value arrives last, then the callbacks are removed.
   */
  newThread(fn: Handler, ...args: unknown[]): ThreadHandle {
    if (typeof fn !== "function") throw new TypeError("thread.new(fn): fn must be a function");
    const callbacks: ((value: unknown, done: boolean) => void)[] = [];
    const id = `thread.${this.#worker}.${(this.#nextThread++).toString(36)}`;
    const inbox = this.registry.generate((value: unknown, kind: unknown) => {
      const done = kind !== "message";
      if (done) this.registry.unregister(inbox);
      const error = this.#context.getStore()?.errorRecord;
      for (const callback of [...callbacks]) {
        try {
          callback(error === undefined ? value : fromErrorRecord(error), done);
        } catch (callbackError) {
          this.#log.error("thread {id} callback failed: {text}", {
            id,
            text: describeScriptError(callbackError),
          });
        }
      }
      if (done) callbacks.length = 0;
    });
    this.#send({
      stage: this.#stage,
      scope: "one",
      message: id,
      from: this.#from(),
      reply: { stage: this.#stage, worker: this.#worker, id: inbox },
      thread: id,
    }, [fn, ...args]);
    return {
      id,
      waitfor(callback) {
        if (typeof callback !== "function") {
          throw new TypeError("handle.waitfor(cb): cb must be a function");
        }
        callbacks.push(callback);
        return this;
      },
    };
  }

  /** Inside a `thread.new` function: sends `value` to the handle's callbacks. */
  threadSignal(value: unknown): void {
    const store = this.#context.getStore();
    if (store?.thread === undefined || store.reply === undefined) {
      throw new TypeError("thread.signal: not inside a thread.new function");
    }
    this.#sendReply(store.reply, [value, "message"]);
  }

  /** The id of the `thread.new` run this code is part of, if any. */
  get threadId(): string | undefined {
    return this.#context.getStore()?.thread;
  }

  async #runThread(header: SignalHeader, packed: Uint8Array): Promise<void> {
    const store: Store = {
      waitfor: header.message,
      message: header.message,
      from: header.from,
      ...(header.reply === undefined ? {} : { reply: header.reply }),
      replied: true, // the return value is sent below, marked as the last message
      thread: header.thread!,
    };
    await this.#context.run(store, async () => {
      try {
        const [fn, ...args] = unpackValues(packed) as [Handler, ...unknown[]];
        const result = await fn(...args);
        if (header.reply !== undefined) this.#sendReply(header.reply, [result, "return"]);
      } catch (error) {
        this.#log.error("thread {id} failed: {text}", {
          id: header.thread,
          text: describeScriptError(error),
          error,
        });
        if (header.reply !== undefined) {
          this.#sendReply(header.reply, [toErrorRecord(error), "return"], true);
        }
      }
    });
  }

  #nextThread = 0;

  #runLocal(message: string, values: unknown[]): unknown {
    const waitfor = this.registry.match(message);
    if (waitfor === undefined) {
      throw new TypeError(`stage.signal(":${message}"): no waitfor matches "${message}"`);
    }
    const store = {
      waitfor: waitfor.id,
      message,
      from: this.#from(),
      replied: false,
    };
    return this.#context.run(store, () => waitfor.fn(...waitfor.bound, ...values));
  }

  #autoReply(header: SignalHeader, store: { replied: boolean }, value: unknown): void {
    if (header.reply === undefined || store.replied || value === undefined) return;
    store.replied = true;
    this.#sendReply(header.reply, [value]);
  }

  #failed(header: SignalHeader, store: { replied: boolean }, error: unknown): void {
    if (this.#service && (error instanceof TypeError || error instanceof RangeError)) {
      // A service refusing a bad request: the sender's mistake, answered with the error.
      this.#log.warning("Refused message {message} from {from}: {text}", {
        message: header.message,
        from: `${header.from.stage}/${header.from.worker}`,
        text: `${error.name}: ${error.message}`,
      });
    } else {
      this.#log.error("Script error in the handler of {message}: {text}", {
        message: header.message,
        text: describeScriptError(error),
        error,
      });
    }
    if (!store.replied) this.#replyError(header, error);
  }

  #replyError(header: SignalHeader, error: unknown): void {
    if (header.reply === undefined || header.error) return;
    this.#sendReply(header.reply, [toErrorRecord(error)], true);
  }

  /** Sends values (or an error record) to a reply address: the worker that asked. */
  #sendReply(reply: ReplyAddress, values: unknown[], error = false): void {
    this.#send(replyHeader(reply, this.#from(), error), values);
  }

  #replyTo(reply: string | undefined): { reply?: ReplyAddress } {
    return reply === undefined
      ? {}
      : { reply: { stage: this.#stage, worker: this.#worker, id: reply } };
  }

  #from(): SignalHeader["from"] {
    return { stage: this.#stage, worker: this.#worker };
  }

  #send(header: SignalHeader, values: unknown[]): void {
    const packed = packValues(values);
    this.#port.send(ToMain.Signal, 0, 0, encodeSignal(header, packed.bytes));
  }
}
