/**
 * `bundle.viewof`: typed fixed-size record views over a binary file, with
 * changes kept in memory until `commit()` writes them (or `rollback()` drops them).
 *
 * @module
 */
import {
  denoRecordFiles,
  FileMissingError,
  FilePermissionError,
  type RecordFile,
  type RecordFiles,
} from "./bundle_files.ts";
import { type Layout, parseLayout } from "./bundle_layout.ts";
import { decodeRecord, encodeRecord, type RecordValues } from "./bundle_record.ts";

/**
 * Opens a view of `rows` records laid out as `struct`, from record `start` of
 * `file` (see {@link parseLayout} for the layout letters).
 *
 * - `start` (default 0) is a record index: row 0 of the view is the file's
 *   record `start`, at byte `start * recordSize`.
 * - `rows` defaults to the whole records from `start` to the end of the file. A
 *   view may reach past the end: those rows read as zeros (empty strings) until
 *   committed, which grows the file. With `rows` given, a missing file is created
 *   (this needs write permission).
 * - The file is opened for reading and writing when the worker may write it,
 *   otherwise read-only: `set` on a read-only view throws {@link FilePermissionError}.
 * - `get(row)` reads the row from the file on every call (so rows other workers
 *   committed are seen) unless this view changed it; `set(row, values)` keeps the
 *   new row in memory; `commit()` writes only the changed rows.
 *
 * @throws TypeError for a bad layout, `start` or `rows`
 * @throws FilePermissionError when the worker may not read `file`
 * @throws FileMissingError when `file` does not exist and `rows` is not given
 *   (or it cannot be created)
 * @example
 * ```ts ignore
 * const heroes = bundle.viewof("data/heroes.dat", "name:c10 hp:i", 0, 100);
 * heroes.set(3, { name: "Ada", hp: 120 });
 * heroes.commit();
 * heroes.close();
 * ```
 */
export function viewof(
  file: string,
  struct: string,
  start?: number,
  rows?: number,
  files: RecordFiles = denoRecordFiles,
): RecordView {
  if (typeof file !== "string" || file === "") {
    throw new TypeError(`bundle.viewof(file, struct): file must be a path; got ${String(file)}`);
  }
  const layout = parseLayout(struct);
  const first = start ?? 0;
  if (!Number.isSafeInteger(first) || first < 0) {
    throw new TypeError(
      `bundle.viewof("${file}"): start must be a record index >= 0; got ${start}`,
    );
  }
  if (rows !== undefined && (!Number.isSafeInteger(rows) || rows < 0)) {
    throw new TypeError(`bundle.viewof("${file}"): rows must be an integer >= 0; got ${rows}`);
  }
  const [handle, writeRefused] = openFile(files, file, rows !== undefined);
  let length = rows;
  if (length === undefined) {
    length = Math.max(0, Math.floor(handle.size() / layout.size) - first);
  }
  return new RecordView(file, layout, first, length, handle, writeRefused);
}

/** Opens read-write, or read-only (with the write refusal) when writing is not allowed. */
function openFile(
  files: RecordFiles,
  file: string,
  create: boolean,
): [RecordFile, FilePermissionError | undefined] {
  let writeRefused: FilePermissionError;
  try {
    return [files.open(file, { write: true, create }), undefined];
  } catch (error) {
    if (!(error instanceof FilePermissionError)) throw error;
    writeRefused = error;
  }
  try {
    return [files.open(file, { write: false, create: false }), writeRefused];
  } catch (error) {
    if (error instanceof FileMissingError && create) {
      throw new FileMissingError(
        file,
        { cause: writeRefused },
        "creating it needs write permission",
      );
    }
    throw error;
  }
}

