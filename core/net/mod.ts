/**
 * Networking: framing, listen addresses (and later listeners, sockets, writers).
 *
 * @module
 */

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
  type ListenAddress,
  type ListenProtocol,
  parseByteSize,
  parseListenAddress,
  type PayloadCodec,
} from "./listen_address.ts";
