/**
 * Faults: what an I/O worker tells the controller when the table stops an I/O.
 *
 * Owns: the Fault record and FaultReporter, which reports each (extent, epoch, kind) once per table generation
 * however many requests hit it, so a thousand held requests on one extent make one message, not a thousand.
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
  /** The device returned an error. */
  | 'device-error';

export interface Fault {
  disk: string;
  extent: number;
  operation: 'read' | 'write';
  epoch: number;
  kind: FaultKind;
  error?: ErrorRecord;
}

export type FaultSink = (fault: Fault) => void;

export class FaultReporter {
  private generation = -1;
  private readonly reported = new Set<string>();

  constructor(private readonly sink: FaultSink) {}

  report(generation: number, fault: Fault): void {
    if (generation !== this.generation) {
      this.generation = generation;
      this.reported.clear();
    }
    const key = `${fault.extent}:${fault.kind}:${fault.operation}`;
    if (this.reported.has(key)) return;
    this.reported.add(key);
    this.sink(fault);
  }
}
