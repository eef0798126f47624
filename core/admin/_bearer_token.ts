/**
 * `Authorization: Bearer <token>` checks shared by the admin API and the HTTP
 * gateway, compared in constant time.
 *
 * @module
 */

const encoder = new TextEncoder();

/** What a request's `Authorization` header holds against the expected token. */
export type BearerCheck = "ok" | "missing" | "wrong";

/** SHA-256 both, then compare every byte: the time taken tells nothing of the token. */
export async function sameToken(given: string, expected: Uint8Array): Promise<boolean> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", encoder.encode(given)));
  let diff = 0;
  for (let i = 0; i < digest.length; i++) diff |= digest[i]! ^ expected[i]!;
  return diff === 0;
}

/** The SHA-256 digest of `token`, to compare requests against with {@link sameToken}. */
export async function tokenDigest(token: string): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", encoder.encode(token)));
}

/** Checks an `Authorization` header value against a {@link tokenDigest}. */
export async function checkBearer(
  header: string | undefined,
  expected: Uint8Array,
): Promise<BearerCheck> {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header ?? "");
  if (match === null) return "missing";
  return await sameToken(match[1]!, expected) ? "ok" : "wrong";
}
