/**
 * The public HTTP gateway: `POST /api/:target` maps a JSON body to
 * `stage.request` (or, asked to, `stage.signal`) through a {@link StageCaller}
 * and answers with the reply, so web back-ends can call stages without a TCP
 * client. Only listed stage message targets are reachable; bodies, timeouts
 * and requests in flight are bounded. Failures are JSON `{ error: { name,
 * message } }` and never carry a stack.
 *
 * @module
 */
import { getLogger, type Logger } from "@logtape/logtape";
import { Hono } from "hono";
import { cors } from "hono/cors";
import type { Awaitable, Health } from "./admin_sources.ts";
import { checkGatewayTarget, TargetAllowlist } from "./gateway_targets.ts";
import type { StageCaller } from "./stage_caller.ts";
import { checkBearer, tokenDigest } from "./_bearer_token.ts";
import { HttpError, sendFailureStatus } from "./_http_error.ts";
import { json } from "./_json.ts";
import { readBodyValues } from "./_request_body.ts";

/** Options of {@link gatewayApp}. */
export interface GatewayAppOptions {
  /** Targets callers may reach: exact `"stage:msg"` or prefixes ending in `*` (required). */
  targets: readonly string[];
  /** Bearer token every request needs; absent: none. */
  token?: string | undefined;
  /** Reply timeout when the request sets no `?timeout=`, ms (default 5000). */
  timeoutMs?: number;
  /** Largest `?timeout=` honoured, ms; larger ones are capped (default 30000). */
  maxTimeoutMs?: number;
  /** Largest request body, bytes (default 65536). */
  maxBodyBytes?: number;
  /** Requests handled at once; beyond it 503 at once (default 1024). */
  maxInflight?: number;
  /** Browser origins allowed by CORS (default none: no CORS headers). */
  cors?: readonly string[];
  /** Readiness: while it says not ready (draining, overloaded), requests get 503. */
  health?: () => Awaitable<Pick<Health, "ready" | "state">>;
  /** `Retry-After` of 503 answers, seconds (default 1). */
  retryAfterSeconds?: number;
  /** Added to a request's timeout before the gateway stops waiting for the caller itself. */
  timeoutGraceMs?: number;
  /** Where unexpected failures are logged (default category `stage.admin.gateway`). */
  log?: Logger;
}

const API_PREFIX = "/api/";

function positive(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value <= 0) {
    throw new RangeError(`gatewayApp: ${name} must be a positive integer; got ${value}`);
  }
  return value;
}

/** The target of `/api/<target>`, percent-decoded from the raw path (so `%2F` and `%3F` work). */
function targetOf(url: string): string {
  const path = new URL(url).pathname;
  if (!path.startsWith(API_PREFIX)) {
    throw new HttpError(404, "NotFound", `No gateway endpoint ${path}: use POST /api/<target>`);
  }
  const raw = path.slice(API_PREFIX.length);
  try {
    return decodeURIComponent(raw);
  } catch {
    throw new HttpError(400, "TypeError", `Target ${JSON.stringify(raw)} is not URL-encoded`);
  }
}

function timeoutOf(given: string | undefined, fallback: number, max: number): number {
  if (given === undefined) return fallback;
  if (!/^\d+$/.test(given) || Number(given) <= 0) {
    throw new HttpError(
      400,
      "RangeError",
      `Query "timeout": expected a positive integer of ms; found ${JSON.stringify(given)}`,
    );
  }
  return Math.min(Number(given), max);
}

/** `Prefer: respond-async` (RFC 7240, among other preferences) or `?async` (unless `0`/`false`). */
function wantsAsync(prefer: string | undefined, query: string | undefined): "header" | boolean {
  if (
    prefer?.split(",").some((token) =>
      token.split(/[;=]/)[0]!.trim().toLowerCase() === "respond-async"
    )
  ) return "header";
  return query !== undefined && query !== "0" && query.toLowerCase() !== "false";
}

function failure(error: unknown, status?: number): HttpError {
  const name = error instanceof Error ? error.name : "Error";
  const message = error instanceof Error ? error.message : String(error);
  return new HttpError(status ?? sendFailureStatus(name), name, message);
}

/**
 * The gateway app: `POST /api/:target` through `caller`.
 *
 * @throws {TypeError} `options.targets` is empty or holds an entry that is not a
 *   target or a prefix (see {@link TargetAllowlist}), or `options.token` is empty.
 * @throws {RangeError} a limit is not a positive integer, `timeoutMs` > `maxTimeoutMs`, or
 *   `timeoutGraceMs` is negative.
 * @example
 * ```ts
 * import { gatewayApp, type StageCaller } from "./mod.ts";
 * const caller: StageCaller = {
 *   request: (_target, values) => Promise.resolve((values as number[]).reduce((a, b) => a + b)),
 *   signal: () => {},
 * };
 * const app = gatewayApp(caller, { targets: ["calc:*"] });
 * const response = await app.request("/api/calc:add", {
 *   method: "POST",
 *   headers: { "content-type": "application/json" },
 *   body: "[2, 3]",
 * });
 * const { reply } = await response.json();
 * if (reply !== 5) throw new Error(`got ${reply}`);
 * ```
 */
