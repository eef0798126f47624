/**
 * `stage new <dir>`: scaffold a runnable Stage project — a config, a start
 * script, a copy of the script globals' type declarations, a deno.json that
 * type-checks the scripts, and an example test that talks to the stage over TCP.
 *
 * The project does not depend on where Stage is installed: the declarations
 * are copied, and the example test runs the `stage` command (or `$STAGE`).
 *
 * @module
 */
import { join } from "node:path";
import type { CliCommand } from "./cli_args.ts";
import type { CliIo } from "./cli_io.ts";
import { ExitCode } from "./run_command.ts";

/**
 * The script globals' declarations, copied into every new project. A compiled
 * binary embeds this file (deno.json's `compile` task `--include`s it).
 */
const GLOBALS_D_TS = new URL("../api/globals.d.ts", import.meta.url);

/** The port the scaffolded start script listens on when `process.args[0]` is not given. */
export const SCAFFOLD_PORT = 8801;

const CONFIG = {
  "#startup": [["script+start"]],
  script: {
    "%package": ["../scripts"],
    "script+start": "start",
  },
};

const START_TS = `/// <reference types="../types/stage.d.ts" />
/**
 * The start stage: a JSON greeting and echo server on 127.0.0.1:${SCAFFOLD_PORT}
 * (another port: \`stage run --single -- <port>\`).
 *
 * Frames are a 4-byte little-endian total length, then UTF-8 JSON.
 * Send \`{ "message": "hello", "name": "Ada" }\` and get a greeting back;
 * send \`{ "message": "echo", ... }\` and get the same value back.
 */

const portArg = process.args[0] ?? "${SCAFFOLD_PORT}";
const port = Number(portArg);
if (!Number.isInteger(port) || port < 1 || port > 65535) {
  throw new RangeError(\`expected a TCP port as the first script argument, got "\${portArg}"\`);
}

const server = broker.ready(\`tcp://127.0.0.1:\${port}?json\`, (socket) => {
  socket.greeted = 0; // user fields live with the socket
  return (socket, data) => {
    switch (data?.message) {
      case "hello": {
        const greeted = Number(socket.greeted) + 1;
        socket.greeted = greeted;
        socket.commit({ message: "hello", text: \`Hello, \${data.name ?? "stranger"}!\`, greeted });
        return;
      }
      case "echo":
        socket.commit(data);
        return;
      default:
        socket.commit({
          message: "error",
          error: \`unknown message \${JSON.stringify(data?.message)}; try "hello" or "echo"\`,
        });
    }
  };
});

server.expire = 60_000; // close sockets idle for a minute
server.close = (socket, reason) => {
  logger.debug("socket {id} from {remote} closed: {reason}", {
    id: socket.id,
    remote: socket.remote,
    reason,
  });
};
`;

const START_TEST_TS = `/**
 * Starts the stage as a subprocess (\`stage run --single\`) on a free port and
 * talks to it over TCP with a tiny frame client.
 *
 * STAGE names the stage command (default \`stage\`), split on spaces, e.g.
 * STAGE="deno run -A --unstable-worker-options --unstable-net /path/to/stage/main.ts".
 */

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** One frame: a 4-byte little-endian total length (header included), then UTF-8 JSON. */
async function send(conn: Deno.Conn, value: unknown): Promise<void> {
  const payload = encoder.encode(JSON.stringify(value));
  const frame = new Uint8Array(payload.length + 4);
  new DataView(frame.buffer).setUint32(0, frame.length, true);
  frame.set(payload, 4);
  for (let written = 0; written < frame.length;) {
    written += await conn.write(frame.subarray(written));
  }
}

async function readExactly(conn: Deno.Conn, length: number): Promise<Uint8Array> {
  const buffer = new Uint8Array(length);
  for (let read = 0; read < length;) {
    const got = await conn.read(buffer.subarray(read));
    if (got === null) throw new Error("the stage closed the connection");
    read += got;
  }
  return buffer;
}

async function receive(conn: Deno.Conn): Promise<unknown> {
  const header = await readExactly(conn, 4);
  const length = new DataView(header.buffer).getUint32(0, true);
  return JSON.parse(decoder.decode(await readExactly(conn, length - 4)));
}

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/** Connects once the stage listens; fails if it exits first or takes over 20 s. */
async function connect(port: number, child: Deno.ChildProcess): Promise<Deno.TcpConn> {
  let exited: Deno.CommandStatus | undefined;
  child.status.then((status) => exited = status);
  const deadline = Date.now() + 20_000;
  for (;;) {
    try {
      return await Deno.connect({ hostname: "127.0.0.1", port });
    } catch (error) {
      if (exited !== undefined) throw new Error(\`the stage exited with code \${exited.code}\`);
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

function assertEquals(actual: unknown, expected: unknown): void {
  if (JSON.stringify(actual) !== JSON.stringify(expected)) {
    throw new Error(\`expected \${JSON.stringify(expected)}, got \${JSON.stringify(actual)}\`);
  }
}

Deno.test("the start stage greets and echoes over TCP", async () => {
  const [command = "stage", ...args] = (Deno.env.get("STAGE") ?? "stage").split(" ")
    .filter((part) => part !== "");
  const port = freePort();
  const child = new Deno.Command(command, {
    args: [...args, "run", "--single", "--config", "config/stage.json", "--", String(port)],
    cwd: new URL("..", import.meta.url),
    env: { STAGE_LOG_LEVEL: "warning" }, // logs go to standard output: show only problems
    stdin: "null",
  }).spawn();
  try {
    const conn = await connect(port, child);
    try {
      await send(conn, { message: "hello", name: "Ada" });
      assertEquals(await receive(conn), { message: "hello", text: "Hello, Ada!", greeted: 1 });
      await send(conn, { message: "echo", n: [1, 2, 3] });
      assertEquals(await receive(conn), { message: "echo", n: [1, 2, 3] });
    } finally {
      conn.close();
    }
  } finally {
    child.kill("SIGTERM");
    await child.status;
  }
});
`;

