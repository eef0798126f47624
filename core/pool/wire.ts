/**
 * The wire format between the main thread and the workers of a pool.
 *
 * Hot traffic (socket frames, replies, completions) travels as ring records
 * `[tag, a, b, body]` through SharedArrayBuffer rings; rare control messages
 * travel with `postMessage` as the plain-data unions below. This file is the one
 * place that defines both; review it as a wire format.
 *
 * @module
 */
import type { LogOptions } from "../log/mod.ts";
import type { ErrorRecord } from "../message/mod.ts";

/** Ring record tags from the main thread to a worker. */
export const ToWorker = {
  /** A socket opened: a = socket id; body = JSON {@link SocketOpenInfo}. */
  Open: 1,
  /** A frame arrived: a = socket id; body = the whole frame (header included). */
  Frame: 2,
  /** A socket closed: a = socket id, b = {@link CloseReason}; body = UTF-8 detail. */
  Closed: 3,
  /**
   * A value for socket a, by b ({@link InjectMode}): a `broker.signal` value or a
   * commit from another worker (body = v8-serialized value), or a `broker.submit`
   * call (body = packed `[fn, ...args]`). Queued in the socket's flow, in order
   * with its frames.
   */
  Inject: 4,
  /** Run the idle function (the main script's default export). */
  Idle: 5,
  /** An outgoing connection failed: b = join request id; body = JSON {@link ErrorRecord}. */
  JoinFailed: 6,
  /** A stage message: a = ordering key (0 = none); body = {@link encodeSignal}. */
  Signal: 7,
  /**
   * Socket a moved to another worker: forget it without running its close callback.
   * With a = 0, a ping: it only makes the worker's ring loop turn (the watchdog
   * sees its event loop is free again). Sent unclaimed (see {@link packTicket});
   * no Done follows.
   */
  Forget: 8,
} as const;

/** What each record to a worker runs, by tag: for logs and error messages. */
export const recordNames: Readonly<Record<number, string>> = {
  [ToWorker.Open]: "accept",
  [ToWorker.Frame]: "receive",
  [ToWorker.Closed]: "close",
  [ToWorker.Inject]: "signal",
  [ToWorker.Idle]: "idle",
  [ToWorker.JoinFailed]: "join",
  [ToWorker.Signal]: "message",
};

/**
 * The tag word of a ring record to a worker: the tag in the low 8 bits, and the
 * record's claim ticket above it (slot in bits 8–19, generation 1..2047 in bits
 * 20–30; the ring reserves bit 31).
 * The worker claims a ticketed record in the pool's claim table before running it,
 * so the main thread can take back records a stuck worker has not started
 * ({@link UNCLAIMED_SLOT}: a record that needs no claim and sends no Done).
 */
export function packTicket(tag: number, slot: number, generation: number): number {
  return ((tag & 0xff) | (slot & 0xfff) << 8 | (generation & 0x7ff) << 20) >>> 0;
}

/** The claim slot of a record that is not claimed (control records). */
export const UNCLAIMED_SLOT = 0xfff;

/** Largest claim generation (they count 1..MAX_GENERATION and wrap). */
export const MAX_GENERATION = 0x7ff;

/** A claim ticket as carried by Done records and control blocks: slot | generation << 12. */
export function ticketOf(slot: number, generation: number): number {
  return (slot | generation << 12) >>> 0;
}

/** Splits a tag word made by {@link packTicket}. */
export function unpackTicket(word: number): { tag: number; slot: number; generation: number } {
  return { tag: word & 0xff, slot: (word >>> 8) & 0xfff, generation: (word >>> 20) & 0x7ff };
}

