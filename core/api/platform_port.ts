/**
 * The worker's line to the main thread, as the script API sees it.
 *
 * @module
 */
import type { WorkerControl } from "../pool/wire.ts";

/** How API objects in a worker reach the main thread. */
export interface PlatformPort {
  /** Sends a ring record (hot path): tag, two integers and up to two body parts. */
  send(tag: number, a: number, b: number, body?: Uint8Array, body2?: Uint8Array): void;
  /** Sends a control message (rare events). */
  post(message: WorkerControl): void;
  /** Sends a control message carrying `requestId` and resolves with the main thread's answer. */
  request<T>(make: (requestId: number) => WorkerControl): Promise<T>;
}
