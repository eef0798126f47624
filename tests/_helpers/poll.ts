/** Bounded polling for tests that wait on real processes. */

/**
 * Calls `read` until `ok` accepts its value (returned), or throws after `ms`
 * naming `what` and the last value seen.
 */
export async function poll<T>(
  what: string,
  read: () => Promise<T>,
  ok: (value: T) => boolean,
  ms = 15_000,
  intervalMs = 50,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await read();
    if (ok(value)) return value;
    if (Date.now() > deadline) throw new Error(`${what}: last ${JSON.stringify(value)}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
