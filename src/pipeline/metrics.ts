import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** The gateway's Prometheus metrics, in one registry per gateway instance (tests run several). */
export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const m = {
    registry,
    received: new Counter({ name: 'deid_instances_received_total', help: 'Instances accepted into the spool', labelNames: ['source'], registers: [registry] }),
    deidentified: new Counter({ name: 'deid_instances_deidentified_total', help: 'Instances de-identified, per route', labelNames: ['route'], registers: [registry] }),
    forwarded: new Counter({ name: 'deid_instances_forwarded_total', help: 'Instances delivered, per destination', labelNames: ['destination'], registers: [registry] }),
    quarantined: new Counter({ name: 'deid_instances_quarantined_total', help: 'Instances quarantined, per stage and code', labelNames: ['stage', 'code'], registers: [registry] }),
    dropped: new Counter({ name: 'deid_instances_dropped_total', help: 'Instances dropped by routing', registers: [registry] }),
    retries: new Counter({ name: 'deid_forward_retries_total', help: 'Forward attempts retried after a transient error', labelNames: ['destination'], registers: [registry] }),
    queueDepth: new Gauge({ name: 'deid_spool_queue_depth', help: 'Spool entries by state', labelNames: ['state'], registers: [registry] }),
    associations: new Gauge({ name: 'deid_dimse_associations_active', help: 'Open DIMSE associations', registers: [registry] }),
    associationsTotal: new Counter({ name: 'deid_dimse_associations_total', help: 'DIMSE associations by result', labelNames: ['result'], registers: [registry] }),
    deidSeconds: new Histogram({ name: 'deid_deidentify_seconds', help: 'De-identification latency per instance', buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10], registers: [registry] }),
    forwardSeconds: new Histogram({ name: 'deid_forward_seconds', help: 'Forward latency per instance and destination', labelNames: ['destination'], buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10, 60], registers: [registry] }),
  };
  return m;
}

export type Metrics = ReturnType<typeof createMetrics>;
