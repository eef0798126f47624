/**
 * The admin HTTP API (`#admin`): {@link adminApp} (a Hono app over
 * {@link AdminSources}), {@link processSources} (those sources from a running
 * process) and {@link serveAdmin} (the app on a port); and the public HTTP
 * gateway (`#gateway`): {@link gatewayApp} (`POST /api/:target` through a
 * {@link StageCaller}) and {@link startGateway} (it on its shared port).
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
  emptySocketsReport,
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
export { checkGatewayTarget, TargetAllowlist } from "./gateway_targets.ts";
export { gatewayApp, type GatewayAppOptions } from "./http_gateway.ts";
export { type GatewayServer, type GatewayStartOptions, startGateway } from "./gateway_server.ts";
export type { StageCaller } from "./stage_caller.ts";
export {
  type AdminLaunchOptions,
  launchAdmin,
  launchProcessAdmin,
  type ProcessAdminOptions,
} from "./admin_launch.ts";
export {
  ChildAdminError,
  type ChildProcess,
  type SupervisorSourceOptions,
  supervisorSources,
} from "./supervisor_sources.ts";
