/**
 * The controller's admin methods (admin-api.ts ControllerMethods), one small function each: check the
 * parameters, do the change through the store or the committer, return the view.
 *
 * Owns: what each method does. Knows nothing about frames or connections (admin-session.ts), and nothing
 * about how tables travel (table-sync.ts) beyond asking for it.
 *
 * Invariants:
 *   AH1. A method that changes state resolves only after the change is durable in the store (admin-api.ts A2);
 *        agents are told afterwards.
 *   AH2. Every table change goes through TableCommitter (stage -> validate + commit -> push): a refused one
 *        changes nothing, and the error names every bad entry (VDM_TABLE_INVALID details.problems).
 *   AH3. Changes that take or free device space (disk create and remove, device add and remove) hold the
 *        committer's global lock, so allocation never races them.
 *   AH4. `device add` never changes a registered device and never registers one path twice (see refuseRegistered).
 *
 * Thread: the controller's main thread.
 * Errors leaving: VDM_ADMIN_*, VDM_STORE_*, VDM_TABLE_*, VDM_DISK_NO_SPACE.
 */
import { posix } from 'node:path';
import type { Logger } from 'pino';
import { VdmapError } from '../errors/error.js';
import { diffDocuments, parseTableValue, tableToJson } from '../table/codec.js';
import { ExtentState, NoDevice, stateFromNames, type TableDocument } from '../table/document.js';
import {
  type DeviceGeometry, type TableProblem, tableProblemsError, validateDocument,
} from '../table/validate.js';
import { encodeCredential, issueCredential } from '../wire/auth.js';
import type { ControllerMethod, ControllerMethods, DrainView } from './admin-api.js';
import {
  invalid, listParam, nameParam, objectParam, onlyKeys, optionalBoolean, optionalExtentSize, optionalNames, optionalUint, type Params,
  textParam, uintParam,
} from './admin-params.js';
import { agentView, allocatedBytes, deviceView, diskView, entryView, epochView } from './admin-views.js';
import type { AgentRegistry } from './agent-registry.js';
import type { AgentSession } from './agent-session.js';
import type { ControllerMetrics } from './metrics.js';
import type { ControllerStore, DevicePath, StoreTransaction } from './store/store.js';
import { noSpace, type TableCommitter } from './table-commit.js';
import type { TableDistributor } from './table-sync.js';

export interface AdminContext {
  store: ControllerStore;
  agents: AgentRegistry;
  tables: TableDistributor;
  committer: TableCommitter;
  metrics: ControllerMetrics;
  logger: Logger;
  drainTimeoutMs: number;
}

export type AdminHandler = (context: AdminContext, params: Params) => Promise<unknown>;

export const DEFAULT_EXTENT_SIZE = 1024 * 1024;

// ---- devices ----

async function deviceAdd(context: AdminContext, params: Params): Promise<ControllerMethods['device.add']['result']> {
  onlyKeys(params, ['id', 'size', 'logicalBlockSize', 'paths']);
  const paths: DevicePath[] = listParam(params, 'paths').map((item, index) => {
    if (typeof item !== 'object' || item === null) throw invalid(`paths[${index}]`, 'is not an {agent, path} object');
    const entry = item as Params;
    return { agent: nameParam(entry, 'agent'), path: textParam(entry, 'path') };
  });
  const record = {
    id: nameParam(params, 'id'), size: uintParam(params, 'size', 1),
    logicalBlockSize: uintParam(params, 'logicalBlockSize', 512), paths,
  };
  await context.committer.exclusive(() => context.store.transaction(async (tx) => {
    await refuseRegistered(tx, record.id, paths);
    await tx.putDevice(record);
  }));
  context.logger.info({ device: record.id, size: record.size, paths: paths.length }, 'device registered');
  return deviceView(record, 0);
}

/**
 * AH4. `device add` registers a new device only: an existing id is never re-pointed (VDM_ADMIN_DEVICE_EXISTS), and
 * a path an agent already sees as another device is refused (VDM_ADMIN_DEVICE_PATH_TAKEN), or disks on the two
 * ids would overlap on the same blocks. Checked in the transaction that writes the record, so two concurrent adds
 * cannot both pass. Paths compare after POSIX normalization; the CLI sends the real path (symlinks resolved) and
 * checks file identity on its host, which the controller, possibly elsewhere, cannot.
 */
