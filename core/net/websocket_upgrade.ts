/**
 * The opening handshake over a TCP {@link StreamConn}: {@link acceptWebSocket}
 * (server side, for `broker.ready("ws://…")`) and {@link connectWebSocket}
 * (client side, for `broker.join("ws://…")`). Both bound the header's size
 * and time, then return a {@link WebSocketConn}.
 *
 * @module
 */
import type { Clock } from "../time/mod.ts";
import type { ListenAddress } from "./listen_address.ts";
import { formatAddress, type StreamConn } from "./transport.ts";
import { WebSocketConn, type WebSocketConnOptions } from "./websocket_conn.ts";
import {
  acceptKey,
  checkUpgradeResponse,
  headerEnd,
  newKey,
  parseUpgradeRequest,
  rejectionResponse,
  upgradeRequest,
  upgradeResponse,
} from "./_websocket_handshake.ts";

/** The largest handshake header block read (request or response). */
export const MAX_HANDSHAKE_BYTES = 8 * 1024;

/** Why a handshake failed. */
export type HandshakeFailure =
  | "bad_request" // refused with 400, 405, 426 or 431
  | "not_found" // refused with 404: no endpoint at that path
  | "timeout" // the header did not complete within the deadline
  | "peer" // the peer closed or reset the connection first
  | "refused"; // (client side) the server did not accept the upgrade

/**
 * A WebSocket opening handshake failed (the TCP connection is closed).
 *
 * @example
 * ```ts
 * import { WebSocketHandshakeError } from "./websocket_upgrade.ts";
 * const error = new WebSocketHandshakeError("not_found", `no WebSocket endpoint at "/x"`, 404);
 * if (error.failure !== "not_found" || error.status !== 404) throw new Error("fields");
 * ```
 */
export class WebSocketHandshakeError extends Error {
  override name = "WebSocketHandshakeError";
  /** What went wrong, as a metric key. */
  readonly failure: HandshakeFailure;
  /** The HTTP status sent (server side) or received (client side), when there was one. */
  readonly status: number | undefined;

  constructor(failure: HandshakeFailure, message: string, status?: number, options?: ErrorOptions) {
    super(message, options);
    this.failure = failure;
    this.status = status;
  }
}

/** What both handshakes need. */
export interface HandshakeOptions {
  /** The parsed `ws://` URL: path, `IN` limit and codec. */
  address: ListenAddress;
  /** Time allowed for the header to arrive; 0 = 10 s. Also bounds incomplete WebSocket frames. */
  deadlineMs: number;
  clock: Clock;
}

/** The connection options a `ws://` address implies. */
function connOptions(
  address: ListenAddress,
  role: "server" | "client",
  deadlineMs: number,
  clock: Clock,
): WebSocketConnOptions {
  return {
    role,
    maxIn: address.maxIn,
    framing: address.codec === "bson" ? "document" : "payload",
    text: address.codec === "json",
    deadlineMs,
    clock,
  };
}

/**
 * Server side: reads the Upgrade request from `conn`, answers 101 (or 400, 404,
 * 405, 426, 431 with the reason as the body, then closes) and returns the
 * WebSocket connection. Bytes the client sent after its request are kept.
 *
 * @example
 * ```ts ignore
 * const ws = await acceptWebSocket(tcp, { address: parseListenAddress("ws://0.0.0.0:80/game?json"),
 *   deadlineMs: 10_000, clock: systemClock });
 * ```
 *
 * @throws {WebSocketHandshakeError} when the request is refused, incomplete in
 *   time, or the peer goes away (the connection is closed then)
 */
export async function acceptWebSocket(
  conn: StreamConn,
  options: HandshakeOptions,
): Promise<WebSocketConn> {
  const { address, clock } = options;
  const deadlineMs = options.deadlineMs > 0 ? options.deadlineMs : 10_000;
  const head = await readHead(conn, deadlineMs, clock, "request");
  if (head.oversized) {
    await refuse(conn, {
      status: 431,
      reason: `request header over ${MAX_HANDSHAKE_BYTES} bytes`,
    });
  }
  const request = parseUpgradeRequest(head.text, address.path);
  if ("status" in request) await refuse(conn, request);
  const { key } = request as { key: string };
  try {
    await writeAll(conn, upgradeResponse(await acceptKey(key)));
  } catch (error) {
    conn.close();
    throw new WebSocketHandshakeError(
      "peer",
      `WebSocket handshake with ${conn.remote} failed: ${messageOf(error)}`,
      undefined,
      { cause: error },
    );
  }
  return new WebSocketConn(conn, {
    ...connOptions(address, "server", deadlineMs, clock),
    leftover: head.rest,
  });
}

