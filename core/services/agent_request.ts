/**
 * What an agent request and its result look like (plain data: both cross
 * threads), and checking what a script sent: the typed table of request
 * options and the `Request` built from them. (Reading and decoding the
 * response: `agent_response.ts`.)
 *
 * @module
 */

/** What a script sends: `stage.signal("agent:cb", request)` (a bare URL string means a GET). */
export interface AgentRequest {
  /** An `http:` or `https:` URL. */
  url: string;
  /** The HTTP method (default `GET`, or `POST` when `data` is given). */
  method?: string;
  /** Request headers (`user-agent` defaults to the stage's `user-agent`). */
  header?: Record<string, string>;
  /** The body: a string as is, a `Uint8Array`/`ArrayBuffer` as bytes, anything else as JSON. */
  data?: unknown;
  /** ms the whole request may take, queue wait included (default: the stage's `timeout`). */
  timeout?: number;
  /** `"follow"` (default) follows redirects; `"manual"` returns the 3xx with `redirect_url`. */
  redirect?: "follow" | "manual";
  /** Passed back untouched in the result. */
  extra?: unknown;
}

/** Why a request failed (`result.error.code`). */
export type AgentErrorCode =
  | "invalid_request"
  | "invalid_url"
  | "unsupported_scheme"
  | "dns"
  | "refused"
  | "network"
  | "timeout"
  | "too_large"
  | "busy"
  | "stopped";

/** The failure of a request, as plain data. */
export interface AgentError {
  name: "AgentError";
  message: string;
  code: AgentErrorCode;
}

/** The response body, decoded. */
export interface AgentContent {
  /** The media type, lowercase, without parameters (`""` when the response has none). */
  type: string;
  /** Body size in bytes (after content decoding such as gzip). */
  length: number;
  /** Text for textual types (see {@link isTextual}), otherwise the bytes. */
  content: string | Uint8Array;
  /** The charset the text was decoded with (`""` for bytes). */
  charset: string;
  /** ms from sending the request to the end of the body. */
  time: number;
}

/** What the caller's callback receives. `status` is 0 and `error` is set when it failed. */
export interface AgentResult {
  /** The URL as requested. */
  url: string;
  status: number;
  /** The URL of the final response, after redirects (`""` on error). */
  effective_url: string;
  /** The resolved `Location` of a 3xx response that was not followed (`""` otherwise). */
  redirect_url: string;
  /** The `Set-Cookie` values of the final response. */
  cookie: string[];
  /** The response headers, names lowercase (without `set-cookie`). */
  header: Record<string, string>;
  extra: unknown;
  data: AgentContent;
  error?: AgentError;
}

/** A request that passed the checks: ready to send. */
export interface PreparedRequest {
  url: string;
  request: Request;
  timeoutMs: number;
  extra: unknown;
}

/** The stage settings a request falls back on. */
export interface AgentDefaults {
  userAgent: string;
  timeout: number;
}

/** The largest timer delay: a longer timeout could not be kept. */
const MAX_TIMEOUT_MS = 0x7fff_ffff;

/** A failed request: an error result. */
export function errorResult(
  url: string,
  extra: unknown,
  code: AgentErrorCode,
  message: string,
  time = 0,
): AgentResult {
  return {
    url,
    status: 0,
    effective_url: "",
    redirect_url: "",
    cookie: [],
    header: {},
    extra,
    data: { type: "", length: 0, content: "", charset: "", time },
    error: { name: "AgentError", message, code },
  };
}

class Invalid extends Error {
  readonly code: AgentErrorCode;
  constructor(code: AgentErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}

const describe = (value: unknown) =>
  typeof value === "string" ? JSON.stringify(value) : String(value);

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value);

