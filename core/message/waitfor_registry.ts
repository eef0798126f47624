/**
 * One worker's `stage.waitfor` registrations: handlers by waitfor id, with the
 * group lookup of DESIGN.md §4 and generated ids for one-off replies.
 *
 * @module
 */
import { lookupChain } from "./target.ts";

/** A registered handler and the values bound to it. */
export interface Waitfor {
  /** The id it was registered under. */
  id: string;
  fn: (...args: unknown[]) => unknown;
  bound: unknown[];
  /** Registered with `waitfor.serial`: messages to it run one at a time, in order. */
  serial: boolean;
}

/**
 * Handlers by id; lookup walks from the message id to ever shorter groups.
 *
 * @example
 * ```ts
 * import { WaitforRegistry } from "./waitfor_registry.ts";
 * const registry = new WaitforRegistry("w0");
 * registry.register("a:g.", () => "group");
 * if (registry.match("a:g.m.cb")?.id !== "a:g.") throw new Error("group lookup failed");
 * ```
 */
export class WaitforRegistry {
  #handlers = new Map<string, Waitfor>();
  #prefix: string;
  #next = 0;

  /** @param prefix makes generated ids unique across workers (e.g. the worker's index) */
  constructor(prefix: string) {
    this.#prefix = prefix;
  }

  /**
   * Registers `fn` for `id` (replacing a previous registration).
   *
   * @throws TypeError for an empty id or a non-function
   */
  register(id: string, fn: (...args: unknown[]) => unknown, bound: unknown[] = [], serial = false) {
    if (typeof id !== "string" || id.length === 0) {
      throw new TypeError(`stage.waitfor: the id must be a non-empty string; got ${String(id)}`);
    }
    if (typeof fn !== "function") {
      throw new TypeError(`stage.waitfor("${id}"): expected a function or null`);
    }
    const waitfor: Waitfor = { id, fn, bound, serial };
    this.#handlers.set(id, waitfor);
    return waitfor;
  }

  /** Registers `fn` under a fresh generated id and returns the id. */
  generate(fn: (...args: unknown[]) => unknown, bound: unknown[] = []): string {
    const id = `~${this.#prefix}.${(this.#next++).toString(36)}`;
    this.register(id, fn, bound);
    return id;
  }

  /** Removes `id`; returns whether it was registered. */
  unregister(id: string): boolean {
    return this.#handlers.delete(id);
  }

  /** The registration under exactly `id`. */
  get(id: string): Waitfor | undefined {
    return this.#handlers.get(id);
  }

  /** The handler a message id reaches: the full id, then its groups, then its stage. */
  match(messageId: string): Waitfor | undefined {
    const exact = this.#handlers.get(messageId);
    if (exact !== undefined) return exact;
    for (const id of lookupChain(messageId)) {
      const found = this.#handlers.get(id);
      if (found !== undefined) return found;
    }
    return undefined;
  }

  /** Number of registrations. */
  get size(): number {
    return this.#handlers.size;
  }
}
