/**
 * `stage.addtask`: delayed tasks of one worker that run one at a time per
 * stage (every worker's tasks queue on one ordering lock of the stage).
 *
 * @module
 */
import type { Logger } from "@logtape/logtape";
import type { Messaging } from "./messaging.ts";
import { describeScriptError } from "./script_error.ts";

/** How long a running `addtask` task holds the stage's task turn (released when it ends). */
const TASK_HOLD_MS = 24 * 60 * 60 * 1000;

type Handler = (...args: unknown[]) => unknown;

/** The `stage.addtask` tasks of one worker. */
export class StageTasks {
  #messaging: Pick<Messaging, "registry" | "signal">;
  #stage: string;
  #worker: number;
  #log: Logger;

  constructor(
    messaging: Pick<Messaging, "registry" | "signal">,
    stage: string,
    worker: number,
    log: Logger,
  ) {
    this.#messaging = messaging;
    this.#stage = stage;
    this.#worker = worker;
    this.#log = log;
  }

  /**
   * `addtask(ms, fn, ...args)` runs `fn(...args)` on this worker after `ms`, one
   * task at a time per stage (tasks of all workers queue on one ordering lock); a
   * numeric result runs it again after that many ms. Returns a handle;
   * `addtask(handle, null)` cancels (a running task finishes, but does not repeat).
   */
  addtask(ms: number | string, fn: Handler | null, ...args: unknown[]): string | boolean {
    if (typeof ms === "string") {
      if (fn !== null) {
        throw new TypeError(`stage.addtask("${ms}", …): use addtask(handle, null) to cancel`);
      }
      return this.#cancelTask(ms);
    }
    if (typeof ms !== "number" || !Number.isFinite(ms) || ms < 0) {
      throw new RangeError(`stage.addtask: ms must be a non-negative number; got ${String(ms)}`);
    }
    if (typeof fn !== "function") {
      throw new TypeError("stage.addtask(ms, fn): fn must be a function");
    }
    const handle = `task.${this.#worker}.${(this.#nextTask++).toString(36)}`;
    const task = {
      fn,
      args,
      timer: undefined as ReturnType<typeof setTimeout> | undefined,
      callback: "",
    };
    this.#tasks.set(handle, task);
    const lock = `tasks@${this.#stage.replaceAll(".", "_")}`;
    const arm = (delay: number) => {
      task.timer = setTimeout(() => {
        task.timer = undefined;
        task.callback = this.#messaging.registry.generate(async () => {
          this.#messaging.registry.unregister(task.callback);
          // Hold the stage's task turn for as long as the task runs.
          this.#messaging.signal(`>>${lock}.${task.callback}`, TASK_HOLD_MS);
          let again: unknown;
          try {
            again = await task.fn(...task.args);
          } catch (error) {
            this.#log.error("stage.addtask task failed: {text}", {
              text: describeScriptError(error),
              error,
            });
          } finally {
            this.#messaging.signal(`<${lock}.*`);
          }
          if (!this.#tasks.has(handle)) return;
          if (typeof again === "number" && Number.isFinite(again) && again >= 0) arm(again);
          else this.#tasks.delete(handle);
        });
        this.#messaging.signal(`>${lock}.${task.callback}`);
      }, delay);
    };
    arm(ms);
    return handle;
  }

  #cancelTask(handle: string): boolean {
    const task = this.#tasks.get(handle);
    if (task === undefined) return false;
    this.#tasks.delete(handle);
    clearTimeout(task.timer);
    if (task.callback !== "" && this.#messaging.registry.unregister(task.callback)) {
      // Still waiting for its turn: leave the queue.
      this.#messaging.signal(`<tasks@${this.#stage.replaceAll(".", "_")}.${task.callback}`);
    }
    return true;
  }

  #tasks = new Map<
    string,
    {
      fn: Handler;
      args: unknown[];
      timer: ReturnType<typeof setTimeout> | undefined;
      callback: string;
    }
  >();
  #nextTask = 0;
}
