/**
 * Errors as plain data, for crossing a thread or process boundary.
 *
 * Custom Error classes do not survive structured cloning, so an error travels as
 * an {@link ErrorRecord} and is rebuilt on the other side from a registry keyed by
 * `name`.
 *
 * @module
 */

/** An error as plain, cloneable data. */
export interface ErrorRecord {
  name: string;
  message: string;
  code?: string;
  stack?: string;
}

type ErrorConstructorLike = new (message: string) => Error;

const registry = new Map<string, ErrorConstructorLike>([
  ["Error", Error],
  ["TypeError", TypeError],
  ["RangeError", RangeError],
  ["SyntaxError", SyntaxError],
  ["ReferenceError", ReferenceError],
]);

/**
 * Registers an error class so {@link fromErrorRecord} rebuilds it by name.
 *
 * @param name the value of the class's `name` property
 * @param ctor a constructor taking the message
 */
export function registerErrorClass(name: string, ctor: ErrorConstructorLike): void {
  registry.set(name, ctor);
}

/**
 * Turns anything thrown into an {@link ErrorRecord}.
 *
 * @example
 * ```ts
 * import { toErrorRecord } from "./error_record.ts";
 * const record = toErrorRecord(new RangeError("too big"));
 * if (record.name !== "RangeError" || record.message !== "too big") throw new Error("lost");
 * ```
 */
export function toErrorRecord(error: unknown): ErrorRecord {
  if (error instanceof Error) {
    const record: ErrorRecord = { name: error.name, message: error.message };
    const code = (error as { code?: unknown }).code;
    if (typeof code === "string") record.code = code;
    if (error.stack !== undefined) record.stack = error.stack;
    return record;
  }
  return { name: "Error", message: String(error) };
}

/**
 * Rebuilds an Error from a record: the registered class for its name, or a plain
 * Error with that name.
 */
export function fromErrorRecord(record: ErrorRecord): Error {
  const Ctor = registry.get(record.name) ?? Error;
  const error = new Ctor(record.message);
  // Classes whose constructors compose their own message get the original back.
  if (error.message !== record.message) error.message = record.message;
  if (error.name !== record.name) error.name = record.name;
  if (record.code !== undefined) (error as Error & { code?: string }).code = record.code;
  if (record.stack !== undefined) error.stack = record.stack;
  return error;
}
