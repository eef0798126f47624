/**
 * The script loader: `%package` search path, hot reload, native or transpiled import.
 *
 * @module
 */
export {
  type LoadedScript,
  type ModuleImporter,
  parseScriptSpec,
  type ScriptInfo,
  ScriptLoader,
  type ScriptLoaderOptions,
  ScriptNotFoundError,
  type ScriptSpec,
} from "./script_loader.ts";
export { denoScriptFiles, type ScriptFiles, type ScriptFileStat } from "./script_files.ts";
export {
  isCompiledBinary,
  originalUrl,
  registerTranspiled,
  stripTypes,
  toDataUrl,
} from "./transpile.ts";
