// deno-lint-ignore-file no-var -- `var` is how a global is declared for `globalThis` and scripts alike.
/**
 * Ambient declarations of what a Stage script sees: the globals `stage`,
 * `broker`, `thread`, `bundle`, `logger` and `process`. Reference this file from a script for
 * editor completion and `deno check`:
 *
 * ```ts
 * /// <reference types="../core/api/globals.d.ts" />
 * ```
 *
 * The main script's top level runs once per worker: register listeners and
 * handlers there. Module-level variables are per worker (the sandbox rule).
 */

declare namespace Stage {
  /** Where a loaded script came from: `[position, path, mtime]`. */
  type ScriptInfo = [position: number, path: string, mtime: number];

  /** A decoded frame: a document for `bson`, any JSON value for `json`, bytes for `raw`. */
  // deno-lint-ignore no-explicit-any
  type Data = any;

  /** A socket's receive function, called once per frame in arrival order. */
  type Receive = (socket: Socket, data: Data) => unknown;

  /** `onAccept(socket)`: return `false` to refuse, or a receive function (or set `socket.receive`). */
  type Accept = (socket: Socket) => false | Receive | void;

  /** A client connection. Frames of one socket never run concurrently. */
  interface Socket {
    /** Socket id, unique in the process while open. */
    readonly id: number;
    /** Local address, `"ip:port"` or `"[ip6]:port"`. */
    readonly local: string;
    /** Remote address, `"ip:port"` or `"[ip6]:port"`. */
    readonly remote: string;
    /**
     * True when the socket moved here from a worker that was stuck past the time
     * slice or lost: `onAccept` runs again on the new worker, with the socket's
     * user fields as last synced (fields that cannot be structured-cloned stay behind).
     */
    readonly moved: boolean;
    /** The receive function. */
    receive: Receive | undefined;
    /** Queues a value as one frame; written on the next flush. Throws if it exceeds `OUT`. */
    commit(value: unknown): void;
    /** Closes after everything committed before is written. */
    close(): void;
    /** Whether the socket is closed. */
    readonly closed: boolean;
    /** Milliseconds without input before the socket is closed as a zombie (0 = never). */
    expire: number;
    /** Flush cadence in ms (0 = once per scheduling turn). */
    commitMs: number;
    /**
     * Per-socket encryption (AES-GCM via WebCrypto, on the socket's home worker; tcp:// only).
     * Setting `{ key, mode? }` encrypts every frame committed from then on and decrypts every
     * frame handled after the current handler; `null` turns it off. Frame layout:
     * `[u32 LE length][12-byte IV][ciphertext][16-byte tag]`, the plaintext being the frame the
     * codec would send unencrypted. A frame that fails to decrypt closes the socket
     * (`decrypt_failed`). Reading it gives `{ key, mode }` (a copy) or undefined. Throws
     * `TypeError`/`RangeError` for bad options or off the socket's home worker.
     */
    get crypto(): { key: Uint8Array; mode: "aes-gcm" } | undefined;
    set crypto(options: CryptoOptions | null | undefined);
    /** Sets `crypto` and resolves once WebCrypto imported the key. */
    setCrypto(options: CryptoOptions | null): Promise<void>;
    /** User-defined fields, kept with the socket. */
    [field: string]: unknown;
  }

  /** What `socket.crypto` takes: a raw AES key of 16, 24 or 32 bytes. */
  interface CryptoOptions {
    key: Uint8Array;
    /** The only mode so far (the default). */
    mode?: "aes-gcm";
  }

  /** One address of a network interface (`broker.ifaddr()`). */
  interface InterfaceAddress {
    /** Interface name, e.g. `"eth0"`, `"lo"`. */
    name: string;
    family: "IPv4" | "IPv6";
    address: string;
    netmask: string;
    /** `"10.0.0.5/24"`. */
    cidr: string;
    /** IPv6 scope id (0 for IPv4). */
    scopeid: number;
    mac: string;
  }

  /** The handle returned by `broker.ready`. */
  interface Server {
    readonly url: string;
    /** Called when one of this server's sockets closes, with the reason. */
    close: ((socket: Socket, reason: string) => void) | undefined;
    /** Default idle timeout of this server's sockets, in ms. */
    expire: number;
    /** Resolves once bound; rejects if the address could not be bound. */
    readonly listening: Promise<void>;
    /** Stops accepting; open sockets stay. */
    stop(): void;
  }

