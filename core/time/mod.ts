/**
 * Time sources: the {@link Clock} interface and the system clock.
 *
 * @module
 */
export { type Clock, systemClock, type TimerHandle } from "./clock.ts";
