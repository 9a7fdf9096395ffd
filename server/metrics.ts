// GET /api/metrics in Prometheus text (prom-client): commands by state and
// type, queue depth and the age of the oldest due command, leases held, alert
// state, deadlocks in the database, flow control (circuits, what waits and
// why), HTTP request durations of the web process, the process's own figures,
// and the workers' metrics (server/worker/metrics.ts) summed. Gauges are read
// from the database at scrape time, so every web process reports the same totals. Protected by METRICS_TOKEN when it is set.
import client from "prom-client";
import { createHash, timingSafeEqual } from "node:crypto";
import type { Db } from "./db/client";
import { QUEUED } from "./engine/states";
import {
  alertFigures,
  commandsByStateAndType,
  databaseDeadlocks,
  flowFigures,
  queueFigures,
  workerMetricsSnapshots,
} from "./db/metrics";
import { batchTotals } from "./db/batches";

/** Snapshots of stopped workers are kept this long, so that summed counters do not drop when a worker restarts. */
const KEEP_WORKER_SNAPSHOTS_HOURS = 24;
/** A worker that saved a snapshot this recently counts as live (it saves one every 5 s). */
const LIVE_WORKER_SECONDS = 30;

const CIRCUIT_VALUE = { closed: 0, half_open: 1, open: 2 } as const;

/** `codeLimitedTypes`: command types whose code declares a limit (their waiting commands are held back by it). */
export function createMetrics(db: Db, opts: { codeLimitedTypes?: string[] } = {}) {
  const registry = new client.Registry();
  client.collectDefaultMetrics({ register: registry, prefix: "conveyor_web_" });
  const httpDuration = new client.Histogram({
    name: "conveyor_http_request_duration_seconds",
    help: "HTTP requests served by the web process",
    labelNames: ["route", "status"],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  });
  const commands = new client.Gauge({
    name: "conveyor_commands",
    help: "Commands by state and type",
    labelNames: ["state", "type"],
    registers: [registry],
  });
  const due = new client.Gauge({
    name: "conveyor_queue_due",
    help: `Commands ${QUEUED.join(" or ")} whose time has come, not yet claimed`,
    registers: [registry],
  });
  const oldest = new client.Gauge({
    name: "conveyor_queue_oldest_due_seconds",
    help: "Age of the oldest due command (0 when none)",
    registers: [registry],
  });
  const leased = new client.Gauge({
    name: "conveyor_leases_held",
    help: "Commands held under a worker lease",
    registers: [registry],
  });
  const firing = new client.Gauge({
    name: "conveyor_alert_rules_firing",
    help: "Enabled alert rules currently firing",
    registers: [registry],
  });
  const undelivered = new client.Gauge({
    name: "conveyor_alert_deliveries_pending",
    help: "Alert deliveries (emails and webhooks) not sent yet",
    registers: [registry],
  });
  const workers = new client.Gauge({
    name: "conveyor_workers",
    help: "Worker processes that reported in the last 30 s",
    registers: [registry],
  });
  const undeliveredAge = new client.Gauge({
    name: "conveyor_alert_deliveries_oldest_pending_seconds",
    help: "Age of the oldest unsent alert delivery, email or webhook (0 when none)",
    registers: [registry],
  });
  // The database's own count, not the errors some process met: it includes every deadlock, whichever
  // statement and process was chosen to be rolled back, and survives restarts of the processes.
  const deadlocks = new client.Counter({
    name: "conveyor_db_deadlocks_total",
    help: "Deadlocks PostgreSQL detected in Conveyor's database (pg_stat_database.deadlocks; every client of the database counts)",
    registers: [registry],
  });

  const circuit = new client.Gauge({
    name: "conveyor_circuit_state",
    help: "Circuit breaker of each flow scope: 0 closed, 1 half open (a probe is let through), 2 open (host scopes: type http)",
    labelNames: ["type", "host"],
    registers: [registry],
  });
  const batches = new client.Gauge({
    name: "conveyor_batches",
    help: "Batches (DESIGN §8) by state: open (a command not yet at rest) or done",
    labelNames: ["state"],
    registers: [registry],
  });
  const flowWaiting = new client.Gauge({
    name: "conveyor_flow_waiting",
    help: "Due commands held back by flow control, per scope and why: limit, paused, circuit; ordering: waiting behind an earlier command of their ordering key",
    labelNames: ["type", "host", "reason"],
    registers: [registry],
  });

  return {
    /** Records one HTTP request (route is a low-cardinality name, never a raw URL). */
    observe(route: string, status: number, seconds: number) {
      httpDuration.observe({ route, status: String(status) }, seconds);
    },
    async render(): Promise<{ body: string; contentType: string }> {
      const [byState, q, a, w, d, f, b] = await Promise.all([
        commandsByStateAndType(db),
        queueFigures(db),
        alertFigures(db),
        workerMetricsSnapshots(db, KEEP_WORKER_SNAPSHOTS_HOURS, LIVE_WORKER_SECONDS),
        databaseDeadlocks(db),
        flowFigures(db, opts.codeLimitedTypes ?? []),
        batchTotals(db),
      ]);
      commands.reset();
      for (const r of byState) commands.set({ state: r.status, type: r.type }, r.n);
      due.set(q.due);
      oldest.set(q.oldest_s ?? 0);
      leased.set(q.leased);
      firing.set(a.firing);
      undelivered.set(a.undelivered);
      undeliveredAge.set(a.oldest_undelivered_s ?? 0);
      workers.set(w.live);
      deadlocks.reset();
      deadlocks.inc(d);
      circuit.reset();
      for (const c of f.circuits) circuit.set({ type: c.type, host: c.host }, CIRCUIT_VALUE[c.state]);
      batches.set({ state: "open" }, b.open);
      batches.set({ state: "done" }, b.done);
      flowWaiting.reset();
      for (const r of f.waiting) flowWaiting.set({ type: r.type, host: r.host, reason: r.reason }, r.n);
      // Workers' own metrics (attempts, durations, pickup lag…), summed over every worker's latest snapshot.
      const fromWorkers = w.snapshots.length
        ? await client.AggregatorRegistry.aggregate(
            w.snapshots as client.MetricObjectWithValues<client.MetricValue<string>>[][],
          ).metrics()
        : "";
      return {
        body: (await registry.metrics()) + (fromWorkers ? "\n" + fromWorkers : ""),
        contentType: registry.contentType,
      };
    },
  };
}

