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
