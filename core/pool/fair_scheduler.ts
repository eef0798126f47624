/**
 * The main-thread scheduler of one stage's records: per-key FIFO queues served
 * round robin, weighted by measured cost (deficit round robin), into a bounded
 * window of dispatched records per worker.
 *
 * Keys ("flows") come in three kinds:
 * - a **socket** flow (key = socket id) runs on the socket's home worker, where
 *   its script state lives; when the home is stuck or lost the socket moves;
 * - an **ordered** flow (submit keys, serial waitfors) runs on one worker at a
 *   time while it has records dispatched, in order;
 * - a **free** flow (unkeyed messages, per sender) is only a unit of fairness:
 *   its records run anywhere, concurrently; a free flow may be pinned to one
 *   worker (replies go to the worker that asked, even while it still loads its
 *   script: see {@link FairScheduler.workerStarting}).
 *
 * Records stay on the main thread until a worker has room, so the watchdog can
 * send work around a stuck worker: records it has not started are revoked
 * through its {@link ClaimTable} and run elsewhere.
 *
 * @module
 */
import type {
  Entry,
  FairSchedulerHooks,
  FairSchedulerOptions,
  Flow,
  FlowKind,
  ScheduledRecord,
  SchedulerPort,
  WorkerState,
} from "./_scheduler_types.ts";
import { join } from "./_body_slab.ts";
import { CLAIM_SLOTS } from "./claim_table.ts";
import { Deque } from "./deque.ts";
import { MAX_GENERATION, packTicket, ToWorker, UNCLAIMED_SLOT } from "./wire.ts";

export type {
  FairSchedulerHooks,
  FairSchedulerOptions,
  FlowKind,
  ScheduledRecord,
  SchedulerPort,
} from "./_scheduler_types.ts";

const DEFAULT_WINDOW = 255;
const DEFAULT_FLOW_IN_FLIGHT = 8;
const DEFAULT_QUANTUM_MS = 1;
const DEFAULT_WINDOW_MS = 10;
const INITIAL_COST_MS = 0.02;
const MIN_COST_MS = 0.005;

/** Per-key fair dispatch into a bounded window per worker; see the module doc. */
export class FairScheduler {
  #port: SchedulerPort;
  #hooks: FairSchedulerHooks;
  #window: number;
  #flowCap: number;
  #quantum: number;
  #windowMs: number;
  #workers: WorkerState[] = [];
  #readyAny = new Deque<Flow>();
  #sockets = new Map<number, Flow>();
  #ordered = new Map<number, Flow>();
  #free = new Map<string, Flow>();
  #queued = 0;
  #seq = 0;
  /** Moving average cost of this stage's records, ms (the estimate for new keys). */
  #typicalCost = INITIAL_COST_MS;
  /** Sockets homed per worker. */
  #homes: number[] = [];

  constructor(port: SchedulerPort, hooks: FairSchedulerHooks, options: FairSchedulerOptions = {}) {
    this.#port = port;
    this.#hooks = hooks;
    this.#window = Math.min(CLAIM_SLOTS, options.window ?? DEFAULT_WINDOW);
    this.#flowCap = options.flowInFlight ?? DEFAULT_FLOW_IN_FLIGHT;
    this.#quantum = options.quantumMs ?? DEFAULT_QUANTUM_MS;
    this.#windowMs = options.windowMs ?? DEFAULT_WINDOW_MS;
    for (let w = 0; w < port.size; w++) {
      this.#workers.push(this.#freshWorker(false));
      this.#homes.push(0);
    }
  }

  // ---- state for metrics and tests -------------------------------------------------------

  /** Records waiting on the main thread (not yet dispatched). */
  get queued(): number {
    return this.#queued;
  }

