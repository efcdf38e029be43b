// Accept-time bounds on connections that have not yet said who they are: from TCP accept (and
// the TLS handshake, when Headway terminates TLS) to their first complete HTTP request head
// (which for /ts2021 carries the Noise initiation and is answered in the same tick). Those
// connections cost memory and a file descriptor while proving nothing, so they are capped per
// source address and in total, and ended when they stay silent too long (slow-loris). Once a
// connection has sent a request it is the transport's and the API's to bound.
import type { Socket } from 'node:net';

export interface ConnectionGateLimits {
  /** Pending connections from one source address; more are closed at accept. */
  readonly maxPendingPerAddress: number;
  /** Pending connections from everywhere; more are closed at accept. */
  readonly maxPendingTotal: number;
  /** A pending connection that sends no complete request head by then is closed. */
  readonly pendingTimeoutMs: number;
}

export interface ConnectionGateStats {
  pending: number;
  /** Source addresses with at least one pending connection. */
  pendingAddresses: number;
  refusedPerAddress: number;
  refusedTotal: number;
  timedOut: number;
}

interface PendingConnection {
  readonly address: string;
  readonly socket: Socket;
  readonly timer: NodeJS.Timeout;
  readonly onClose: () => void;
}

/** A connection's identity that the raw TCP socket and its TLS wrapper share. */
function connectionKey(socket: Socket): string | null {
  if (socket.remoteAddress === undefined || socket.remotePort === undefined) return null;
  return `${socket.remoteAddress}|${socket.remotePort}`;
}

export class ConnectionGate {
  readonly limits: ConnectionGateLimits;
  readonly #pending = new Map<string, PendingConnection>();
  readonly #perAddress = new Map<string, number>();
  #refusedPerAddress = 0;
  #refusedTotal = 0;
  #timedOut = 0;

  constructor(limits: ConnectionGateLimits) {
    this.limits = limits;
  }

  /**
   * Called for every accepted TCP socket; closes it at once when a bound is reached. A connection
   * already admitted (the same one handed on by the listener that sniffs TLS, or its TLS wrapper)
   * is not counted twice.
   */
  admit(socket: Socket): void {
    const key = connectionKey(socket);
    const address = socket.remoteAddress;
    if (key === null || address === undefined || this.#pending.has(key)) return;
    if (this.#pending.size >= this.limits.maxPendingTotal) {
      this.#refusedTotal++;
      socket.destroy();
      return;
    }
    const fromAddress = this.#perAddress.get(address) ?? 0;
    if (fromAddress >= this.limits.maxPendingPerAddress) {
      this.#refusedPerAddress++;
      socket.destroy();
      return;
    }
    const timer = setTimeout(() => {
      if (!this.#pending.has(key)) return;
      this.#timedOut++;
      this.#release(key);
      socket.destroy();
    }, this.limits.pendingTimeoutMs);
    timer.unref();
    const onClose = (): void => this.#release(key);
    this.#pending.set(key, { address, socket, timer, onClose });
    this.#perAddress.set(address, fromAddress + 1);
    socket.once('close', onClose);
  }

  /** The connection sent a complete request head (plain, TLS or upgrade): no longer pending. */
  active(socket: Socket | { remoteAddress?: string; remotePort?: number }): void {
    const key = connectionKey(socket as Socket);
    if (key !== null) this.#release(key);
  }

  stats(): ConnectionGateStats {
    return {
      pending: this.#pending.size,
      pendingAddresses: this.#perAddress.size,
      refusedPerAddress: this.#refusedPerAddress,
      refusedTotal: this.#refusedTotal,
      timedOut: this.#timedOut,
    };
  }

  /** Stops every timer (shutdown). */
  close(): void {
    for (const key of [...this.#pending.keys()]) this.#release(key);
  }

  #release(key: string): void {
    const entry = this.#pending.get(key);
    if (entry === undefined) return;
    clearTimeout(entry.timer);
    // The listener would otherwise live as long as the connection (hours for a map poll) and
    // could release a later connection that reuses the same address and port.
    entry.socket.off('close', entry.onClose);
    this.#pending.delete(key);
    const left = (this.#perAddress.get(entry.address) ?? 1) - 1;
    if (left <= 0) this.#perAddress.delete(entry.address);
    else this.#perAddress.set(entry.address, left);
  }
}
