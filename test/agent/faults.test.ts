/**
 * FaultReporter (src/agent/faults.ts): what reaches the controller when I/O meets a hold or a device error.
 * Oracle: the faults the sink received, in order.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DeviceErrorsPerGeneration, type Fault, FaultReporter } from '../../src/agent/faults.js';

function reporter(): { faults: Fault[]; report: FaultReporter } {
  const faults: Fault[] = [];
  return { faults, report: new FaultReporter((fault) => faults.push(fault)) };
}

const hold = (extent: number): Fault => ({ disk: 'vd0', extent, operation: 'write', epoch: 3, kind: 'nowrite' });
const deviceError = (extent: number): Fault => ({ disk: 'vd0', extent, operation: 'read', epoch: 3, kind: 'device-error' });

describe('FaultReporter', () => {
  it('reports a hold on one extent once per generation, however many requests hit it', () => {
    const { faults, report } = reporter();
    for (let request = 0; request < 100; request++) report.report(7, hold(5));
    report.report(8, hold(5));
    assert.deepEqual(faults.map((fault) => fault.extent), [5, 5]);
  });

  it('reports holds on different extents separately', () => {
    const { faults, report } = reporter();
    report.report(7, hold(1));
    report.report(7, hold(2));
    assert.deepEqual(faults.map((fault) => fault.extent), [1, 2]);
  });

  it('reports at most DeviceErrorsPerGeneration device errors a generation, the first distinct ones', () => {
    const { faults, report } = reporter();
    for (let extent = 0; extent < 1000; extent++) report.report(7, deviceError(extent % 100));
    assert.deepEqual(faults.map((fault) => fault.extent), Array.from({ length: DeviceErrorsPerGeneration }, (_, i) => i));
  });

  it('reports device errors again once the generation passes', () => {
    const { faults, report } = reporter();
    for (let extent = 0; extent < 100; extent++) report.report(7, deviceError(extent));
    report.report(8, deviceError(99));
    assert.equal(faults.length, DeviceErrorsPerGeneration + 1);
    assert.equal(faults.at(-1)?.extent, 99);
  });

  it('keeps reporting holds after the device errors of a generation reached their limit', () => {
    const { faults, report } = reporter();
    for (let extent = 0; extent < 100; extent++) report.report(7, deviceError(extent));
    report.report(7, hold(42));
    assert.equal(faults.at(-1)?.kind, 'nowrite');
  });
});
