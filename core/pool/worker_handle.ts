/**
 * The runtime adapter for workers: the only place that calls `new Worker`.
 *
 * @module
 */
import type { WorkerPermissions } from "../config/mod.ts";
import type { MainControl, WorkerControl } from "./wire.ts";

export type { WorkerPermissions };

/** A started worker, as the pool drives it. */
export interface WorkerHandle {
  post(message: MainControl, transfer?: Transferable[]): void;
  terminate(): void;
  /** Control messages from the worker. */
  onControl: (message: WorkerControl) => void;
  /** An uncaught error in the worker (the worker is gone or about to be). */
  onError: (message: string) => void;
}

/** Starts a worker by index. */
export type WorkerFactory = (index: number, name: string) => WorkerHandle;

/**
 * A factory for real Deno workers running `core/pool/worker_entry.ts` with the
 * given permissions (requires `--unstable-worker-options`; listeners need `--unstable-net`).
 */
export function denoWorkerFactory(permissions: WorkerPermissions): WorkerFactory {
  const url = new URL("./worker_entry.ts", import.meta.url);
  return (_index, name) => {
    const worker = new Worker(url, {
      type: "module",
      name,
      // Deno extension: the worker gets these permissions and nothing more.
      deno: { permissions },
    } as WorkerOptions);
    const handle: WorkerHandle = {
      post: (message, transfer) => worker.postMessage(message, transfer ?? []),
      terminate: () => worker.terminate(),
      onControl: () => {},
      onError: () => {},
    };
    worker.onmessage = (event: MessageEvent<WorkerControl>) => handle.onControl(event.data);
    worker.onerror = (event: ErrorEvent) => {
      event.preventDefault();
      handle.onError(event.message);
    };
    worker.onmessageerror = () => handle.onError("a control message could not be deserialized");
    return handle;
  };
}
