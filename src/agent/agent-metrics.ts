/**
 * The agent's Prometheus metrics (prom-client) and their HTTP endpoint at /metrics.
 *
 * Metrics:
 *   vdmap_agent_connected                       1 while a session with the controller is open
 *   vdmap_agent_lease_valid                     1 while the lease is valid
 *   vdmap_agent_epoch{disk}                     live epoch of each disk
 *   vdmap_agent_fenced{disk}                    1 while a shared disk is fenced after a lease lapse
 *   vdmap_agent_applies_total{kind,result}      tables applied: full, delta, set-state; result ok or code
 *   vdmap_agent_apply_seconds{kind}             receipt of the last message of a change -> applied
 *   vdmap_agent_faults_total{kind}              faults reported to the controller
 *   vdmap_agent_io_requests_total{disk,operation}, vdmap_agent_io_errors_total{...}, vdmap_agent_io_bytes_total{...}
 *   vdmap_agent_io_seconds{disk,operation}      latency histogram, from the workers' batched counts
 *
 * Owns: names, labels, a per-agent registry (several agents may share a process, as in the push benchmark),
 * and the accumulation of the workers' IoStats snapshots. Knows nothing about what is measured.
 *
 * Thread: the agent's main thread.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { listenError } from '../errors/errno.js';
import { IO_LATENCY_BUCKETS, type IoCounts, type IoStatsSnapshot } from './workers/io-stats.js';

export class AgentMetrics {
  readonly registry = new Registry();
  private readonly connected = new Gauge({ name: 'vdmap_agent_connected', help: '1 while connected to the controller', registers: [this.registry] });
  private readonly leaseValid = new Gauge({ name: 'vdmap_agent_lease_valid', help: '1 while the lease is valid', registers: [this.registry] });
  private readonly epoch = new Gauge({ name: 'vdmap_agent_epoch', help: 'Live table epoch of each disk', labelNames: ['disk'], registers: [this.registry] });
  private readonly fenced = new Gauge({ name: 'vdmap_agent_fenced', help: '1 while a shared disk is fenced after a lease lapse', labelNames: ['disk'], registers: [this.registry] });
  private readonly applies = new Counter({ name: 'vdmap_agent_applies_total', help: 'Table changes applied, by kind and result', labelNames: ['kind', 'result'], registers: [this.registry] });
  private readonly applySeconds = new Histogram({
    name: 'vdmap_agent_apply_seconds', help: 'From the last message of a change to its epoch being live', labelNames: ['kind'],
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5], registers: [this.registry],
  });
  private readonly faults = new Counter({ name: 'vdmap_agent_faults_total', help: 'Faults reported to the controller', labelNames: ['kind'], registers: [this.registry] });
  private readonly ioRequests = new Counter({ name: 'vdmap_agent_io_requests_total', help: 'NBD requests served', labelNames: ['disk', 'operation'], registers: [this.registry] });
  private readonly ioErrors = new Counter({ name: 'vdmap_agent_io_errors_total', help: 'NBD requests that failed', labelNames: ['disk', 'operation'], registers: [this.registry] });
  private readonly ioBytes = new Counter({ name: 'vdmap_agent_io_bytes_total', help: 'Bytes moved by NBD requests', labelNames: ['disk', 'operation'], registers: [this.registry] });
  private readonly ioLatency = new BatchedHistogram('vdmap_agent_io_seconds', 'NBD request latency, seconds', IO_LATENCY_BUCKETS);

  constructor() {
    this.registry.registerMetric(this.ioLatency as never);
  }

  session(connected: boolean): void {
    this.connected.set(connected ? 1 : 0);
  }

  lease(valid: boolean): void {
    this.leaseValid.set(valid ? 1 : 0);
  }

  diskEpoch(disk: string, epoch: number): void {
    this.epoch.set({ disk }, epoch);
  }

  diskFenced(disk: string, fenced: boolean): void {
    this.fenced.set({ disk }, fenced ? 1 : 0);
  }

  diskRemoved(disk: string): void {
    this.epoch.remove({ disk });
    this.fenced.remove({ disk });
  }

  applied(kind: 'full' | 'delta' | 'set-state', result: string, seconds?: number): void {
    this.applies.inc({ kind, result });
    if (seconds !== undefined) this.applySeconds.observe({ kind }, seconds);
  }

  fault(kind: string): void {
    this.faults.inc({ kind });
  }

  /** Adds one worker's batch (workers/io-stats.ts). */
  io(snapshot: IoStatsSnapshot): void {
    for (const counts of snapshot.counts) {
      const labels = { disk: counts.disk, operation: counts.operation };
      this.ioRequests.inc(labels, counts.count);
      if (counts.errors > 0) this.ioErrors.inc(labels, counts.errors);
      if (counts.bytes > 0) this.ioBytes.inc(labels, counts.bytes);
      this.ioLatency.add(counts);
    }
  }
}

