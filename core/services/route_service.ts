/**
 * The route service stage (DESIGN.md §5). Placeholder until it is written.
 *
 * @module
 */
import type { ServiceFactory } from "./service_stage.ts";

/** Starts a `=route+<id>` stage. */
export const startRouteService: ServiceFactory = ({ api, log }) => {
  log.warning("The route service (stage {id}) is not available yet", { id: api.id });
  return { stop() {} };
};
