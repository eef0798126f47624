/**
 * The RFC 6455 opening handshake as text: parsing an HTTP/1.1 Upgrade request
 * (server side) or its 101 response (client side), the `Sec-WebSocket-Accept`
 * digest, and the responses. No I/O here; `websocket_conn.ts` reads and writes.
 *
 * @module
 */

/** The GUID RFC 6455 appends to the key before hashing. */
const KEY_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/** Why an Upgrade request is refused: the HTTP status and a reason for the body and logs. */
export interface HandshakeRejection {
  status: 400 | 404 | 405 | 426 | 431;
  reason: string;
}

/** A valid Upgrade request. */
export interface UpgradeRequest {
  /** The request path without its query (`"/game"`). */
  path: string;
  /** The `Sec-WebSocket-Key` value. */
  key: string;
}

const STATUS_TEXT: Record<HandshakeRejection["status"], string> = {
  400: "Bad Request",
  404: "Not Found",
  405: "Method Not Allowed",
  426: "Upgrade Required",
  431: "Request Header Fields Too Large",
};

/** Where the header block ends (the index after `\r\n\r\n`), or -1 when it has not ended. */
export function headerEnd(bytes: Uint8Array, length: number, from = 0): number {
  for (let i = Math.max(3, from); i < length; i++) {
    if (
      bytes[i] === 10 && bytes[i - 1] === 13 && bytes[i - 2] === 10 && bytes[i - 3] === 13
    ) return i + 1;
  }
  return -1;
}

/** Splits a header block into its first line and lower-cased header fields. */
function parseHead(
  text: string,
): { line: string; fields: Map<string, string[]> } | string {
  const lines = text.split("\r\n");
  const line = lines[0] ?? "";
  const fields = new Map<string, string[]>();
  for (const raw of lines.slice(1)) {
    if (raw === "") continue;
    if (raw.startsWith(" ") || raw.startsWith("\t")) return `folded header line "${raw}"`;
    const colon = raw.indexOf(":");
    if (colon <= 0) return `malformed header line "${raw.slice(0, 80)}"`;
    const name = raw.slice(0, colon).trim().toLowerCase();
    const value = raw.slice(colon + 1).trim();
    const list = fields.get(name);
    if (list === undefined) fields.set(name, [value]);
    else list.push(value);
  }
  return { line, fields };
}

/** Whether the comma-separated header `values` hold `token` (case-insensitive). */
function hasToken(values: string[] | undefined, token: string): boolean {
  return (values ?? []).some((value) =>
    value.split(",").some((part) => part.trim().toLowerCase() === token)
  );
}

/**
 * Checks an Upgrade request's header block (up to and including the blank line)
 * against RFC 6455 §4.2.1 and the listen path (`""` = `/`).
 */
export function parseUpgradeRequest(
  text: string,
  listenPath: string,
): UpgradeRequest | HandshakeRejection {
  const head = parseHead(text);
  if (typeof head === "string") return { status: 400, reason: head };
  const parts = head.line.split(" ");
  if (parts.length !== 3) {
    return { status: 400, reason: `malformed request line "${head.line.slice(0, 80)}"` };
  }
  const [method, target, version] = parts as [string, string, string];
  if (!/^HTTP\/1\.[1-9]$/.test(version)) {
    return { status: 400, reason: `expected HTTP/1.1, found "${version.slice(0, 20)}"` };
  }
  if (method !== "GET") return { status: 405, reason: `method ${method.slice(0, 20)} is not GET` };
  if (!target.startsWith("/")) {
    return { status: 400, reason: `request target "${target.slice(0, 80)}" is not a path` };
  }
  const query = target.indexOf("?");
  const path = query < 0 ? target : target.slice(0, query);
  const wanted = listenPath === "" ? "/" : listenPath;
  if (path !== wanted) return { status: 404, reason: `no WebSocket endpoint at "${path}"` };
  const fields = head.fields;
  if (fields.get("host") === undefined) return { status: 400, reason: "missing Host header" };
  if (!hasToken(fields.get("upgrade"), "websocket")) {
    return { status: 400, reason: `"Upgrade: websocket" header missing` };
  }
  if (!hasToken(fields.get("connection"), "upgrade")) {
    return { status: 400, reason: `"Connection: Upgrade" header missing` };
  }
  const versions = fields.get("sec-websocket-version");
  if (versions === undefined || versions.length !== 1 || versions[0] !== "13") {
    return {
      status: 426,
      reason: `Sec-WebSocket-Version ${
        versions === undefined ? "missing" : `"${versions.join(", ").slice(0, 20)}"`
      }, expected 13`,
    };
  }
  const keys = fields.get("sec-websocket-key");
  if (keys === undefined || keys.length !== 1 || !isNonce(keys[0]!)) {
    return { status: 400, reason: "Sec-WebSocket-Key missing or not 16 bytes in base64" };
  }
  return { path, key: keys[0]! };
}

