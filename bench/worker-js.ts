// The worker's own JavaScript cost per command, without PostgreSQL: the real
// worker loop (startWorker, runClaimed, metrics, completion documents) against
// a stand-in pool that answers claims with rows shaped like PostgreSQL's and
// completions with their ids. Not a substitute for bench:engine (no driver,
// no socket, no database): a steady figure, free of the database's noise, for
// changes to the worker's hot path. Compiled as npm run worker compiles the worker (scripts/worker.mjs).
// Usage: npm run bench:worker-js [-- --jobs 100000 --rounds 5]
import { randomUUID } from "node:crypto";
import { parseArgs } from "node:util";
import { createRegistry } from "../server/command-types/registry";
import { http } from "../server/command-types/http";
import { noopType } from "./conveyor";
import { startWorker } from "../server/worker/worker";
import { createLogger } from "../server/log";
import { createWorkerMetrics } from "../server/worker/metrics";
import type { Db } from "../server/db/client";

const { values } = parseArgs({
  options: { jobs: { type: "string", default: "100000" }, rounds: { type: "string", default: "5" } },
});
const N = Number(values.jobs);
const ROUNDS = Number(values.rounds);
const noop = noopType();
const registry = createRegistry([http, noop]);

let issued = 0;
let done = 0;
let standInMs = 0;
let allDone: () => void = () => {};
const ids = Array.from({ length: 20_000 }, () => randomUUID());
const pool = {
  query: async (q: { text: string; values: unknown[] } | string, vals?: unknown[]) => {
    const t0 = performance.now();
    const text = typeof q === "string" ? q : q.text;
    const args = (typeof q === "string" ? vals : q.values) ?? [];
    let rows: unknown[] = [];
    if (text.includes("WITH due AS")) {
      const n = Math.min(Number(args[1]), N - issued);
      for (let i = 0; i < n; i++) {
        const k = issued++;
        rows.push({
          id: ids[k % ids.length],
          lease_id: randomUUID(),
          type: "noop",
          payload: {},
          status: "running",
          phase: "execute",
          tries: 0,
          attempt_count: 0,
          needs_reconcile: false,
          max_attempts: null,
          backoff_ms: null,
          max_backoff_ms: null,
          state_changed_at: new Date(),
          client_id: "c",
          run_at: new Date(),
          trace_parent: null,
          trace_state: null,
        });
      }
    } else if (text.includes("WITH input AS")) {
      rows = (JSON.parse(String(args[0])) as { id: string }[]).map((r) => ({ id: r.id }));
      done += rows.length;
      if (done >= N) allDone();
    }
    standInMs += performance.now() - t0;
    await new Promise((r) => setImmediate(r)); // answers arrive on a later turn, as from a socket
    return { rows, rowCount: rows.length };
  },
};
const db = { pool, prisma: null, close: async () => {} } as unknown as Db;

const figures: number[] = [];
/** The process's CPU time per command (user + system, the stand-in's included): steadier than wall time on a busy machine. */
const cpuFigures: number[] = [];
for (let round = 0; round < ROUNDS; round++) {
  issued = done = standInMs = 0;
  const finished = new Promise<void>((r) => (allDone = r));
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const w = startWorker({
    db,
    registry,
    log: createLogger({ name: "bench", level: "warn" }),
    workerId: "bench:1",
    concurrency: 10,
    metrics: createWorkerMetrics(),
    secretKey: async () => Buffer.alloc(32),
    callbacks: false,
    rescueEveryMs: 3_600_000,
  });
  await finished;
  const ms = performance.now() - t0 - standInMs;
  const cpu = process.cpuUsage(cpu0);
  cpuFigures.push((cpu.user + cpu.system) / N);
  await w.stop();
  figures.push((ms * 1000) / N);
  console.log(
    `round ${round + 1}: ${((ms * 1000) / N).toFixed(1)} µs of worker JavaScript per command (${Math.round(N / (ms / 1000)).toLocaleString("en-US")} commands/s on one core); process CPU ${cpuFigures.at(-1)!.toFixed(1)} µs per command`,
  );
}
const sorted = [...figures].sort((a, b) => a - b);
console.log(
  `\nWorker JavaScript per no-op command, median of ${ROUNDS} rounds of ${N.toLocaleString("en-US")}: ${sorted[Math.floor(ROUNDS / 2)]!.toFixed(1)} µs (the stand-in pool's own time excluded); process CPU per command, median ${[...cpuFigures].sort((a, b) => a - b)[Math.floor(ROUNDS / 2)]!.toFixed(1)} µs`,
);
process.exit(0);
