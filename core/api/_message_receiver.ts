/**
 * Running the stage messages this worker receives: the matching waitfor under
 * its `stage.context`, `stage.submit` calls and `thread.new` runs, with the
 * handler's result or error sent back to the reply address.
 *
 * @module
 */
import {
  type ErrorRecord,
  fromErrorRecord,
  toErrorRecord,
  unpackData,
  unpackValues,
} from "../message/mod.ts";
import { decodeSignalHeader, type SignalHeader } from "../pool/wire.ts";
import { type Handler, type MessageLine, type Store, SUBMIT_MESSAGE } from "./_message_line.ts";
import type { MessageThreads } from "./_message_threads.ts";
import { releaseGrant } from "./_ticket_grants.ts";
import { WaitforNotFoundError } from "./messaging_errors.ts";
import { describeScriptError } from "./script_error.ts";

/** What a worker does with the stage messages it receives. */
export class MessageReceiver {
  #line: MessageLine;
  #threads: MessageThreads;
  #resolve: (name: string) => Promise<unknown>;
  /** A service stage's: argument errors are the sender's mistakes (logged as warnings). */
  #service: boolean;

  constructor(
    line: MessageLine,
    threads: MessageThreads,
    resolve: (name: string) => Promise<unknown>,
    service: boolean,
  ) {
    this.#line = line;
    this.#threads = threads;
    this.#resolve = resolve;
    this.#service = service;
  }

  /** A stage message for this worker arrived (ring record `ToWorker.Signal`). */
  receive(body: Uint8Array): unknown {
    const line = this.#line;
    const { header, values: packed } = decodeSignalHeader(body);
    if (this.#service && (header.submit !== undefined || header.thread !== undefined)) {
      line.log.warning("Service stage {stage} runs no code: refused a submit/thread from {from}", {
        stage: line.stage,
        from: header.from.stage,
      });
      return undefined;
    }
    if (header.submit !== undefined) return this.#runSubmit(header.submit, packed);
    if (header.thread !== undefined) return this.#threads.run(header, packed);
    let values: unknown[];
    try {
      // A service (outside the sandbox) never rebuilds — evaluates — a function a script sent.
      values = this.#service ? unpackData(packed) : unpackValues(packed);
    } catch (error) {
      line.log.error("Cannot read message {message} from {from}: {error}", {
        message: header.message,
        from: header.from.stage,
        error,
      });
      return undefined;
    }
    const waitfor = line.registry.match(header.message);
    if (waitfor === undefined) {
      if (header.optional) return undefined;
      // A reply whose request timed out, or a message nobody waits for.
      if (!header.message.startsWith("~")) {
        line.log.warning("No waitfor matches message {message} (from {from})", {
          message: header.message,
          from: header.from.stage,
        });
      }
      this.#replyError(
        header,
        new WaitforNotFoundError(
          `No waitfor matches message "${header.message}" in stage "${line.stage}"`,
        ),
      );
      releaseGrant(line, header);
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
    return line.context.run(store, () => {
      let result: unknown;
      try {
        result = waitfor.fn(...waitfor.bound, ...values);
      } catch (error) {
        this.#failed(header, store, error);
        releaseGrant(line, header);
        return undefined;
      }
      if (result instanceof Promise) {
        return result.then(
          (value) => this.#autoReply(header, store, value),
          (error) => this.#failed(header, store, error),
        ).finally(() => releaseGrant(line, header));
      }
      this.#autoReply(header, store, result);
      releaseGrant(line, header);
      return undefined;
    });
  }

  /**
   * A synchronous `":msg"`: runs the matching waitfor now, in this worker.
   *
   * @throws TypeError when no waitfor matches `message`
   */
  runLocal(message: string, values: unknown[]): unknown {
    const line = this.#line;
    const waitfor = line.registry.match(message);
    if (waitfor === undefined) {
      throw new TypeError(`stage.signal(":${message}"): no waitfor matches "${message}"`);
    }
    const store = {
      waitfor: waitfor.id,
      message,
      from: line.from(),
      replied: false,
    };
    return line.context.run(store, () => waitfor.fn(...waitfor.bound, ...values));
  }

  async #runSubmit(key: number | string, packed: Uint8Array): Promise<void> {
    const line = this.#line;
    let fn: unknown;
    let args: unknown[] = [];
    try {
      [fn, ...args] = unpackValues(packed);
      if (typeof fn === "string") fn = await this.#resolve(fn);
      if (typeof fn !== "function") throw new TypeError(`stage.submit(${key}): not a function`);
      const result = await (fn as Handler)(...args);
      if (typeof result === "number" && Number.isFinite(result) && result >= 0) {
        // A numeric result reschedules the same call, behind whatever the key queued meanwhile.
        setTimeout(() => line.sendPacked(resubmit(key, line.from()), packed), result);
      }
    } catch (error) {
      line.log.error("stage.submit({key}) failed: {text}", {
        key,
        text: describeScriptError(error),
        error,
      });
    }
  }

  #autoReply(header: SignalHeader, store: { replied: boolean }, value: unknown): void {
    if (header.reply === undefined || store.replied || value === undefined) return;
    store.replied = true;
    this.#line.sendReply(header.reply, [value]);
  }

  #failed(header: SignalHeader, store: { replied: boolean }, error: unknown): void {
    if (this.#service && (error instanceof TypeError || error instanceof RangeError)) {
      // A service refusing a bad request: the sender's mistake, answered with the error.
      this.#line.log.warning("Refused message {message} from {from}: {text}", {
        message: header.message,
        from: `${header.from.stage}/${header.from.worker}`,
        text: `${error.name}: ${error.message}`,
      });
    } else {
      this.#line.log.error("Script error in the handler of {message}: {text}", {
        message: header.message,
        text: describeScriptError(error),
        error,
      });
    }
    if (!store.replied) this.#replyError(header, error);
  }

  #replyError(header: SignalHeader, error: unknown): void {
    if (header.reply === undefined || header.error) return;
    this.#line.sendReply(header.reply, [toErrorRecord(error)], true);
  }
}

/** The header that runs a `stage.submit` call again under its key. */
function resubmit(key: number | string, from: SignalHeader["from"]): SignalHeader {
  return { stage: from.stage, scope: "one", message: SUBMIT_MESSAGE, from, submit: key };
}
