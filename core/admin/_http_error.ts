/**
 * An HTTP failure of the gateway, answered as JSON `{ error: { name, message } }`.
 *
 * @module
 */
import { json } from "./_json.ts";

/** A failure with its HTTP status; `name` and `message` are what the public sees. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    override readonly name: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }

  /** The JSON response of this failure (never a stack). */
  toResponse(): Response {
    return json({ error: { name: this.name, message: this.message } }, this.status, this.headers);
  }
}

/**
 * The HTTP status of a message that failed on its way to a stage or in its
 * handler, by error name (errors are rebuilt by name across threads): no reply
 * in time 504, nobody serves it 404, the handler's own error 502.
 */
export function sendFailureStatus(name: string): number {
  switch (name) {
    case "RequestTimeoutError":
      return 504;
    case "StageNotFoundError":
    case "WaitforNotFoundError":
      return 404;
    case "AdminUnavailableError":
      return 501;
    default:
      return 502;
  }
}
