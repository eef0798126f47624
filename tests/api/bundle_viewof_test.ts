/**
 * bundle.viewof: layouts, typed rows, commit/rollback, permissions — over an
 * in-memory file system, then over a real temporary file.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  denoRecordFiles,
  FileMissingError,
  FilePermissionError,
  type RecordFile,
  type RecordFiles,
} from "../../core/api/bundle_files.ts";
import { parseLayout } from "../../core/api/bundle_layout.ts";
import { viewof } from "../../core/api/bundle_viewof.ts";

/** An in-memory file system with per-file permissions and a log of writes. */
class MemoryFiles implements RecordFiles {
  files = new Map<string, Uint8Array>();
  readable = new Set<string>();
  writable = new Set<string>();
  writes: Array<{ path: string; offset: number; length: number }> = [];
  /** Handles open now. */
  handles = 0;

  put(path: string, bytes: Uint8Array, access: "r" | "rw" = "rw"): void {
    this.files.set(path, bytes);
    this.readable.add(path);
    if (access === "rw") this.writable.add(path);
  }

  open(path: string, { write, create }: { write: boolean; create: boolean }): RecordFile {
    if (!this.readable.has(path)) throw new FilePermissionError(path, write ? "write" : "read");
    if (write && !this.writable.has(path)) throw new FilePermissionError(path, "write");
    if (!this.files.has(path)) {
      if (!(write && create)) throw new FileMissingError(path);
      this.files.set(path, new Uint8Array(0));
    }
    this.handles++;
    let closed = false;
    const live = () => {
      if (closed) throw new Error("used after close");
      return this.files.get(path)!;
    };
    return {
      size: () => live().length,
      read: (offset, into) => {
        const part = live().subarray(offset, offset + into.length);
        into.set(part);
        return part.length;
      },
      write: (offset, bytes) => {
        if (!write) throw new Error("write on a read-only handle");
        const data = live();
        const grown = new Uint8Array(Math.max(data.length, offset + bytes.length));
        grown.set(data);
        grown.set(bytes, offset);
        this.files.set(path, grown);
        this.writes.push({ path, offset, length: bytes.length });
      },
      close: () => {
        live();
        closed = true;
        this.handles--;
      },
    };
  }
}

function memoryFiles(): MemoryFiles {
  return new MemoryFiles();
}

/** Two records of "c4 b s i d" (19 bytes each), written by hand, little-endian. */
function twoRecords(): Uint8Array {
  const bytes = new Uint8Array(38);
  const view = new DataView(bytes.buffer);
  bytes.set(new TextEncoder().encode("ab"), 0);
  view.setInt8(4, -5);
  view.setInt16(5, -300, true);
  view.setInt32(7, 123456789, true);
  view.setFloat64(11, 2.5, true);
  bytes.set(new TextEncoder().encode("wxyz"), 19);
  view.setInt8(23, 127);
  view.setInt16(24, 32767, true);
  view.setInt32(26, -1, true);
  view.setFloat64(30, -0.125, true);
  return bytes;
}

Deno.test("bundle.viewof get reads little-endian rows as laid out by the struct", () => {
  const files = memoryFiles();
  files.put("t.dat", twoRecords());
  using view = viewof("t.dat", "c4 b s i d", undefined, undefined, files);
  assert.equal(view.recordSize, 19);
  assert.equal(view.length, 2);
  assert.equal(view.fields, undefined);
  assert.deepEqual(view.get(0), ["ab", -5, -300, 123456789, 2.5]);
  assert.deepEqual(view.get(1), ["wxyz", 127, 32767, -1, -0.125]);
  assert.throws(() => view.get(2), /Row 2 is outside bundle.viewof\("t.dat"\) of 2 rows/);
  assert.throws(() => view.get(-1), RangeError);
});

Deno.test("bundle.viewof set stays in memory until commit writes only the changed rows", () => {
  const files = memoryFiles();
  files.put("t.dat", new Uint8Array(4 * 10)); // ten int32 records
  using view = viewof("t.dat", "i", 0, undefined, files);
  view.set(2, [7]);
  view.set(3, [8]);
  view.set(7, [9]);
  view.set(7, [10]); // the last set wins
  assert.deepEqual(view.get(7), [10], "a view sees its own changes");
  assert.equal(view.changed, 3);
  assert.deepEqual(files.writes, [], "nothing written before commit");
  using other = viewof("t.dat", "i", 0, undefined, files);
  assert.deepEqual(other.get(2), [0], "other views see the file");
  assert.equal(view.commit(), 3);
  assert.deepEqual(files.writes, [
    { path: "t.dat", offset: 8, length: 8 }, // rows 2 and 3 in one write
    { path: "t.dat", offset: 28, length: 4 },
  ]);
  assert.deepEqual([other.get(2), other.get(3), other.get(7), other.get(4)], [[7], [8], [10], [0]]);
  assert.equal(view.changed, 0);
  assert.equal(view.commit(), 0, "nothing left to write");
});