async function refuseRegistered(tx: StoreTransaction, id: string, paths: DevicePath[]): Promise<void> {
  const existing = await tx.getDevice(id);
  if (existing !== undefined) {
    throw new VdmapError('VDM_ADMIN_DEVICE_EXISTS', `device '${id}' is already registered (${existing.paths.map((p) => `${p.agent}:${p.path}`).join(' ') || 'no paths'}); nothing changed`,
      { device: id, paths: existing.paths });
  }
  for (const other of await tx.listDevices()) {
    for (const taken of other.paths) {
      const clash = paths.find((p) => p.agent === taken.agent && posix.normalize(p.path) === posix.normalize(taken.path));
      if (clash !== undefined) {
        throw new VdmapError('VDM_ADMIN_DEVICE_PATH_TAKEN', `agent '${clash.agent}' already sees ${clash.path} as device '${other.id}'; nothing changed`,
          { device: id, agent: clash.agent, path: clash.path, registeredAs: other.id });
      }
    }
  }
}

async function deviceList(context: AdminContext, params: Params): Promise<ControllerMethods['device.list']['result']> {
  onlyKeys(params, []);
  const bytes = allocatedBytes(await latestTables(context));
  return (await context.store.listDevices()).map((record) => deviceView(record, bytes.get(record.id) ?? 0));
}

async function deviceRemove(context: AdminContext, params: Params): Promise<ControllerMethods['device.remove']['result']> {
  onlyKeys(params, ['id']);
  const id = nameParam(params, 'id');
  const removed = await context.committer.exclusive(() => context.store.removeDevice(id));
  if (removed) context.logger.info({ device: id }, 'device removed');
  return { removed };
}

// ---- disks ----

async function diskCreate(context: AdminContext, params: Params): Promise<ControllerMethods['disk.create']['result']> {
  onlyKeys(params, ['name', 'size', 'extentSize', 'thin', 'devices']);
  const name = nameParam(params, 'name');
  const size = uintParam(params, 'size', 1);
  const extentSize = optionalExtentSize(params, 'extentSize') ?? DEFAULT_EXTENT_SIZE;
  const thin = optionalBoolean(params, 'thin') ?? false;
  const requested = optionalNames(params, 'devices');
  const doc = await context.committer.commit(name, {
    source: 'create',
    build: async ({ tx, otherDisksSpace }) => {
      if ((await tx.getDisk(name)) !== undefined) throw new VdmapError('VDM_ADMIN_EXISTS', `disk '${name}' already exists`, { disk: name });
      const devices = requested ?? (await tx.listDevices()).map((device) => device.id);
      for (const id of devices) if ((await tx.getDevice(id)) === undefined) throw notFound('device', id);
      await tx.putDisk({ name, size, extentSize });
      const table = thinTable(name, size, extentSize, devices);
      if (!thin) {
        const space = await otherDisksSpace(extentSize);
        for (let extent = 0; extent < table.extentCount; extent++) {
          const place = space.take(devices);
          if (place === undefined) throw noSpace(name, table.extentCount, devices);
          [table.device[extent], table.physicalExtent[extent], table.state[extent]] = [devices.indexOf(place.device), place.physicalExtent, ExtentState.Valid];
        }
      }
      return table;
    },
  });
  context.logger.info({ disk: name, size, extentSize, thin }, 'disk created');
  const record = await requireDisk(context.store, name);
  return diskView(record, doc, []);
}

/** Every extent ZERO and unmapped; `devices` are the ones thin allocation may use. */
function thinTable(disk: string, size: number, extentSize: number, devices: string[]): TableDocument {
  const extentCount = Math.ceil(size / extentSize);
  return {
    disk, epoch: 0, extentSize, extentCount, devices: [...devices],
    device: new Int32Array(extentCount).fill(NoDevice), physicalExtent: new Uint32Array(extentCount),
    state: new Uint8Array(extentCount).fill(ExtentState.Zero),
  };
}

async function diskList(context: AdminContext, params: Params): Promise<ControllerMethods['disk.list']['result']> {
  onlyKeys(params, []);
  const views = [];
  for (const record of await context.store.listDisks()) {
    views.push(diskView(record, await context.tables.latest(record.name), await context.store.listAttachments({ disk: record.name })));
  }
  return views;
}

