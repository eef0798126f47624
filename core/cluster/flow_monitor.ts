/**
 * The flow monitor of one process: counts what the stages report into the
 * metrics registry (dispatch delay, busy time, yields, restarts, lost
 * records), feeds the `#router` overload detector, and applies the overload
 * state (pause accepting, smaller read budgets, detach from the bus).
 *
 * @module
 */
import type { Logger } from "@logtape/logtape";
import {
  type Counter,
  DELAY_BUCKETS_SECONDS,
  type GaugeCollector,
  type Histogram,
  type MetricRegistration,
  type MetricsRegistry,
} from "../metrics/mod.ts";
import type { Clock } from "../time/mod.ts";
import { OverloadDetector, type OverloadState } from "./overload_detector.ts";
import type { ScriptStage, StageMonitor } from "./script_stage.ts";

/** What the overload state acts on. */
export interface OverloadEffects {
  /** Overloaded: shrink read budgets, detach from the bus; false: undo. */
  apply(overloaded: boolean): void;
  /** New connections per second to accept (Infinity: all; 0: none). */
  admit(rate: number): void;
}

/** Accepts per second when admission reopens during overload. */
const ADMIT_START = 20;
/** Growth of the admission rate per evaluation (100 ms) while delays are low. */
const ADMIT_GROWTH = 1.5;
/** Above this rate admission is unlimited again. */
const ADMIT_FULL = 20_000;
/** Sockets per stage in `stage_socket_top_out_queued_bytes` (bounds the series). */
const TOP_SOCKETS = 5;

/** Options of a {@link FlowMonitor}. */
export interface FlowMonitorOptions {
  metrics: MetricsRegistry;
  clock: Clock;
  log: Logger;
  /** `#router`; absent: overload detection is off. */
  router?: { thresholdMs: number; recoverMs: number };
  effects: OverloadEffects;
}

/** See the module documentation. */
export class FlowMonitor implements StageMonitor, Disposable {
  #delay: Histogram;
  #busy: Counter;
  #yields: Counter;
  #restarts: Counter;
  #lost: Counter;
  #transitions: Counter;
  #detector: OverloadDetector | undefined;
  #registrations: MetricRegistration[] = [];
  #log: Logger;
  #effects: OverloadEffects;
  #admitRate = Infinity;
  #labels = new Map<string, { stage: { stage: string }; workers: Record<string, string>[] }>();

