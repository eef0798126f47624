/**
 * A script stage's control requests from its workers (listen, join, server
 * options, `stage.once`, `broker.ifaddr`, waitfor registrations), and what the
 * registrations tell: which messages are serial, and where in the script a
 * handler was registered (for naming it in logs).
 *
 * @module
 */
import type { BrokerService } from "../net/broker_service.ts";
import { denoNetworkInterfaces, type NetworkInterfaces } from "../net/network_interfaces.ts";
import type { ControlSnapshot } from "../pool/control_block.ts";
import type { ScheduledRecord } from "../pool/fair_scheduler.ts";
import { decodeSignalHeader, recordNames, ToWorker, type WorkerControl } from "../pool/wire.ts";
import type { WorkerPool } from "../pool/worker_pool.ts";
import { lookupChain, toErrorRecord } from "../message/mod.ts";
import { orderingKey } from "./_ordering_keys.ts";
import type { OnceRegistry } from "./once_registry.ts";

/** What a stage's control requests reach. */
export interface StageControlDeps {
  pool: WorkerPool;
  broker: BrokerService;
  once: OnceRegistry;
  /** What `broker.ifaddr()` answers (default: `Deno.networkInterfaces`). */
  networkInterfaces?: NetworkInterfaces | undefined;
}

/** What a stuck worker is doing, for logs. */
export function describeStall(snapshot: ControlSnapshot): string {
  if (!snapshot.running) {
    return "its event loop started no waiting record (code after an await or in a timer is running)";
  }
  return `its ${
    recordNames[snapshot.tag] ?? `record ${snapshot.tag}`
  } handler (key ${snapshot.key}) ran`;
}

/** The control side of one script stage; see the module documentation. */
export class StageControl {
  #deps: StageControlDeps;
  /** Named waitfor ids reported by the workers → whether they are serial. */
  #waitfors = new Map<string, boolean>();
  /** Script positions of waitfor registrations and `broker.ready` calls, for logs. */
  #where = new Map<string, string>();

  constructor(deps: StageControlDeps) {
    this.#deps = deps;
  }

  /** Handles a control message from `worker`. */
  handle(worker: number, message: WorkerControl): void {
    const { pool, broker, once } = this.#deps;
    switch (message.type) {
      case "listen":
        if (message.where !== undefined) this.#where.set(`listen:${message.url}`, message.where);
        broker.listen(worker, message.url);
        return;
      case "server-expire":
        broker.setServerExpire(message.url, message.ms);
        return;
      case "server-stop":
        broker.stopServer(message.url);
        return;
      case "join":
        broker.join(worker, message.url, message.requestId);
        return;
      case "once":
        pool.post(worker, {
          type: "once-result",
          requestId: message.requestId,
          first: once.claim(message.name),
        });
        return;
      case "once-forget":
        once.forget(message.name);
        return;
      case "ifaddr":
        this.#answerIfaddr(worker, message.requestId);
        return;
      case "waitfor":
        this.#waitfors.set(message.id, message.serial);
        if (message.where !== undefined) this.#where.set(`waitfor:${message.id}`, message.where);
        return;
      case "unwaitfor":
        this.#waitfors.delete(message.id);
        this.#where.delete(`waitfor:${message.id}`);
        return;
      case "ready":
      case "failed":
        return; // handled by the pool
    }
  }

  /** The ordering key of a message to a serial waitfor (0: not serial). */
  serialKey(message: string): number {
    for (const id of lookupChain(message)) {
      const serial = this.#waitfors.get(id);
      if (serial === undefined) continue;
      if (!serial) return 0;
      return orderingKey(`waitfor:${id}`);
    }
    return 0;
  }

  /**
   * Names a record's handler for logs, with the script position of its
   * registration when known: `the handler of message "spin" (waitfor at
   * file:///…/calc.ts:5:7)`.
   */
  describe(record: ScheduledRecord): string {
    if (record.tag === ToWorker.Signal) {
      const { header } = decodeSignalHeader(record.body);
      if (header.submit !== undefined) return `the stage.submit function (key ${header.submit})`;
      const id = lookupChain(header.message).find((candidate) => this.#waitfors.has(candidate));
      const where = id === undefined ? undefined : this.#where.get(`waitfor:${id}`);
      return `the handler of message "${header.message}"${
        where === undefined ? "" : ` (waitfor at ${where})`
      }`;
    }
    const what = recordNames[record.tag] ?? `record ${record.tag}`;
    const url = this.#deps.broker.urlOf(record.a);
    const where = url === undefined ? undefined : this.#where.get(`listen:${url}`);
    return `the ${what} handler of socket ${record.a}${
      where === undefined ? "" : ` (broker.ready at ${where})`
    }`;
  }

  /** `broker.ifaddr()`: workers usually lack the `sys` permission, so the main thread reads them. */
  #answerIfaddr(worker: number, requestId: number): void {
    const pool = this.#deps.pool;
    try {
      const addresses = (this.#deps.networkInterfaces ?? denoNetworkInterfaces)();
      pool.post(worker, { type: "ifaddr-result", requestId, addresses });
    } catch (error) {
      pool.post(worker, { type: "ifaddr-result", requestId, error: toErrorRecord(error) });
    }
  }
}
