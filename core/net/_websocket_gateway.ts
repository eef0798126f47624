/**
 * The broker service's WebSocket books: handshakes in flight (bounded by the
 * frame deadline, closed at shutdown), handshake failures counted by kind and
 * logged without flooding, and open WebSocket connections until their closing
 * handshake has finished (so shutdown leaves no socket behind).
 *
 * @module
 */
import type { Logger } from "@logtape/logtape";
import type { Clock } from "../time/mod.ts";
import type { ListenAddress } from "./listen_address.ts";
import type { StreamConn } from "./transport.ts";
import type { WebSocketConn } from "./websocket_conn.ts";
import {
  acceptWebSocket,
  connectWebSocket,
  type HandshakeFailure,
  WebSocketHandshakeError,
} from "./websocket_upgrade.ts";
import { WarningLimiter } from "./_warning_limiter.ts";

const WARNING_INTERVAL_MS = 1000;

/** See the module documentation. */
export class WebSocketGateway {
  /** Failed handshakes (incoming and outgoing) by kind. */
  readonly failures = new Map<HandshakeFailure, number>();
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #deadlineMs: number;
  readonly #warnings: WarningLimiter;
  readonly #handshakes = new Map<StreamConn, Promise<unknown>>();
  readonly #open = new Set<WebSocketConn>();
  #closing = false;

  /**
   * @param deadlineMs time allowed for a handshake header and for incomplete
   *   WebSocket frames (the broker's frame deadline; 0 = 10 s for handshakes only)
   */
  constructor(clock: Clock, log: Logger, deadlineMs: number) {
    this.#clock = clock;
    this.#log = log;
    this.#deadlineMs = deadlineMs;
    this.#warnings = new WarningLimiter(clock, WARNING_INTERVAL_MS);
  }

  /** Handshakes in flight. */
  get pending(): number {
    return this.#handshakes.size;
  }

  /**
   * Upgrades an accepted connection in the background: `opened` gets the
   * WebSocket connection, or `failed` runs (the TCP connection is closed then).
   */
  accept(
    conn: StreamConn,
    address: ListenAddress,
    url: string,
    opened: (ws: WebSocketConn) => void,
    failed: () => void,
  ): void {
    const options = { address, deadlineMs: this.#deadlineMs, clock: this.#clock };
    const run = acceptWebSocket(conn, options).then(
      (ws) => {
        this.#handshakes.delete(conn);
        this.#track(ws);
        if (this.#closing) {
          ws.close();
          failed();
          return;
        }
        opened(ws);
      },
      (error) => {
        this.#handshakes.delete(conn);
        this.#failed(error, url);
        failed();
      },
    );
    this.#handshakes.set(conn, run);
  }

  /**
   * Upgrades an outgoing connection (`broker.join("ws://…")`).
   *
   * @throws {WebSocketHandshakeError} (rejects) when the server refuses or fails
   */
  async connect(conn: StreamConn, address: ListenAddress, url: string): Promise<WebSocketConn> {
    const run = connectWebSocket(conn, {
      address,
      deadlineMs: this.#deadlineMs,
      clock: this.#clock,
    });
    this.#handshakes.set(conn, run.catch(() => {}));
    try {
      const ws = await run;
      this.#track(ws);
      if (this.#closing) {
        ws.close();
        throw new WebSocketHandshakeError("peer", `Stage is shutting down; ${url} not opened`);
      }
      return ws;
    } catch (error) {
      this.#failed(error, url);
      throw error;
    } finally {
      this.#handshakes.delete(conn);
    }
  }

  /** Ends handshakes in flight and waits for open connections' closing handshakes. */
  async close(): Promise<void> {
    this.#closing = true;
    for (const conn of this.#handshakes.keys()) conn.close();
    await Promise.allSettled([...this.#handshakes.values()]);
    await Promise.all([...this.#open].map((ws) => ws.finished));
  }

  #track(ws: WebSocketConn): void {
    this.#open.add(ws);
    ws.finished.then(() => this.#open.delete(ws));
  }

  #failed(error: unknown, url: string): void {
    const failure: HandshakeFailure = error instanceof WebSocketHandshakeError
      ? error.failure
      : "peer";
    this.failures.set(failure, (this.failures.get(failure) ?? 0) + 1);
    const message = error instanceof Error ? error.message : String(error);
    // Joins report their failure to the script (and log it); slow headers come in crowds.
    if (failure === "timeout") {
      const suppressed = this.#warnings.take(failure);
      if (suppressed === undefined) return;
      this.#log.warning("{message} ({url}; {suppressed} more since the last such warning)", {
        message,
        url,
        suppressed,
      });
    } else {
      this.#log.debug("{message} ({url})", { message, url });
    }
  }
}
