/**
 * The shared table's byte layout (src/table/layout.ts): formatting, entry encoding, device slots, epochs.
 * Oracle: values written through the writer-side functions read back unchanged through the reader-side ones,
 * and the two copies never alias.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { NoDevice, ExtentState } from '../../src/table/document.js';
import {
  createTableBuffer, copyEpoch, deviceFd, entryDevice, entryPhysicalExtent, entryState, entryWord, Header,
  MaxDeviceSlots, tableBytes, viewsOf, writeCopyGeometry, writeDeviceFds, writeEntry, copyExtentCount,
} from '../../src/table/layout.js';

describe('table layout', () => {
  it('formats a new table with generation 0, not blocking, and no device fds', () => {
    const views = createTableBuffer(1024, 4);
    assert.equal(Atomics.load(views.header, Header.Generation), 0);
    assert.equal(Atomics.load(views.header, Header.Blocking), 0);
    for (const copy of [0, 1] as const) {
      assert.equal(copyEpoch(views, copy), 0);
      for (let slot = 0; slot < MaxDeviceSlots; slot++) assert.equal(deviceFd(views, copy, slot), -1);
    }
  });

  it('round-trips an entry with every state bit, the largest device slot and physical extent', () => {
    const views = createTableBuffer(16, 1);
    const state = ExtentState.Invalid | ExtentState.NoWrite | ExtentState.Zero;
    writeEntry(views, 1, 15, MaxDeviceSlots - 1, 0xffff_ffff, state);
    const word = entryWord(views, 1, 15);
    assert.equal(entryState(views, word), state);
    assert.equal(entryDevice(views, word), MaxDeviceSlots - 1);
    assert.equal(entryPhysicalExtent(views, word), 0xffff_ffff);
  });

  it('encodes NoDevice distinctly from device slot 0', () => {
    const views = createTableBuffer(4, 1);
    writeEntry(views, 0, 0, NoDevice, 0, ExtentState.Invalid);
    writeEntry(views, 0, 1, 0, 0, ExtentState.Valid);
    assert.equal(entryDevice(views, entryWord(views, 0, 0)), NoDevice);
    assert.equal(entryDevice(views, entryWord(views, 0, 1)), 0);
  });

  it('keeps the two copies apart: writing one copy leaves the other unchanged', () => {
    const views = createTableBuffer(1000, 2);
    for (let i = 0; i < 1000; i++) writeEntry(views, 0, i, 1, i, 0);
    for (let i = 0; i < 1000; i++) writeEntry(views, 1, i, 2, 5000 + i, ExtentState.NoWrite);
    for (let i = 0; i < 1000; i++) {
      assert.equal(entryPhysicalExtent(views, entryWord(views, 0, i)), i);
      assert.equal(entryDevice(views, entryWord(views, 0, i)), 1);
    }
  });

  it('stores epochs beyond 32 bits exactly', () => {
    const views = createTableBuffer(8, 1);
    writeCopyGeometry(views, 1, 2 ** 40 + 12345, 20, 8);
    assert.equal(copyEpoch(views, 1), 2 ** 40 + 12345);
    assert.equal(copyExtentCount(views, 1), 8);
  });

  it('sets device fds per copy and clears slots past the list', () => {
    const views = createTableBuffer(8, 1);
    writeDeviceFds(views, 0, [7, 8, 9]);
    writeDeviceFds(views, 0, [11]);
    assert.equal(deviceFd(views, 0, 0), 11);
    assert.equal(deviceFd(views, 0, 1), -1);
    assert.equal(deviceFd(views, 1, 0), -1);
  });

  it('holds a 1M-entry table in one buffer of the documented size', () => {
    const views = createTableBuffer(1 << 20, 8);
    assert.equal(views.buffer.byteLength, tableBytes(1 << 20, 8));
    writeEntry(views, 1, (1 << 20) - 1, 3, 42, 0);
    assert.equal(entryPhysicalExtent(views, entryWord(views, 1, (1 << 20) - 1)), 42);
  });

  it('refuses a buffer that is not a table of this layout', () => {
    assert.throws(() => viewsOf(new SharedArrayBuffer(4096)), /not a vdmap mapping table/);
  });

  it('refuses capacities and reader counts outside the supported range', () => {
    assert.throws(() => createTableBuffer(0, 1), RangeError);
    assert.throws(() => createTableBuffer(1 << 25, 1), RangeError);
    assert.throws(() => createTableBuffer(8, 0), RangeError);
  });
});
