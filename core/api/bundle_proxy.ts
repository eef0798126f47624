/**
 * `bundle.proxy`: an object whose writes call watchers — edge-triggered
 * thresholds for numeric keys (`hp: [10, 20, 30, onEdge]`), a function for
 * "every change of this key", and an optional catch-all for the other keys.
 *
 * @module
 */

/** Property keys the proxy watches (symbols too). */
export type WatchKey = string | symbol;

/**
 * Called when a write crosses thresholds. `crossedEdges` lists the thresholds
 * crossed, in the order they were crossed: ascending when the value rose,
 * descending when it fell (so the direction is `value > previous`).
 */
export type EdgeWatcher<T extends object = Record<string, unknown>> = (
  proxy: T,
  crossedEdges: number[],
  key: WatchKey,
  value: unknown,
  previous: unknown,
) => unknown;

/** Called on every change of a key (and, as the catch-all, of every unwatched key). */
export type ChangeWatcher<T extends object = Record<string, unknown>> = (
  proxy: T,
  key: WatchKey,
  value: unknown,
  previous: unknown,
) => unknown;

/** A threshold watch: ascending finite numbers, then the callback. */
export type EdgeWatch<T extends object = Record<string, unknown>> = [
  ...number[],
  EdgeWatcher<T>,
];

/** What `bundle.proxy` watches: per key, thresholds and a callback, or a callback. */
export type Watch<T extends object = Record<string, unknown>> = {
  [key: string]: EdgeWatch<T> | ChangeWatcher<T>;
};

type Entry<T extends object> =
  | { kind: "edges"; thresholds: number[]; fn: EdgeWatcher<T> }
  | { kind: "change"; fn: ChangeWatcher<T> };

/**
 * Wraps `obj` in a Proxy whose writes call watchers, after the value is stored.
 *
 * - `watch[key] = [t1, t2, …, f]` (ascending thresholds, then a function):
 *   threshold `t` is *reached* while the value is `>= t`. A write that changes
 *   the value from `previous` to `value` crosses `t` upwards when
 *   `previous < t <= value` and downwards when `value < t <= previous`; when at
 *   least one threshold is crossed, `f(proxy, crossedEdges, key, value, previous)`
 *   runs once with every threshold crossed, in crossing order. Writes that cross
 *   nothing call nothing (edge-triggered). Only numbers count: a write from or
 *   to a non-number (or NaN) crosses nothing.
 * - `watch[key] = f`: `f(proxy, key, value, previous)` on every change of `key`.
 * - `fn` (optional catch-all): `fn(proxy, key, value, previous)` on every change
 *   of a key that `watch` does not name.
 *
 * A change is a write (or `delete`, seen as a change to `undefined`) after
 * which the stored value differs from the previous one (`Object.is`); writing
 * the same value calls nothing. Watching is shallow: writes inside nested
 * objects are not seen (wrap them in their own proxy). `watch` is read once,
 * here. Watchers run synchronously in the writer's call; an exception from a
 * watcher propagates to the writer (the value stays written). Watchers that
 * write to the proxy trigger watchers again. `Object.defineProperty` on the
 * proxy is not watched.
 *
 * @throws TypeError when a watch entry is neither a function nor ascending finite
 *   thresholds followed by a function, or when `fn` is given and is not a function
 * @example
 * ```ts
 * import { proxy } from "./bundle_proxy.ts";
 * const seen: string[] = [];
 * const hero = proxy({ hp: 100, name: "Ada" }, {
 *   hp: [10, 50, (_p, edges) => seen.push(`hp ${edges.join(",")}`)],
 *   name: (_p, _key, value) => seen.push(`name ${value}`),
 * });
 * hero.hp = 40; // crosses 50 downwards
 * hero.hp = 30; // crosses nothing
 * hero.hp = 5; // crosses 10
 * hero.name = "Grace";
 * if (seen.join(";") !== "hp 50;hp 10;name Grace") throw new Error(seen.join(";"));
 * ```
 */
