/**
 * Entry module of every pool worker: attaches to the rings and control block,
 * installs the script globals, loads the stage's main script, then runs records
 * from the inbound ring in key order until terminated.
 *
 * @module
 */
/// <reference lib="deno.worker" />
import { coreLogger, setupLogging } from "../log/mod.ts";
import { toErrorRecord } from "../message/mod.ts";
import { RingBuffer, RingReceiver, RingSender } from "../ring/mod.ts";
import { SharedTable } from "../ring/shared_table.ts";
import { ScriptLoader } from "../script/mod.ts";
import { systemClock } from "../time/mod.ts";
import { ScriptHost } from "../api/script_host.ts";
import type { PlatformPort } from "../api/platform_port.ts";
import { describeScriptError, scriptPosition } from "../api/script_error.ts";
import { ClaimTable } from "./claim_table.ts";
import { ControlBlock } from "./control_block.ts";
import { KeyExecutor } from "./key_executor.ts";
import { MacrotaskYield } from "./macrotask_yield.ts";
import {
  type MainControl,
  recordNames,
  ToMain,
  ToWorker,
  UNCLAIMED_SLOT,
  type WorkerControl,
  type WorkerInit,
} from "./wire.ts";

/** Longest stretch the ring loop runs before letting timers and I/O in. */
const YIELD_EVERY_MS = 2;

const pending = new Map<number, (value: unknown) => void>();
let nextRequest = 1;
let host: ScriptHost | undefined;

self.onmessage = (event: MessageEvent<MainControl>) => {
  const message = event.data;
  switch (message.type) {
    case "init":
      boot(message).catch((error) => {
        // A throw at a script's top level: name the script line, as for handler errors.
        const record = toErrorRecord(error);
        const where = scriptPosition(error);
        if (where !== undefined && !record.message.includes(where)) {
          record.message = `${record.message} (at ${where})`;
        }
        post({ type: "failed", error: record });
      });
      return;
    case "listen-result":
      host?.broker.listenResult(message.url, message.error);
      return;
    case "once-result": {
      const resolve = pending.get(message.requestId);
      pending.delete(message.requestId);
      resolve?.(message.first);
      return;
    }
    case "ifaddr-result": {
      const resolve = pending.get(message.requestId);
      pending.delete(message.requestId);
      resolve?.(message); // the broker reads addresses or error
      return;
    }
  }
};

function post(message: WorkerControl): void {
  self.postMessage(message);
}

