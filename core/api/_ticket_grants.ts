/**
 * A ticket grant seen from the handler that holds it: released when the
 * handler finishes, or held longer with `stage.signal(null, ms)`.
 *
 * @module
 */
import { type SignalHeader, ticketHeader } from "../pool/wire.ts";
import type { MessageLine, Store } from "./_message_line.ts";

/** A handler finished: a ticket grant gives its slot back. */
export function releaseGrant(line: MessageLine, header: SignalHeader): void {
  const ticket = header.ticket;
  if (ticket?.hold !== true) return;
  line.send(ticketHeader(ticket, header.from, "<", line.from()), [ticket.id]);
}

/**
 * `stage.signal(null, ms)` inside a ticket grant: keep the slot `ms` more
 * (from now); `ms <= 0` releases it at once. Returns the delivery result (a
 * `TypeError` value, logged, for a bad `ms`).
 */
export function holdTicket(line: MessageLine, store: Store, values: unknown[]): unknown {
  const ticket = store.ticket!;
  const ms = values[0];
  if (typeof ms !== "number" || Number.isNaN(ms)) {
    const error = new TypeError(
      `stage.signal(null, ms) inside ticket ${ticket.id}: expected a number of ms; got ${
        String(ms)
      }`,
    );
    line.log.warning("{text}", { text: error.message });
    return error;
  }
  const release = ms <= 0;
  line.send(
    ticketHeader(ticket, store.from, release ? "<" : ">", line.from()),
    release ? [ticket.id] : [ticket.id, ms],
  );
  return true;
}
