/**
 * The agent service stage (DESIGN.md §5). Placeholder until it is written.
 *
 * @module
 */
import type { ServiceFactory } from "./service_stage.ts";

/** Starts a `agent+<id>` stage. */
export const startAgentService: ServiceFactory = ({ api, log }) => {
  log.warning("The agent service (stage {id}) is not available yet", { id: api.id });
  return { stop() {} };
};
