/**
 * A ticket-like bound on concurrent work: at most `concurrency` jobs run at
 * once, the rest wait in arrival order in a bounded queue.
 *
 * @module
 */
import { Deque } from "../pool/deque.ts";

/** Options of a {@link RequestLimiter}. */
export interface RequestLimiterOptions<Job> {
  /** Jobs running at once at most (a positive integer). */
  concurrency: number;
  /** Jobs waiting at most (a non-negative integer); beyond it {@link RequestLimiter.offer} refuses. */
  queue: number;
  /** Runs a job; its slot is free again when the promise settles (a rejection is reported). */
  run(job: Job): Promise<void>;
  /** `run` rejected (it should not: it is expected to report its own failures). */
  onError?(error: unknown, job: Job): void;
}

/**
 * Runs jobs with at most `concurrency` in flight; the rest wait FIFO.
 *
 * @example
 * ```ts
 * import { RequestLimiter } from "./request_limiter.ts";
 * const release: (() => void)[] = [];
 * const limiter = new RequestLimiter<string>({
 *   concurrency: 1,
 *   queue: 1,
 *   run: () => new Promise<void>((resolve) => release.push(resolve)),
 * });
 * const counts = () => `${limiter.active} running, ${limiter.waiting} waiting`;
 * const taken = [limiter.offer("a"), limiter.offer("b"), limiter.offer("c")];
 * if (taken.join() !== "true,true,false") throw new Error(taken.join());
 * if (counts() !== "1 running, 1 waiting") throw new Error(counts());
 * release[0]!();
 * await new Promise((resolve) => setTimeout(resolve, 0));
 * if (counts() !== "1 running, 0 waiting") throw new Error(`b did not start: ${counts()}`);
 * release[1]!();
 * ```
 */
export class RequestLimiter<Job> {
  #options: RequestLimiterOptions<Job>;
  #active = 0;
  #waiting = new Deque<Job>();

  /** @throws RangeError for a concurrency that is not a positive integer or a negative queue */
  constructor(options: RequestLimiterOptions<Job>) {
    if (!Number.isInteger(options.concurrency) || options.concurrency < 1) {
      throw new RangeError(
        `RequestLimiter: concurrency must be a positive integer; got ${options.concurrency}`,
      );
    }
    if (!Number.isInteger(options.queue) || options.queue < 0) {
      throw new RangeError(
        `RequestLimiter: queue must be a non-negative integer; got ${options.queue}`,
      );
    }
    this.#options = options;
  }

  /** Jobs running now. */
  get active(): number {
    return this.#active;
  }

  /** Jobs waiting for a slot. */
  get waiting(): number {
    return this.#waiting.length;
  }

  /** Starts `job` now or queues it; false (and nothing happens) when the queue is full. */
  offer(job: Job): boolean {
    if (this.#active < this.#options.concurrency) {
      this.#start(job);
      return true;
    }
    if (this.waiting >= this.#options.queue) return false;
    this.#waiting.push(job);
    return true;
  }

  /** Removes every waiting job and returns them in arrival order (running jobs go on). */
  clear(): Job[] {
    const jobs = [...this.#waiting];
    this.#waiting = new Deque<Job>();
    return jobs;
  }

  #start(job: Job): void {
    this.#active++;
    let running: Promise<void>;
    try {
      running = this.#options.run(job);
    } catch (error) {
      running = Promise.reject(error);
    }
    running.catch((error) => this.#options.onError?.(error, job)).finally(() => {
      this.#active--;
      this.#next();
    });
  }

  #next(): void {
    while (this.#active < this.#options.concurrency && this.#waiting.length > 0) {
      this.#start(this.#waiting.shift()!);
    }
  }
}
