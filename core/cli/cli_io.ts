/**
 * The command line's adapter to its process: output, environment, signals.
 *
 * @module
 */

/** What the commands need from their process. */
export interface CliIo {
  /** Prints a line to standard output. */
  out(line: string): void;
  /** Prints a line to standard error. */
  err(line: string): void;
  env(name: string): string | undefined;
  isTerminal: boolean;
  /** Resolves on the first SIGINT or SIGTERM; a second one exits at once. */
  shutdownSignal(): Promise<string>;
}

const encoder = new TextEncoder();

/** The real process. */
export function denoCliIo(): CliIo {
  return {
    out: (line) => Deno.stdout.writeSync(encoder.encode(line + "\n")),
    err: (line) => Deno.stderr.writeSync(encoder.encode(line + "\n")),
    env: (name) => Deno.env.get(name),
    isTerminal: Deno.stdout.isTerminal(),
    shutdownSignal: () =>
      new Promise((resolve) => {
        let received = false;
        const handler = (signal: Deno.Signal) => () => {
          if (received) Deno.exit(130);
          received = true;
          resolve(signal);
        };
        Deno.addSignalListener("SIGINT", handler("SIGINT"));
        Deno.addSignalListener("SIGTERM", handler("SIGTERM"));
      }),
  };
}
