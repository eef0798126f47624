/**
 * The file-system adapter of `bundle.viewof` (the only place it touches files):
 * synchronous positioned reads and writes through `Deno.openSync`.
 *
 * @module
 */

/** An open file, read and written at byte offsets. */
export interface RecordFile {
  /** The file's current size in bytes. */
  size(): number;
  /** Reads up to `into.length` bytes at `offset`; returns how many were read (fewer at the end). */
  read(offset: number, into: Uint8Array): number;
  /** Writes all of `bytes` at `offset` (the file grows as needed). */
  write(offset: number, bytes: Uint8Array): void;
  close(): void;
}

/** Opens files for {@link RecordFile} access. */
export interface RecordFiles {
  /**
   * Opens `path` for reading, and for writing when `write` is set (then
   * creating a missing file when `create` is set).
   *
   * @throws FilePermissionError when the worker may not read (or write) `path`
   * @throws FileMissingError when `path` does not exist (and is not created)
   */
  open(path: string, options: { write: boolean; create: boolean }): RecordFile;
}

/** Raised when a worker lacks the permission a file operation needs. */
export class FilePermissionError extends Error {
  override name = "FilePermissionError";
  /** The path as given. */
  readonly path: string;
  /** What was refused. */
  readonly permission: "read" | "write";
  /** Whether the operating system refused (file modes) rather than the worker's permissions. */
  readonly bySystem: boolean;

  /**
   * @param bySystem true when the operating system refused (file modes), not
   *   the worker's Deno permissions
   */
  constructor(
    path: string,
    permission: "read" | "write",
    bySystem = false,
    options?: ErrorOptions,
  ) {
    super(
      bySystem
        ? `Cannot ${permission} "${path}": the operating system denied ${permission} access`
        : `Cannot ${permission} "${path}": this worker has no ${permission} permission for it ` +
          `(list the file or its folder in "%permissions": { "${permission}": [...] } of the ` +
          `script section in stage.json)`,
      options,
    );
    this.path = path;
    this.permission = permission;
    this.bySystem = bySystem;
  }
}

/** Raised when a file to open does not exist. */
export class FileMissingError extends Error {
  override name = "FileMissingError";
  readonly path: string;

  /** @param hint appended in parentheses, e.g. why the file was not created */
  constructor(path: string, options?: ErrorOptions, hint?: string) {
    super(`Cannot open "${path}": no such file${hint === undefined ? "" : ` (${hint})`}`, options);
    this.path = path;
  }
}

/** The real file system. */
export const denoRecordFiles: RecordFiles = {
  open(path, { write, create }) {
    let file: Deno.FsFile;
    try {
      file = Deno.openSync(path, { read: true, write, create: write && create });
    } catch (error) {
      throw translate(error, path, write ? "write" : "read");
    }
    return {
      size: () => file.statSync().size,
      read(offset, into) {
        file.seekSync(offset, Deno.SeekMode.Start);
        let done = 0;
        while (done < into.length) {
          const n = file.readSync(into.subarray(done));
          if (n === null) break;
          done += n;
        }
        return done;
      },
      write(offset, bytes) {
        file.seekSync(offset, Deno.SeekMode.Start);
        let done = 0;
        while (done < bytes.length) done += file.writeSync(bytes.subarray(done));
      },
      close: () => file.close(),
    };
  },
};

function translate(error: unknown, path: string, permission: "read" | "write"): unknown {
  if (error instanceof Deno.errors.NotCapable) {
    return new FilePermissionError(path, permission, false, { cause: error });
  }
  if (error instanceof Deno.errors.PermissionDenied) {
    return new FilePermissionError(path, permission, true, { cause: error });
  }
  if (error instanceof Deno.errors.NotFound) return new FileMissingError(path, { cause: error });
  return error;
}
