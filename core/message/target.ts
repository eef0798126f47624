/**
 * The address grammar of `stage.signal(target, …)` (DESIGN.md §4), parsed into
 * plain data. Parsing is pure: routing decides what each form means at run time.
 *
 * ```
 * "msg"            this stage, asynchronous        ":msg"         this stage, synchronous
 * "stage:msg"      stage `stage`, round robin      "stage+msg"    delivered as "stage:<me>:msg"
 * "*stage:msg"     every instance ("*msg": every instance of this stage)
 * "=stage:msg"     instances on this server only   "+stage:msg"   instances on other servers only
 * null             reply to the message being handled
 * ">NAME.cb"       queue for lock NAME, call waitfor `cb` on this caller's turn
 * ">>NAME.cb", ms  extend the hold                 "<NAME.*"      release
 * ```
 *
 * A message id may carry modifiers, each at most once, in any order:
 * `=reply` (reply address), `?query` (an argument for the receiver, e.g. a ticket
 * feedback id or a route argument) and `!fail` (where an undeliverable message
 * goes back). A message id may itself start with `=`, `@` or `*` (`"ticket:=room"`,
 * `"route:@"`).
 *
 * @module
 */

/** Which instances of a stage a message goes to. */
export type TargetScope = "one" | "all" | "local" | "remote";

/** Modifiers of a message id. */
export interface MessageParts {
  /** The message id (what the receiver's waitfor lookup matches). */
  message: string;
  /** `=reply`: the waitfor id the receiver's reply goes to. */
  reply?: string;
  /** `?query`: an argument for the receiver. */
  query?: string;
  /** `!fail`: where the message goes back when nobody takes it. */
  fail?: string;
}

/** A parsed `stage.signal` target. */
export type Target =
  | ({ kind: "self"; sync: boolean; scope: "one" | "all" } & MessageParts)
  | ({ kind: "stage"; stage: string; scope: TargetScope; bySender: boolean } & MessageParts)
  | { kind: "reply" }
  | { kind: "lock"; op: "acquire" | "extend"; name: string; callback: string }
  | { kind: "unlock"; name: string; callback: string };

const STAGE_ID = /^[A-Za-z_][\w.-]*$/;
const LOCK_NAME = /^[^\s.:<>]+$/;
const MODIFIERS = "=?!";

function fail(target: string, why: string): never {
  throw new TypeError(`Cannot parse target ${JSON.stringify(target)}: ${why}`);
}

/** Splits `msg=reply?query!fail` (modifiers in any order, each at most once). */
function parseMessage(target: string, text: string, where: string): MessageParts {
  if (text.length === 0 || text.startsWith(":")) fail(target, `empty message id ${where}`);
  // The first character always belongs to the id, so "=room" and "@" are ids.
  let end = 1;
  while (end < text.length && !MODIFIERS.includes(text[end]!)) end++;
  const parts: MessageParts = { message: text.slice(0, end) };
  if (/\s/.test(parts.message)) fail(target, `message id "${parts.message}" contains whitespace`);
  let at = end;
  while (at < text.length) {
    const mark = text[at]!;
    let next = at + 1;
    while (next < text.length && !MODIFIERS.includes(text[next]!)) next++;
    const value = text.slice(at + 1, next);
    const key = mark === "=" ? "reply" : mark === "?" ? "query" : "fail";
    if (value.length === 0) fail(target, `empty ${key} after '${mark}'`);
    if (parts[key] !== undefined) fail(target, `more than one '${mark}' (${key})`);
    parts[key] = value;
    at = next;
  }
  return parts;
}

function parseLock(target: string, body: string, op: "acquire" | "extend" | "release"): Target {
  const dot = body.indexOf(".");
  if (dot < 0) {
    fail(target, `expected NAME.callback after '${target.slice(0, target.length - body.length)}'`);
  }
  const name = body.slice(0, dot);
  const callback = body.slice(dot + 1);
  if (!LOCK_NAME.test(name)) fail(target, `invalid lock name "${name}"`);
  if (callback.length === 0) fail(target, "empty callback after the lock name");
  if (op === "release") return { kind: "unlock", name, callback };
  if (callback === "*") fail(target, "'*' names every callback and is only valid when releasing");
  return { kind: "lock", op, name, callback };
}

