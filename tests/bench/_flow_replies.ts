/**
 * The flow benchmark's record of replies and the figures drawn from it.
 *
 * @module
 */

/** Resolves after `ms`. */
export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** `value` rounded to `digits` decimals. */
export const round = (value: number, digits = 1): number => {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
};

/** The value at quantile `p` of ascending `sorted` values (NaN when empty). */
export function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;
}

/** Latency figures of a set of replies. */
export interface LatencyStats {
  replies: number;
  replies_per_s: number;
  p50_ms: number;
  p99_ms: number;
  max_ms: number;
}

/** Every reply any client received: when it was sent, when it came back, to whom. */
export class ReplyLog {
  count = 0;
  /** Replies whose length differed from the request's. */
  invalid = 0;
  #sent = new Float64Array(1 << 16);
  #received = new Float64Array(1 << 16);
  #client = new Uint32Array(1 << 16);
  /** Batches written by open-loop clients: their send stamp and frame count. */
  #batches: { at: number; count: number }[] = [];

  /** Notes `count` frames stamped `at` handed to a socket (open-loop clients). */
  recordSent(at: number, count: number): void {
    this.#batches.push({ at, count });
  }

  /** Frames noted by {@linkcode recordSent} with a stamp in `[from, to)`. */
  sentBetween(from: number, to: number): number {
    let total = 0;
    for (const { at, count } of this.#batches) if (at >= from && at < to) total += count;
    return total;
  }

  record(sent: number, received: number, client: number): void {
    if (this.count === this.#sent.length) {
      const grow = <T extends Float64Array | Uint32Array>(old: T, fresh: T): T => {
        fresh.set(old);
        return fresh;
      };
      this.#sent = grow(this.#sent, new Float64Array(this.count * 2));
      this.#received = grow(this.#received, new Float64Array(this.count * 2));
      this.#client = grow(this.#client, new Uint32Array(this.count * 2));
    }
    this.#sent[this.count] = sent;
    this.#received[this.count] = received;
    this.#client[this.count++] = client;
  }

  /**
   * Latencies of the replies that match: `sent` in `[sentFrom, sentTo)` and/or
   * `received` in `[receivedFrom, receivedTo)`, and `client` accepted by the filter.
   */
  select(
    window: { sentFrom?: number; sentTo?: number; receivedFrom?: number; receivedTo?: number },
    client: (id: number) => boolean = () => true,
  ): { latencies: Float64Array; clients: Uint32Array } {
    const { sentFrom = -Infinity, sentTo = Infinity } = window;
    const { receivedFrom = -Infinity, receivedTo = Infinity } = window;
    const latencies: number[] = [];
    const clients: number[] = [];
    for (let i = 0; i < this.count; i++) {
      const sent = this.#sent[i]!;
      const received = this.#received[i]!;
      if (sent < sentFrom || sent >= sentTo || received < receivedFrom || received >= receivedTo) {
        continue;
      }
      if (!client(this.#client[i]!)) continue;
      latencies.push(received - sent);
      clients.push(this.#client[i]!);
    }
    return { latencies: Float64Array.from(latencies), clients: Uint32Array.from(clients) };
  }

  /** p50/p99/max of latencies, and replies per second over `seconds`. */
  static stats(latencies: Float64Array, seconds: number): LatencyStats {
    const sorted = latencies.slice().sort();
    return {
      replies: sorted.length,
      replies_per_s: Math.round(sorted.length / seconds),
      p50_ms: round(percentile(sorted, 0.5), 2),
      p99_ms: round(percentile(sorted, 0.99), 2),
      max_ms: round(sorted.length === 0 ? NaN : sorted[sorted.length - 1]!, 2),
    };
  }
}
