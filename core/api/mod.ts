/**
 * What scripts see — `stage`, `broker`, `logger`, `process` — and the host that
 * builds them inside a worker. Script authors use `globals.d.ts`.
 *
 * @module
 */
export { type AcceptFunction, Broker, type ServerHandle } from "./broker.ts";
export { type Codec, decodeFrame, encodeFrameParts } from "./payload_codec.ts";
export type { PlatformPort } from "./platform_port.ts";
export { CooperativeYield, type YieldSignal } from "./cooperative_yield.ts";
export { ScriptHost, type ScriptHostOptions } from "./script_host.ts";
export {
  type CallSite,
  callSite,
  type EnvLookup,
  expandLogMessage,
  ScriptLogger,
} from "./script_logger.ts";
export { ScriptProcess } from "./script_process.ts";
export { type ReceiveFunction, Socket, type SocketFormat } from "./socket.ts";
export { type LoadCallback, StageApi, type StageApiOptions } from "./stage.ts";
