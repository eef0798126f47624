/**
 * One worker's line for stage messages: who is sending (stage, worker), its
 * waitfor registry, the per-handler store behind `stage.context`, and sending
 * signal records through the main thread.
 *
 * @module
 */
import { AsyncLocalStorage } from "node:async_hooks";
import type { Logger } from "@logtape/logtape";
import {
  type ErrorRecord,
  type MessageParts,
  packValues,
  WaitforRegistry,
} from "../message/mod.ts";
import {
  encodeSignal,
  type ReplyAddress,
  replyHeader,
  type SignalHeader,
  ToMain,
} from "../pool/wire.ts";
import type { MessageContext } from "./messaging_types.ts";
import type { PlatformPort } from "./platform_port.ts";

/** A waitfor handler or a submitted function. */
export type Handler = (...args: unknown[]) => unknown;

/** The per-handler state behind `stage.context`. */
export type Store = MessageContext & {
  replied: boolean;
  errorRecord?: ErrorRecord;
  thread?: string;
};

/** The message id of `stage.submit` calls (never matched against waitfors). */
export const SUBMIT_MESSAGE = "\u0000submit";

/** The `?query` and `!fail` of a parsed target, as header fields. */
export function modifiers(parts: MessageParts): Pick<SignalHeader, "query" | "fail"> {
  return {
    ...(parts.query === undefined ? {} : { query: parts.query }),
    ...(parts.fail === undefined ? {} : { fail: parts.fail }),
  };
}

/** What the parts of one worker's messaging share. */
export class MessageLine {
  readonly stage: string;
  readonly worker: number;
  readonly log: Logger;
  readonly registry: WaitforRegistry;
  /** The store of the message being handled (`stage.context`). */
  readonly context = new AsyncLocalStorage<Store>();
  #port: PlatformPort;

  constructor(stage: string, worker: number, port: PlatformPort, log: Logger) {
    this.stage = stage;
    this.worker = worker;
    this.#port = port;
    this.log = log;
    this.registry = new WaitforRegistry(`${stage}.${worker}`);
  }

  /** This worker as a sender. */
  from(): SignalHeader["from"] {
    return { stage: this.stage, worker: this.worker };
  }

  /** A reply address for waitfor `reply` on this worker (none for `undefined`). */
  replyTo(reply: string | undefined): { reply?: ReplyAddress } {
    return reply === undefined
      ? {}
      : { reply: { stage: this.stage, worker: this.worker, id: reply } };
  }

  /** Sends a message: the header and the values, packed. */
  send(header: SignalHeader, values: unknown[]): void {
    const packed = packValues(values);
    this.sendPacked(header, packed.bytes);
  }

  /** Sends a message whose values are already packed. */
  sendPacked(header: SignalHeader, packed: Uint8Array): void {
    this.#port.send(ToMain.Signal, 0, 0, encodeSignal(header, packed));
  }

  /** Sends values (or an error record) to a reply address: the worker that asked. */
  sendReply(reply: ReplyAddress, values: unknown[], error = false): void {
    this.send(replyHeader(reply, this.from(), error), values);
  }
}