  interface Broker {
    /**
     * Listens: `"tcp://host:port?packet=IN,OUT"` with codec `bson` (default), `json` or `raw`
     * (`?json`, `?raw`). Frames are a 4-byte little-endian total length, then the payload.
     * `"ws://host:port/path?…"` serves WebSocket clients the same way: one message per frame
     * (text messages with `json`).
     * `"udp://host:port?…"`: one datagram per frame (with `bson` the datagram is the document,
     * with `json`/`raw` the payload alone; `IN`/`OUT` bound datagrams, at most 65,507 bytes), and
     * each remote address is a socket: `commit` sends it a datagram, `close` forgets it, and it
     * is forgotten after `expire` ms of silence (default 60,000). Datagrams that cannot be taken
     * (over `IN`, a bad document, the peer's pending bound) are dropped and counted.
     * Multicast: `?join=239.1.2.3` (a multicast host is joined anyway), `&if=127.0.0.1` the
     * interface, `&loopback`, `&reuse` (SO_REUSEADDR).
     */
    ready(url: string, onAccept: Accept): Server;
    /**
     * Connects out with the same framing; resolves with the socket after `onConnect` ran. With
     * `"udp://host:port"` the socket sends datagrams to that address, and those it sends back
     * are its frames.
     */
    join(url: string, onConnect: Accept): Promise<Socket>;
    /** Closes sockets by id. */
    close(ids: number | number[]): void;
    /** A socket handle from an id (commit/close work from any worker). */
    f(id: number): Socket;
    /** Injects a value into a socket as if its client had sent it. */
    signal(id: number, value: unknown): void;
    /**
     * Runs `fn(...args)` in the socket's own order: on its home worker, behind the frames it
     * received so far, never at the same time as one (unlike `stage.submit(socket.id, …)`, whose
     * number is a key of its own). A numeric return value runs it again after that many ms.
     * `fn` travels as source (no captured variables) or is `"file+export"`. Dropped once the
     * socket closed.
     */
    submit(
      socket: Socket | number,
      fn: ((...args: Data[]) => unknown) | string,
      ...args: unknown[]
    ): void;
    /**
     * An IP address as a number: a dotted quad as a uint32 in network order (`"1.2.3.4"` →
     * `0x01020304`), IPv6 as its 16 bytes. Throws `TypeError` (not an address) or `RangeError`.
     */
    aton(address: `${number}.${number}.${number}.${number}`): number;
    aton(address: string): number | Uint8Array;
    /**
     * A number (also the signed result of `&`/`|`/`~`) or 4 bytes as a dotted quad; 16 bytes as
     * canonical IPv6 text (`"2001:db8::1"`, `"::ffff:1.2.3.4"`).
     */
    ntoa(value: number | Uint8Array): string;
    /** The machine's interface addresses (read by the main thread, hence a promise). */
    ifaddr(): Promise<InterfaceAddress[]>;
  }

  /** Receives a loaded value and its info, or `[file, export]` on failure. */
  type LoadCallback = (
    value: unknown,
    info: ScriptInfo | [file: string, exportName: string | undefined],
  ) => void;

  /** `stage.waitfor`: see {@link StageApi.waitfor}. */
  interface Waitfor {
    /** Registers `fn` under a generated id (for one-off replies) and returns that id. */
    (fn: (...args: Data[]) => unknown, ...bound: unknown[]): string;
    /** Registers `fn` for message `id` (bound values first, then the message's); returns `id`. */
    (id: string, fn: (...args: Data[]) => unknown, ...bound: unknown[]): string;
    /** Unregisters `id`; true when it was registered. */
    (id: string, fn: null): boolean;
    /** The registration of `id`: `[fn, bound]`, or undefined. */
    (id: string): [fn: (...args: Data[]) => unknown, bound: unknown[]] | undefined;
    /** Like `waitfor(id, fn, ...bound)`, but messages to `id` run one at a time, in arrival order. */
    serial(id: string, fn: (...args: Data[]) => unknown, ...bound: unknown[]): string;
  }