async function diskRemove(context: AdminContext, params: Params): Promise<ControllerMethods['disk.remove']['result']> {
  onlyKeys(params, ['name']);
  const name = nameParam(params, 'name');
  // The store refuses an attached disk (store.ts ST5) in the same transaction as the removal: no agent is told
  // anything, and an attach that races this cannot leave an agent serving freed extents.
  const removed = await context.committer.exclusive(() => context.store.removeDisk(name));
  if (removed) {
    context.tables.forget(name);
    context.agents.forgetDisk(name);
    context.metrics.diskRemoved(name);
    context.logger.info({ disk: name }, 'disk removed');
  }
  return { removed };
}

async function diskAttach(context: AdminContext, params: Params): Promise<ControllerMethods['disk.attach']['result']> {
  onlyKeys(params, ['disk', 'agent']);
  const disk = nameParam(params, 'disk');
  const agent = nameParam(params, 'agent');
  await context.store.attach(disk, agent);
  context.logger.info({ disk, agent }, 'disk attached');
  await context.tables.refresh(disk);
  return { disk, agent };
}

async function diskDetach(context: AdminContext, params: Params): Promise<ControllerMethods['disk.detach']['result']> {
  onlyKeys(params, ['disk', 'agent']);
  const disk = nameParam(params, 'disk');
  const agent = nameParam(params, 'agent');
  const detached = await context.store.detach(disk, agent);
  if (detached) {
    context.logger.info({ disk, agent }, 'disk detached');
    await context.tables.detached(disk, agent);
    context.agents.forgetDisk(disk, agent);
    await context.tables.refresh(disk);
  }
  return { detached };
}

async function diskDrain(context: AdminContext, params: Params): Promise<DrainView> {
  onlyKeys(params, ['disk', 'timeoutMs']);
  const disk = nameParam(params, 'disk');
  const timeoutMs = optionalUint(params, 'timeoutMs', 1) ?? context.drainTimeoutMs;
  await requireDisk(context.store, disk);
  return eachAttachedAgent(context, disk, async (session) => {
    const error = await session.drain(disk, timeoutMs);
    if (error === null) context.agents.state(session.agent).blocking.add(disk);
    return error;
  });
}

async function diskResume(context: AdminContext, params: Params): Promise<DrainView> {
  onlyKeys(params, ['disk']);
  const disk = nameParam(params, 'disk');
  await requireDisk(context.store, disk);
  return eachAttachedAgent(context, disk, async (session) => {
    const error = await session.resume(disk);
    if (error === null) context.agents.state(session.agent).blocking.delete(disk);
    return error;
  });
}

async function eachAttachedAgent(context: AdminContext, disk: string,
  ask: (session: AgentSession) => Promise<{ code: string; message: string } | null>): Promise<DrainView> {
  const attachments = await context.store.listAttachments({ disk });
  const agents = await Promise.all(attachments.map(async ({ agent }) => {
    const session = context.agents.sessionOf(agent) as AgentSession | undefined;
    const error = session === undefined || !session.isOpen
      ? { code: 'VDM_AGENT_NOT_CONNECTED', message: `agent '${agent}' is not connected` }
      : await ask(session);
    return { agent, error: error === null ? null : { code: error.code, message: error.message } };
  }));
  return { disk, agents };
}

// ---- tables ----

async function tableShow(context: AdminContext, params: Params): Promise<ControllerMethods['table.show']['result']> {
  onlyKeys(params, ['disk', 'epoch']);
  const disk = nameParam(params, 'disk');
  const epoch = optionalUint(params, 'epoch', 1);
  await requireDisk(context.store, disk);
  if (epoch !== undefined) return tableToJson(await keptTable(context, disk, epoch));
  const doc = await context.tables.latest(disk);
  if (doc === undefined) throw notFound('table version', disk);
  return tableToJson(doc);
}

async function tablePush(context: AdminContext, params: Params): Promise<ControllerMethods['table.push']['result']> {
  onlyKeys(params, ['disk', 'table', 'expectedEpoch']);
  const disk = nameParam(params, 'disk');
  const expectedEpoch = optionalUint(params, 'expectedEpoch');
  const table = parseTableValue(objectParam(params, 'table')); // stage: every malformed entry named
  if (table.problems !== undefined) {
    await requireDisk(context.store, disk);
    const head = await context.store.getTableHead(disk);
    throw tableProblemsError(table.problems, { disk, stays: head?.epoch ?? 0 });
  }
  const parsed = table.doc;
  const doc = await context.committer.commit(disk, {
    source: 'admin', expectedEpoch,
    build: async ({ current, tx, otherDisksSpace }) => {
      const record = await tx.getDisk(disk);
      if (record === undefined) throw notFound('disk', disk);
      const problems: TableProblem[] = parsed.disk === disk ? [] : [{
        extent: null, code: 'VDM_TABLE_INVALID', message: `the table names disk '${parsed.disk}', not '${disk}'`,
      }];
      const geometry = await deviceGeometry(tx, parsed.devices);
      problems.push(...validateDocument(parsed, geometry, { diskSize: record.size }));
      if (parsed.extentSize === record.extentSize && parsed.devices.every((id) => geometry.has(id))) {
        problems.push(...(await otherDisksSpace(parsed.extentSize)).collisions(parsed));
      }
      if (problems.length > 0) throw tableProblemsError(problems.sort((a, b) => (a.extent ?? -1) - (b.extent ?? -1)), { disk, stays: current?.epoch ?? 0 });
      return { ...parsed, disk };
    },
  });
  return { disk, epoch: (doc as TableDocument).epoch };
}

