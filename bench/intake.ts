// Intake throughput through the real HTTP endpoint (next start) into a real
// PostgreSQL (fsync on): submitBatch with 1000 commands per call, and single
// submits from 32 concurrent clients with their latency percentiles.
// Usage: npm run bench:intake [-- --runs 3 --seconds 10]
// Targets (issue #2): ≥ 10,000 commands/s by batch; ≥ 1,500/s single with p99 < 50 ms.
// Each run also prints the CPU time the web process and PostgreSQL spent per command: on a
// shared 2-core machine commands/s swings by tens of percent with its load, CPU per command far less.
import os from "node:os";
import path from "node:path";
import { execFile, spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { clusterPids, cpuMeter, startDatabase, startWeb, percentile, median, fmt, benchToken } from "./lib";
import { createDb } from "../server/db/client";

const { values } = parseArgs({
  options: {
    runs: { type: "string", default: "3" },
    seconds: { type: "string", default: "10" },
    batches: { type: "string", default: "40" },
  },
});
const RUNS = Number(values.runs);
const SECONDS = Number(values.seconds);
const BATCHES = Number(values.batches);

const database = await startDatabase();
const db = createDb(database.url, { max: 2 });
const { token } = await benchToken(db);
await db.close();
const web = await startWeb({ DATABASE_URL: database.url, DB_POOL_SIZE: "20" });

/** CPU per command (µs) of the web process and of the database, over what `run` submits. */
async function measured<T>(commands: (r: T) => number, run: () => Promise<T>) {
  const webCpu = cpuMeter(() => [web.child.pid!]);
  const pgCpu = cpuMeter(() => clusterPids(database.dataDir));
  const r = await run();
  const n = commands(r);
  return { r, webUs: (webCpu.take() * 10_000) / n, pgUs: (pgCpu.take() * 10_000) / n };
}
const cpuText = (c: { webUs: number; pgUs: number }) =>
  `(web ${fmt(c.webUs)} µs, PostgreSQL ${fmt(c.pgUs)} µs CPU/cmd)`;

const headers = { authorization: `Bearer ${token}`, "content-type": "application/json" };
const cmd = (i: number) => ({
  type: "http",
  payload: { url: "https://backend.example/pay", body: { order: i, amount: 12.5, currency: "EUR" } },
  idempotencyKey: `k-${process.pid}-${i}-${Math.random()}`,
});

async function post(path: string, body: unknown) {
  const res = await fetch(`${web.url}/api/trpc/${path}`, { method: "POST", headers, body: JSON.stringify(body) });
  if (res.status !== 200) throw new Error(`${path}: HTTP ${res.status} ${await res.text()}`);
  return res.json();
}

// warm-up: compile routes, fill pools
for (let i = 0; i < 3; i++)
  await post("intake.submitBatch", { commands: Array.from({ length: 1000 }, (_, j) => cmd(j)) });
await Promise.all(Array.from({ length: 32 }, (_, i) => post("intake.submit", cmd(i))));

async function batchRun() {
  const bodies = Array.from({ length: BATCHES }, (_, b) => ({
    commands: Array.from({ length: 1000 }, (_, j) => cmd(b * 1000 + j)),
  }));
  const t0 = performance.now();
  // two calls in flight, as two client threads would
  let next = 0;
  await Promise.all(
    [0, 1].map(async () => {
      while (next < bodies.length) await post("intake.submitBatch", bodies[next++]);
    }),
  );
  return (BATCHES * 1000) / ((performance.now() - t0) / 1000);
}

// wrk (Debian package `wrk`) is a far lighter load generator than a Node.js
// loop on the same 2 cores; use it when present.
const hasWrk = spawnSync("wrk", ["--version"]).error === undefined;
const luaFile = path.join(os.tmpdir(), `conveyor-bench-${process.pid}.lua`);
writeFileSync(
  luaFile,
  [
    `wrk.method = "POST"`,
    `wrk.headers["Content-Type"] = "application/json"`,
    `wrk.headers["Authorization"] = "Bearer ${token}"`,
    `local n = 0`,
    `request = function() n = n + 1; return wrk.format(nil, nil, nil, '{"type":"http","payload":{"url":"https://backend.example/pay","body":{"order":' .. n .. ',"amount":12.5,"currency":"EUR"}},"idempotencyKey":"w-${process.pid}-' .. math.random(1, 1e9) .. '-' .. n .. '"}') end`,
    `done = function(summary, latency, requests)`,
    `  io.write(string.format("RESULT %d %d %f %f %f %f\\n", summary.requests, summary.duration, latency:percentile(50)/1000, latency:percentile(95)/1000, latency:percentile(99)/1000, summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))`,
    `end`,
  ].join("\n"),
);

async function singleRunWrk() {
  const out = await new Promise<string>((resolve, reject) =>
    execFile(
      "wrk",
      ["-t1", "-c32", `-d${SECONDS}s`, "-s", luaFile, `${web.url}/api/trpc/intake.submit`],
      (err, stdout) => (err ? reject(err) : resolve(stdout)),
    ),
  );
  const m = /RESULT (\d+) (\d+) ([\d.]+) ([\d.]+) ([\d.]+) ([\d.]+)/.exec(out);
  if (!m) throw new Error(`unexpected wrk output: ${out}`);
  if (Number(m[6]) > 0) throw new Error(`wrk saw ${m[6]} errors or non-2xx answers`);
  return {
    count: Number(m[1]),
    rate: Number(m[1]) / (Number(m[2]) / 1e6),
    p50: Number(m[3]),
    p95: Number(m[4]),
    p99: Number(m[5]),
  };
}

async function singleRun() {
  if (hasWrk) return singleRunWrk();
  const latencies: number[] = [];
  const deadline = performance.now() + SECONDS * 1000;
  let i = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: 32 }, async () => {
      while (performance.now() < deadline) {
        const s = performance.now();
        await post("intake.submit", cmd(i++));
        latencies.push(performance.now() - s);
      }
    }),
  );
  const elapsed = (performance.now() - t0) / 1000;
  latencies.sort((a, b) => a - b);
  return {
    count: latencies.length,
    rate: latencies.length / elapsed,
    p50: percentile(latencies, 50),
    p95: percentile(latencies, 95),
    p99: percentile(latencies, 99),
  };
}

