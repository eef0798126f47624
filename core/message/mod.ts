/**
 * Messages between stages: error records (more arrives with the messaging core).
 *
 * @module
 */
export {
  type ErrorRecord,
  fromErrorRecord,
  registerErrorClass,
  toErrorRecord,
} from "./error_record.ts";
