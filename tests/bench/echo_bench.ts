// deno-lint-ignore-file no-console
/**
 * Benchmark of a Stage `raw` echo server against a plain `Deno.listen` echo.
 *
 * Both servers run as subprocesses, started once per run: the Stage server from a
 * temporary deployment folder (`stage.json` + `scripts/start.ts` echoing every frame
 * with `socket.commit(data)`), the baseline from `_raw_echo_server.ts` (writes back
 * the bytes it reads). Within each setting the same load generator drives one server
 * and then the other: C connections, each keeping D frames of a P-byte payload in
 * flight (every reply sends the next frame), a warm-up, then a measured window.
 * Each payload carries its send time, so the round trip of every frame is measured
 * (from the socket read that triggered the send to the read of its reply: the SDK's
 * `receivedAt`, one clock reading per read).
 * The connections are client SDK `StageClient`s (raw codec) for both servers, so the
 * ratio compares the servers under one and the same client.
 *
 * Prints one JSON line per setting:
 * `{"bench":"echo","setting":"50x8x64","seconds":5,"stage":{…},"baseline":{…},
 * "ratio_msgs":…,"ratio_p99":…}` with `msgs_per_s`, `p50_ms`, `p99_ms` per server.
 *
 * Options: `--seconds N` (measured window per server and setting, default 5),
 * `--warmup N` (seconds, default 1), `--quick` (2 s), `--settings 50x8x64,200x1x64`
 * (`CxDxP`), `--workers N` (Stage workers, default 2), `--cpu-prof DIR` (write a V8 CPU
 * profile of the Stage server to DIR).
 *
 * @module
 */
import { StageClient } from "../../core/client/mod.ts";
import { freePort, ServerProcess } from "./_flow_process.ts";

const REPO_ROOT = new URL("../../", import.meta.url);
const RAW_SERVER = new URL("./_raw_echo_server.ts", import.meta.url);
const MAX_FRAME = 64 * 1024;
/** Bytes of the payload used by the generator: send time (float64) + sequence (uint32). */
const STAMP_BYTES = 12;
const READY_TIMEOUT_MS = 20_000;
const DRAIN_TIMEOUT_MS = 5_000;

/** One load shape: C connections × D frames in flight × P-byte payloads. */
export interface EchoSetting {
  name: string;
  connections: number;
  depth: number;
  payload: number;
}

/** What one server achieved under one setting. */
export interface EchoResult {
  msgs_per_s: number;
  p50_ms: number;
  p99_ms: number;
}

interface EchoOptions {
  seconds: number;
  warmup: number;
  settings: EchoSetting[];
  workers: number;
  cpuProfDir: string | undefined;
}

/** Parses `CxDxP`, e.g. `50x8x64`. */
export function parseSetting(text: string): EchoSetting {
  const match = /^(\d+)x(\d+)x(\d+)$/.exec(text);
  const [connections, depth, payload] = (match?.slice(1) ?? []).map(Number);
  if (
    connections === undefined || depth === undefined || payload === undefined ||
    connections < 1 || depth < 1 || payload < STAMP_BYTES || payload > MAX_FRAME - 4
  ) {
    throw new RangeError(
      `Cannot parse echo setting "${text}": expected CxDxP with C, D >= 1 and P in ${STAMP_BYTES}..${
        MAX_FRAME - 4
      }`,
    );
  }
  return { name: text, connections, depth, payload };
}

function parseOptions(args: string[]): EchoOptions {
  const options: EchoOptions = {
    seconds: 5,
    warmup: 1,
    settings: ["50x8x64", "200x1x64"].map(parseSetting),
    workers: 2,
    cpuProfDir: undefined,
  };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const eq = arg.indexOf("=");
    const flag = eq === -1 ? arg : arg.slice(0, eq);
    const value = (): string => {
      const text = eq === -1 ? args[++i] : arg.slice(eq + 1);
      if (text === undefined) throw new RangeError(`echo bench: ${flag} expects a value`);
      return text;
    };
    const positive = (text: string): number => {
      const n = Number(text);
      if (!(n > 0) || !Number.isFinite(n)) {
        throw new RangeError(`echo bench: ${flag} expects a positive number; got "${text}"`);
      }
      return n;
    };
    if (flag === "--quick") options.seconds = 2;
    else if (flag === "--seconds") options.seconds = positive(value());
    else if (flag === "--warmup") options.warmup = positive(value());
    else if (flag === "--workers") options.workers = Math.floor(positive(value()));
    else if (flag === "--settings") options.settings = value().split(",").map(parseSetting);
    else if (flag === "--cpu-prof") options.cpuProfDir = value();
    else throw new RangeError(`echo bench: unknown option "${arg}"`);
  }
  return options;
}

