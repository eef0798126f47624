/**
 * The ticket service stage (`=ticket+<id>`, DESIGN.md §5): caps how many
 * handlers of a category run at once, service-wide. Its books are a
 * {@link TicketBook}; this file turns messages into book calls and book
 * events into messages.
 *
 * | message (`"ticket:…"`)                  | values                | does                                       |
 * | --------------------------------------- | --------------------- | ------------------------------------------ |
 * | `category=callback?feedback[/deadline]` | the callback's values | ask for a slot                             |
 * | `@category`                             | `limit, closeAfterMs?` | create/redefine a category (`null`: remove) |
 * | `=category`                             | any values            | message every holder and waiter            |
 * | `<`                                     | `ticketId`            | release a slot                             |
 * | `>`                                     | `ticketId, ms`        | keep a slot `ms` more                      |
 * | `#`                                     |                       | reply with every category's numbers        |
 *
 * @module
 */
import { DEFAULT_TICKET_LIMIT } from "../config/mod.ts";
import type { TicketRef } from "../pool/wire.ts";
import type { ServiceApi, ServiceFactory } from "./service_stage.ts";
import {
  TicketBook,
  type TicketBook as Book,
  type TicketEndReason,
  type TicketHolder,
  type TicketWaiter,
} from "./ticket_book.ts";

/** How long a holder keeps its slot unless it extends it. */
export const TICKET_HOLD_MS = 1000;

type Verb = (book: Book, api: ServiceApi, name: string, values: unknown[]) => unknown;

/** Splits a request's `?query`: `feedback`, `feedback/deadline_ms` or `/deadline_ms`. */
function parseQuery(query: string | undefined): { feedback?: string; deadlineMs?: number } {
  if (query === undefined) return {};
  const slash = query.indexOf("/");
  const feedback = slash < 0 ? query : query.slice(0, slash);
  const parsed: { feedback?: string; deadlineMs?: number } = feedback === "" ? {} : { feedback };
  if (slash >= 0) {
    const text = query.slice(slash + 1);
    const ms = Number(text);
    if (text === "" || !Number.isFinite(ms) || ms < 0) {
      throw new TypeError(
        `Ticket request "?${query}": expected "feedback/deadline_ms" with deadline_ms >= 0; found "${text}"`,
      );
    }
    parsed.deadlineMs = ms;
  }
  return parsed;
}

function ticketId(values: unknown[], verb: string): string {
  const id = values[0];
  if (typeof id !== "string" || id === "") {
    throw new TypeError(`ticket:${verb} expects a ticket id (a string); got ${String(id)}`);
  }
  return id;
}

/** The verbs of the ticket stage, by the first character of the message id. */
const verbs = {
  /** `"ticket:category=callback?feedback/deadline", ...values` */
  request(book, api, name, values) {
    const context = api.context!;
    if (context.reply === undefined) {
      throw new TypeError(
        `Ticket request "${name}" names no callback: use "ticket:${name}=callback"`,
      );
    }
    const { id: callback, ...requester } = context.reply;
    const ask = { requester, callback, values, ...parseQuery(context.query) };
    book.request(name, ask);
    // The reply address is the callback: the grant answers it, not this return value.
    return undefined;
  },
  /** `"ticket:#"`: every category's limit, holders, waiting list length and oldest wait. */
  stats(book) {
    return book.stats();
  },
  /** `"ticket:@category", limit, closeAfterMs?` or `"ticket:@category", null` */
  define(book, _api, name, [limit, closeAfterMs]) {
    if (name === "") throw new TypeError('Ticket "@" needs a category: "ticket:@category"');
    if (limit === null) return book.remove(name);
    book.define(name, limit as number, closeAfterMs as number | undefined);
    return true;
  },
  /** `"ticket:=category", ...values`: reaches every holder and waiter; replies with how many. */
  broadcast(book, api, name, values) {
    const members = book.members(name);
    for (const { kind, entry } of members) {
      api.deliverTo(
        { ...entry.requester, id: `${api.id}:=${name}` },
        values,
        { ticket: refOf(api.id, entry, kind === "holder" ? (entry as TicketHolder).ticket : "") },
      );
    }
    return members.length;
  },
  /** `"ticket:<", ticketId` */
  release(book, _api, _name, values) {
    return book.release(ticketId(values, "<"));
  },
  /** `"ticket:>", ticketId, ms` */
  extend(book, _api, _name, values) {
    const ms = values[1];
    if (typeof ms !== "number" || Number.isNaN(ms)) {
      throw new TypeError(`ticket:> expects (ticketId, ms); got ms ${String(ms)}`);
    }
    const id = ticketId(values, ">");
    return ms <= 0 ? book.release(id) : book.extend(id, ms);
  },
} satisfies Record<string, Verb>;

