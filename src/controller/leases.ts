/**
 * The controller's side of an agent's lease: when the agent may still be serving I/O on what it was last told.
 *
 * Protocol (src/wire/messages.ts, "Leases"): welcome grants a lease; after that the controller answers every
 * heartbeat with exactly one `lease` message and sends no other. The agent counts each lease from the moment
 * it sent the heartbeat (or hello) the grant answers, which is before the controller sent the grant, so the
 * agent's lease always ends before `expiresAt` here does (same clock rate assumed; no clock sync needed).
 *
 * Owns: expiresAt and the rule "an unreachable agent is gone only once its lease has expired". Knows nothing
 * about sockets: the session calls granted() right after it sent a welcome or a lease.
 *
 * Invariants:
 *   L1. expiresAt only grows while the session lives, and is never before the agent's own expiry.
 *   L2. expired(now) is true exactly when no grant was sent in the last leaseMs: the agent has fenced itself
 *       (src/agent/agent-lease.ts) and may be treated as gone.
 *
 * Thread: the controller's main thread.
 */
export const DEFAULT_LEASE_MS = 15_000;

export class ControllerLease {
  private expiry: number | null = null;

  constructor(readonly leaseMs: number) {}

  /** Call right after a welcome or lease message was handed to the socket. */
  granted(now: number = Date.now()): void {
    this.expiry = Math.max(this.expiry ?? 0, now + this.leaseMs); // L1
  }

  /** ms since the Unix epoch, or null before the first grant. */
  get expiresAt(): number | null {
    return this.expiry;
  }

  /** L2. */
  expired(now: number = Date.now()): boolean {
    return this.expiry !== null && now >= this.expiry;
  }
}

/** The heartbeat interval the controller asks for: a third of the lease, so two heartbeats may be lost. */
export function heartbeatFor(leaseMs: number): number {
  return Math.max(1, Math.floor(leaseMs / 3));
}