  /** Records dispatched and not finished, across workers. */
  get inFlightTotal(): number {
    let total = 0;
    for (const worker of this.#workers) total += worker.inFlight;
    return total;
  }

  /** Records dispatched to `worker` and not finished. */
  inFlight(worker: number): number {
    return this.#workers[worker]?.inFlight ?? 0;
  }

  /** Number of flows (keys) the scheduler tracks. */
  get flowCount(): number {
    return this.#sockets.size + this.#ordered.size + this.#free.size;
  }

  /** Epoch ms the oldest waiting record was queued (undefined when none waits). */
  oldestQueuedAt(): number | undefined {
    let oldest: number | undefined;
    for (const map of [this.#sockets, this.#ordered, this.#free] as Map<unknown, Flow>[]) {
      for (const flow of map.values()) {
        const head = flow.queue.peek();
        if (head !== undefined && (oldest === undefined || head.queuedAt < oldest)) {
          oldest = head.queuedAt;
        }
      }
    }
    return oldest;
  }

  /**
   * How long `worker` has left a dispatched record unstarted although nothing
   * of its key runs there (ms; 0 = none waits). A worker that is not running a
   * record yet leaves one waiting past the time slice has its event loop
   * blocked elsewhere — a handler's continuation after an `await`, a timer.
   */
  waitingMs(worker: number): number {
    const state = this.#workers[worker];
    if (state === undefined || state.inFlight === 0) return 0;
    const claims = this.#port.claims(worker);
    const busy = new Set<Flow>();
    for (const entry of state.dispatched) {
      // Records of a socket or ordered key wait on the worker behind a started one of
      // the same key; unkeyed ones never wait for each other.
      if (
        entry !== undefined && entry.flow.kind !== "free" &&
        claims.started(entry.slot, entry.generation)
      ) busy.add(entry.flow);
    }
    let oldest = Infinity;
    for (const entry of state.dispatched) {
      if (entry === undefined || busy.has(entry.flow)) continue;
      if (claims.started(entry.slot, entry.generation)) continue;
      if (entry.dispatchedAt < oldest) oldest = entry.dispatchedAt;
    }
    // A worker that keeps finishing records is busy, not blocked.
    return oldest === Infinity
      ? 0
      : Math.max(0, this.#hooks.now() - Math.max(oldest, state.lastDone));
  }

  /** The record dispatched to `worker` under claim `ticket` (slot | generation << 12). */
  dispatchedRecord(worker: number, ticket: number): ScheduledRecord | undefined {
    const entry = this.#workers[worker]?.dispatched[ticket & 0xfff];
    return entry !== undefined && entry.generation === ticket >>> 12 ? entry : undefined;
  }

  /** Whether `worker` takes new work (started, not stuck). */
  available(worker: number): boolean {
    return this.#workers[worker]?.available ?? false;
  }

  /** Whether `worker` is still loading its script (it takes only replies meanwhile). */
  starting(worker: number): boolean {
    return this.#workers[worker]?.starting ?? false;
  }

  // ---- socket homes (the broker service's view) ------------------------------------------

  /**
   * Gives socket `id` a home: `worker` if given, else the available eligible
   * worker with the fewest sockets and records. Returns the home.
   *
   * @throws RangeError when no worker is eligible
   */
  bindSocket(id: number, eligible?: (worker: number) => boolean, worker?: number): number {
    const existing = this.#sockets.get(id);
    if (existing?.affinity !== undefined) {
      existing.closing = false; // an id reused while its old flow drains
      return existing.affinity;
    }
    // Every eligible worker past its time slice (a loaded machine): the socket still gets a
    // home; its Open waits there until the worker recovers, or moves when it is replaced.
    const home = worker ?? this.#leastLoaded(eligible, true) ??
      this.#leastLoaded(eligible, true, undefined, true);
    if (home === undefined) throw new RangeError(`No eligible worker for socket ${id}`);
    const flow = this.#flow(this.#sockets, id, "socket");
    this.#setHome(flow, home);
    flow.eligible = eligible;
    return home;
  }

  /** The current home worker of socket `id`. */
  homeOf(id: number): number | undefined {
    return this.#sockets.get(id)?.affinity;
  }

  /** Socket `id` closed: its flow goes once its queued records (the Closed one last) ran. */
  socketClosed(id: number): void {
    const flow = this.#sockets.get(id);
    if (flow === undefined) return;
    flow.closing = true;
    this.#collect(flow);
  }

  // ---- queueing ---------------------------------------------------------------------------

  /** Queues a record of socket `id` (`body2` is appended to `body`). */
  enqueueSocket(id: number, tag: number, b: number, body?: Uint8Array, body2?: Uint8Array): void {
    const flow = this.#sockets.get(id);
    if (flow === undefined || flow.affinity === undefined) return; // unknown socket: dropped
    this.#enqueue(flow, tag, id, b, join(body, body2));
  }

  /** Queues a record of ordering key `key` (submit keys, serial waitfors). */
  enqueueOrdered(key: number, tag: number, body: Uint8Array): void {
    this.#enqueue(this.#flow(this.#ordered, key, "ordered"), tag, key, 0, body);
  }

  /**
   * Queues an unordered record; `sender` groups records for fairness, `worker`
   * pins it to one worker. `whileStarting` (pinned records only: replies and
   * exact deliveries to that worker) lets it run while the worker is still
   * loading its script — a top-level `await stage.request(…)` waits for it —
   * where new work waits until the worker is ready. One sender's pinned records
   * to a worker are all replies or none (they share a flow).
   */
  enqueueFree(
    sender: string,
    tag: number,
    a: number,
    b: number,
    body: Uint8Array,
    worker?: number,
    whileStarting = false,
  ) {
    const name = worker === undefined ? sender : `${sender}@${worker}`;
    const flow = this.#flow(this.#free, name, "free");
    if (worker !== undefined) {
      flow.affinity = worker;
      flow.pinned = true;
      flow.whileStarting = whileStarting;
    }
    this.#enqueue(flow, tag, a, b, body);
  }

  // ---- worker events ----------------------------------------------------------------------

  /** Worker `worker` finished a ticketed record (a Done record). */
  done(worker: number, ticket: number, cpuMicros: number, startedAt: number): void {
    const state = this.#workers[worker];
    const slot = ticket & 0xfff;
    const entry = state?.dispatched[slot];
    if (state === undefined || entry === undefined || entry.generation !== ticket >>> 12) return;
    this.#undispatch(state, worker, entry);
    state.lastDone = this.#hooks.now();
    const flow = entry.flow;
    const cpuMs = cpuMicros / 1000;
    // Deficit round robin charges what a record really cost: the estimate charged
    // at dispatch is settled now (an expensive record's estimate must not hold back
    // the cheap ones after it).
    if (flow.queue.length > 0 || flow.inFlight > 0) flow.deficit += entry.cost - cpuMs;
    flow.cost = Math.max(MIN_COST_MS, flow.cost * 0.8 + cpuMs * 0.2);
    this.#typicalCost = Math.max(MIN_COST_MS, this.#typicalCost * 0.95 + cpuMs * 0.05);
    // Unbound: its next record may run on any worker (a stale entry in this
    // worker's ready queue is skipped).
    if (flow.kind === "ordered" && flow.inFlight === 0) this.#unbind(flow);
    this.#hooks.finished(entry, worker, Math.max(0, startedAt - entry.queuedAt), cpuMs);
    this.#markReady(flow);
    this.#collect(flow);
    // Refill in batches (below half the window): each refill costs a wake-up of the
    // worker, and one per record would cost more than the records.
    if (this.#halfEmpty(state, worker)) this.#pump(worker);
    if (this.#readyAny.length > 0) this.#pumpAll(true);
  }

  /**
   * Worker `worker` (a first start or a replacement) exists and loads its
   * script: until {@link workerReady} it takes only replies (records queued
   * with `whileStarting`).
   */
  workerStarting(worker: number): void {
    const state = this.#workers[worker];
    if (state === undefined || state.available) return;
    state.starting = true;
    this.#pump(worker);
  }

  /** Worker `worker` started (or restarted) and takes work. */
  workerReady(worker: number): void {
    const state = this.#workers[worker];
    if (state === undefined) return;
    state.available = true;
    state.starting = false;
    state.stuck = false;
    this.#pump(worker);
    this.#pumpAll();
  }

  /**
   * Worker `worker` ran one record past the time slice: it takes no new work,
   * records it has not started are taken back and run elsewhere, and its
   * sockets that have input waiting move to other workers.
   */
  workerStuck(worker: number): void {
    const state = this.#workers[worker];
    if (state === undefined || state.stuck) return;
    state.stuck = true;
    state.available = false;
    const claims = this.#port.claims(worker);
    const revoked: Entry[] = [];
    for (const entry of state.dispatched) {
      if (entry !== undefined && claims.revoke(entry.slot, entry.generation)) {
        revoked.push(entry);
        state.revokedCount++;
      }
    }
    this.#requeue(state, worker, revoked);
    this.#rehome(worker, false);
    this.#pumpAll();
  }

  /**
   * Worker `worker` is about to be replaced (a reload): as for a stuck worker,
   * its unstarted records and waiting sockets move elsewhere, and it takes no
   * new work, even once its running records finish, until the replacement starts.
   */
  workerRetiring(worker: number): void {
    const state = this.#workers[worker];
    if (state === undefined) return;
    state.retiring = true;
    this.workerStuck(worker);
  }

  /** Worker `worker` finished its long record: it takes work again. */
  workerRecovered(worker: number): void {
    const state = this.#workers[worker];
    if (state === undefined || !state.stuck || state.retiring) return;
    state.stuck = false;
    state.available = !state.starting;
    this.#pump(worker);
  }

  /**
   * Worker `worker` is gone (terminated or crashed) and is being replaced:
   * started records are reported lost, unstarted ones run elsewhere (or on
   * the replacement), its sockets move.
   */
  workerLost(worker: number): void {
    const state = this.#workers[worker];
    if (state === undefined) return;
    const claims = this.#port.claims(worker);
    const unstarted: Entry[] = [];
    const started: Entry[] = [];
    for (const entry of state.dispatched) {
      if (entry === undefined) continue;
      (claims.started(entry.slot, entry.generation) ? started : unstarted).push(entry);
    }
    for (const entry of started) {
      this.#undispatch(state, worker, entry);
      this.#hooks.lost(entry, worker);
    }
    this.#requeue(state, worker, unstarted);
    const fresh = this.#freshWorker(false);
    fresh.generation = state.generation;
    fresh.ready = state.ready;
    this.#workers[worker] = fresh;
    for (const flow of this.#ordered.values()) {
      if (flow.affinity === worker && flow.inFlight === 0) this.#unbind(flow);
    }
    this.#rehome(worker, true);
    for (const flow of [...this.#sockets.values(), ...this.#ordered.values()]) this.#collect(flow);
    this.#pumpAll();
  }

  // ---- internals --------------------------------------------------------------------------

  #setHome(flow: Flow, home: number | undefined): void {
    if (flow.affinity !== undefined) this.#homes[flow.affinity]!--;
    flow.affinity = home;
    if (home !== undefined) this.#homes[home]!++;
  }

  /** Whether a worker can take one more record (a record always fits an empty window). */
  /**
   * Records dispatched to `worker` that it has not started. Started records
   * awaiting I/O do not count: they hold a claim slot but no CPU, and the
   * replies they wait for must still get through.
   */
  #unstarted(state: WorkerState, worker: number): number {
    const unstarted = (state.dispatchedCount - state.revokedCount - this.#port.starts(worker)) | 0;
    // Records queued behind their own busy key wait for I/O, not for the CPU.
    return Math.max(0, unstarted - (this.#port.blocked?.(worker) ?? 0));
  }

  /**
   * How many unstarted records a worker may hold: about `windowMs` of work at
   * this stage's typical cost, at most `window` — cheap records fill it, expensive
   * ones only a few slots, so work that becomes ready waits behind little.
   */
  #windowSize(): number {
    return Math.max(1, Math.min(this.#window, Math.floor(this.#windowMs / this.#typicalCost)));
  }

  #hasRoom(state: WorkerState, worker: number): boolean {
    return state.free.length > 0 && this.#unstarted(state, worker) < this.#windowSize();
  }

  /** Refill point: at most half the window (in records and in estimated cost) is in use. */
  #halfEmpty(state: WorkerState, worker: number): boolean {
    return this.#unstarted(state, worker) <= this.#windowSize() >> 1;
  }

  #freshWorker(available: boolean): WorkerState {
    const free = new Deque<number>();
    for (let slot = 0; slot < CLAIM_SLOTS; slot++) free.push(slot);
    return {
      available,
      starting: false,
      stuck: false,
      retiring: false,
      inFlight: 0,
      free,
      dispatched: new Array(CLAIM_SLOTS).fill(undefined),
      generation: 0,
      ready: new Deque(),
      ownTurn: true,
      lastDone: 0,
      dispatchedCount: 0,
      revokedCount: 0,
    };
  }

  #flow<K extends number | string>(map: Map<K, Flow>, key: K, kind: FlowKind): Flow {
    let flow = map.get(key);
    if (flow === undefined) {
      flow = {
        kind,
        key,
        affinity: undefined,
        pinned: false,
        whileStarting: false,
        queue: new Deque(),
        inFlight: 0,
        deficit: 0,
        // A new key is expected to cost what records of this stage typically cost.
        cost: this.#typicalCost,
        readyIn: undefined,
        midTurn: false,
        closing: false,
        eligible: undefined,
      };
      map.set(key, flow);
    }
    return flow;
  }

  #enqueue(flow: Flow, tag: number, a: number, b: number, body: Uint8Array): void {
    flow.queue.push({
      tag,
      a,
      b,
      body,
      queuedAt: this.#hooks.now(),
      flow,
      seq: this.#seq++,
      slot: -1,
      generation: 0,
      dispatchedAt: 0,
      cost: 0,
    });
    this.#queued++;
    if (flow.kind === "socket" && flow.inFlight === 0) {
      const home = this.#workers[flow.affinity!];
      if (home !== undefined && home.stuck) this.#move(flow, flow.affinity!, false);
    }
    this.#markReady(flow);
    if (flow.affinity !== undefined) this.#pump(flow.affinity);
    else {
      const target = this.#leastLoaded(undefined, false);
      if (target !== undefined) this.#pump(target);
    }
  }

  #cap(flow: Flow): number {
    return flow.kind === "free" ? Infinity : this.#flowCap;
  }

  #markReady(flow: Flow): void {
    if (flow.readyIn !== undefined || flow.queue.length === 0) return;
    if (flow.inFlight >= this.#cap(flow)) return;
    const queue = flow.affinity === undefined
      ? this.#readyAny
      : this.#workers[flow.affinity]!.ready;
    flow.readyIn = queue;
    queue.push(flow);
  }

  /** Fills every worker's window (`belowHalf`: only windows at most half full). */
  #pumpAll(belowHalf = false): void {
    for (let worker = 0; worker < this.#workers.length; worker++) {
      if (!belowHalf || this.#halfEmpty(this.#workers[worker]!, worker)) this.#pump(worker);
    }
  }

  #pump(worker: number): void {
    const state = this.#workers[worker];
    if (state === undefined) return;
    if (!state.available) {
      if (state.starting && !state.stuck) this.#pumpReplies(worker, state);
      return;
    }
    while (this.#hasRoom(state, worker)) {
      const flow = this.#next(worker, state);
      if (flow === undefined) return;
      this.#serve(flow, worker, state);
    }
  }

  /**
   * A starting worker takes only its reply flows (pinned there, so they wait in
   * its own ready queue); the other flows keep their place in the queue.
   */
  #pumpReplies(worker: number, state: WorkerState): void {
    const queue = state.ready;
    for (let left = queue.length; left > 0 && this.#hasRoom(state, worker); left--) {
      const flow = queue.shift()!;
      if (flow.readyIn !== queue) continue; // stale: re-queued elsewhere since
      if (!flow.whileStarting || flow.affinity !== worker) {
        queue.push(flow);
        continue;
      }
      flow.readyIn = undefined;
      this.#serve(flow, worker, state);
    }
  }

  #next(worker: number, state: WorkerState): Flow | undefined {
    for (let attempts = 0; attempts < 2; attempts++) {
      const queue = state.ownTurn ? state.ready : this.#readyAny;
      state.ownTurn = !state.ownTurn;
      while (queue.length > 0) {
        const flow = queue.shift()!;
        if (flow.readyIn !== queue) continue; // stale: re-queued elsewhere since
        flow.readyIn = undefined;
        if (flow.affinity === undefined || flow.affinity === worker) return flow;
        this.#markReady(flow);
      }
    }
    return undefined;
  }