/** A view of fixed-size records in a file (what `bundle.viewof` returns). */
export class RecordView implements Disposable {
  /** The file as given. */
  readonly file: string;
  /** The layout as written. */
  readonly struct: string;
  /** Bytes per record. */
  readonly recordSize: number;
  /** The file's record index of row 0. */
  readonly start: number;
  /** Number of rows. */
  readonly length: number;
  /** Whether the file was opened for writing. */
  readonly writable: boolean;
  #layout: Layout;
  #file: RecordFile | undefined;
  #writeRefused: FilePermissionError | undefined;
  #changed = new Map<number, Uint8Array>();

  constructor(
    file: string,
    layout: Layout,
    start: number,
    length: number,
    handle: RecordFile,
    writeRefused: FilePermissionError | undefined,
  ) {
    this.file = file;
    this.struct = layout.source;
    this.recordSize = layout.size;
    this.start = start;
    this.length = length;
    this.writable = writeRefused === undefined;
    this.#writeRefused = writeRefused;
    this.#layout = layout;
    this.#file = handle;
  }

  /** Field names, or `undefined` for an unnamed layout (rows are arrays). */
  get fields(): string[] | undefined {
    return this.#layout.named ? this.#layout.fields.map((f) => f.name!) : undefined;
  }

  /** Rows changed since the last commit or rollback. */
  get changed(): number {
    return this.#changed.size;
  }

  /**
   * A row's values: an array, or an object for a named layout.
   *
   * @throws RangeError when `row` is outside the view
   */
  get(row: number): RecordValues {
    return decodeRecord(this.#layout, this.#bytes(row));
  }

  /**
   * Changes a row in memory: an array sets every field, an object the fields it
   * names. Nothing reaches the file before {@link commit}. A bad value changes nothing.
   *
   * @throws RangeError when `row` is outside the view, or a value outside its field's range
   * @throws TypeError for a value of the wrong type or an unknown field
   * @throws FilePermissionError when the view is read-only
   */
  set(row: number, values: RecordValues): void {
    const refused = this.#writeRefused;
    if (refused !== undefined) {
      throw new FilePermissionError(this.file, "write", refused.bySystem, { cause: refused });
    }
    const bytes = this.#bytes(row).slice();
    encodeRecord(this.#layout, values, bytes, `bundle.viewof("${this.file}") row ${row}`);
    this.#changed.set(row, bytes);
  }

  /**
   * Writes the changed rows to the file (adjacent rows in one write); returns how
   * many. A failed write keeps the changes for another attempt.
   */
  commit(): number {
    const file = this.#open();
    const rows = [...this.#changed.keys()].sort((a, b) => a - b);
    const size = this.recordSize;
    for (let i = 0; i < rows.length;) {
      let j = i + 1;
      while (j < rows.length && rows[j] === rows[j - 1]! + 1) j++;
      const run = new Uint8Array((j - i) * size);
      for (let k = i; k < j; k++) run.set(this.#changed.get(rows[k]!)!, (k - i) * size);
      file.write((this.start + rows[i]!) * size, run);
      i = j;
    }
    this.#changed.clear();
    return rows.length;
  }

  /** Discards the changes since the last commit; returns how many rows were dropped. */
  rollback(): number {
    this.#open();
    const dropped = this.#changed.size;
    this.#changed.clear();
    return dropped;
  }

  /** Closes the file, discarding uncommitted changes. Closing twice does nothing. */
  close(): void {
    const file = this.#file;
    if (file === undefined) return;
    this.#file = undefined;
    this.#changed.clear();
    file.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }

  #open(): RecordFile {
    if (this.#file === undefined) throw new Error(`bundle.viewof("${this.file}") is closed`);
    return this.#file;
  }

  #bytes(row: number): Uint8Array {
    const file = this.#open();
    if (!Number.isInteger(row) || row < 0 || row >= this.length) {
      throw new RangeError(
        `Row ${row} is outside bundle.viewof("${this.file}") of ${this.length} rows`,
      );
    }
    const changed = this.#changed.get(row);
    if (changed !== undefined) return changed;
    const bytes = new Uint8Array(this.recordSize);
    file.read((this.start + row) * this.recordSize, bytes); // past the end: zeros
    return bytes;
  }
}