  constructor(options: FlowMonitorOptions) {
    const metrics = options.metrics;
    this.#log = options.log;
    this.#effects = options.effects;
    this.#delay = metrics.histogram(
      "stage_dispatch_delay_seconds",
      "Time from a message being queued to its handler starting",
      DELAY_BUCKETS_SECONDS,
      ["stage"],
    );
    this.#busy = metrics.counter(
      "stage_worker_busy_seconds_total",
      "Time workers spent running handlers synchronously",
      ["stage", "worker"],
    );
    this.#yields = metrics.counter(
      "stage_worker_yield_requests_total",
      "Times the watchdog asked a worker to yield (a handler ran past the time slice)",
      ["stage"],
    );
    this.#restarts = metrics.counter(
      "stage_worker_restarts_total",
      "Workers replaced: terminated past the hard limit or crashed (cause=lost), or reloaded (cause=reload)",
      ["stage", "cause"],
    );
    this.#lost = metrics.counter(
      "stage_messages_lost_total",
      "Messages whose handler was running on a worker that was terminated or crashed",
      ["stage"],
    );
    this.#transitions = metrics.counter(
      "stage_overload_transitions_total",
      "Changes of the process's overload state",
      ["state"],
    );
    const router = options.router;
    if (router !== undefined) {
      this.#detector = new OverloadDetector({
        thresholdMs: router.thresholdMs,
        recoverMs: router.recoverMs,
        clock: options.clock,
        onChange: (state, p95) => this.#changed(state, p95),
        onEvaluate: (state, _p95, recent) => this.#admission(state, recent, router),
      });
      this.#detector.start();
    }
    this.#registrations.push(metrics.gaugeFn(
      "stage_overloaded",
      "1 while the process is overloaded (detached from routing, accepting paused)",
      () => this.overloaded ? 1 : 0,
    ));
  }

  /** Whether the process is overloaded now. */
  get overloaded(): boolean {
    return this.#detector?.state === "overloaded";
  }

  /** The detector's last p95 dispatch delay, ms (0 when detection is off). */
  get p95Ms(): number {
    return this.#detector?.p95Ms ?? 0;
  }

  /** Adds the queue depth of a service stage (it runs on the main thread: nothing in flight). */
  watchService(
    stage: { readonly id: string; readonly queued: number },
    metrics: MetricsRegistry,
  ): void {
    const labels = { stage: stage.id };
    this.#registrations.push(
      metrics.gaugeFn(
        "stage_queue_depth",
        "Messages queued and not yet dispatched",
        () => [{ labels, value: stage.queued }],
      ),
    );
  }

  /** Adds gauges read from a stage at snapshot time (queue depth, sockets, …). */
  watch(stage: ScriptStage, metrics: MetricsRegistry, clock: Clock): void {
    const labels = { stage: stage.id };
    const add = (name: string, help: string, read: () => number) =>
      this.#registrations.push(metrics.gaugeFn(name, help, () => [{ labels, value: read() }]));
    const scheduler = stage.scheduler;
    add("stage_queue_depth", "Messages queued and not yet dispatched", () => scheduler.queued);
    add(
      "stage_in_flight",
      "Messages dispatched to workers and not finished",
      () => scheduler.inFlightTotal,
    );
    add("stage_queue_oldest_seconds", "Age of the oldest queued message", () => {
      const oldest = scheduler.oldestQueuedAt();
      return oldest === undefined ? 0 : Math.max(0, (clock.wallNow() - oldest) / 1000);
    });
    add("stage_sockets_open", "Open sockets", () => stage.broker.socketCount);
    add(
      "stage_socket_out_queued_bytes",
      "Committed bytes not yet written, all sockets",
      () => stage.broker.sockets().reduce((sum, socket) => sum + socket.queuedOutBytes, 0),
    );
    this.#registrations.push(metrics.gaugeFn(
      "stage_socket_top_out_queued_bytes",
      `Committed bytes not yet written, for the ${TOP_SOCKETS} sockets of the stage with the most (the slow readers)`,
      () =>
        stage.broker.sockets()
          .filter((socket) => socket.queuedOutBytes > 0)
          .sort((a, b) => b.queuedOutBytes - a.queuedOutBytes)
          .slice(0, TOP_SOCKETS)
          .map((socket) => ({
            labels: { stage: stage.id, socket: String(socket.id), remote: socket.remote },
            value: socket.queuedOutBytes,
          })),
    ));
    const count = (name: string, help: string, collect: GaugeCollector) =>
      this.#registrations.push(metrics.counterFn(name, help, collect));
    count(
      "stage_socket_refused_total",
      "Incoming connections refused at once, by reason (connection limits)",
      () =>
        [...stage.broker.refusedByReason].map(([reason, value]) => ({
          labels: { stage: stage.id, reason },
          value,
        })),
    );
    count("stage_socket_bytes_total", "Bytes read from and written to sockets", () => {
      const totals = stage.broker.byteTotals();
      return [
        { labels: { stage: stage.id, direction: "in" }, value: totals.in },
        { labels: { stage: stage.id, direction: "out" }, value: totals.out },
      ];
    });
    count("stage_udp_datagrams_total", "UDP datagrams received and sent", () => {
      const totals = stage.broker.udpDatagrams();
      return [
        { labels: { stage: stage.id, direction: "in" }, value: totals.in },
        { labels: { stage: stage.id, direction: "out" }, value: totals.out },
      ];
    });
    count(
      "stage_udp_dropped_total",
      "UDP datagrams dropped, by reason (too_large, malformed, pending, …)",
      () =>
        [...stage.broker.udpDroppedByReason].map(([reason, value]) => ({
          labels: { stage: stage.id, reason },
          value,
        })),
    );
    count(
      "stage_worker_yields_total",
      "Cooperative yields (stage.yield, stage.slice, async API calls) by each worker (from 0 when it is replaced)",
      () =>
        Array.from({ length: stage.pool.size }, (_, worker) => ({
          labels: { stage: stage.id, worker: String(worker) },
          value: stage.pool.control(worker)?.snapshot().yields ?? 0,
        })),
    );
    count(
      "stage_socket_closed_total",
      "Sockets closed, by reason",
      () =>
        [...stage.broker.closedByReason].map(([reason, value]) => ({
          labels: { stage: stage.id, reason },
          value,
        })),
    );
  }

  finished(stage: string, worker: number, _tag: number, delayMs: number, cpuMs: number): void {
    // Called once per message: label objects are made once per stage and worker.
    let labels = this.#labels.get(stage);
    if (labels === undefined) this.#labels.set(stage, labels = { stage: { stage }, workers: [] });
    const workerLabels = labels.workers[worker] ??= { stage, worker: String(worker) };
    this.#delay.observe(delayMs / 1000, labels.stage);
    this.#busy.inc(workerLabels, cpuMs / 1000);
    this.#detector?.record(delayMs);
  }

  yieldRequested(stage: string): void {
    this.#yields.inc({ stage });
  }

  workerLost(stage: string, _worker: number, _reason: string, cause: "lost" | "reload"): void {
    this.#restarts.inc({ stage, cause }); // the pool logs why
  }

  recordLost(stage: string): void {
    this.#lost.inc({ stage });
  }

  /**
   * Admission control, every evaluation (100 ms): overloaded, accepting stops
   * while the latest delays are over the threshold, holds between recover and
   * threshold, and reopens at a low rate growing 1.5× per step while they are
   * under recover — so waiting clients come in at the pace they can be served.
   * Back to normal, the rate keeps growing until it is unlimited.
   */
  #admission(
    state: OverloadState,
    recentMs: number,
    router: { thresholdMs: number; recoverMs: number },
  ) {
    let rate = this.#admitRate;
    if (state === "overloaded") {
      if (recentMs > router.thresholdMs) rate = 0;
      else if (recentMs <= router.recoverMs) rate = rate === 0 ? ADMIT_START : rate * ADMIT_GROWTH;
    } else if (rate !== Infinity) {
      rate = rate === 0 ? ADMIT_START : rate * ADMIT_GROWTH;
    }
    if (rate > ADMIT_FULL) rate = Infinity;
    if (rate === this.#admitRate) return;
    this.#admitRate = rate;
    this.#effects.admit(rate);
  }

  /** New connections per second being accepted now (Infinity: unlimited). */
  get admissionRate(): number {
    return this.#admitRate;
  }

  #changed(state: OverloadState, p95Ms: number): void {
    this.#transitions.inc({ state });
    if (state === "overloaded") {
      this.#log.warning(
        "Process overloaded: dispatch delay p95 {p95} ms is over the threshold; pausing accepts (then letting clients in at the pace they are served), shrinking read budgets and detaching from routing",
        { p95: Math.round(p95Ms * 10) / 10 },
      );
    } else {
      this.#log.info(
        "Process recovered: dispatch delay p95 {p95} ms; accepting and routing again",
        {
          p95: Math.round(p95Ms * 10) / 10,
        },
      );
    }
    this.#effects.apply(state === "overloaded");
    if (state === "overloaded" && this.#admitRate !== 0) {
      this.#admitRate = 0;
      this.#effects.admit(0);
    }
  }

  [Symbol.dispose](): void {
    this.#detector?.stop();
    for (const registration of this.#registrations) registration.remove();
    this.#registrations = [];
  }
}
