/**
 * `stage`: the script's handle on its stage — identity, once-per-process work,
 * script loading and isolated calls. (Messaging arrives with the messaging core.)
 *
 * @module
 */
import type { Logger } from "@logtape/logtape";
import type { ScriptInfo, ScriptLoader } from "../script/mod.ts";
import { parseScriptSpec } from "../script/mod.ts";
import type { SharedTable, SharedVariable } from "../ring/shared_table.ts";
import { CooperativeYield, type YieldSignal } from "./cooperative_yield.ts";
import { type MessageContext, Messaging } from "./messaging.ts";
import { StageTasks } from "./stage_tasks.ts";
import type { PlatformPort } from "./platform_port.ts";
import { describeScriptError } from "./script_error.ts";

/** Receives a loaded value and `[position, path, mtime]`, or `[file, export]` on failure. */
export type LoadCallback = (
  value: unknown,
  info: ScriptInfo | [file: string, exportName: string | undefined],
) => void;

/** Dependencies of a {@link StageApi}. */
export interface StageApiOptions {
  id: string;
  worker: number;
  port: PlatformPort;
  loader: ScriptLoader;
  log: Logger;
  /** The worker's control block (the watchdog's yield flag). */
  yieldSignal: YieldSignal;
  /** The process's shared-variable table. */
  shared: SharedTable;
}

/** The `stage` global of one worker. */
export class StageApi {
  /** This stage's id (`"start"` for `script+start`). */
  readonly id: string;
  /** This worker's index in the stage's pool. */
  readonly worker: number;
  #port: PlatformPort;
  #loader: ScriptLoader;
  #log: Logger;
  #yields: CooperativeYield;
  /** Registrations and message handling of this worker. */
  readonly messaging: Messaging;
  #shared: SharedTable;

  constructor(options: StageApiOptions) {
    this.id = options.id;
    this.worker = options.worker;
    this.#port = options.port;
    this.#loader = options.loader;
    this.#log = options.log;
    this.#yields = new CooperativeYield(options.yieldSignal);
    this.#shared = options.shared;
    this.messaging = new Messaging(
      options.id,
      options.worker,
      options.port,
      options.log,
      (name) => this.require(name),
    );
    this.submit = this.messaging.submit.bind(this.messaging);
    const tasks = new StageTasks(this.messaging, options.id, options.worker, options.log);
    this.addtask = tasks.addtask.bind(tasks);
    // Script code calls these unbound (`const { signal } = stage` is fine).
    this.waitfor = Object.assign(this.messaging.waitfor.bind(this.messaging), {
      serial: this.messaging.waitforSerial.bind(this.messaging),
    });
    this.signal = this.messaging.signal.bind(this.messaging);
    this.request = this.messaging.request.bind(this.messaging);
  }

  /**
   * Registers, looks up or removes a message handler (see DESIGN.md §4);
   * `waitfor.serial(id, fn)` makes messages to `id` run one at a time, in order.
   */
  readonly waitfor: Messaging["waitfor"] & { serial: Messaging["waitforSerial"] };
  /** Sends a message to a target (see DESIGN.md §4). */
  readonly signal: Messaging["signal"];
  /** Sends a message and resolves with its reply. */
  readonly request: Messaging["request"];
  /** Runs a function on any worker; the same non-zero key runs in order, one at a time. */
  readonly submit: Messaging["submit"];
  /** Runs a task after ms, one task at a time per stage; `addtask(handle, null)` cancels. */
  readonly addtask: StageTasks["addtask"];

  /**
   * A process-wide shared variable: the first call anywhere in the process creates
   * it with `initial`; every later call, from any worker, returns the same variable.
   * `get()` is a lock-free snapshot, `set(v)` stores, `update(fn)` is an atomic
   * read-modify-write. Values are structured-cloneable data.
   *
   * @throws SharedTableFullError when the value is too large or the table is full
   */
  shared<T>(name: string, initial: T): SharedVariable<T> {
    return this.#shared.open(name, initial);
  }

