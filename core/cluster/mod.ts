/**
 * Running stages: the process runtime, script stages and process-wide registries.
 *
 * @module
 */
export { OnceRegistry } from "./once_registry.ts";
export { type ProcessOptions, type RunningProcess, startProcess } from "./process_runtime.ts";
export { ScriptStage, type ScriptStageOptions, StageStartError } from "./script_stage.ts";
export { FlowMonitor, type FlowMonitorOptions, type OverloadEffects } from "./flow_monitor.ts";
export {
  OverloadDetector,
  type OverloadDetectorOptions,
  type OverloadState,
} from "./overload_detector.ts";