/** Ring record tags from a worker to the main thread. */
export const ToMain = {
  /** Queue a frame for writing: a = socket id; body (+ body2) = the whole frame. */
  Commit: 1,
  /**
   * Close a socket: a = socket id; b = 0 closes it after its queued frames are
   * written, b = a {@link CloseReason} closes it at once with that reason (body =
   * UTF-8 detail), e.g. `DecryptFailed`.
   */
  Close: 2,
  /**
   * A ticketed record finished: a = its ticket ({@link ticketOf}), b = CPU
   * microseconds its handler ran synchronously; body = float64 epoch ms it started.
   */
  Done: 3,
  /** A value for socket a, forwarded as {@link ToWorker.Inject}: b = {@link InjectMode}. */
  Inject: 4,
  /** Set a socket option: a = socket id, b = {@link SocketOption}; body = float64 value. */
  SocketOption: 5,
  /** The idle function returned: body = float64 milliseconds until the next call (0 = stop). */
  IdleDone: 6,
  /** A stage message to route: body = {@link encodeSignal}. */
  Signal: 7,
  /** A socket's user fields changed: a = socket id; body = v8-serialized fields object. */
  SocketFields: 8,
} as const;

/** Where a stage message goes and where its reply goes: the routing header. */
export interface SignalHeader {
  /** Target stage id. */
  stage: string;
  /** Which instances: one (round robin), all, this server's, other servers'. */
  scope: "one" | "all" | "local" | "remote";
  /** Deliver to this worker (replies go back to the worker that asked). */
  worker?: number;
  /**
   * Deliver in this process (a bus endpoint, see {@link ReplyAddress.at}):
   * replies and exact deliveries go back to the process that asked.
   */
  to?: string;
  /** The message id the receiver's waitfor lookup matches. */
  message: string;
  /** Who sent it; `at` is set once the message has left the sender's process. */
  from: { stage: string; worker: number; at?: string };
  /** Where the receiver's reply goes. */
  reply?: ReplyAddress;
  /** The values are `[ErrorRecord]`: the message reports a failure. */
  error?: boolean;
  /**
   * A `stage.submit` call: values are `[fn or "file+export", ...args]`; runs with
   * the ordering key of this submit key (0: no ordering).
   */
  submit?: number | string;
  /** A `thread.new` run: values are `[fn, ...args]`; messages go to `reply`. */
  thread?: string;
  /** An ordering-lock request (`">NAME.cb"`, `">>NAME.cb", ms`, `"<NAME.*"`) for the main thread. */
  lock?: { op: "acquire" | "extend" | "release"; name: string; callback: string; ms?: number };
  /** The `?query` of the target: an argument for the receiver (a ticket feedback id, a route argument). */
  query?: string;
  /** The `!fail` of the target: the sender's waitfor that gets the values back when nobody takes them. */
  fail?: string;
  /** The message concerns a ticket (`stage.context.ticket`); see {@link TicketRef}. */
  ticket?: TicketRef;
  /**
   * A notification the receiver may ignore (e.g. `ticket:@`): when no waitfor
   * matches it, nothing is logged and no error goes back.
   */
  optional?: boolean;
}

/**
 * Where a reply goes: a waitfor `id` on one worker of a stage. `at` names the
 * process (bus endpoint `node/group`) once the address has left it; absent,
 * the address is in the process that reads it.
 */
export interface ReplyAddress {
  stage: string;
  worker: number;
  id: string;
  at?: string;
}

/**
 * The header of a message to a reply address (an answer, an error record, a
 * notification): pinned to the worker, and to its process when `at` is known.
 */
export function replyHeader(
  reply: ReplyAddress,
  from: SignalHeader["from"],
  error = false,
): SignalHeader {
  return {
    stage: reply.stage,
    scope: "one",
    worker: reply.worker,
    ...(reply.at === undefined ? {} : { to: reply.at }),
    message: reply.id,
    from,
    ...(error ? { error: true } : {}),
  };
}

/**
 * The header of a holder's `"<"` (release) or `">"` (extend) for the ticket of
 * a grant: to the very ticket stage instance that granted it (`grantFrom`, the
 * grant's sender, names its worker and, across processes, its process).
 */