export function proxy<T extends object>(obj: T, watch: Watch<T>, fn?: ChangeWatcher<T>): T {
  if (typeof obj !== "object" || obj === null) {
    throw new TypeError(`bundle.proxy(obj, watch) needs an object; got ${describe(obj)}`);
  }
  if (fn !== undefined && typeof fn !== "function") {
    throw new TypeError(`bundle.proxy: the catch-all must be a function; got ${describe(fn)}`);
  }
  const entries = readWatch<T>(watch);
  const notify = (key: WatchKey, value: unknown, previous: unknown): void => {
    if (Object.is(value, previous)) return;
    const entry = entries.get(key);
    if (entry === undefined) {
      fn?.(wrapped, key, value, previous);
    } else if (entry.kind === "change") {
      entry.fn(wrapped, key, value, previous);
    } else {
      const edges = crossedEdges(entry.thresholds, previous, value);
      if (edges.length > 0) entry.fn(wrapped, edges, key, value, previous);
    }
  };
  const wrapped: T = new Proxy(obj, {
    set(target, key, value, receiver) {
      // A write through an object that inherits from the proxy lands on that object.
      if (receiver !== wrapped) return Reflect.set(target, key, value, receiver);
      const previous = Reflect.get(target, key, receiver);
      if (!Reflect.set(target, key, value, receiver)) return false;
      notify(key, Reflect.get(target, key, receiver), previous);
      return true;
    },
    deleteProperty(target, key) {
      if (!Object.hasOwn(target, key)) return Reflect.deleteProperty(target, key);
      const previous = Reflect.get(target, key, wrapped);
      if (!Reflect.deleteProperty(target, key)) return false;
      notify(key, Reflect.get(target, key, wrapped), previous);
      return true;
    },
  });
  return wrapped;
}

/**
 * The thresholds crossed when a value goes from `previous` to `value`, in
 * crossing order (see {@link proxy}); empty unless both are numbers.
 *
 * @example
 * ```ts
 * import { crossedEdges } from "./bundle_proxy.ts";
 * if (crossedEdges([10, 20, 30], 35, 15).join() !== "30,20") throw new Error("falling order");
 * ```
 */
export function crossedEdges(
  thresholds: readonly number[],
  previous: unknown,
  value: unknown,
): number[] {
  if (typeof previous !== "number" || typeof value !== "number") return [];
  const edges: number[] = [];
  if (value > previous) {
    for (const t of thresholds) if (previous < t && t <= value) edges.push(t);
  } else if (value < previous) {
    for (let i = thresholds.length - 1; i >= 0; i--) {
      const t = thresholds[i]!;
      if (value < t && t <= previous) edges.push(t);
    }
  }
  return edges; // NaN compares false both ways: nothing crossed
}

function readWatch<T extends object>(watch: Watch<T>): Map<WatchKey, Entry<T>> {
  if (typeof watch !== "object" || watch === null) {
    throw new TypeError(
      `bundle.proxy(obj, watch): watch must be an object; got ${describe(watch)}`,
    );
  }
  const entries = new Map<WatchKey, Entry<T>>();
  for (const key of Reflect.ownKeys(watch)) {
    const spec = (watch as Record<WatchKey, unknown>)[key];
    const name = String(key);
    if (typeof spec === "function") {
      entries.set(key, { kind: "change", fn: spec as ChangeWatcher<T> });
      continue;
    }
    if (!Array.isArray(spec) || spec.length < 2 || typeof spec[spec.length - 1] !== "function") {
      throw new TypeError(
        `bundle.proxy: watch "${name}" must be a function or [threshold, …, callback]; ` +
          `got ${describe(spec)}`,
      );
    }
    const thresholds = spec.slice(0, -1) as unknown[];
    thresholds.forEach((t, i) => {
      if (typeof t !== "number" || !Number.isFinite(t)) {
        throw new TypeError(
          `bundle.proxy: threshold ${i} of watch "${name}" must be a finite number; got ${
            describe(t)
          }`,
        );
      }
      const before = thresholds[i - 1] as number | undefined;
      if (before !== undefined && t <= before) {
        throw new TypeError(
          `bundle.proxy: thresholds of watch "${name}" must ascend; ${t} follows ${before}`,
        );
      }
    });
    entries.set(key, {
      kind: "edges",
      thresholds: thresholds as number[],
      fn: spec[spec.length - 1] as EdgeWatcher<T>,
    });
  }
  return entries;
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return `an array of ${value.length}`;
  if (typeof value === "string") return JSON.stringify(value);
  if (typeof value === "object" || typeof value === "function") return typeof value;
  return String(value);
}