function isNonce(key: string): boolean {
  if (!/^[A-Za-z0-9+/]{22}==$/.test(key)) return false;
  return atob(key).length === 16;
}

/**
 * `Sec-WebSocket-Accept` for `key`: base64(SHA-1(key + GUID)).
 *
 * @example
 * ```ts
 * import { acceptKey } from "./_websocket_handshake.ts";
 * import assert from "node:assert/strict";
 *
 * // The sample of RFC 6455 §1.3.
 * assert.equal(await acceptKey("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
 * ```
 */
export async function acceptKey(key: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-1", new TextEncoder().encode(key + KEY_GUID));
  return btoa(String.fromCharCode(...new Uint8Array(digest)));
}

/** The 101 response that completes the handshake. */
export function upgradeResponse(accept: string): Uint8Array {
  return new TextEncoder().encode(
    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
      `Sec-WebSocket-Accept: ${accept}\r\n\r\n`,
  );
}

/** A refusal: status line, the reason as a plain-text body, then the server closes. */
export function rejectionResponse(rejection: HandshakeRejection): Uint8Array {
  const body = `${rejection.reason}\n`;
  const extra = rejection.status === 426 ? "Sec-WebSocket-Version: 13\r\n" : "";
  const bytes = new TextEncoder().encode(body);
  return new TextEncoder().encode(
    `HTTP/1.1 ${rejection.status} ${STATUS_TEXT[rejection.status]}\r\n${extra}` +
      `Content-Type: text/plain; charset=utf-8\r\nContent-Length: ${bytes.length}\r\n` +
      `Connection: close\r\n\r\n${body}`,
  );
}

/** A fresh `Sec-WebSocket-Key` (16 random bytes in base64). */
export function newKey(): string {
  return btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(16))));
}

/** The Upgrade request a client sends. */
export function upgradeRequest(host: string, path: string, key: string): Uint8Array {
  return new TextEncoder().encode(
    `GET ${path === "" ? "/" : path} HTTP/1.1\r\nHost: ${host}\r\nUpgrade: websocket\r\n` +
      `Connection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
  );
}

/**
 * Checks a server's response to {@link upgradeRequest}; returns what is wrong,
 * or `undefined` when it accepted.
 */
export function checkUpgradeResponse(text: string, accept: string): string | undefined {
  const head = parseHead(text);
  if (typeof head === "string") return head;
  const status = /^HTTP\/1\.\d (\d{3})(?: (.*))?$/.exec(head.line);
  if (status === null) return `malformed status line "${head.line.slice(0, 80)}"`;
  if (status[1] !== "101") return `status ${status[1]} ${status[2] ?? ""}`.trimEnd();
  if (!hasToken(head.fields.get("upgrade"), "websocket")) {
    return `"Upgrade: websocket" header missing`;
  }
  if (!hasToken(head.fields.get("connection"), "upgrade")) {
    return `"Connection: Upgrade" header missing`;
  }
  const got = head.fields.get("sec-websocket-accept");
  if (got === undefined || got.length !== 1 || got[0] !== accept) {
    return `Sec-WebSocket-Accept ${got === undefined ? "missing" : `"${got[0]}"`} does not match`;
  }
  if (head.fields.has("sec-websocket-extensions")) return "an extension was not asked for";
  return undefined;
}
