/**
 * The admin HTTP API as a Hono app over {@link AdminSources}: read endpoints
 * (`/health`, `/metrics`, `/stages`, `/sockets`, `/tickets`, `/routes`,
 * `/workers`), mutating ones (`POST /signal`, `/reload`, `/drain`) and the
 * live dashboard page (`/dashboard`; `/` redirects to it). Every endpoint but
 * `/health` and the page (which holds no data and sends the token it is given
 * on its own requests) needs `Authorization: Bearer <token>` when a token is
 * set. Failures are JSON: `{ error: { name, message, field? } }`.
 *
 * @module
 */
import { type Context, Hono } from "hono";
import { PROMETHEUS_CONTENT_TYPE } from "../metrics/mod.ts";
import type { AdminSources } from "./admin_sources.ts";
import { dashboardResponse } from "./dashboard_page.ts";
import { sameToken } from "./_bearer_token.ts";
import { json } from "./_json.ts";
import { sendFailureStatus } from "./_http_error.ts";

/** Options of {@link adminApp}. */
export interface AdminAppOptions {
  /** Bearer token every endpoint but `/health` requires; absent: no authentication. */
  token?: string;
  /** Default `POST /signal` timeout, ms (default 5000). */
  signalTimeoutMs?: number;
  /** Largest `POST /signal` timeout a caller may ask for, ms (default 60000). */
  maxSignalTimeoutMs?: number;
  /** Largest request body, bytes (default 1 MiB). */
  maxBodyBytes?: number;
}

/** A `POST /signal` body, checked. */
export interface SignalRequest {
  target: string;
  values: unknown[];
  timeoutMs: number;
}

const encoder = new TextEncoder();

/** An error response's body, for a status and a cause. */
class HttpError extends Error {
  constructor(
    readonly status: number,
    override readonly name: string,
    message: string,
    readonly field?: string,
  ) {
    super(message);
  }
}

function errorResponse(error: unknown): Response {
  if (error instanceof HttpError) {
    const body = {
      name: error.name,
      message: error.message,
      ...(error.field === undefined ? {} : { field: error.field }),
    };
    const headers: Record<string, string> = error.status === 401
      ? { "www-authenticate": 'Bearer realm="stage-admin"' }
      : {};
    return json({ error: body }, error.status, headers);
  }
  const name = error instanceof Error ? error.name : "Error";
  const message = error instanceof Error ? error.message : String(error);
  const status = name === "AdminUnavailableError" ? 501 : 500;
  return json({ error: { name, message } }, status);
}

function describe(value: unknown): string {
  if (value === undefined) return "nothing";
  try {
    const text = JSON.stringify(value);
    return text.length > 60 ? `${text.slice(0, 57)}...` : text;
  } catch {
    return typeof value;
  }
}

/**
 * Checks a `POST /signal` body: `{ target, values?, timeout? }`.
 *
 * @throws {TypeError} not an object, or a field of the wrong type (the message names it).
 * @throws {RangeError} `timeout` is not in (0, `maxTimeoutMs`].
 */
export function parseSignalRequest(
  body: unknown,
  defaultTimeoutMs: number,
  maxTimeoutMs: number,
): SignalRequest {
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw new TypeError(`Signal body: expected a JSON object; found ${describe(body)}`);
  }
  const { target, values, timeout } = body as Record<string, unknown>;
  if (typeof target !== "string" || target.trim() === "") {
    throw Object.assign(
      new TypeError(`Field "target": expected a non-empty string; found ${describe(target)}`),
      { field: "target" },
    );
  }
  if (values !== undefined && !Array.isArray(values)) {
    throw Object.assign(
      new TypeError(`Field "values": expected an array; found ${describe(values)}`),
      { field: "values" },
    );
  }
  if (
    timeout !== undefined &&
    (typeof timeout !== "number" || !(timeout > 0 && timeout <= maxTimeoutMs))
  ) {
    throw Object.assign(
      new RangeError(
        `Field "timeout": expected milliseconds in (0, ${maxTimeoutMs}]; found ${
          describe(timeout)
        }`,
      ),
      { field: "timeout" },
    );
  }
  return { target, values: values ?? [], timeoutMs: timeout ?? defaultTimeoutMs };
}

async function readJson(c: Context, maxBytes: number): Promise<unknown> {
  const declared = Number(c.req.header("content-length") ?? "0");
  if (declared > maxBytes) {
    throw new HttpError(413, "PayloadTooLarge", `Request body over ${maxBytes} bytes`);
  }
  const text = await c.req.text();
  if (encoder.encode(text).length > maxBytes) {
    throw new HttpError(413, "PayloadTooLarge", `Request body over ${maxBytes} bytes`);
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new HttpError(400, "SyntaxError", `Request body is not JSON: ${reason}`);
  }
}

