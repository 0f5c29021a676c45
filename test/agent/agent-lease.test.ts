/**
 * Proves agent-lease.ts AL1-AL3 with real timers: a grant counts from when the heartbeat it answers was sent,
 * not from its arrival; grants answer heartbeats in order; the lapse fires once, at the expiry; grants of an
 * ended session renew nothing.
 * Oracle: performance.now() around the lapse callback and the lease's own expiry.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { AgentLease } from '../../src/agent/agent-lease.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('AgentLease', () => {
  it('AL1: counts a grant from the send time of the heartbeat it answers, not from its arrival', async () => {
    const lease = new AgentLease(() => undefined, () => 0);
    const start = performance.now();
    lease.welcomed(start, 1000);
    lease.heartbeatSent(start + 100);
    lease.heartbeatSent(start + 300);
    await sleep(50);
    assert.equal(lease.granted(1000), true);
    // Against the clock as it is now, however late the timer fired: the grant runs from start + 100 (the send of
    // the older heartbeat), so it ends at start + 1100, not 1000 ms after now.
    const expected = start + 1100 - performance.now();
    const expiresIn = lease.expiresAt()! - Date.now();
    assert.ok(Math.abs(expiresIn - expected) <= 3, `expires in ${expiresIn} ms, expected ${expected.toFixed(1)} ms`);
    assert.equal(lease.outstanding, 1, 'the grant answered the older heartbeat');
    lease.close();
  });

  it('AL2: fires the lapse once, no earlier than the expiry minus the margin', async () => {
    let lapses = 0;
    let lapsedAt = 0;
    const lease = new AgentLease(() => { lapses++; lapsedAt = performance.now(); }, () => 20);
    const start = performance.now();
    lease.welcomed(start, 120);
    await sleep(250);
    assert.equal(lapses, 1);
    assert.ok(lapsedAt - start >= 100 - 1, `lapsed after ${lapsedAt - start} ms`);
    assert.equal(lease.valid, false);
    lease.close();
  });

  it('AL3: grants after a session ended renew nothing', async () => {
    let lapses = 0;
    const lease = new AgentLease(() => { lapses++; }, () => 0);
    lease.welcomed(performance.now(), 100);
    lease.heartbeatSent();
    lease.sessionEnded();
    assert.equal(lease.granted(10_000), false);
    await sleep(150);
    assert.equal(lapses, 1);
    lease.close();
  });
});
