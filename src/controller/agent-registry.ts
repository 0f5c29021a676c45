/**
 * AgentRegistry: what the controller knows about each enrolled agent beyond its stored record: the live
 * session (if any), when it was last heard from, its lease, the epoch it acknowledged per disk, and which disks
 * it holds blocked at the controller's request.
 *
 * Owns: the one-session-per-agent rule and the persistence of lastSeen / applied into the agent's stored
 * record (on disconnect and on close, not per message: an fsync per acknowledgement would cap pushes).
 * Knows nothing about sockets or tables.
 *
 * Invariants:
 *   R1. At most one session per agent name: a new authenticated session replaces (and closes) the old one.
 *   R2. A state outlives its sessions: after a disconnect, applied epochs and the lease's expiry stay visible
 *       (epoch.show), and the agent counts as gone only once that lease has expired (leases.ts L2).
 *   R3. persist() never loses a credential: it rewrites lastSeen / applied of the record read in the same
 *       transaction, and skips agents removed or re-enrolled meanwhile.
 *
 * Thread: the controller's main thread.
 * Errors leaving: VDM_STORE_* from persist().
 */
import type { VdmapError } from '../errors/error.js';
import type { AgentRecord, ControllerStore } from './store/store.js';

/** The parts of a session the registry uses (agent-session.ts implements it). */
export interface RegisteredSession {
  readonly agent: string;
  readonly sessionId: string;
  leaseExpiresAt(): number | null;
  close(reason?: VdmapError): Promise<void>;
}

export interface AgentState {
  name: string;
  session: RegisteredSession | undefined;
  lastSeen: number | null;
  /** Expiry of the last lease granted, in any session. */
  leaseExpiresAt: number | null;
  applied: Map<string, number>;
  /** Disks blocked by a controller `drain` not yet resumed. */
  blocking: Set<string>;
  /** lastSeen / applied changed since the last persist(). */
  dirty: boolean;
}

export class AgentRegistry {
  private readonly states = new Map<string, AgentState>();

  /**
   * Seeds the states from the stored records (on controller start). Leases are not stored: any agent may hold
   * one granted just before a crash, so each counts as leased until `leasedUntil` (start + leaseMs) (R2).
   */
  load(records: readonly AgentRecord[], leasedUntil: number): void {
    for (const record of records) {
      const state = this.state(record.name);
      state.lastSeen = record.lastSeen;
      state.leaseExpiresAt = leasedUntil;
      for (const { disk, epoch } of record.applied) state.applied.set(disk, epoch);
    }
  }

  state(name: string): AgentState {
    let state = this.states.get(name);
    if (state === undefined) {
      state = { name, session: undefined, lastSeen: null, leaseExpiresAt: null, applied: new Map(), blocking: new Set(), dirty: false };
      this.states.set(name, state);
    }
    return state;
  }

  has(name: string): boolean {
    return this.states.has(name);
  }

  sessionOf(name: string): RegisteredSession | undefined {
    return this.states.get(name)?.session;
  }

  sessions(): RegisteredSession[] {
    return [...this.states.values()].flatMap((state) => (state.session === undefined ? [] : [state.session]));
  }

  connectedCount(): number {
    return this.sessions().length;
  }

  /** R1: makes `session` the agent's session; returns the one it replaces, for the caller to close. */
  adopt(session: RegisteredSession): RegisteredSession | undefined {
    const state = this.state(session.agent);
    const previous = state.session;
    state.session = session;
    state.lastSeen = Date.now();
    state.dirty = true;
    return previous;
  }

  /** The session ended; the state stays (R2). False when a newer session had already replaced it. */
  release(session: RegisteredSession): boolean {
    const state = this.states.get(session.agent);
    if (state === undefined || state.session !== session) return false;
    state.session = undefined;
    state.leaseExpiresAt = session.leaseExpiresAt() ?? state.leaseExpiresAt;
    state.blocking.clear();
    return true;
  }

  seen(name: string): void {
    const state = this.state(name);
    state.lastSeen = Date.now();
    state.dirty = true;
  }

  applied(name: string, disk: string, epoch: number): void {
    const state = this.state(name);
    state.applied.set(disk, epoch);
    state.dirty = true;
  }

  /** Forgets a disk everywhere (disk removed or detached from this agent). */
  forgetDisk(disk: string, agent?: string): void {
    for (const state of this.states.values()) {
      if (agent !== undefined && state.name !== agent) continue;
      if (state.applied.delete(disk)) state.dirty = true;
      state.blocking.delete(disk);
    }
  }

  forgetAgent(name: string): void {
    this.states.delete(name);
  }

  /** R3: writes lastSeen / applied of every dirty state into its stored record. */
  async persist(store: ControllerStore): Promise<void> {
    for (const state of this.states.values()) {
      if (!state.dirty) continue;
      state.dirty = false;
      const applied = [...state.applied].map(([disk, epoch]) => ({ disk, epoch }));
      await store.transaction(async (tx) => {
        const record = await tx.getAgent(state.name);
        if (record === undefined) return;
        await tx.putAgent({ ...record, lastSeen: state.lastSeen, applied });
      });
    }
  }
}
