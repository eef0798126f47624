/**
 * The normalised configuration the rest of Stage reads: defaults applied,
 * paths absolute, platform and stage settings in named fields.
 *
 * @module
 */

import type { StageKind } from "./schema.ts";

/** `#threads` max_pending when not given. (Workers default to the CPU count, at most 256.) */
export const DEFAULT_MAX_PENDING = 10_000;
/** Seconds between change checks of position-0 packages. */
export const DEFAULT_RELOAD_SECONDS = 30;
/** Where the admin HTTP API listens by default. */
export const DEFAULT_ADMIN_LISTEN = "127.0.0.1:8800";
/** Where the HTTP gateway listens when `#gateway` gives no `listen` (every interface). */
export const DEFAULT_GATEWAY_LISTEN = "0.0.0.0:8080";
/** Default package path (relative to the config file). */
export const DEFAULT_PACKAGES: readonly string[] = ["scripts"];
/** Concurrent holders per category of a ticket stage with no section. */
export const DEFAULT_TICKET_LIMIT = 1;
/** HTTP timeout (ms) of an agent stage with no `timeout`. */
export const DEFAULT_AGENT_TIMEOUT_MS = 10_000;
/** User-Agent header of an agent stage with no `user-agent`. */
export const DEFAULT_USER_AGENT = "Stage/0.1";
/** Requests an agent stage with no `concurrency` has in flight at most. */
export const DEFAULT_AGENT_CONCURRENCY = 16;
/** Requests an agent stage with no `queue` keeps waiting at most (beyond: `busy`). */
export const DEFAULT_AGENT_QUEUE = 1024;
/** Largest response body (bytes) of an agent stage with no `max_body`: 8 MiB. */
export const DEFAULT_AGENT_MAX_BODY = 8 * 1024 * 1024;

/** One stage in a process group: `"=ticket+login"` is `{ kind: "=ticket", id: "login" }`. */
export interface StageRef {
  /** What runs: a script stage or a service stage. */
  kind: StageKind;
  /** The stage id (unique within its group). */
  id: string;
}

/**
 * `#flow`: flow control and the defences against abnormal sockets.
 *
 * The watchdog reads `sliceMs` and `hardLimitMs`; the broker service reads
 * the rest (see `brokerLimitsFromFlow` in `core/net`).
 */
export interface FlowConfig {
  /** `slice_ms`: a worker running one handler longer than this is asked to yield. */
  sliceMs: number;
  /** `hard_limit_ms`: a worker stuck longer than this is terminated (greater than `sliceMs`). */
  hardLimitMs: number;
  /** `socket_pending`: frames of one socket waiting for handlers before its reading pauses. */
  socketPending: number;
  /** `read_bytes`: per-socket read budget per scheduling round (the read buffer size). */
  readBytes: number;
  /** `socket_out_bytes`: output queued for one socket before it is closed as a slow reader. */
  socketOutBytes: number;
  /**
   * `frame_deadline_ms`: once a frame's first byte arrived, the whole frame must
   * arrive within this (slowloris defence); 0 = off.
   */
  frameDeadlineMs: number;
  /** `max_connections`: open incoming sockets per process; more are closed at once. */
  maxConnections: number;
  /** `max_per_ip`: open incoming sockets per remote IP address; more are closed at once. */
  maxPerIp: number;
}

/** `#flow` settings that are not given. */
export const DEFAULT_FLOW: Readonly<FlowConfig> = Object.freeze({
  sliceMs: 50,
  hardLimitMs: 5000,
  socketPending: 256,
  readBytes: 64 * 1024,
  socketOutBytes: 16 * 1024 * 1024,
  frameDeadlineMs: 10_000,
  maxConnections: 100_000,
  maxPerIp: 1000,
});

/** The stages one process runs (one `#startup` group). */
export type ProcessGroup = StageRef[];

/**
 * Deno permissions for script workers (the `permissions` object of
 * `new Worker(url, { deno: { permissions } })`); paths are absolute.
 */
export interface WorkerPermissions {
  read: boolean | string[];
  write: boolean | string[];
  net: boolean | string[];
  env: boolean | string[];
  run: boolean | string[];
  ffi: boolean | string[];
  sys: boolean | string[];
  import: boolean | string[];
}

/** `#threads`. */
export interface ThreadsConfig {
  /** Workers per script process, 1..256. */
  workers: number;
  /** Bound on messages queued in the process; beyond it input is paused. */
  maxPending: number;
}

/** The `script` section. */
export interface ScriptConfig {
  /** Absolute script search path, in order (position 0 hot-reloads). */
  packages: string[];
  /** Absolute folder of scripts loaded into every worker first. */
  preload?: string;
  /** Worker permissions; `read` always covers the packages and the preload folder. */
  permissions: WorkerPermissions;
  /** Seconds between change checks of position-0 packages. */
  reloadSeconds: number;
  /** `%shared`: how many `stage.shared` variables a process holds and the largest value. */
  shared: { slots: number; valueBytes: number };
  /** Main script name per script stage id (`"script+game": "game"` → `{ game: "game" }`). */
  mains: Record<string, string>;
}

