/// <reference lib="deno.worker" />
import { SharedTable } from "../../core/ring/shared_table.ts";

interface Job {
  buffer: SharedArrayBuffer;
  role: "writer" | "reader";
  updates: number;
}

self.onmessage = (event: MessageEvent<Job>) => {
  const { buffer, role, updates } = event.data;
  const table = new SharedTable(buffer);
  const counter = table.open("counter", { n: 0, check: 0, list: [0, 0, 0] });
  if (role === "writer") {
    for (let i = 0; i < updates; i++) {
      counter.update((v) => ({ n: v.n + 1, check: -(v.n + 1), list: [v.n + 1, v.n + 1, v.n + 1] }));
    }
    self.postMessage({ done: true });
    return;
  }
  let reads = 0;
  let last = 0;
  let problems = 0;
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    const v = counter.get();
    reads++;
    if (v.check !== -v.n || v.list.some((x) => x !== v.n) || v.n < last) problems++;
    last = v.n;
    if (v.n >= updates) break;
  }
  self.postMessage({ reads, problems, last });
};
