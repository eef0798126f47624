/**
 * The options of {@link StageClient.connect}, their defaults and their checks.
 *
 * @module
 */
import { checkReconnect, type ReconnectOptions } from "./backoff.ts";
import { type ClientClock, systemClientClock } from "./clock.ts";
import { type Codec, type CodecName, resolveCodec } from "./codecs.ts";
import { checkMaxFrame, DEFAULT_MAX_FRAME } from "./framing.ts";
import type { ClientTransport } from "./transport.ts";

/** How to reach a Stage listener and how the client behaves. */
export interface StageClientOptions {
  /** Host name or address (default `"127.0.0.1"`). */
  host?: string;
  /** TCP port of the listener. */
  port: number;
  /** The listener's codec: `"bson"` (default), `"json"`, `"raw"` or a custom {@link Codec}. */
  codec?: CodecName | Codec;
  /** Largest total frame length accepted either way, header included (default 16 MiB). */
  maxFrame?: number;
  /** Reconnect with backoff after a connection loss; off when absent or `false`. */
  reconnect?: ReconnectOptions | false;
  /** How to open connections (default: `Deno.connect` under Deno, `node:net` under Node). */
  transport?: ClientTransport;
  /** Time source for timeouts and backoff (default: the system clock). */
  clock?: ClientClock;
  /** Random numbers in `[0, 1)` for backoff jitter (default `Math.random`). */
  random?: () => number;
  /** Frames not yet handed to the socket before `send` rejects (default 1024). */
  maxQueuedFrames?: number;
  /** Bytes not yet handed to the socket before `send` rejects (default 16 MiB). */
  maxQueuedBytes?: number;
  /** Received messages held for `next()` before the client stops reading (default 10000). */
  inboxLimit?: number;
  /** Default `request` timeout in ms (default 30000). */
  requestTimeoutMs?: number;
  /** The field `request` sets to a fresh id and matches replies on (default `"id"`). */
  correlationField?: string;
}

/** {@link StageClientOptions} with every default applied and checked. */
export interface ClientSettings {
  host: string;
  port: number;
  codec: Codec;
  maxFrame: number;
  reconnect: ReconnectOptions | false;
  clock: ClientClock;
  random: () => number;
  maxQueuedFrames: number;
  maxQueuedBytes: number;
  inboxLimit: number;
  requestTimeoutMs: number;
  correlationField: string;
}

/**
 * Applies defaults and checks every option.
 *
 * @throws {TypeError} for an option of the wrong type (naming it)
 * @throws {RangeError} for a number out of range (naming the option and the value)
 */
export function resolveOptions(options: StageClientOptions): ClientSettings {
  const where = "StageClient.connect";
  if (typeof options !== "object" || options === null) {
    throw new TypeError(`${where}: expected an options object, found ${options}`);
  }
  const { port } = options;
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new RangeError(`${where}: port: expected an integer in 1..65535, found ${port}`);
  }
  const host = options.host ?? "127.0.0.1";
  if (typeof host !== "string" || host === "") {
    throw new TypeError(
      `${where}: host: expected a non-empty string, found ${JSON.stringify(host)}`,
    );
  }
  const field = options.correlationField ?? "id";
  if (typeof field !== "string" || field === "") {
    throw new TypeError(`${where}: correlationField: expected a non-empty string, found ${field}`);
  }
  return {
    host,
    port,
    codec: resolveCodec(options.codec ?? "bson"),
    maxFrame: checkMaxFrame(options.maxFrame ?? DEFAULT_MAX_FRAME, where),
    reconnect: options.reconnect ? checkReconnect(options.reconnect) : false,
    clock: options.clock ?? systemClientClock,
    random: options.random ?? Math.random,
    maxQueuedFrames: positive(options.maxQueuedFrames ?? 1024, "maxQueuedFrames"),
    maxQueuedBytes: positive(options.maxQueuedBytes ?? 16 * 1024 * 1024, "maxQueuedBytes"),
    inboxLimit: positive(options.inboxLimit ?? 10_000, "inboxLimit"),
    requestTimeoutMs: timeout(options.requestTimeoutMs ?? 30_000, "requestTimeoutMs"),
    correlationField: field,
  };
}

/**
 * The transport for this runtime: `Deno.connect` under Deno, `node:net` under Node.
 * Loaded lazily, so the core imports no runtime API.
 *
 * @throws {TypeError} in a runtime without raw TCP (browsers)
 */
export async function defaultTransport(): Promise<ClientTransport> {
  const global = globalThis as { Deno?: unknown; process?: { versions?: { node?: string } } };
  if (global.Deno !== undefined) return (await import("./deno_transport.ts")).denoTransport;
  if (global.process?.versions?.node !== undefined) {
    return (await import("./node_transport.ts")).nodeTransport;
  }
  throw new TypeError(
    "StageClient.connect: transport: this runtime has no TCP (neither Deno nor Node); pass " +
      "options.transport (for browsers: webSocketTransport to a ws:// listener)",
  );
}

/** Checks a `request` / `next` timeout in ms. */
export function timeout(ms: number, name: string): number {
  if (typeof ms !== "number" || !(ms >= 0) || ms > 2_147_483_647) {
    throw new RangeError(`${name}: expected milliseconds in 0..2147483647, found ${ms}`);
  }
  return ms;
}

function positive(value: number, name: string): number {
  if (!Number.isInteger(value) || value < 1) {
    throw new RangeError(
      `StageClient.connect: ${name}: expected a positive integer, found ${value}`,
    );
  }
  return value;
}