/** `#services`: addresses shared by several processes. */
export interface ServicesConfig {
  /** `"host:port"` TCP addresses. */
  tcp: string[];
  /** `"host:port"` UDP addresses. */
  udp: string[];
}

/** `#router`: overload detection. */
export interface RouterConfig {
  /** p95 dispatch delay above which the process is overloaded. */
  thresholdMs: number;
  /** Delay the process must stay under to recover (default threshold / 2). */
  recoverMs: number;
}

/** `#cluster.auth`. */
export interface ClusterAuth {
  user?: string;
  pass?: string;
  token?: string;
}

/** `#cluster`: the NATS bus between machines. */
export interface ClusterConfig {
  /** Primary NATS servers. */
  nats: string[];
  /** Servers used for a stage id with no live member in the primary cluster. */
  backup: string[];
  /** This node's name. */
  node?: string;
  auth?: ClusterAuth;
  /** Accept functions sent from other machines (only with authentication). */
  allowRemoteCode: boolean;
}

/** `#admin`: the admin HTTP API. */
export interface AdminConfig {
  /** `"host:port"` as configured. */
  listen: string;
  /** Host part of `listen` (IPv6 without brackets; `0.0.0.0` when empty). */
  hostname: string;
  /** Port part of `listen`. */
  port: number;
  /** Bearer token required by the API, when set. */
  token?: string;
}

/** `#gateway`: the public HTTP gateway `POST /api/:target`. */
export interface GatewayConfig {
  /** `"host:port"` as configured (default `0.0.0.0:8080`). */
  listen: string;
  /** Host part of `listen` (IPv6 without brackets; `0.0.0.0` when empty). */
  hostname: string;
  /** Port part of `listen`. */
  port: number;
  /** The targets callers may reach: exact `"stage:msg"` or prefixes ending in `*`. */
  targets: string[];
  /** Bearer token every request needs, when set. */
  token?: string;
  /** `timeout`: ms a request waits for its reply unless `?timeout=` asks otherwise. */
  timeoutMs: number;
  /** `max_timeout`: the largest `?timeout=` honoured, ms (larger ones are capped). */
  maxTimeoutMs: number;
  /** `max_body`: largest request body, bytes. */
  maxBodyBytes: number;
  /** `max_inflight`: requests handled at once; more are answered 503 at once. */
  maxInflight: number;
  /** `cors`: browser origins allowed to call the gateway (none by default). */
  cors: string[];
}

/** `#gateway` settings that are not given (`listen` aside: {@link DEFAULT_GATEWAY_LISTEN}). */
export const DEFAULT_GATEWAY: Readonly<
  Pick<GatewayConfig, "timeoutMs" | "maxTimeoutMs" | "maxBodyBytes" | "maxInflight">
> = Object.freeze({
  timeoutMs: 5000,
  maxTimeoutMs: 30_000,
  maxBodyBytes: 64 * 1024,
  maxInflight: 1024,
});

/** A `=ticket+<id>` stage. */
export interface TicketConfig {
  /** Limit for categories not listed; negative = no waiting list. */
  defaultLimit: number;
  /** Limit per category; negative = no waiting list. */
  categories: Record<string, number>;
}

/** An `index+<id>` stage. */
export interface IndexConfig {
  /** Absolute path of the SQLite database (default `data/<id>.db`). */
  path: string;
}

/** An `agent+<id>` stage. */
export interface AgentConfig {
  /** `user-agent`: the User-Agent header of requests that set none. */
  userAgent: string;
  /** `timeout`: ms a request may take (queue wait included) unless it sets its own. */
  timeout: number;
  /** `concurrency`: requests in flight at most; the rest wait in arrival order. */
  concurrency: number;
  /** `queue`: requests waiting at most; more are answered with the error `busy` (0: none wait). */
  queue: number;
  /** `max_body`: largest response body in bytes; a longer one is cut off (`too_large`). */
  maxBody: number;
}

/** The validated, normalised `stage.json`. */
export interface StageConfig {
  /** Absolute path of the config file. */
  configPath: string;
  /** Its directory: relative paths in the file resolve against it. */
  baseDir: string;
  threads: ThreadsConfig;
  /** Process groups (default `[[script+start]]`). */
  startup: ProcessGroup[];
  script: ScriptConfig;
  services: ServicesConfig;
  /** Absent: overload detection is off. */
  router: RouterConfig | undefined;
  /** Absent: single machine, local bus only. */
  cluster: ClusterConfig | undefined;
  admin: AdminConfig;
  /** Absent: no HTTP gateway. */
  gateway: GatewayConfig | undefined;
  /** `#flow`, defaults applied. */
  flow: FlowConfig;
  /** Every ticket stage in a section or in `#startup`, by id. */
  tickets: Record<string, TicketConfig>;
  /** Every index stage in a section or in `#startup`, by id. */
  indexes: Record<string, IndexConfig>;
  /** Every agent stage in a section or in `#startup`, by id. */
  agents: Record<string, AgentConfig>;
  /** The parsed file after `${ENV}` substitution (for `process.config(name)`). */
  raw: unknown;
}