/**
 * Parses a `stage.signal` target.
 *
 * @throws TypeError naming the target and the bad part
 * @example
 * ```ts
 * import { parseTarget } from "./target.ts";
 * const t = parseTarget("ticket:login=login_callback?feedback");
 * if (t.kind !== "stage" || t.stage !== "ticket" || t.message !== "login" ||
 *   t.reply !== "login_callback" || t.query !== "feedback") throw new Error("bad parse");
 * ```
 */
export function parseTarget(target: string | null): Target {
  if (target === null) return { kind: "reply" };
  if (typeof target !== "string") {
    throw new TypeError(`Cannot parse target ${String(target)}: expected a string or null`);
  }
  if (target.length === 0) fail(target, "empty target");
  if (target.startsWith(">>")) return parseLock(target, target.slice(2), "extend");
  if (target.startsWith(">")) return parseLock(target, target.slice(1), "acquire");
  if (target.startsWith("<")) return parseLock(target, target.slice(1), "release");
  if (target.startsWith(":")) {
    return {
      kind: "self",
      sync: true,
      scope: "one",
      ...parseMessage(target, target.slice(1), "after ':'"),
    };
  }
  let scope: TargetScope = "one";
  let rest = target;
  const prefix = target[0];
  if (prefix === "*" || prefix === "=" || prefix === "+") {
    scope = prefix === "*" ? "all" : prefix === "=" ? "local" : "remote";
    rest = target.slice(1);
    if (rest.length === 0) fail(target, `nothing after '${prefix}'`);
  }
  // "stage:msg" / "stage+msg": the stage id ends at the first ':' or '+'.
  const match = /^([^:+=?!]*)([:+])/.exec(rest);
  if (match === null) {
    if (scope === "local" || scope === "remote") {
      fail(target, `'${prefix}' needs a stage: "${prefix}stage:msg"`);
    }
    return {
      kind: "self",
      sync: false,
      scope: scope === "all" ? "all" : "one",
      ...parseMessage(target, rest, "in the target"),
    };
  }
  const stage = match[1]!;
  const separator = match[2]!;
  if (stage.length === 0) fail(target, `empty stage id before '${separator}'`);
  if (!STAGE_ID.test(stage)) fail(target, `invalid stage id "${stage}"`);
  const text = rest.slice(match[0].length);
  return {
    kind: "stage",
    stage,
    scope,
    bySender: separator === "+",
    ...parseMessage(target, text, `after '${separator}'`),
  };
}

/** The waitfor id that takes every message no other waitfor matches. */
export const CATCH_ALL_WAITFOR = "*";

/**
 * The waitfor ids a message id is looked up under, most specific first:
 * `"a:g.m.cb"` → `"a:g.m.cb"`, `"a:g.m."`, `"a:g."`, `"a:"`, and last `"*"`
 * (the catch-all). Group separators (`.`) in the sender part (between the
 * first and the last `:`) are not split: `"a:s.x:m"` → `"a:s.x:m"`, `"a:s.x:"`,
 * `"a:"`, `"*"`.
 *
 * @example
 * ```ts
 * import { lookupChain } from "./target.ts";
 * const chain = lookupChain("a:g.m.cb");
 * if (chain.join(" ") !== "a:g.m.cb a:g.m. a:g. a: *") throw new Error(chain.join(" "));
 * ```
 */
export function lookupChain(messageId: string): string[] {
  const chain = [messageId];
  const colon = messageId.lastIndexOf(":");
  const head = messageId.slice(0, colon + 1);
  let tail = messageId.slice(colon + 1);
  if (tail.endsWith(".")) tail = tail.slice(0, -1);
  for (let dot = tail.lastIndexOf("."); dot >= 0; dot = tail.lastIndexOf(".")) {
    tail = tail.slice(0, dot);
    chain.push(`${head}${tail}.`);
  }
  // Then the sender prefixes, without splitting their groups: "a:s.x:" → "a:".
  for (let end = head.length - 1; end >= 0; end = head.lastIndexOf(":", end - 1)) {
    chain.push(head.slice(0, end + 1));
    if (end === 0) break;
  }
  chain.push(CATCH_ALL_WAITFOR);
  return [...new Set(chain)];
}