  interface StageApi {
    /** This stage's id. */
    readonly id: string;
    /** This worker's index in the stage's pool. */
    readonly worker: number;
    /** Runs `fn` only the first time `name` is seen in this process; `null` forgets it. */
    once(name: string, fn: (() => unknown) | null): Promise<boolean>;
    /** Loads `"file"` or `"file+export"` from the package path, reloading changed files. */
    load<T = unknown>(name: string, fn?: LoadCallback): Promise<T>;
    /** Like `load`, never reloading. */
    require<T = unknown>(name: string, fn?: LoadCallback): Promise<T>;
    /**
     * `waitfor(id, fn, ...bound)` registers `fn` for message `id` (bound values come
     * first, then the message values); `waitfor(fn)` registers under a generated id and
     * returns it; `waitfor(id, null)` unregisters; `waitfor(id)` returns `[fn, bound]`.
     * A handler's return value (or resolved promise) is the reply when a reply is expected.
     */
    waitfor: Waitfor;
    /**
     * Sends a message: `"msg"`, `":msg"` (synchronous, returns the handler's result),
     * `"stage:msg"`, `"stage+msg"` (delivered as `"<me>:msg"`), `"*…"`, `"=stage:msg"`,
     * `"+stage:msg"`, `null` (reply to the message being handled); `=reply` names the
     * waitfor the receiver's reply goes to. Functions among the values travel as source.
     * Returns the delivery result: `true` once sent, the handler's result for `":msg"`, or a
     * `TypeError` value naming the bad part of a malformed target.
     */
    signal(target: string | null, ...values: unknown[]): unknown;
    /**
     * Runs `fn(...args)` on any worker; calls with the same non-zero key never overlap and
     * run in submission order (key 0: no ordering). A numeric return value reschedules the
     * call after that many ms. `fn` travels as source (no captured variables) or is `"file+export"`.
     */
    submit(
      key: number | string,
      fn: ((...args: Data[]) => unknown) | string,
      ...args: unknown[]
    ): void;
    /**
     * Runs `fn(...args)` after `ms` on this worker, one task at a time per stage; a numeric
     * result repeats it after that many ms. Returns a handle; `addtask(handle, null)` cancels.
     */
    addtask(ms: number, fn: (...args: Data[]) => unknown, ...args: unknown[]): string;
    addtask(handle: string, cancel: null): boolean;
    /** Sends a message and resolves with the reply; a last `{ timeout: ms }` sets the timeout (default 10 s). */
    request<T = Data>(target: string, ...values: unknown[]): Promise<T>;
    /** Inside a handler: the matched waitfor id, message id, sender and reply address. */
    readonly context:
      | {
        waitfor: string;
        message: string;
        from: { stage: string; worker: number };
        reply?: { stage: string; worker: number; id: string };
        /** The target's `?query` (e.g. `"route:news?sports"` → `"sports"`). */
        query?: string;
        /** The target's `!fail`: the sender's waitfor for values nobody took. */
        fail?: string;
        /**
         * The ticket this message concerns: inside a ticket grant (the callback of
         * `"ticket:category=callback"`), the slot this handler holds until it finishes;
         * `stage.signal(null, ms)` keeps it `ms` longer, `stage.signal(null, 0)` releases it.
         */
        ticket?: TicketRef;
      }
      | undefined;
    /**
     * A process-wide shared variable (created by the first call anywhere in the process):
     * `get()` lock-free snapshot, `set(v)`, `update(fn)` atomic read-modify-write.
     */
    shared<T>(name: string, initial: T): {
      readonly name: string;
      get(): T;
      set(value: T): T;
      update(fn: (current: T) => T): T;
    };
    /** A cooperative yield point: lets other work on this worker run; long loops call it. */
    yield(): Promise<void>;
    /** Iterates, yielding when asked to or every ~10 ms: `for await (const x of stage.slice(xs))`. */
    slice<T>(items: Iterable<T> | AsyncIterable<T>): AsyncGenerator<T>;
    /** Calls with an argument array, isolated: an exception is logged and returned as an Error. */
    call(
      fn: ((...args: Data[]) => unknown) | string,
      args?: unknown[],
      ...more: unknown[]
    ): unknown;
  }

  /** What `thread.new` returns. */
  interface ThreadHandle {
    readonly id: string;
    /** Adds a callback for the thread's messages; `done` is true for the return value (the last). */
    waitfor(callback: (value: Data, done: boolean) => void): ThreadHandle;
  }

  interface Thread {
    /** Runs `fn(...args)` on any worker (fn travels as source: no captured variables). */
    "new"(fn: (...args: Data[]) => unknown, ...args: unknown[]): ThreadHandle;
    /** Inside a thread function: sends a value to the handle's callbacks. */
    signal(value: unknown): void;
    /** The id of the running thread function, if any. */
    readonly id: string | undefined;
  }