async function boot(init: WorkerInit): Promise<void> {
  setupLogging(init.log, init.log.format === "pretty");
  const log = coreLogger("pool", `worker-${init.index}`);
  guardWorker(log);
  const sender = new RingSender(
    new RingBuffer(init.outbound, { manualWake: true, doorbell: init.outboundBell }),
  );
  // Pooled bodies: small records are copied into shared slabs (cheaper than one buffer each).
  const receiver = new RingReceiver(
    new RingBuffer(init.inbound, { pooledBodies: true, doorbell: init.inboundBell }),
  );
  const control = new ControlBlock(init.control);
  const port: PlatformPort = {
    send: (tag, a, b, body, body2) => sender.send(tag, a, b, body, body2),
    post,
    request<T>(make: (requestId: number) => WorkerControl): Promise<T> {
      const requestId = nextRequest++;
      return new Promise<T>((resolve) => {
        pending.set(requestId, resolve as (value: unknown) => void);
        post(make(requestId));
      });
    },
  };
  const script = init.script;
  const loader = new ScriptLoader({
    packages: script.packages,
    reloadSeconds: script.reloadSeconds,
    transpile: script.transpile,
    clock: systemClock,
    onReloadError: (path, error) =>
      log.error("Reloading {path} failed; its last good version keeps serving: {error}", {
        path,
        error,
      }),
  });
  host = new ScriptHost({
    stageId: init.stageId,
    worker: init.index,
    port,
    loader,
    process: init.process,
    env: readEnv,
    log: coreLogger("script", init.stageId),
    yieldSignal: control,
    shared: new SharedTable(init.shared),
  });
  host.installGlobals();

  const running = host;
  const startedAt = new Uint8Array(8);
  const startedView = new DataView(startedAt.buffer);
  const executor = new KeyExecutor(
    (tag, a, b, body) => running.handle(tag, a, b, body) as void | Promise<unknown>,
    control,
    new ClaimTable(init.claims),
    {
      done: (ticket, cpuMicros, started) => {
        startedView.setFloat64(0, started, true);
        sender.send(ToMain.Done, ticket, cpuMicros, startedAt); // copied: the scratch is reused
      },
      failed: (error, tag, key) =>
        log.error("Script error in the {what} handler (key {key}): {message}", {
          what: recordNames[tag] ?? `record ${tag}`,
          key,
          message: describeScriptError(error),
          error,
        }),
      now: () => performance.timeOrigin + performance.now(),
    },
  );
  const run = (word: number, a: number, b: number, body: Uint8Array) => {
    const tag = word & 0xff;
    if (tag === ToWorker.Forget) {
      running.broker.forget(a);
      return;
    }
    // Inline unpackTicket (no object per record).
    executor.submit(keyOf(tag, a), tag, a, b, body, (word >>> 8) & 0xfff, (word >>> 20) & 0x7ff);
  };
  // The ring loop runs while the main script loads: a top-level
  // `await stage.request(…)` needs its reply. Until "ready" the main thread sends
  // only stage messages pinned to this worker; those no registered waitfor takes
  // yet (a named callback registered further down), and anything else, are held
  // back until the script has loaded — counted as blocked, so that the main
  // thread's window keeps room for the replies.
  let loaded = false;
  const held: [number, number, number, Uint8Array][] = [];
  const loop = runLoop(receiver, control, (word, a, b, body) => {
    if (loaded || running.runsWhileLoading(word & 0xff, body)) {
      run(word, a, b, body);
      return;
    }
    held.push([word, a, b, body.slice()]);
    if (((word >>> 8) & 0xfff) !== UNCLAIMED_SLOT) control.countBlocked(1);
  });
  loop.catch(() => {}); // a failure while loading surfaces from the `await loop` below
  const preload = script.preload === undefined ? [] : await preloadNames(script.preload);
  const preloader = script.preload === undefined ? undefined : new ScriptLoader({
    packages: [script.preload],
    reloadSeconds: script.reloadSeconds,
    transpile: script.transpile,
    clock: systemClock,
  });
  for (const name of preload) await preloader!.require(name);
  await host.loadMain(script.main, []);
  loaded = true;
  for (const [word, a, b, body] of held.splice(0)) {
    if (((word >>> 8) & 0xfff) !== UNCLAIMED_SLOT) control.countBlocked(-1);
    run(word, a, b, body);
  }
  post({ type: "ready", idle: host.hasIdle });
  await loop;
}

/**
 * One bad script must not take its worker down: uncaught errors and unhandled
 * rejections (from timers, un-awaited promises) are logged, and `Deno.exit` and
 * `close`, which would silently end only this worker, throw instead.
 */
function guardWorker(log: ReturnType<typeof coreLogger>): void {
  globalThis.addEventListener("error", (event) => {
    event.preventDefault();
    log.error("Uncaught script error: {message}", {
      message: describeScriptError(event.error ?? event.message),
      error: event.error,
    });
  });
  globalThis.addEventListener("unhandledrejection", (event) => {
    event.preventDefault();
    log.error("Unhandled promise rejection in a script: {message}", {
      message: describeScriptError(event.reason),
      error: event.reason,
    });
  });
  const refuse = (what: string) => () => {
    throw new Error(`${what} is not available to stage scripts; stop the server with SIGTERM`);
  };
  Object.defineProperty(Deno, "exit", {
    configurable: true,
    writable: true,
    value: refuse("Deno.exit()"),
  });
  // self.close() would end the worker without any event reaching the pool.
  Object.defineProperty(globalThis, "close", {
    configurable: true,
    writable: true,
    value: refuse("close()"),
  });
}

/** The ordering key of a record: socket records are keyed by socket id. */
function keyOf(tag: number, a: number): number {
  return tag === ToWorker.Idle || tag === ToWorker.JoinFailed ? 0 : a;
}

async function runLoop(
  receiver: RingReceiver,
  control: ControlBlock,
  handle: (tag: number, a: number, b: number, body: Uint8Array) => void,
): Promise<void> {
  // Async handlers, timers and control messages need the event loop too.
  const pause = new MacrotaskYield(YIELD_EVERY_MS);
  for (;;) {
    // The watchdog reads this to tell a blocked event loop from an idle one.
    control.loopTurned(performance.timeOrigin + performance.now());
    const count = receiver.drain(handle);
    if (count === 0) {
      await receiver.wait();
      pause.reset();
    } else {
      await pause.maybe();
    }
  }
}

async function preloadNames(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    if (entry.isFile && /\.(ts|js|mts|mjs)$/.test(entry.name)) names.push(entry.name);
  }
  return names.sort();
}

function readEnv(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined; // no env permission: the token stays as written
  }
}
