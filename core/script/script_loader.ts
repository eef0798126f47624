/**
 * Finds stage scripts by name on the `%package` path and imports them, natively
 * (file URL, under `deno run`) or through the transpiler (`data:` URL, in a
 * compiled binary), reloading changed files for `stage.load`.
 *
 * @module
 */
import { isAbsolute, join, normalize } from "node:path";
import { pathToFileURL } from "node:url";
import type { Clock } from "../time/mod.ts";
import { denoScriptFiles, type ScriptFiles, type ScriptFileStat } from "./script_files.ts";
import { registerTranspiled, stripTypes, toDataUrl } from "./transpile.ts";

/** A parsed script reference: `"file"` or `"file+export"`. */
export interface ScriptSpec {
  file: string;
  exportName?: string;
}

/** `[position, path, mtime]`: where a loaded script was found. */
export type ScriptInfo = [position: number, path: string, mtime: number];

/** A loaded script value and where it came from. */
export interface LoadedScript {
  value: unknown;
  info: ScriptInfo;
}

/** Imports a module by URL (injected so tests can observe imports). */
export type ModuleImporter = (url: string) => Promise<Record<string, unknown>>;

/** Options of a {@link ScriptLoader}. */
export interface ScriptLoaderOptions {
  /** Absolute package directories, in search order (position 0 first). */
  packages: string[];
  /** Seconds between change checks for position-0 files (0 = every call). */
  reloadSeconds: number;
  /** Use the transpile + `data:` URL path instead of native import. */
  transpile: boolean;
  clock: Clock;
  files?: ScriptFiles;
  importModule?: ModuleImporter;
  /**
   * A changed file failed to load; the last good version keeps serving until the
   * file changes again. (Without a previous version, the load rejects instead.)
   */
  onReloadError?: (path: string, error: unknown) => void;
}

const EXTENSIONS = [".ts", ".js", ".mts", ".mjs", ".tsx", ".jsx"];

/**
 * Parses `"file"` / `"file+export"`.
 *
 * @throws TypeError when the name is empty, absolute or leaves the package path
 * @example
 * ```ts
 * import { parseScriptSpec } from "./script_loader.ts";
 * const spec = parseScriptSpec("handlers+onEcho");
 * if (spec.file !== "handlers" || spec.exportName !== "onEcho") throw new Error("bad parse");
 * ```
 */
export function parseScriptSpec(spec: string): ScriptSpec {
  if (typeof spec !== "string" || spec.length === 0) {
    throw new TypeError(
      `Cannot load script ${JSON.stringify(spec)}: expected "file" or "file+export"`,
    );
  }
  const plus = spec.indexOf("+");
  const file = plus < 0 ? spec : spec.slice(0, plus);
  const exportName = plus < 0 ? undefined : spec.slice(plus + 1);
  if (file.length === 0) {
    throw new TypeError(`Cannot load script "${spec}": empty file name before '+'`);
  }
  if (exportName !== undefined && exportName.length === 0) {
    throw new TypeError(`Cannot load script "${spec}": empty export name after '+'`);
  }
  if (isAbsolute(file) || normalize(file).split(/[\\/]/).includes("..")) {
    throw new TypeError(
      `Cannot load script "${spec}": a script name must stay inside the package path`,
    );
  }
  return exportName === undefined ? { file } : { file, exportName };
}

interface Entry {
  position: number;
  path: string;
  stat: ScriptFileStat;
  module: Record<string, unknown>;
  checkedAt: number;
}

/** Raised when no package directory holds the script. */
export class ScriptNotFoundError extends Error {
  override name = "ScriptNotFoundError";
  constructor(file: string, packages: string[], options?: ErrorOptions) {
    super(`Script "${file}" not found on the package path [${packages.join(", ")}]`, options);
  }
}

/**
 * Loads scripts by name. One instance per worker (each worker has its own module
 * instances — the sandbox rule).
 *
 * @example
 * ```ts ignore
 * const loader = new ScriptLoader({ packages: ["/srv/scripts"], reloadSeconds: 30, transpile: false, clock: systemClock });
 * const { value, info } = await loader.load("handlers+onEcho");
 * ```
 */
export class ScriptLoader {
  #options: ScriptLoaderOptions;
  #files: ScriptFiles;
  #import: ModuleImporter;
  #entries = new Map<string, Entry>();
  #inflight = new Map<string, Promise<Entry>>();
  #version = 0;

