/**
 * Turns a validated config file into a {@linkcode StageConfig}: defaults
 * applied, relative paths resolved against the config file's folder.
 *
 * @module
 */

import { dirname, resolve } from "node:path";
import {
  MAX_WORKERS,
  type RawAgentSection,
  type RawFlowSection,
  type RawGatewaySection,
  type RawIndexSection,
  type RawPermissions,
  type RawScriptSection,
  type RawStageConfig,
  type RawTicketSection,
  type StageKind,
} from "./schema.ts";
import {
  type AdminConfig,
  type AgentConfig,
  type ClusterAuth,
  type ClusterConfig,
  DEFAULT_ADMIN_LISTEN,
  DEFAULT_AGENT_CONCURRENCY,
  DEFAULT_AGENT_MAX_BODY,
  DEFAULT_AGENT_QUEUE,
  DEFAULT_AGENT_TIMEOUT_MS,
  DEFAULT_FLOW,
  DEFAULT_GATEWAY,
  DEFAULT_GATEWAY_LISTEN,
  DEFAULT_MAX_PENDING,
  DEFAULT_PACKAGES,
  DEFAULT_RELOAD_SECONDS,
  DEFAULT_TICKET_LIMIT,
  DEFAULT_USER_AGENT,
  type FlowConfig,
  type GatewayConfig,
  type IndexConfig,
  type ProcessGroup,
  type ScriptConfig,
  type StageConfig,
  type TicketConfig,
  type WorkerPermissions,
} from "./stage_config.ts";

const PERMISSION_NAMES = ["read", "write", "net", "env", "run", "ffi", "sys", "import"] as const;

/**
 * @param config the file after env substitution and schema validation
 * @param configPath absolute path of the config file
 * @param raw the file after env substitution, before validation
 */
export function normalizeConfig(
  config: RawStageConfig,
  configPath: string,
  raw: unknown,
): StageConfig {
  const baseDir = dirname(configPath);
  const script = normalizeScript(config.script, baseDir);
  const startup: ProcessGroup[] = config["#startup"]?.map((group) => group.map(parseStageRef)) ??
    [Object.keys(script.mains).map((id) => ({ kind: "script" as const, id }))];
  const [workers, maxPending] = config["#threads"] ?? [defaultWorkers()];
  const router = config["#router"];
  return {
    configPath,
    baseDir,
    threads: { workers, maxPending: maxPending ?? DEFAULT_MAX_PENDING },
    startup,
    script,
    services: {
      tcp: config["#services"]?.tcp ?? [],
      udp: config["#services"]?.udp ?? [],
    },
    router: router === undefined
      ? undefined
      : { thresholdMs: router[0], recoverMs: router[1] ?? router[0] / 2 },
    cluster: normalizeCluster(config["#cluster"]),
    admin: normalizeAdmin(config["#admin"]),
    gateway: normalizeGateway(config["#gateway"]),
    flow: normalizeFlow(config["#flow"]),
    tickets: collect(
      config,
      startup,
      "=ticket",
      (_id, section?: RawTicketSection): TicketConfig => ({
        defaultLimit: section?.[0] ?? DEFAULT_TICKET_LIMIT,
        categories: { ...section?.[1] },
      }),
    ),
    indexes: collect(config, startup, "index", (id, section?: RawIndexSection): IndexConfig => ({
      path: resolve(baseDir, section?.path ?? `data/${id}.db`),
    })),
    agents: collect(config, startup, "agent", (_id, section?: RawAgentSection): AgentConfig => ({
      userAgent: section?.["user-agent"] ?? DEFAULT_USER_AGENT,
      timeout: section?.timeout ?? DEFAULT_AGENT_TIMEOUT_MS,
      concurrency: section?.concurrency ?? DEFAULT_AGENT_CONCURRENCY,
      queue: section?.queue ?? DEFAULT_AGENT_QUEUE,
      maxBody: section?.max_body ?? DEFAULT_AGENT_MAX_BODY,
    })),
    raw,
  };
}

function normalizeScript(section: RawScriptSection | undefined, baseDir: string): ScriptConfig {
  const packageSetting = section?.["%package"] ?? DEFAULT_PACKAGES;
  const packages = dedupe(
    (typeof packageSetting === "string" ? [packageSetting] : packageSetting)
      .map((path) => resolve(baseDir, path)),
  );
  const preloadSetting = section?.["%preload"];
  const preload = preloadSetting === undefined ? undefined : resolve(baseDir, preloadSetting);
  const mains = Object.fromEntries(
    Object.entries(section ?? {})
      .filter(([key]) => key.startsWith("script+"))
      .map(([key, main]) => [key.slice("script+".length), main as string]),
  );
  const scriptDirs = preload === undefined ? packages : dedupe([...packages, preload]);
  return {
    packages,
    ...(preload === undefined ? {} : { preload }),
    permissions: normalizePermissions(section?.["%permissions"], scriptDirs, baseDir),
    reloadSeconds: section?.["%reload"] ?? DEFAULT_RELOAD_SECONDS,
    shared: section?.["%shared"] === undefined
      ? { slots: 256, valueBytes: 64 * 1024 }
      : { slots: section["%shared"][0], valueBytes: section["%shared"][1] },
    mains: Object.keys(mains).length === 0 ? { start: "start" } : mains,
  };
}