const DENO_JSON = {
  tasks: {
    start: "stage run --single --config config/stage.json",
    check: "deno check scripts/ && deno check tests/",
    test: "deno test --allow-run --allow-net --allow-env --allow-read tests/",
  },
  compilerOptions: {
    strict: true,
    noUncheckedIndexedAccess: true,
    exactOptionalPropertyTypes: true,
  },
  fmt: { lineWidth: 100 },
};

/**
 * The files of a new project, by path relative to its folder.
 *
 * @param globals the text of the script globals' declarations (`types/stage.d.ts`)
 * @example
 * ```ts
 * import { scaffoldFiles } from "./new_command.ts";
 * const files = scaffoldFiles("declare var stage: unknown;\n");
 * if (!files["scripts/start.ts"]!.startsWith('/// <reference types="../types/stage.d.ts" />')) {
 *   throw new Error("the start script references the copied declarations");
 * }
 * ```
 */
export function scaffoldFiles(globals: string): Record<string, string> {
  return {
    "config/stage.json": JSON.stringify(CONFIG, null, 2) + "\n",
    "scripts/start.ts": START_TS,
    "types/stage.d.ts": globals,
    "deno.json": JSON.stringify(DENO_JSON, null, 2) + "\n",
    "tests/start_test.ts": START_TEST_TS,
  };
}

/** Runs `stage new <dir>`; resolves with the exit code (2 when `dir` is not empty). */
export async function newCommand(
  cli: Extract<CliCommand, { command: "new" }>,
  io: CliIo,
): Promise<number> {
  const dir = cli.dir;
  const problem = await unusable(dir);
  if (problem !== undefined) {
    io.err(`stage: cannot create a project in ${dir}: ${problem}`);
    return ExitCode.Usage;
  }
  const files = scaffoldFiles(await Deno.readTextFile(GLOBALS_D_TS));
  for (const [path, text] of Object.entries(files)) {
    const target = join(dir, path);
    await Deno.mkdir(join(target, ".."), { recursive: true });
    await Deno.writeTextFile(target, text, { createNew: true });
    io.out(`created ${target}`);
  }
  io.out("");
  io.out(`Next: cd ${dir}`);
  io.out("  stage check                      validate the config, type-check the scripts");
  io.out(`  stage run --single               serve on 127.0.0.1:${SCAFFOLD_PORT}`);
  io.out("  deno task test                   run tests/start_test.ts (STAGE=stage command)");
  return ExitCode.Ok;
}

/** Why `dir` cannot hold a new project (it exists and is not an empty folder), or `undefined`. */
async function unusable(dir: string): Promise<string | undefined> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(dir);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw error;
  }
  if (!info.isDirectory) return "it exists and is not a directory";
  for await (const _ of Deno.readDir(dir)) {
    return "the directory is not empty (stage new never overwrites files)";
  }
  return undefined;
}
