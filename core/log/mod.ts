/**
 * Logging: LogTape configured once per isolate, a category per core folder.
 *
 * @module
 */
export {
  coreLogger,
  defaultLogOptions,
  type LogFormat,
  type LogOptions,
  setupLogging,
} from "./setup_logging.ts";