Deno.test("bundle.viewof rollback discards uncommitted changes and keeps committed ones", () => {
  const files = memoryFiles();
  files.put("t.dat", new Uint8Array(8));
  using view = viewof("t.dat", "i", undefined, undefined, files);
  view.set(0, [1]);
  view.commit();
  view.set(0, [2]);
  view.set(1, [3]);
  assert.equal(view.rollback(), 2);
  assert.deepEqual([view.get(0), view.get(1)], [[1], [0]]);
  assert.equal(files.writes.length, 1);
});

Deno.test("bundle.viewof named layouts read objects and set only the fields named", () => {
  const files = memoryFiles();
  files.put("heroes.dat", new Uint8Array(0));
  using view = viewof("heroes.dat", "name:c10 hp:i x2 speed:f", 0, 3, files);
  assert.deepEqual(view.fields, ["name", "hp", "speed"]);
  assert.equal(view.recordSize, 20);
  assert.deepEqual(view.get(1), { name: "", hp: 0, speed: 0 }, "past the end reads zeros");
  view.set(1, { name: "Ada", hp: 100, speed: 1.5 });
  view.set(1, { hp: 90 });
  assert.deepEqual(view.get(1), { name: "Ada", hp: 90, speed: 1.5 });
  view.commit();
  assert.equal(files.files.get("heroes.dat")!.length, 40, "the file grew to the end of row 1");
  assert.throws(() => view.set(1, { mana: 5 }), /has no field "mana"/);
  assert.throws(() => view.set(1, ["Ada", 1]), /has 3 fields; got 2 values/);
});

Deno.test("bundle.viewof start and rows select a window of records", () => {
  const files = memoryFiles();
  const bytes = new Uint8Array(2 * 6);
  const data = new DataView(bytes.buffer);
  for (let i = 0; i < 6; i++) data.setInt16(i * 2, i * 10, true);
  files.put("t.dat", bytes);
  using tail = viewof("t.dat", "s", 4, undefined, files);
  assert.equal(tail.length, 2);
  assert.deepEqual([tail.get(0), tail.get(1)], [[40], [50]]);
  using middle = viewof("t.dat", "s", 1, 2, files);
  middle.set(1, [-7]);
  middle.commit();
  assert.deepEqual(files.writes, [{ path: "t.dat", offset: 4, length: 2 }], "record 2 of the file");
  using past = viewof("t.dat", "s", 10, undefined, files);
  assert.equal(past.length, 0);
  assert.throws(() => viewof("t.dat", "s", -1, undefined, files), /start must be a record index/);
  assert.throws(() => viewof("t.dat", "s", 0, 1.5, files), /rows must be an integer/);
});

Deno.test("bundle.viewof round-trips every field type and checks ranges without changing the row", () => {
  const files = memoryFiles();
  files.put("t.dat", new Uint8Array(0));
  using view = viewof("t.dat", "c3 b B s S i I l L q Q f d", 0, 1, files);
  const values = [
    "€", // 3 bytes of UTF-8
    -128,
    255,
    -32768,
    65535,
    -(2 ** 31),
    2 ** 32 - 1,
    Number.MIN_SAFE_INTEGER,
    Number.MAX_SAFE_INTEGER,
    -(2n ** 63n),
    2n ** 64n - 1n,
    0.5,
    Math.PI,
  ];
  view.set(0, values);
  view.commit();
  using again = viewof("t.dat", "c3 b B s S i I l L q Q f d", 0, undefined, files);
  assert.deepEqual(again.get(0), values);
  const bad: Array<[number, unknown, RegExp]> = [
    [0, "abcd", /field 0 \(c3\) holds 3 bytes; "abcd" is 4/],
    [0, 5, /takes a string; got number/],
    [1, 128, /takes integers from -128 to 127; got 128/],
    [2, -1, /from 0 to 255/],
    [5, 1.5, /got 1.5/],
    [8, 2 ** 53, /got 9007199254740992/],
    [9, 2n ** 63n, /out of range/],
    [10, -1n, /out of range/],
    [11, "1", /takes a number/],
  ];
  for (const [index, value, message] of bad) {
    const row: unknown[] = [...values];
    row[index] = value;
    assert.throws(() => view.set(0, row), message);
  }
  view.set(0, values.map((v, i) => (i === 1 ? 1 : v)));
  // One bad field among good ones: the whole set is refused.
  assert.throws(() => view.set(0, values.map((v, i) => (i === 1 ? 2 : i === 2 ? 256 : v))), /255/);
  assert.equal((view.get(0) as unknown[])[1], 1, "the bad set changed nothing");
});

