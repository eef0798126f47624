/**
 * Which targets the public HTTP gateway may send to: only stage message
 * targets (`"stage:msg"` and its scoped forms), never locks, replies or a
 * stage's own messages, and only those a {@link TargetAllowlist} lists.
 *
 * @module
 */
import { GATEWAY_TARGET_PATTERN } from "../config/mod.ts";
import { parseTarget } from "../message/mod.ts";

/**
 * Checks that `target` is a stage message target the gateway may send, and
 * returns the part an allowlist matches: the target without its `?query`.
 *
 * @throws {TypeError} the target does not parse, is not a `"stage:msg"` form
 *   (a lock, `null`, a message to the sender itself) or carries a reply (`=`) or
 *   fail (`!`) address (the gateway owns where replies go).
 * @example
 * ```ts
 * import { checkGatewayTarget } from "./mod.ts";
 * if (checkGatewayTarget("rank:get?board") !== "rank:get") throw new Error("query kept");
 * let refused = false;
 * try { checkGatewayTarget(">door.cb"); } catch { refused = true; }
 * if (!refused) throw new Error("a lock passed");
 * ```
 */
export function checkGatewayTarget(target: string): string {
  const parsed = parseTarget(target);
  if (parsed.kind !== "stage") {
    throw new TypeError(
      `Target ${JSON.stringify(target)} is not a stage message target: ` +
        `the gateway sends "stage:msg" messages only (no locks, replies or own messages)`,
    );
  }
  if (parsed.reply !== undefined || parsed.fail !== undefined) {
    const mark = parsed.reply !== undefined ? "=" : "!";
    throw new TypeError(
      `Target ${JSON.stringify(target)} carries a '${mark}' address: ` +
        `the gateway receives the replies of what it sends`,
    );
  }
  return parsed.query === undefined
    ? target
    : target.slice(0, target.length - parsed.query.length - 1);
}

/** The targets a gateway may reach: exact `"stage:msg"` entries and prefixes ending in `*`. */
export class TargetAllowlist {
  #exact: Set<string>;
  #prefixes: string[];

  /**
   * @throws {TypeError} `entries` is empty, or an entry is neither an exact stage
   *   message target nor a prefix ending in `*` that names its stage (the message names it).
   * @example
   * ```ts
   * import { TargetAllowlist } from "./mod.ts";
   * const allow = new TargetAllowlist(["login:*", "game:move"]);
   * if (!allow.allows("login:auth") || allow.allows("game:moves")) throw new Error("bad match");
   * ```
   */
  constructor(entries: readonly string[]) {
    if (!Array.isArray(entries) || entries.length === 0) {
      throw new TypeError(
        "Gateway targets: expected a non-empty array of targets; " +
          "a public listener must name what it exposes",
      );
    }
    this.#exact = new Set();
    this.#prefixes = [];
    for (const entry of entries) {
      if (typeof entry !== "string" || !GATEWAY_TARGET_PATTERN.test(entry)) {
        throw new TypeError(
          `Gateway target ${JSON.stringify(entry)}: expected "stage:msg" or a prefix ` +
            `ending in * that names its stage ("login:*")`,
        );
      }
      if (entry.endsWith("*")) this.#prefixes.push(entry.slice(0, -1));
      else this.#exact.add(entry);
    }
  }

  /** Whether `key` (a target without its `?query`, see {@link checkGatewayTarget}) is listed. */
  allows(key: string): boolean {
    return this.#exact.has(key) || this.#prefixes.some((prefix) => key.startsWith(prefix));
  }
}
