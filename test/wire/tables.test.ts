/**
 * Proves src/wire/tables.ts: a 1M-entry table travels as bounded chunks, each encoding to a frame far below
 * MAX_FRAME_BYTES (T1), and a TableAssembler rebuilds it exactly (T3); gaps, overlaps, overruns, foreign
 * transfers, missing chunks and a wrong digest fail the transfer (T2, T3), for good (T5). Oracle: the sent
 * document, column for column, and the encoded size of every message.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { VdmapError } from '../../src/errors/error.js';
import { type TableDocument, ExtentState, NoDevice } from '../../src/table/document.js';
import { decodeMessage, encodeMessage } from '../../src/wire/codec.js';
import { MAX_FRAME_BYTES } from '../../src/wire/frame.js';
import type { TableBeginMessage, TableChunkMessage, TableEndMessage } from '../../src/wire/messages.js';
import { WireLimits } from '../../src/wire/messages.js';
import { TableAssembler, tableMessages, deltaFromMessage, deltaMessage } from '../../src/wire/tables.js';

function millionEntryTable(): TableDocument {
  const extentCount = 1 << 20;
  const doc: TableDocument = {
    disk: 'vol1', epoch: 5, extentSize: 1 << 20, extentCount, devices: ['a', 'b'],
    device: new Int32Array(extentCount), physicalExtent: new Uint32Array(extentCount), state: new Uint8Array(extentCount),
  };
  for (let extent = 0; extent < extentCount; extent++) {
    doc.device[extent] = extent % 3 === 0 ? NoDevice : extent % 2;
    doc.physicalExtent[extent] = doc.device[extent] === NoDevice ? 0 : extent * 7;
    doc.state[extent] = doc.device[extent] === NoDevice ? ExtentState.Zero : extent % 5 === 0 ? ExtentState.NoWrite : 0;
  }
  return doc;
}

function split(doc: TableDocument, chunkExtents?: number): { begin: TableBeginMessage; chunks: TableChunkMessage[]; end: TableEndMessage } {
  const messages = [...tableMessages(doc, 3, chunkExtents)];
  return {
    begin: messages[0] as TableBeginMessage,
    chunks: messages.slice(1, -1) as TableChunkMessage[],
    end: messages[messages.length - 1] as TableEndMessage,
  };
}

describe('table transfer', () => {
  it('T1/T3: sends a 1M-entry table in bounded frames and reassembles it exactly', () => {
    const doc = millionEntryTable();
    const messages = [...tableMessages(doc, 11)];
    const expectedChunks = Math.ceil(doc.extentCount / WireLimits.maxChunkExtents);
    assert.equal(messages.length, expectedChunks + 2);
    let assembler: TableAssembler | undefined;
    let result: TableDocument | VdmapError | undefined;
    for (const message of messages) {
      const bytes = encodeMessage(message);
      assert.ok(bytes.byteLength < MAX_FRAME_BYTES - 64, `a ${message.type} of ${bytes.byteLength} bytes fits one frame`);
      const decoded = decodeMessage(bytes);
      assert.ok(decoded.ok);
      const received = decoded.message;
      if (received.type === 'table-begin') assembler = new TableAssembler(received);
      else if (received.type === 'table-chunk') assert.equal(assembler?.addChunk(received), undefined);
      else if (received.type === 'table-end') result = assembler?.finish(received);
    }
    assert.ok(result !== undefined && !(result instanceof VdmapError));
    assert.deepEqual(result, doc);
  });

  it('T3: assembles an empty table from begin and end alone', () => {
    const doc: TableDocument = {
      disk: 'empty', epoch: 1, extentSize: 4096, extentCount: 0, devices: [],
      device: new Int32Array(0), physicalExtent: new Uint32Array(0), state: new Uint8Array(0),
    };
    const { begin, chunks, end } = split(doc);
    assert.equal(chunks.length, 0);
    assert.deepEqual(new TableAssembler(begin).finish(end), doc);
  });

  function smallTable(): TableDocument {
    const doc = millionEntryTable();
    return {
      ...doc, extentCount: 100, device: doc.device.slice(0, 100), physicalExtent: doc.physicalExtent.slice(0, 100),
      state: doc.state.slice(0, 100),
    };
  }

  function failure(result: unknown): string {
    assert.ok(result instanceof VdmapError, 'expected the transfer to fail');
    return result.code;
  }

  it('T2: fails a transfer when a chunk is skipped', () => {
    const { begin, chunks } = split(smallTable(), 10);
    const assembler = new TableAssembler(begin);
    assembler.addChunk(chunks[0]);
    assert.equal(failure(assembler.addChunk(chunks[2])), 'VDM_WIRE_UNEXPECTED');
  });

  it('T2: fails a transfer when a chunk is repeated', () => {
    const { begin, chunks } = split(smallTable(), 10);
    const assembler = new TableAssembler(begin);
    assembler.addChunk(chunks[0]);
    assert.equal(failure(assembler.addChunk(chunks[0])), 'VDM_WIRE_UNEXPECTED');
  });

  it('T2: fails a transfer when a chunk reaches past the table', () => {
    const { begin, chunks } = split(smallTable(), 60);
    const assembler = new TableAssembler({ ...begin, extentCount: 90 });
    assembler.addChunk(chunks[0]);
    assert.equal(failure(assembler.addChunk(chunks[1])), 'VDM_WIRE_UNEXPECTED');
  });

  it('T2: fails a transfer when a chunk belongs to another transfer', () => {
    const { begin, chunks } = split(smallTable(), 10);
    assert.equal(failure(new TableAssembler(begin).addChunk({ ...chunks[0], transferId: 99 })), 'VDM_WIRE_UNEXPECTED');
  });

  it('T2: fails a transfer that ends before every chunk arrived', () => {
    const { begin, chunks, end } = split(smallTable(), 10);
    const assembler = new TableAssembler(begin);
    for (const chunk of chunks.slice(0, -1)) assembler.addChunk(chunk);
    assert.equal(failure(assembler.finish(end)), 'VDM_WIRE_UNEXPECTED');
  });

  it('T3: fails a transfer whose columns do not match the digest', () => {
    const { begin, chunks, end } = split(smallTable(), 10);
    const assembler = new TableAssembler(begin);
    const altered = { ...chunks[4], physicalExtent: chunks[4].physicalExtent.slice() };
    altered.physicalExtent[3] += 1;
    for (const chunk of [...chunks.slice(0, 4), altered, ...chunks.slice(5)]) assert.equal(assembler.addChunk(chunk), undefined);
    assert.equal(failure(assembler.finish(end)), 'VDM_WIRE_UNEXPECTED');
  });

  it('T5: refuses everything after the first error, the right chunk included', () => {
    const { begin, chunks, end } = split(smallTable(), 10);
    const assembler = new TableAssembler(begin);
    assembler.addChunk(chunks[1]);
    assert.equal(failure(assembler.addChunk(chunks[0])), 'VDM_WIRE_UNEXPECTED');
    assert.equal(failure(assembler.finish(end)), 'VDM_WIRE_UNEXPECTED');
  });
});

describe('delta messages', () => {
  it('round-trips a small delta through its message', () => {
    const delta = {
      disk: 'vol1', fromEpoch: 4, toEpoch: 5, devices: ['a'], extent: Uint32Array.of(1, 8),
      device: Int32Array.of(0, -1), physicalExtent: Uint32Array.of(3, 0), state: Uint8Array.of(0, 1),
    };
    const message = deltaMessage(delta);
    assert.ok(message !== undefined);
    const decoded = decodeMessage(encodeMessage(message));
    assert.ok(decoded.ok && decoded.message.type === 'delta');
    assert.deepEqual(deltaFromMessage(decoded.message), delta);
  });

  it('declines a delta above the limit, which must go as a full table', () => {
    const count = WireLimits.maxDeltaEntries + 1;
    const delta = {
      disk: 'vol1', fromEpoch: 4, toEpoch: 5, devices: ['a'], extent: new Uint32Array(count),
      device: new Int32Array(count), physicalExtent: new Uint32Array(count), state: new Uint8Array(count),
    };
    assert.equal(deltaMessage(delta), undefined);
  });
});
