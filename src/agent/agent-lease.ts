/**
 * AgentLease: the agent's side of its lease from the controller, and the moment it lapses.
 *
 * Protocol (src/wire/messages.ts "Leases", src/controller/leases.ts): welcome answers the hello, and each
 * `lease` answers exactly one heartbeat, in order. A grant counts from when the agent SENT what it answers:
 *
 *   agent:      hello/heartbeat sent at t0 ............ grant received ........ expiry = t0 + leaseMs - margin
 *   controller:              grant sent at t1 >= t0 .......................... its record: t1 + leaseMs
 *
 * so the agent's lease always ends first, by at least `margin` plus the time the grant took to arrive, and the
 * controller may treat the agent as gone at its own expiry without ever racing an agent still serving.
 *
 * Owns: the FIFO of unanswered heartbeat send times, the expiry (monotonic clock) and the lapse timer. Knows
 * nothing about disks: `onLapse` (the agent fences its shared disks and drops the connection) is the caller's.
 *
 * Invariants:
 *   AL1. expiry is only ever set from the send time of the message a grant answers, never from receipt.
 *   AL2. onLapse fires once per lapse, at the latest when the expiry passes (a timer armed at every change).
 *   AL3. A new session starts from an empty FIFO: grants of an old session never renew the new one.
 *
 * Thread: the agent's main thread.
 */
export class AgentLease {
  private readonly unanswered: number[] = [];
  /** performance.now() clock; undefined before the first welcome. */
  private expiry: number | undefined;
  private timer: NodeJS.Timeout | undefined;
  private lapsed = true;

  /** `margin`: how much earlier than the controller's record the agent gives up (clock-rate slack). */
  constructor(private readonly onLapse: () => void, private readonly margin: (leaseMs: number) => number = defaultMargin) {}

  /** AL1 for the welcome: `helloSentAt` is a time at or before the hello went out. */
  welcomed(helloSentAt: number, leaseMs: number): void {
    this.unanswered.length = 0; // AL3
    this.extend(helloSentAt, leaseMs);
  }

  heartbeatSent(sentAt: number = performance.now()): void {
    this.unanswered.push(sentAt);
  }

  /** A `lease` arrived: it answers the oldest unanswered heartbeat. False when none was outstanding. */
  granted(leaseMs: number): boolean {
    const sentAt = this.unanswered.shift();
    if (sentAt === undefined) return false;
    this.extend(sentAt, leaseMs);
    return true;
  }

  /** The session ended: nothing sent in it will be answered (AL3). The lease itself runs on until it expires. */
  sessionEnded(): void {
    this.unanswered.length = 0;
  }

  get valid(): boolean {
    return this.expiry !== undefined && performance.now() < this.expiry;
  }

  /** The expiry in ms since the Unix epoch, for inspection; null before the first welcome. */
  expiresAt(): number | null {
    return this.expiry === undefined ? null : Math.round(Date.now() + (this.expiry - performance.now()));
  }

  /** Heartbeats sent and not yet answered. */
  get outstanding(): number {
    return this.unanswered.length;
  }

  close(): void {
    clearTimeout(this.timer);
  }

  private extend(sentAt: number, leaseMs: number): void {
    const expiry = sentAt + leaseMs - this.margin(leaseMs);
    if (this.expiry !== undefined && expiry <= this.expiry) return;
    this.expiry = expiry;
    this.lapsed = false;
    this.arm();
  }

  /** AL2. */
  private arm(): void {
    clearTimeout(this.timer);
    const remaining = (this.expiry ?? 0) - performance.now();
    this.timer = setTimeout(() => this.check(), Math.max(0, Math.ceil(remaining)));
  }

  private check(): void {
    if (this.lapsed || this.expiry === undefined) return;
    if (performance.now() < this.expiry) {
      this.arm();
      return;
    }
    this.lapsed = true;
    this.onLapse();
  }
}

/** A tenth of the lease, at most one second. */
function defaultMargin(leaseMs: number): number {
  return Math.min(1000, Math.floor(leaseMs / 10));
}
