/**
 * Copies the scheduler keeps of queued record bodies.
 *
 * @module
 */

// Small queued bodies are carved from shared slabs (a view costs far less than
// an ArrayBuffer each). A slab lives while any of its records waits, so slabs are
// small: at worst a long-waiting record pins 8 KiB.
const SLAB_BYTES = 8192;
const POOLED_MAX = 1024;
let slab = new Uint8Array(SLAB_BYTES);
let slabUsed = 0;

/** A copy the scheduler may keep of `body` followed by `body2`. */
export function join(body?: Uint8Array, body2?: Uint8Array): Uint8Array {
  const first = body ?? EMPTY;
  const second = body2 ?? EMPTY;
  const length = first.length + second.length;
  let copy: Uint8Array;
  if (length > POOLED_MAX) copy = new Uint8Array(length);
  else {
    if (slabUsed + length > SLAB_BYTES) {
      slab = new Uint8Array(SLAB_BYTES);
      slabUsed = 0;
    }
    copy = slab.subarray(slabUsed, slabUsed + length);
    slabUsed += (length + 7) & ~7;
  }
  copy.set(first);
  if (second.length > 0) copy.set(second, first.length);
  return copy;
}

const EMPTY = new Uint8Array(0);
