/**
 * Running stages: the process runtime, script stages and process-wide registries.
 *
 * @module
 */
export { OnceRegistry } from "./once_registry.ts";
export { type ProcessOptions, type RunningProcess, startProcess } from "./process_runtime.ts";
export {
  ScriptStage,
  type ScriptStageOptions,
  type StageReload,
  StageStartError,
  type WorkerInfo,
} from "./script_stage.ts";
export { FlowMonitor, type FlowMonitorOptions, type OverloadEffects } from "./flow_monitor.ts";
export {
  type BackoffPolicy,
  type ChildExit,
  type ChildHandle,
  type ChildLauncher,
  type ChildSignal,
  type ChildState,
  type ChildStatus,
  DEFAULT_BACKOFF,
  Supervisor,
  type SupervisorOptions,
} from "./supervisor.ts";
export {
  BUS_ENV,
  childArgs,
  currentRuntime,
  DEFAULT_DENO_FLAGS,
  DenoChildLauncher,
  GROUP_ENV,
  selfCommand,
  setProcessTitle,
  SUPERVISED_ENV,
  untilStdinCloses,
} from "./child_launcher.ts";
export {
  OverloadDetector,
  type OverloadDetectorOptions,
  type OverloadState,
} from "./overload_detector.ts";
export {
  BusConnectError,
  BusDisconnectedError,
  BusNoRespondersError,
  BusTimeoutError,
  type LinkHandler,
  type LinkMessage,
  type LinkStatus,
  type LinkSubscription,
  type NatsAuth,
  NatsLink,
  type NatsLinkOptions,
  type ReconnectBackoff,
} from "./nats_link.ts";
export { BusHub, type BusHubOptions } from "./bus_hub.ts";
export { ProcessBus, type ProcessBusOptions } from "./process_bus.ts";
export type { EndpointInfo, EndpointState } from "./bus_frames.ts";
export type { BusView } from "./local_bus.ts";
