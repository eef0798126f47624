/**
 * The script side of a worker: builds the globals scripts see (`stage`, `broker`,
 * `thread`, `bundle`, `logger`, `process`), loads the main script, and turns ring
 * records into calls of script code.
 *
 * @module
 */
import type { Logger } from "@logtape/logtape";
import type { ProcessInfo } from "../pool/wire.ts";
import { decodeSignalHeader, ToMain, ToWorker } from "../pool/wire.ts";
import type { ScriptLoader } from "../script/mod.ts";
import { Broker } from "./broker.ts";
import { type Bundle, createBundle } from "./bundle.ts";
import { denoRecordFiles } from "./bundle_files.ts";
import type { YieldSignal } from "./cooperative_yield.ts";
import type { SharedTable } from "../ring/shared_table.ts";
import type { PlatformPort } from "./platform_port.ts";
import { type EnvLookup, ScriptLogger } from "./script_logger.ts";
import { ScriptProcess } from "./script_process.ts";
import { StageApi } from "./stage.ts";

/** Dependencies of a {@link ScriptHost}. */
export interface ScriptHostOptions {
  stageId: string;
  worker: number;
  port: PlatformPort;
  loader: ScriptLoader;
  process: ProcessInfo;
  env: EnvLookup;
  log: Logger;
  /** The worker's control block (the watchdog's yield flag). */
  yieldSignal: YieldSignal;
  /** The process's shared-variable table. */
  shared: SharedTable;
}

/** Retry delay of an idle function that threw. */
const IDLE_RETRY_MS = 1000;

/** The globals of one worker and the dispatch of records into script code. */
export class ScriptHost {
  readonly stage: StageApi;
  readonly broker: Broker;
  readonly bundle: Bundle;
  readonly logger: ScriptLogger;
  readonly process: ScriptProcess;
  #port: PlatformPort;
  #loader: ScriptLoader;
  #log: Logger;
  #idle: (() => unknown) | undefined;

  constructor(options: ScriptHostOptions) {
    this.#port = options.port;
    this.#loader = options.loader;
    this.#log = options.log;
    // `broker.submit("file+export")` loads like `stage.submit` (`this.stage` exists by then).
    this.broker = new Broker(options.port, options.log, (name) => this.stage.require(name));
    this.stage = new StageApi({
      id: options.stageId,
      worker: options.worker,
      port: options.port,
      loader: options.loader,
      log: options.log,
      yieldSignal: options.yieldSignal,
      shared: options.shared,
    });
    this.logger = new ScriptLogger(["stage", "script", options.stageId], options.env);
    this.process = new ScriptProcess(options.process);
    this.bundle = createBundle(denoRecordFiles, options.process.baseDir);
  }

  /** Makes `stage`, `broker`, `thread`, `bundle`, `logger` and `process` globals of this isolate. */
  installGlobals(target: Record<string, unknown> = globalThis as never): void {
    for (const [name, value] of Object.entries(this.globals())) {
      Object.defineProperty(target, name, { value, writable: false, configurable: true });
    }
  }

  /** The globals, by name. */
  globals(): Record<string, unknown> {
    const messaging = this.stage.messaging;
    return {
      stage: this.stage,
      broker: this.broker,
      thread: {
        /** Runs `fn(...args)` on any worker; see {@link Messaging.newThread}. */
        new: (fn: (...args: unknown[]) => unknown, ...args: unknown[]) =>
          messaging.newThread(fn, ...args),
        /** Inside a thread function: sends a value to the handle's callbacks. */
        signal: (value: unknown) => messaging.threadSignal(value),
        /** The id of the running thread function (undefined outside one). */
        get id() {
          return messaging.threadId;
        },
      },
      bundle: this.bundle,
      logger: this.logger,
      process: this.process,
    };
  }

  /**
   * Loads the preload scripts (in name order) and then the main script; its
   * top level runs here, once per worker. Remembers its default export as the
   * idle function.
   */
  async loadMain(main: string, preload: string[]): Promise<void> {
    for (const name of preload) await this.#loader.require(name);
    const { value } = await this.#loader.require(main);
    if (typeof value === "function") this.#idle = value as () => unknown;
  }

  /** Whether the main script exported an idle function. */
  get hasIdle(): boolean {
    return this.#idle !== undefined;
  }

  /**
   * Whether a record may run while the main script is still loading: a stage
   * message whose waitfor is registered already — the reply to a top-level
   * `await stage.request(…)`. Anything else (a named callback the script
   * registers further down, new work) waits until the script has loaded.
   */
  runsWhileLoading(tag: number, body: Uint8Array): boolean {
    if (tag !== ToWorker.Signal) return false;
    const { header } = decodeSignalHeader(body);
    return header.submit === undefined && header.thread === undefined &&
      this.stage.messaging.registry.match(header.message) !== undefined;
  }

  /** Runs one ring record; a returned promise holds the record's key until it settles. */
  handle(tag: number, a: number, b: number, body: Uint8Array): unknown {
    switch (tag) {
      case ToWorker.Frame:
        return this.broker.afterHandler(a, this.broker.frame(a, body));
      case ToWorker.Open:
        return this.broker.open(a, body);
      case ToWorker.Closed:
        return this.broker.closed(a, b, body);
      case ToWorker.Inject:
        return this.broker.afterHandler(a, this.broker.inject(a, b, body));
      case ToWorker.JoinFailed:
        return this.broker.joinFailed(b, body);
      case ToWorker.Idle:
        return this.#runIdle();
      case ToWorker.Signal:
        return this.stage.messaging.receive(body);
      default:
        this.#log.error("Unknown record tag {tag} from the main thread", { tag });
        return undefined;
    }
  }

  async #runIdle(): Promise<void> {
    let next = 0;
    try {
      const result = await this.#idle?.();
      next = typeof result === "number" && Number.isFinite(result) && result > 0 ? result : 0;
    } catch (error) {
      this.#log.error("The idle function threw; retrying in {ms} ms: {error}", {
        ms: IDLE_RETRY_MS,
        error,
      });
      next = IDLE_RETRY_MS;
    }
    const body = new Uint8Array(8);
    new DataView(body.buffer).setFloat64(0, next, true);
    this.#port.send(ToMain.IdleDone, 0, 0, body);
  }
}
