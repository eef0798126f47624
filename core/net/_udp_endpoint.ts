/**
 * One bound UDP socket of the broker service: its receive loop, the table of
 * its peers (one per remote address) and the checks a datagram passes before
 * it becomes a frame. A listener (`broker.ready`) takes new peers through an
 * admission function; a `broker.join` socket has one peer from the start.
 *
 * The socket closes once it is stopped (`server.stop()`, shutdown, or always
 * for a join socket) and its last peer is gone: a stopped listener keeps
 * serving the peers it knows, as a stopped TCP listener keeps its sockets.
 *
 * @module
 */
import type { Logger } from "@logtape/logtape";
import type { Clock } from "../time/mod.ts";
import type { UdpDropReason, UdpDrops } from "./_udp_drops.ts";
import type { UdpLink, UdpPeer } from "./_udp_peer.ts";
import type { FlowGate } from "./flow_gate.ts";
import type { PayloadCodec } from "./listen_address.ts";
import { type DatagramSocket, formatAddress } from "./transport.ts";

/** Back-off after a failed receive (other than the socket closing). */
const RECEIVE_RETRY_MS = 50;

/** A new remote address sent a datagram: its peer, or why it is not taken. */
export type UdpAdmit = (remote: string, hostname: string, port: number) => UdpPeer | UdpDropReason;

/** Dependencies of a {@link UdpEndpoint}. */
export interface UdpEndpointOptions {
  url: string;
  codec: PayloadCodec;
  /** Largest incoming datagram in bytes (at most 65,507). */
  maxIn: number;
  drops: UdpDrops;
  /** The process's input gate: while closed, datagrams are dropped (`max_pending`). */
  gate?: FlowGate;
  clock: Clock;
  log: Logger;
}

/** See the module documentation. */
export class UdpEndpoint implements UdpLink {
  readonly url: string;
  /** The bound address, `"ip:port"`. */
  readonly address: string;
  /** Resolves once the socket's multicast groups are joined (rejects if a join failed). */
  ready: Promise<void> = Promise.resolve();
  #socket: DatagramSocket;
  #options: UdpEndpointOptions;
  #peers = new Map<string, UdpPeer>();
  #admit: UdpAdmit | undefined;
  /** A join socket whose server is a multicast group: replies come from its members. */
  #anySource = false;
  #stopped = false;
  #closed = false;

  constructor(socket: DatagramSocket, options: UdpEndpointOptions) {
    this.#socket = socket;
    this.#options = options;
    this.url = options.url;
    this.address = socket.address;
  }

  /** Peers known now. */
  get peers(): number {
    return this.#peers.size;
  }

  /** Whether the socket is closed. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Joins multicast groups (IPv4 groups on `interfaceV4`, IPv6 ones on `interfaceV6`). */
  join(groups: readonly string[], interfaceV4: string, interfaceV6: number): void {
    if (groups.length === 0) return;
    this.ready = Promise.all(groups.map(async (group) => {
      try {
        await this.#socket.joinMulticast(group, group.includes(":") ? interfaceV6 : interfaceV4);
      } catch (error) {
        const where = group.includes(":") ? `interface ${interfaceV6}` : interfaceV4;
        throw new Error(
          `Cannot join multicast group ${group} on ${where} for ${this.url}: ${messageOf(error)}`,
          { cause: error },
        );
      }
    })).then(() => {});
  }

  /** Serves as a listener: datagrams from new addresses go through `admit`. */
  serve(admit: UdpAdmit): Promise<void> {
    this.#admit = admit;
    return this.#receiveLoop();
  }

  /** Serves one peer (a join socket): `anySource` takes datagrams from any address as its. */
  attach(peer: UdpPeer, anySource: boolean): Promise<void> {
    this.#peers.set(peer.remote, peer);
    this.#anySource = anySource;
    this.#stopped = true;
    return this.#receiveLoop();
  }

  /** Takes no new peers; the socket closes once the known ones are gone (`server.stop()`). */
  close(): void {
    this.#stopped = true;
    if (this.#peers.size === 0) this.#shutdown();
  }

  /** Closes the socket now (its peers must be closed first). */
  #shutdown(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#socket.close(); // the kernel leaves the multicast groups with it
  }

  async send(peer: UdpPeer, datagram: Uint8Array): Promise<void> {
    await this.#socket.send(datagram, peer.hostname, peer.port);
    this.#options.drops.datagramsOut++;
  }

  drop(reason: UdpDropReason, peer: UdpPeer, detail: string): void {
    this.#options.drops.drop(reason, this.url, peer.remote, detail);
  }

  forget(peer: UdpPeer): void {
    if (this.#peers.get(peer.remote) === peer) this.#peers.delete(peer.remote);
    if (this.#stopped && this.#peers.size === 0) this.#shutdown();
  }

  async #receiveLoop(): Promise<void> {
    // One byte more than IN: a datagram that fills the buffer was longer (and cut).
    const buffer = new Uint8Array(this.#options.maxIn + 1);
    while (!this.#closed) {
      let datagram;
      try {
        datagram = await this.#socket.receive(buffer);
      } catch (error) {
        if (this.#closed) return;
        this.#options.log.warning("Receiving on {url} failed: {error}", { url: this.url, error });
        await new Promise<void>((resolve) =>
          this.#options.clock.setTimeout(resolve, RECEIVE_RETRY_MS)
        );
        continue;
      }
      if (datagram === undefined) return;
      this.#received(datagram.bytes, datagram.hostname, datagram.port);
    }
  }

  #received(bytes: Uint8Array, hostname: string, port: number): void {
    const options = this.#options;
    const drops = options.drops;
    drops.datagramsIn++;
    const remote = formatAddress(hostname, port);
    const drop = (reason: UdpDropReason, detail: string, warn = true) =>
      drops.drop(reason, this.url, remote, detail, warn);
    if (bytes.length > options.maxIn) {
      return drop("too_large", `more than the IN limit of ${options.maxIn} bytes`);
    }
    if (options.codec === "bson") {
      const problem = documentProblem(bytes);
      if (problem !== undefined) return drop("malformed", problem);
    }
    let peer = this.#anySource ? this.#peers.values().next().value : this.#peers.get(remote);
    if (peer === undefined && this.#admit === undefined) {
      return drop("stranger", "not the address this socket joined");
    }
    if (options.gate !== undefined && !options.gate.isOpen) {
      return drop("max_pending", "the process holds as many queued messages as it may");
    }
    if (peer === undefined) {
      if (this.#stopped) return drop("stopped", "a new peer after the listener stopped");
      const admitted = this.#admit!(remote, hostname, port);
      if (typeof admitted === "string") {
        // Connection limits were logged by the ledger already.
        const logged = admitted === "max_connections" || admitted === "max_per_ip";
        return drop(admitted, "a new peer was not admitted", !logged);
      }
      peer = admitted;
      this.#peers.set(remote, peer);
    }
    if (!peer.receive(bytes)) {
      drop("pending", `${peer.pendingFrames} datagrams of socket ${peer.id} wait for handlers`);
    }
  }
}

/** Why `bytes` is not one whole BSON document, or `undefined` if it is one. */
function documentProblem(bytes: Uint8Array): string | undefined {
  if (bytes.length < 5) return `${bytes.length} bytes, shorter than the smallest BSON document`;
  const declared = new DataView(bytes.buffer, bytes.byteOffset, 4).getInt32(0, true);
  if (declared !== bytes.length) {
    return `its BSON length says ${declared} bytes, the datagram has ${bytes.length}`;
  }
  if (bytes[bytes.length - 1] !== 0) return "the BSON document does not end with a 0 byte";
  return undefined;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
