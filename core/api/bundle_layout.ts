/**
 * Record layouts of `bundle.viewof`: a string such as `"c10 i d"` or
 * `"name:c10 hp:i x2 speed:f"` describing a fixed-size little-endian record
 * (encoded and decoded by `bundle_record.ts`).
 *
 * | letter | field | value |
 * |---|---|---|
 * | `c<n>` | `n` bytes of UTF-8 text, NUL-padded | string (read up to the first NUL) |
 * | `b` / `B` | int8 / uint8 | number |
 * | `s` / `S` | int16 / uint16 | number |
 * | `i` / `I` | int32 / uint32 | number |
 * | `l` / `L` | int64 / uint64 | number (written: a safe integer; read: rounded beyond 2^53) |
 * | `q` / `Q` | int64 / uint64 | bigint |
 * | `f` / `d` | float32 / float64 | number |
 * | `x<n>` | `n` padding bytes (default 1), not a value | — |
 *
 * Fields are separated by spaces (or written together: `"c10id"`). Either every
 * value field has a `name:` (a record is then an object) or none has (an array).
 *
 * @module
 */

/** The letter of a field type. */
export type FieldType = "c" | "b" | "B" | "s" | "S" | "i" | "I" | "l" | "L" | "q" | "Q" | "f" | "d";

/** One value field of a layout. */
export interface Field {
  name: string | undefined;
  type: FieldType;
  /** Byte offset inside the record. */
  offset: number;
  /** Byte length. */
  size: number;
}

/** A parsed layout. */
export interface Layout {
  /** The layout as written. */
  source: string;
  /** Value fields in order (padding excluded). */
  fields: Field[];
  /** Bytes per record. */
  size: number;
  /** Whether fields are named (records are objects) or not (arrays). */
  named: boolean;
}

const SIZES: Record<string, number> = {
  b: 1,
  B: 1,
  s: 2,
  S: 2,
  i: 4,
  I: 4,
  l: 8,
  L: 8,
  q: 8,
  Q: 8,
  f: 4,
  d: 8,
};
const TOKEN = /\s*(?:([A-Za-z_$][\w$]*):)?([cbBsSiIlLqQfdx])(\d*)\s*/y;

/**
 * Parses a layout string.
 *
 * @throws TypeError naming the layout and the position of anything it cannot read
 * @example
 * ```ts
 * import { parseLayout } from "./bundle_layout.ts";
 * const layout = parseLayout("name:c10 hp:i x2 speed:d");
 * if (layout.size !== 24 || layout.fields.length !== 3) throw new Error("wrong layout");
 * ```
 */
export function parseLayout(source: string): Layout {
  if (typeof source !== "string") {
    throw new TypeError(
      `bundle.viewof: the layout must be a string such as "c10 i d"; got ${typeof source}`,
    );
  }
  const fields: Field[] = [];
  const names = new Set<string>();
  let offset = 0;
  TOKEN.lastIndex = 0;
  while (TOKEN.lastIndex < source.length) {
    const at = TOKEN.lastIndex;
    const match = TOKEN.exec(source);
    if (match === null) {
      throw new TypeError(
        `bundle.viewof: cannot read layout "${source}" at ${JSON.stringify(source.slice(at))} ` +
          `(fields: c<n> b B s S i I l L q Q f d x<n>, optionally "name:" before)`,
      );
    }
    const [, name, letter, digits] = match as unknown as [
      string,
      string | undefined,
      string,
      string,
    ];
    if (letter === "x") {
      if (name !== undefined) {
        throw new TypeError(`bundle.viewof: padding "x" in layout "${source}" cannot have a name`);
      }
      offset += digits === "" ? 1 : positive(digits, source, letter);
      continue;
    }
    let size: number;
    if (letter === "c") {
      if (digits === "") {
        throw new TypeError(`bundle.viewof: field "c" in layout "${source}" needs a length (c10)`);
      }
      size = positive(digits, source, letter);
    } else {
      if (digits !== "") {
        throw new TypeError(
          `bundle.viewof: field "${letter}${digits}" in layout "${source}" takes no length`,
        );
      }
      size = SIZES[letter]!;
    }
    if (name !== undefined) {
      if (names.has(name)) {
        throw new TypeError(
          `bundle.viewof: field name "${name}" appears twice in layout "${source}"`,
        );
      }
      names.add(name);
    }
    fields.push({ name, type: letter as FieldType, offset, size });
    offset += size;
  }
  if (fields.length === 0) {
    throw new TypeError(`bundle.viewof: layout "${source}" has no value fields`);
  }
  const named = names.size > 0;
  if (named && names.size !== fields.length) {
    throw new TypeError(
      `bundle.viewof: layout "${source}" names some fields but not all: name every field or none`,
    );
  }
  return { source, fields, size: offset, named };
}

function positive(digits: string, source: string, letter: string): number {
  const n = Number(digits);
  if (n < 1) {
    throw new TypeError(`bundle.viewof: "${letter}${digits}" in layout "${source}" is empty`);
  }
  return n;
}