async function tableSetState(context: AdminContext, params: Params): Promise<ControllerMethods['table.set-state']['result']> {
  onlyKeys(params, ['disk', 'firstExtent', 'count', 'set', 'clear', 'expectedEpoch']);
  const disk = nameParam(params, 'disk');
  const firstExtent = uintParam(params, 'firstExtent');
  const count = uintParam(params, 'count', 1);
  const set = stateParam(params, 'set');
  const clear = stateParam(params, 'clear');
  if ((set & clear) !== 0) throw invalid('clear', 'clears a state that set also sets');
  if (set === 0 && clear === 0) {
    throw new VdmapError('VDM_ADMIN_INVALID_PARAMS', 'nothing to change: set and clear are both empty (give a state to set or clear)', { field: 'set' });
  }
  const doc = await context.committer.commit(disk, {
    source: 'set-state', expectedEpoch: optionalUint(params, 'expectedEpoch'), setState: { firstExtent, count, set, clear },
    build: async ({ current }) => {
      if (current === undefined) throw notFound('table', disk);
      if (firstExtent + count > current.extentCount) throw pastLastExtent(disk, firstExtent, count, current.extentCount);
      const state = current.state.slice();
      for (let extent = firstExtent; extent < firstExtent + count; extent++) state[extent] = (state[extent] | set) & ~clear;
      return { ...current, devices: [...current.devices], device: current.device.slice(), physicalExtent: current.physicalExtent.slice(), state };
    },
  });
  return { disk, epoch: (doc as TableDocument).epoch };
}

/** A set-state range that ends past the disk, in the operator's terms: the range given and the disk's last extent. */
function pastLastExtent(disk: string, firstExtent: number, count: number, extentCount: number): VdmapError {
  const last = firstExtent + count - 1;
  const range = count === 1 ? `extent ${firstExtent} is` : `extents ${firstExtent}-${last} ${firstExtent < extentCount ? 'reach' : 'are'}`;
  return new VdmapError('VDM_ADMIN_INVALID_PARAMS', `${range} past the last extent of disk '${disk}', ${extentCount - 1} (it has ${extentCount} extents)`,
    { field: 'count', disk, firstExtent, count, extentCount });
}

function stateParam(params: Params, field: string): number {
  const names = params[field] ?? [];
  const bits = Array.isArray(names) && names.every((name) => typeof name === 'string') ? stateFromNames(names as string[]) : undefined;
  if (bits === undefined) throw invalid(field, 'is not a list of INVALID, NOWRITE, ZERO');
  return bits;
}

async function tableDiff(context: AdminContext, params: Params): Promise<ControllerMethods['table.diff']['result']> {
  onlyKeys(params, ['disk', 'from', 'to']);
  const disk = nameParam(params, 'disk');
  const from = uintParam(params, 'from', 1);
  const to = uintParam(params, 'to', 1);
  await requireDisk(context.store, disk);
  const [before, after] = [await keptTable(context, disk, from), await keptTable(context, disk, to)];
  const delta = diffDocuments(before, after);
  const changes = Array.from(delta.extent, (extent) => ({ extent, before: entryView(before, extent), after: entryView(after, extent) }));
  return { disk, from, to, changes };
}

async function epochShow(context: AdminContext, params: Params): Promise<ControllerMethods['epoch.show']['result']> {
  onlyKeys(params, ['disk']);
  const disk = nameParam(params, 'disk');
  await requireDisk(context.store, disk);
  const doc = await context.tables.latest(disk);
  return epochView(disk, doc?.epoch ?? 0, await context.store.listAttachments({ disk }), context.agents);
}

// ---- agents ----

