/**
 * Describing script failures for logs: the message and the script position
 * (the first stack frame outside the platform's own code).
 *
 * @module
 */

import { originalUrl } from "../script/mod.ts";

const CORE_PATH = new URL("../", import.meta.url).href;

/**
 * The `file:line:column` of the first stack frame that belongs to a script (not
 * to `core/` nor to the runtime), or `undefined`.
 *
 * @example
 * ```ts
 * import { scriptPosition } from "./script_error.ts";
 * const error = new Error("x");
 * error.stack = "Error: x\n    at f (file:///srv/scripts/start.ts:4:35)";
 * if (scriptPosition(error) !== "file:///srv/scripts/start.ts:4:35") throw new Error("wrong");
 * ```
 */
export function scriptPosition(error: unknown): string | undefined {
  const stack = error instanceof Error ? error.stack : undefined;
  if (stack === undefined) return undefined;
  for (const line of stack.split("\n").slice(1)) {
    const match = /((?:file|data):[^\s)]+?):(\d+):(\d+)\)?\s*$/.exec(line.trim());
    const url = match?.[1];
    if (url === undefined || url.startsWith(CORE_PATH)) continue;
    // Transpiled scripts run from data: URLs; name the file they came from.
    const file = url.startsWith("data:") ? originalUrl(url) ?? "<transpiled script>" : url;
    return `${file}:${match![2]}:${match![3]}`;
  }
  return undefined;
}

/**
 * `{ where: "file:///…/start.ts:4:35" }` for the script line calling the API
 * function that calls this (registrations: `stage.waitfor`, `broker.ready`), or
 * `{}` when no script frame is on the stack. The main thread names it when a
 * handler registered there is stuck or lost.
 */
export function here(): { where?: string } {
  const where = scriptPosition(new Error());
  return where === undefined ? {} : { where };
}

/** `"TypeError: boom at file:///…/start.ts:4:35"`, for one-line logs. */
export function describeScriptError(error: unknown): string {
  const text = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  const position = scriptPosition(error);
  return position === undefined ? text : `${text} (at ${position})`;
}
