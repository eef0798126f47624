/**
 * A client SDK transport for the benchmarks' load generators beyond the SDK's own:
 * a connection opened elsewhere handed to a {@linkcode StageClient} (c10k drives
 * some of its already-open idle connections).
 *
 * @module
 */
import { type ClientTransport, denoConnection } from "../../core/client/mod.ts";

/**
 * Hands out `conn`, already open, to the first `connect` (host and port are not used);
 * a second `connect` rejects (the benchmarks' clients do not reconnect).
 */
export function adoptedTransport(conn: Deno.TcpConn): ClientTransport {
  let taken = false;
  return {
    connect() {
      if (taken) return Promise.reject(new Error("adoptedTransport: the connection was taken"));
      taken = true;
      return Promise.resolve(denoConnection(conn));
    },
  };
}
