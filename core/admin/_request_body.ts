/**
 * The JSON body of a gateway request, read with a byte limit that holds even
 * when `Content-Length` is absent or lies: the stream is counted as it arrives.
 *
 * @module
 */
import { HttpError } from "./_http_error.ts";

/** `application/json` or `application/<something>+json`, with optional parameters. */
const JSON_MEDIA_TYPE = /^application\/(?:[\w.-]+\+)?json\s*(?:;|$)/i;
const CHARSET = /;\s*charset\s*=\s*"?([^";\s]+)"?/i;

function tooLarge(maxBytes: number): HttpError {
  return new HttpError(413, "PayloadTooLarge", `Request body over ${maxBytes} bytes`);
}

function checkContentType(contentType: string): void {
  if (!JSON_MEDIA_TYPE.test(contentType)) {
    throw new HttpError(
      415,
      "UnsupportedMediaType",
      `Content-Type must be application/json; found ${JSON.stringify(contentType)}`,
    );
  }
  const charset = CHARSET.exec(contentType)?.[1]?.toLowerCase();
  if (charset !== undefined && charset !== "utf-8" && charset !== "utf8") {
    throw new HttpError(
      415,
      "UnsupportedMediaType",
      `JSON bodies must be UTF-8; found charset ${JSON.stringify(charset)}`,
    );
  }
}

async function readBytes(request: Request, maxBytes: number): Promise<Uint8Array> {
  const body = request.body;
  if (body === null) return new Uint8Array(0);
  const chunks: Uint8Array[] = [];
  let total = 0;
  const reader = body.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.byteLength;
      // Stop reading at once: the rest of an oversized body never gets buffered.
      if (total > maxBytes) throw tooLarge(maxBytes);
      chunks.push(value);
    }
  } catch (error) {
    await reader.cancel().catch(() => {});
    throw error;
  } finally {
    reader.releaseLock();
  }
  if (chunks.length === 1) return chunks[0]!;
  const bytes = new Uint8Array(total);
  let at = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, at);
    at += chunk.byteLength;
  }
  return bytes;
}

/**
 * The values a request body carries: a JSON array is the values list, any
 * other JSON value is one value, an empty body is no values.
 *
 * @throws {HttpError} 413 over `maxBytes` (declared or counted), 415 a non-JSON
 *   Content-Type (or none with a body), 400 a bad Content-Length, invalid UTF-8 or JSON.
 */
export async function readBodyValues(request: Request, maxBytes: number): Promise<unknown[]> {
  const contentType = request.headers.get("content-type");
  if (contentType !== null) checkContentType(contentType);
  const declared = request.headers.get("content-length");
  if (declared !== null) {
    if (!/^\d+$/.test(declared.trim())) {
      throw new HttpError(
        400,
        "BadRequest",
        `Content-Length must be a byte count; found ${JSON.stringify(declared)}`,
      );
    }
    if (Number(declared) > maxBytes) {
      await request.body?.cancel().catch(() => {});
      throw tooLarge(maxBytes);
    }
  }
  // A declared length is enforced by the HTTP server (the body cannot run past it): read it
  // at once; only a chunked body of unknown length is counted as it streams in.
  const bytes = declared !== null
    ? new Uint8Array(await request.arrayBuffer())
    : await readBytes(request, maxBytes);
  if (bytes.byteLength > maxBytes) throw tooLarge(maxBytes);
  if (bytes.byteLength === 0) return [];
  if (contentType === null) {
    throw new HttpError(
      415,
      "UnsupportedMediaType",
      "Content-Type must be application/json; found none",
    );
  }
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(bytes);
  } catch {
    throw new HttpError(400, "SyntaxError", "Request body is not valid UTF-8");
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new HttpError(400, "SyntaxError", `Request body is not JSON: ${reason}`);
  }
  return Array.isArray(value) ? value : [value];
}
