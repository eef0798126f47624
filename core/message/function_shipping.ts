/**
 * Functions as message values: sent as their source text and rebuilt on the
 * worker that runs them (the sandbox rule: a shipped function must not capture
 * outer variables; the platform's globals and JavaScript's own are not captures).
 *
 * A rebuilt function runs inside a scope that lets globals through and turns
 * any other free name into a `CapturedVariableError` naming it — so a closure
 * over an outer variable fails with a clear message instead of silently seeing
 * whatever the receiver happens to have.
 *
 * @module
 */
import { deserialize, serialize } from "node:v8";

/** Raised when a shipped function uses a name that is neither its own nor a global. */
export class CapturedVariableError extends ReferenceError {
  override name = "CapturedVariableError";
  constructor(variable: string, fn: string) {
    super(
      `Function ${fn} uses "${variable}", which is neither its own nor a global: functions ` +
        `sent between stages must not capture outer variables (pass the value as an argument)`,
    );
  }
}

/** Marker key of a shipped function inside packed values. */
const FUNCTION_MARK = "\u0000stage.function";

/** A function in transit. */
export interface ShippedFunction {
  [FUNCTION_MARK]: string;
  name: string;
}

const NATIVE = /\{\s*\[native code\]\s*\}\s*$/;

/**
 * Turns a function into its transportable form.
 *
 * @throws TypeError for native or bound functions and method shorthands, whose
 *   source cannot be rebuilt
 */
export function shipFunction(fn: (...args: never[]) => unknown): ShippedFunction {
  const source = Function.prototype.toString.call(fn);
  const name = fn.name || "<anonymous>";
  if (NATIVE.test(source)) {
    throw new TypeError(`Cannot send function ${name}: native and bound functions have no source`);
  }
  if (!/^(async\s+)?(function\b|\(|[\w$]+\s*=>|class\b)/.test(source)) {
    throw new TypeError(
      `Cannot send function ${name}: method shorthand cannot be rebuilt; use an arrow or function expression`,
    );
  }
  return { [FUNCTION_MARK]: source, name };
}

/** Whether a value is a {@link ShippedFunction}. */
export function isShippedFunction(value: unknown): value is ShippedFunction {
  return typeof value === "object" && value !== null && FUNCTION_MARK in value;
}

// Lets globals (JavaScript's and the platform's) through the `with` scope; any
// other free name is a capture. Names the function declares itself never reach it.
function sandboxScope(fnName: string): object {
  return new Proxy(Object.create(null), {
    has: (_target, key) => typeof key === "string" && !(key in globalThis),
    get: (_target, key) => {
      if (key === Symbol.unscopables) return undefined;
      throw new CapturedVariableError(String(key), fnName);
    },
    set: (_target, key) => {
      throw new CapturedVariableError(String(key), fnName);
    },
  });
}

/**
 * Rebuilds a shipped function in this isolate.
 *
 * @throws SyntaxError when the source does not parse
 * @example
 * ```ts
 * import { rebuildFunction, shipFunction } from "./function_shipping.ts";
 * const twice = rebuildFunction(shipFunction((n: number) => n * 2)) as (n: number) => number;
 * if (twice(21) !== 42) throw new Error("rebuilt wrong");
 * ```
 */
export function rebuildFunction(shipped: ShippedFunction): (...args: unknown[]) => unknown {
  const source = shipped[FUNCTION_MARK];
  let factory: (scope: object) => unknown;
  try {
    // A sloppy-mode Function body may use `with`; the function itself stays as written.
    factory = new Function(
      "__stage_scope__",
      `with (__stage_scope__) { return (${source}\n); }`,
    ) as (
      scope: object,
    ) => unknown;
  } catch (error) {
    throw new SyntaxError(`Cannot rebuild function ${shipped.name}: ${(error as Error).message}`, {
      cause: error,
    });
  }
  const fn = factory(sandboxScope(shipped.name));
  if (typeof fn !== "function") {
    throw new TypeError(`Cannot rebuild function ${shipped.name}: its source is not a function`);
  }
  return fn as (...args: unknown[]) => unknown;
}

function replaceFunctions(
  value: unknown,
  seen: Map<object, unknown>,
  found: { code: boolean },
): unknown {
  if (typeof value === "function") {
    found.code = true;
    return shipFunction(value as (...args: never[]) => unknown);
  }
  if (typeof value !== "object" || value === null) return value;
  if (seen.has(value)) return seen.get(value);
  if (Array.isArray(value)) {
    const copy: unknown[] = [];
    seen.set(value, copy);
    for (const item of value) copy.push(replaceFunctions(item, seen, found));
    return copy;
  }
  if (Object.getPrototypeOf(value) === Object.prototype) {
    const copy: Record<string, unknown> = {};
    seen.set(value, copy);
    for (const [key, item] of Object.entries(value)) {
      copy[key] = replaceFunctions(item, seen, found);
    }
    return copy;
  }
  return value; // Dates, Maps, typed arrays…: structured clone handles them
}

function restoreFunctions(value: unknown, seen: Set<object>): unknown {
  if (typeof value !== "object" || value === null || seen.has(value)) return value;
  if (isShippedFunction(value)) return rebuildFunction(value);
  seen.add(value);
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) value[i] = restoreFunctions(value[i], seen);
  } else if (Object.getPrototypeOf(value) === Object.prototype) {
    const record = value as Record<string, unknown>;
    for (const key of Object.keys(record)) record[key] = restoreFunctions(record[key], seen);
  }
  return value;
}

