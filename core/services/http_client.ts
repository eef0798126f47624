/**
 * The agent stage's one runtime call: sending an HTTP request with `fetch`.
 *
 * The agent's logic (queueing, limits, reading and decoding bodies, error
 * results) sees only {@link HttpClient}, so tests drive it with a fake that
 * returns `Response` objects or throws {@link HttpClientError}s.
 *
 * @module
 */

/** Why an exchange failed before a response arrived (see {@link HttpClientError}). */
export type HttpFailure = "dns" | "refused" | "network";

/**
 * Sending failed: the name did not resolve (`dns`), nobody listened
 * (`refused`), or the connection failed otherwise (`network`: reset, TLS,
 * a blocked port).
 */
export class HttpClientError extends Error {
  override name = "HttpClientError";
  /** What went wrong, as the agent's error `code`. */
  readonly code: HttpFailure;

  constructor(code: HttpFailure, message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
  }
}

/** How one exchange is bounded. */
export interface HttpSendOptions {
  /** The whole exchange (headers and body) must end within this many ms. */
  timeoutMs: number;
  /** Aborts the exchange (the agent stopping). */
  signal: AbortSignal;
}

/** Sends HTTP requests. */
export interface HttpClient {
  /**
   * Sends `request` and resolves with the response once its headers arrived;
   * its body stays bound to the same deadline and signal. Rejects with an
   * {@link HttpClientError}, or a `DOMException` named `TimeoutError` (the
   * deadline passed) or `AbortError` (`options.signal` aborted).
   */
  send(request: Request, options: HttpSendOptions): Promise<Response>;
}

/** `fetch`'s message for the failures of sending (Deno: "… dns error: …", "Connection refused"). */
function describeCause(error: unknown): string {
  const cause = (error as { cause?: unknown }).cause;
  return cause instanceof Error ? cause.message : String((error as Error).message ?? error);
}

/**
 * Turns what `fetch` rejected with into the contract of {@link HttpClient.send}:
 * timeouts and aborts pass through, network failures become {@link HttpClientError}s.
 *
 * @example
 * ```ts
 * import { classifyFetchError } from "./http_client.ts";
 * const error = new TypeError("fetch failed", {
 *   cause: new Error("client error (Connect): tcp connect error: Connection refused (os error 111)"),
 * });
 * if (classifyFetchError(error).code !== "refused") throw new Error("not classified");
 * ```
 */
export function classifyFetchError(error: unknown): HttpClientError | DOMException {
  if (
    error instanceof DOMException && (error.name === "TimeoutError" || error.name === "AbortError")
  ) {
    return error;
  }
  const detail = describeCause(error);
  const code: HttpFailure = /dns error|failed to lookup address|Name or service not known/i
      .test(detail)
    ? "dns"
    : /connection refused/i.test(detail)
    ? "refused"
    : "network";
  return new HttpClientError(code, detail, { cause: error });
}

/**
 * The real client: `fetch` with `AbortSignal.timeout` joined to the stop signal.
 *
 * @example
 * ```ts
 * import { fetchHttp } from "./http_client.ts";
 * const stop = new AbortController();
 * stop.abort();
 * const failed = await fetchHttp.send(new Request("http://127.0.0.1:9/"), {
 *   timeoutMs: 1000,
 *   signal: stop.signal,
 * }).then(() => undefined, (error) => error.name);
 * if (failed !== "AbortError") throw new Error(`expected an abort, got ${failed}`);
 * ```
 */
export const fetchHttp: HttpClient = {
  async send(request, { timeoutMs, signal }) {
    try {
      return await fetch(request, {
        signal: AbortSignal.any([AbortSignal.timeout(timeoutMs), signal]),
      });
    } catch (error) {
      throw classifyFetchError(error);
    }
  },
};
