/**
 * Faults: what an I/O worker tells the controller when the table stops an I/O.
 *
 * Owns: the Fault record and FaultReporter, which reports each (extent, kind, operation) once per table generation
 * however many requests hit it, so a thousand held requests on one extent make one message, not a thousand. A
 * failing device fails on every extent at once: at most DeviceErrorsPerGeneration device errors are reported a
 * generation (the first distinct ones), so a dead device under random I/O makes a few messages, not one per extent;
 * every request still fails with its own error.
 * Knows nothing about how a fault travels (a worker posts it to the agent, the agent sends it over the wire).
 * Thread: the I/O thread that owns the VirtualDisk.
 */
import type { ErrorRecord } from '../errors/error.js';

export type FaultKind =
  /** The entry is INVALID (or has no device): no usable mapping. */
  | 'invalid'
  /** A write hit a NOWRITE entry. */
  | 'nowrite'
  /** A write hit an unallocated (ZERO) entry of a thin disk: the controller should allocate it. */
  | 'unallocated'
  /** The device returned an error (extent -1: a flush, which is about devices, not extents). */
  | 'device-error';

export interface Fault {
  disk: string;
  /** The virtual extent, or -1 for none (a flush's device error). */
  extent: number;
  operation: 'read' | 'write';
  epoch: number;
  kind: FaultKind;
  error?: ErrorRecord;
}

export type FaultSink = (fault: Fault) => void;

/** Distinct device errors reported a generation (see the file comment). */
export const DeviceErrorsPerGeneration = 8;

export class FaultReporter {
  private generation = -1;
  private readonly reported = new Set<string>();
  private deviceErrors = 0;

  constructor(private readonly sink: FaultSink) {}

  report(generation: number, fault: Fault): void {
    if (generation !== this.generation) {
      this.generation = generation;
      this.reported.clear();
      this.deviceErrors = 0;
    }
    const key = `${fault.extent}:${fault.kind}:${fault.operation}`;
    if (this.reported.has(key)) return;
    if (fault.kind === 'device-error' && this.deviceErrors++ >= DeviceErrorsPerGeneration) return;
    this.reported.add(key);
    this.sink(fault);
  }
}
