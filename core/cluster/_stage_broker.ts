/**
 * A script stage's sockets: its {@link BrokerService}, with each socket's home
 * kept by the stage's scheduler and every socket record queued there in the
 * socket's order.
 *
 * @module
 */
import { BrokerService, type SocketHomes } from "../net/broker_service.ts";
import type { FairScheduler } from "../pool/fair_scheduler.ts";
import { ToWorker } from "../pool/wire.ts";
import type { WorkerPool } from "../pool/worker_pool.ts";
import type { ScriptStageOptions } from "./script_stage_options.ts";

/** Builds the broker service of one script stage. */
export function createStageBroker(
  options: ScriptStageOptions,
  scheduler: FairScheduler,
  pool: WorkerPool,
): BrokerService {
  const homes: SocketHomes = {
    bind: (id, eligible, worker) => scheduler.bindSocket(id, eligible, worker),
    workerOf: (id) => scheduler.homeOf(id),
    unbind: () => {}, // the Closed record that follows ends the socket's flow
  };
  return new BrokerService({
    stageId: options.stageId,
    transport: options.transport,
    workers: {
      send(worker, tag, a, b, body, body2) {
        if (tag === ToWorker.JoinFailed) {
          scheduler.enqueueFree("join", tag, a, b, body ?? new Uint8Array(0), worker);
          return;
        }
        if (tag === ToWorker.Frame) options.pending?.add();
        scheduler.enqueueSocket(a, tag, b, body, body2);
        if (tag === ToWorker.Closed) scheduler.socketClosed(a);
      },
      post: (worker, message) => pool.post(worker, message),
    },
    scheduler: homes,
    ...(options.gate === undefined ? {} : { gate: options.gate }),
    ...(options.quota === undefined ? {} : { quota: options.quota }),
    ...(options.sharedAddresses === undefined ? {} : { sharedAddresses: options.sharedAddresses }),
    clock: options.clock,
    log: options.log,
    ...(options.limits === undefined ? {} : { limits: options.limits }),
  });
}
