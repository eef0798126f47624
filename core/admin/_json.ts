/**
 * JSON responses of the admin API and the HTTP gateway: one replacer for the
 * values a stage reply may hold that `JSON.stringify` would drop or throw on.
 *
 * @module
 */

/** The content type of every JSON response. */
export const JSON_TYPE = "application/json; charset=utf-8";

/**
 * `JSON.stringify` replacer: bigint → decimal string, Error → `{ name, message }`
 * (never the stack), Map → object, Set → array, typed array → array of numbers.
 */
export function replacer(_key: string, value: unknown): unknown {
  if (typeof value === "bigint") return value.toString();
  if (value instanceof Error) return { name: value.name, message: value.message };
  if (value instanceof Map) return Object.fromEntries(value);
  if (value instanceof Set) return [...value];
  if (ArrayBuffer.isView(value) && !(value instanceof DataView)) {
    return Array.from(value as unknown as ArrayLike<number>);
  }
  return value;
}

/** A JSON response of `data` (through {@link replacer}). */
export function json(data: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(data, replacer), {
    status,
    headers: { "content-type": JSON_TYPE, ...headers },
  });
}
