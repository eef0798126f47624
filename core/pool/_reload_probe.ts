/**
 * The reload probe: a throw-away worker that loads a stage's script once, to
 * learn whether it loads at all before live workers are replaced.
 *
 * @module
 */
import { fromErrorRecord } from "../message/mod.ts";
import { RingBuffer, RingReceiver, RingSender } from "../ring/mod.ts";
import { readRing } from "./_read_ring.ts";
import { ClaimTable } from "./claim_table.ts";
import { ControlBlock } from "./control_block.ts";
import type { WorkerHandle } from "./worker_handle.ts";
import {
  decodeSignalHeader,
  packTicket,
  ToMain,
  ToWorker,
  UNCLAIMED_SLOT,
  type WorkerInit,
} from "./wire.ts";

/** The shared parts of a worker's init message (see {@link WorkerInit}). */
export type WorkerBlocks = Pick<
  WorkerInit,
  "inbound" | "outbound" | "inboundBell" | "outboundBell" | "control" | "claims"
>;

/** What a {@link ReloadProbe} needs. */
export interface ReloadProbeOptions {
  stageId: string;
  /** Its worker index (the pool size: no live worker has it). */
  index: number;
  handle: WorkerHandle;
  /** The init message for these rings and blocks. */
  init(blocks: WorkerBlocks): WorkerInit;
  /** A request its top level sent (a message with a reply address to the probe). */
  onRequest?(body: Uint8Array): void;
}

/**
 * Runs the probe worker until it reports "ready" or "failed". Its listens,
 * plain signals and other side effects are ignored (`stage.once` is answered
 * "already done"); its requests — `await stage.request(…)` at a top level —
 * are real: they go to `onRequest`, and their replies come back by
 * {@link ReloadProbe.deliver}, so such a script can be reloaded.
 *
 * @example
 * ```ts ignore
 * const probe = new ReloadProbe({ stageId, index: size, handle, init, onRequest: route });
 * await probe.run(30_000); // rejects with why the script does not load
 * ```
 */
export class ReloadProbe {
  #options: ReloadProbeOptions;
  #sender: RingSender | undefined;

  constructor(options: ReloadProbeOptions) {
    this.#options = options;
  }

  /**
   * Loads the script and ends the worker.
   *
   * @throws {Error} (rejects) why the script did not load, or no answer within `timeoutMs`
   */
  async run(timeoutMs: number): Promise<void> {
    const { handle, index, stageId } = this.#options;
    const inbound = RingBuffer.create(1 << 16);
    const outbound = RingBuffer.create(1 << 16);
    const inboundBell = new MessageChannel();
    const outboundBell = new MessageChannel();
    const sender = new RingSender(
      new RingBuffer(inbound.buffer, { manualWake: true, doorbell: inboundBell.port1 }),
    );
    const receiver = new RingReceiver(
      new RingBuffer(outbound.buffer, { doorbell: outboundBell.port1 }),
    );
    const abort = new AbortController();
    this.#sender = sender;
    const reading = readRing(receiver, abort.signal, (tag, _a, _b, body) => {
      if (tag === ToMain.Signal && this.#isRequest(body, stageId, index)) {
        this.#options.onRequest?.(body);
      }
    }, () => {});
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      await new Promise<void>((resolve, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
        handle.onControl = (message) => {
          if (message.type === "ready") resolve();
          else if (message.type === "failed") {
            const error = fromErrorRecord(message.error);
            reject(new Error(error.message, { cause: error }));
          } else if (message.type === "once") {
            handle.post({ type: "once-result", requestId: message.requestId, first: false });
          } else if (message.type === "ifaddr") {
            // The probe's answers are thrown away with it: it only must not hang.
            handle.post({ type: "ifaddr-result", requestId: message.requestId, addresses: [] });
          }
        };
        handle.onError = (message) => reject(new Error(message));
        handle.post(
          this.#options.init({
            inbound: inbound.buffer,
            outbound: outbound.buffer,
            inboundBell: inboundBell.port2,
            outboundBell: outboundBell.port2,
            control: ControlBlock.create().buffer,
            claims: ClaimTable.create().buffer,
          }),
          [inboundBell.port2, outboundBell.port2],
        );
      });
    } finally {
      clearTimeout(timer);
      this.#sender = undefined;
      abort.abort();
      handle.terminate();
      sender.close();
      sender.ring.close();
      receiver.ring.close();
      await reading;
      inboundBell.port1.close();
      outboundBell.port1.close();
    }
  }

  /** Hands the probe a stage message addressed to it (a reply); false once it ended. */
  deliver(body: Uint8Array): boolean {
    if (this.#sender === undefined) return false;
    this.#sender.send(packTicket(ToWorker.Signal, UNCLAIMED_SLOT, 0), 0, 0, body);
    return true;
  }

  /** A message that expects its reply at the probe (not a submit, thread or lock). */
  #isRequest(body: Uint8Array, stageId: string, index: number): boolean {
    const { header } = decodeSignalHeader(body);
    return header.reply?.stage === stageId && header.reply.worker === index &&
      header.submit === undefined && header.thread === undefined && header.lock === undefined;
  }
}