  /** Deficit round robin: a flow spends up to its quantum of measured cost per turn. */
  #serve(flow: Flow, worker: number, state: WorkerState): void {
    // A turn cut short by a full window goes on at the next refill, quantum unchanged.
    if (!flow.midTurn) flow.deficit = Math.min(flow.deficit + this.#quantum, this.#quantum);
    flow.midTurn = false;
    const cap = this.#cap(flow);
    while (
      flow.deficit > 0 && flow.queue.length > 0 && flow.inFlight < cap &&
      this.#hasRoom(state, worker)
    ) {
      this.#dispatch(flow.queue.shift()!, worker, state);
      flow.deficit -= flow.cost; // provisional: settled with the measured cost at Done
    }
    if (flow.queue.length === 0) flow.deficit = 0;
    if (
      flow.deficit > 0 && flow.queue.length > 0 && flow.inFlight < cap &&
      flow.readyIn === undefined && (flow.affinity === undefined || flow.affinity === worker)
    ) {
      flow.midTurn = true;
      const queue = flow.affinity === undefined ? this.#readyAny : state.ready;
      flow.readyIn = queue;
      queue.unshift(flow);
      // The other queue had its turn while this one waited: serve this one first.
      state.ownTurn = queue === state.ready;
      return;
    }
    this.#markReady(flow);
  }

