/**
 * The errors the client SDK rejects with. Each is a named subclass of
 * {@link ClientError} so callers can tell them apart with `instanceof` or by `name`.
 *
 * @module
 */

/** Base class of every error the client SDK raises on purpose. */
export class ClientError extends Error {
  /**
   * @param message what went wrong and where
   * @param options `cause`: the underlying error, if any
   */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}

/**
 * The connection was lost: requests already sent reject with it at the loss, and,
 * when reconnecting is off or gave up, so do queued sends and `next()`.
 */
export class ConnectionLostError extends ClientError {}

/** The client was closed with `close()`: every later or still pending operation rejects with it. */
export class ClientClosedError extends ClientError {}

/** `send` found the bounded outgoing queue full (the peer is not reading fast enough). */
export class SendQueueFullError extends ClientError {
  /** Frames queued when the send was refused. */
  readonly frames: number;
  /** Bytes queued when the send was refused. */
  readonly bytes: number;

  /**
   * @param message what was refused and the limits
   * @param frames frames queued at the refusal
   * @param bytes bytes queued at the refusal
   */
  constructor(message: string, frames: number, bytes: number) {
    super(message);
    this.frames = frames;
    this.bytes = bytes;
  }
}

/** No reply to a `request` arrived within its timeout. */
export class RequestTimeoutError extends ClientError {
  /** The timeout that expired, in milliseconds. */
  readonly timeoutMs: number;

  /**
   * @param message which request timed out
   * @param timeoutMs the timeout that expired
   */
  constructor(message: string, timeoutMs: number) {
    super(message);
    this.timeoutMs = timeoutMs;
  }
}

/** No incoming message arrived within the timeout given to `next(timeoutMs)`. */
export class ReceiveTimeoutError extends ClientError {}

/** Why a frame was refused: see {@link FrameError.code}. */
export type FrameErrorCode = "too_large" | "too_small" | "undecodable";

/**
 * A frame broke the wire rules: its declared length is below the 4-byte header or
 * above `maxFrame`, or its payload does not decode with the codec.
 */
export class FrameError extends ClientError {
  /** Which rule the frame broke. */
  readonly code: FrameErrorCode;
  /** `"incoming"` for a received frame, `"outgoing"` for one `send` refused. */
  readonly direction: "incoming" | "outgoing";

  /**
   * @param message the frame, its length and the limit
   * @param code which rule the frame broke
   * @param direction whether the frame was received or about to be sent
   * @param options `cause`: the codec's error for `"undecodable"`
   */
  constructor(
    message: string,
    code: FrameErrorCode,
    direction: "incoming" | "outgoing",
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.code = code;
    this.direction = direction;
  }
}
