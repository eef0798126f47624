// deno-lint-ignore-file no-console
/**
 * `deno task bench flow`: Stage's flow control, each scenario against a naive
 * baseline measured in the same run.
 *
 * The baseline (`_naive_server.ts`) is a plain `Deno.listen` server: one event loop,
 * every frame handled inline as it is read, replies queued without bound. Both
 * servers run the same handler (`_flow_protocol.ts`: spin the CPU for the cost the
 * request names, then echo), Stage through a raw-codec script
 * (`tcp://127.0.0.1:PORT?packet=64k,64k&raw`). Each runs as a subprocess, a fresh one
 * per scenario, stopped even when the scenario fails.
 *
 * Scenarios (one JSON line each, `{"bench":"flow","scenario":…,"stage":{…},
 * "baseline":{…},"ratio":…,"goal":…,"goal_met":…}`):
 * - `fairness`: 50 clients' p50/p99 without and with a flooder; factor with/without.
 * - `preemption`: other clients' latency while one frame spins a worker for 2 s.
 * - `overload`: a login stampede — sessions (greeting, then 10 requests of 2 ms) arriving at 3×
 *   the server's capacity for 30 s; RSS growth, admitted sessions/s, admitted request p99.
 * - `c10k`: bytes per idle connection and throughput at 1k/5k/10k connections.
 *
 * Options: `--quick` (short windows), `--scenario=NAME[,NAME]`, `--workers N` (Stage
 * workers, default 2), `--no-flow` (omit Stage's `#flow` config section),
 * `--levels=N[,N]` (c10k connection counts), `--only=stage|baseline` (measure one side;
 * the other side's figures and the ratios are null).
 *
 * A side (Stage or baseline) that fails is reported on standard error and recorded
 * as `{"error": …}` in the line; the other side and the other scenarios still run,
 * and the exit code is then 1.
 *
 * @module
 */
import { c10k, c10kFileLimit, c10kLevels } from "./_flow_c10k.ts";
import { fairness } from "./_flow_fairness.ts";
import {
  type FlowOptions,
  hasFailure,
  parseFlowOptions,
  type Scenario,
  type ScenarioName,
} from "./_flow_options.ts";
import { overload } from "./_flow_overload.ts";
import { preemption } from "./_flow_preemption.ts";
import { openFileLimit } from "./_flow_memory.ts";

const SCENARIO_RUNNERS: Record<ScenarioName, Scenario> = { fairness, preemption, overload, c10k };

/** Set in the child this module starts with a raised open-file limit. */
const RAISED_ENV = "STAGE_FLOW_BENCH_RAISED_NOFILE";

/** The arguments that reproduce `options` for the c10k scenario alone. */
function c10kArgs(options: FlowOptions): string[] {
  return [
    "--scenario=c10k",
    `--workers=${options.workers}`,
    ...(options.quick ? ["--quick"] : []),
    ...(options.flow ? [] : ["--no-flow"]),
    ...(options.levels === undefined ? [] : [`--levels=${options.levels.join(",")}`]),
    ...(options.only === undefined ? [] : [`--only=${options.only}`]),
  ];
}

/**
 * Runs c10k here when this process may open enough files; otherwise re-runs it in a
 * child under `sh -c "ulimit -n N"` (Deno cannot raise its own limit), whose JSON
 * line goes straight to standard output. Resolves with whether it succeeded.
 */
async function runC10k(options: FlowOptions): Promise<boolean> {
  const need = c10kFileLimit(c10kLevels(options));
  const { soft, hard } = await openFileLimit("self");
  if (soft >= need) return runScenario("c10k", options);
  if (hard < need || Deno.env.get(RAISED_ENV) !== undefined) {
    console.error(
      `flow bench: c10k needs ${need} open files in the load generator, but the limit is ` +
        `${soft} (hard ${hard}). Raise it before running, e.g. \`ulimit -n ${need}\` ` +
        `(as root, or after raising the hard limit), or pick smaller --levels.`,
    );
    return false;
  }
  const child = new Deno.Command("sh", {
    args: [
      "-c",
      `ulimit -n ${need} && exec "$0" "$@"`,
      Deno.execPath(),
      "run",
      "-A",
      "--unstable-worker-options",
      "--unstable-net",
      new URL(import.meta.url).pathname,
      ...c10kArgs(options),
    ],
    env: { [RAISED_ENV]: "1" },
    stdin: "null",
    stdout: "inherit",
    stderr: "inherit",
  }).spawn();
  return (await child.status).success;
}

async function runScenario(name: ScenarioName, options: FlowOptions): Promise<boolean> {
  try {
    const result = await SCENARIO_RUNNERS[name](options);
    console.log(JSON.stringify({ bench: "flow", scenario: name, ...result }));
    return !hasFailure(result);
  } catch (error) {
    console.error(`flow bench: scenario ${name} failed: ${(error as Error).stack ?? error}`);
    return false;
  }
}

/** Runs the chosen scenarios; one JSON line per scenario on standard output. */
export async function run(args: string[]): Promise<void> {
  let options: FlowOptions;
  try {
    options = parseFlowOptions(args);
  } catch (error) {
    if (!(error instanceof RangeError)) throw error;
    console.error(error.message);
    console.error(
      "usage: deno task bench flow [--quick] [--scenario=fairness,preemption,overload,c10k] " +
        "[--workers N] [--no-flow] [--levels=N,N] [--only=stage|baseline]",
    );
    Deno.exitCode = 2;
    return;
  }
  const failed: ScenarioName[] = [];
  for (const name of options.scenarios) {
    const ok = name === "c10k" ? await runC10k(options) : await runScenario(name, options);
    if (!ok) failed.push(name);
  }
  if (failed.length > 0) {
    console.error(`flow bench: failed: ${failed.join(", ")}`);
    Deno.exitCode = 1;
  }
}

if (import.meta.main) await run(Deno.args);