  #dispatch(entry: Entry, worker: number, state: WorkerState): void {
    const slot = state.free.shift()!;
    state.dispatchedCount++;
    state.generation = state.generation >= MAX_GENERATION ? 1 : state.generation + 1;
    entry.slot = slot;
    entry.generation = state.generation;
    entry.dispatchedAt = this.#hooks.now();
    state.dispatched[slot] = entry;
    state.inFlight++;
    entry.cost = entry.flow.cost;

    this.#queued--;
    const flow = entry.flow;
    flow.inFlight++;
    if (flow.kind === "ordered") flow.affinity = worker;
    this.#port.claims(worker).offer(slot, entry.generation);
    this.#port.send(
      worker,
      packTicket(entry.tag, slot, entry.generation),
      entry.a,
      entry.b,
      entry.body,
    );
  }

  #undispatch(state: WorkerState, worker: number, entry: Entry): void {
    state.dispatched[entry.slot] = undefined;
    state.free.push(entry.slot);
    state.inFlight--;

    entry.flow.inFlight--;
    this.#port.claims(worker).release(entry.slot);
  }

  /** Puts taken-back records back in front of their queues, in their original order. */
  #requeue(state: WorkerState, worker: number, entries: Entry[]): void {
    entries.sort((x, y) => y.seq - x.seq);
    for (const entry of entries) {
      this.#undispatch(state, worker, entry);
      entry.flow.queue.unshift(entry);
      this.#queued++;
    }
    for (const entry of entries) {
      const flow = entry.flow;
      if (flow.kind === "ordered" && flow.inFlight === 0) this.#unbind(flow);
      else this.#markReady(flow);
    }
  }

  #unbind(flow: Flow): void {
    flow.affinity = undefined;
    flow.readyIn = undefined; // an entry left in the worker's ready queue is now stale
    this.#markReady(flow);
  }

  /** Moves the sockets homed on `worker`: all of them when it is lost, else those with input. */
  #rehome(worker: number, lost: boolean): void {
    for (const flow of this.#sockets.values()) {
      if (flow.affinity !== worker || flow.inFlight > 0) continue;
      if (lost || flow.queue.length > 0) this.#move(flow, worker, lost);
    }
  }

  #move(flow: Flow, from: number, lost: boolean): void {
    if (flow.closing && flow.queue.length === 0) return;
    const to = this.#leastLoaded(flow.eligible, true, from);
    if (to === undefined && !lost) return; // nowhere better: wait for the home
    const body = this.#hooks.reopen(flow.key as number);
    if (body === undefined) return;
    if (!lost) {
      this.#port.send(from, packTicket(ToWorker.Forget, UNCLAIMED_SLOT, 0), flow.key as number, 0);
    }
    this.#setHome(flow, to ?? from);
    flow.readyIn = undefined;
    flow.queue.unshift({
      tag: ToWorker.Open,
      a: flow.key as number,
      b: 0,
      body,
      queuedAt: this.#hooks.now(),
      flow,
      // Ordered before the records it precedes: taken-back records are put back by
      // sequence number, and the socket's frames must never overtake its Open.
      seq: (flow.queue.peek()?.seq ?? this.#seq) - 0.5,
      slot: -1,
      generation: 0,
      dispatchedAt: 0,
      cost: 0,
    });
    this.#queued++;
    this.#markReady(flow);
  }

  #leastLoaded(
    eligible: ((worker: number) => boolean) | undefined,
    sockets: boolean,
    except?: number,
    evenStuck = false,
  ): number | undefined {
    let best: number | undefined;
    let bestLoad = Infinity;
    for (let worker = 0; worker < this.#workers.length; worker++) {
      const state = this.#workers[worker]!;
      if (
        worker === except || (state.stuck && !evenStuck) ||
        (eligible !== undefined && !eligible(worker))
      ) {
        continue;
      }
      // A worker still starting can take sockets (their Open waits in its queue).
      if (!state.available && !sockets) continue;
      const load = sockets ? this.#homes[worker]! * 1000 + state.inFlight : state.inFlight;
      if (load < bestLoad) {
        best = worker;
        bestLoad = load;
      }
    }
    return best;
  }

  /** Forgets a flow with nothing queued or running (closed sockets, idle keys). */
  #collect(flow: Flow): void {
    if (flow.queue.length > 0 || flow.inFlight > 0 || flow.readyIn !== undefined) return;
    if (flow.kind === "socket") {
      if (!flow.closing) return;
      this.#sockets.delete(flow.key as number);
      this.#setHome(flow, undefined);
    } else if (flow.kind === "ordered") this.#ordered.delete(flow.key as number);
    else this.#free.delete(flow.key as string);
  }
}