export type Metrics = ReturnType<typeof createMetrics>;

/** The /api/metrics answer, checking METRICS_TOKEN when one is configured. */
export async function metricsResponse(
  metrics: Metrics,
  token: string | undefined,
  authorization: string | null,
): Promise<Response> {
  if (token && !sameSecret(authorization ?? "", `Bearer ${token}`))
    return new Response("metrics need Authorization: Bearer <METRICS_TOKEN>\n", { status: 401 });
  const { body, contentType } = await metrics.render();
  return new Response(body, { headers: { "content-type": contentType, "cache-control": "no-store" } });
}

/** Constant-time comparison (of digests, so that lengths do not leak either). */
function sameSecret(a: string, b: string): boolean {
  const h = (s: string) => createHash("sha256").update(s).digest();
  return timingSafeEqual(h(a), h(b));
}

const KNOWN_API = [
  /^\/api\/(health|ready|metrics|openapi\.json)$/,
  /^\/api\/auth\/(login|logout)$/,
  /^\/api\/commands\/:id\/result$/,
  /^\/api\/v1\/commands(\/batch|\/get-many|\/:id)?$/,
  /^\/api\/v1\/batches\/:id$/,
];

/**
 * The low-cardinality route label of a request URL: tRPC procedures by name
 * (only names the router has), known API paths with ids as :id, and one label
 * for everything else, so that requests to made-up paths cannot create series.
 */
export function routeLabel(url: string, procedures: ReadonlySet<string>): string {
  const p = url.split("?")[0]!;
  if (p.startsWith("/api/trpc/")) {
    const names = p.slice(10).split(",");
    if (names.length > 1) return "trpc:batch";
    return procedures.has(names[0]!) ? `trpc:${names[0]}` : "trpc:unknown";
  }
  if (p.startsWith("/api/")) {
    const shaped = p.replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi, ":id");
    return KNOWN_API.some((re) => re.test(shaped)) ? shaped : "api:other";
  }
  return p.startsWith("/_next/") ? "static" : "page";
}
