/**
 * Helpers shared by the ring tests and their worker: deterministic payloads, checksums,
 * and a way to keep the event loop alive while only Atomics.waitAsync is pending.
 *
 * @module
 */

/** FNV-1a hash of `bytes`, as a uint32. */
export function fnv1a(bytes: Uint8Array): number {
  let hash = 0x811C9DC5;
  for (let i = 0; i < bytes.length; i++) {
    hash = Math.imul(hash ^ bytes[i]!, 0x01000193);
  }
  return hash >>> 0;
}

/** A pseudo-random body of 8..64 bytes determined by `seq` (xorshift32). */
export function payload(seq: number): Uint8Array {
  let state = (Math.imul(seq, 0x9E3779B1) ^ 0xA5A5A5A5) | 1;
  const next = () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return state >>> 0;
  };
  const body = new Uint8Array(8 + (next() % 57));
  for (let i = 0; i < body.length; i++) body[i] = next() & 0xFF;
  return body;
}

/** Fills `bytes` with a pattern determined by `seed`, and returns it. */
export function fill(bytes: Uint8Array, seed: number): Uint8Array {
  for (let i = 0; i < bytes.length; i++) bytes[i] = (seed * 31 + i * 7) & 0xFF;
  return bytes;
}

/**
 * Awaits `promise` while an interval keeps the event loop alive: in Deno a pending
 * Atomics.waitAsync alone does not, and the process would end mid-test.
 */
export async function keepAlive<T>(promise: Promise<T>): Promise<T> {
  const interval = setInterval(() => {}, 5);
  try {
    return await promise;
  } finally {
    clearInterval(interval);
  }
}

/** Starts the test worker. */
export function startWorker(): Worker {
  return new Worker(new URL("./_echo_worker.ts", import.meta.url), { type: "module" });
}

/** Resolves with the next message `worker` posts, rejects on its first error. */
export function nextMessage<T>(worker: Worker): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    worker.onmessage = (event: MessageEvent<T>) => resolve(event.data);
    worker.onerror = (event: ErrorEvent) => {
      event.preventDefault();
      reject(new Error(`Worker failed: ${event.message}`));
    };
  });
}
