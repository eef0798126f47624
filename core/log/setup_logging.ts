/**
 * Logging setup: one LogTape configuration per isolate (the main thread and each
 * worker configure their own, with the same options).
 *
 * @module
 */
import {
  ansiColorFormatter,
  configureSync,
  getConsoleSink,
  getLogger,
  jsonLinesFormatter,
  type Logger,
  type LogLevel,
  resetSync,
} from "@logtape/logtape";

/** How log records are printed: `pretty` (colored text), `json` (JSON lines) or `auto`. */
export type LogFormat = "pretty" | "json" | "auto";

/** Options for {@link setupLogging}; plain data so they can be sent to workers. */
export interface LogOptions {
  /** The lowest level printed (default `info`). */
  level: LogLevel;
  /** Output format; `auto` is pretty on a TTY and JSON lines otherwise. */
  format: LogFormat;
}

/** The defaults: `info`, `auto`, overridable with `STAGE_LOG_LEVEL` / `STAGE_LOG_FORMAT`. */
export function defaultLogOptions(env: (name: string) => string | undefined): LogOptions {
  const level = env("STAGE_LOG_LEVEL");
  const format = env("STAGE_LOG_FORMAT");
  return {
    level: isLevel(level) ? level : "info",
    format: format === "pretty" || format === "json" ? format : "auto",
  };
}

function isLevel(value: string | undefined): value is LogLevel {
  return value === "trace" || value === "debug" || value === "info" || value === "warning" ||
    value === "error" || value === "fatal";
}

/**
 * Configures LogTape for this isolate: every `["stage", …]` category goes to the
 * console in the chosen format. Calling it again replaces the configuration.
 *
 * @param options level and format
 * @param isTerminal whether standard output is a terminal (decides `auto`)
 */
export function setupLogging(options: LogOptions, isTerminal: boolean): void {
  const pretty = options.format === "pretty" || (options.format === "auto" && isTerminal);
  resetSync();
  configureSync({
    reset: true,
    sinks: {
      // Every level goes to standard output: one ordered stream for log collectors.
      console: getConsoleSink({
        formatter: pretty ? ansiColorFormatter : jsonLinesFormatter,
        levelMap: {
          trace: "log",
          debug: "log",
          info: "log",
          warning: "log",
          error: "log",
          fatal: "log",
        },
      }),
    },
    loggers: [
      { category: ["stage"], lowestLevel: options.level, sinks: ["console"] },
      { category: ["logtape", "meta"], lowestLevel: "warning", sinks: ["console"] },
    ],
  });
}

/**
 * The logger of one core folder, e.g. `coreLogger("net")` → category `["stage", "net"]`.
 *
 * @example
 * ```ts
 * import { coreLogger } from "./setup_logging.ts";
 * coreLogger("net").debug("nothing is configured, so this goes nowhere");
 * ```
 */
export function coreLogger(...category: string[]): Logger {
  return getLogger(["stage", ...category]);
}