/**
 * Client side: sends an Upgrade request for `address.path` to `conn` (already
 * connected to `address.hostname:address.port`), checks the 101 response and
 * returns the WebSocket connection (its frames masked, as clients must).
 *
 * @example
 * ```ts ignore
 * const ws = await connectWebSocket(tcp, { address: parseListenAddress("ws://game.example:80/game"),
 *   deadlineMs: 10_000, clock: systemClock });
 * ```
 *
 * @throws {WebSocketHandshakeError} when the server refuses (`refused`, with its
 *   status), answers too slowly, or closes (the connection is closed then)
 */
export async function connectWebSocket(
  conn: StreamConn,
  options: HandshakeOptions,
): Promise<WebSocketConn> {
  const { address, clock } = options;
  const deadlineMs = options.deadlineMs > 0 ? options.deadlineMs : 10_000;
  const key = newKey();
  const where = `ws://${formatAddress(address.hostname, address.port)}${address.path || "/"}`;
  try {
    await writeAll(
      conn,
      upgradeRequest(formatAddress(address.hostname, address.port), address.path, key),
    );
  } catch (error) {
    conn.close();
    throw new WebSocketHandshakeError(
      "peer",
      `WebSocket handshake with ${where} failed: ${messageOf(error)}`,
      undefined,
      { cause: error },
    );
  }
  const head = await readHead(conn, deadlineMs, clock, "response");
  const problem = head.oversized
    ? `response header over ${MAX_HANDSHAKE_BYTES} bytes`
    : checkUpgradeResponse(head.text, await acceptKey(key));
  if (problem !== undefined) {
    conn.close();
    const status = /^HTTP\/1\.\d (\d{3})/.exec(head.text)?.[1];
    throw new WebSocketHandshakeError(
      "refused",
      `WebSocket server at ${where} refused the upgrade: ${problem}`,
      status === undefined ? undefined : Number(status),
    );
  }
  return new WebSocketConn(conn, {
    ...connOptions(address, "client", deadlineMs, clock),
    leftover: head.rest,
  });
}

/** Reads a header block (bounded in size and time); `oversized` when it does not fit. */
async function readHead(
  conn: StreamConn,
  deadlineMs: number,
  clock: Clock,
  what: string,
): Promise<{ text: string; rest: Uint8Array; oversized: boolean }> {
  const buffer = new Uint8Array(MAX_HANDSHAKE_BYTES);
  let filled = 0;
  let expired = false;
  const timer = clock.setTimeout(() => {
    expired = true;
    conn.close();
  }, deadlineMs);
  try {
    for (;;) {
      if (filled === buffer.length) return { text: "", rest: new Uint8Array(), oversized: true };
      let n: number | null;
      try {
        n = await conn.read(buffer.subarray(filled));
      } catch (error) {
        if (expired) break;
        conn.close();
        throw new WebSocketHandshakeError(
          "peer",
          `WebSocket handshake with ${conn.remote} failed: ${messageOf(error)}`,
          undefined,
          { cause: error },
        );
      }
      if (expired) break;
      if (n === null) {
        conn.close();
        throw new WebSocketHandshakeError(
          "peer",
          `WebSocket peer ${conn.remote} closed after ${filled} bytes of its handshake ${what}`,
        );
      }
      const from = filled;
      filled += n;
      const end = headerEnd(buffer, filled, from);
      if (end >= 0) {
        return {
          text: new TextDecoder().decode(buffer.subarray(0, end)),
          rest: buffer.slice(end, filled),
          oversized: false,
        };
      }
    }
  } finally {
    timer.cancel();
  }
  throw new WebSocketHandshakeError(
    "timeout",
    `WebSocket handshake ${what} from ${conn.remote} not complete within ${deadlineMs} ms (${filled} bytes received)`,
  );
}

/** Sends a refusal, closes, throws. */
async function refuse(
  conn: StreamConn,
  rejection: { status: 400 | 404 | 405 | 426 | 431; reason: string },
): Promise<never> {
  try {
    await writeAll(conn, rejectionResponse(rejection));
  } catch { /* the peer is gone; the refusal stands */ }
  conn.close();
  throw new WebSocketHandshakeError(
    rejection.status === 404 ? "not_found" : "bad_request",
    `WebSocket handshake from ${conn.remote} refused with ${rejection.status}: ${rejection.reason}`,
    rejection.status,
  );
}

async function writeAll(conn: StreamConn, bytes: Uint8Array): Promise<void> {
  for (let written = 0; written < bytes.length;) {
    written += await conn.write(written === 0 ? bytes : bytes.subarray(written));
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
