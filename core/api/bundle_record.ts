/**
 * One record of a `bundle.viewof` layout to and from bytes (little-endian).
 *
 * @module
 */
import type { Field, FieldType, Layout } from "./bundle_layout.ts";

/** A record's values: an array for unnamed layouts, an object for named ones. */
export type RecordValues = unknown[] | Record<string, unknown>;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * Decodes one record.
 *
 * @example
 * ```ts
 * import { parseLayout } from "./bundle_layout.ts";
 * import { decodeRecord, encodeRecord } from "./bundle_record.ts";
 * const layout = parseLayout("name:c4 hp:s");
 * const bytes = new Uint8Array(layout.size);
 * encodeRecord(layout, { name: "Ada", hp: 7 }, bytes, "row 0");
 * const row = decodeRecord(layout, bytes) as { name: string; hp: number };
 * if (row.name !== "Ada" || row.hp !== 7) throw new Error("round trip failed");
 * ```
 */
export function decodeRecord(layout: Layout, bytes: Uint8Array): RecordValues {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const values = layout.fields.map((field) => readField(view, bytes, field));
  if (!layout.named) return values;
  const record: Record<string, unknown> = {};
  layout.fields.forEach((field, i) => record[field.name!] = values[i]);
  return record;
}

/**
 * Encodes values into a record's bytes in place: an array sets every field (its
 * length must match), an object sets the fields it names (others keep their bytes).
 *
 * @param where names the record in errors, e.g. `row 3 of "hero.dat"`
 * @throws TypeError for a value of the wrong type, an unknown name or a wrong array length
 * @throws RangeError for a number outside its field's range or text longer than its field
 */
export function encodeRecord(
  layout: Layout,
  values: RecordValues,
  bytes: Uint8Array,
  where: string,
): void {
  const assign: Array<[Field, unknown]> = [];
  if (Array.isArray(values)) {
    if (values.length !== layout.fields.length) {
      throw new TypeError(
        `${where}: layout "${layout.source}" has ${layout.fields.length} fields; got ${values.length} values`,
      );
    }
    layout.fields.forEach((field, i) => assign.push([field, values[i]]));
  } else if (typeof values === "object" && values !== null) {
    for (const [name, value] of Object.entries(values)) {
      const field = layout.fields.find((f) => f.name === name);
      if (field === undefined) {
        throw new TypeError(`${where}: layout "${layout.source}" has no field "${name}"`);
      }
      assign.push([field, value]);
    }
  } else {
    throw new TypeError(`${where}: values must be an array or an object; got ${String(values)}`);
  }
  // Check everything before writing anything: a bad value leaves the record as it was.
  const copy = bytes.slice();
  const copyView = new DataView(copy.buffer);
  for (const [field, value] of assign) writeField(copyView, copy, field, value, where);
  bytes.set(copy);
}

function readField(view: DataView, bytes: Uint8Array, field: Field): unknown {
  const at = field.offset;
  switch (field.type) {
    case "c": {
      const text = bytes.subarray(at, at + field.size);
      const end = text.indexOf(0);
      return decoder.decode(end < 0 ? text : text.subarray(0, end));
    }
    case "b":
      return view.getInt8(at);
    case "B":
      return view.getUint8(at);
    case "s":
      return view.getInt16(at, true);
    case "S":
      return view.getUint16(at, true);
    case "i":
      return view.getInt32(at, true);
    case "I":
      return view.getUint32(at, true);
    case "l":
      return Number(view.getBigInt64(at, true));
    case "L":
      return Number(view.getBigUint64(at, true));
    case "q":
      return view.getBigInt64(at, true);
    case "Q":
      return view.getBigUint64(at, true);
    case "f":
      return view.getFloat32(at, true);
    case "d":
      return view.getFloat64(at, true);
  }
}

const INT_RANGES: Partial<Record<FieldType, [number, number]>> = {
  b: [-128, 127],
  B: [0, 255],
  s: [-32768, 32767],
  S: [0, 65535],
  i: [-(2 ** 31), 2 ** 31 - 1],
  I: [0, 2 ** 32 - 1],
  l: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
  L: [0, Number.MAX_SAFE_INTEGER],
};

function writeField(
  view: DataView,
  bytes: Uint8Array,
  field: Field,
  value: unknown,
  where: string,
) {
  const at = field.offset;
  const label =
    `${where}: field ${field.name === undefined ? `${field.offset}` : `"${field.name}"`}` +
    ` (${field.type}${field.type === "c" ? field.size : ""})`;
  if (field.type === "c") {
    if (typeof value !== "string") {
      throw new TypeError(`${label} takes a string; got ${typeof value}`);
    }
    const text = encoder.encode(value);
    if (text.length > field.size) {
      throw new RangeError(
        `${label} holds ${field.size} bytes; ${JSON.stringify(value)} is ${text.length}`,
      );
    }
    bytes.fill(0, at, at + field.size);
    bytes.set(text, at);
    return;
  }
  if (field.type === "q" || field.type === "Q") {
    const big = typeof value === "bigint"
      ? value
      : typeof value === "number" && Number.isInteger(value)
      ? BigInt(value)
      : undefined;
    if (big === undefined) throw new TypeError(`${label} takes a bigint; got ${String(value)}`);
    const fits = field.type === "q"
      ? BigInt.asIntN(64, big) === big
      : BigInt.asUintN(64, big) === big;
    if (!fits) throw new RangeError(`${label}: ${big} is out of range`);
    if (field.type === "q") view.setBigInt64(at, big, true);
    else view.setBigUint64(at, big, true);
    return;
  }
  if (typeof value !== "number") {
    throw new TypeError(`${label} takes a number; got ${typeof value}`);
  }
  const range = INT_RANGES[field.type];
  if (range !== undefined && (!Number.isInteger(value) || value < range[0] || value > range[1])) {
    throw new RangeError(`${label} takes integers from ${range[0]} to ${range[1]}; got ${value}`);
  }
  switch (field.type) {
    case "b":
      return view.setInt8(at, value);
    case "B":
      return view.setUint8(at, value);
    case "s":
      return view.setInt16(at, value, true);
    case "S":
      return view.setUint16(at, value, true);
    case "i":
      return view.setInt32(at, value, true);
    case "I":
      return view.setUint32(at, value, true);
    case "l":
      return view.setBigInt64(at, BigInt(value), true);
    case "L":
      return view.setBigUint64(at, BigInt(value), true);
    case "f":
      return view.setFloat32(at, value, true);
    case "d":
      return view.setFloat64(at, value, true);
  }
}
