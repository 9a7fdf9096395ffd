// A worker's own metrics (prom-client): attempts by type, kind and outcome,
// attempt durations, pickup lag (due → handler starts), leases lost and taken
// back, upstream callbacks, alert evaluations and emails, schedule ticks. The worker listens
// on no port: it saves a snapshot in the database every few seconds
// (worker_metrics) and GET /api/metrics sums the snapshots of all workers.
import client from "prom-client";
import type { Db } from "../db/client";
import type { Logger } from "../log";
import type { AttemptRecord } from "../engine/types";
import { saveWorkerMetrics } from "../db/metrics";

const DURATION_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
const LAG_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];

export function createWorkerMetrics() {
  const registry = new client.Registry();
  const attempts = new client.Counter({
    name: "conveyor_attempts_total",
    help: "Attempts made by workers, by command type, kind (execute, reconcile, compensate, poll, callback) and outcome",
    labelNames: ["type", "kind", "outcome"],
    registers: [registry],
  });
  const duration = new client.Histogram({
    name: "conveyor_attempt_duration_seconds",
    help: "How long attempts took, by command type and kind",
    labelNames: ["type", "kind"],
    buckets: DURATION_BUCKETS,
    registers: [registry],
  });
  const lag = new client.Histogram({
    name: "conveyor_pickup_lag_seconds",
    help: "From the moment a command is due to the moment its handler starts, by command type",
    labelNames: ["type"],
    buckets: LAG_BUCKETS,
    registers: [registry],
  });
  const leasesLost = new client.Counter({
    name: "conveyor_leases_lost_total",
    help: "Attempts interrupted because the worker lost the command's lease",
    registers: [registry],
  });
  const rescued = new client.Counter({
    name: "conveyor_leases_rescued_total",
    help: "Expired leases taken back by the rescuer (a worker died or lost the database)",
    registers: [registry],
  });
  const callbacks = new client.Counter({
    name: "conveyor_callbacks_total",
    help: "Upstream callback deliveries tried, by outcome (delivered, failed)",
    labelNames: ["outcome"],
    registers: [registry],
  });
  const evaluations = new client.Counter({
    name: "conveyor_alert_evaluations_total",
    help: "Alert rule evaluation rounds run by this worker, by outcome (ok, error)",
    labelNames: ["outcome"],
    registers: [registry],
  });
  const emails = new client.Counter({
    name: "conveyor_alert_emails_total",
    help: "Alert emails handed to SMTP, by outcome (sent, failed: retried later)",
    labelNames: ["outcome"],
    registers: [registry],
  });
  const webhooks = new client.Counter({
    name: "conveyor_alert_webhooks_total",
    help: "Alert webhook deliveries tried, by outcome (sent: a 2xx; failed: retried later)",
    labelNames: ["outcome"],
    registers: [registry],
  });
  const held = new client.Counter({
    name: "conveyor_flow_held_total",
    help: "Attempts a worker had room for but held back, by command type, host and reason (limit, paused, circuit)",
    labelNames: ["type", "host", "reason"],
    registers: [registry],
  });
  const circuitChanges = new client.Counter({
    name: "conveyor_circuit_transitions_total",
    help: "Circuit breaker changes of state seen by this worker, by scope and the state entered",
    labelNames: ["scope", "state"],
    registers: [registry],
  });
  const scheduleTicks = new client.Counter({
    name: "conveyor_schedule_ticks_total",
    help: "Schedule ticks, by outcome (submitted: a command stored; missed: left out by a catch-up after downtime; rejected: intake refused the command)",
    labelNames: ["outcome"],
    registers: [registry],
  });

  // The hot path: label children are looked up once per label set, not hashed per observation.
  const attemptChildren = new Map<string, client.Counter.Internal>();
  const durationChildren = new Map<string, client.Histogram.Internal<string>>();
  const lagChildren = new Map<string, client.Histogram.Internal<string>>();
  const child = <T>(m: Map<string, T>, key: string, make: () => T): T => {
    let c = m.get(key);
    if (!c) m.set(key, (c = make()));
    return c;
  };

  return {
    registry,
    attempts(type: string, records: AttemptRecord[]) {
      for (const a of records) {
        child(attemptChildren, `${type}\0${a.kind}\0${a.outcome}`, () =>
          attempts.labels(type, a.kind, a.outcome),
        ).inc();
        child(durationChildren, `${type}\0${a.kind}`, () => duration.labels(type, a.kind)).observe(
          Math.max(0, a.finishedAt.getTime() - a.startedAt.getTime()) / 1000,
        );
      }
    },
    pickup(type: string, seconds: number) {
      child(lagChildren, type, () => lag.labels(type)).observe(Math.max(0, seconds));
    },
    leaseLost: () => leasesLost.inc(),
    rescued: (n: number) => rescued.inc(n),
    callback: (delivered: boolean) => callbacks.inc({ outcome: delivered ? "delivered" : "failed" }),
    evaluation: (ok: boolean) => evaluations.inc({ outcome: ok ? "ok" : "error" }),
    email: (sent: boolean) => emails.inc({ outcome: sent ? "sent" : "failed" }),
    webhook: (sent: boolean) => webhooks.inc({ outcome: sent ? "sent" : "failed" }),
    heldBack(unit: { type: string; host: string | null }, reason: string, n: number) {
      if (n > 0) held.inc({ type: unit.type, host: unit.host ?? "", reason }, n);
    },
    circuit(scope: { kind: string; name: string }, state: string) {
      circuitChanges.inc({ scope: `${scope.kind}:${scope.name}`, state });
    },
    scheduleTicks(outcome: "submitted" | "missed" | "rejected", n: number) {
      if (n > 0) scheduleTicks.inc({ outcome }, n);
    },
  };
}

export type WorkerMetrics = ReturnType<typeof createWorkerMetrics>;

/** Saves the worker's snapshot every `everyMs` (and once more on stop). */
export function startMetricsPush(o: {
  db: Db;
  log: Logger;
  workerId: string;
  metrics: WorkerMetrics;
  everyMs?: number;
}) {
  const startedAt = new Date();
  const push = async () => {
    try {
      await saveWorkerMetrics(o.db, o.workerId, startedAt, await o.metrics.registry.getMetricsAsJSON());
    } catch (err) {
      o.log.warn({ err: String(err) }, "could not save worker metrics");
    }
  };
  void push();
  const timer = setInterval(push, o.everyMs ?? 5_000);
  return {
    push,
    stop: async () => {
      clearInterval(timer);
      await push();
    },
  };
}
