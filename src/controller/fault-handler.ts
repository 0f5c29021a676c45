/**
 * FaultHandler: what the controller does when an agent reports an I/O it could not serve, or a table it could
 * not apply.
 *
 *   kind              the agent's epoch is older than the latest      it is the latest
 *   unallocated       extent allocated since: send what it missed     allocate a free extent, commit, push (thin)
 *   invalid, nowrite  send the full table                             log: the table itself says so (operator)
 *   table-unreadable  send the full table (its copy may be anything but what we sent)
 *   device-error      log only (the device is the operator's)
 *
 * Every fault is logged with its code (the agent's error record) and counted by kind and code.
 *
 * Owns: the allocation batches: faults on one disk that arrive while its allocation waits for the commit lock
 * join that commit, so a burst of writes over fresh extents costs a few commits, not one per extent. Knows
 * nothing about sockets; commits go through table-commit.ts, sends through table-sync.ts.
 *
 * Invariants:
 *   FH1. An extent is allocated only if the latest table, read in the commit's transaction, still has it
 *        unallocated (a repeated or concurrent fault for it allocates nothing more).
 *   FH2. Allocated extents come from the devices the disk's table lists, first fit, never from an extent any
 *        disk maps (allocation.ts SM1 under table-commit.ts TC3).
 *   FH3. Full-table resends to one agent for one disk are at most one per RESEND_INTERVAL_MS.
 *
 * Thread: the controller's main thread.
 * Errors leaving: none (failures are logged with their code).
 */
import type { Logger } from 'pino';
import { toErrorRecord } from '../errors/error.js';
import { ExtentState, type TableDocument } from '../table/document.js';
import type { FaultMessage } from '../wire/messages.js';
import { isUnallocated } from './allocation.js';
import type { AgentSession } from './agent-session.js';
import type { ControllerMetrics } from './metrics.js';
import { noSpace, type TableCommitter } from './table-commit.js';
import type { TableDistributor } from './table-sync.js';

const RESEND_INTERVAL_MS = 500;

export interface FaultHandlerOptions {
  tables: TableDistributor;
  committer: TableCommitter;
  metrics: ControllerMetrics;
  logger: Logger;
}

export class FaultHandler {
  /** Extents waiting for the next allocation commit, per disk. */
  private readonly pending = new Map<string, Set<number>>();
  private readonly waiting = new Map<string, Set<AgentSession>>();
  private readonly lastResend = new Map<string, number>();

  constructor(private readonly options: FaultHandlerOptions) {}

  handle(session: AgentSession, fault: FaultMessage): void {
    const code = fault.error.code;
    this.options.metrics.fault(fault.kind, code);
    const level = fault.kind === 'device-error' || fault.kind === 'table-unreadable' ? 'error' : 'warn';
    session.logger[level]({
      code, disk: fault.disk, kind: fault.kind, extent: fault.extent, epoch: fault.epoch, operation: fault.operation,
    }, `fault: ${fault.error.message}`);
    void this.respond(session, fault).catch((error: unknown) => {
      const record = toErrorRecord(error);
      session.logger.error({ code: record.code, disk: fault.disk, kind: fault.kind, extent: fault.extent }, `fault not resolved: ${record.message}`);
    });
  }

  private async respond(session: AgentSession, fault: FaultMessage): Promise<void> {
    const latest = await this.options.tables.latest(fault.disk);
    if (latest === undefined) return;
    const behind = fault.epoch < latest.epoch;
    switch (fault.kind) {
      case 'unallocated':
        if (fault.extent === null) return;
        if (behind && !isUnallocated(latest, fault.extent)) await this.resend(session, fault.disk, false);
        else this.allocate(session, fault.disk, fault.extent);
        return;
      case 'invalid':
      case 'nowrite':
        if (behind) await this.resend(session, fault.disk, true);
        else this.logStanding(session, fault, latest);
        return;
      case 'table-unreadable':
        await this.resend(session, fault.disk, true);
        return;
      default:
        return;
    }
  }

  /** The latest table itself holds the request: only the operator (a push) can release it. */
  private logStanding(session: AgentSession, fault: FaultMessage, latest: TableDocument): void {
    const extent = fault.extent ?? -1;
    const state = extent >= 0 && extent < latest.extentCount ? latest.state[extent] : ExtentState.Invalid;
    session.logger.warn({ code: fault.error.code, disk: fault.disk, extent, epoch: latest.epoch, state },
      `extent ${extent} of '${fault.disk}' is ${fault.kind.toUpperCase()} in the latest table (epoch ${latest.epoch}): I/O is held until a push changes it`);
  }

  /** FH3. */
  private async resend(session: AgentSession, disk: string, full: boolean): Promise<void> {
    const key = `${session.sessionId}/${disk}`;
    const now = performance.now();
    if (full && now - (this.lastResend.get(key) ?? -Infinity) < RESEND_INTERVAL_MS) return;
    if (full) this.lastResend.set(key, now);
    session.logger.info({ disk, full }, 'the agent is behind: sending the table again');
    await this.options.tables.sync(session, disk, full);
  }

  /** Joins the disk's next allocation commit, starting one if none is waiting. */
  private allocate(session: AgentSession, disk: string, extent: number): void {
    const pending = this.pending.get(disk);
    this.waiting.get(disk)?.add(session);
    if (pending !== undefined) {
      pending.add(extent);
      return;
    }
    this.pending.set(disk, new Set([extent]));
    this.waiting.set(disk, new Set([session]));
    void this.commitAllocations(disk).catch((error: unknown) => {
      const record = toErrorRecord(error);
      this.options.logger.error({ disk, code: record.code }, `thin allocation failed: ${record.message}`);
    });
  }

  /** FH1, FH2: one commit for every extent pending when the commit's turn comes. */
  private async commitAllocations(disk: string): Promise<void> {
    let extents: number[] | undefined;
    let sessions: Set<AgentSession> = new Set();
    const take = (): number[] => {
      if (extents === undefined) {
        extents = [...(this.pending.get(disk) ?? [])];
        sessions = this.waiting.get(disk) ?? new Set();
        this.pending.delete(disk);
        this.waiting.delete(disk);
      }
      return extents;
    };
    try {
      const committed = await this.options.committer.commit(disk, {
        source: 'allocation',
        build: async ({ current, otherDisksSpace }) => {
          const wanted = take();
          if (current === undefined) return undefined;
          const needed = wanted.filter((extent) => isUnallocated(current, extent));
          if (needed.length === 0) return undefined;
          const space = await otherDisksSpace(current.extentSize);
          space.markTable(current);
          const next: TableDocument = {
            ...current, devices: [...current.devices], device: current.device.slice(),
            physicalExtent: current.physicalExtent.slice(), state: current.state.slice(),
          };
          for (const extent of needed) {
            const place = space.take(current.devices);
            if (place === undefined) throw noSpace(disk, needed.length, current.devices);
            next.device[extent] = current.devices.indexOf(place.device);
            next.physicalExtent[extent] = place.physicalExtent;
            next.state[extent] = current.state[extent] & ~ExtentState.Zero;
          }
          this.options.logger.info({ disk, extents: needed.length }, 'allocating thin extents');
          return next;
        },
      });
      if (committed === undefined) {
        for (const session of sessions) await this.options.tables.sync(session, disk, false);
      }
    } finally {
      take(); // a build that never ran must not strand the batch
    }
  }
}
