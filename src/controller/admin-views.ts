/**
 * The result records of admin-api.ts built from store records, cached tables and the agent registry.
 *
 * Owns: how a record is shown (what "allocated" and "lag" mean). Knows nothing about requests.
 *
 * Thread: the controller's main thread.
 */
import { NoDevice, stateNames, type TableDocument } from '../table/document.js';
import type {
  AgentView, DeviceView, DiskView, EpochView, TableEntryView,
} from './admin-api.js';
import type { AgentRegistry } from './agent-registry.js';
import type { AgentSession } from './agent-session.js';
import type { AgentRecord, AttachmentRecord, DeviceRecord, DiskRecord } from './store/store.js';

/** Extents with a device mapping (not ZERO / INVALID without a device). */
export function allocatedExtents(doc: TableDocument | undefined): number {
  if (doc === undefined) return 0;
  let count = 0;
  for (let extent = 0; extent < doc.extentCount; extent++) if (doc.device[extent] !== NoDevice) count++;
  return count;
}

/** Bytes mapped on each device by the given latest tables. */
export function allocatedBytes(docs: readonly TableDocument[]): Map<string, number> {
  const bytes = new Map<string, number>();
  for (const doc of docs) {
    const perSlot = new Array<number>(doc.devices.length).fill(0);
    for (let extent = 0; extent < doc.extentCount; extent++) {
      const slot = doc.device[extent];
      if (slot !== NoDevice && slot < perSlot.length) perSlot[slot]++;
    }
    doc.devices.forEach((id, slot) => bytes.set(id, (bytes.get(id) ?? 0) + perSlot[slot] * doc.extentSize));
  }
  return bytes;
}

export function deviceView(record: DeviceRecord, allocated: number): DeviceView {
  return { id: record.id, size: record.size, logicalBlockSize: record.logicalBlockSize, paths: record.paths.map((path) => ({ ...path })), allocated };
}

export function diskView(record: DiskRecord, doc: TableDocument | undefined, attachments: readonly AttachmentRecord[]): DiskView {
  return {
    name: record.name, size: record.size, extentSize: record.extentSize, epoch: doc?.epoch ?? 0,
    allocatedExtents: allocatedExtents(doc), extentCount: doc?.extentCount ?? Math.ceil(record.size / record.extentSize),
    agents: attachments.map((attachment) => attachment.agent),
  };
}

export function entryView(doc: TableDocument, extent: number): TableEntryView {
  const slot = doc.device[extent];
  return {
    device: slot === NoDevice ? null : doc.devices[slot] ?? `#${slot}`,
    physicalExtent: doc.physicalExtent[extent],
    state: stateNames(doc.state[extent]),
  };
}

export function epochView(disk: string, epoch: number, attachments: readonly AttachmentRecord[], agents: AgentRegistry): EpochView {
  const shared = attachments.length > 1;
  const now = Date.now();
  return {
    disk, epoch,
    agents: attachments.map(({ agent }) => {
      const state = agents.state(agent);
      const session = state.session as AgentSession | undefined;
      const connected = session?.isOpen ?? false;
      const appliedEpoch = state.applied.get(disk) ?? null;
      const leaseExpiresAt = session?.leaseExpiresAt() ?? state.leaseExpiresAt;
      const fenced = !connected && shared && leaseExpiresAt !== null && leaseExpiresAt <= now;
      return {
        agent, connected, appliedEpoch, lag: appliedEpoch === null ? null : epoch - appliedEpoch,
        blocking: state.blocking.has(disk) || fenced, lastSeen: state.lastSeen, leaseExpiresAt,
      };
    }),
  };
}

export function agentView(record: AgentRecord, agents: AgentRegistry): AgentView {
  const state = agents.state(record.name);
  const session = state.session as AgentSession | undefined;
  return {
    name: record.name, enrolledAt: record.enrolledAt, connected: session?.isOpen ?? false,
    lastSeen: state.lastSeen ?? record.lastSeen,
    applied: [...state.applied].map(([disk, epoch]) => ({ disk, epoch })),
  };
}
