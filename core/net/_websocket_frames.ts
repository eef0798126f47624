/**
 * The RFC 6455 frame codec: frame headers (7-, 16- and 64-bit lengths),
 * masking, close payloads. Stateless functions; the streaming state machine
 * lives in `websocket_conn.ts`.
 *
 * @module
 */

/** Frame opcodes (RFC 6455 §5.2). */
export const Opcode = {
  Continuation: 0x0,
  Text: 0x1,
  Binary: 0x2,
  Close: 0x8,
  Ping: 0x9,
  Pong: 0xa,
} as const;

/** One of the {@link Opcode} values. */
export type OpcodeValue = typeof Opcode[keyof typeof Opcode];

/** Close status codes used here (RFC 6455 §7.4.1). */
export const CloseCode = {
  Normal: 1000,
  GoingAway: 1001,
  ProtocolError: 1002,
  NoStatus: 1005,
  InvalidPayload: 1007,
  TooBig: 1009,
} as const;

/** The largest payload of a control frame (ping, pong, close). */
export const MAX_CONTROL_PAYLOAD = 125;

/** The longest frame header: 2 bytes, a 64-bit length and a 4-byte mask. */
export const MAX_HEADER_SIZE = 14;

/** A peer broke the protocol; `code` is the close code to answer with. */
export class WebSocketProtocolError extends Error {
  override name = "WebSocketProtocolError";
  /** The close status code for this violation (1002, 1007 or 1009). */
  readonly code: number;

  constructor(code: number, message: string) {
    super(message);
    this.code = code;
  }
}

/** A parsed frame header. */
export interface FrameHeader {
  fin: boolean;
  opcode: number;
  /** The 4-byte masking key, or `undefined` for an unmasked frame. */
  mask: Uint8Array | undefined;
  /** Payload length in bytes. */
  length: number;
  /** Bytes the header took (2..14). */
  headerLength: number;
}

const KNOWN_OPCODES = new Set<number>(Object.values(Opcode));

/**
 * Parses the frame header at `bytes[offset..end)`; `undefined` when the bytes
 * end inside it. Checks what every frame must satisfy: reserved bits clear
 * (no extension is ever negotiated), a known opcode, control frames unfragmented
 * and at most 125 bytes, and a 64-bit length below 2^53.
 *
 * @example
 * ```ts
 * import { parseFrameHeader } from "./_websocket_frames.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(parseFrameHeader(new Uint8Array([0x81]), 0, 1), undefined); // incomplete
 * assert.throws(() => parseFrameHeader(new Uint8Array([0xc1, 0]), 0, 2), /reserved bits/);
 * ```
 *
 * @throws {WebSocketProtocolError} (code 1002; 1009 for a length of 2^53 or more)
 *   naming the violation
 */
export function parseFrameHeader(
  bytes: Uint8Array,
  offset: number,
  end: number,
): FrameHeader | undefined {
  if (end - offset < 2) return undefined;
  const first = bytes[offset]!;
  const second = bytes[offset + 1]!;
  const opcode = first & 0x0f;
  if ((first & 0x70) !== 0) {
    throw new WebSocketProtocolError(
      CloseCode.ProtocolError,
      `WebSocket frame has reserved bits 0x${(first & 0x70).toString(16)} set`,
    );
  }
  if (!KNOWN_OPCODES.has(opcode)) {
    throw new WebSocketProtocolError(
      CloseCode.ProtocolError,
      `WebSocket frame has unknown opcode 0x${opcode.toString(16)}`,
    );
  }
  const fin = (first & 0x80) !== 0;
  const masked = (second & 0x80) !== 0;
  let length = second & 0x7f;
  let headerLength = 2;
  if (length === 126) headerLength += 2;
  else if (length === 127) headerLength += 8;
  if (masked) headerLength += 4;
  if (end - offset < headerLength) return undefined;
  let at = offset + 2;
  if (length === 126) {
    length = (bytes[at]! << 8) | bytes[at + 1]!;
    at += 2;
  } else if (length === 127) {
    const high = ((bytes[at]! << 24) | (bytes[at + 1]! << 16) | (bytes[at + 2]! << 8) |
      bytes[at + 3]!) >>> 0;
    const low = ((bytes[at + 4]! << 24) | (bytes[at + 5]! << 16) | (bytes[at + 6]! << 8) |
      bytes[at + 7]!) >>> 0;
    if (high > 0x1f_ffff) {
      throw new WebSocketProtocolError(
        CloseCode.TooBig,
        `WebSocket frame declares a payload of 2^53 bytes or more`,
      );
    }
    length = high * 0x1_0000_0000 + low;
    at += 8;
  }
  if (opcode >= 0x8) {
    if (!fin) {
      throw new WebSocketProtocolError(
        CloseCode.ProtocolError,
        `WebSocket control frame (opcode 0x${opcode.toString(16)}) is fragmented`,
      );
    }
    if (length > MAX_CONTROL_PAYLOAD) {
      throw new WebSocketProtocolError(
        CloseCode.ProtocolError,
        `WebSocket control frame (opcode 0x${
          opcode.toString(16)
        }) has ${length} payload bytes, over ${MAX_CONTROL_PAYLOAD}`,
      );
    }
  }
  const mask = masked ? bytes.slice(at, at + 4) : undefined;
  return { fin, opcode, mask, length, headerLength };
}