/** Packed message values and whether they carry code. */
export interface PackedValues {
  bytes: Uint8Array;
  hasCode: boolean;
}

/**
 * Serializes message values (structured clone), shipping functions as source.
 *
 * @throws DataCloneError-like errors for values structured clone refuses (e.g. symbols)
 */
export function packValues(values: readonly unknown[]): PackedValues {
  const found = { code: false };
  const prepared = replaceFunctions([...values], new Map(), found) as unknown[];
  return { bytes: serialize(prepared), hasCode: found.code };
}

/** Deserializes values packed by {@link packValues}, rebuilding functions. */
export function unpackValues(bytes: Uint8Array): unknown[] {
  return restoreFunctions(deserialize(bytes), new Set()) as unknown[];
}

/**
 * Deserializes values packed by {@link packValues} as data: shipped functions
 * stay {@link ShippedFunction} records (never evaluated here) and travel on as
 * such when packed again, to be rebuilt where they are meant to run. For code
 * outside the script sandbox (service stages on the main thread), which must
 * never evaluate source a script sent.
 *
 * @example
 * ```ts
 * import { isShippedFunction, packValues, unpackData } from "./function_shipping.ts";
 * const [value] = unpackData(packValues([(x: number) => x + 1]).bytes);
 * if (!isShippedFunction(value)) throw new Error("kept as a record");
 * ```
 */
export function unpackData(bytes: Uint8Array): unknown[] {
  return deserialize(bytes) as unknown[];
}

/**
 * Whether packed values carry a function (checked on the data, without
 * rebuilding anything): what a receiver that refuses remote code looks at,
 * since a sender's own claim cannot be trusted.
 *
 * @example
 * ```ts
 * import { carriesCode, packValues } from "./function_shipping.ts";
 * if (!carriesCode(packValues([{ run: () => 1 }]).bytes)) throw new Error("found");
 * if (carriesCode(packValues([{ n: 1 }]).bytes)) throw new Error("data only");
 * ```
 */
export function carriesCode(bytes: Uint8Array): boolean {
  const seen = new Set<object>();
  const visit = (value: unknown): boolean => {
    if (typeof value !== "object" || value === null || seen.has(value)) return false;
    if (isShippedFunction(value)) return true;
    seen.add(value);
    if (value instanceof Map) return [...value].some(([k, v]) => visit(k) || visit(v));
    if (value instanceof Set) return [...value].some(visit);
    return Object.values(value).some(visit);
  };
  return visit(deserialize(bytes));
}
