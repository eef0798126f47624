/**
 * Messages between stages: the signal address grammar, waitfor lookup order and
 * error records that cross thread and process boundaries.
 *
 * @module
 */
export {
  type ErrorRecord,
  fromErrorRecord,
  registerErrorClass,
  toErrorRecord,
} from "./error_record.ts";
export {
  CATCH_ALL_WAITFOR,
  lookupChain,
  type MessageParts,
  parseTarget,
  type Target,
  type TargetScope,
} from "./target.ts";
export { type Waitfor, WaitforRegistry } from "./waitfor_registry.ts";
export {
  CapturedVariableError,
  carriesCode,
  isShippedFunction,
  type PackedValues,
  packValues,
  rebuildFunction,
  shipFunction,
  type ShippedFunction,
  unpackData,
  unpackValues,
} from "./function_shipping.ts";
export {
  type LockGrant,
  LockManager,
  type LockManagerOptions,
  type LockRequest,
} from "./lock_manager.ts";
