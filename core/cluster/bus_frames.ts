/**
 * The wire format of the local bus: frames between a process (a bus
 * endpoint) and the hub that connects the processes of one machine. Review it
 * as a wire format.
 *
 * A frame is the platform's usual `[int32 LE total length][payload]`; the
 * payload's first byte is a {@link BusFrame} type. Control frames carry JSON;
 * message frames carry a stage message as `encodeSignal` laid it out, after
 * the endpoint it goes to.
 *
 * @module
 */
import { encodeFrame } from "../net/framing.ts";

/** Frame types. */
export const BusFrame = {
  /** Endpoint → hub, first frame: JSON {@link EndpointInfo}. */
  Hello: 1,
  /** Endpoint → hub: JSON {@link EndpointInfo} (its stages or state changed). */
  Update: 2,
  /** Hub → endpoint: JSON {@link EndpointInfo}[] — every endpoint connected now. */
  Membership: 3,
  /** Endpoint → hub: `[u16 length][target endpoint UTF-8][stage message]`. */
  Send: 4,
  /** Hub → endpoint: `[stage message]` for this endpoint. */
  Deliver: 5,
  /** Endpoint → hub: `[stage message]` carrying an ordering-lock request (the hub keeps the locks). */
  Lock: 6,
} as const;

/** What an endpoint tells the hub about itself. */
export interface EndpointInfo {
  /** `node/group`: unique on the bus. */
  endpoint: string;
  /** The machine's node name. */
  node: string;
  /** Stage ids served here. */
  stages: string[];
  /**
   * `ready` takes routed work; `starting` (its stages are not all up yet),
   * `overloaded` and `draining` take none while a ready instance exists
   * (replies and exact deliveries still arrive).
   */
  state: EndpointState;
  /** Its load when it last told (heartbeats over NATS carry it): p95 dispatch delay, queued messages. */
  load?: EndpointLoad;
  /**
   * Where its own admin API listens (`127.0.0.1:port`), for the supervisor that
   * aggregates this machine's processes.
   */
  admin?: string;
  /**
   * With `#cluster`: it can keep the cluster's ordering locks, since this
   * wall-clock time (ms; its start). The oldest such endpoint keeps them.
   */
  lockKeeperSince?: number;
}

/** How busy an endpoint is. */
export interface EndpointLoad {
  /** p95 dispatch delay over the `#router` window, ms (0 when detection is off). */
  p95Ms: number;
  /** Messages queued in its stages and not yet dispatched. */
  queued: number;
}

/** Routing state of an endpoint (DESIGN.md §3 `#router`, the multi-process issue). */
export type EndpointState = "starting" | "ready" | "overloaded" | "draining";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A control frame (`Hello`, `Update`, `Membership`). */
export function encodeControl(type: number, value: unknown): Uint8Array {
  const json = encoder.encode(JSON.stringify(value));
  const payload = new Uint8Array(1 + json.length);
  payload[0] = type;
  payload.set(json, 1);
  return encodeFrame(payload);
}

/** A message frame: `Deliver` or `Lock` (no target), or `Send` to `target`. */
export function encodeMessage(type: number, message: Uint8Array, target?: string): Uint8Array {
  const name = target === undefined ? new Uint8Array(0) : encoder.encode(target);
  const head = target === undefined ? 1 : 3 + name.length;
  const payload = new Uint8Array(head + message.length);
  payload[0] = type;
  if (target !== undefined) {
    new DataView(payload.buffer).setUint16(1, name.length, true);
    payload.set(name, 3);
  }
  payload.set(message, head);
  return encodeFrame(payload);
}

/** A decoded frame payload. */
export type DecodedFrame =
  | { type: typeof BusFrame.Hello | typeof BusFrame.Update; info: EndpointInfo }
  | { type: typeof BusFrame.Membership; members: EndpointInfo[] }
  | { type: typeof BusFrame.Send; target: string; message: Uint8Array }
  | { type: typeof BusFrame.Deliver | typeof BusFrame.Lock; message: Uint8Array };

function checkInfo(value: unknown): EndpointInfo {
  const info = value as EndpointInfo;
  if (
    typeof info !== "object" || info === null || typeof info.endpoint !== "string" ||
    typeof info.node !== "string" || !Array.isArray(info.stages) ||
    !info.stages.every((stage) => typeof stage === "string") ||
    !["starting", "ready", "overloaded", "draining"].includes(info.state)
  ) {
    throw new TypeError(`Bad endpoint info on the bus: ${JSON.stringify(value)}`);
  }
  return info;
}

/**
 * Reads a frame payload (without its length header). The message bytes are
 * copied: the payload may be a view into a read buffer.
 *
 * @throws TypeError for an unknown type or a malformed frame
 */
export function decodeFrame(payload: Uint8Array): DecodedFrame {
  const type = payload[0];
  switch (type) {
    case BusFrame.Hello:
    case BusFrame.Update:
      return { type, info: checkInfo(JSON.parse(decoder.decode(payload.subarray(1)))) };
    case BusFrame.Membership: {
      const members = JSON.parse(decoder.decode(payload.subarray(1)));
      if (!Array.isArray(members)) throw new TypeError("Bad membership frame on the bus");
      return { type, members: members.map(checkInfo) };
    }
    case BusFrame.Send: {
      if (payload.length < 3) throw new TypeError("Truncated send frame on the bus");
      const length = new DataView(payload.buffer, payload.byteOffset + 1, 2).getUint16(0, true);
      if (payload.length < 3 + length) throw new TypeError("Truncated send frame on the bus");
      return {
        type,
        target: decoder.decode(payload.subarray(3, 3 + length)),
        message: payload.slice(3 + length),
      };
    }
    case BusFrame.Deliver:
    case BusFrame.Lock:
      return { type, message: payload.slice(1) };
    default:
      throw new TypeError(`Unknown bus frame type ${type}`);
  }
}