/** Latencies and the reply count of the measured window, shared by all connections. */
class Recorder {
  measuring = false;
  stopSending = false;
  count = 0;
  invalid = 0;
  #latencies = new Float64Array(1 << 16);

  record(ms: number): void {
    if (this.count === this.#latencies.length) {
      const grown = new Float64Array(this.#latencies.length * 2);
      grown.set(this.#latencies);
      this.#latencies = grown;
    }
    this.#latencies[this.count++] = ms;
  }

  /** Sorted latencies of the window. */
  sorted(): Float64Array {
    return this.#latencies.slice(0, this.count).sort();
  }
}

/** One load-generating client: keeps `depth` frames in flight until told to stop. */
class Driver {
  readonly #client: StageClient;
  readonly #recorder: Recorder;
  /** The next frame's payload, restamped for each (`post` encodes it at once). */
  readonly #payload: Uint8Array;
  readonly #stamp: DataView;
  #outstanding = 0;
  #seq = 0;
  #failure: unknown;
  #onIdle: (() => void) | undefined;

  constructor(client: StageClient, setting: EchoSetting, recorder: Recorder) {
    this.#client = client;
    this.#recorder = recorder;
    this.#payload = new Uint8Array(setting.payload);
    this.#stamp = new DataView(this.#payload.buffer, 0, STAMP_BYTES);
    client.on("message", this.#onFrame);
    client.on("disconnect", (error) => {
      if (this.#outstanding > 0) this.#failure ??= error;
      this.#outstanding = 0;
      this.#checkIdle();
    });
    const now = performance.now();
    for (let i = 0; i < setting.depth && this.#failure === undefined; i++) this.#send(now);
  }

  /** The first error of this connection, if any. */
  get failure(): unknown {
    return this.#failure;
  }

  /** Resolves when nothing is in flight any more (or the connection ended). */
  idle(): Promise<void> {
    if (this.#outstanding === 0) return Promise.resolve();
    return new Promise((resolve) => this.#onIdle = resolve);
  }

  /** Closes the client. */
  close(): Promise<void> {
    return this.#client.close();
  }

  #send(now: number): void {
    this.#stamp.setFloat64(0, now, true);
    this.#stamp.setUint32(8, this.#seq++ >>> 0, true);
    try {
      this.#client.post(this.#payload);
      this.#outstanding++;
    } catch (error) {
      this.#failure ??= error;
    }
  }

  #onFrame = (value: unknown): void => {
    // When the reply's bytes were read; also the next frame's send time (closed loop).
    const now = this.#client.receivedAt;
    const payload = value as Uint8Array;
    this.#outstanding--;
    if (payload.length !== this.#payload.length) {
      this.#recorder.invalid++;
    } else if (this.#recorder.measuring) {
      this.#recorder.record(now - sentAt(payload));
    }
    if (!this.#recorder.stopSending) this.#send(now);
    this.#checkIdle();
  };

  #checkIdle(): void {
    if (this.#outstanding <= 0 && this.#onIdle !== undefined) {
      const onIdle = this.#onIdle;
      this.#onIdle = undefined;
      onIdle();
    }
  }
}

const stampBytes = new Uint8Array(8);
const stampValue = new Float64Array(stampBytes.buffer);

/** The send time (float64 LE) at the start of `payload`, read without a view per frame. */
function sentAt(payload: Uint8Array): number {
  for (let i = 0; i < 8; i++) stampBytes[i] = payload[i]!;
  return stampValue[0]!;
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;
}

const round = (value: number, digits: number): number => {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
};

/** Drives the echo server on `port` with `setting`; measures for `seconds` after `warmup`. */
export async function drive(
  port: number,
  setting: EchoSetting,
  seconds: number,
  warmup: number,
): Promise<EchoResult> {
  const recorder = new Recorder();
  const clients: StageClient[] = [];
  const drivers: Driver[] = [];
  try {
    for (let i = 0; i < setting.connections; i++) {
      clients.push(
        await StageClient.connect({
          port,
          codec: "raw",
          maxFrame: MAX_FRAME,
          // A closed loop never queues more than its depth: more would be a generator bug.
          maxQueuedFrames: setting.depth,
          maxQueuedBytes: setting.depth * (setting.payload + 4),
        }),
      );
    }
    for (const client of clients) drivers.push(new Driver(client, setting, recorder));
    await delay(warmup * 1000);
    recorder.measuring = true;
    const start = performance.now();
    await delay(seconds * 1000);
    recorder.measuring = false;
    const elapsed = performance.now() - start;
    recorder.stopSending = true;
    await Promise.race([Promise.all(drivers.map((d) => d.idle())), delay(DRAIN_TIMEOUT_MS)]);
    const failed = drivers.find((d) => d.failure !== undefined);
    if (failed !== undefined) {
      throw new Error(`a connection failed: ${failed.failure}`, {
        cause: failed.failure,
      });
    }
    if (recorder.invalid > 0) {
      throw new Error(`${recorder.invalid} replies had the wrong length`);
    }
    if (recorder.count === 0) throw new Error("no replies in the measured window");
    const sorted = recorder.sorted();
    return {
      msgs_per_s: Math.round(recorder.count / (elapsed / 1000)),
      p50_ms: round(percentile(sorted, 0.5), 3),
      p99_ms: round(percentile(sorted, 0.99), 3),
    };
  } finally {
    recorder.stopSending = true;
    await Promise.all(clients.map((client) => client.close()));
  }
}

async function writeDeployment(dir: string, workers: number): Promise<string> {
  await Deno.mkdir(`${dir}/scripts`, { recursive: true });
  const reference = new URL("core/api/globals.d.ts", REPO_ROOT).pathname;
  await Deno.writeTextFile(
    `${dir}/scripts/start.ts`,
    `/// <reference types="${reference}" />
// Echo every raw frame back to its sender.
broker.ready(
  \`tcp://127.0.0.1:\${process.args[0]}?packet=64k,64k&raw\`,
  () => (socket, data) => socket.commit(data),
);
`,
  );
  const config = {
    "#threads": [workers, 10000],
    "#startup": [["script+start"]],
    script: { "%package": ["scripts"], "script+start": "start" },
  };
  await Deno.writeTextFile(`${dir}/stage.json`, JSON.stringify(config, null, 2));
  return `${dir}/stage.json`;
}

async function startStage(dir: string, options: EchoOptions): Promise<ServerProcess> {
  const configPath = await writeDeployment(dir, options.workers);
  const port = freePort();
  const profile = options.cpuProfDir === undefined
    ? []
    : ["--cpu-prof", `--cpu-prof-dir=${options.cpuProfDir}`];
  const server = new ServerProcess(
    "stage server",
    port,
    [
      "run",
      "-A",
      "--unstable-worker-options",
      "--unstable-net",
      ...profile,
      new URL("main.ts", REPO_ROOT).pathname,
      "run",
      "--single", // one process: the figures (and RSS) are the server's own
      "--config",
      configPath,
      "--",
      String(port),
    ],
    { STAGE_LOG_FORMAT: "json", STAGE_LOG_LEVEL: "info" },
    {},
  );
  await server.ready("listening on", READY_TIMEOUT_MS);
  // "listening on" is logged when the port is bound, which can be before every worker
  // has registered the URL; sockets accepted then are all homed on the first worker and
  // stay there. "Stage running" comes once every stage has started.
  await server.ready("Stage running", READY_TIMEOUT_MS);
  return server;
}

async function startBaseline(): Promise<ServerProcess> {
  const port = freePort();
  const server = new ServerProcess(
    "raw echo server",
    port,
    [
      "run",
      "-A",
      RAW_SERVER.pathname,
      String(port),
    ],
    {},
    {},
  );
  await server.ready("listening", READY_TIMEOUT_MS);
  return server;
}

async function measure(
  server: ServerProcess,
  setting: EchoSetting,
  options: EchoOptions,
): Promise<EchoResult> {
  try {
    return await drive(server.port, setting, options.seconds, options.warmup);
  } catch (error) {
    throw new Error(
      `echo bench: ${server.name} failed under ${setting.name}: ${(error as Error).message}`,
      { cause: error },
    );
  }
}

/** Runs every setting against both servers and prints one JSON line per setting. */
export async function run(args: string[]): Promise<void> {
  const options = parseOptions(args);
  const dir = await Deno.makeTempDir({ prefix: "stage-echo-bench-" });
  const servers: ServerProcess[] = [];
  try {
    const stage = await startStage(dir, options);
    servers.push(stage);
    const baseline = await startBaseline();
    servers.push(baseline);
    for (const setting of options.settings) {
      const stageResult = await measure(stage, setting, options);
      const baseResult = await measure(baseline, setting, options);
      console.log(JSON.stringify({
        bench: "echo",
        setting: setting.name,
        seconds: options.seconds,
        stage: stageResult,
        baseline: baseResult,
        ratio_msgs: round(stageResult.msgs_per_s / baseResult.msgs_per_s, 3),
        ratio_p99: round(stageResult.p99_ms / baseResult.p99_ms, 3),
      }));
    }
  } finally {
    const statuses = await Promise.all(servers.map((server) => server.stop()));
    statuses.forEach((status, i) => {
      if (status.code !== 0) {
        console.error(
          `echo bench: ${servers[i]!.name} exited with code ${status.code}; last output:\n${
            servers[i]!.output()
          }`,
        );
      }
    });
    await Deno.remove(dir, { recursive: true });
  }
}

if (import.meta.main) await run(Deno.args);
