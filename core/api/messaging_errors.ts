/**
 * The errors the messaging API raises that callers catch, registered so that
 * they come back as their own classes after crossing a thread or process.
 *
 * @module
 */
import { CapturedVariableError, registerErrorClass } from "../message/mod.ts";

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
