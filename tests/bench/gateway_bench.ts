// deno-lint-ignore-file no-console
/**
 * `deno task bench gateway [--quick]`: what the HTTP gateway costs. The same
 * handler (`a + b` on a script stage) is called
 * - through `POST /api/calc:add` on the gateway (`fetch`, keep-alive), and
 * - as the baseline, through a TCP listener of the same stage with the client
 *   SDK's request/response correlation (JSON frames),
 * and, to split the HTTP cost from the message path, straight through the
 * process's main-thread caller (what the gateway calls after parsing),
 * sequentially and with 32 requests in flight, in one process runtime
 * (`--single` shape: the server, its workers and the load in one process), and
 * a bare `Deno.serve` that adds the numbers itself with the same fetch client
 * (the HTTP floor of this runtime: what no gateway can beat).
 * One JSON line per scenario: requests/s, p50/p99 and the ratio to the baseline.
 */
import { startGateway } from "../../core/admin/mod.ts";
import { StageClient } from "../../core/client/mod.ts";
import { coreLogger } from "../../core/log/mod.ts";
import { REFERENCE, startFixture } from "../_helpers/stage_fixture.ts";

const CALC = REFERENCE + `
stage.waitfor("add", (a: number, b: number) => a + b);
broker.ready("tcp://127.0.0.1:0?json", () => (socket, data) => {
  socket.commit({ id: data.id, reply: data.a + data.b });
});
`;

interface Figures {
  count: number;
  requests_per_s: number;
  p50_ms: number;
  p99_ms: number;
}

/** Runs `count` calls of `call`, `inflight` at a time; latency per call. */
async function measure(
  call: (i: number) => Promise<void>,
  count: number,
  inflight: number,
): Promise<Figures> {
  const latencies: number[] = [];
  let next = 0;
  const start = performance.now();
  await Promise.all(Array.from({ length: inflight }, async () => {
    while (next < count) {
      const i = next++;
      const began = performance.now();
      await call(i);
      latencies.push(performance.now() - began);
    }
  }));
  const seconds = (performance.now() - start) / 1000;
  latencies.sort((a, b) => a - b);
  const at = (q: number) => Number(latencies[Math.floor(q * (latencies.length - 1))]!.toFixed(3));
  return { count, requests_per_s: Math.round(count / seconds), p50_ms: at(0.5), p99_ms: at(0.99) };
}

/** The benchmark's entry point (see tests/bench/main.ts). */
export async function run(args: string[]): Promise<void> {
  const quick = args.includes("--quick");
  const count = quick ? 2000 : 20_000;
  await using fixture = await startFixture({
    scripts: { "calc.ts": CALC },
    config: { "#startup": [["script+calc"]], script: { "script+calc": "calc" } },
    workers: 2,
  });
  await using gateway = await startGateway(
    {
      listen: "127.0.0.1:0",
      hostname: "127.0.0.1",
      port: 0,
      targets: ["calc:add"],
      timeoutMs: 5000,
      maxTimeoutMs: 30_000,
      maxBodyBytes: 65536,
      maxInflight: 1024,
      cors: [],
    },
    fixture.running.caller,
    { log: coreLogger("admin") },
  );
  const url = `http://${gateway.address}/api/calc:add`;
  const viaGateway = async (i: number) => {
    const response = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify([i, 1]),
    });
    const body = await response.json() as { reply: number };
    if (body.reply !== i + 1) throw new Error(`gateway: ${i} + 1 gave ${JSON.stringify(body)}`);
  };
  await using client = await StageClient.connect({
    host: "127.0.0.1",
    port: fixture.port("json", "calc"),
    codec: "json",
  });
  const viaTcp = async (i: number) => {
    const reply = await client.request<{ reply: number }>({ a: i, b: 1 });
    if (reply.reply !== i + 1) throw new Error(`tcp: ${i} + 1 gave ${JSON.stringify(reply)}`);
  };
  // The HTTP floor: a bare Deno.serve answering the sum itself, with the same fetch client.
  const floor = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (request) => {
    const [a, b] = await request.json() as [number, number];
    return Response.json({ reply: a + b });
  });
  const floorUrl = `http://127.0.0.1:${floor.addr.port}/api/calc:add`;
  const viaFloor = async (i: number) => {
    const response = await fetch(floorUrl, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify([i, 1]),
    });
    const body = await response.json() as { reply: number };
    if (body.reply !== i + 1) throw new Error(`floor: ${i} + 1 gave ${JSON.stringify(body)}`);
  };
  // The message path alone: what the gateway calls once it has parsed the request.
  const caller = fixture.running.caller;
  const viaCaller = async (i: number) => {
    const reply = await caller.request("calc:add", [i, 1], 5000);
    if (reply !== i + 1) throw new Error(`caller: ${i} + 1 gave ${JSON.stringify(reply)}`);
  };
  for (const [scenario, inflight] of [["sequential", 1], ["inflight_32", 32]] as const) {
    const n = inflight === 1 ? Math.ceil(count / 4) : count;
    for (const call of [viaGateway, viaTcp, viaCaller, viaFloor]) {
      await measure(call, 200, inflight); // warm-up
    }
    const http = await measure(viaGateway, n, inflight);
    const tcp = await measure(viaTcp, n, inflight);
    const direct = await measure(viaCaller, n, inflight);
    const bare = await measure(viaFloor, n, inflight);
    console.log(JSON.stringify({
      bench: "gateway",
      scenario: `POST /api/calc:add vs a TCP request with the client SDK (${scenario})`,
      gateway: http,
      baseline_tcp_sdk: tcp,
      main_thread_caller: direct,
      http_floor_bare_deno_serve: bare,
      ratio: Number((http.requests_per_s / tcp.requests_per_s).toFixed(3)),
      ratio_to_http_floor: Number((http.requests_per_s / bare.requests_per_s).toFixed(3)),
      ratio_p50: Number((http.p50_ms / tcp.p50_ms).toFixed(3)),
    }));
  }
  await floor.shutdown();
}
