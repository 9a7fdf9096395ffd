// A Conveyor worker process for benchmarks: the real worker loop (startWorker)
// with a `noop` type beside http. Prints START <id> <ms> when asked to report.
import os from "node:os";
import { noopType } from "./conveyor";
import { createDb } from "../server/db/client";
import { createLogger } from "../server/log";
import { startListener } from "../server/db/listener";
import { createRegistry } from "../server/command-types/registry";
import { http } from "../server/command-types/http";
import { resolveSecretKey } from "../server/db/settings";
import { startWorker } from "../server/worker/worker";
import { createOutboundFetch, createUrlGuard } from "../server/outbound/url-guard";
import { createWorkerMetrics, startMetricsPush } from "../server/worker/metrics";
import { parseEnv } from "../server/env";
import { startConfiguredTracing } from "../server/tracing-start";
import { stopTracing } from "../server/lib/tracing";
import { pruner } from "../server/worker/pruner";

const url = process.env.DATABASE_URL!;
const concurrency = Number(process.env.WORKER_CONCURRENCY ?? 10);
const noop = noopType((id) =>
  process.stdout.write(`START ${id} ${performance.timeOrigin + performance.now()}
`),
);
const db = createDb(url, { max: concurrency + 4, applicationName: "conveyor-bench-worker" });
const listener = startListener(url);
const log = createLogger({ name: "bench-worker", level: "warn" });
const workerId = `${os.hostname()}:${process.pid}`;
// as in production: spans exported only when OTEL_EXPORTER_OTLP_ENDPOINT is set (bench:engine --tracing)
await startConfiguredTracing(parseEnv(), "conveyor-worker", log);
// as in production (server/worker/main.ts): metrics recorded and saved
const metrics = createWorkerMetrics();
const metricsPush = startMetricsPush({ db, log, workerId, metrics });
const worker = startWorker({
  db,
  registry: createRegistry([http, noop]),
  log,
  workerId,
  metrics,
  concurrency,
  listener,
  secretKey: () => resolveSecretKey(db, undefined),
  // As server/worker/main.ts wires them: HTTP_ALLOWED_HOSTS checked before every request of the http type.
  checkUrl: createUrlGuard(process.env.HTTP_ALLOWED_HOSTS),
  fetch: createOutboundFetch(process.env.HTTP_ALLOWED_HOSTS),
  callbacks: false,
  ...(process.env.BENCH_COMPLETION_LINGER_MS
    ? { completionLingerMs: Number(process.env.BENCH_COMPLETION_LINGER_MS) }
    : {}),
});
// BENCH_RETENTION_MINUTES (bench:soak): the production pruner (server/worker/main.ts runs it), with a retention
// of minutes instead of RETENTION_DAYS, every BENCH_PRUNE_EVERY_MS (the production period, 5 s, by default).
const retention = process.env.BENCH_RETENTION_MINUTES
  ? pruner({
      db,
      log,
      days: Number(process.env.BENCH_RETENTION_MINUTES) / 1440,
      ...(process.env.BENCH_PRUNE_EVERY_MS ? { everyMs: Number(process.env.BENCH_PRUNE_EVERY_MS) } : {}),
    })
  : null;
retention?.start();
listener.onConnect(() => process.stdout.write("READY\n"));
process.on("SIGTERM", async () => {
  await retention?.stop();
  await worker.stop();
  await metricsPush.stop();
  await listener.close();
  await db.close();
  await stopTracing();
  process.exit(0);
});
