/**
 * The types of the fair scheduler: the seams it is given (port, hooks,
 * options) and, private to this folder, its flows, entries and worker states.
 *
 * @module
 */
import type { ClaimTable } from "./claim_table.ts";
import type { Deque } from "./deque.ts";

/** What the scheduler dispatches into (the worker pool). */
export interface SchedulerPort {
  readonly size: number;
  /** Sends a ring record to a worker (`word` = tag with its claim ticket). */
  send(worker: number, word: number, a: number, b: number, body?: Uint8Array): void;
  /** The claim table of a worker's current incarnation. */
  claims(worker: number): ClaimTable;
  /** Ticketed records the worker's current incarnation has started (a wrapping int32). */
  starts(worker: number): number;
  /** Records the worker holds behind a busy key (they cannot start yet). */
  blocked?(worker: number): number;
}

/** A record as the scheduler holds it. */
export interface ScheduledRecord {
  readonly tag: number;
  readonly a: number;
  readonly b: number;
  readonly body: Uint8Array;
  /** Epoch ms it was queued. */
  readonly queuedAt: number;
  /** The flow's kind and key, for reports. */
  readonly flow: { readonly kind: FlowKind; readonly key: number | string };
}

/** Callbacks of a {@link FairScheduler}. */
export interface FairSchedulerHooks {
  /** Epoch milliseconds (the clock workers stamp their start times with). */
  now(): number;
  /** A record finished on `worker`: queued → started delay and synchronous CPU time. */
  finished(record: ScheduledRecord, worker: number, delayMs: number, cpuMs: number): void;
  /**
   * Socket `id` moves to another worker: the body of its `Open` record there, or
   * `undefined` when it cannot move (then it waits for its home).
   */
  reopen(id: number): Uint8Array | undefined;
  /** A started record was lost with its worker (terminated or crashed). */
  lost(record: ScheduledRecord, worker: number): void;
}

/** Tuning of a {@link FairScheduler}. */
export interface FairSchedulerOptions {
  /** Records dispatched and not started per worker (at most {@link CLAIM_SLOTS}). */
  window?: number;
  /** Records of one socket or ordered key dispatched at once (pipelining). */
  flowInFlight?: number;
  /**
   * Estimated ms of unstarted work dispatched to one worker at once (default
   * 10): cheap records fill the whole window, expensive ones only a few slots,
   * so work that becomes ready waits behind little.
   */
  windowMs?: number;
  /** Milliseconds of measured cost a flow may spend per round. */
  quantumMs?: number;
}

/** The kinds of flow; see the module documentation. */
export type FlowKind = "socket" | "ordered" | "free";

/** A record as the scheduler keeps it. */
export interface Entry extends ScheduledRecord {
  flow: Flow;
  seq: number;
  /** Epoch ms it was dispatched (while it is). */
  dispatchedAt: number;
  /** Its flow's estimated cost when dispatched, ms. */
  cost: number;
  slot: number;
  generation: number;
}

/** One key's queue and accounting. */
export interface Flow {
  kind: FlowKind;
  key: number | string;
  /** Where its records must run (socket home, bound ordered key, pinned free flow). */
  affinity: number | undefined;
  /** Free flow pinned to one worker. */
  pinned: boolean;
  /** Pinned free flow of replies: its records may run while the worker is still starting. */
  whileStarting: boolean;
  queue: Deque<Entry>;
  inFlight: number;
  deficit: number;
  /** Estimated cost of one record, ms (moving average of measurements). */
  cost: number;
  /** Its deficit round robin turn was cut short by a full window. */
  midTurn: boolean;
  /** The ready queue it waits in (entries elsewhere are stale and skipped). */
  readyIn: Deque<Flow> | undefined;
  /** Socket flows: the socket closed; the flow goes once drained. */
  closing: boolean;
  /** Socket flows: workers that may be its home. */
  eligible: ((worker: number) => boolean) | undefined;
}

/** The scheduler's view of one worker. */
export interface WorkerState {
  available: boolean;
  /**
   * Its incarnation exists and loads its script (not ready yet): it takes only
   * {@link Flow.whileStarting} records. False before it exists and once ready.
   */
  starting: boolean;
  stuck: boolean;
  /** Being replaced (a reload): takes no new work until its replacement starts. */
  retiring: boolean;
  inFlight: number;
  /** Free claim slots, oldest freed first (spreads reuse; see MAX_GENERATION). */
  free: Deque<number>;
  /** Records dispatched and taken back in this incarnation (with the worker's start count: unstarted). */
  dispatchedCount: number;
  revokedCount: number;
  dispatched: (Entry | undefined)[];
  generation: number;
  ready: Deque<Flow>;
  /** Alternates between the worker's own flows and unbound ones. */
  ownTurn: boolean;
  /** Epoch ms of its last finished record. */
  lastDone: number;
}
