/**
 * The response side of an agent request: reading the body under a size limit,
 * decoding it by media type and charset, and listing the headers.
 *
 * @module
 */
import type { AgentContent } from "./agent_request.ts";

/** Whether a media type is text (decoded with its charset) rather than bytes. */
export function isTextual(type: string): boolean {
  return type.startsWith("text/") || type === "application/json" || type.endsWith("+json") ||
    type === "application/x-www-form-urlencoded" || type === "application/xml" ||
    type.endsWith("+xml") || type === "application/javascript";
}

/** Splits a `Content-Type` value into its lowercase media type and charset parameter. */
export function parseContentType(value: string | null): { type: string; charset: string } {
  if (value === null) return { type: "", charset: "" };
  const [essence = "", ...parameters] = value.split(";");
  let charset = "";
  for (const parameter of parameters) {
    const [name = "", text = ""] = parameter.split("=");
    if (name.trim().toLowerCase() === "charset") {
      charset = text.trim().replace(/^"(.*)"$/, "$1").toLowerCase();
    }
  }
  return { type: essence.trim().toLowerCase(), charset };
}

/**
 * Decodes a body: text for textual types (charset default `utf-8`), bytes
 * otherwise, and bytes too when the charset is one `TextDecoder` does not know.
 */
export function decodeContent(
  contentType: string | null,
  bytes: Uint8Array,
): Pick<AgentContent, "type" | "content" | "charset"> {
  const { type, charset } = parseContentType(contentType);
  if (!isTextual(type)) return { type, content: bytes, charset: "" };
  const label = charset || "utf-8";
  let decoder: TextDecoder;
  try {
    decoder = new TextDecoder(label);
  } catch {
    return { type, content: bytes, charset: label };
  }
  return { type, content: decoder.decode(bytes), charset: label };
}

/**
 * Reads a body of at most `maxBytes`; a longer one (by `Content-Length` or
 * as it streams) is cancelled and `undefined` returned.
 */
export async function readBody(
  response: Response,
  maxBytes: number,
): Promise<Uint8Array | undefined> {
  const declared = Number(response.headers.get("content-length") ?? NaN);
  if (declared > maxBytes) {
    await response.body?.cancel();
    return undefined;
  }
  if (response.body === null) return new Uint8Array(0);
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.length;
    if (total > maxBytes) {
      await reader.cancel();
      return undefined;
    }
    chunks.push(value);
  }
  if (chunks.length === 1) return chunks[0]!;
  const bytes = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.length;
  }
  return bytes;
}

/** The response headers as an object (lowercase names; `set-cookie` goes to `cookie`). */
export function headerObject(headers: Headers): Record<string, string> {
  const result: Record<string, string> = {};
  for (const [name, value] of headers) if (name !== "set-cookie") result[name] = value;
  return result;
}
