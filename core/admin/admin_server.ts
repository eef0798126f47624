/**
 * Serves the admin app (or the HTTP gateway) on a TCP port with `Deno.serve`
 * (the one runtime call of this folder), refusing an address other machines
 * can reach unless a token protects it or the server is public by design.
 *
 * @module
 */
import type { Logger } from "@logtape/logtape";

/** Where and how {@link serveAdmin} listens (the `#admin` config fields it needs). */
export interface AdminServeOptions {
  hostname: string;
  /** 0 picks a free port. */
  port: number;
  /** The token the app requires; only checked for presence here (the app enforces it). */
  token?: string | undefined;
  /** Serve a non-loopback address without a token (the HTTP gateway is public by design). */
  allowPublic?: boolean;
  /**
   * Set `SO_REUSEPORT` (Linux), so several processes serve one port and the
   * kernel spreads connections between them.
   */
  reusePort?: boolean;
  /** What logs and errors call the server (default `"admin API"`). */
  label?: string;
}

/** A running admin server. */
export interface AdminServer extends AsyncDisposable {
  /** `host:port` actually bound (IPv6 in brackets). */
  readonly address: string;
  readonly hostname: string;
  readonly port: number;
  /** Stops accepting, finishes the requests in progress, closes the port. */
  shutdown(): Promise<void>;
}

/** Raised when the admin API would listen on a non-loopback address without a token. */
export class AdminExposedError extends Error {
  override name = "AdminExposedError";
}

/**
 * Whether `hostname` only accepts local connections: `localhost`, `127.0.0.0/8`,
 * `::1` (with or without brackets) and `::ffff:127.x.x.x`.
 *
 * @example
 * ```ts
 * import { isLoopback } from "./mod.ts";
 * if (!isLoopback("127.0.0.1") || !isLoopback("[::1]")) throw new Error("loopback");
 * if (isLoopback("0.0.0.0") || isLoopback("")) throw new Error("not loopback");
 * ```
 */
export function isLoopback(hostname: string): boolean {
  let host = hostname.trim().toLowerCase();
  if (host.startsWith("[") && host.endsWith("]")) host = host.slice(1, -1);
  if (host === "localhost" || host === "::1" || host === "0:0:0:0:0:0:0:1") return true;
  if (host.startsWith("::ffff:")) host = host.slice(7);
  const parts = host.split(".");
  return parts.length === 4 && parts[0] === "127" &&
    parts.every((part) => /^\d{1,3}$/.test(part) && Number(part) <= 255);
}

/**
 * Serves `app` on `hostname:port`.
 *
 * @throws {AdminExposedError} `hostname` is not loopback, no token is set and
 *   `allowPublic` is not.
 * @throws {TypeError} the port is not an integer in [0, 65535].
 * @throws {Error} the address cannot be bound (the message names it; `cause` is the OS error).
 * @example
 * ```ts
 * import { getLogger } from "@logtape/logtape";
 * import { Hono } from "hono";
 * import { serveAdmin } from "./mod.ts";
 * const app = new Hono().get("/health", (c) => c.json({ live: true }));
 * const server = serveAdmin(app, { hostname: "127.0.0.1", port: 0 }, getLogger(["stage"]));
 * const response = await fetch(`http://${server.address}/health`);
 * await response.body?.cancel();
 * await server.shutdown();
 * ```
 */
export function serveAdmin(
  app: { fetch(request: Request): Response | Promise<Response> },
  options: AdminServeOptions,
  log: Logger,
): AdminServer {
  const { hostname, port, token } = options;
  const label = options.label ?? "admin API";
  if (
    (token === undefined || token === "") && !isLoopback(hostname) && options.allowPublic !== true
  ) {
    throw new AdminExposedError(
      `Refusing to serve the admin API on "${hostname}:${port}" without a token: ` +
        `set #admin.token or listen on a loopback address (127.0.0.1, ::1, localhost)`,
    );
  }
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new TypeError(`Port of the ${label} must be an integer in [0, 65535]; got ${port}`);
  }
  const bind = hostname.startsWith("[") ? hostname.slice(1, -1) : hostname;
  let server: Deno.HttpServer<Deno.NetAddr>;
  try {
    server = Deno.serve(
      { hostname: bind, port, reusePort: options.reusePort === true, onListen() {} },
      (request) => app.fetch(request),
    );
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new Error(`Cannot serve the ${label} on "${hostname}:${port}": ${reason}`, {
      cause: error,
    });
  }
  const bound = server.addr;
  const address = bound.hostname.includes(":")
    ? `[${bound.hostname}]:${bound.port}`
    : `${bound.hostname}:${bound.port}`;
  // The label is ours (never user input), so it may be part of the template.
  const auth = token === undefined || token === "" ? "" : " (token required)";
  log.info(`${label[0]!.toUpperCase()}${label.slice(1)} serving HTTP on {address}${auth}`, {
    address,
  });
  let closing: Promise<void> | undefined;
  const shutdown = () => closing ??= server.shutdown();
  return {
    address,
    hostname: bound.hostname,
    port: bound.port,
    shutdown,
    [Symbol.asyncDispose]: shutdown,
  };
}
