// What a latency alert rule costs (DESIGN §9: "cheap at a million commands per
// hour: measure it"): the evaluator's own statement (server/db/alerts.ts
// measureValue: percentile_cont over the commands finished in the window) on a
// table with 1,000,000 commands finished in the last hour and BENCH_OLDER
// (default 2,000,000) finished in the four hours before, with and without
// commands_finished_at_idx, at the default work_mem and at 32 MB; the slowest
// commands an alert shows (evidenceOf), and the failure-rate rule, which the
// index serves too. Then what the index costs a finish: 50,000 commands
// finished 500 a statement, with and without it.
// Prints the medians of 7 runs (after 2 warm-up runs) and the EXPLAIN of each.
// Usage: npm run bench:alert-latency
import type pg from "pg";
import { startDatabase, median, fmt, benchToken } from "./lib";
import { createDb } from "../server/db/client";
import { evidenceOf, measureValue, type RuleRow } from "../server/db/alerts";

const IN_WINDOW = Number(process.env.BENCH_IN_WINDOW ?? 1_000_000);
const OLDER = Number(process.env.BENCH_OLDER ?? 2_000_000);
const RUNS = 7;

const database = await startDatabase();
const db = createDb(database.url, { max: 4 });
const { id: clientId } = await benchToken(db);

/**
 * Finished commands as intake and the worker leave them: an http payload, a
 * result, a mix of types (http 60 %, four others) and outcomes (97 %
 * succeeded), received over `[fromS, toS)` seconds ago and finished after a
 * latency spread from 50 ms to 20 s (log-uniform: most are fast).
 */
async function fill(n: number, fromS: number, toS: number) {
  const chunk = 100_000;
  for (let i = 0; i < n; i += chunk) {
    await db.pool.query(
      `WITH g AS (
         SELECT g, random() AS r, random() AS o, now() - make_interval(secs => $3::float8 + random() * ($4::float8 - $3::float8)) AS received,
                0.05 * exp(random() * ln(400)) AS took
         FROM generate_series(1, $2::int) AS g)
       INSERT INTO commands (id, client_id, type, payload, status, result, error, attempt_count, tries,
                             created_at, updated_at, state_changed_at, finished_at, run_at)
       SELECT gen_random_uuid(), $1,
              CASE WHEN r < 0.6 THEN 'http' WHEN r < 0.75 THEN 'ledger.post' WHEN r < 0.88 THEN 'payment.capture'
                   WHEN r < 0.97 THEN 'email.send' ELSE 'report.build' END,
              jsonb_build_object('method', 'POST', 'url', 'https://backend.example/orders/' || g, 'body', jsonb_build_object('order', g)),
              (CASE WHEN o < 0.97 THEN 'succeeded' WHEN o < 0.99 THEN 'failed' ELSE 'exception' END)::command_status,
              CASE WHEN o < 0.97 THEN jsonb_build_object('status', 200, 'body', jsonb_build_object('ok', true)) END,
              CASE WHEN o >= 0.97 THEN 'HTTP 422' END,
              1, 1, received, received + make_interval(secs => took), received + make_interval(secs => took),
              LEAST(received + make_interval(secs => took), now()), received
       FROM g`,
      [clientId, Math.min(chunk, n - i), fromS, toS],
    );
  }
}

const t0 = performance.now();
await fill(OLDER, 3600, 5 * 3600);
await fill(IN_WINDOW, 0, 3600);
// and what is not finished: pending and running commands, never in the index
await db.pool.query(
  `INSERT INTO commands (id, client_id, type, payload, run_at)
   SELECT gen_random_uuid(), $1, 'http', jsonb_build_object('url', 'https://backend.example/' || g), now() + interval '1 day'
   FROM generate_series(1, 20000) g`,
  [clientId],
);
await db.pool.query("VACUUM ANALYZE commands");
const fillS = (performance.now() - t0) / 1000;
const counts = (
  await db.pool.query<{ total: number; window: number; size: string; idx: string }>(
    `SELECT count(*)::int AS total, count(*) FILTER (WHERE finished_at >= now() - interval '1 hour')::int AS window,
            pg_size_pretty(pg_table_size('commands')) AS size,
            pg_size_pretty(pg_relation_size('commands_finished_at_idx')) AS idx
     FROM commands`,
  )
).rows[0]!;

