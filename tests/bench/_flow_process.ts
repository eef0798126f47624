// deno-lint-ignore-file no-console
/**
 * The flow benchmark's server subprocesses: Stage (from a temporary deployment) and
 * the naive baseline, each optionally under a raised open-file limit, with their
 * resident memory read from `/proc`.
 *
 * @module
 */
import { openFileLimit, treeRss } from "./_flow_memory.ts";
import { stageScript } from "./_flow_protocol.ts";

const REPO_ROOT = new URL("../../", import.meta.url);
const NAIVE_SERVER = new URL("./_naive_server.ts", import.meta.url);
const READY_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 5_000;
/** Output lines kept per server for error messages. */
const TAIL_LINES = 40;

/** How to start a server. */
export interface ServerOptions {
  /** Soft open-file limit to ask `sh -c "ulimit -n …"` for (the hard limit caps it). */
  fileLimit?: number;
}

/** A server subprocess: drained output (the last lines kept), RSS, stop. */
export class ServerProcess implements AsyncDisposable {
  readonly name: string;
  readonly port: number;
  readonly pid: number;
  readonly #child: Deno.ChildProcess;
  readonly #tail: string[] = [];
  readonly #pumps: Promise<void>[];
  readonly #cleanup: () => Promise<void>;
  #onLine: ((line: string) => void) | undefined;
  #stopped: Promise<Deno.CommandStatus> | undefined;

  constructor(
    name: string,
    port: number,
    denoArgs: string[],
    env: Record<string, string>,
    options: ServerOptions,
    cleanup: () => Promise<void> = () => Promise.resolve(),
  ) {
    this.name = name;
    this.port = port;
    this.#cleanup = cleanup;
    // Deno cannot setrlimit: a shell raises the limit, then `exec` keeps the pid.
    const [program, args] = options.fileLimit === undefined ? [Deno.execPath(), denoArgs] : ["sh", [
      "-c",
      `ulimit -n ${options.fileLimit} 2>/dev/null || ulimit -n "$(ulimit -Hn)"; exec "$0" "$@"`,
      Deno.execPath(),
      ...denoArgs,
    ]];
    this.#child = new Deno.Command(program, {
      args,
      env,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.pid = this.#child.pid;
    this.#pumps = [this.#pump(this.#child.stdout), this.#pump(this.#child.stderr)];
  }

  /**
   * Resolves when `count` output lines (default 1) contain `text`, counting the
   * kept last lines and those that follow; rejects on exit or after `timeoutMs`.
   * Call it right after starting the process when `count` > 1, before the lines
   * of interest can fall out of the kept tail.
   */
  async ready(text: string, timeoutMs = READY_TIMEOUT_MS, count = 1): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const what = count === 1 ? `"${text}"` : `${count} lines with "${text}"`;
    try {
      await Promise.race([
        new Promise<void>((resolve) => {
          let seen = this.#tail.filter((line) => line.includes(text)).length;
          if (seen >= count) resolve();
          this.#onLine = (line) => line.includes(text) && ++seen >= count && resolve();
        }),
        this.#child.status.then((status) => {
          throw new Error(`${this.name} exited (code ${status.code}) before ${what}`);
        }),
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new Error(`${this.name}: no ${what} within ${timeoutMs} ms`)),
            timeoutMs,
          );
        }),
      ]);
    } catch (error) {
      throw new Error(`${(error as Error).message}; last output:\n${this.output()}`);
    } finally {
      clearTimeout(timer);
      this.#onLine = undefined;
    }
  }

  /** The last lines the process printed. */
  output(): string {
    return this.#tail.join("\n");
  }

  /** Resident memory of the server and its descendants, in bytes. */
  rss(): Promise<number> {
    return treeRss(this.pid);
  }

  /** The server's soft open-file limit. */
  fileLimit(): Promise<number> {
    return openFileLimit(this.pid).then((limit) => limit.soft);
  }

  /** SIGTERM (SIGKILL if it does not exit in time); resolves with the exit status. */
  stop(): Promise<Deno.CommandStatus> {
    this.#stopped ??= this.#stop();
    return this.#stopped;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }

  async #stop(): Promise<Deno.CommandStatus> {
    const signal = (name: Deno.Signal) => {
      try {
        this.#child.kill(name);
      } catch { /* already exited */ }
    };
    signal("SIGTERM");
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timedOut = new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), STOP_TIMEOUT_MS);
    });
    let status = await Promise.race([this.#child.status, timedOut]);
    clearTimeout(timer);
    if (status === undefined) {
      // A server with a large backlog may take long to stop; its numbers are taken.
      signal("SIGKILL");
      status = await this.#child.status;
    }
    await Promise.all(this.#pumps);
    await this.#cleanup();
    return status;
  }

  async #pump(stream: ReadableStream<Uint8Array>): Promise<void> {
    let rest = "";
    try {
      for await (const text of stream.pipeThrough(new TextDecoderStream())) {
        const lines = (rest + text).split("\n");
        rest = lines.pop()!;
        for (const line of lines) this.#line(line);
      }
    } catch { /* the process went away */ }
    if (rest !== "") this.#line(rest);
  }

  #line(line: string): void {
    this.#tail.push(line);
    if (this.#tail.length > TAIL_LINES) this.#tail.shift();
    this.#onLine?.(line);
  }
}

