/**
 * A plain UDP socket for tests: bound to 127.0.0.1 (port 0), it queues what
 * it receives and waits for it with a deadline.
 */
import { BSON } from "bson";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A received datagram and its sender. */
export interface Received {
  bytes: Uint8Array;
  from: string;
}

/** See the module documentation. */
export class UdpClient implements AsyncDisposable {
  readonly conn: Deno.DatagramConn;
  readonly port: number;
  #queue: Received[] = [];
  #waiters: (() => void)[] = [];
  #loop: Promise<void>;
  #closed = false;

  constructor(hostname = "127.0.0.1", options: { loopback?: boolean } = {}) {
    this.conn = Deno.listenDatagram({ hostname, port: 0, transport: "udp", ...options });
    this.port = (this.conn.addr as Deno.NetAddr).port;
    this.#loop = this.#receive();
  }

  /** `"127.0.0.1:port"`: the address the server sees. */
  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  async #receive(): Promise<void> {
    for (;;) {
      let bytes: Uint8Array;
      let from: Deno.NetAddr;
      try {
        const [data, addr] = await this.conn.receive(new Uint8Array(70_000));
        bytes = data;
        from = addr as Deno.NetAddr;
      } catch {
        return; // closed
      }
      this.#queue.push({ bytes, from: `${from.hostname}:${from.port}` });
      for (const waiter of this.#waiters.splice(0)) waiter();
    }
  }

  /** Sends raw bytes to `port` (on 127.0.0.1 unless `hostname` is given). */
  async send(port: number, bytes: Uint8Array, hostname = "127.0.0.1"): Promise<void> {
    await this.conn.send(bytes, { transport: "udp", hostname, port });
  }

  /** Sends a value as one JSON datagram. */
  sendJson(port: number, value: unknown): Promise<void> {
    return this.send(port, encoder.encode(JSON.stringify(value)));
  }

  /** The next datagram, or throws after `ms`. */
  async next(ms = 5000): Promise<Received> {
    const deadline = Date.now() + ms;
    while (this.#queue.length === 0) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no datagram on ${this.address} within ${ms} ms`);
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((resolve) => {
        this.#waiters.push(resolve);
        timer = setTimeout(resolve, left);
      });
      clearTimeout(timer);
    }
    return this.#queue.shift()!;
  }

  /** The next datagram as JSON. */
  async nextJson(ms?: number): Promise<Record<string, unknown>> {
    return JSON.parse(decoder.decode((await this.next(ms)).bytes));
  }

  /** Sends a JSON request and returns the next JSON datagram. */
  async json(port: number, value: unknown, ms?: number): Promise<Record<string, unknown>> {
    await this.sendJson(port, value);
    return await this.nextJson(ms);
  }

  /** Sends a BSON document and returns the next datagram decoded as one. */
  async bson(port: number, value: Record<string, unknown>): Promise<Record<string, unknown>> {
    await this.send(port, BSON.serialize(value));
    return BSON.deserialize((await this.next()).bytes);
  }

  /** Datagrams received and not yet taken. */
  get queued(): number {
    return this.#queue.length;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.conn.close();
    await this.#loop;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
