/**
 * The index service stage (DESIGN.md §5). Placeholder until it is written.
 *
 * @module
 */
import type { ServiceFactory } from "./service_stage.ts";

/** Starts a `index+<id>` stage. */
export const startIndexService: ServiceFactory = ({ api, log }) => {
  log.warning("The index service (stage {id}) is not available yet", { id: api.id });
  return { stop() {} };
};
