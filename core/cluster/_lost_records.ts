/**
 * A started record that died with its worker: counted, logged, a ticket it
 * held given back at once, and its sender told with a `WorkerTerminatedError`.
 *
 * @module
 */
import type { BrokerService } from "../net/broker_service.ts";
import type { ScheduledRecord } from "../pool/fair_scheduler.ts";
import {
  decodeSignalHeader,
  encodeSignal,
  replyHeader,
  ticketHeader,
  ToWorker,
} from "../pool/wire.ts";
import { packValues } from "../message/mod.ts";
import type { ScriptStageOptions } from "./script_stage_options.ts";

/** A started record died with its worker: its sender learns, nothing else is lost. */
export function reportLostRecord(
  record: ScheduledRecord,
  worker: number,
  options: ScriptStageOptions,
  broker: BrokerService,
  describe: (record: ScheduledRecord) => string,
): void {
  const stage = options.stageId;
  options.monitor?.recordLost(stage, worker, record.tag);
  if (record.tag === ToWorker.Frame) {
    broker.frameDone(record.a);
    options.pending?.remove();
  }
  options.log.error("Stage {stage} worker {worker} was lost while running {what}", {
    stage,
    worker,
    what: describe(record),
  });
  if (record.tag !== ToWorker.Signal) return;
  const { header } = decodeSignalHeader(record.body);
  if (header.ticket?.hold) {
    // A ticket held by the lost handler: its slot goes back at once, not on expiry.
    const release = ticketHeader(header.ticket, header.from, "<", { stage, worker });
    options.bus.route(encodeSignal(release, packValues([header.ticket.id]).bytes));
  }
  const reply = header.reply;
  if (reply === undefined || header.error) return;
  const errorHeader = replyHeader(reply, { stage, worker }, true);
  const error = {
    name: "WorkerTerminatedError",
    message:
      `The handler of "${header.message}" on stage "${stage}" worker ${worker} did not complete: its worker was terminated or crashed`,
  };
  options.bus.route(encodeSignal(errorHeader, packValues([error]).bytes));
}
