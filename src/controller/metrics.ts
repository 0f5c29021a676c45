/**
 * The controller's Prometheus metrics (prom-client) and the HTTP endpoint that serves them at /metrics.
 *
 * Owns: metric names, labels and the registry (one per controller, never prom-client's global one, so two
 * daemons in one process keep separate counts). Knows nothing about what is measured: the other files call
 * the methods below at the moment a thing happens.
 *
 * Metrics:
 *   vdmap_controller_epoch{disk}                      latest committed epoch
 *   vdmap_controller_pushes_total{source,result}      commits by source (admin, allocation, set-state) and outcome
 *   vdmap_controller_faults_total{kind,code}          fault messages received from agents
 *   vdmap_controller_agent_applied_epoch{agent,disk}  what each agent acknowledged
 *   vdmap_controller_push_applied_seconds             commit -> an agent's `applied` for that epoch
 *   vdmap_controller_agents_connected                 authenticated agent sessions
 *   vdmap_controller_refusals_total{code}             connections refused (bad frames, credentials, timeouts)
 *   vdmap_controller_admin_requests_total{method,result}
 *   vdmap_controller_table_transfers_total{kind}      full tables and deltas sent to agents
 *
 * Thread: the controller's main thread.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { listenError } from '../errors/errno.js';

export class ControllerMetrics {
  readonly registry = new Registry();
  private readonly epoch = new Gauge({ name: 'vdmap_controller_epoch', help: 'Latest committed table epoch of each disk', labelNames: ['disk'], registers: [this.registry] });
  private readonly pushes = new Counter({ name: 'vdmap_controller_pushes_total', help: 'Table commits by source and result', labelNames: ['source', 'result'], registers: [this.registry] });
  private readonly faults = new Counter({ name: 'vdmap_controller_faults_total', help: 'Fault messages received from agents', labelNames: ['kind', 'code'], registers: [this.registry] });
  private readonly applied = new Gauge({ name: 'vdmap_controller_agent_applied_epoch', help: 'Epoch each agent acknowledged per disk', labelNames: ['agent', 'disk'], registers: [this.registry] });
  private readonly appliedLatency = new Histogram({
    name: 'vdmap_controller_push_applied_seconds', help: 'Time from a commit to an agent acknowledging that epoch',
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10], registers: [this.registry],
  });
  private readonly connected = new Gauge({ name: 'vdmap_controller_agents_connected', help: 'Authenticated agent sessions', registers: [this.registry] });
  private readonly refusals = new Counter({ name: 'vdmap_controller_refusals_total', help: 'Connections or sessions refused, by code', labelNames: ['code'], registers: [this.registry] });
  private readonly adminRequests = new Counter({ name: 'vdmap_controller_admin_requests_total', help: 'Admin requests by method and result', labelNames: ['method', 'result'], registers: [this.registry] });
  private readonly transfers = new Counter({ name: 'vdmap_controller_table_transfers_total', help: 'Tables sent to agents, full or delta', labelNames: ['kind'], registers: [this.registry] });

  committed(disk: string, epoch: number, source: string): void {
    this.epoch.set({ disk }, epoch);
    this.pushes.inc({ source, result: 'committed' });
  }

  pushRefused(source: string, code: string): void {
    this.pushes.inc({ source, result: code });
  }

  diskRemoved(disk: string): void {
    this.epoch.remove({ disk });
  }

  fault(kind: string, code: string): void {
    this.faults.inc({ kind, code });
  }

  agentApplied(agent: string, disk: string, epoch: number, secondsSinceCommit: number | undefined): void {
    this.applied.set({ agent, disk }, epoch);
    if (secondsSinceCommit !== undefined) this.appliedLatency.observe(secondsSinceCommit);
  }

  sessions(count: number): void {
    this.connected.set(count);
  }

  refused(code: string): void {
    this.refusals.inc({ code });
  }

  adminRequest(method: string, result: string): void {
    this.adminRequests.inc({ method, result });
  }

  transfer(kind: 'full' | 'delta' | 'set-state'): void {
    this.transfers.inc({ kind });
  }
}

/** Serves `registry` at GET /metrics on host:port (port 0: any free port); resolves once listening. */
export async function serveMetrics(registry: Registry, listen: { host: string; port: number }):
  Promise<{ server: Server; address: { host: string; port: number } }> {
  const server = createServer((request, response) => {
    if (request.method !== 'GET' || request.url?.split('?')[0] !== '/metrics') {
      response.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try /metrics\n');
      return;
    }
    registry.metrics().then((text) => {
      response.writeHead(200, { 'content-type': registry.contentType }).end(text);
    }, (error: unknown) => {
      response.writeHead(500, { 'content-type': 'text/plain' }).end(`${String(error)}\n`);
    });
  });
  await new Promise<void>((resolve, reject) => {
    const failed = (error: Error) => reject(listenError(error, listen, 'controller metrics'));
    server.once('error', failed);
    server.listen(listen.port, listen.host, () => {
      server.off('error', failed);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  return { server, address: { host: listen.host, port } };
}