  /** Inside a handler: the matched waitfor id, message id, sender and reply address. */
  get context(): MessageContext | undefined {
    return this.messaging.context;
  }

  /**
   * A cooperative yield point: lets this worker's event loop run (other records,
   * timers, replies) and honours the watchdog's request to yield. Long loops call
   * it, or iterate with {@link slice}.
   */
  yield(): Promise<void> {
    return this.#yields.yield();
  }

  /** Iterates `items`, yielding when asked to or every ~10 ms: `for await (const x of stage.slice(xs))`. */
  slice<T>(items: Iterable<T> | AsyncIterable<T>): AsyncGenerator<T> {
    return this.#yields.slice(items);
  }

  /**
   * Runs `fn` only the first time `name` is seen in this process (across every
   * worker); `once(name, null)` forgets the name. Resolves with whether `fn` ran here.
   */
  async once(name: string, fn: (() => unknown) | null): Promise<boolean> {
    if (typeof name !== "string" || name.length === 0) {
      throw new TypeError(`stage.once: name must be a non-empty string; got ${String(name)}`);
    }
    if (fn === null) {
      this.#port.post({ type: "once-forget", name });
      return false;
    }
    if (typeof fn !== "function") {
      throw new TypeError(`stage.once("${name}"): expected a function or null`);
    }
    await this.#yields.honour();
    const first = await this.#port.request<boolean>((requestId) => ({
      type: "once",
      name,
      requestId,
    }));
    if (first) await fn();
    return first;
  }

  /**
   * Loads `"file"` (its default export, or the module) or `"file+export"`,
   * reloading the file when its size or mtime changed.
   */
  load(name: string, fn?: LoadCallback): Promise<unknown> {
    return this.#load(name, fn, true);
  }

  /** Like {@link load}, but never reloads a file once loaded. */
  require(name: string, fn?: LoadCallback): Promise<unknown> {
    return this.#load(name, fn, false);
  }

  /**
   * Calls `fn(...args, ...more)` isolated: an exception is logged and returned as
   * an Error value instead of being thrown. `fn` may be `"file+export"`.
   */
  call(fn: ((...args: unknown[]) => unknown) | string, args: unknown[] = [], ...more: unknown[]) {
    const all = [...(Array.isArray(args) ? args : [args]), ...more];
    if (typeof fn === "string") {
      return this.require(fn).then(
        (value) => typeof value === "function" ? this.#isolated(value as never, all, fn) : value,
        (error) => this.#failed(error, fn),
      );
    }
    if (typeof fn !== "function") {
      return this.#failed(new TypeError(`stage.call: expected a function or "file+export"`), "?");
    }
    return this.#isolated(fn, all, fn.name || "<anonymous>");
  }

  async #load(name: string, fn: LoadCallback | undefined, reload: boolean): Promise<unknown> {
    await this.#yields.honour();
    try {
      const loaded = reload ? await this.#loader.load(name) : await this.#loader.require(name);
      fn?.(loaded.value, loaded.info);
      return loaded.value;
    } catch (error) {
      if (fn === undefined) throw error;
      this.#log.error("Cannot load script {name}: {message}", {
        name,
        message: describeScriptError(error),
        error,
      });
      let failure: [string, string | undefined] = [name, undefined];
      try {
        const spec = parseScriptSpec(name);
        failure = [spec.file, spec.exportName];
      } catch { /* the name itself was bad */ }
      fn(undefined, failure);
      return undefined;
    }
  }

  #isolated(fn: (...args: unknown[]) => unknown, args: unknown[], name: string): unknown {
    let result: unknown;
    try {
      result = fn(...args);
    } catch (error) {
      return this.#failed(error, name);
    }
    if (result instanceof Promise) return result.catch((error) => this.#failed(error, name));
    return result;
  }

  #failed(error: unknown, name: string): Error {
    this.#log.error("stage.call({name}) failed: {message}", {
      name,
      message: describeScriptError(error),
      error,
    });
    return error instanceof Error ? error : new Error(String(error));
  }
}
