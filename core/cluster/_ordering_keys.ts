/**
 * Ordering keys of the records that are not socket records: serial waitfors
 * and `stage.submit` keys, hashed into the upper half of the key space.
 *
 * @module
 */

/**
 * The ordering key of a name: keys of serial waitfors and submit keys live above
 * 2^31, apart from socket ids (a rare hash collision only serialises two names).
 */
export function orderingKey(name: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) hash = Math.imul(hash ^ name.charCodeAt(i), 0x01000193);
  return ((hash >>> 1) | 0x80000000) >>> 0;
}

/** The ordering key of a `stage.submit` key (0 and "" mean no ordering). */
export function submitKey(key: number | string): number {
  return key === 0 || key === "" ? 0 : orderingKey(`submit:${typeof key}:${key}`);
}