interface BucketValue {
  metricName: string;
  labels: Record<string, string | number>;
  value: number;
}

/**
 * A Prometheus histogram fed with pre-bucketed counts (prom-client's Histogram only takes single observations):
 * implements the small part of prom-client's metric interface the Registry calls (name, help, type, get, reset).
 */
class BatchedHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  private readonly series = new Map<string, { labels: Record<string, string>; buckets: number[]; count: number; sum: number }>();

  constructor(readonly name: string, readonly help: string, private readonly bounds: readonly number[]) {}

  add(counts: IoCounts): void {
    const key = `${counts.disk}\u0000${counts.operation}`;
    let series = this.series.get(key);
    if (series === undefined) {
      series = { labels: { disk: counts.disk, operation: counts.operation }, buckets: new Array<number>(this.bounds.length + 1).fill(0), count: 0, sum: 0 };
      this.series.set(key, series);
    }
    counts.buckets.forEach((count, index) => { series.buckets[index] += count; });
    series.count += counts.count;
    series.sum += counts.seconds;
  }

  /** What prom-client's Registry formats: {name, help, type, values: [{metricName, labels, value}]}. */
  async get(): Promise<{ name: string; help: string; type: string; aggregator: string; values: BucketValue[] }> {
    const values: BucketValue[] = [];
    for (const series of this.series.values()) {
      let cumulative = 0;
      this.bounds.forEach((bound, index) => {
        cumulative += series.buckets[index];
        values.push({ metricName: `${this.name}_bucket`, labels: { ...series.labels, le: bound }, value: cumulative });
      });
      values.push({ metricName: `${this.name}_bucket`, labels: { ...series.labels, le: '+Inf' }, value: series.count });
      values.push({ metricName: `${this.name}_sum`, labels: series.labels, value: series.sum });
      values.push({ metricName: `${this.name}_count`, labels: series.labels, value: series.count });
    }
    return { name: this.name, help: this.help, type: 'histogram', values, aggregator: 'sum' };
  }

  reset(): void {
    this.series.clear();
  }
}

/** Serves `registry` at GET /metrics; resolves once listening (port 0: any free port). */
export async function serveAgentMetrics(registry: Registry, listen: { host: string; port: number }):
  Promise<{ server: Server; address: { host: string; port: number } }> {
  const server = createServer((request, response) => {
    if (request.method !== 'GET' || request.url?.split('?')[0] !== '/metrics') {
      response.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try /metrics\n');
      return;
    }
    registry.metrics().then((text) => response.writeHead(200, { 'content-type': registry.contentType }).end(text),
      (error: unknown) => response.writeHead(500, { 'content-type': 'text/plain' }).end(`${String(error)}\n`));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error) => reject(listenError(error, listen, 'agent metrics')));
    server.listen(listen.port, listen.host, () => resolve());
  });
  return { server, address: { host: listen.host, port: (server.address() as AddressInfo).port } };
}
