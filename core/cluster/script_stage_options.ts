/**
 * What a `ScriptStage` is built from: its settings, the process-wide
 * parts it shares, and the monitor it reports to.
 *
 * @module
 */
import type { Logger } from "@logtape/logtape";
import type { LogOptions } from "../log/mod.ts";
import type { BrokerLimits } from "../net/broker_service.ts";
import type { ConnectionQuota } from "../net/connection_quota.ts";
import type { FlowGate, PendingBound } from "../net/flow_gate.ts";
import type { NetworkInterfaces } from "../net/network_interfaces.ts";
import type { Transport } from "../net/transport.ts";
import type { WorkerFactory } from "../pool/worker_handle.ts";
import type { ProcessInfo, ScriptSettings } from "../pool/wire.ts";
import type { Clock } from "../time/mod.ts";
import type { Bus } from "./local_bus.ts";
import type { OnceRegistry } from "./once_registry.ts";

/** What a stage reports for metrics and overload detection (the process's flow monitor). */
export interface StageMonitor {
  /** A record finished: queued → started delay and synchronous CPU time. */
  finished(stage: string, worker: number, tag: number, delayMs: number, cpuMs: number): void;
  /** The watchdog asked a worker to yield (it ran past the time slice). */
  yieldRequested(stage: string, worker: number): void;
  /**
   * A worker was replaced: terminated past the hard limit or crashed
   * (`"lost"`), or on purpose (`"reload"`).
   */
  workerLost(stage: string, worker: number, reason: string, cause: "lost" | "reload"): void;
  /** A record was lost with its worker. */
  recordLost(stage: string, worker: number, tag: number): void;
}

/** Forced-yielding limits (`#flow`). */
export interface WatchdogLimits {
  sliceMs: number;
  hardLimitMs: number;
}

/** Everything a `ScriptStage` needs. */
export interface ScriptStageOptions {
  stageId: string;
  workers: number;
  ringCapacity: number;
  script: ScriptSettings;
  process: ProcessInfo;
  logOptions: LogOptions;
  factory: WorkerFactory;
  transport: Transport;
  once: OnceRegistry;
  /** The process's shared-variable table (`stage.shared`). */
  shared: SharedArrayBuffer;
  /** Routes stage messages between stages. */
  bus: Bus;
  clock: Clock;
  log: Logger;
  limits?: Partial<BrokerLimits>;
  /** Time slice and hard limit of the watchdog (default 50 ms / 5 s). */
  watchdog?: WatchdogLimits;
  monitor?: StageMonitor;
  /** The process's input gate (shared by every stage's sockets). */
  gate?: FlowGate;
  /** The process's bound on queued frames (`#threads[1]`). */
  pending?: PendingBound;
  /** The process's connection limits (total and per IP). */
  quota?: ConnectionQuota;
  /** `#services` TCP addresses, shared with other processes (SO_REUSEPORT). */
  sharedAddresses?: readonly string[];
  /** What `broker.ifaddr()` answers (default: `Deno.networkInterfaces`). */
  networkInterfaces?: NetworkInterfaces;
}
