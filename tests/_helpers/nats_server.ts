/**
 * Runs a real `nats-server` on a free loopback port for the NATS tests, and stops
 * it (or restarts it on the same port, to test reconnection).
 *
 * `.ci/run` installs the server (Debian package `nats-server`); nothing here skips
 * a test when it is missing: the tests fail with an error that says how to get it.
 */
import { freePort } from "./stage_process.ts";

/** Options of {@link startNatsServer}. */
export interface NatsServerOptions {
  /** Require this user and password (`--user`/`--pass`). */
  user?: string;
  pass?: string;
  /** Require this token (`--auth`); exclusive with `user`/`pass`. */
  token?: string;
  /** How long to wait for the server to accept connections (default 5000 ms). */
  readyTimeoutMs?: number;
}

/** A running nats-server; `await using` stops it. */
export interface NatsServer extends AsyncDisposable {
  /** `nats://127.0.0.1:<port>` (no credentials). */
  readonly url: string;
  readonly port: number;
  /** Stops the server (SIGTERM, then waits for exit). Harmless when stopped. */
  stop(): Promise<void>;
  /** Starts the server again on the same port (stopping it first if running). */
  restart(): Promise<void>;
}

const BINARY = "nats-server";
/** Where the Debian package puts it, for a PATH without the sbin folders. */
const DEBIAN_BINARY = "/usr/sbin/nats-server";

/** Starts `nats-server -a 127.0.0.1 -p <free port>` and waits until it accepts connections. */
export async function startNatsServer(options: NatsServerOptions = {}): Promise<NatsServer> {
  const port = freePort();
  const args = ["-a", "127.0.0.1", "-p", String(port)];
  if (options.user !== undefined) args.push("--user", options.user);
  if (options.pass !== undefined) args.push("--pass", options.pass);
  if (options.token !== undefined) args.push("--auth", options.token);
  const readyTimeoutMs = options.readyTimeoutMs ?? 5000;

  let running: Running | undefined = await launch(args, port, readyTimeoutMs);
  const stop = async () => {
    const current = running;
    running = undefined;
    await current?.stop();
  };
  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    stop,
    async restart() {
      await stop();
      running = await launch(args, port, readyTimeoutMs);
    },
    [Symbol.asyncDispose]: stop,
  };
}

interface Running {
  stop(): Promise<void>;
}

async function launch(args: string[], port: number, readyTimeoutMs: number): Promise<Running> {
  const child = spawn(args);
  // Keep the server's log for error messages (and so its pipe never fills up).
  let log = "";
  const pump = (async () => {
    for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) {
      log = (log + chunk).slice(-4000);
    }
  })();
  let exited = false;
  const status = child.status.then((s) => {
    exited = true;
    return s;
  });
  const stop = async () => {
    if (!exited) {
      try {
        child.kill("SIGTERM");
      } catch { /* exited meanwhile */ }
    }
    await status;
    await pump;
  };

  const deadline = Date.now() + readyTimeoutMs;
  for (;;) {
    if (exited) {
      await pump;
      throw new Error(`${BINARY} ${args.join(" ")} exited before accepting connections:\n${log}`);
    }
    // Its own word, not a probe: a probe could reach another process that took the port.
    if (log.includes("Server is ready")) return { stop };
    if (Date.now() > deadline) {
      await stop();
      throw new Error(
        `${BINARY} on 127.0.0.1:${port} did not accept connections within ${readyTimeoutMs} ms:\n${log}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

function spawn(args: string[]): Deno.ChildProcess {
  let missing: unknown;
  for (const binary of [BINARY, DEBIAN_BINARY]) {
    try {
      return new Deno.Command(binary, { args, stdin: "null", stdout: "null", stderr: "piped" })
        .spawn();
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
      missing = error;
    }
  }
  throw new Error(
    `${BINARY} is not installed (not on PATH nor at ${DEBIAN_BINARY}); run .ci/run, which installs it (apt-get install -y nats-server)`,
    { cause: missing },
  );
}