export function gatewayApp(caller: StageCaller, options: GatewayAppOptions): Hono {
  const allowlist = new TargetAllowlist(options.targets);
  const { token, health } = options;
  if (token !== undefined && (typeof token !== "string" || token === "")) {
    throw new TypeError("gatewayApp: token must be a non-empty string");
  }
  const timeoutMs = positive("timeoutMs", options.timeoutMs, 5000);
  const maxTimeoutMs = positive("maxTimeoutMs", options.maxTimeoutMs, 30_000);
  if (timeoutMs > maxTimeoutMs) {
    throw new RangeError(`gatewayApp: timeoutMs ${timeoutMs} is over maxTimeoutMs ${maxTimeoutMs}`);
  }
  const maxBodyBytes = positive("maxBodyBytes", options.maxBodyBytes, 64 * 1024);
  const maxInflight = positive("maxInflight", options.maxInflight, 1024);
  const retryAfter = String(positive("retryAfterSeconds", options.retryAfterSeconds, 1));
  const graceMs = options.timeoutGraceMs ?? 1000;
  if (!Number.isFinite(graceMs) || graceMs < 0) {
    throw new RangeError(`gatewayApp: timeoutGraceMs must be a number >= 0; got ${graceMs}`);
  }
  const log = options.log ?? getLogger(["stage", "admin", "gateway"]);
  const expected = token === undefined ? undefined : tokenDigest(token);
  let inflight = 0;

  const app = new Hono();
  app.onError((error) => {
    if (error instanceof HttpError) return error.toResponse();
    log.error("Gateway request failed: {error}", { error });
    return json({
      error: { name: "InternalError", message: "The gateway failed to handle the request" },
    }, 500);
  });
  if (options.cors !== undefined && options.cors.length > 0) {
    app.use(
      "*",
      cors({
        origin: [...options.cors],
        allowMethods: ["POST", "OPTIONS"],
        allowHeaders: ["Content-Type", "Authorization", "Prefer"],
        exposeHeaders: ["Retry-After", "Preference-Applied"],
        maxAge: 600,
      }),
    );
  }
  app.notFound((c) => {
    if (c.req.path.startsWith(API_PREFIX)) {
      return json(
        { error: { name: "MethodNotAllowed", message: `${c.req.method} ${c.req.path}: use POST` } },
        405,
        { allow: "POST" },
      );
    }
    return json({
      error: { name: "NotFound", message: `No gateway endpoint ${c.req.method} ${c.req.path}` },
    }, 404);
  });

  app.post("/api/*", async (c) => {
    if (inflight >= maxInflight) {
      throw new HttpError(
        503,
        "GatewayBusy",
        `${maxInflight} gateway requests in flight; retry later`,
        { "retry-after": retryAfter },
      );
    }
    inflight++;
    try {
      if (expected !== undefined) {
        const check = await checkBearer(c.req.header("authorization"), await expected);
        if (check !== "ok") {
          throw new HttpError(
            401,
            "Unauthorized",
            check === "missing"
              ? "Missing Authorization: Bearer <token> header"
              : "Wrong gateway token",
            { "www-authenticate": 'Bearer realm="stage-gateway"' },
          );
        }
      }
      const target = targetOf(c.req.url);
      let key: string;
      try {
        key = checkGatewayTarget(target);
      } catch (error) {
        throw failure(error, 400);
      }
      if (!allowlist.allows(key)) {
        throw new HttpError(403, "Forbidden", `Target ${JSON.stringify(target)} is not allowed`);
      }
      const timeout = timeoutOf(c.req.query("timeout"), timeoutMs, maxTimeoutMs);
      const async = wantsAsync(c.req.header("prefer"), c.req.query("async"));
      const state = await health?.();
      if (state !== undefined && !state.ready) {
        throw new HttpError(503, "Unavailable", `Stage is ${state.state}; retry later`, {
          "retry-after": retryAfter,
        });
      }
      const values = await readBodyValues(c.req.raw, maxBodyBytes);
      if (async !== false) {
        try {
          caller.signal(target, values);
        } catch (error) {
          throw failure(error, error instanceof TypeError ? 400 : undefined);
        }
        const headers: Record<string, string> = async === "header"
          ? { "preference-applied": "respond-async" }
          : {};
        return json({ accepted: true }, 202, headers);
      }
      const reply = await requestWithin(caller, target, values, timeout, graceMs);
      try {
        return json({ reply: reply ?? null });
      } catch (error) {
        throw failure(error, 502);
      }
    } finally {
      inflight--;
    }
  });
  return app;
}

/**
 * `caller.request`, with a backstop: a caller that never settles still frees
 * the request (and its in-flight slot) `graceMs` after its timeout.
 */
async function requestWithin(
  caller: StageCaller,
  target: string,
  values: unknown[],
  timeoutMs: number,
  graceMs: number,
): Promise<unknown> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const backstop = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      reject(
        new HttpError(
          504,
          "RequestTimeoutError",
          `No reply from ${JSON.stringify(target)} within ${timeoutMs} ms`,
        ),
      );
    }, timeoutMs + graceMs);
  });
  try {
    return await Promise.race([caller.request(target, values, timeoutMs), backstop]);
  } catch (error) {
    throw error instanceof HttpError ? error : failure(error);
  } finally {
    clearTimeout(timer);
  }
}
