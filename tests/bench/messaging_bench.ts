// deno-lint-ignore-file no-console
/**
 * `deno task bench messaging`: the messaging core inside one process, measured
 * from inside a worker. One JSON line per scenario with its baseline and ratio:
 * - request round trips/s and p99 (baseline: a direct async function call),
 * - signal → waitfor messages/s (baseline: a direct call),
 * - submit throughput with 1 key vs 1,000 keys vs key 0 (baseline: 1 key),
 * - shared get() reads/s while another worker updates (baseline: a local variable).
 */
import { StageClient } from "../../core/client/mod.ts";
import { REFERENCE, startFixture } from "../_helpers/stage_fixture.ts";

const SCRIPT = REFERENCE + `
const counter = stage.shared("counter", 0);
const value = stage.shared("value", { n: 0, text: "x".repeat(64) });
stage.waitfor("echo", (n: number) => n);
stage.waitfor("count", () => { counter.update((n) => n + 1); });
async function until(target: number) {
  while (counter.get() < target) await new Promise((resolve) => setTimeout(resolve, 1));
}
const rate = (count: number, ms: number) => Math.round(count / (ms / 1000));
broker.ready("tcp://127.0.0.1:0?json", () => async (socket, data) => {
  const n = data.n as number;
  switch (data.op) {
    case "request": {
      const latencies: number[] = [];
      const start = performance.now();
      for (let i = 0; i < n; i++) {
        const t = performance.now();
        await stage.request("echo", i);
        latencies.push(performance.now() - t);
      }
      const ms = performance.now() - start;
      latencies.sort((a, b) => a - b);
      const echo = async (x: number) => x;
      const b0 = performance.now();
      for (let i = 0; i < n * 100; i++) await echo(i);
      const baseline = rate(n * 100, performance.now() - b0);
      return socket.commit({ perSecond: rate(n, ms), p99: latencies[Math.floor(n * 0.99)], baseline });
    }
    case "signal": {
      counter.set(0);
      const start = performance.now();
      for (let i = 0; i < n; i++) stage.signal("count");
      await until(n);
      const ms = performance.now() - start;
      let local = 0;
      const bump = () => { local++; };
      const b0 = performance.now();
      for (let i = 0; i < n * 100; i++) bump();
      return socket.commit({ perSecond: rate(n, ms), baseline: rate(n * 100, performance.now() - b0), local });
    }
    case "submit": {
      counter.set(0);
      const start = performance.now();
      for (let i = 0; i < n; i++) {
        const key = data.keys === 0 ? 0 : "k" + (i % data.keys);
        stage.submit(key, async () => {
          await new Promise((resolve) => setTimeout(resolve, 1)); // a little I/O per call
          stage.shared("counter", 0).update((c: number) => c + 1);
        });
      }
      await until(n);
      return socket.commit({ perSecond: rate(n, performance.now() - start) });
    }
    case "shared": {
      stage.submit(0, async () => {
        const v = stage.shared("value", { n: 0, text: "" });
        for (let i = 0; i < 1e6 && !stage.shared("stop", false).get(); i++) {
          v.update((x: { n: number; text: string }) => ({ ...x, n: x.n + 1 }));
          if (i % 100 === 0) await stage.yield();
        }
      });
      stage.shared("stop", false).set(false);
      await new Promise((resolve) => setTimeout(resolve, 20));
      const start = performance.now();
      let sum = 0;
      for (let i = 0; i < n; i++) sum += value.get().n;
      const ms = performance.now() - start;
      stage.shared("stop", false).set(true);
      const local = { n: 0, text: "x".repeat(64) };
      const b0 = performance.now();
      for (let i = 0; i < n; i++) sum += local.n;
      return socket.commit({ perSecond: rate(n, ms), baseline: rate(n, Math.max(performance.now() - b0, 0.001)), sum });
    }
  }
});
`;

export async function run(args: string[]): Promise<void> {
  const quick = args.includes("--quick");
  const scale = quick ? 0.2 : 1;
  await using fixture = await startFixture({ workers: 2, scripts: { "start.ts": SCRIPT } });
  await using client = await StageClient.connect({ port: fixture.port(), codec: "json" });
  const ask = async (command: Record<string, unknown>) => {
    await client.send(command);
    return await client.next<Record<string, number>>(120_000);
  };
  const print = (line: Record<string, unknown>) =>
    console.log(JSON.stringify({ bench: "messaging", ...line }));

  const requests = Math.round(5000 * scale);
  const request = await ask({ op: "request", n: requests });
  print({
    scenario: "request round trip (same stage)",
    count: requests,
    round_trips_per_s: request.perSecond,
    p99_ms: Number(request.p99!.toFixed(3)),
    baseline_async_calls_per_s: request.baseline,
    ratio: Number((request.perSecond! / request.baseline!).toFixed(5)),
  });

  const signals = Math.round(20000 * scale);
  const signal = await ask({ op: "signal", n: signals });
  print({
    scenario: "signal -> waitfor (same stage)",
    count: signals,
    messages_per_s: signal.perSecond,
    baseline_calls_per_s: signal.baseline,
    ratio: Number((signal.perSecond! / signal.baseline!).toFixed(5)),
  });

  const submits = Math.round(2000 * scale);
  const one = await ask({ op: "submit", n: submits, keys: 1 });
  for (const keys of [1000, 0]) {
    const many = await ask({ op: "submit", n: submits, keys });
    print({
      scenario: `submit with ${
        keys === 0 ? "key 0" : `${keys} keys`
      } vs 1 key (1 ms of I/O per call)`,
      count: submits,
      submits_per_s: many.perSecond,
      baseline_one_key_per_s: one.perSecond,
      ratio: Number((many.perSecond! / one.perSecond!).toFixed(2)),
    });
  }

  const reads = Math.round(200000 * scale);
  const shared = await ask({ op: "shared", n: reads });
  print({
    scenario: "shared get() while another worker updates vs a local variable",
    count: reads,
    reads_per_s: shared.perSecond,
    baseline_local_reads_per_s: shared.baseline,
    ratio: Number((shared.perSecond! / shared.baseline!).toFixed(5)),
  });
}

if (import.meta.main) await run(Deno.args);
