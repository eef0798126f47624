/**
 * Runs `main.ts` as a real subprocess (the way users start Stage) and reads its
 * JSON log lines.
 */
import { repoRoot } from "./stage_fixture.ts";

export interface LogLine {
  level: string;
  message: string;
  logger: string;
  properties: Record<string, unknown>;
}

/** `deno run … main.ts <args>` with JSON logs, output piped. */
function stageCommand(args: string[], env: Record<string, string>): Deno.Command {
  return new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--unstable-worker-options",
      "--unstable-net",
      `${repoRoot}/main.ts`,
      ...args,
    ],
    env: { STAGE_LOG_FORMAT: "json", ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  });
}

/** A running `stage` subprocess. */
export class StageProcess implements AsyncDisposable {
  readonly child: Deno.ChildProcess;
  readonly lines: LogLine[] = [];
  readonly stderr: string[] = [];
  #waiters: (() => void)[] = [];
  #pumps: Promise<void>[];
  #status: Promise<Deno.CommandStatus>;

  constructor(args: string[], env: Record<string, string> = {}) {
    this.child = stageCommand(args, env).spawn();
    this.#status = this.child.status;
    this.#pumps = [
      this.#pump(this.child.stdout, (line) => {
        try {
          this.lines.push(JSON.parse(line) as LogLine);
        } catch {
          this.lines.push({ level: "RAW", message: line, logger: "", properties: {} });
        }
      }),
      this.#pump(this.child.stderr, (line) => this.stderr.push(line)),
    ];
  }

  /** Resolves with the first log line matching `predicate` (rejects after `timeoutMs`). */
  async waitFor(predicate: (line: LogLine) => boolean, timeoutMs = 20_000): Promise<LogLine> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.lines.find(predicate);
      if (found !== undefined) return found;
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new Error(
          `no matching log line within ${timeoutMs} ms; got:\n${
            this.lines.map((l) => l.message).join("\n")
          }\n${this.stderr.join("\n")}`,
        );
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, Math.min(left, 200));
        function done() {
          clearTimeout(timer);
          resolve();
        }
        this.#waiters.push(done);
      });
    }
  }

  /** Waits for exit and returns the code. */
  async exitCode(): Promise<number> {
    const status = await this.#status;
    await Promise.all(this.#pumps);
    return status.code;
  }

  signal(signal: Deno.Signal): void {
    try {
      this.child.kill(signal);
    } catch { /* already exited */ }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.signal("SIGKILL");
    await this.exitCode();
  }

  async #pump(stream: ReadableStream<Uint8Array>, onLine: (line: string) => void): Promise<void> {
    let rest = "";
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      rest += chunk;
      let newline;
      while ((newline = rest.indexOf("\n")) >= 0) {
        const line = rest.slice(0, newline).trim();
        rest = rest.slice(newline + 1);
        if (line.length > 0) onLine(line);
      }
      for (const wake of this.#waiters.splice(0)) wake();
    }
    if (rest.trim().length > 0) onLine(rest.trim());
    for (const wake of this.#waiters.splice(0)) wake();
  }
}

/** Runs `main.ts` to completion and returns its exit code and output. */
export async function runStage(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const output = await stageCommand(args, env).output();
  const decoder = new TextDecoder();
  return {
    code: output.code,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
  };
}

/** Writes a deployment folder (stage.json + scripts/) and returns its config path. */
export async function writeDeployment(
  config: Record<string, unknown>,
  scripts: Record<string, string>,
): Promise<{ dir: string; config: string }> {
  const dir = await Deno.makeTempDir({ prefix: "stage-cli-" });
  await Deno.mkdir(`${dir}/scripts`);
  for (const [name, source] of Object.entries(scripts)) {
    await Deno.writeTextFile(`${dir}/scripts/${name}`, source);
  }
  await Deno.writeTextFile(`${dir}/stage.json`, JSON.stringify(config, null, 2));
  return { dir, config: `${dir}/stage.json` };
}

/** A free loopback TCP port (bound, then released). */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}
