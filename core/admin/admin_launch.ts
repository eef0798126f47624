/**
 * How `stage run` serves the admin API: a process alone (`--single`) and a
 * supervisor serve it on `#admin.listen`; a supervised child serves its own on
 * a private loopback port that the supervisor aggregates.
 *
 * @module
 */
import type { Logger } from "@logtape/logtape";
import type { RunningProcess } from "../cluster/mod.ts";
import type { AdminConfig } from "../config/mod.ts";
import { adminApp } from "./admin_app.ts";
import { type AdminServer, serveAdmin } from "./admin_server.ts";
import { type AdminSources, type JsonValue, processSources } from "./admin_sources.ts";

/** Where and whether to serve. */
export interface AdminLaunchOptions {
  log: Logger;
  /**
   * Whether `#admin` was in the config. When it was not, the API is still
   * served on the default address, but an address in use there is only
   * warned about (several deployments on one machine); when it was, it is fatal.
   */
  explicit: boolean;
}

/**
 * Serves `sources` as configured by `admin`.
 *
 * @returns the server, or `undefined` when the default address is taken (warned)
 * @throws {AdminExposedError} a non-loopback address without a token
 * @throws {Error} the configured address cannot be bound
 */
export function launchAdmin(
  sources: AdminSources,
  admin: AdminConfig,
  options: AdminLaunchOptions,
): AdminServer | undefined {
  const app = adminApp(sources, admin.token === undefined ? {} : { token: admin.token });
  const listen = { hostname: admin.hostname, port: admin.port, token: admin.token };
  try {
    return serveAdmin(app, listen, options.log);
  } catch (error) {
    if (options.explicit || !(error instanceof Error) || error.name === "AdminExposedError") {
      throw error;
    }
    options.log.warning(
      "Admin API not served: {reason} (set #admin.listen to another address)",
      { reason: error.message },
    );
    return undefined;
  }
}

/** Options of {@link launchProcessAdmin}. */
export interface ProcessAdminOptions extends AdminLaunchOptions {
  /** True while the process drains. */
  draining(): boolean;
  /** Starts draining the process (the run command stops it). */
  drain(): Promise<JsonValue | void>;
  /**
   * Serve on a private loopback port and announce it on the bus (a
   * supervised child) instead of `#admin.listen`.
   */
  private?: boolean;
}

/** Serves the admin API of one running process. */
export function launchProcessAdmin(
  running: RunningProcess,
  admin: AdminConfig,
  options: ProcessAdminOptions,
): AdminServer | undefined {
  const sources = processSources(running, { draining: options.draining, drain: options.drain });
  if (!options.private) return launchAdmin(sources, admin, options);
  const server = launchAdmin(
    sources,
    { ...admin, listen: "127.0.0.1:0", hostname: "127.0.0.1", port: 0 },
    { ...options, explicit: true },
  );
  if (server !== undefined) running.announceAdmin(server.address);
  return server;
}
