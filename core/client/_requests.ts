/** Requests waiting for their reply: by correlation id, or by a caller's predicate. */
import type { ClientTimer } from "./clock.ts";

export interface PendingRequest {
  /** The id set on the request, or `undefined` for a `match` request. */
  id: number | undefined;
  match: ((message: unknown) => boolean) | undefined;
  /** Whether the request's frame was handed to the socket (a loss then loses it). */
  sent: boolean;
  timer: ClientTimer | undefined;
  resolve(value: unknown): void;
  reject(error: Error): void;
}

export class RequestTable {
  readonly #field: string;
  #byId = new Map<number, PendingRequest>();
  #matchers: PendingRequest[] = [];

  constructor(field: string) {
    this.#field = field;
  }

  get size(): number {
    return this.#byId.size + this.#matchers.length;
  }

  add(request: PendingRequest): void {
    if (request.id === undefined) this.#matchers.push(request);
    else this.#byId.set(request.id, request);
  }

  remove(request: PendingRequest): boolean {
    request.timer?.cancel();
    if (request.id !== undefined) {
      if (this.#byId.get(request.id) !== request) return false;
      return this.#byId.delete(request.id);
    }
    const index = this.#matchers.indexOf(request);
    if (index < 0) return false;
    this.#matchers.splice(index, 1);
    return true;
  }

  /** Settles the request `message` answers, if any; returns whether one took it. */
  deliver(message: unknown): boolean {
    if (this.#byId.size > 0 && typeof message === "object" && message !== null) {
      const id = (message as Record<string, unknown>)[this.#field];
      const request = typeof id === "number" ? this.#byId.get(id) : undefined;
      if (request !== undefined) {
        this.remove(request);
        request.resolve(message);
        return true;
      }
    }
    for (const request of [...this.#matchers]) {
      let matched: boolean;
      try {
        matched = request.match!(message);
      } catch (error) {
        // A throwing predicate fails its own request, not the connection.
        this.remove(request);
        request.reject(error instanceof Error ? error : new Error(String(error)));
        continue;
      }
      if (matched) {
        this.remove(request);
        request.resolve(message);
        return true;
      }
    }
    return false;
  }

  /** Rejects the requests `which` selects (all by default) with `error`. */
  rejectWhere(error: Error, which: (request: PendingRequest) => boolean = () => true): void {
    for (const request of [...this.#byId.values(), ...this.#matchers]) {
      if (which(request) && this.remove(request)) request.reject(error);
    }
  }
}
