/**
 * The file-system adapter of the script loader (the only place it touches files).
 *
 * @module
 */

/** Size and modification time of a script file. */
export interface ScriptFileStat {
  size: number;
  mtime: number;
}

/** What the script loader needs from the file system. */
export interface ScriptFiles {
  /** Stats a file; `undefined` when it does not exist or is not a file. */
  stat(path: string): Promise<ScriptFileStat | undefined>;
  readText(path: string): Promise<string>;
}

/** The real file system through `Deno.stat` / `Deno.readTextFile`. */
export const denoScriptFiles: ScriptFiles = {
  async stat(path) {
    try {
      const info = await Deno.stat(path);
      if (!info.isFile) return undefined;
      return { size: info.size, mtime: info.mtime?.getTime() ?? 0 };
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return undefined;
      throw error;
    }
  },
  readText: (path) => Deno.readTextFile(path),
};
