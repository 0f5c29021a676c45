/**
 * Proves the controller's side of the admin contract (src/controller/admin-api.ts) through the real admin
 * client against a real controller process with one real agent: every method answers with its documented
 * result shape, changes are visible to the next request, refusals carry their catalogue code (unknown method,
 * bad parameters, a device in use, a disk that exists or does not fit, missing versions), drain and resume are
 * answered by the agent only after its in-flight I/O drained, and a state command travels as a set-state.
 * Also checks the admin access rule of connections.ts (Unix socket and loopback TCP only).
 * Oracles: the responses, the agent's own agent.inspect, and the rule's function on sample addresses.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { AgentView, DeviceView, DiskView, DrainView, EpochView, TableDiffView } from '../../src/controller/admin-api.js';
import { adminAllowed } from '../../src/controller/connections.js';
import { VdmapError } from '../../src/errors/error.js';
import type { TableJson } from '../../src/table/codec.js';
import { cleanupDevices, sparseFile, tempDir } from '../support/devices.js';
import { admin, converged, enroll, startAgentProcess, startControllerProcess, stopAll } from './fixtures/daemons.js';

const MiB = 1024 * 1024;

async function refusal(address: string, method: string, params: object): Promise<VdmapError> {
  try {
    await admin(address, method, params);
  } catch (error) {
    assert.ok(error instanceof VdmapError, String(error));
    return error;
  }
  return assert.fail(`${method} was accepted`);
}

describe('controller admin API', () => {
  let controller: Awaited<ReturnType<typeof startControllerProcess>>;
  let agent: Awaited<ReturnType<typeof startAgentProcess>>;
  let device: string;

  before(async () => {
    controller = await startControllerProcess({ dataDir: tempDir('vdmap-controller-') });
    device = sparseFile(16 * MiB);
  });

  after(async () => {
    await stopAll();
    cleanupDevices();
  });

  it('registers, lists and protects devices', async () => {
    const added = await admin<DeviceView>(controller.socket, 'device.add', { id: 'dev0', size: 16 * MiB, logicalBlockSize: 512, paths: [{ agent: 'host-a', path: device }] });
    assert.deepEqual(added, { id: 'dev0', size: 16 * MiB, logicalBlockSize: 512, paths: [{ agent: 'host-a', path: device }], allocated: 0 });
    await admin(controller.socket, 'device.add', { id: 'spare', size: 4 * MiB, logicalBlockSize: 4096, paths: [] });
    assert.deepEqual((await admin<DeviceView[]>(controller.tcp, 'device.list')).map((view) => view.id), ['dev0', 'spare']);
    assert.deepEqual(await admin(controller.socket, 'device.remove', { id: 'spare' }), { removed: true });
    assert.deepEqual(await admin(controller.socket, 'device.remove', { id: 'spare' }), { removed: false });
  });

  it('refuses to register an agent\'s device path twice, or an id twice, and changes nothing', async () => {
    const before = await admin<DeviceView[]>(controller.socket, 'device.list');
    const taken = await refusal(controller.socket, 'device.add', { id: 'dev0b', size: 16 * MiB, logicalBlockSize: 512, paths: [{ agent: 'host-a', path: device }] });
    assert.equal(taken.code, 'VDM_ADMIN_DEVICE_PATH_TAKEN');
    assert.equal(taken.details?.registeredAs, 'dev0');
    const exists = await refusal(controller.socket, 'device.add', { id: 'dev0', size: 8 * MiB, logicalBlockSize: 512, paths: [{ agent: 'host-a', path: '/elsewhere.img' }] });
    assert.equal(exists.code, 'VDM_ADMIN_DEVICE_EXISTS');
    assert.deepEqual(await admin<DeviceView[]>(controller.socket, 'device.list'), before);
  });

  it('creates, lists and refuses disks', async () => {
    const disk = await admin<DiskView>(controller.socket, 'disk.create', { name: 'vol', size: 6 * MiB, extentSize: MiB });
    assert.deepEqual(disk, { name: 'vol', size: 6 * MiB, extentSize: MiB, epoch: 1, allocatedExtents: 6, extentCount: 6, agents: [] });
    assert.equal((await refusal(controller.socket, 'disk.create', { name: 'vol', size: MiB })).code, 'VDM_ADMIN_EXISTS');
    assert.equal((await refusal(controller.socket, 'disk.create', { name: 'huge', size: 64 * MiB })).code, 'VDM_DISK_NO_SPACE');
    const thin = await admin<DiskView>(controller.socket, 'disk.create', { name: 'thin', size: 64 * MiB, thin: true });
    assert.equal(thin.allocatedExtents, 0);
    assert.deepEqual((await admin<DiskView[]>(controller.socket, 'disk.list')).map((view) => view.name), ['thin', 'vol']);
    assert.equal((await admin<DeviceView[]>(controller.socket, 'device.list'))[0].allocated, 6 * MiB);
    assert.equal((await refusal(controller.socket, 'device.remove', { id: 'dev0' })).code, 'VDM_STORE_IN_USE');
    assert.deepEqual(await admin(controller.socket, 'disk.remove', { name: 'thin' }), { removed: true });
  });

  it('refuses a disk whose extent size is not a power of two >= 4096 with VDM_ADMIN_INVALID_PARAMS saying so, and creates nothing', async () => {
    for (const extentSize of [5 * 1024, 2048, 3 * MiB]) {
      const error = await refusal(controller.socket, 'disk.create', { name: 'odd', size: 64 * MiB, extentSize, thin: true });
      assert.equal(error.code, 'VDM_ADMIN_INVALID_PARAMS', String(extentSize));
      assert.equal(error.message, `parameter 'extentSize' is ${extentSize}: an extent size is a power of two >= 4096 (4K, 8K, ... 1M, ...)`);
    }
    assert.equal((await admin<DiskView[]>(controller.socket, 'disk.list')).some((view) => view.name === 'odd'), false);
  });

  it('enrolls and lists agents, and attaches a disk to one', async () => {
    const { name, credential } = await admin<{ name: string; credential: string }>(controller.socket, 'agent.enroll', { name: 'host-a' });
    assert.equal(name, 'host-a');
    assert.match(credential, /^vdmap-credential-v1:/);
    assert.deepEqual(await admin(controller.socket, 'disk.attach', { disk: 'vol', agent: 'host-a' }), { disk: 'vol', agent: 'host-a' });
    agent = await startAgentProcess({ controller: controller.socket, name: 'host-a', credential });
    await converged(controller.socket, 'vol', 1, ['host-a']);
    const agents = await admin<AgentView[]>(controller.socket, 'agent.list');
    assert.deepEqual(agents.map((view) => [view.name, view.connected, view.applied]), [['host-a', true, [{ disk: 'vol', epoch: 1 }]]]);
    assert.equal((await refusal(controller.socket, 'disk.attach', { disk: 'vol', agent: 'nobody' })).code, 'VDM_STORE_NOT_FOUND');
  });

  it('refuses to remove a disk attached to a connected agent with VDM_STORE_IN_USE naming it, and the agent keeps it', async () => {
    const error = await refusal(controller.socket, 'disk.remove', { name: 'vol' });
    assert.equal(error.code, 'VDM_STORE_IN_USE');
    assert.deepEqual(error.details?.agents, ['host-a']);
    assert.deepEqual((await admin<DiskView[]>(controller.socket, 'disk.list')).map((view) => [view.name, view.agents]), [['vol', ['host-a']]]);
    const inspect = await admin<{ disks: Array<{ disk: string }> }>(agent.adminSocket, 'agent.inspect');
    assert.deepEqual(inspect.disks.map((disk) => disk.disk), ['vol']);
  });

  it('shows, pushes and diffs tables', async () => {
    const table = await admin<TableJson>(controller.socket, 'table.show', { disk: 'vol' });
    assert.deepEqual(table.entries, [{ extent: 0, count: 6, device: 'dev0', physical: 0 }]);
    const pushed = await admin<{ epoch: number }>(controller.socket, 'table.push', {
      disk: 'vol', table: { ...table, entries: [{ extent: 0, count: 2, device: 'dev0', physical: 8 }, { extent: 2, count: 4, device: 'dev0', physical: 2 }] },
    });
    assert.deepEqual(pushed, { disk: 'vol', epoch: 2 });
    const diff = await admin<TableDiffView>(controller.socket, 'table.diff', { disk: 'vol', from: 1, to: 2 });
    assert.deepEqual(diff.changes, [
      { extent: 0, before: { device: 'dev0', physicalExtent: 0, state: [] }, after: { device: 'dev0', physicalExtent: 8, state: [] } },
      { extent: 1, before: { device: 'dev0', physicalExtent: 1, state: [] }, after: { device: 'dev0', physicalExtent: 9, state: [] } },
    ]);
    assert.equal((await admin<TableJson>(controller.socket, 'table.show', { disk: 'vol', epoch: 1 })).epoch, 1);
    assert.equal((await refusal(controller.socket, 'table.show', { disk: 'vol', epoch: 99 })).code, 'VDM_STORE_NOT_FOUND');
  });

  it('sends a state change as a set-state that the agent applies', async () => {
    const { epoch } = await admin<{ epoch: number }>(controller.socket, 'table.set-state', { disk: 'vol', firstExtent: 1, count: 3, set: ['NOWRITE'] });
    await converged(controller.socket, 'vol', epoch, ['host-a']);
    const table = await admin<TableJson>(controller.socket, 'table.show', { disk: 'vol' });
    assert.deepEqual(table.entries.map((entry) => [entry.extent, entry.state ?? []]), [[0, []], [1, ['NOWRITE']], [2, ['NOWRITE']], [4, []]]);
    await controller.waitForLog({ msg: 'table committed', source: 'set-state' });
    assert.equal((await refusal(controller.socket, 'table.set-state', { disk: 'vol', firstExtent: 5, count: 2, set: ['NOWRITE'] })).code, 'VDM_ADMIN_INVALID_PARAMS');
  });

  it('reports each agent\'s applied epoch, and drains and resumes through it', async () => {
    const view = await admin<EpochView>(controller.socket, 'epoch.show', { disk: 'vol' });
    assert.equal(view.agents[0].agent, 'host-a');
    assert.equal(view.agents[0].lag, 0);
    const drained = await admin<DrainView>(controller.socket, 'disk.drain', { disk: 'vol', timeoutMs: 2000 });
    assert.deepEqual(drained, { disk: 'vol', agents: [{ agent: 'host-a', error: null }] });
    const inspect = await admin<{ disks: Array<{ disk: string; blocking: boolean }> }>(agent.adminSocket, 'agent.inspect');
    assert.deepEqual(inspect.disks.map((disk) => [disk.disk, disk.blocking]), [['vol', true]]);
    assert.equal((await admin<EpochView>(controller.socket, 'epoch.show', { disk: 'vol' })).agents[0].blocking, true);
    assert.deepEqual(await admin(controller.socket, 'disk.resume', { disk: 'vol' }), { disk: 'vol', agents: [{ agent: 'host-a', error: null }] });
    const after = await admin<{ disks: Array<{ disk: string; blocking: boolean }> }>(agent.adminSocket, 'agent.inspect');
    assert.equal(after.disks[0].blocking, false);
  });

  it('answers unknown methods and bad parameters with their codes, and keeps the connection', async () => {
    assert.equal((await refusal(controller.socket, 'disk.explode', {})).code, 'VDM_ADMIN_UNKNOWN_METHOD');
    assert.equal((await refusal(controller.socket, 'disk.create', { name: 'x y', size: MiB })).code, 'VDM_ADMIN_INVALID_PARAMS');
    assert.equal((await refusal(controller.socket, 'disk.create', { name: 'x', size: MiB, colour: 'red' })).code, 'VDM_ADMIN_INVALID_PARAMS');
    assert.equal((await refusal(controller.socket, 'epoch.show', { disk: 'missing' })).code, 'VDM_STORE_NOT_FOUND');
  });

  it('serves admin requests on the Unix socket and to loopback TCP peers only', () => {
    assert.equal(adminAllowed('unix', undefined), true);
    for (const address of ['127.0.0.1', '127.8.9.10', '::1', '::ffff:127.0.0.1']) assert.equal(adminAllowed('tcp', address), true, address);
    for (const address of ['10.0.0.5', '192.168.1.2', '::ffff:10.1.2.3', 'fe80::1', undefined]) assert.equal(adminAllowed('tcp', address), false, String(address));
  });
});
