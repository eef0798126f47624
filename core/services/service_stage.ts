/**
 * A service stage: a stage whose code is part of the platform (ticket, route,
 * index, agent) and runs on the main thread, next to the bus (DESIGN.md §1).
 *
 * A service talks to the rest of the process only through the message
 * interface scripts use — `waitfor`, `signal`, `request`, `context` of the same
 * {@link Messaging} class a worker's `stage` global is built on — plus
 * `deliverTo`/`requestTo`, which address a message exactly (one worker, a
 * reply address, a ticket). So when the multi-process bus arrives, a service
 * moves onto it without a change to its code.
 *
 * @module
 */
import type { Logger } from "@logtape/logtape";
import { type Address, type DeliveryOptions, Messaging } from "../api/messaging.ts";
import type { PlatformPort } from "../api/platform_port.ts";
import type { StageConfig, StageKind } from "../config/mod.ts";
import type { MetricsRegistry } from "../metrics/mod.ts";
import { Deque } from "../pool/deque.ts";
import { type SignalHeader, ToMain } from "../pool/wire.ts";
import type { Clock } from "../time/mod.ts";

/** What a service sees of the platform: the script message interface. */
export interface ServiceApi {
  /** The service stage's id (`"ticket"` for `=ticket+ticket`). */
  readonly id: string;
  readonly waitfor: Messaging["waitfor"];
  readonly signal: Messaging["signal"];
  readonly request: Messaging["request"];
  /** The context of the message being handled (sender, reply address, query, ticket). */
  readonly context: Messaging["context"];
  /** Sends to an exact address (see {@link Messaging.deliverTo}). */
  deliverTo(to: Address, values: unknown[], options?: DeliveryOptions): void;
  /** Sends to an exact address and awaits the reply (see {@link Messaging.requestTo}). */
  requestTo(
    to: Address,
    values: unknown[],
    timeoutMs?: number,
    options?: Omit<DeliveryOptions, "reply" | "error">,
  ): Promise<unknown>;
}

/** Everything a service gets when it starts. */
export interface ServiceContext {
  api: ServiceApi;
  clock: Clock;
  log: Logger;
  metrics: MetricsRegistry;
  /** The whole validated config (a service reads its own section). */
  config: StageConfig;
}

/** A started service. */
export interface Service {
  /** Stops timers, writes what must be written, closes what it opened. */
  stop(): void | Promise<void>;
}

/** Starts a service: registers its waitfors on `context.api` and returns its handle. */
export type ServiceFactory = (context: ServiceContext) => Service | Promise<Service>;

/** Where a bus delivers stage messages; how a service sends its own. */
export interface ServiceBus {
  route(body: Uint8Array): void;
}

/** Everything a {@link ServiceStage} needs. */
export interface ServiceStageOptions {
  id: string;
  kind: Exclude<StageKind, "script">;
  bus: ServiceBus;
  clock: Clock;
  log: Logger;
  metrics: MetricsRegistry;
  config: StageConfig;
  start: ServiceFactory;
}

/**
 * The {@link Messaging} of a stage that lives on the main thread (a service
 * stage, the process's own caller): its signals go straight to the bus, it
 * unpacks values as data and never runs shipped code (`{ service: true }`).
 */
export function mainThreadMessaging(id: string, bus: ServiceBus, log: Logger): Messaging {
  const port: PlatformPort = {
    send(tag, _a, _b, body) {
      if (tag === ToMain.Signal && body !== undefined) bus.route(body);
      else log.error("Main-thread stage {id} sent record tag {tag}", { id, tag });
    },
    post() {}, // registrations need no main-thread bookkeeping: this is the main thread
    request: () =>
      Promise.reject(new TypeError(`Main-thread stage "${id}" has no worker-only requests`)),
  };
  return new Messaging(
    id,
    0,
    port,
    log,
    (name) => Promise.reject(new TypeError(`Main-thread stage "${id}" cannot load "${name}"`)),
    { service: true },
  );
}

/** Messages handled per turn before the rest waits for the next macrotask (I/O goes first). */
const TURN_BUDGET = 512;

/** A running service stage (a member of the bus). */
export class ServiceStage {
  readonly id: string;
  readonly kind: Exclude<StageKind, "script">;
  #options: ServiceStageOptions;
  #messaging: Messaging;
  #service: Service | undefined;
  #queue = new Deque<Uint8Array>();
  #scheduled = false;
  #stopped = false;

  constructor(options: ServiceStageOptions) {
    this.id = options.id;
    this.kind = options.kind;
    this.#options = options;
    this.#messaging = mainThreadMessaging(options.id, options.bus, options.log);
  }

  /** Starts the service (its waitfors are registered when this resolves). */
  async start(): Promise<void> {
    const messaging = this.#messaging;
    const id = this.id;
    const api: ServiceApi = {
      id,
      waitfor: messaging.waitfor.bind(messaging),
      signal: messaging.signal.bind(messaging),
      request: messaging.request.bind(messaging),
      get context() {
        return messaging.context;
      },
      deliverTo: messaging.deliverTo.bind(messaging),
      requestTo: messaging.requestTo.bind(messaging),
    };
    const { clock, log, metrics, config } = this.#options;
    this.#service = await this.#options.start({ api, clock, log, metrics, config });
    log.info("Service stage {kind}+{id} started", { kind: this.kind, id });
  }

  /** Stops the service; messages that arrive later are refused (logged). */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#drain(Infinity);
    await this.#service?.stop();
    this.#options.log.info("Service stage {kind}+{id} stopped", { kind: this.kind, id: this.id });
  }

  /** `ready` once started, `stopping` once asked to stop. */
  get state(): "starting" | "ready" | "stopping" {
    return this.#stopped ? "stopping" : this.#service === undefined ? "starting" : "ready";
  }

  /** Messages waiting to be handled. */
  get queued(): number {
    return this.#queue.length;
  }

  /** Queues a stage message; it is handled after the current task, in arrival order. */
  deliver(header: SignalHeader, body: Uint8Array): void {
    if (this.#stopped) {
      this.#options.log.warning("Service {id} is stopped; message {message} dropped", {
        id: this.id,
        message: header.message,
      });
      return;
    }
    // The body may be a view into a ring's shared slab: keep a copy while it waits.
    this.#queue.push(body.slice());
    if (this.#scheduled) return;
    this.#scheduled = true;
    queueMicrotask(() => this.#drain(TURN_BUDGET));
  }

  #drain(budget: number): void {
    this.#scheduled = false;
    let handled = 0;
    for (let body = this.#queue.shift(); body !== undefined; body = this.#queue.shift()) {
      try {
        this.#messaging.receive(body);
      } catch (error) {
        this.#options.log.error("Service {id} failed on a message: {error}", {
          id: this.id,
          error,
        });
      }
      if (++handled === budget) break;
    }
    if (this.#queue.length > 0 && !this.#scheduled) {
      this.#scheduled = true;
      setTimeout(() => this.#drain(TURN_BUDGET), 0);
    }
  }
}
