// `npm run worker`: one worker process. Any number may run, on any number of
// machines; they coordinate only through PostgreSQL. SIGTERM/SIGINT: stop
// claiming, let running attempts finish (WORKER_GRACE_MS), hand back the rest.
import os from "node:os";
import { envOrExit } from "../env";
import { createDb } from "../db/client";
import { createLogger } from "../log";
import { resolveSecretKey, SecretKeyMismatch } from "../db/settings";
import { ensureBootstrapToken } from "../auth/tokens";
import { startListener } from "../db/listener";
import { registry } from "../command-types";
import { createOutboundFetch, createUrlGuard } from "../outbound/url-guard";
import { resultEndpoint } from "../commands/inbound";
import { createWorker, type Worker } from "./worker";
import { sleep } from "../lib/wake";
import { startMailer } from "../alerts/mailer";
import { pruner } from "./pruner";
import { alertEvaluator } from "./alert-evaluator";
import { alertWebhookSender } from "./alert-webhooks";
import { serviceGroup, started } from "./service";
import { createWorkerMetrics, startMetricsPush } from "./metrics";
import { startConfiguredTracing } from "../tracing-start";
import { stopTracing } from "../lib/tracing";

/** What a stopping worker tells `npm start` (scripts/start.ts) over IPC: attempts still running, and its grace period. */
export type StopReport = { conveyor: "worker-stopping"; running: number; graceMs: number };
/** What a worker tells `npm start` once its services run, so that "Conveyor is running" is said only then. */
export type StartReport = { conveyor: "worker-started" };

async function main() {
  const e = envOrExit();
  if (!e.DATABASE_URL) {
    console.error(
      "DATABASE_URL is not set: the worker needs the database (npm start sets it for the embedded PostgreSQL).",
    );
    process.exit(1);
  }
  const url = e.DATABASE_URL;
  const workerId = `${os.hostname()}:${process.pid}`;
  const log = createLogger({ name: "worker", level: e.LOG_LEVEL }).child({ worker: workerId });
  const db = createDb(url, { max: Math.min(e.WORKER_CONCURRENCY + 4, 50), applicationName: "conveyor-worker" });
  await startConfiguredTracing(e, "conveyor-worker", log);

  // The database may not be up yet (or restarting): wait for it rather than exit.
  let key: Buffer | undefined;
  for (let i = 0; !key; i++) {
    try {
      key = await resolveSecretKey(db, e.SECRET_KEY);
    } catch (err) {
      if (err instanceof SecretKeyMismatch) {
        log.fatal(err.message);
        console.error(err.message);
        process.exit(1);
      }
      log.warn({ err: String(err) }, "database not reachable yet; retrying");
      await sleep(Math.min(5000, 200 * 2 ** i));
    }
  }
  if (e.BOOTSTRAP_API_TOKEN) await ensureBootstrapToken(db, key, e.BOOTSTRAP_API_TOKEN);

  const listener = startListener(e.DATABASE_LISTEN_URL ?? url, {
    applicationName: "conveyor-worker-listen",
    log: (msg, err) => log.warn({ err: String(err) }, msg),
  });
  const checkUrl = createUrlGuard(e.HTTP_ALLOWED_HOSTS);
  const outboundFetch = createOutboundFetch(e.HTTP_ALLOWED_HOSTS);
  const metrics = createWorkerMetrics();
  const worker = createWorker({
    db,
    registry,
    log,
    workerId,
    concurrency: e.WORKER_CONCURRENCY,
    listener,
    leaseMs: e.WORKER_LEASE_MS,
    pollMs: e.WORKER_POLL_MS,
    graceMs: e.WORKER_GRACE_MS,
    secretKey: async () => key!,
    resultEndpoint: resultEndpoint(e.PUBLIC_URL, key),
    checkUrl,
    fetch: outboundFetch,
    metrics,
    preparedStatements: e.DB_PREPARED_STATEMENTS,
  });
  // Stopped in the reverse order: the worker first (running attempts finish), the metrics push last (its final snapshot).
  const services = serviceGroup("worker process", [
    started("metrics push", () => startMetricsPush({ db, log, workerId, metrics })),
    pruner({ db, log, days: e.RETENTION_DAYS }),
    // Alerts: every worker evaluates on an interval (the lock keeps it to one at a time) and sends deliveries.
    started("alert mailer", () =>
      startMailer({ db, log, publicUrl: e.PUBLIC_URL, smtpUrl: e.SMTP_URL, from: e.ALERT_FROM, listener, metrics }),
    ),
    // Alert webhooks: through HTTP_ALLOWED_HOSTS and the same rebinding-proof connection as commands and callbacks.
    alertWebhookSender({
      db,
      log,
      workerId,
      listener,
      secretKey: async () => key!,
      checkUrl,
      fetch: outboundFetch,
      metrics,
    }),
    alertEvaluator({ db, log, everyMs: e.ALERT_EVAL_MS, publicUrl: e.PUBLIC_URL, metrics }),
    { name: worker.name, start: worker.start, stop: () => stopReporting(worker, e.WORKER_GRACE_MS) },
  ]);
  services.start();
  log.info(
    {
      concurrency: e.WORKER_CONCURRENCY,
      types: registry.names(),
      email: e.SMTP_URL ? "configured" : "not configured (SMTP_URL unset)",
    },
    "worker started",
  );
  if (process.connected)
    process.send?.({ conveyor: "worker-started" } satisfies StartReport, undefined, undefined, () => {});

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal, running: worker.running, graceMs: e.WORKER_GRACE_MS }, "worker stopping");
    await services.stop();
    await listener.close();
    await db.close();
    await stopTracing().catch((err) => log.warn({ err: String(err) }, "could not send the last spans"));
    log.info("worker stopped");
    process.exit(0);
  };
  process.on("SIGTERM", () => void stop("SIGTERM"));
  process.on("SIGINT", () => void stop("SIGINT"));
}

/** The worker's stop, telling `npm start` (an IPC channel to the supervisor) how many attempts it waits for, as that changes. */
async function stopReporting(worker: Worker, graceMs: number) {
  const tell = (m: StopReport) => {
    if (process.connected) process.send?.(m, undefined, undefined, () => {});
  };
  let told = worker.running;
  tell({ conveyor: "worker-stopping", running: told, graceMs });
  const progress = setInterval(() => {
    if (worker.running !== told) tell({ conveyor: "worker-stopping", running: (told = worker.running), graceMs });
  }, 100);
  await worker.stop();
  clearInterval(progress);
  if (told !== 0) tell({ conveyor: "worker-stopping", running: 0, graceMs });
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