  interface Logger {
    /** A logger for a sub-category. */
    category(name: string): Logger;
    /** Messages expand `%F` (file), `%M` (function), `%L` (line), `%{ENV}`; with properties, `{name}` placeholders. */
    out(message: string, properties?: Record<string, unknown>): void;
    trace(message: string, properties?: Record<string, unknown>): void;
    debug(message: string, properties?: Record<string, unknown>): void;
    info(message: string, properties?: Record<string, unknown>): void;
    warn(message: string, properties?: Record<string, unknown>): void;
    error(message: string, properties?: Record<string, unknown>): void;
  }

  /** A ticket as its holder sees it (`stage.context.ticket`). */
  interface TicketRef {
    /** The ticket stage's id. */
    stage: string;
    category: string;
    /** The ticket id (`""` for a waiter). */
    id: string;
    /** The request that got it (what feedback reported). */
    request: string;
    /** Set inside the grant: this handler holds the slot until it finishes. */
    hold?: boolean;
  }

  /** Why a ticket request was cancelled or a holder removed (`ticket:@`). */
  type TicketEndReason = "full" | "deadline" | "closed" | "removed" | "expired";

  /** An index entry's four score tiers, tier 0 first (larger ranks higher). */
  type Score = readonly [number, number, number, number];

  /** An index entry and its 1-based rank. */
  interface RankedEntry {
    id: string;
    rank: number;
    score: Score;
  }

  /** Replies of the index stage (`"rank:s|g|d|r?board"`). */
  namespace Index {
    interface SetReply {
      id: string;
      rank: number;
      score: Score;
      total: number;
      previous?: { rank: number; score: Score };
    }
    /** A neighbour: `distance` is the tier-0 gap to the entry asked about (never negative). */
    interface Neighbour extends RankedEntry {
      distance: number;
    }
    /** `rank` and `score` are `null` when the id has no entry. */
    interface GetReply {
      id: string;
      rank: number | null;
      score: Score | null;
      total: number;
      above?: Neighbour;
      below?: Neighbour;
    }
    interface DelReply {
      id: string;
      deleted: boolean;
      rank?: number;
      total: number;
    }
    interface RangeReply {
      board: string;
      total: number;
      entries: RankedEntry[];
    }
  }

  /** What `stage.signal("agent:cb", request)` sends (a bare URL string is a GET). */
  interface AgentRequest {
    url: string;
    method?: string;
    header?: Record<string, string>;
    /** A string as is, bytes as bytes, anything else as JSON. */
    data?: unknown;
    /** ms, queue wait included (default: the stage's `timeout`). */
    timeout?: number;
    redirect?: "follow" | "manual";
    /** Passed back untouched. */
    extra?: unknown;
  }

  /** What the agent's callback receives; `status` is 0 and `error` set when the request failed. */
  interface AgentResult {
    url: string;
    status: number;
    effective_url: string;
    redirect_url: string;
    cookie: string[];
    header: Record<string, string>;
    extra: unknown;
    data: {
      type: string;
      length: number;
      content: string | Uint8Array;
      charset: string;
      time: number;
    };
    error?: {
      name: "AgentError";
      message: string;
      code:
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
    };
  }

  /** A WELL512a generator state (plain data: store it in `stage.shared`, send it in messages). */
  interface RandomState {
    /** 16 unsigned 32-bit words. */
    words: number[];
    /** The current word, 0..15. */
    index: number;
  }

  /**
   * `bundle.random(state)` → a float in [0, 1) (53 bits); `bundle.random(state, n)` → an
   * integer in [1, n]; `bundle.random(state, lo, hi)` → an integer in [lo, hi], both inclusive,
   * uniform (no modulo bias). Advances `state` in place: the same seed gives the same sequence
   * in every worker.
   */
  interface BundleRandom {
    (state: RandomState, lo?: number, hi?: number): number;
    /** A state from an integer seed (its value modulo 2^32), or from fresh entropy without one. */
    seed(seed?: number): RandomState;
    /** One step's raw output: an unsigned 32-bit integer (the reference WELL512a output). */
    next(state: RandomState): number;
  }

  /**
   * A threshold watcher: `crossedEdges` are the thresholds crossed by one write, in crossing
   * order (ascending when the value rose, descending when it fell).
   */
  type EdgeWatcher<T extends object = Record<string, Data>> = (
    proxy: T,
    crossedEdges: number[],
    key: string | symbol,
    value: Data,
    previous: Data,
  ) => unknown;