export function ticketHeader(
  ticket: TicketRef,
  grantFrom: SignalHeader["from"],
  verb: "<" | ">",
  from: SignalHeader["from"],
): SignalHeader {
  return {
    stage: ticket.stage,
    scope: "one",
    worker: grantFrom.worker,
    ...(grantFrom.at === undefined ? {} : { to: grantFrom.at }),
    message: verb,
    from,
  };
}

/**
 * A ticket of a ticket stage as its holder sees it (`stage.context.ticket`).
 * A message carrying one with `hold: true` is the grant itself: while its
 * handler runs it holds the slot; when the handler finishes (an async one: when
 * its promise settles) the receiver sends `"<stage>:<", id` to release it, and
 * `stage.signal(null, ms)` inside it sends `"<stage>:>", id, ms` to keep it longer.
 */
export interface TicketRef {
  /** The ticket stage's id. */
  stage: string;
  category: string;
  /** The ticket id (unique within the ticket stage). */
  id: string;
  /** The id of the request that got it (what feedback reported). */
  request: string;
  /** Set on the grant message: its handler holds the slot until it finishes. */
  hold?: boolean;
}

const signalEncoder = new TextEncoder();
const signalDecoder = new TextDecoder();

/**
 * Lays out a stage message: `[u32 header length][header JSON][packed values]`. The
 * main thread reads only the header; workers unpack the values.
 */
export function encodeSignal(header: SignalHeader, values: Uint8Array): Uint8Array {
  const json = signalEncoder.encode(JSON.stringify(header));
  const body = new Uint8Array(4 + json.length + values.length);
  new DataView(body.buffer).setUint32(0, json.length, true);
  body.set(json, 4);
  body.set(values, 4 + json.length);
  return body;
}

/** Reads the header of a stage message and the offset of its packed values. */
export function decodeSignalHeader(body: Uint8Array): { header: SignalHeader; values: Uint8Array } {
  const length = new DataView(body.buffer, body.byteOffset, 4).getUint32(0, true);
  const header = JSON.parse(signalDecoder.decode(body.subarray(4, 4 + length))) as SignalHeader;
  return { header, values: body.subarray(4 + length) };
}

/** What an `Inject` record carries (its b). */
export const InjectMode = {
  /** `broker.signal(id, value)`: the value goes to the receive function. */
  Signal: 0,
  /** `socket.commit(value)` on a worker that is not the socket's home. */
  Commit: 1,
  /** `broker.submit(socket, fn, ...args)`: body = `packValues([fn, ...args])`. */
  Submit: 2,
} as const;

/** Socket options a worker can set (tag {@link ToMain.SocketOption}). */
export const SocketOption = {
  /** Idle timeout in milliseconds (0 = none). */
  Expire: 1,
  /** Flush cadence in milliseconds (0 = once per scheduling turn). */
  CommitMs: 2,
} as const;

/** Why a socket closed, as carried in {@link ToWorker.Closed}. */
export const CloseReason = {
  Peer: 0,
  Script: 1,
  Expired: 2,
  FrameTooLarge: 3,
  ReadError: 4,
  WriteError: 5,
  Refused: 6,
  SlowReader: 7,
  Shutdown: 8,
  FrameTooSmall: 9,
  /** A frame began but did not complete within the frame deadline (slowloris defence). */
  FrameDeadline: 10,
  /** A frame of an encrypted socket (`socket.crypto`) failed to decrypt. */
  DecryptFailed: 11,
} as const;

/** One of the {@link CloseReason} codes. */
export type CloseReasonCode = typeof CloseReason[keyof typeof CloseReason];

/** Human names of the {@link CloseReason} codes, for logs and metrics. */
export const closeReasonNames: Record<CloseReasonCode, string> = {
  0: "peer",
  1: "script",
  2: "expired",
  3: "frame_too_large",
  4: "read_error",
  5: "write_error",
  6: "refused",
  7: "slow_reader",
  8: "shutdown",
  9: "frame_too_small",
  10: "frame_deadline",
  11: "decrypt_failed",
};

