/**
 * The admin HTTP API (`#admin`): {@link adminApp} (a Hono app over
 * {@link AdminSources}), {@link processSources} (those sources from a running
 * process) and {@link serveAdmin} (the app on a port).
 *
 * @module
 */
export {
  adminApp,
  type AdminAppOptions,
  parseSignalRequest,
  type SignalRequest,
} from "./admin_app.ts";
export {
  type AdminSources,
  AdminUnavailableError,
  type Awaitable,
  type Health,
  type HealthState,
  type JsonValue,
  type ProcessSourceOptions,
  processSources,
  type ScriptStageInfo,
  type ServiceStageInfo,
  type SocketsReport,
  type SocketState,
  type SocketTalker,
  type StageInfo,
  type StageWorkers,
  type TicketCategoryInfo,
  ticketsFromMetrics,
} from "./admin_sources.ts";
export {
  AdminExposedError,
  type AdminServeOptions,
  type AdminServer,
  isLoopback,
  serveAdmin,
} from "./admin_server.ts";
