// What retention costs PostgreSQL (docs/operations.md §6.1): --commands
// finished commands with their attempt each (an idempotency key each, as the
// SDK sends) are deleted by the pruner's statement (pruneFinished, batches of
// 1,000) until none is left, then the tables are vacuumed; prints deletions/s
// and the CPU of the PostgreSQL processes (from /proc) per command, for both,
// for each of --rounds rounds on one embedded PostgreSQL (fsync on).
// Usage: npm run bench:prune [-- --commands 300000 --rounds 3]
import { parseArgs } from "node:util";
import { startDatabase, fmt, cpuMeter, clusterPids, median, benchToken } from "./lib";
import { createDb } from "../server/db/client";
import { pruneFinished } from "../server/db/retention";

const { values } = parseArgs({
  options: { commands: { type: "string", default: "300000" }, rounds: { type: "string", default: "3" } },
});
const N = Number(values.commands);
const BATCH = 1000;
const database = await startDatabase();
const db = createDb(database.url, { max: 4 });
const { id: clientId } = await benchToken(db);
// succeeded an hour ago, as the workers leave them, each with its attempt
const fill = () =>
  db.pool.query(
    `WITH c AS (
       INSERT INTO commands (id, client_id, type, payload, status, idempotency_key, created_at, updated_at,
                             state_changed_at, finished_at, attempt_count, tries, result)
       SELECT gen_random_uuid(), $1, 'http',
              jsonb_build_object('url', 'https://backend.example/orders/' || i, 'body', jsonb_build_object('order', i, 'amount', '12.50')),
              'succeeded', md5(i::text || random()), t, t, t, t, 1, 1, '{"status":200,"body":{"ok":true}}'
       FROM (SELECT i, now() - interval '1 hour' + i * interval '1 ms' AS t FROM generate_series(1, $2::int) AS i) x
       RETURNING id, created_at)
     INSERT INTO attempts (command_id, number, kind, outcome, started_at, finished_at, worker)
     SELECT id, 1, 'execute', 'success', created_at, created_at, 'bench' FROM c`,
    [clientId, N],
  );
const pg = () => cpuMeter(() => clusterPids(database.dataDir));
const rates: number[] = [];
const deleteUs: number[] = [];
const vacuumUs: number[] = [];
for (let r = 0; r < Number(values.rounds); r++) {
  await db.pool.query("TRUNCATE commands CASCADE");
  await fill();
  await db.pool.query("VACUUM ANALYZE commands");
  await db.pool.query("VACUUM ANALYZE attempts");
  await db.pool.query("CHECKPOINT");
  const cpu = pg();
  const t0 = performance.now();
  let n = 0;
  for (;;) {
    const k = await pruneFinished(db, 1 / 1440, BATCH);
    n += k;
    if (k < BATCH) break;
  }
  rates.push(n / ((performance.now() - t0) / 1000));
  deleteUs.push((cpu.take() * 10_000) / n);
  const vac = pg();
  await db.pool.query("VACUUM commands");
  await db.pool.query("VACUUM attempts");
  vacuumUs.push((vac.take() * 10_000) / n);
  console.log(
    `round ${r + 1}: ${fmt(n)} deleted at ${fmt(rates.at(-1)!)}/s, PostgreSQL ${fmt(deleteUs.at(-1)!, 1)} µs CPU/command; the VACUUM after ${fmt(vacuumUs.at(-1)!, 1)} µs/command`,
  );
}
console.log(
  `\nmedians: ${fmt(median(rates))} deletions/s (one pruner), ${fmt(median(deleteUs), 1)} µs + ${fmt(median(vacuumUs), 1)} µs (VACUUM) of PostgreSQL CPU per command`,
);
await db.close();
await database.cleanup();