const rule = (r: Partial<RuleRow>): RuleRow => ({
  id: "00000000-0000-4000-8000-000000000000",
  name: "bench",
  kind: "latency",
  states: [],
  type: null,
  window_seconds: 3600,
  age_seconds: null,
  percentile: 95,
  threshold: 10,
  recipients: [],
  webhooks: [],
  cooldown_seconds: 3600,
  notify_on_resolve: false,
  enabled: true,
  silenced_until: null,
  firing: false,
  firing_since: null,
  last_sent_at: null,
  last_value: null,
  ...r,
});

/** The evaluator's statement, run as the evaluator runs it (one transaction), `RUNS` times after 2 warm-ups. */
async function time(fn: (c: pg.PoolClient) => Promise<unknown>, workMem?: string): Promise<{ ms: number; v: unknown }> {
  const c = await db.pool.connect();
  try {
    const out: number[] = [];
    let v: unknown;
    for (let i = 0; i < RUNS + 2; i++) {
      await c.query("BEGIN");
      if (workMem) await c.query(`SET LOCAL work_mem = '${workMem}'`);
      const s = performance.now();
      v = await fn(c);
      if (i >= 2) out.push(performance.now() - s);
      await c.query("COMMIT");
    }
    return { ms: median(out), v };
  } finally {
    c.release();
  }
}

/** EXPLAIN (ANALYZE, BUFFERS) of the statement measureValue sends, caught on its way to the database. */
async function explain(fn: (c: pg.PoolClient) => Promise<unknown>, workMem?: string): Promise<string> {
  const c = await db.pool.connect();
  try {
    await c.query("BEGIN");
    if (workMem) await c.query(`SET LOCAL work_mem = '${workMem}'`);
    let plan = "";
    const spy = {
      query: async (sql: string, params?: unknown[]) => {
        const r = await c.query(`EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) ${sql}`, params);
        plan = r.rows.map((x) => x["QUERY PLAN"]).join("\n");
        return { rows: [{ v: 0 }] };
      },
    } as unknown as pg.PoolClient;
    await fn(spy);
    await c.query("ROLLBACK");
    return plan;
  } finally {
    c.release();
  }
}

type Case = { name: string; fn: (c: pg.PoolClient) => Promise<unknown> };
const cases: Case[] = [
  { name: "latency p95, any type, 1 h window", fn: (c) => measureValue(c, rule({})) },
  { name: "latency p95, type http (60 %), 1 h", fn: (c) => measureValue(c, rule({ type: "http" })) },
  {
    name: "latency p99, type report.build (3 %), 1 h",
    fn: (c) => measureValue(c, rule({ type: "report.build", percentile: 99 })),
  },
  { name: "latency p95, any type, 5 min window", fn: (c) => measureValue(c, rule({ window_seconds: 300 })) },
  { name: "latency: the 5 slowest (an alert's evidence), 1 h", fn: (c) => evidenceOf(c, rule({})) },
  {
    name: "failure rate, any type, 1 h (same index)",
    fn: (c) => measureValue(c, rule({ kind: "rate", threshold: 0.1 })),
  },
  {
    name: "failure rate, any type, 5 min",
    fn: (c) => measureValue(c, rule({ kind: "rate", threshold: 0.1, window_seconds: 300 })),
  },
];

