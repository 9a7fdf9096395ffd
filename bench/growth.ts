// Intake as the history grows (issue #19, point 2): the domain function under
// submitBatch (submitItems, 1,000 commands a call, one caller, as the web
// process runs it for one request) into a real PostgreSQL (embedded, fsync on):
// 20,000 commands into an empty table (emptied before each round), then again
// (one round after another, the history growing by 20,000 a round) after --history commands
// that went through intake and finished (succeeded, VACUUM ANALYZE after, as
// autovacuum leaves a drained history). Each command carries an idempotency
// key, as the SDK sends one on every submit (a v7 key, as newIdempotencyKey makes; --keys v4: random ones,
// as a client making its own; --no-keys: none). Intake makes v7 command ids.
// Prints commands/s for each round and the medians, fresh vs grown, and the
// table's and indexes' sizes.
// Usage: npm run bench:growth [-- --history 400000 --rounds 5 --keys v4 --no-keys]
import { parseArgs } from "node:util";
import { startDatabase, median, fmt, benchToken, keyMaker } from "./lib";
import { createDb } from "../server/db/client";
import { directIntake, submitItems } from "../server/commands/submit";
import { createRegistry } from "../server/command-types/registry";
import { http } from "../server/command-types/http";

const { values } = parseArgs({
  options: {
    history: { type: "string", default: "400000" },
    rounds: { type: "string", default: "5" },
    "no-keys": { type: "boolean", default: false },
    keys: { type: "string", default: "v7" },
  },
});
const HISTORY = Number(values.history);
const ROUNDS = Number(values.rounds);
const KEYS = !values["no-keys"];
const newKey = keyMaker(values.keys);
const PER_ROUND = 20_000;

const database = await startDatabase();
const db = createDb(database.url, { max: 4 });
const { id: clientId } = await benchToken(db);
const intake = directIntake(db, createRegistry([http]));
// Far in the future: nothing claims them, and the claim index holds them as a queue would.
const item = (i: number) => ({
  type: "http",
  payload: { url: `https://backend.example/orders/${i}`, body: { order: i, amount: "12.50" } },
  runAt: "2999-01-01T00:00:00Z",
  ...(KEYS ? { idempotencyKey: newKey() } : {}),
});

let n = 0;
async function submitMany(count: number): Promise<number> {
  const t0 = performance.now();
  for (let i = 0; i < count; i += 1000) {
    const { receipts } = await submitItems(
      intake,
      clientId,
      Array.from({ length: Math.min(1000, count - i) }, () => item(n++)),
    );
    if (receipts.some((r) => !("id" in r))) throw new Error("a command was refused");
  }
  return count / ((performance.now() - t0) / 1000);
}

/** What intake leaves behind once workers have drained it: the pending commands finished. */
async function finishAll() {
  // As a worker takes them: claimed (leased), then finished (lease cleared); the table's triggers check each step.
  for (;;) {
    const { rowCount } = await db.pool.query(
      `UPDATE commands SET status = 'running', lease_id = gen_random_uuid(), locked_by = 'bench',
              locked_until = now() + interval '1 hour', attempt_started_at = now(), state_changed_at = now(), updated_at = now()
       WHERE id IN (SELECT id FROM commands WHERE status = 'pending' LIMIT 50000)`,
    );
    if (!rowCount) break;
    await db.pool.query(
      `UPDATE commands SET status = 'succeeded', lease_id = NULL, locked_by = NULL, locked_until = NULL,
              finished_at = now(), state_changed_at = now(), updated_at = now(),
              attempt_count = 1, tries = 1, result = '{"status":200,"body":{"ok":true}}'
       WHERE status = 'running' AND locked_by = 'bench'`,
    );
  }
  await db.pool.query("VACUUM ANALYZE commands");
}

const sizes = async () =>
  (
    await db.pool.query<{ rows: number; table: string; indexes: string }>(
      `SELECT (SELECT count(*)::int FROM commands) AS rows, pg_size_pretty(pg_table_size('commands')) AS table,
              pg_size_pretty(pg_indexes_size('commands')) AS indexes`,
    )
  ).rows[0]!;

/** Back to an empty table (its attempts and state history with it). */
const empty = () => db.pool.query("TRUNCATE commands CASCADE");

await submitMany(2_000); // warm-up (connections, plans)
const fresh: number[] = [];
let before = await sizes();
for (let r = 0; r < ROUNDS; r++) {
  await empty();
  fresh.push(await submitMany(PER_ROUND));
  before = await sizes();
  await finishAll();
  console.log(`fresh round ${r + 1}: ${fmt(fresh.at(-1)!)} commands/s`);
}
await empty();
const t0 = performance.now();
for (let i = 0; i < HISTORY; i += 100_000) {
  await submitMany(Math.min(100_000, HISTORY - i));
  await finishAll();
}
const fillS = (performance.now() - t0) / 1000;
const grown: number[] = [];
for (let r = 0; r < ROUNDS; r++) {
  grown.push(await submitMany(PER_ROUND));
  await finishAll();
  console.log(`grown round ${r + 1}: ${fmt(grown.at(-1)!)} commands/s`);
}
const after = await sizes();

console.log(
  `\nIntake by submitItems (1,000 a call, one caller), ${fmt(PER_ROUND)} commands a round, ${KEYS ? `each with an idempotency key (${values.keys})` : "no idempotency keys"}, median of ${ROUNDS} rounds`,
);
console.log("| history | commands in the table after a round | table | indexes | intake (commands/s) |");
console.log("|---|---|---|---|---|");
console.log(`| fresh | ${fmt(before.rows)} | ${before.table} | ${before.indexes} | ${fmt(median(fresh))} |`);
console.log(
  `| after ${fmt(HISTORY)} more (filled in ${fmt(fillS)} s) | ${fmt(after.rows)} | ${after.table} | ${after.indexes} | ${fmt(median(grown))} |`,
);
const perIndex = (
  await db.pool.query<{ name: string; size: string }>(
    `SELECT indexrelid::regclass::text AS name, pg_size_pretty(pg_relation_size(indexrelid)) AS size
     FROM pg_index WHERE indrelid = 'commands'::regclass ORDER BY pg_relation_size(indexrelid) DESC`,
  )
).rows;
console.log(`indexes after: ${perIndex.map((i) => `${i.name} ${i.size}`).join(", ")}`);
console.log(`\ngrown ÷ fresh: ${fmt(median(grown) / median(fresh), 2)} (target ≥ 0.90)`);
await db.close();
await database.cleanup();