/** Which verb a message id names, and the category in it. */
function route(message: string): { verb: keyof typeof verbs; name: string } {
  switch (message[0]) {
    case "<":
      return { verb: "release", name: "" };
    case ">":
      return { verb: "extend", name: "" };
    case "@":
      return { verb: "define", name: message.slice(1) };
    case "=":
      return { verb: "broadcast", name: message.slice(1) };
    case "#":
      return { verb: "stats", name: "" };
    default:
      return { verb: "request", name: message };
  }
}

function refOf(stage: string, entry: TicketWaiter, ticket: string, hold = false): TicketRef {
  return {
    stage,
    category: entry.category,
    id: ticket,
    request: entry.request,
    ...(hold ? { hold: true } : {}),
  };
}

/** Starts a `=ticket+<id>` stage with the limits of its config section. */
export const startTicketService: ServiceFactory = ({ api, clock, log, metrics, config }) => {
  const settings = config.tickets[api.id] ??
    { defaultLimit: DEFAULT_TICKET_LIMIT, categories: {} };
  const labels = { stage: api.id };
  const grants = metrics.counter("stage_ticket_grants_total", "Ticket slots granted.", ["stage"]);
  const ended = metrics.counter(
    "stage_ticket_ended_total",
    "Ticket requests cancelled and holders removed, by reason.",
    ["stage", "reason"],
  );
  const feedback = (entry: TicketWaiter, result: boolean | string) => {
    if (entry.feedback === undefined) return;
    api.deliverTo({ ...entry.requester, id: entry.feedback }, [entry.request, result]);
  };
  const notify = (entry: TicketWaiter, reason: TicketEndReason, ticket: string) => {
    ended.inc({ ...labels, reason });
    // `ticket:@` is for requesters that want to know; others may not wait for it.
    api.deliverTo(
      { ...entry.requester, id: `${api.id}:@` },
      [entry.request, reason, entry.category, ...entry.values],
      { ticket: refOf(api.id, entry, ticket), optional: true },
    );
  };
  const book = new TicketBook({
    clock,
    defaultLimit: settings.defaultLimit,
    limits: settings.categories,
    holdMs: TICKET_HOLD_MS,
    events: {
      queued: (waiter) => feedback(waiter, true),
      granted(holder) {
        grants.inc(labels);
        feedback(holder, holder.ticket);
        api.deliverTo({ ...holder.requester, id: holder.callback }, holder.values, {
          ticket: refOf(api.id, holder, holder.ticket, true),
        });
      },
      cancelled(waiter, reason) {
        feedback(waiter, false);
        notify(waiter, reason, "");
      },
      removed(holder, reason) {
        log.debug("Ticket {ticket} of {category} removed: {reason}", {
          ticket: holder.ticket,
          category: holder.category,
          reason,
        });
        notify(holder, reason, holder.ticket);
      },
    },
  });
  api.waitfor("*", (...values: unknown[]) => {
    const { verb, name } = route(api.context!.message);
    return verbs[verb](book, api, name, values);
  });
  const perCategory = (pick: (stats: ReturnType<Book["stats"]>[number]) => number) => () =>
    book.stats().map((stats) => ({
      labels: { stage: api.id, category: stats.name },
      value: pick(stats),
    }));
  const registrations = [
    metrics.gaugeFn(
      "stage_ticket_waiting",
      "Ticket requests waiting for a slot.",
      perCategory((s) => s.waiting),
    ),
    metrics.gaugeFn(
      "stage_ticket_holders",
      "Ticket slots held.",
      perCategory((s) => s.holders),
    ),
    metrics.gaugeFn(
      "stage_ticket_oldest_wait_seconds",
      "How long the oldest waiting ticket request has waited.",
      perCategory((s) => s.oldestWaitMs / 1000),
    ),
  ];
  return {
    stop() {
      for (const registration of registrations) registration.remove();
      book[Symbol.dispose]();
    },
  };
};