async function agentEnroll(context: AdminContext, params: Params): Promise<ControllerMethods['agent.enroll']['result']> {
  onlyKeys(params, ['name']);
  const name = nameParam(params, 'name');
  const secret = issueCredential();
  await context.store.transaction(async (tx) => {
    const existing = await tx.getAgent(name);
    await tx.putAgent({ name, credential: secret, enrolledAt: Date.now(), lastSeen: existing?.lastSeen ?? null, applied: existing?.applied ?? [] });
  });
  const session = context.agents.sessionOf(name);
  if (session !== undefined) {
    await session.close(new VdmapError('VDM_AUTH_DENIED', `the credential of agent '${name}' was revoked by a new enrollment`));
  }
  context.logger.info({ agent: name, revoked: session !== undefined }, 'agent enrolled');
  return { name, credential: encodeCredential(secret) };
}

async function agentList(context: AdminContext, params: Params): Promise<ControllerMethods['agent.list']['result']> {
  onlyKeys(params, []);
  return (await context.store.listAgents()).map((record) => agentView(record, context.agents));
}

// ---- helpers ----

async function latestTables(context: AdminContext): Promise<TableDocument[]> {
  const docs: TableDocument[] = [];
  for (const disk of await context.store.listDisks()) {
    const doc = await context.tables.latest(disk.name);
    if (doc !== undefined) docs.push(doc);
  }
  return docs;
}

async function deviceGeometry(tx: StoreTransaction, ids: readonly string[]): Promise<Map<string, DeviceGeometry>> {
  const geometry = new Map<string, DeviceGeometry>();
  for (const id of ids) {
    const device = await tx.getDevice(id);
    if (device !== undefined) geometry.set(id, device);
  }
  return geometry;
}

async function requireDisk(store: ControllerStore, name: string) {
  const record = await store.getDisk(name);
  if (record === undefined) throw notFound('disk', name);
  return record;
}

/**
 * The table of `disk` at `epoch`; one the store no longer keeps (it keeps each disk's last versions, store.ts
 * ST3) or never had is VDM_STORE_NOT_FOUND saying which epochs the disk keeps.
 */
async function keptTable(context: AdminContext, disk: string, epoch: number): Promise<TableDocument> {
  const doc = await context.store.getTable(disk, epoch);
  if (doc !== undefined) return doc;
  const head = await context.store.getTableHead(disk);
  if (head === undefined) throw notFound('table version', `${disk}@${epoch}`);
  const kept = `it keeps epochs ${epochRanges(head.epochs)}`;
  const message = epoch > head.epoch ? `disk '${disk}' has no epoch ${epoch} yet: its latest is ${head.epoch}; ${kept}`
    : epoch < head.epochs[0] ? `epoch ${epoch} of disk '${disk}' is no longer kept: ${kept}`
      : `disk '${disk}' has no table at epoch ${epoch}: ${kept}`;
  throw new VdmapError('VDM_STORE_NOT_FOUND', message, { kind: 'table version', name: `${disk}@${epoch}`, kept: head.epochs });
}

/** Ascending epochs as runs: [2, 3, 4, 7] -> '2-4, 7'. */
function epochRanges(epochs: readonly number[]): string {
  const runs: string[] = [];
  for (let start = 0; start < epochs.length;) {
    let end = start;
    while (end + 1 < epochs.length && epochs[end + 1] === epochs[end] + 1) end++;
    runs.push(end === start ? `${epochs[start]}` : `${epochs[start]}-${epochs[end]}`);
    start = end + 1;
  }
  return runs.join(', ');
}

function notFound(kind: string, name: string): VdmapError {
  return new VdmapError('VDM_STORE_NOT_FOUND', `${kind} '${name}' does not exist`, { kind, name });
}

/** Every controller method (admin-api.ts), by name. */
export const controllerHandlers: { [M in ControllerMethod]: AdminHandler } = {
  'device.add': deviceAdd,
  'device.list': deviceList,
  'device.remove': deviceRemove,
  'disk.create': diskCreate,
  'disk.list': diskList,
  'disk.remove': diskRemove,
  'disk.attach': diskAttach,
  'disk.detach': diskDetach,
  'disk.drain': diskDrain,
  'disk.resume': diskResume,
  'table.show': tableShow,
  'table.push': tablePush,
  'table.set-state': tableSetState,
  'table.diff': tableDiff,
  'epoch.show': epochShow,
  'agent.enroll': agentEnroll,
  'agent.list': agentList,
};
