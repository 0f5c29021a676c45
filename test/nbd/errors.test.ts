/**
 * Proves: src/nbd/errors.ts folds every catalogue code into the NBD error value of its errno class, builds
 * "CODE: message" within the protocol's string limit, and keeps an offset only when the record names one.
 * Oracle: the table of NBD error values in proto.md ("Error values"), written out here by hand.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Catalogue, type ErrorCode } from '../../src/errors/catalogue.js';
import { VdmapError } from '../../src/errors/error.js';
import { boundedString, nbdErrorOf, nbdErrorValueOf } from '../../src/nbd/errors.js';

const specValues: Record<string, number> = {
  EPERM: 1, EIO: 5, ENOMEM: 12, EINVAL: 22, ENOSPC: 28, EOVERFLOW: 75, ENOTSUP: 95, ESHUTDOWN: 108,
};

describe('nbd error mapping', () => {
  it('maps every catalogue code to the NBD value of its errno class', () => {
    for (const code of Object.keys(Catalogue) as ErrorCode[]) {
      assert.equal(nbdErrorValueOf(code), specValues[Catalogue[code].errno], code);
    }
  });

  it('answers EIO with a VDM_INTERNAL message when the failure is not a VdmapError', () => {
    const error = nbdErrorOf(new TypeError('boom'));
    assert.equal(error.value, 5);
    assert.equal(error.message.toString(), 'VDM_INTERNAL: boom');
  });

  it('writes the message as "CODE: message" when the failure is a VdmapError', () => {
    const error = nbdErrorOf(new VdmapError('VDM_IO_NOSPACE', 'device full'));
    assert.equal(error.value, 28);
    assert.equal(error.message.toString(), 'VDM_IO_NOSPACE: device full');
    assert.equal(error.offset, undefined);
  });

  it('keeps the offset when the error details name one', () => {
    assert.equal(nbdErrorOf(new VdmapError('VDM_IO_DEVICE', 'bad sector', { offset: 4096 })).offset, 4096);
    assert.equal(nbdErrorOf(new VdmapError('VDM_IO_DEVICE', 'bad sector', { offset: 'x' })).offset, undefined);
  });

  it('cuts a message to 4096 bytes without splitting a character when it is longer', () => {
    const bytes = boundedString('é'.repeat(3000)); // 6000 bytes of two-byte characters
    assert.ok(bytes.length <= 4096);
    assert.equal(bytes.length % 2, 0);
    assert.doesNotThrow(() => new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  });

  it('removes NUL characters from a message when it contains them', () => {
    assert.equal(boundedString('a\0b').toString(), 'ab');
  });
});
