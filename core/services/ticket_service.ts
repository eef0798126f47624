/**
 * The ticket service stage (DESIGN.md §5). Placeholder until it is written.
 *
 * @module
 */
import type { ServiceFactory } from "./service_stage.ts";

/** Starts a `=ticket+<id>` stage. */
export const startTicketService: ServiceFactory = ({ api, log }) => {
  log.warning("The ticket service (stage {id}) is not available yet", { id: api.id });
  return { stop() {} };
};