const results: { name: string; idx4: number; idx32: number; none4: number; v: unknown }[] = [];
const plans: string[] = [];
for (const k of cases) {
  const a = await time(k.fn);
  const b = await time(k.fn, "32MB");
  results.push({ name: k.name, idx4: a.ms, idx32: b.ms, none4: Number.NaN, v: a.v });
}
for (const [i, k] of cases.entries())
  if ([0, 1, 3].includes(i)) plans.push(`-- ${k.name}, work_mem default (4MB)\n${await explain(k.fn)}`);
plans.push(`-- ${cases[0]!.name}, work_mem 32MB\n${await explain(cases[0]!.fn, "32MB")}`);

// The same without the index (as before this change).
await db.pool.query(`DROP INDEX commands_finished_at_idx`);
for (const [i, k] of cases.entries()) results[i]!.none4 = (await time(k.fn)).ms;
plans.push(`-- ${cases[3]!.name}, without commands_finished_at_idx\n${await explain(cases[3]!.fn)}`);

// What the index costs a finish: 50,000 running commands finished 500 a statement, without and with
// it, alternately (so that the table's growth and autovacuum weigh on both alike), 3 rounds each.
async function finishRound(): Promise<number> {
  const { rows } = await db.pool.query<{ id: string }>(
    `INSERT INTO commands (id, client_id, type, payload, status, lease_id, locked_by, locked_until, attempt_started_at)
     SELECT gen_random_uuid(), $1, 'http', jsonb_build_object('url', 'https://backend.example/' || g), 'running',
            gen_random_uuid(), 'bench', now() + interval '1 hour', now()
     FROM generate_series(1, 50000) g RETURNING id`,
    [clientId],
  );
  const ids = rows.map((x) => x.id);
  await db.pool.query("VACUUM ANALYZE commands");
  const s = performance.now();
  for (let i = 0; i < ids.length; i += 500)
    await db.pool.query(
      `UPDATE commands SET status = 'succeeded', result = '{"ok":true}', lease_id = NULL, locked_by = NULL, locked_until = NULL
       WHERE id = ANY($1::uuid[])`,
      [ids.slice(i, i + 500)],
    );
  return performance.now() - s;
}
const without: number[] = [];
const withIt: number[] = [];
for (let r = 0; r < 3; r++) {
  without.push(await finishRound());
  await db.pool.query(`CREATE INDEX commands_finished_at_idx ON commands (finished_at) WHERE finished_at IS NOT NULL`);
  withIt.push(await finishRound());
  await db.pool.query(`DROP INDEX commands_finished_at_idx`);
}
const withoutIdx = median(without);
const withIdx = median(withIt);

console.log(
  `\nAlert rules over finished commands — one PostgreSQL (embedded, fsync on), ${fmt(counts.total)} commands ` +
    `(${fmt(counts.window)} finished in the last hour, ${fmt(OLDER)} in the 4 hours before, 20,000 unfinished), ` +
    `table ${counts.size}, commands_finished_at_idx ${counts.idx}; filled in ${fmt(fillS)} s. Medians of ${RUNS} runs, ms.`,
);
console.log(
  "| rule statement (measureValue / evidenceOf) | with index | with index, work_mem 32MB | without index | value |",
);
console.log("|---|---|---|---|---|");
for (const r of results)
  console.log(
    `| ${r.name} | ${fmt(r.idx4, 1)} | ${fmt(r.idx32, 1)} | ${fmt(r.none4, 1)} | ${typeof r.v === "number" ? fmt(r.v, 3) : `${(r.v as { worst: unknown[] }).worst.length} commands`} |`,
  );
console.log(
  `\nFinishing 50,000 running commands, 500 a statement (median of 3 alternate rounds): ${fmt(withoutIdx)} ms without the index, ${fmt(withIdx)} ms with it` +
    ` (${fmt(((withIdx - withoutIdx) / 50_000) * 1000, 1)} µs a command).`,
);
console.log(`\n${plans.join("\n\n")}`);

await db.close();
await database.cleanup();
process.exit(0);
