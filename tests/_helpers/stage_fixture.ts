/**
 * Starts a real Stage process runtime in the test's process (real workers,
 * real sockets) from a throw-away deployment folder: a config and scripts.
 */
import { dirname, join } from "node:path";
import { loadConfig, type StageConfig } from "../../core/config/mod.ts";
import { type RunningProcess, type ScriptStage, startProcess } from "../../core/cluster/mod.ts";
import { coreLogger, type LogOptions, setupLogging } from "../../core/log/mod.ts";
import type { BrokerLimits } from "../../core/net/broker_service.ts";

/** The real repository root (for `/// <reference>` paths in fixture scripts). */
export const repoRoot: string = dirname(dirname(dirname(new URL(import.meta.url).pathname)));

/** Logging of fixtures: warnings and errors only, JSON lines. */
export const quietLog: LogOptions = { level: "warning", format: "json" };

export interface FixtureOptions {
  /** Script files by name relative to the scripts folder, e.g. `{ "start.ts": "..." }`. */
  scripts: Record<string, string>;
  /** The stage.json content; `%package` defaults to `["scripts"]`. */
  config?: Record<string, unknown>;
  workers?: number;
  transpile?: boolean;
  limits?: Partial<BrokerLimits>;
  args?: string[];
}

export interface Fixture extends AsyncDisposable {
  dir: string;
  config: StageConfig;
  running: RunningProcess;
  stage(id?: string): ScriptStage;
  /** The bound port of the listener whose URL contains `match` (the first one by default). */
  port(match?: string, id?: string): number;
  writeScript(name: string, source: string): Promise<void>;
  stop(): Promise<void>;
}

let logged = false;

/** Writes the deployment folder and starts it. */
export async function startFixture(options: FixtureOptions): Promise<Fixture> {
  if (!logged) {
    setupLogging(quietLog, false);
    logged = true;
  }
  const dir = await Deno.makeTempDir({ prefix: "stage-test-" });
  await Deno.mkdir(join(dir, "scripts"), { recursive: true });
  const writeScript = async (name: string, source: string) => {
    await Deno.mkdir(dirname(join(dir, "scripts", name)), { recursive: true });
    await Deno.writeTextFile(join(dir, "scripts", name), source);
  };
  for (const [name, source] of Object.entries(options.scripts)) await writeScript(name, source);
  const config = {
    "#startup": [["script+start"]],
    ...options.config,
    script: {
      "%package": ["scripts"],
      "script+start": "start",
      ...(options.config?.script as Record<string, unknown> | undefined),
    },
  };
  await Deno.writeTextFile(join(dir, "stage.json"), JSON.stringify(config, null, 2));
  const loaded = await loadConfig(join(dir, "stage.json"), () => undefined);
  let running: RunningProcess;
  try {
    running = await startProcess(loaded, {
      transpile: options.transpile ?? false,
      args: options.args ?? [],
      logOptions: quietLog,
      log: coreLogger("test"),
      workers: options.workers ?? 2,
      ...(options.limits === undefined ? {} : { limits: options.limits }),
    });
  } catch (error) {
    await Deno.remove(dir, { recursive: true });
    throw error;
  }
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await running.stop(2000);
    await Deno.remove(dir, { recursive: true });
  };
  const stage = (id = "start") => {
    const found = running.stages.get(id);
    if (found === undefined) throw new Error(`no stage ${id}`);
    return found;
  };
  return {
    dir,
    config: loaded,
    running,
    stage,
    port(match = "", id = "start") {
      for (const [url, address] of stage(id).broker.listeners()) {
        if (url.includes(match)) return Number(address.slice(address.lastIndexOf(":") + 1));
      }
      throw new Error(`no listener matching "${match}"`);
    },
    writeScript,
    stop,
    [Symbol.asyncDispose]: stop,
  };
}

/** The `/// <reference>` line fixture scripts start with. */
export const REFERENCE = `/// <reference types="${repoRoot}/core/api/globals.d.ts" />\n`;