/** A port that was free a moment ago (bound to 0, then closed). */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr;
  listener.close();
  return port;
}

/** Stage settings of one scenario: `#threads`, `#router`, `#flow` (omitted when undefined). */
export interface StageSettings {
  workers: number;
  maxPending?: number;
  router?: [number] | [number, number];
  flow?: Record<string, number>;
  /** Run the script variant that sends a greeting frame on accept. */
  greeting?: boolean;
}

/** The stage.json of a scenario. `#flow` appears only when the scenario sets it. */
export function stageConfig(settings: StageSettings): Record<string, unknown> {
  return {
    "#threads": settings.maxPending === undefined
      ? [settings.workers]
      : [settings.workers, settings.maxPending],
    ...(settings.router === undefined ? {} : { "#router": settings.router }),
    ...(settings.flow === undefined ? {} : { "#flow": settings.flow }),
    "#startup": [["script+start"]],
    script: { "%package": ["scripts"], "script+start": "start" },
  };
}

/** Starts Stage with the flow script on a free port; resolves once every stage runs. */
export async function startStage(
  settings: StageSettings,
  options: ServerOptions = {},
): Promise<ServerProcess> {
  const reference = new URL("core/api/globals.d.ts", REPO_ROOT).pathname;
  // Not tests/_helpers/stage_process.ts: it imports core/, and the bench should type-check
  // and run while core/ is being changed underneath it.
  const dir = await Deno.makeTempDir({ prefix: "stage-flow-bench-" });
  await Deno.mkdir(`${dir}/scripts`);
  await Deno.writeTextFile(
    `${dir}/scripts/start.ts`,
    stageScript(reference, { greeting: settings.greeting === true }),
  );
  const config = `${dir}/stage.json`;
  await Deno.writeTextFile(config, JSON.stringify(stageConfig(settings), null, 2));
  const port = freePort();
  const server = new ServerProcess(
    "stage server",
    port,
    [
      "run",
      "-A",
      "--unstable-worker-options",
      "--unstable-net",
      new URL("main.ts", REPO_ROOT).pathname,
      "run",
      "--single", // one process: the figures (and RSS) are the server's own
      "--config",
      config,
      "--",
      String(port),
    ],
    { STAGE_LOG_FORMAT: "json", STAGE_LOG_LEVEL: "info" },
    options,
    () => Deno.remove(dir, { recursive: true }),
  );
  try {
    await server.ready("listening on");
    // Sockets accepted before every worker registered the URL would all be homed on
    // the first worker: wait for "Stage running".
    await server.ready("Stage running");
  } catch (error) {
    await server.stop();
    throw error;
  }
  return server;
}

/** Starts the naive baseline server on a free port (`greeting`: it greets every connection). */
export async function startNaive(
  options: ServerOptions = {},
  greeting = false,
): Promise<ServerProcess> {
  const port = freePort();
  const server = new ServerProcess(
    "naive server",
    port,
    ["run", "-A", NAIVE_SERVER.pathname, String(port), ...(greeting ? ["--greet"] : [])],
    {},
    options,
  );
  try {
    await server.ready("listening on");
  } catch (error) {
    await server.stop();
    throw error;
  }
  return server;
}

/** Runs `body` with a server, stopping it (and reporting a bad exit) however `body` ends. */
export async function withServer<T>(
  start: () => Promise<ServerProcess>,
  body: (server: ServerProcess) => Promise<T>,
): Promise<T> {
  const server = await start();
  try {
    return await body(server);
  } catch (error) {
    throw new Error(
      `${server.name}: ${
        (error as Error).message
      }\n--- last output of ${server.name}:\n${server.output()}`,
      { cause: error },
    );
  } finally {
    const status = await server.stop();
    if (!status.success && status.signal !== "SIGKILL") {
      console.error(
        `flow bench: ${server.name} exited with code ${status.code}; last output:\n${server.output()}`,
      );
    }
  }
}
