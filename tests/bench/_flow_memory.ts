/**
 * Resident memory and open-file limits of processes, read from `/proc` (Linux).
 *
 * @module
 */

/** `VmRSS` of one process in bytes (0 when it is gone). */
export async function processRss(pid: number): Promise<number> {
  try {
    const status = await Deno.readTextFile(`/proc/${pid}/status`);
    const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
    return match === null ? 0 : Number(match[1]) * 1024;
  } catch {
    return 0;
  }
}

/** The pids of `pid`'s descendants (from `/proc/*\/stat` parent ids). */
async function descendants(pid: number): Promise<number[]> {
  const parents = new Map<number, number[]>();
  for await (const entry of Deno.readDir("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      const stat = await Deno.readTextFile(`/proc/${entry.name}/stat`);
      // pid (comm) state ppid …: comm may hold spaces and parentheses.
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      const children = parents.get(ppid) ?? [];
      children.push(Number(entry.name));
      parents.set(ppid, children);
    } catch { /* exited meanwhile */ }
  }
  const found: number[] = [];
  const queue = [pid];
  while (queue.length > 0) {
    for (const child of parents.get(queue.shift()!) ?? []) {
      found.push(child);
      queue.push(child);
    }
  }
  return found;
}

/** RSS of `pid` and its descendants (a supervisor's process groups count too). */
export async function treeRss(pid: number): Promise<number> {
  const pids = [pid, ...await descendants(pid)];
  const sizes = await Promise.all(pids.map(processRss));
  return sizes.reduce((a, b) => a + b, 0);
}

/** The open-file limits of a process (`"self"` for this one). */
export async function openFileLimit(pid: number | "self"): Promise<{ soft: number; hard: number }> {
  const limits = await Deno.readTextFile(`/proc/${pid}/limits`);
  const match = /^Max open files\s+(\d+|unlimited)\s+(\d+|unlimited)/m.exec(limits);
  const value = (text: string | undefined) =>
    text === undefined || text === "unlimited" ? Infinity : Number(text);
  return { soft: value(match?.[1]), hard: value(match?.[2]) };
}

/** RSS figures of a sampling period, in bytes. */
export interface RssFigures {
  start: number;
  max: number;
  last: number;
  samples: number;
}

/** Samples a server's RSS every `intervalMs` until stopped: start, max, last. */
export class RssSampler {
  readonly #server: { rss(): Promise<number> };
  readonly #samples: number[] = [];
  readonly #timer: ReturnType<typeof setInterval>;
  #pending: Promise<void> = Promise.resolve();
  #stopped: Promise<RssFigures> | undefined;

  private constructor(server: { rss(): Promise<number> }, first: number, intervalMs: number) {
    this.#server = server;
    this.#samples.push(first);
    this.#timer = setInterval(() => {
      this.#pending = this.#pending.then(async () => {
        this.#samples.push(await this.#server.rss());
      });
    }, intervalMs);
  }

  /** Takes the first sample now, then one every `intervalMs`. */
  static async start(
    server: { rss(): Promise<number> },
    intervalMs = 500,
  ): Promise<RssSampler> {
    return new RssSampler(server, await server.rss(), intervalMs);
  }

  /** Stops sampling (after one last sample); later calls return the same figures. */
  stop(): Promise<RssFigures> {
    this.#stopped ??= this.#stop();
    return this.#stopped;
  }

  async #stop(): Promise<RssFigures> {
    clearInterval(this.#timer);
    await this.#pending;
    this.#samples.push(await this.#server.rss());
    return {
      start: this.#samples[0]!,
      max: Math.max(...this.#samples),
      last: this.#samples[this.#samples.length - 1]!,
      samples: this.#samples.length,
    };
  }
}
