/**
 * Time sources: the {@link Clock} interface and the system clock.
 *
 * @module
 */
export { type Clock, oncePerTask, systemClock, type TimerHandle } from "./clock.ts";
