/**
 * {@link StageCaller}: how the HTTP gateway (and the admin API's `POST /signal`)
 * send stage messages from the main thread. A running process provides one as
 * `running.caller` (core/services/main_caller.ts defines it; this file gives
 * the admin folder its seam without a second definition). Tests use fakes.
 *
 * Errors it rejects with may have crossed a thread or a process, rebuilt by
 * name: match on `error.name` (`RequestTimeoutError`, `StageNotFoundError`,
 * `WaitforNotFoundError`, …), not `instanceof`.
 *
 * @example
 * ```ts
 * import type { StageCaller } from "./mod.ts";
 * const echo: StageCaller = {
 *   request: (_target, values) => Promise.resolve(values[0]),
 *   signal: () => {},
 * };
 * if (await echo.request("calc:echo", [7], 1000) !== 7) throw new Error("no echo");
 * ```
 *
 * @module
 */
export type { StageCaller } from "../services/mod.ts";