const batch: number[] = [];
const single: Awaited<ReturnType<typeof singleRun>>[] = [];
try {
  for (let r = 0; r < RUNS; r++) {
    const b = await measured(() => BATCHES * 1000, batchRun);
    const s = await measured((x) => x.count, singleRun);
    batch.push(b.r);
    single.push(s.r);
    console.log(
      `run ${r + 1}: batch ${fmt(b.r)} cmd/s ${cpuText(b)}; single ${fmt(s.r.rate)} cmd/s ${cpuText(s)},` +
        ` p50 ${fmt(s.r.p50, 1)} ms, p95 ${fmt(s.r.p95, 1)} ms, p99 ${fmt(s.r.p99, 1)} ms`,
    );
  }
} finally {
  web.stop();
  await database.cleanup();
}
const m = {
  batch: median(batch),
  single: median(single.map((s) => s.rate)),
  p50: median(single.map((s) => s.p50)),
  p99: median(single.map((s) => s.p99)),
};
console.log(
  `\nIntake benchmark — ${os.cpus().length} cores, PostgreSQL (embedded, fsync on, Unix socket), npm run web; median of ${RUNS} runs`,
);
console.log(`| measure | result | target |`);
console.log(`|---|---|---|`);
console.log(`| submitBatch (1000/call, 2 in flight) | ${fmt(m.batch)} commands/s | ≥ 10,000 |`);
console.log(
  `| submit, 32 concurrent clients (${hasWrk ? "wrk" : "Node.js fetch loop"}) | ${fmt(m.single)} commands/s | ≥ 1,500 |`,
);
console.log(`| submit latency p50 / p99 | ${fmt(m.p50, 1)} / ${fmt(m.p99, 1)} ms | p99 < 50 ms |`);
process.exit(0);
