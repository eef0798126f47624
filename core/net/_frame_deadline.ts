/**
 * The slowloris defence of a `Connection`: once a frame's first byte
 * arrived, the whole frame must arrive within a deadline.
 *
 * @module
 */
import type { Clock, TimerHandle } from "../time/mod.ts";
import { FRAME_HEADER_SIZE, type FrameDecoder } from "./framing.ts";

/**
 * Times how long the decoder holds an incomplete frame. At most one timer is
 * armed, and only while a partial frame is buffered; a stream of large frames
 * that each end mid-read moves the start time, not the timer, which re-arms
 * only when it fires early.
 */
export class FrameDeadline {
  readonly #clock: Clock;
  readonly #ms: number;
  readonly #decoder: FrameDecoder;
  readonly #expired: (detail: string) => void;
  /** When the buffered partial frame's first byte arrived (clock ms). */
  #startedAt = 0;
  #timer: TimerHandle | undefined;
  /** When reading paused (clock ms), while it is paused. */
  #pausedAt: number | undefined;

  /**
   * @param clock the connection's clock
   * @param ms the deadline (positive)
   * @param decoder the connection's decoder, read after every read
   * @param expired called once when a frame misses the deadline, with a detail for the log
   */
  constructor(clock: Clock, ms: number, decoder: FrameDecoder, expired: (detail: string) => void) {
    this.#clock = clock;
    this.#ms = ms;
    this.#decoder = decoder;
    this.#expired = expired;
  }

  /** Whether a timer is armed. */
  get armed(): boolean {
    return this.#timer !== undefined;
  }

  /**
   * Call after each read has gone through the decoder.
   *
   * @param startedNow whether a partial frame left now began in this read
   *   (rather than being the same frame that was already buffered)
   * @param at when the read arrived (clock ms)
   */
  afterRead(startedNow: boolean, at: number): void {
    if (!this.#decoder.pendingHeader) {
      this.cancel();
      return;
    }
    if (startedNow) this.#startedAt = at;
    if (this.#timer === undefined && this.#pausedAt === undefined) this.#arm();
  }

  /** Reading paused for backpressure: the stall is ours, so the clock stops. */
  pause(): void {
    this.#pausedAt ??= this.#clock.now();
    this.cancel();
  }

  /** Reading resumed: the paused time is not held against the frame. */
  resume(): void {
    if (this.#pausedAt === undefined) return;
    this.#startedAt += this.#clock.now() - this.#pausedAt;
    this.#pausedAt = undefined;
    if (this.#decoder.pendingHeader) this.#arm();
  }

  /** Disarms the timer (the frame completed or the connection ended). */
  cancel(): void {
    this.#timer?.cancel();
    this.#timer = undefined;
  }

  #arm(): void {
    const waited = this.#clock.now() - this.#startedAt;
    this.#timer = this.#clock.setTimeout(() => this.#check(), Math.max(0, this.#ms - waited));
  }

  #check(): void {
    this.#timer = undefined;
    if (this.#pausedAt !== undefined || !this.#decoder.pendingHeader) return;
    const elapsed = this.#clock.now() - this.#startedAt;
    if (elapsed < this.#ms) {
      this.#arm();
      return;
    }
    const declared = this.#decoder.pendingFrameLength;
    const received = this.#decoder.bufferedBytes;
    const rounded = Math.round(elapsed);
    this.#expired(
      declared === 0
        ? `${received} of ${FRAME_HEADER_SIZE} header bytes received in ${rounded} ms`
        : `${received} of ${declared} frame bytes received in ${rounded} ms`,
    );
  }
}