/** Body of {@link ToWorker.Open}. */
export interface SocketOpenInfo {
  /** The listen URL (`broker.ready`) or connect URL (`broker.join`) as the script wrote it. */
  url: string;
  local: string;
  remote: string;
  /** Set for an outgoing connection: the join request id. */
  join?: number;
  /**
   * Set when the socket moved here from a stuck or lost worker: its user fields
   * (v8-serialized, base64) as last synced, and its current options.
   */
  moved?: { fields?: string; expire: number; commitMs: number };
}

/** What a worker needs to know about its process. */
export interface ProcessInfo {
  /** Index of the process group in `#startup`. */
  id: number;
  pid: number;
  title: string;
  args: string[];
  /** Config sections by key, after `${ENV}` substitution (what `process.config(name)` returns). */
  config: Record<string, unknown>;
  /** The config file's folder: relative data paths (`bundle.viewof`) resolve against it. */
  baseDir?: string;
}

/** Script settings of the stage a worker runs. */
export interface ScriptSettings {
  /** Absolute package directories, in search order. */
  packages: string[];
  /** Absolute preload directory, if any. */
  preload?: string;
  /** Main script name (found on the package path). */
  main: string;
  /** Seconds between change checks for position-0 packages. */
  reloadSeconds: number;
  /** Import scripts by transpiling to a `data:` URL instead of importing the file. */
  transpile: boolean;
}

/** The first message to a worker. */
export interface WorkerInit {
  type: "init";
  index: number;
  stageId: string;
  inbound: SharedArrayBuffer;
  outbound: SharedArrayBuffer;
  /** The worker's doorbell port of the inbound ring (transferred). */
  inboundBell: MessagePort;
  /** The worker's doorbell port of the outbound ring (transferred). */
  outboundBell: MessagePort;
  control: SharedArrayBuffer;
  /** The claim table of ticketed records (see {@link packTicket}). */
  claims: SharedArrayBuffer;
  /** The process's shared-variable table (`stage.shared`). */
  shared: SharedArrayBuffer;
  script: ScriptSettings;
  process: ProcessInfo;
  log: LogOptions;
}

/** One address of a network interface of the machine (`broker.ifaddr()`). */
export interface InterfaceAddress {
  /** Interface name, e.g. `"eth0"`, `"lo"`. */
  name: string;
  family: "IPv4" | "IPv6";
  address: string;
  netmask: string;
  /** `address/prefix`, e.g. `"10.0.0.5/24"`. */
  cidr: string;
  /** IPv6 scope id (0 for IPv4). */
  scopeid: number;
  /** Hardware address, `"aa:bb:cc:dd:ee:ff"`. */
  mac: string;
}

/** Control messages from the main thread to a worker. */
export type MainControl =
  | WorkerInit
  | { type: "listen-result"; url: string; error?: ErrorRecord }
  | { type: "once-result"; requestId: number; first: boolean }
  /** The answer to `ifaddr`: the addresses, or why they could not be read. */
  | {
    type: "ifaddr-result";
    requestId: number;
    addresses?: InterfaceAddress[];
    error?: ErrorRecord;
  };

/** Control messages from a worker to the main thread. */
export type WorkerControl =
  | { type: "ready"; idle: boolean }
  | { type: "failed"; error: ErrorRecord }
  /** `where`: the script position of the `broker.ready` call (for logs). */
  | { type: "listen"; url: string; where?: string }
  | { type: "server-expire"; url: string; ms: number }
  | { type: "server-stop"; url: string }
  | { type: "join"; url: string; requestId: number }
  | { type: "once"; name: string; requestId: number }
  | { type: "once-forget"; name: string }
  /** `broker.ifaddr()`: the machine's interface addresses (answered with `ifaddr-result`). */
  | { type: "ifaddr"; requestId: number }
  /** A named waitfor was registered (`serial`: its messages run one at a time) or removed. */
  | { type: "waitfor"; id: string; serial: boolean; where?: string }
  | { type: "unwaitfor"; id: string };