Deno.test("bundle.viewof layouts: errors name the layout and what is wrong", () => {
  assert.equal(parseLayout("c10id").size, 22, "fields may be written together");
  const bad: Array<[string, RegExp]> = [
    ["c2 i z", /cannot read layout "c2 i z" at "z"/],
    ["i c", /field "c" in layout "i c" needs a length/],
    ["i4", /field "i4" in layout "i4" takes no length/],
    ["a:i d", /names some fields but not all/],
    ["a:i a:d", /field name "a" appears twice/],
    ["x4", /has no value fields/],
    ["c0", /is empty/],
    ["pad:x2 i", /padding "x" .* cannot have a name/],
  ];
  for (const [layout, message] of bad) {
    assert.throws(() => parseLayout(layout), (error: Error) => {
      assert.ok(error instanceof TypeError);
      assert.match(error.message, message);
      return true;
    });
  }
});

Deno.test("bundle.viewof without write permission opens read-only; set names the file and permission", () => {
  const files = memoryFiles();
  files.put("ro.dat", new Uint8Array(4), "r");
  using view = viewof("ro.dat", "i", undefined, undefined, files);
  assert.equal(view.writable, false);
  assert.deepEqual(view.get(0), [0]);
  assert.throws(() => view.set(0, [1]), (error: Error) => {
    assert.ok(error instanceof FilePermissionError);
    assert.equal(error.permission, "write");
    assert.match(error.message, /Cannot write "ro.dat": this worker has no write permission/);
    assert.match(error.message, /%permissions/);
    return true;
  });
  // Refused by the operating system (file modes), the error says so instead.
  const osFiles = memoryFiles();
  osFiles.put("mode.dat", new Uint8Array(4), "r");
  osFiles.open = function (path, options) {
    if (options.write) throw new FilePermissionError(path, "write", true);
    return MemoryFiles.prototype.open.call(this, path, options);
  };
  using modeView = viewof("mode.dat", "i", undefined, undefined, osFiles);
  assert.throws(
    () => modeView.set(0, [1]),
    /Cannot write "mode.dat": the operating system denied write access/,
  );
});

Deno.test("bundle.viewof without read permission, or on a missing file, fails naming the file", () => {
  const files = memoryFiles();
  assert.throws(() => viewof("secret.dat", "i", undefined, undefined, files), (error: Error) => {
    assert.ok(error instanceof FilePermissionError);
    assert.equal(error.permission, "read");
    assert.match(error.message, /Cannot read "secret.dat": this worker has no read permission/);
    return true;
  });
  files.readable.add("new.dat");
  files.writable.add("new.dat");
  assert.throws(() => viewof("new.dat", "i", undefined, undefined, files), FileMissingError);
  using created = viewof("new.dat", "i", 0, 2, files);
  assert.equal(created.length, 2, "with rows, a missing file is created");
  files.readable.add("ro-new.dat");
  assert.throws(
    () => viewof("ro-new.dat", "i", 0, 2, files),
    /Cannot open "ro-new.dat": no such file \(creating it needs write permission\)/,
  );
  assert.throws(() => viewof("", "i", undefined, undefined, files), /file must be a path/);
});

Deno.test("bundle.viewof close releases the file, drops changes and ends the view", () => {
  const files = memoryFiles();
  files.put("t.dat", new Uint8Array(4));
  const view = viewof("t.dat", "i", undefined, undefined, files);
  view.set(0, [5]);
  view.close();
  view.close(); // twice is fine
  assert.equal(files.handles, 0);
  assert.deepEqual(files.writes, [], "uncommitted changes are dropped");
  assert.throws(() => view.get(0), /bundle.viewof\("t.dat"\) is closed/);
  assert.throws(() => view.commit(), /is closed/);
});

Deno.test("bundle.viewof over a real temporary file commits rows another view reads back", async () => {
  const dir = await Deno.makeTempDir({ prefix: "stage-viewof-" });
  try {
    const path = join(dir, "scores.dat");
    {
      using view = viewof(path, "id:I score:d", 0, 3, denoRecordFiles);
      view.set(0, { id: 1, score: 9.5 });
      view.set(2, { id: 3, score: -1 });
      assert.equal(view.commit(), 2);
    }
    const bytes = await Deno.readFile(path);
    assert.equal(bytes.length, 36, "rows 0..2 of 12 bytes (row 1 is a zero gap)");
    assert.equal(new DataView(bytes.buffer).getUint32(24, true), 3);
    using again = viewof(path, "id:I score:d", undefined, undefined, denoRecordFiles);
    assert.equal(again.length, 3);
    assert.deepEqual(again.get(0), { id: 1, score: 9.5 });
    assert.deepEqual(again.get(1), { id: 0, score: 0 });
    assert.deepEqual(again.get(2), { id: 3, score: -1 });
    assert.throws(
      () => viewof(join(dir, "missing.dat"), "i", undefined, undefined, denoRecordFiles),
      /Cannot open ".*missing.dat": no such file/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
