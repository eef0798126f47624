/**
 * The process-wide memory behind `stage.once(name, fn)`.
 *
 * @module
 */

/**
 * Names seen in this process; the first claim of a name wins.
 *
 * @example
 * ```ts
 * import { OnceRegistry } from "./once_registry.ts";
 * const once = new OnceRegistry();
 * if (!once.claim("init") || once.claim("init")) throw new Error("once is not once");
 * ```
 */
export class OnceRegistry {
  #seen = new Set<string>();

  /** True the first time `name` is claimed (until forgotten). */
  claim(name: string): boolean {
    if (this.#seen.has(name)) return false;
    this.#seen.add(name);
    return true;
  }

  /** Forgets `name`, so the next claim wins again. */
  forget(name: string): void {
    this.#seen.delete(name);
  }
}