/**
 * Writes a frame header for `length` payload bytes into `target` at `offset`;
 * returns the header's length.
 */
export function writeFrameHeader(
  target: Uint8Array,
  offset: number,
  opcode: number,
  length: number,
  fin: boolean,
  mask: Uint8Array | undefined,
): number {
  target[offset] = (fin ? 0x80 : 0) | opcode;
  const maskBit = mask === undefined ? 0 : 0x80;
  let at = offset + 2;
  if (length < 126) {
    target[offset + 1] = maskBit | length;
  } else if (length <= 0xffff) {
    target[offset + 1] = maskBit | 126;
    target[at++] = length >>> 8;
    target[at++] = length & 0xff;
  } else {
    target[offset + 1] = maskBit | 127;
    const high = Math.floor(length / 0x1_0000_0000);
    const low = length >>> 0;
    for (const [index, value] of [high, low].entries()) {
      target[at + index * 4] = value >>> 24;
      target[at + index * 4 + 1] = (value >>> 16) & 0xff;
      target[at + index * 4 + 2] = (value >>> 8) & 0xff;
      target[at + index * 4 + 3] = value & 0xff;
    }
    at += 8;
  }
  if (mask !== undefined) {
    target.set(mask, at);
    at += 4;
  }
  return at - offset;
}

/** The header length of a frame carrying `length` payload bytes. */
export function headerSize(length: number, masked: boolean): number {
  return (length < 126 ? 2 : length <= 0xffff ? 4 : 10) + (masked ? 4 : 0);
}

/**
 * Encodes one whole frame: header then payload (masked with `mask` when given).
 *
 * @example
 * ```ts
 * import { encodeFrame, Opcode, parseFrameHeader } from "./_websocket_frames.ts";
 * import assert from "node:assert/strict";
 *
 * const frame = encodeFrame(Opcode.Text, new TextEncoder().encode("hi"));
 * assert.deepEqual([...frame], [0x81, 2, 0x68, 0x69]);
 * const masked = encodeFrame(Opcode.Binary, new Uint8Array(300), { mask: new Uint8Array(4) });
 * assert.deepEqual(parseFrameHeader(masked, 0, masked.length)?.headerLength, 8);
 * ```
 */
export function encodeFrame(
  opcode: number,
  payload: Uint8Array,
  options: { fin?: boolean; mask?: Uint8Array } = {},
): Uint8Array {
  const size = headerSize(payload.length, options.mask !== undefined);
  const frame = new Uint8Array(size + payload.length);
  writeFrameHeader(frame, 0, opcode, payload.length, options.fin ?? true, options.mask);
  frame.set(payload, size);
  if (options.mask !== undefined) applyMask(frame.subarray(size), options.mask, 0);
  return frame;
}

/**
 * XORs `bytes` in place with `mask`, starting at byte `offset` of the payload
 * (masking and unmasking are the same operation).
 */
export function applyMask(bytes: Uint8Array, mask: Uint8Array, offset: number): void {
  const m0 = mask[offset & 3]!;
  const m1 = mask[(offset + 1) & 3]!;
  const m2 = mask[(offset + 2) & 3]!;
  const m3 = mask[(offset + 3) & 3]!;
  const length = bytes.length;
  let i = 0;
  for (; i + 4 <= length; i += 4) {
    bytes[i] = bytes[i]! ^ m0;
    bytes[i + 1] = bytes[i + 1]! ^ m1;
    bytes[i + 2] = bytes[i + 2]! ^ m2;
    bytes[i + 3] = bytes[i + 3]! ^ m3;
  }
  const rest = [m0, m1, m2];
  for (let k = 0; i < length; i++, k++) bytes[i] = bytes[i]! ^ rest[k]!;
}

/** The payload of a close frame: a 2-byte status code and a UTF-8 reason (≤ 123 bytes). */
export function closePayload(code: number, reason = ""): Uint8Array {
  let text = new TextEncoder().encode(reason);
  if (text.length > MAX_CONTROL_PAYLOAD - 2) text = text.subarray(0, MAX_CONTROL_PAYLOAD - 2);
  const payload = new Uint8Array(2 + text.length);
  payload[0] = code >>> 8;
  payload[1] = code & 0xff;
  payload.set(text, 2);
  return payload;
}

/**
 * Reads a close frame's payload: its status code (1005 when empty) and reason.
 *
 * @throws {WebSocketProtocolError} (1002) for a 1-byte payload or a code a peer may not send
 */
export function parseClosePayload(payload: Uint8Array): { code: number; reason: string } {
  if (payload.length === 0) return { code: CloseCode.NoStatus, reason: "" };
  if (payload.length === 1) {
    throw new WebSocketProtocolError(CloseCode.ProtocolError, "WebSocket close frame of 1 byte");
  }
  const code = (payload[0]! << 8) | payload[1]!;
  const allowed = (code >= 1000 && code <= 1014 && code !== 1004 && code !== 1005 &&
    code !== 1006) || (code >= 3000 && code <= 4999);
  if (!allowed) {
    throw new WebSocketProtocolError(
      CloseCode.ProtocolError,
      `WebSocket close frame has invalid status code ${code}`,
    );
  }
  return { code, reason: new TextDecoder().decode(payload.subarray(2)) };
}
