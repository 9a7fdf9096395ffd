// The console's queries with 1,000,000 commands in the table (spread over
// states and types), through the real tRPC endpoint: the first page of
// commands.list filtered by state, searched by text (failure, error, payload,
// idempotency key), and commands.counts.
// Targets (issues #4, #19): p95 under 100 ms for the list, under 250 ms for the counts, at 10,000,000 commands.
// Usage: npm run bench:console [-- --rows 1000000 --requests 200 --q-requests 200]
// (--q-requests: requests per text search; a search that scans the whole table takes seconds each)
import os from "node:os";
import { parseArgs } from "node:util";
import { startDatabase, startWeb, percentile, fmt, benchToken } from "./lib";
import { createDb } from "../server/db/client";

const { values } = parseArgs({
  options: {
    rows: { type: "string", default: "1000000" },
    requests: { type: "string", default: "200" },
    "q-requests": { type: "string" },
  },
});
const ROWS = Number(values.rows);
const REQUESTS = Number(values.requests);
const Q_REQUESTS = Number(values["q-requests"] ?? values.requests);

const database = await startDatabase();
const db = createDb(database.url, { max: 2 });
const { token, id: clientId } = await benchToken(db, "admin");
const t = performance.now();
// States weighted like a busy production table: mostly finished, some waiting, a few needing an operator.
// Failed ones hold an HTTP failure (1 in 100 a declined card, the rest insufficient funds); one command in 10 has an idempotency key.
// In statements of at most 1,000,000 rows (each statement's new rows are kept for the trigger that counts the
// finished ones).
for (let from = 1; from <= ROWS; from += 1_000_000)
  await db.pool.query(
    `INSERT INTO commands (id, client_id, type, payload, status, priority, run_at, created_at, updated_at, state_changed_at, finished_at, lease_id, locked_by, locked_until, error, failure, idempotency_key, attempt_count)
   SELECT gen_random_uuid(), $1, (ARRAY['http','payment.capture','ledger.post','email.send'])[1 + (i % 4)],
          jsonb_build_object('url', 'https://backend.example/orders/' || i, 'body', jsonb_build_object('order', i, 'amount', i % 1000)),
          s, 0, created, created, created, created,
          CASE WHEN s IN ('succeeded','failed','exception','compensated','cancelled') THEN created + interval '2 seconds' END,
          CASE WHEN s = 'running' THEN gen_random_uuid() END, CASE WHEN s = 'running' THEN 'bench' END, CASE WHEN s = 'running' THEN now() + interval '1 hour' END,
          CASE WHEN s IN ('exception','retrying') THEN 'HTTP 503' END,
          CASE WHEN s = 'failed' THEN jsonb_build_object('status', 422, 'body', jsonb_build_object('code', CASE WHEN i % 100 = 0 THEN 'card_declined' ELSE 'insufficient_funds' END)) END,
          CASE WHEN i % 10 = 0 THEN 'order-' || i END, 1
   FROM (SELECT i, now() - (i || ' seconds')::interval / 10 AS created,
                (CASE WHEN r < 0.80 THEN 'succeeded' WHEN r < 0.86 THEN 'failed' WHEN r < 0.88 THEN 'exception' WHEN r < 0.93 THEN 'pending'
                      WHEN r < 0.95 THEN 'retrying' WHEN r < 0.96 THEN 'awaiting'
                      -- leased (running) only among the newest 40,000: a few hundred, as a fleet of workers holds them
                      WHEN r < 0.965 THEN (CASE WHEN i <= 40000 THEN 'running' ELSE 'succeeded' END) WHEN r < 0.97 THEN 'compensating'
                      WHEN r < 0.98 THEN 'compensated' ELSE 'cancelled' END)::command_status AS s
         FROM (SELECT i, random() AS r FROM generate_series($2::int, $3::int) AS i) x) y`,
    [clientId, from, Math.min(ROWS, from + 999_999)],
  );
