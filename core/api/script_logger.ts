/**
 * `logger`: script logging through LogTape, with `%F` (file), `%M` (function),
 * `%L` (line) and `%{ENV}` (environment variable) expansion.
 *
 * @module
 */
import { getLogger, type Logger } from "@logtape/logtape";

/** Properties attached to a log record. */
export type LogProperties = Record<string, unknown>;

/** Where a log call came from. */
export interface CallSite {
  file: string;
  method: string;
  line: string;
}

/** Reads an environment variable; `undefined` when unset or not permitted. */
export type EnvLookup = (name: string) => string | undefined;

/**
 * Finds the caller `depth` frames above this function in a V8 stack trace.
 *
 * @example
 * ```ts
 * import { callSite } from "./script_logger.ts";
 * function where() { return callSite(1); }
 * if (where().method !== "where") throw new Error("wrong frame");
 * ```
 */
export function callSite(depth: number): CallSite {
  const lines = (new Error().stack ?? "").split("\n").slice(1);
  const frame = lines[depth]?.trim() ?? "";
  const match = /^at (?:(.+?) \()?(.+?):(\d+):\d+\)?$/.exec(frame);
  if (match === null) return { file: "?", method: "?", line: "?" };
  const location = match[2] ?? "?";
  const file = location.slice(location.lastIndexOf("/") + 1).replace(/\?.*$/, "");
  return { file, method: match[1] ?? "<top>", line: match[3] ?? "?" };
}

/**
 * Expands `%F %M %L %{NAME}` in a message. `%%` is a literal `%`.
 *
 * @example
 * ```ts
 * import { expandLogMessage } from "./script_logger.ts";
 * const text = expandLogMessage("%F:%L %{USER}", { file: "a.ts", method: "f", line: "3" }, () => "kim");
 * if (text !== "a.ts:3 kim") throw new Error(text);
 * ```
 */
export function expandLogMessage(message: string, site: CallSite, env: EnvLookup): string {
  return message.replace(/%(%|F|M|L|\{([A-Za-z_][A-Za-z0-9_]*)\})/g, (whole, code, name) => {
    switch (code) {
      case "%":
        return "%";
      case "F":
        return site.file;
      case "M":
        return site.method;
      case "L":
        return site.line;
      default:
        return env(name as string) ?? whole;
    }
  });
}

/** The `logger` global: one category per stage, sub-categories on demand. */
export class ScriptLogger {
  #logger: Logger;
  #env: EnvLookup;

  constructor(category: readonly string[], env: EnvLookup) {
    this.#logger = getLogger([...category]);
    this.#env = env;
  }

  /** A logger for a sub-category, e.g. `logger.category("login")`. */
  category(name: string): ScriptLogger {
    const child = new ScriptLogger([], this.#env);
    child.#logger = this.#logger.getChild(name);
    return child;
  }

  /** Plain output (info level, kept for scripts of the original platform). */
  out(message: string, properties?: LogProperties): void {
    this.#log("info", message, properties);
  }

  trace(message: string, properties?: LogProperties): void {
    this.#log("trace", message, properties);
  }

  debug(message: string, properties?: LogProperties): void {
    this.#log("debug", message, properties);
  }

  info(message: string, properties?: LogProperties): void {
    this.#log("info", message, properties);
  }

  warn(message: string, properties?: LogProperties): void {
    this.#log("warn", message, properties);
  }

  error(message: string, properties?: LogProperties): void {
    this.#log("error", message, properties);
  }

  #log(
    level: "trace" | "debug" | "info" | "warn" | "error",
    message: string,
    properties: LogProperties | undefined,
  ): void {
    let text = String(message);
    // Frames above: #log ← the level method ← the script.
    if (text.includes("%")) text = expandLogMessage(text, callSite(3), this.#env);
    // Without properties, braces are literal text rather than LogTape placeholders.
    if (properties === undefined) {
      this.#logger[level](text.replaceAll("{", "{{").replaceAll("}", "}}"));
    } else {
      this.#logger[level](text, properties);
    }
  }
}
