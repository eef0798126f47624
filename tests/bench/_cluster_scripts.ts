/**
 * The cluster benchmark's deployments: the request pair (a `front` stage that
 * times `stage.request("calc:who")` round trips, a `calc` stage that answers with
 * its process group) and the shared-port echo.
 *
 * @module
 */
import { REFERENCE } from "../_helpers/stage_fixture.ts";

/** Round trips as measured by the front script (milliseconds from performance.now). */
export interface FrontResult {
  ms: number;
  p50: number;
  p99: number;
  /** Replies from another group than `expect`. */
  wrong: number;
}

/**
 * The front stage: a JSON port (`process.args[0]`) taking
 * `{ op: "who" }` (one request, answers `{ group }`) and
 * `{ op: "run", count, inflight, payload, expect }` (`count` requests carrying a
 * `payload`-character string, `inflight` at a time, each timed; answers a {@link FrontResult}).
 */
export const FRONT = REFERENCE + `
const sorted = (values: number[]) => values.sort((a, b) => a - b);
const at = (values: number[], p: number) => values[Math.min(values.length - 1, Math.floor(values.length * p))];
broker.ready(\`tcp://127.0.0.1:\${process.args[0]}?json\`, () => async (socket, data) => {
  try {
    if (data.op === "who") {
      return socket.commit({ group: await stage.request("calc:who", { timeout: 1000 }) });
    }
    const payload = "x".repeat(data.payload);
    const latencies: number[] = [];
    let next = 0;
    let wrong = 0;
    const lane = async () => {
      while (next < data.count) {
        next++;
        const t = performance.now();
        const group = await stage.request("calc:who", payload);
        latencies.push(performance.now() - t);
        if (group !== data.expect) wrong++;
      }
    };
    const start = performance.now();
    await Promise.all(Array.from({ length: data.inflight }, lane));
    const ms = performance.now() - start;
    sorted(latencies);
    socket.commit({ ms, p50: at(latencies, 0.5), p99: at(latencies, 0.99), wrong });
  } catch (error) {
    socket.commit({ error: \`\${(error as Error).name}: \${(error as Error).message}\` });
  }
});
`;

/** The calc stage: `who` answers with this process's group (`process.id`). */
export const CALC = REFERENCE + `
stage.waitfor("who", () => process.id);
`;

/** front and calc in two `#startup` groups (cross-process) or in one (same process). */
export function requestConfig(crossProcess: boolean): Record<string, unknown> {
  return {
    "#threads": [1, 10000],
    "#startup": crossProcess ? [["script+front"], ["script+calc"]] : [[
      "script+front",
      "script+calc",
    ]],
    script: { "%package": ["scripts"], "script+front": "front", "script+calc": "calc" },
  };
}

/** Echoes every raw frame back, on the port `process.args[0]`. */
export const ECHO = REFERENCE + `
broker.ready(
  \`tcp://127.0.0.1:\${process.args[0]}?packet=64k,64k&raw\`,
  () => (socket, data) => socket.commit(data),
);
`;

/** `groups` `#startup` groups, each running the echo stage on the shared `port`. */
export function echoConfig(groups: number, port: number, workers: number): Record<string, unknown> {
  return {
    "#threads": [workers, 10000],
    "#services": { tcp: [`127.0.0.1:${port}`] },
    "#startup": Array.from({ length: groups }, () => ["script+echo"]),
    script: { "%package": ["scripts"], "script+echo": "echo" },
  };
}