await db.pool.query("VACUUM ANALYZE commands");
console.log(`loaded ${fmt(ROWS)} commands in ${fmt((performance.now() - t) / 1000, 1)} s`);
const web = await startWeb({ DATABASE_URL: database.url });
const headers = { authorization: `Bearer ${token}` };
const get = async (path: string, input?: unknown) => {
  const s = performance.now();
  const res = await fetch(
    `${web.url}/api/trpc/${path}${input === undefined ? "" : `?input=${encodeURIComponent(JSON.stringify(input))}`}`,
    { headers },
  );
  if (res.status !== 200) throw new Error(`${path}: ${res.status} ${await res.text()}`);
  await res.arrayBuffer();
  return performance.now() - s;
};

const measure = async (name: string, fn: () => Promise<number>, requests = REQUESTS) => {
  for (let i = 0; i < Math.min(10, requests); i++) await fn(); // warm-up
  const xs: number[] = [];
  for (let i = 0; i < requests; i++) xs.push(await fn());
  xs.sort((a, b) => a - b);
  const r = { name, p50: percentile(xs, 50), p95: percentile(xs, 95), p99: percentile(xs, 99) };
  console.log(`${name}: p50 ${fmt(r.p50, 1)} ms, p95 ${fmt(r.p95, 1)} ms`);
  return r;
};
const results = [];
try {
  results.push(
    await measure("commands.list {status:[exception]}, first page (50)", () =>
      get("commands.list", { status: ["exception"] }),
    ),
  );
  results.push(
    await measure("commands.list {status:[failed,exception]}, first page (50)", () =>
      get("commands.list", { status: ["failed", "exception"] }),
    ),
  );
  results.push(
    await measure("commands.list {type}, first page (50)", () => get("commands.list", { type: "ledger.post" })),
  );
  results.push(await measure("commands.list {}, first page (50)", () => get("commands.list", {})));
  // Text searches: rare (failure text), nowhere, everywhere (payload), within states, an exact idempotency key.
  const key = `order-${Math.floor(ROWS / 20) * 10}`;
  for (const input of [
    { q: "card declined" },
    { q: "no-such-text" },
    { q: "backend.example" },
    { status: ["failed", "exception"], q: "card declined" },
    { q: key },
  ]) {
    results.push(
      await measure(
        `commands.list ${JSON.stringify(input).replace(key, "<key>")}, first page (50)`,
        () => get("commands.list", input),
        Q_REQUESTS,
      ),
    );
  }
  results.push(await measure("commands.counts", () => get("commands.counts")));
  results.push(await measure("commands.overview (counts, throughput, waiting)", () => get("commands.overview")));
  // For comparison, the counts as they were read before finished_counts: every unleased command's index entry.
  results.push(
    await measure(
      "(before finished_counts) counting the table, SQL alone",
      async () => {
        const s = performance.now();
        await db.pool.query(
          `WITH open AS (SELECT status, count(*)::int AS n FROM commands WHERE status <> 'succeeded' AND lease_id IS NULL GROUP BY status),
                leased AS (SELECT status, count(*)::int AS n FROM commands WHERE locked_until IS NOT NULL GROUP BY status)
           SELECT status::text, n FROM open UNION ALL SELECT status::text, n FROM leased
           UNION ALL SELECT 'succeeded', (SELECT count(*)::int FROM commands WHERE lease_id IS NULL) - (SELECT COALESCE(sum(n), 0)::int FROM open)`,
        );
        return performance.now() - s;
      },
      Math.min(REQUESTS, 30),
    ),
  );
} finally {
  web.stop();
  await db.close();
  await database.cleanup();
}
console.log(
  `\nConsole benchmark — ${os.cpus().length} cores, ${fmt(ROWS)} commands, PostgreSQL (embedded), through /api/trpc, ${REQUESTS} sequential requests each (${Q_REQUESTS} per text search)`,
);
console.log("| query | p50 (ms) | p95 (ms) | p99 (ms) | target p95 |");
console.log("|---|---|---|---|---|");
for (const r of results)
  console.log(
    `| ${r.name} | ${fmt(r.p50, 1)} | ${fmt(r.p95, 1)} | ${fmt(r.p99, 1)} | ${r.name.startsWith("commands.counts") ? "< 250" : r.name.startsWith("commands.list") ? "< 100" : ""} |`,
  );
process.exit(0);
