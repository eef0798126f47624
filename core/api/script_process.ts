/**
 * `process`: what a script may know about its process.
 *
 * @module
 */
import type { ProcessInfo } from "../pool/wire.ts";

/** The `process` global of scripts. */
export class ScriptProcess {
  /** Index of this process group in `#startup`. */
  readonly id: number;
  /** Operating-system process id. */
  readonly pid: number;
  /** Arguments given to `stage run` after `--`. */
  readonly args: readonly string[];
  /** A readable name of the process, e.g. `stage[0]`. */
  readonly title: string;
  #config: Record<string, unknown>;

  constructor(info: ProcessInfo) {
    this.id = info.id;
    this.pid = info.pid;
    this.args = Object.freeze([...info.args]);
    this.title = info.title;
    this.#config = info.config;
  }

  /**
   * A section of stage.json after `${ENV}` substitution (`process.config("agent+agent")`),
   * or the whole file without a name. Returns a copy; `undefined` for a missing section.
   */
  config(name?: string): unknown {
    const value = name === undefined ? this.#config : this.#config[name];
    return value === undefined ? undefined : structuredClone(value);
  }
}
