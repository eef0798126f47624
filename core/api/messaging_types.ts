/**
 * The plain shapes of the messaging API: what `stage.context` says, the exact
 * addresses service stages send to, and the handle `thread.new` returns.
 *
 * @module
 */
import type { ReplyAddress, SignalHeader, TicketRef } from "../pool/wire.ts";

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

/** What `Messaging.deliverTo` may add to a message. */
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

/** What `thread.new` returns. */
export interface ThreadHandle {
  readonly id: string;
  /** Adds a callback for the thread's messages: `(value, done)`; `done` marks the return value. */
  waitfor(callback: (value: unknown, done: boolean) => void): ThreadHandle;
}
