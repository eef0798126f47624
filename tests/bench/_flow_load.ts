/**
 * The flow benchmark's load generator, and one shared record of every reply (send
 * time, receive time, client).
 *
 * The request/reply clients are {@linkcode StageClient}s of the client SDK (raw codec),
 * the same on both sides of every scenario:
 * - {@linkcode ClosedLoopClient}: keeps `depth` requests in flight (request → reply
 *   → next).
 * - {@linkcode PacedClient}: open loop, sends at a fixed rate whatever the replies
 *   do; frames due while a write is still blocked are counted as unsent, not queued.
 * - {@linkcode oneRequest}: one request, timed.
 *
 * Raw `Deno.connect` sockets remain, in `_flow_raw_load.ts`, where a client must not
 * behave like one: the flooder that never reads and the idle connections of c10k.
 *
 * @module
 */
import { StageClient } from "../../core/client/mod.ts";
import { MAX_FRAME, PAYLOAD_BYTES, sentAt, stampRequest } from "./_flow_protocol.ts";
import type { ReplyLog } from "./_flow_replies.ts";
import { adoptedTransport } from "./_tcp_transport.ts";

/** Connects a raw-codec {@linkcode StageClient} to `port` (or adopts `conn`, already open). */
export function connectClient(port: number, conn?: Deno.TcpConn): Promise<StageClient> {
  return StageClient.connect({
    port,
    codec: "raw",
    maxFrame: MAX_FRAME,
    ...(conn === undefined ? {} : { transport: adoptedTransport(conn) }),
  });
}

/** Connects `count` clients to `port`, `batch` at a time; closes them all on failure. */
export async function connectClients(
  port: number,
  count: number,
  batch = 250,
): Promise<StageClient[]> {
  const clients: StageClient[] = [];
  try {
    while (clients.length < count) {
      const n = Math.min(batch, count - clients.length);
      const opened = await Promise.allSettled(
        Array.from({ length: n }, () => connectClient(port)),
      );
      for (const result of opened) if (result.status === "fulfilled") clients.push(result.value);
      const failed = opened.find((result) => result.status === "rejected");
      if (failed !== undefined) {
        throw new Error(
          `client ${clients.length + 1} of ${count} failed to connect: ${
            (failed as PromiseRejectedResult).reason
          }`,
        );
      }
    }
    return clients;
  } catch (error) {
    await Promise.all(clients.map((client) => client.close()));
    throw error;
  }
}

/** A client whose replies go to a {@linkcode ReplyLog}. */
abstract class LoggedClient {
  readonly id: number;
  protected readonly client: StageClient;
  protected readonly log: ReplyLog;
  protected stopped = false;
  /** The first error of this client (a server close counts), if any. */
  failure: unknown;
  /** When the client failed or was closed by the server (performance.now()). */
  endedAt: number | undefined;
  /** The request being sent, restamped for each one (`post` encodes it at once). */
  protected readonly payload = new Uint8Array(PAYLOAD_BYTES);

  constructor(id: number, client: StageClient, log: ReplyLog) {
    this.id = id;
    this.client = client;
    this.log = log;
    client.on("message", this.#onReply);
    client.on("disconnect", (error) => {
      if (!this.stopped) this.fail(error);
    });
  }

  /** Stops sending; replies still arriving are logged until `close`. */
  stop(): void {
    this.stopped = true;
  }

  /** Closes the client. */
  async close(): Promise<void> {
    this.stopped = true;
    await this.client.close();
  }

  /** Called after each reply was logged. */
  protected abstract onReply(): void;

  /** Posts one request stamped `now`; a failure is recorded, not thrown. */
  protected post(now: number, seq: number, costUs: number): boolean {
    try {
      this.client.post(stampRequest(this.payload, now, seq, costUs));
      return true;
    } catch (error) {
      if (!this.stopped) this.fail(error);
      return false;
    }
  }

  protected fail(error: unknown): void {
    this.failure ??= error;
    this.endedAt ??= performance.now();
  }

  #onReply = (value: unknown): void => {
    const payload = value as Uint8Array;
    if (payload.length !== PAYLOAD_BYTES) this.log.invalid++;
    else this.log.record(sentAt(payload), this.client.receivedAt, this.id);
    this.onReply();
  };
}

/** Keeps `depth` requests in flight: every reply sends the next request. */
export class ClosedLoopClient extends LoggedClient {
  readonly #costUs: number;
  #seq = 0;

  constructor(id: number, client: StageClient, log: ReplyLog, depth = 1, costUs = 0) {
    super(id, client, log);
    this.#costUs = costUs;
    const now = performance.now();
    for (let i = 0; i < depth; i++) {
      if (!this.post(now, this.#seq++, costUs)) break;
    }
  }

  protected onReply(): void {
    if (this.stopped) return;
    // Sent in reply to the read that just delivered: stamped with that read's time.
    this.post(this.client.receivedAt, this.#seq++, this.#costUs);
  }
}

/**
 * Open loop: `tick(now)` sends the frames due at `ratePerS` since `start`; frames due
 * while the client's previous frames are still unwritten (`queuedFrames`: TCP
 * backpressure) are counted in `unsent` instead of being queued.
 */
export class PacedClient extends LoggedClient {
  readonly #ratePerS: number;
  readonly #costUs: number;
  #start = 0;
  #due = 0;
  sent = 0;
  unsent = 0;

  constructor(id: number, client: StageClient, log: ReplyLog, ratePerS: number, costUs = 0) {
    super(id, client, log);
    this.#ratePerS = ratePerS;
    this.#costUs = costUs;
  }

  /** Starts the schedule at `now` (the first frame is due at once). */
  begin(now: number): void {
    this.#start = now;
    this.#due = 0;
  }

  /** Sends what is due at `now`. */
  tick(now: number): void {
    if (this.stopped || this.failure !== undefined) return;
    const due = Math.floor(((now - this.#start) * this.#ratePerS) / 1000) + 1;
    const n = due - this.#due;
    if (n <= 0) return;
    this.#due = due;
    if (this.client.queuedFrames > 0) {
      this.unsent += n;
      return;
    }
    this.log.recordSent(now, n);
    for (let i = 0; i < n && this.post(now, this.sent, this.#costUs); i++) this.sent++;
  }

  protected onReply(): void {}
}

/** Drives `clients` every `tickMs` until `stop()`. */
export class Pacer {
  readonly #timer: ReturnType<typeof setInterval>;

  constructor(clients: PacedClient[], tickMs = 5) {
    const now = performance.now();
    for (const client of clients) client.begin(now);
    const tick = () => {
      const at = performance.now();
      for (const client of clients) client.tick(at);
    };
    tick();
    this.#timer = setInterval(tick, tickMs);
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}

/**
 * Sends one request costing `costUs` on `client` (no message listener) and resolves
 * with its reply time in ms.
 *
 * @throws {RequestTimeoutError} (rejects) when no reply arrives within `timeoutMs`
 */
export async function oneRequest(
  client: StageClient,
  costUs: number,
  timeoutMs: number,
): Promise<number> {
  const start = performance.now();
  const payload = stampRequest(new Uint8Array(PAYLOAD_BYTES), start, 0, costUs);
  // Raw frames carry no correlation id: the first reply on this client is the one.
  await client.request(payload, { match: () => true, timeout: timeoutMs });
  return performance.now() - start;
}
