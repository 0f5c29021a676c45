/**
 * The admin API: every request the `vdmap` CLI (or a script) sends to the controller, or to an agent's admin
 * socket, as `request {id, method, params}` frames (src/wire/messages.ts), answered by `response {id, ok,
 * result | error}`. This file is the contract between src/cli (the caller) and src/controller / src/agent (the
 * handlers): method names, parameters and results. Method names are permanent, like error codes.
 *
 * Conventions:
 *   A1. Every failure is an ErrorRecord with a catalogue code (src/errors); the CLI prints `CODE: message`, the
 *       hint, and exits with the code's exit status.
 *   A2. A request that changes state is durable in the controller's store before its response is sent.
 *   A3. Results are plain data (numbers, strings, arrays, objects, Uint8Array); sizes are bytes, times are ms
 *       since the Unix epoch, epochs are integers.
 */
import type { TableJson } from '../table/codec.js';

/** Controller methods. */
export interface ControllerMethods {
  'device.add': { params: { id: string; size: number; logicalBlockSize: number; paths: Array<{ agent: string; path: string }> }; result: DeviceView };
  'device.list': { params: Record<string, never>; result: DeviceView[] };
  /** Refused with VDM_STORE_IN_USE while any kept table version maps into it. */
  'device.remove': { params: { id: string }; result: { removed: boolean } };

  /**
   * Creates a disk and its first table (epoch 1). `thin`: every extent ZERO (unallocated; the controller
   * allocates on the agent's 'unallocated' fault). Otherwise every extent is allocated now on `devices`
   * (default: all devices), first fit, and a disk that does not fit is refused with VDM_DISK_NO_SPACE.
   */
  'disk.create': { params: { name: string; size: number; extentSize?: number; thin?: boolean; devices?: string[] }; result: DiskView };
  'disk.list': { params: Record<string, never>; result: DiskView[] };
  'disk.remove': { params: { name: string }; result: { removed: boolean } };
  'disk.attach': { params: { disk: string; agent: string }; result: { disk: string; agent: string } };
  'disk.detach': { params: { disk: string; agent: string }; result: { detached: boolean } };

  /** The table at `epoch` (default: latest), in the JSON form of src/table/codec.ts. */
  'table.show': { params: { disk: string; epoch?: number }; result: TableJson };
  /**
   * Validates and commits `table` as the disk's next epoch and pushes it to every attached agent. Refused whole
   * (VDM_TABLE_INVALID with details.problems naming every bad entry) or with VDM_TABLE_EPOCH_STALE when
   * `expectedEpoch` is given and is not the latest.
   */
  'table.push': { params: { disk: string; table: TableJson; expectedEpoch?: number }; result: { disk: string; epoch: number } };
  /** The entries that differ between two kept epochs. */
  'table.diff': { params: { disk: string; from: number; to: number }; result: TableDiffView };

  /** The controller's epoch of a disk and each attached agent's applied epoch. */
  'epoch.show': { params: { disk: string }; result: EpochView };

  /** Issues (or re-issues, revoking the old one) an agent's credential. */
  'agent.enroll': { params: { name: string }; result: { name: string; credential: string } };
  'agent.list': { params: Record<string, never>; result: AgentView[] };

  // Added with the daemons (src/controller): state commands and drains, as the wire can carry them.
  /**
   * Sets and clears state bits (names as in the JSON form: INVALID, NOWRITE, ZERO) on extents
   * [firstExtent, firstExtent + count) as the next epoch; agents one epoch behind get a `set-state` message.
   */
  'table.set-state': {
    params: { disk: string; firstExtent: number; count: number; set?: string[]; clear?: string[]; expectedEpoch?: number };
    result: { disk: string; epoch: number };
  };
  /** Blocks new I/O to the disk on every attached agent and answers once each agent's in-flight I/O drained. */
  'disk.drain': { params: { disk: string; timeoutMs?: number }; result: DrainView };
  /** Lifts an earlier drain on every attached agent. */
  'disk.resume': { params: { disk: string }; result: DrainView };
}

/** Methods of an agent's admin socket (`<agent data dir>/agent.sock`). */
export interface AgentMethods {
  /** The live table header of every disk the agent holds (src/agent/agent-disk.ts TableHeaderReport). */
  'agent.inspect': { params: Record<string, never>; result: AgentInspectView };
}

export type ControllerMethod = keyof ControllerMethods;
export type AgentMethod = keyof AgentMethods;

/**
 * The methods that change nothing. Their requests are logged at debug, every other one at info: the daemon's
 * log is the operator's record of changes (create, rm, attach, push, ...), not of every `ls` and `epoch`.
 */
export const ReadOnlyMethods: ReadonlySet<string> = new Set<ControllerMethod | AgentMethod>([
  'device.list', 'disk.list', 'table.show', 'table.diff', 'epoch.show', 'agent.list', 'agent.inspect',
]);

export interface DeviceView {
  id: string;
  size: number;
  logicalBlockSize: number;
  paths: Array<{ agent: string; path: string }>;
  /** Bytes mapped by the latest tables of all disks. */
  allocated: number;
}

export interface DiskView {
  name: string;
  size: number;
  extentSize: number;
  epoch: number;
  /** Extents with a device mapping (not ZERO/INVALID). */
  allocatedExtents: number;
  extentCount: number;
  agents: string[];
}

export interface TableDiffView {
  disk: string;
  from: number;
  to: number;
  changes: Array<{ extent: number; before: TableEntryView; after: TableEntryView }>;
}

export interface TableEntryView {
  device: string | null;
  physicalExtent: number;
  state: string[];
}

export interface EpochView {
  disk: string;
  epoch: number;
  agents: Array<{
    agent: string;
    connected: boolean;
    appliedEpoch: number | null;
    /** epoch - appliedEpoch (null when the agent never applied one). */
    lag: number | null;
    /** The disk is blocked on that agent (a drain in progress, or fenced after a lost lease). */
    blocking: boolean;
    lastSeen: number | null;
    leaseExpiresAt: number | null;
  }>;
}

export interface DrainView {
  disk: string;
  /** One entry per attached agent; error null: that agent drained (or resumed). */
  agents: Array<{ agent: string; error: { code: string; message: string } | null }>;
}

export interface AgentView {
  name: string;
  enrolledAt: number;
  connected: boolean;
  lastSeen: number | null;
  applied: Array<{ disk: string; epoch: number }>;
}

export interface AgentInspectView {
  agent: string;
  connected: boolean;
  leaseExpiresAt: number | null;
  disks: Array<{
    disk: string;
    epoch: number;
    generation: number;
    activeCopy: number;
    blocking: boolean;
    /** In-flight requests per reader slot (slot 0: main thread, i: I/O worker i). */
    inflight: number[];
    drainTimeouts: number;
  }>;
  nbd: { tcp?: string; unix?: string; connections: number[] };
}