/** Checks each option of an {@link AgentRequest}: the typed table of what a request may say. */
const options = {
  url(value: unknown): string {
    if (typeof value !== "string") throw new Invalid("invalid_url", `url: expected a string`);
    return value;
  },
  method(value: unknown): string {
    if (typeof value !== "string" || value === "") {
      throw new Invalid(
        "invalid_request",
        `method: expected a method name; got ${describe(value)}`,
      );
    }
    return value.toUpperCase();
  },
  header(value: unknown): Record<string, string> {
    if (!isRecord(value)) throw new Invalid("invalid_request", "header: expected an object");
    for (const [name, text] of Object.entries(value)) {
      if (typeof text !== "string" && typeof text !== "number") {
        throw new Invalid("invalid_request", `header ${name}: expected a string`);
      }
    }
    return value as Record<string, string>;
  },
  data: (value: unknown): unknown => value,
  timeout(value: unknown): number {
    if (typeof value !== "number" || !(value > 0) || value > MAX_TIMEOUT_MS) {
      throw new Invalid(
        "invalid_request",
        `timeout: expected a positive number of ms (at most ${MAX_TIMEOUT_MS}); got ${
          describe(value)
        }`,
      );
    }
    return value;
  },
  redirect(value: unknown): "follow" | "manual" {
    if (value !== "follow" && value !== "manual") {
      throw new Invalid(
        "invalid_request",
        `redirect: expected "follow" or "manual"; got ${describe(value)}`,
      );
    }
    return value;
  },
  extra: (value: unknown): unknown => value,
} satisfies { [Key in keyof AgentRequest]-?: (value: unknown) => AgentRequest[Key] };

/** The names of every request option. */
export const AGENT_OPTIONS: readonly (keyof AgentRequest)[] = Object.keys(options) as never;

function body(data: unknown): BodyInit | undefined {
  if (data === undefined || data === null) return undefined;
  if (typeof data === "string" || data instanceof Uint8Array || data instanceof ArrayBuffer) {
    return data as BodyInit;
  }
  if (ArrayBuffer.isView(data)) {
    return new Uint8Array(data.buffer, data.byteOffset, data.byteLength) as BodyInit;
  }
  return JSON.stringify(data);
}

/**
 * Checks what a script sent and builds the request; an invalid one is an
 * error result (`invalid_request`, `invalid_url` or `unsupported_scheme`).
 *
 * @example
 * ```ts
 * import { prepareRequest } from "./agent_request.ts";
 * const prepared = prepareRequest(
 *   { url: "http://127.0.0.1:8080/a", data: { x: 1 } },
 *   { userAgent: "bot/1", timeout: 1000 },
 * );
 * if ("status" in prepared || prepared.request.method !== "POST") throw new Error("not a POST");
 * ```
 */
export function prepareRequest(
  input: unknown,
  defaults: AgentDefaults,
): PreparedRequest | AgentResult {
  const given = typeof input === "string" ? { url: input } : input;
  if (!isRecord(given)) {
    return errorResult(
      "",
      undefined,
      "invalid_request",
      `expected a request object { url, header?, data?, timeout?, extra? } or a URL; got ${
        describe(given)
      }`,
    );
  }
  const url = typeof given.url === "string" ? given.url : "";
  const extra = given.extra;
  try {
    const checked: Partial<Record<keyof AgentRequest, unknown>> = {};
    for (const [key, value] of Object.entries(given)) {
      const check = options[key as keyof AgentRequest] as ((value: unknown) => unknown) | undefined;
      if (check === undefined) {
        throw new Invalid(
          "invalid_request",
          `unknown option "${key}" (options: ${AGENT_OPTIONS.join(", ")})`,
        );
      }
      if (value !== undefined) checked[key as keyof AgentRequest] = check(value);
    }
    if (checked.url === undefined) throw new Invalid("invalid_url", "url: expected a string");
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new Invalid("invalid_url", `invalid URL ${JSON.stringify(url)}`);
    }
    if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
      throw new Invalid(
        "unsupported_scheme",
        `unsupported scheme "${parsed.protocol.slice(0, -1)}" in ${JSON.stringify(url)} ` +
          "(http and https only)",
      );
    }
    const payload = body(checked.data);
    const headers = new Headers(checked.header as Record<string, string> | undefined);
    if (!headers.has("user-agent")) headers.set("user-agent", defaults.userAgent);
    const isJson = payload !== undefined && typeof payload === "string" &&
      typeof checked.data !== "string";
    if (isJson && !headers.has("content-type")) headers.set("content-type", "application/json");
    const method = (checked.method as string | undefined) ??
      (payload === undefined ? "GET" : "POST");
    const request = new Request(parsed, {
      method,
      headers,
      redirect: (checked.redirect as "follow" | "manual" | undefined) ?? "follow",
      ...(payload === undefined ? {} : { body: payload }),
    });
    return {
      url,
      request,
      timeoutMs: (checked.timeout as number | undefined) ?? defaults.timeout,
      extra,
    };
  } catch (error) {
    if (error instanceof Invalid) return errorResult(url, extra, error.code, error.message);
    // The Request constructor's own checks: header names and values, methods, a GET with a body.
    return errorResult(url, extra, "invalid_request", (error as Error).message);
  }
}