  /** A change watcher: called on every change of its key (or, as the catch-all, of any other key). */
  type ChangeWatcher<T extends object = Record<string, Data>> = (
    proxy: T,
    key: string | symbol,
    value: Data,
    previous: Data,
  ) => unknown;

  /** `bundle.proxy` watches: per key, `[...ascendingThresholds, onEdge]` or `onChange`. */
  type Watch<T extends object = Record<string, Data>> = {
    [key: string]: [...number[], EdgeWatcher<T>] | ChangeWatcher<T>;
  };

  /** A typed view of fixed-size records in a file (`bundle.viewof`). */
  interface RecordView<R = Data> extends Disposable {
    readonly file: string;
    /** The layout as written, e.g. `"name:c10 hp:i"`. */
    readonly struct: string;
    /** Bytes per record. */
    readonly recordSize: number;
    /** The file's record index of row 0. */
    readonly start: number;
    /** Number of rows. */
    readonly length: number;
    /** Whether the worker may write the file (otherwise `set` throws). */
    readonly writable: boolean;
    /** Field names of a named layout; `undefined` when rows are arrays. */
    readonly fields: string[] | undefined;
    /** Rows changed since the last commit or rollback. */
    readonly changed: number;
    /** A row: an object for a named layout, an array otherwise. Throws RangeError outside the view. */
    get(row: number): R;
    /** Changes a row in memory (an array sets every field, an object the fields it names). */
    set(row: number, values: Partial<R> | unknown[]): void;
    /** Writes the changed rows to the file; returns how many. */
    commit(): number;
    /** Discards uncommitted changes; returns how many rows were dropped. */
    rollback(): number;
    /** Closes the file (uncommitted changes are dropped). */
    close(): void;
  }

  /** The `bundle` global: watched objects, codecs, a seedable PRNG and record files. */
  interface Bundle {
    /**
     * Wraps `obj` so writes call watchers (after the value is stored): `watch[key] =
     * [10, 20, 30, f]` calls `f(proxy, crossedEdges, key, value, previous)` when a write
     * crosses thresholds (`t` is crossed rising when `previous < t <= value`, falling when
     * `value < t <= previous`; numbers only); `watch[key] = f` calls `f(proxy, key, value,
     * previous)` on every change; `fn` does the same for keys `watch` does not name. Shallow;
     * a watcher's exception reaches the writer.
     */
    proxy<T extends object>(obj: T, watch: Watch<T>, fn?: ChangeWatcher<T>): T;
    /** The codec of `json` sockets: `encode` → a JSON string, `decode` → the value (TypeError if invalid). */
    json: { encode(value: unknown): string; decode(text: string): Data };
    /** The codec of `bson` sockets: `encode` takes a plain object (a document) → its bytes. */
    bson: { encode(value: unknown): Uint8Array; decode(bytes: Uint8Array): Data };
    /** WELL512a random numbers over an explicit state. */
    random: BundleRandom;
    /**
     * A view of `rows` fixed-size records laid out as `struct`, from record `start` (default 0)
     * of `file` (default: to the end of the file). Layout letters, little-endian: `c<n>` text of
     * n bytes, `b`/`B` int8/uint8, `s`/`S` int16/uint16, `i`/`I` int32/uint32, `l`/`L`
     * int64/uint64 as number, `q`/`Q` int64/uint64 as bigint, `f` float32, `d` float64, `x<n>`
     * padding; `"name:c10 hp:i"` names fields (rows are then objects). Reading needs read
     * permission, `set`/`commit` write permission on the file (`%permissions`).
     */
    viewof<R = Data>(file: string, struct: string, start?: number, rows?: number): RecordView<R>;
  }

  interface Process {
    /** Index of this process group in `#startup`. */
    readonly id: number;
    /** Operating-system process id. */
    readonly pid: number;
    /** Arguments given to `stage run` after `--`. */
    readonly args: readonly string[];
    readonly title: string;
    /** A stage.json section after `${ENV}` substitution, or the whole file. */
    config(name?: string): unknown;
  }
}

declare var stage: Stage.StageApi;
declare var thread: Stage.Thread;
declare var broker: Stage.Broker;
declare var bundle: Stage.Bundle;
declare var logger: Stage.Logger;
declare var process: Stage.Process;
