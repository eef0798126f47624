/**
 * Service stages — ticket, route, index, agent: ordinary stages on the main
 * thread that use only the message interface scripts use (DESIGN.md §5).
 *
 * @module
 */
import type { StageKind } from "../config/mod.ts";
import { startAgentService } from "./agent_service.ts";
import { startIndexService } from "./index_service.ts";
import { startRouteService } from "./route_service.ts";
import type { ServiceFactory } from "./service_stage.ts";
import { startTicketService } from "./ticket_service.ts";

export { CALLER_STAGE_ID, MainCaller, type StageCaller } from "./main_caller.ts";
export {
  mainThreadMessaging,
  type Service,
  type ServiceApi,
  type ServiceBus,
  type ServiceContext,
  type ServiceFactory,
  ServiceStage,
  type ServiceStageOptions,
} from "./service_stage.ts";

/** The service each `#startup` kind starts. */
export const serviceFactories: Readonly<Record<Exclude<StageKind, "script">, ServiceFactory>> = {
  "=ticket": startTicketService,
  "=route": startRouteService,
  index: startIndexService,
  agent: startAgentService,
};
