/**
 * `thread.new` and `thread.signal`: a function run on any worker of the stage,
 * whose messages and return value come back to the handle's callbacks.
 *
 * @module
 */
import { fromErrorRecord, toErrorRecord, unpackValues } from "../message/mod.ts";
import type { SignalHeader } from "../pool/wire.ts";
import type { Handler, MessageLine, Store } from "./_message_line.ts";
import type { ThreadHandle } from "./messaging_types.ts";
import { describeScriptError } from "./script_error.ts";

/** The `thread.new` runs one worker starts and runs. */
export class MessageThreads {
  #line: MessageLine;
  #nextThread = 0;

  constructor(line: MessageLine) {
    this.#line = line;
  }

  /**
   * `thread.new(fn, ...args)`: runs `fn(...args)` on any worker of this stage.
   * Inside, `thread.signal(v)` sends `v` to the handle's waitfor callbacks; the
   * return value arrives last, then the callbacks are removed.
   */
  start(fn: Handler, ...args: unknown[]): ThreadHandle {
    if (typeof fn !== "function") throw new TypeError("thread.new(fn): fn must be a function");
    const line = this.#line;
    const callbacks: ((value: unknown, done: boolean) => void)[] = [];
    const id = `thread.${line.worker}.${(this.#nextThread++).toString(36)}`;
    const inbox = line.registry.generate((value: unknown, kind: unknown) => {
      const done = kind !== "message";
      if (done) line.registry.unregister(inbox);
      const error = line.context.getStore()?.errorRecord;
      for (const callback of [...callbacks]) {
        try {
          callback(error === undefined ? value : fromErrorRecord(error), done);
        } catch (callbackError) {
          line.log.error("thread {id} callback failed: {text}", {
            id,
            text: describeScriptError(callbackError),
          });
        }
      }
      if (done) callbacks.length = 0;
    });
    line.send({
      stage: line.stage,
      scope: "one",
      message: id,
      from: line.from(),
      reply: { stage: line.stage, worker: line.worker, id: inbox },
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
  signal(value: unknown): void {
    const store = this.#line.context.getStore();
    if (store?.thread === undefined || store.reply === undefined) {
      throw new TypeError("thread.signal: not inside a thread.new function");
    }
    this.#line.sendReply(store.reply, [value, "message"]);
  }

  /** The id of the `thread.new` run this code is part of, if any. */
  get id(): string | undefined {
    return this.#line.context.getStore()?.thread;
  }

  /** Runs a `thread.new` function that arrived for this worker. */
  async run(header: SignalHeader, packed: Uint8Array): Promise<void> {
    const line = this.#line;
    const store: Store = {
      waitfor: header.message,
      message: header.message,
      from: header.from,
      ...(header.reply === undefined ? {} : { reply: header.reply }),
      replied: true, // the return value is sent below, marked as the last message
      thread: header.thread!,
    };
    await line.context.run(store, async () => {
      try {
        const [fn, ...args] = unpackValues(packed) as [Handler, ...unknown[]];
        const result = await fn(...args);
        if (header.reply !== undefined) line.sendReply(header.reply, [result, "return"]);
      } catch (error) {
        line.log.error("thread {id} failed: {text}", {
          id: header.thread,
          text: describeScriptError(error),
          error,
        });
        if (header.reply !== undefined) {
          line.sendReply(header.reply, [toErrorRecord(error), "return"], true);
        }
      }
    });
  }
}
