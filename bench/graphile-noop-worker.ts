// graphile-worker 0.17.3 doing the same no-op (or http) work, with its defaults or with
// the high-throughput settings its performance docs recommend (local queue and
// batched completion). Prints START <id> <ms> for jobs that ask to report.
import { run, Logger } from "graphile-worker";

const batched = process.env.GW_MODE === "batched";
const runner = await run({
  connectionString: process.env.DATABASE_URL!,
  concurrency: Number(process.env.WORKER_CONCURRENCY ?? 10),
  noHandleSignals: true,
  pollInterval: 2000,
  // quiet, like Conveyor's worker at LOG_LEVEL=warn: per-job log lines would cost it throughput
  logger: new Logger(() => () => {}),
  ...(batched
    ? { preset: { worker: { localQueue: { size: 11 }, completeJobBatchDelay: 25, failJobBatchDelay: 25 } } }
    : {}),
  taskList: {
    // bench:engine --type http: the same POST as Conveyor's http commands, with Node's fetch (keep-alive).
    http: async (payload: any) => {
      const res = await fetch(payload.url, {
        method: "POST",
        headers: { "content-type": "application/json", "idempotency-key": String(payload.key) },
        body: JSON.stringify(payload.body),
      });
      const text = await res.text();
      if (res.status < 200 || res.status >= 300) throw new Error(`HTTP ${res.status}: ${text}`);
    },
    noop: async (payload: any, helpers) => {
      if (payload?.report)
        process.stdout.write(`START ${helpers.job.id} ${performance.timeOrigin + performance.now()}\n`);
    },
  },
});
process.stdout.write("READY\n");
process.on("SIGTERM", async () => {
  await runner.stop();
  process.exit(0);
});
