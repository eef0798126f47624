// deno-lint-ignore-file no-console
/**
 * Options of `deno task bench flow`, and what a scenario returns.
 *
 * @module
 */

/** The scenarios, in the order a full run takes them. */
export const SCENARIOS = ["fairness", "preemption", "overload", "c10k"] as const;

/** A scenario's name. */
export type ScenarioName = typeof SCENARIOS[number];

/** Parsed command-line options. */
export interface FlowOptions {
  /** `--quick`: short windows (a smoke run). */
  quick: boolean;
  /** `--scenario=a,b`: the scenarios to run (default: all). */
  scenarios: ScenarioName[];
  /** `--workers N`: Stage workers (default 2, the preemption scenario's setting). */
  workers: number;
  /**
   * `--no-flow`: leave the `#flow` section out of Stage's config (for a core whose
   * schema does not know `#flow` yet; c10k then runs with Stage's default limits).
   */
  flow: boolean;
  /** `--levels=1000,5000`: c10k connection counts (default 1k/5k/10k, quick 1k/5k). */
  levels: number[] | undefined;
  /** `--only=stage|baseline`: measure one side (its figures only; no ratio). */
  only: Side | undefined;
}

/** The two servers of every scenario. */
export type Side = "stage" | "baseline";

/** A side that failed: its error's first line (the whole error went to standard error). */
export interface SideFailure {
  error: string;
}

/** A side's figures, its failure, or null when `--only` skipped it. */
export type SideResult<T> = T | SideFailure | null;

/** The figures of a side that succeeded; undefined for a failed or skipped one. */
export function succeeded<T extends object>(side: SideResult<T>): T | undefined {
  return side === null || "error" in side ? undefined : side;
}

/**
 * Runs both sides in turn (Stage first) unless `--only` skips one. A side that throws
 * is reported on standard error and recorded as `{ error }`: the other side still
 * runs, and `run` exits 1 at the end.
 */
export async function measureSides<T extends object>(
  options: FlowOptions,
  label: string,
  stage: () => Promise<T>,
  baseline: () => Promise<T>,
): Promise<{ stage: SideResult<T>; baseline: SideResult<T> }> {
  const attempt = async (side: Side, body: () => Promise<T>): Promise<SideResult<T>> => {
    if (options.only !== undefined && options.only !== side) return null;
    try {
      return await body();
    } catch (error) {
      console.error(`flow bench: ${label}: ${side} failed: ${(error as Error).stack ?? error}`);
      return { error: String((error as Error).message ?? error).split("\n")[0]! };
    }
  };
  return {
    stage: await attempt("stage", stage),
    baseline: await attempt("baseline", baseline),
  };
}

/** `figure(stage) / figure(baseline)` rounded to 3 digits; null unless both succeeded. */
export function ratioOf<T extends object>(
  sides: { stage: SideResult<T>; baseline: SideResult<T> },
  figure: (side: T) => number,
): number | null {
  const stage = succeeded(sides.stage);
  const baseline = succeeded(sides.baseline);
  if (stage === undefined || baseline === undefined) return null;
  return Math.round((figure(stage) / figure(baseline)) * 1000) / 1000;
}

/** Whether a scenario's result records a failed side anywhere (an `error` key). */
export function hasFailure(value: unknown): boolean {
  if (typeof value !== "object" || value === null) return false;
  if (!Array.isArray(value) && "error" in value) return true;
  return Object.values(value).some(hasFailure);
}

/** One scenario's JSON line, without the `bench` and `scenario` fields. */
export type ScenarioResult = Record<string, unknown>;

/** A scenario: runs Stage and the baseline, returns the figures for the JSON line. */
export type Scenario = (options: FlowOptions) => Promise<ScenarioResult>;

/**
 * Parses `--quick`, `--scenario=NAME[,NAME]`, `--workers N`, `--no-flow`,
 * `--levels=N[,N]`, `--only=stage|baseline` (values after `=` or as the next argument).
 *
 * @throws {RangeError} naming the option and the value for anything else
 */
export function parseFlowOptions(args: string[]): FlowOptions {
  const options: FlowOptions = {
    quick: false,
    scenarios: [...SCENARIOS],
    workers: 2,
    flow: true,
    levels: undefined,
    only: undefined,
  };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const eq = arg.indexOf("=");
    const flag = eq === -1 ? arg : arg.slice(0, eq);
    const value = (): string => {
      const text = eq === -1 ? args[++i] : arg.slice(eq + 1);
      if (text === undefined) throw new RangeError(`flow bench: ${flag} expects a value`);
      return text;
    };
    const positiveInt = (text: string): number => {
      const n = Number(text);
      if (!Number.isInteger(n) || n < 1) {
        throw new RangeError(`flow bench: ${flag} expects a positive integer; got "${text}"`);
      }
      return n;
    };
    if (flag === "--quick") options.quick = true;
    else if (flag === "--no-flow") options.flow = false;
    else if (flag === "--workers") options.workers = positiveInt(value());
    else if (flag === "--levels") options.levels = value().split(",").map(positiveInt);
    else if (flag === "--only") {
      const side = value();
      if (side !== "stage" && side !== "baseline") {
        throw new RangeError(`flow bench: --only expects stage or baseline; got "${side}"`);
      }
      options.only = side;
    } else if (flag === "--scenario") {
      options.scenarios = value().split(",").map((name) => {
        if (!(SCENARIOS as readonly string[]).includes(name)) {
          throw new RangeError(
            `flow bench: unknown scenario "${name}"; expected one of ${SCENARIOS.join(", ")}`,
          );
        }
        return name as ScenarioName;
      });
    } else throw new RangeError(`flow bench: unknown option "${arg}"`);
  }
  return options;
}
