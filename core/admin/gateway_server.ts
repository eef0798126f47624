/**
 * {@link startGateway}: the `#gateway` HTTP gateway of a process on its public
 * port, shared between the process groups of a deployment (`SO_REUSEPORT`).
 *
 * @module
 */
import type { Logger } from "@logtape/logtape";
import type { GatewayConfig } from "../config/mod.ts";
import type { Awaitable, Health } from "./admin_sources.ts";
import { type AdminServer, serveAdmin } from "./admin_server.ts";
import { gatewayApp } from "./http_gateway.ts";
import type { StageCaller } from "./stage_caller.ts";

/** What {@link startGateway} needs besides the config and the caller. */
export interface GatewayStartOptions {
  log: Logger;
  /** The process's readiness (e.g. `processSources(running).health`): not ready → 503. */
  health?: () => Awaitable<Pick<Health, "ready" | "state">>;
}

/** A running gateway: `address` is the `host:port` bound; dispose (or `shutdown`) to stop it. */
export type GatewayServer = AdminServer;

/**
 * Serves `POST /api/:target` for `config` through `caller`. The port is bound
 * with `SO_REUSEPORT`, so every process group of a supervised deployment can
 * serve it at once; a public address needs no token (the allowlist guards it).
 *
 * @throws {TypeError} (rejects) a bad target entry or port, or an empty token (see
 *   {@link gatewayApp}).
 * @throws {Error} (rejects) the address cannot be bound (the message names it).
 * @example
 * ```ts
 * import { getLogger } from "@logtape/logtape";
 * import { startGateway, type StageCaller } from "./mod.ts";
 * const caller: StageCaller = { request: () => Promise.resolve("pong"), signal: () => {} };
 * await using gateway = await startGateway({
 *   listen: "127.0.0.1:0", hostname: "127.0.0.1", port: 0, targets: ["game:*"],
 *   timeoutMs: 5000, maxTimeoutMs: 30000, maxBodyBytes: 65536, maxInflight: 1024, cors: [],
 * }, caller, { log: getLogger(["stage"]) });
 * const response = await fetch(`http://${gateway.address}/api/game:ping`, { method: "POST" });
 * if ((await response.json()).reply !== "pong") throw new Error("no pong");
 * ```
 */
export function startGateway(
  config: GatewayConfig,
  caller: StageCaller,
  options: GatewayStartOptions,
): Promise<GatewayServer> {
  try {
    return Promise.resolve(serve(config, caller, options));
  } catch (error) {
    return Promise.reject(error);
  }
}

function serve(
  config: GatewayConfig,
  caller: StageCaller,
  options: GatewayStartOptions,
): GatewayServer {
  const app = gatewayApp(caller, {
    targets: config.targets,
    token: config.token,
    timeoutMs: config.timeoutMs,
    maxTimeoutMs: config.maxTimeoutMs,
    maxBodyBytes: config.maxBodyBytes,
    maxInflight: config.maxInflight,
    cors: config.cors,
    log: options.log,
    ...(options.health === undefined ? {} : { health: options.health }),
  });
  return serveAdmin(app, {
    hostname: config.hostname,
    port: config.port,
    token: config.token,
    allowPublic: true,
    reusePort: true,
    label: "HTTP gateway",
  }, options.log);
}