function normalizePermissions(
  given: RawPermissions | undefined,
  scriptDirs: string[],
  baseDir: string,
): WorkerPermissions {
  const permissions = Object.fromEntries(
    PERMISSION_NAMES.map((name) => [name, given?.[name] ?? false]),
  ) as unknown as WorkerPermissions;
  const read = permissions.read;
  // Workers must always read their own scripts.
  permissions.read = read === true ? true : dedupe([
    ...(read === false ? [] : read.map((path) => resolve(baseDir, path))),
    ...scriptDirs,
  ]);
  if (Array.isArray(permissions.write)) {
    permissions.write = dedupe(permissions.write.map((path) => resolve(baseDir, path)));
  }
  return permissions;
}

function normalizeCluster(cluster: RawStageConfig["#cluster"]): ClusterConfig | undefined {
  if (cluster === undefined) return undefined;
  return {
    nats: cluster.nats ?? [],
    backup: cluster.backup ?? [],
    ...(cluster.node === undefined ? {} : { node: cluster.node }),
    ...(cluster.auth === undefined ? {} : { auth: withoutUndefined(cluster.auth) as ClusterAuth }),
    allowRemoteCode: cluster.allowRemoteCode ?? false,
  };
}

function normalizeAdmin(admin: RawStageConfig["#admin"]): AdminConfig {
  return {
    ...splitListen(admin?.listen ?? DEFAULT_ADMIN_LISTEN),
    ...(admin?.token === undefined ? {} : { token: admin.token }),
  };
}

function normalizeGateway(gateway: RawGatewaySection | undefined): GatewayConfig | undefined {
  if (gateway === undefined) return undefined;
  return {
    ...splitListen(gateway.listen ?? DEFAULT_GATEWAY_LISTEN),
    targets: dedupe(gateway.targets),
    ...(gateway.token === undefined ? {} : { token: gateway.token }),
    timeoutMs: gateway.timeout ?? DEFAULT_GATEWAY.timeoutMs,
    maxTimeoutMs: gateway.max_timeout ?? DEFAULT_GATEWAY.maxTimeoutMs,
    maxBodyBytes: gateway.max_body ?? DEFAULT_GATEWAY.maxBodyBytes,
    maxInflight: gateway.max_inflight ?? DEFAULT_GATEWAY.maxInflight,
    cors: dedupe(gateway.cors ?? []),
  };
}

/** `"host:port"` → its parts (IPv6 without brackets; an empty host is every interface). */
function splitListen(listen: string): { listen: string; hostname: string; port: number } {
  const colon = listen.lastIndexOf(":");
  const host = listen.slice(0, colon);
  return {
    listen,
    hostname: host === "" ? "0.0.0.0" : host.replace(/^\[(.*)\]$/, "$1"),
    port: Number(listen.slice(colon + 1)),
  };
}

function normalizeFlow(flow: RawFlowSection | undefined): FlowConfig {
  return {
    sliceMs: flow?.slice_ms ?? DEFAULT_FLOW.sliceMs,
    hardLimitMs: flow?.hard_limit_ms ?? DEFAULT_FLOW.hardLimitMs,
    socketPending: flow?.socket_pending ?? DEFAULT_FLOW.socketPending,
    readBytes: flow?.read_bytes ?? DEFAULT_FLOW.readBytes,
    socketOutBytes: flow?.socket_out_bytes ?? DEFAULT_FLOW.socketOutBytes,
    frameDeadlineMs: flow?.frame_deadline_ms ?? DEFAULT_FLOW.frameDeadlineMs,
    maxConnections: flow?.max_connections ?? DEFAULT_FLOW.maxConnections,
    maxPerIp: flow?.max_per_ip ?? DEFAULT_FLOW.maxPerIp,
  };
}

/** Builds the record of one service kind: every section plus every `#startup` entry. */
function collect<Section, Result>(
  config: RawStageConfig,
  startup: ProcessGroup[],
  kind: StageKind,
  build: (id: string, section?: Section) => Result,
): Record<string, Result> {
  const prefix = `${kind}+`;
  const entries = new Map<string, Result>();
  for (const [key, section] of Object.entries(config)) {
    if (key.startsWith(prefix)) {
      const id = key.slice(prefix.length);
      entries.set(id, build(id, section as Section));
    }
  }
  for (const ref of startup.flat()) {
    if (ref.kind === kind && !entries.has(ref.id)) entries.set(ref.id, build(ref.id));
  }
  return Object.fromEntries(entries);
}

function parseStageRef(entry: string): { kind: StageKind; id: string } {
  const plus = entry.indexOf("+", 1);
  return { kind: entry.slice(0, plus) as StageKind, id: entry.slice(plus + 1) };
}

function defaultWorkers(): number {
  const cpus = globalThis.navigator?.hardwareConcurrency ?? 1;
  return Math.min(Math.max(cpus, 1), MAX_WORKERS);
}

function withoutUndefined(object: object): object {
  return Object.fromEntries(Object.entries(object).filter(([, value]) => value !== undefined));
}

function dedupe(paths: string[]): string[] {
  return [...new Set(paths)];
}
