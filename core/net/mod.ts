/**
 * Networking: framing, listen addresses, the broker's limits and connection quota,
 * the WebSocket adapter that gives `ws://` listeners the same framed stream, and
 * the UDP options and peer broker of `udp://` addresses.
 *
 * @module
 */

export { type BrokerLimits, brokerLimitsFromFlow, defaultBrokerLimits } from "./broker_limits.ts";
export {
  ConnectionQuota,
  type ConnectionQuotaLimits,
  type RefusalReason,
  remoteIp,
} from "./connection_quota.ts";

export {
  encodeFrame,
  FRAME_HEADER_SIZE,
  FrameDecoder,
  FrameError,
  type FrameErrorCode,
  MAX_FRAME_LENGTH,
  writeFrameHeader,
} from "./framing.ts";
export {
  DEFAULT_PACKET_SIZE,
  isSharedAddress,
  type ListenAddress,
  type ListenProtocol,
  parseByteSize,
  parseListenAddress,
  type PayloadCodec,
} from "./listen_address.ts";
export { FlowGate, PendingBound } from "./flow_gate.ts";
export { WebSocketConn, type WebSocketConnOptions } from "./websocket_conn.ts";
export {
  acceptWebSocket,
  connectWebSocket,
  type HandshakeFailure,
  type HandshakeOptions,
  MAX_HANDSHAKE_BYTES,
  WebSocketHandshakeError,
} from "./websocket_upgrade.ts";
export {
  frameOutLimit,
  isMulticast,
  MAX_DATAGRAM_SIZE,
  type UdpOptions,
  udpOptions,
} from "./udp_address.ts";
export { DEFAULT_PEER_EXPIRE_MS, UdpBroker, type UdpDropReason } from "./udp_broker.ts";
