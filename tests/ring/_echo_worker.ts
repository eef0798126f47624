/**
 * Worker used by the ring tests. The first message selects a mode:
 *
 * - `{ mode: "echo", toWorker, toMain, count }`: receives `count` records on `toWorker`,
 *   checks each one's sequence number (`a`) and FNV-1a checksum (`b`), echoes it on
 *   `toMain`, then posts `{ received, errors, bytes }`.
 * - `{ mode: "write", ring, delayMs, tag, a, b, body }`: writes one record after
 *   `delayMs`, then posts `"written"`.
 *
 * @module
 */

/// <reference lib="deno.worker" />

import { RingBuffer, RingReceiver, RingSender } from "../../core/ring/mod.ts";
import { fnv1a } from "./_helpers.ts";

/** Request that starts the echo mode. */
export interface EchoRequest {
  mode: "echo";
  toWorker: SharedArrayBuffer;
  toMain: SharedArrayBuffer;
  count: number;
}

/** Request that starts the delayed-write mode. */
export interface WriteRequest {
  mode: "write";
  ring: SharedArrayBuffer;
  delayMs: number;
  tag: number;
  a: number;
  b: number;
  body: Uint8Array;
}

/** Final report of the echo mode. */
export interface EchoReport {
  received: number;
  errors: number;
  bytes: number;
}

async function echo(request: EchoRequest): Promise<EchoReport> {
  // Pooled bodies on this side, one ArrayBuffer per body on the main side: both get covered.
  const receiver = new RingReceiver(new RingBuffer(request.toWorker, { pooledBodies: true }));
  using sender = new RingSender(new RingBuffer(request.toMain));
  const report: EchoReport = { received: 0, errors: 0, bytes: 0 };
  const onRecord = (tag: number, a: number, b: number, body: Uint8Array) => {
    if (a !== report.received || fnv1a(body) !== b) report.errors++;
    report.received++;
    report.bytes += body.byteLength;
    sender.send(tag, a, b, body);
  };
  while (report.received < request.count) {
    if (receiver.drain(onRecord) === 0) await receiver.wait();
  }
  await sender.flushed();
  return report;
}

self.onmessage = async (event: MessageEvent<EchoRequest | WriteRequest>) => {
  const request = event.data;
  if (request.mode === "echo") {
    self.postMessage(await echo(request));
  } else {
    await new Promise((resolve) => setTimeout(resolve, request.delayMs));
    new RingBuffer(request.ring).tryWrite(request.tag, request.a, request.b, request.body);
    self.postMessage("written");
  }
};