  constructor(options: ScriptLoaderOptions) {
    this.#options = options;
    this.#files = options.files ?? denoScriptFiles;
    this.#import = options.importModule ?? ((url) => import(url));
  }

  /** The package directories, in search order. */
  get packages(): readonly string[] {
    return this.#options.packages;
  }

  /**
   * Loads a script, importing it again when its size or mtime changed (checked
   * every `reloadSeconds` for position 0; on every call for higher positions,
   * which are fail-over copies).
   */
  load(spec: string): Promise<LoadedScript> {
    return this.#get(parseScriptSpec(spec), true);
  }

  /** Loads a script once; never reloads it. */
  require(spec: string): Promise<LoadedScript> {
    return this.#get(parseScriptSpec(spec), false);
  }

  /** Finds a script on the package path: its position, path and stat. */
  async resolve(file: string): Promise<{ position: number; path: string; stat: ScriptFileStat }> {
    const packages = this.#options.packages;
    const names = EXTENSIONS.some((ext) => file.endsWith(ext))
      ? [file]
      : [...EXTENSIONS.map((ext) => file + ext), join(file, "mod.ts")];
    for (let position = 0; position < packages.length; position++) {
      for (const name of names) {
        const path = join(packages[position]!, name);
        const stat = await this.#files.stat(path);
        if (stat !== undefined) return { position, path, stat };
      }
    }
    throw new ScriptNotFoundError(file, packages);
  }

  async #get(spec: ScriptSpec, reload: boolean): Promise<LoadedScript> {
    const entry = await this.#entry(spec.file, reload);
    const info: ScriptInfo = [entry.position, entry.path, entry.stat.mtime];
    if (spec.exportName === undefined) {
      const value = "default" in entry.module ? entry.module.default : entry.module;
      return { value, info };
    }
    if (!(spec.exportName in entry.module)) {
      throw new TypeError(
        `Script "${spec.file}" (${entry.path}) has no export named "${spec.exportName}"`,
      );
    }
    return { value: entry.module[spec.exportName], info };
  }

  #entry(file: string, reload: boolean): Promise<Entry> {
    const inflight = this.#inflight.get(file);
    if (inflight !== undefined) return inflight;
    const cached = this.#entries.get(file);
    if (cached !== undefined && !this.#dueForCheck(cached, reload)) return Promise.resolve(cached);
    const promise = this.#refresh(file, cached).finally(() => this.#inflight.delete(file));
    this.#inflight.set(file, promise);
    return promise;
  }

  #dueForCheck(entry: Entry, reload: boolean): boolean {
    if (!reload) return false;
    if (entry.position > 0) return true;
    const elapsed = this.#options.clock.now() - entry.checkedAt;
    return elapsed >= this.#options.reloadSeconds * 1000;
  }

  async #refresh(file: string, cached: Entry | undefined): Promise<Entry> {
    const now = this.#options.clock.now();
    let found;
    try {
      found = await this.resolve(file);
    } catch (error) {
      // A file that vanished keeps serving its last good version.
      if (cached !== undefined && error instanceof ScriptNotFoundError) {
        cached.checkedAt = now;
        return cached;
      }
      throw error;
    }
    if (
      cached !== undefined && cached.path === found.path &&
      cached.stat.size === found.stat.size && cached.stat.mtime === found.stat.mtime
    ) {
      cached.checkedAt = now;
      return cached;
    }
    let module: Record<string, unknown>;
    try {
      module = await this.#importFile(found.path, cached !== undefined);
    } catch (error) {
      if (cached === undefined) throw error;
      this.#options.onReloadError?.(found.path, error);
      // Remember the broken version's stat so it is not retried until it changes.
      Object.assign(cached, { position: found.position, path: found.path, stat: found.stat });
      cached.checkedAt = now;
      return cached;
    }
    const entry: Entry = { ...found, module, checkedAt: now };
    this.#entries.set(file, entry);
    return entry;
  }

  async #importFile(path: string, again: boolean): Promise<Record<string, unknown>> {
    const fileUrl = pathToFileURL(path).href;
    if (this.#options.transpile) {
      const source = await this.#files.readText(path);
      const dataUrl = toDataUrl(stripTypes(source, fileUrl));
      registerTranspiled(dataUrl, fileUrl);
      return await this.#import(dataUrl);
    }
    // A changed file needs a new module URL: the module map caches by URL.
    return await this.#import(again ? `${fileUrl}?v=${++this.#version}` : fileUrl);
  }
}