const METHODS: Record<string, string> = {
  "/": "GET",
  "/dashboard": "GET",
  "/health": "GET",
  "/metrics": "GET",
  "/metrics.json": "GET",
  "/stages": "GET",
  "/sockets": "GET",
  "/tickets": "GET",
  "/routes": "GET",
  "/workers": "GET",
  "/signal": "POST",
  "/reload": "POST",
  "/drain": "POST",
};

/**
 * The admin API over `sources`.
 *
 * @throws {TypeError} `options.token` is set but empty.
 * @example
 * ```ts
 * import { adminApp } from "./mod.ts";
 * const health = { live: true, ready: true, state: "ready" } as const;
 * const fail = () => Promise.reject(new Error("unused"));
 * const app = adminApp({
 *   health: () => health, metricsText: () => "", stages: () => [], tickets: () => [],
 *   sockets: () => ({ open: 0, byState: { writing: 0, busy: 0, idle: 0 }, byStage: {},
 *     closed: {}, refused: {}, top: [] }),
 *   routes: () => [], workers: () => [], signal: fail, reload: fail, drain: fail,
 * }, { token: "secret" });
 * if ((await app.request("/health")).status !== 200) throw new Error("not ready");
 * if ((await app.request("/stages")).status !== 401) throw new Error("no auth");
 * ```
 */
export function adminApp(sources: AdminSources, options: AdminAppOptions = {}): Hono {
  const { token } = options;
  if (token !== undefined && (typeof token !== "string" || token === "")) {
    throw new TypeError(`adminApp: token must be a non-empty string; got ${describe(token)}`);
  }
  const defaultTimeout = options.signalTimeoutMs ?? 5000;
  const maxTimeout = options.maxSignalTimeoutMs ?? 60_000;
  const maxBody = options.maxBodyBytes ?? 1 << 20;
  const expected = token === undefined
    ? undefined
    : crypto.subtle.digest("SHA-256", encoder.encode(token)).then((d) => new Uint8Array(d));
  const app = new Hono();

  app.onError((error) => errorResponse(error));
  app.notFound((c) => {
    const method = METHODS[c.req.path];
    if (method !== undefined) {
      return json(
        {
          error: {
            name: "MethodNotAllowed",
            message: `${c.req.method} ${c.req.path}: use ${method}`,
          },
        },
        405,
        { allow: method },
      );
    }
    return json({
      error: { name: "NotFound", message: `No admin endpoint ${c.req.method} ${c.req.path}` },
    }, 404);
  });

  app.get("/health", async () => {
    const health = await sources.health();
    return json(health, health.ready ? 200 : 503);
  });
  app.get("/dashboard", () => dashboardResponse());
  app.get("/", (c) => c.redirect("./dashboard", 302));

  app.use("*", async (c, next) => {
    if (expected === undefined || c.req.path === "/health") return await next();
    const header = c.req.header("authorization") ?? "";
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (match === null || !await sameToken(match[1]!, await expected)) {
      throw new HttpError(
        401,
        "Unauthorized",
        match === null ? "Missing Authorization: Bearer <token> header" : "Wrong admin token",
      );
    }
    await next();
  });

  app.get("/metrics", async () =>
    new Response(await sources.metricsText(), {
      headers: { "content-type": PROMETHEUS_CONTENT_TYPE },
    }));
  app.get("/metrics.json", async () => {
    if (sources.metricsSnapshot === undefined) {
      throw new HttpError(501, "AdminUnavailableError", "No metrics snapshot in this process");
    }
    return json(await sources.metricsSnapshot());
  });
  app.get("/stages", async () => json(await sources.stages()));
  app.get("/sockets", async () => json(await sources.sockets()));
  app.get("/tickets", async () => json(await sources.tickets()));
  app.get("/routes", async () => json(await sources.routes()));
  app.get("/workers", async () => json(await sources.workers()));

  app.post("/signal", async (c) => {
    let request: SignalRequest;
    try {
      request = parseSignalRequest(await readJson(c, maxBody), defaultTimeout, maxTimeout);
    } catch (error) {
      if (error instanceof HttpError) throw error;
      const field = (error as { field?: string }).field;
      throw new HttpError(400, (error as Error).name, (error as Error).message, field);
    }
    let reply: unknown;
    try {
      reply = await sources.signal(request.target, request.values, request.timeoutMs);
    } catch (error) {
      const name = error instanceof Error ? error.name : "Error";
      const message = error instanceof Error ? error.message : String(error);
      return json({ error: { name, message } }, sendFailureStatus(name));
    }
    return json({ reply: reply ?? null });
  });
  app.post(
    "/reload",
    async () => json({ reloaded: true, result: (await sources.reload()) ?? null }),
  );
  app.post(
    "/drain",
    async () => json({ draining: true, result: (await sources.drain()) ?? null }, 202),
  );
  return app;
}
