/**
 * Proves every addon entry point refuses a call with too few arguments the same way (read_call in
 * native-bindings/src/errors.c, X2): it throws an Error with code EINVAL whose message is the call's usage. Called
 * through loadAddon() directly, since the TypeScript facade's types never let such a call through.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadAddon, nativeErrno } from '../../src/native/addon.js';

type Call = (addon: Record<string, (...args: unknown[]) => unknown>) => unknown;

/** Each entry point with one argument fewer than it needs, and the usage its error must name. */
const shortCalls: Array<[string, Call, RegExp]> = [
  ['openDevice', (addon) => addon.openDevice!('/dev/null'), /^openDevice\(path, readOnly\) takes two arguments$/],
  ['closeDevice', (addon) => addon.closeDevice!(), /^closeDevice\(fd\) takes one argument$/],
  ['duplicateDescriptor', (addon) => addon.duplicateDescriptor!(), /^duplicateDescriptor\(fd\) takes one argument$/],
  ['alignmentOf', (addon) => addon.alignmentOf!(), /^alignmentOf\(view\[, modulus\]\) takes a view$/],
  ['adviseHugePages', (addon) => addon.adviseHugePages!(), /^adviseHugePages\(view\) takes one argument$/],
  ['copyBytes', (addon) => addon.copyBytes!(new Uint8Array(1), 0, new Uint8Array(1), 0), /^copyBytes\(.*\) takes five arguments$/],
  ['sendVector', (addon) => addon.sendVector!(0), /^sendVector\(fd, views\) takes two arguments$/],
  ['shutdownSocket', (addon) => addon.shutdownSocket!(0), /^shutdownSocket\(fd, how\) takes two arguments$/],
  ['setSendBufferSize', (addon) => addon.setSendBufferSize!(0), /^setSendBufferSize\(fd, bytes\) takes two arguments$/],
];

function refusal(call: () => unknown): Error & { code?: string } {
  try {
    call();
  } catch (error) {
    return error as Error & { code?: string };
  }
  assert.fail('the call was accepted');
}

describe('Addon arguments', () => {
  const addon = loadAddon() as unknown as Record<string, (...args: unknown[]) => unknown>;

  for (const [name, call, usage] of shortCalls) {
    it(`${name} with too few arguments throws EINVAL with its usage`, () => {
      const error = refusal(() => call(addon));
      assert.equal(nativeErrno(error), 'EINVAL');
      assert.match(error.message, usage);
    });
  }

  it('a Ring method with too few arguments throws EINVAL with its usage', () => {
    const ring = new (loadAddon().Ring)({ entries: 4 });
    try {
      const ringMethods = ring as unknown as Record<string, (...args: unknown[]) => unknown>;
      for (const [method, usage] of [['submit', /^submit\(count.*needs a count$/], ['setWake', /^setWake\(enabled\) needs a boolean$/], ['registerBuffer', /^registerBuffer\(view\) takes one argument$/]] as const) {
        const error = refusal(() => ringMethods[method]!.call(ring));
        assert.equal(nativeErrno(error), 'EINVAL', method);
        assert.match(error.message, usage, method);
      }
    } finally {
      ring.close();
    }
  });
});
