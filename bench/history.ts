// Drain, intake and pickup with a long history (issue #19, point 2): the same
// rounds on a fresh table and then after --history finished commands (each
// with its attempt, an idempotency key as the SDK sends one, spread over the
// last 30 days as RETENTION_DAYS=30 keeps them), in one run on one PostgreSQL
// server (embedded, fsync on). A round: intake of --jobs no-op commands by
// submitItems (1,000 a call, each with an idempotency key), then their drain by
// --procs worker processes (bench/conveyor-noop-worker.ts, concurrency 10),
// then pickup (submit → handler starts, one process, an idle queue) sampled
// --samples times. Fresh rounds each start from an empty table.
// Prints each round, the medians fresh vs grown and their ratios, the fill's
// time and the sizes. (The console's reads at that size: bench:console --rows.)
// With --tuned "k=v …", a last series of grown rounds runs with those server settings (ALTER SYSTEM, reloaded).
// Ids: intake makes UUID v7 command ids; the history is filled with v7 ids and keys of its commands' times and
// the rounds send v7 keys, as the SDK does (--keys v4: the history's ids and every key random, as before v7).
// Usage: npm run bench:history [-- --history 10000000 --rounds 3 --jobs 20000 --procs 2 --samples 200 --tuned "wal_compression=lz4" --keys v4 --fill bulk]
import { parseArgs } from "node:util";
import pg from "pg";
import { startDatabase, percentile, median, fmt, benchToken, keyMaker } from "./lib";
import { createDb } from "../server/db/client";
import { submit, submitItems } from "../server/commands/submit";
import { benchIntake, startProc as startScript, stopProcs, storeFinished, workLeft, type Proc } from "./conveyor";

const { values } = parseArgs({
  options: {
    history: { type: "string", default: "10000000" },
    rounds: { type: "string", default: "3" },
    jobs: { type: "string", default: "20000" },
    procs: { type: "string", default: "2" },
    samples: { type: "string", default: "200" },
    // server settings for a last series of grown rounds (ALTER SYSTEM, reloaded), e.g. "wal_compression=lz4"
    tuned: { type: "string", default: "" },
    keys: { type: "string", default: "v7" },
    fill: { type: "string", default: "lifecycle" },
  },
});
const HISTORY = Number(values.history);
const ROUNDS = Number(values.rounds);
const JOBS = Number(values.jobs);
const PROCS = Number(values.procs);
const SAMPLES = Number(values.samples);
const newKey = keyMaker(values.keys);
const V7 = values.keys === "v7";
if (values.fill !== "lifecycle" && values.fill !== "bulk") throw new Error("--fill: lifecycle or bulk");
const FILL = values.fill;

const database = await startDatabase();
const db = createDb(database.url, { max: 4 });
const admin = new pg.Client({ connectionString: database.adminUrl });
await admin.connect();
const { id: clientId } = await benchToken(db);
const intake = benchIntake(db);

const startProc = (): Promise<Proc> => startScript("bench/conveyor-noop-worker.ts", { DATABASE_URL: database.url });

const anyLeft = () => workLeft(db);
/** A command finished since `t` (the history's are all older). */
const anyDoneSince = async (t: Date) =>
  (await db.pool.query(`SELECT 1 FROM commands WHERE finished_at > $1 LIMIT 1`, [t])).rowCount === 1;

/**
 * As the engine bench settles before each drain: vacuumed, analysed, checkpointed. The checkpoint is the
 * worst case for a large table: after it, the first change of every page writes the whole page to the WAL, and
 * each page a round's commands touch for the first time costs one (the phase's breakdown by relation, walSince,
 * names them: random-ordered index leaves, or old heap pages the free space map hands out). `checkpoint` false: the
 * server checkpoints on its own schedule (checkpoint_timeout, max_wal_size), as in production, where one page
 * write serves every change of that page until the next checkpoint.
 */
const settle = async (checkpoint: boolean) => {
  await db.pool.query("VACUUM ANALYZE commands");
  await db.pool.query("VACUUM ANALYZE attempts");
  if (checkpoint) await admin.query("CHECKPOINT");
};

/**
 * WAL written between two points: bytes and full-page images (the first change of a page after a checkpoint
 * writes all of it), read from the WAL itself (pg_walinspect): pg_stat_wal lags by up to the stats' flush
 * interval of every backend that wrote.
 */
await admin.query("CREATE EXTENSION IF NOT EXISTS pg_walinspect");
const wal = async () => (await admin.query<{ lsn: string }>(`SELECT pg_current_wal_lsn()::text AS lsn`)).rows[0]!;
const walSince = async (w0: { lsn: string }) => {
  const { rows } = await admin.query<{ bytes: string; fpi: string }>(
    `SELECT (SELECT coalesce(sum(combined_size), 0) FROM pg_get_wal_stats($1::pg_lsn, pg_current_wal_lsn()))::text AS bytes,
            (SELECT count(*) FROM pg_get_wal_block_info($1::pg_lsn, pg_current_wal_lsn(), false) WHERE block_fpi_length > 0)::text AS fpi`,
    [w0.lsn],
  );
  // Which relations the full pages were of, and of what kind of record: where the pages come from.
  const by = await admin.query<{ node: string; rec: string; n: string }>(
    `SELECT relfilenode::text AS node, resource_manager || '/' || record_type AS rec, count(*)::text AS n
     FROM pg_get_wal_block_info($1::pg_lsn, pg_current_wal_lsn(), false)
     WHERE block_fpi_length > 0 GROUP BY 1, 2 ORDER BY count(*) DESC LIMIT 4`,
    [w0.lsn],
  );
  // The names from the benchmark's database (the admin connection's is another one).
  for (const r of by.rows)
    r.node =
      (await db.pool.query<{ rel: string | null }>(`SELECT pg_filenode_relation(0, $1::oid)::text AS rel`, [r.node]))
        .rows[0]!.rel ?? r.node;
  const where = by.rows.map((r) => `${r.node} ${r.rec} ${fmt(Number(r.n))}`).join(", ");
  return { mb: Number(rows[0]!.bytes) / 1e6, fpi: Number(rows[0]!.fpi), where };
};

type Round = {
  intake: number;
  drain: number;
  p50: number;
  p95: number;
  /** WAL per command, intake and drain: kB and full-page images */
  intakeWalKb: number;
  intakeFpi: number;
  drainWalKb: number;
  drainFpi: number;
  /** the relations and records most of the full pages were of */
  intakeFpiWhere: string;
  drainFpiWhere: string;
};
async function round(checkpoint = true): Promise<Round> {
  await settle(checkpoint);
  const w0 = await wal();
  const t0 = performance.now();
  for (let i = 0; i < JOBS; i += 1000)
    await submitItems(
      intake,
      clientId,
      Array.from({ length: Math.min(1000, JOBS - i) }, () => ({
        type: "noop",
        payload: {},
        idempotencyKey: newKey(),
      })),
    );
  const intakeRate = JOBS / ((performance.now() - t0) / 1000);
  const intakeWal = await walSince(w0);
  await settle(checkpoint);
  const w1 = await wal();
  const since = (await db.pool.query<{ t: Date }>("SELECT now() AS t")).rows[0]!.t;
  const ps = await Promise.all(Array.from({ length: PROCS }, () => startProc()));
  while (!(await anyDoneSince(since))) await new Promise((r) => setTimeout(r, 2));
  const t1 = performance.now();
  while (await anyLeft()) await new Promise((r) => setTimeout(r, 25));
  const drainRate = JOBS / ((performance.now() - t1) / 1000);
  const drainWal = await walSince(w1);
  await stopProcs(ps);
  await settle(checkpoint);
  const [p] = [await startProc()];
  const started = new Map<string, number>();
  const waiters = new Map<string, (t: number) => void>();
  p!.lines((l) => {
    const m = /^START (\S+) ([\d.]+)$/.exec(l);
    if (!m) return;
    const w = waiters.get(m[1]!);
    if (w) w(Number(m[2]));
    else started.set(m[1]!, Number(m[2]));
  });
  const lat: number[] = [];
  for (let i = 0; i < SAMPLES + 10; i++) {
    const s = performance.timeOrigin + performance.now();
    const { id } = await submit(intake, clientId, {
      type: "noop",
      payload: { report: true },
      idempotencyKey: newKey(),
    });
    const t = started.get(id) ?? (await new Promise<number>((r) => waiters.set(id, r)));
    waiters.delete(id);
    if (i >= 10) lat.push(t - s); // the first few warm up connections and plans
    await new Promise((r) => setTimeout(r, 20));
  }
  await stopProcs([p!]);
  lat.sort((a, b) => a - b);
  return {
    intake: intakeRate,
    drain: drainRate,
    p50: percentile(lat, 50),
    p95: percentile(lat, 95),
    intakeWalKb: (intakeWal.mb * 1000) / JOBS,
    intakeFpi: intakeWal.fpi / JOBS,
    drainWalKb: (drainWal.mb * 1000) / JOBS,
    drainFpi: drainWal.fpi / JOBS,
    intakeFpiWhere: intakeWal.where,
    drainFpiWhere: drainWal.where,
  };
}
const show = (name: string, r: Round) =>
  console.log(
    `${name}: intake ${fmt(r.intake)} commands/s, drain ${fmt(r.drain)} jobs/s, pickup p50 ${fmt(r.p50, 2)} ms p95 ${fmt(r.p95, 2)} ms;` +
      ` WAL per command: intake ${fmt(r.intakeWalKb, 2)} kB (${fmt(r.intakeFpi, 2)} full pages), drain ${fmt(r.drainWalKb, 2)} kB (${fmt(r.drainFpi, 2)} full pages)` +
      (r.intakeFpiWhere ? `\n  intake's full pages: ${r.intakeFpiWhere}` : "") +
      (r.drainFpiWhere ? `\n  drain's full pages: ${r.drainFpiWhere}` : ""),
  );

const sizes = async () =>
  (
    await db.pool.query<{ rows: number; table: string; indexes: string; attempts: string; database: string }>(
      `SELECT (SELECT reltuples::bigint FROM pg_class WHERE relname = 'commands')::float8 AS rows,
              pg_size_pretty(pg_table_size('commands')) AS table, pg_size_pretty(pg_indexes_size('commands')) AS indexes,
              pg_size_pretty(pg_total_relation_size('attempts')) AS attempts,
              pg_size_pretty(pg_database_size(current_database())) AS database`,
    )
  ).rows[0]!;

const fresh: Round[] = [];
const freshSteady: Round[] = [];
for (let r = 0; r < ROUNDS; r++) {
  await db.pool.query("TRUNCATE commands CASCADE");
  fresh.push(await round());
  show(`fresh round ${r + 1}`, fresh.at(-1)!);
  await db.pool.query("TRUNCATE commands CASCADE");
  freshSteady.push(await round(false));
  show(`fresh round ${r + 1} without forced checkpoints`, freshSteady.at(-1)!);
}
await db.pool.query("TRUNCATE commands CASCADE");

// The history: succeeded commands (http, a small JSON body, a key each) with their one attempt, oldest first;
// with v7 ids and keys of the times they were made (uuidv7 with a shift: PostgreSQL 18), as intake and the SDK make them.
// --fill lifecycle (the default): each chunk stored pending, claimed, then finished with its attempt, and vacuumed, so
// the table's pages hold what a drained history leaves (the dead versions' space reused by the next chunk, as
// autovacuum lets intake do). --fill bulk: each command stored finished in one insert: faster, but every page then
// ends in a tail of free space too small for a history row and big enough for a smaller new one, which the free
// space map hands to the rounds' commands one per page (a full page in the WAL for every command: 1.00 measured).
const CHUNK = FILL === "bulk" ? 500_000 : 1_000_000;
const rows = `FROM (SELECT i, now() - interval '1 hour' - interval '30 days' * (1 - i::float8 / $4) AS t
                    FROM generate_series($2::int, $3::int) AS i) x`;
const idOf = `CASE WHEN $5 THEN uuidv7(t - now()) ELSE gen_random_uuid() END`;
const keyOf = `CASE WHEN $5 THEN uuidv7(t - now())::text ELSE md5(i::text) END`;
const bodyOf = `jsonb_build_object('url', 'https://backend.example/orders/' || i, 'body', jsonb_build_object('order', i, 'amount', '12.50'))`;
const tFill = performance.now();
for (let a = 0; a < HISTORY; a += CHUNK) {
  const args = [clientId, a, Math.min(HISTORY, a + CHUNK) - 1, HISTORY, V7];
  if (FILL === "bulk")
    await db.pool.query(
      `WITH c AS (
         INSERT INTO commands (id, client_id, type, payload, status, idempotency_key, created_at, updated_at,
                               state_changed_at, finished_at, attempt_count, tries, result)
         SELECT ${idOf}, $1, 'http', ${bodyOf}, 'succeeded', ${keyOf}, t, t + interval '40 ms', t + interval '40 ms',
                t + interval '40 ms', 1, 1, '{"status":200,"body":{"ok":true}}'
         ${rows}
         RETURNING id, created_at)
       INSERT INTO attempts (command_id, number, kind, outcome, started_at, finished_at, worker)
       SELECT id, 1, 'execute', 'success', created_at, created_at + interval '40 ms', 'bench' FROM c`,
      args,
    );
  else {
    // run_at in the past: nothing claims them (no worker runs during the fill).
    await storeFinished(db, {
      rows,
      args,
      client: "$1",
      type: "http",
      id: idOf,
      payload: bodyOf,
      key: keyOf,
      result: '{"status":200,"body":{"ok":true}}',
      startMs: 5,
      finishMs: 40,
      tag: "bench-fill",
    });
  }
  if (((a + CHUNK) / 500_000) % 4 === 0 || a + CHUNK >= HISTORY)
    console.log(
      `history: ${fmt(Math.min(HISTORY, a + CHUNK))} commands after ${fmt((performance.now() - tFill) / 1000)} s`,
    );
}
await db.pool.query("VACUUM ANALYZE commands");
await db.pool.query("VACUUM ANALYZE attempts");
const fillS = (performance.now() - tFill) / 1000;
const s = await sizes();
console.log(
  `history of ${fmt(HISTORY)} filled (and vacuumed) in ${fmt(fillS)} s: commands ${s.table} + indexes ${s.indexes}, attempts ${s.attempts}, database ${s.database}`,
);
const grown: Round[] = [];
const grownSteady: Round[] = [];
for (let r = 0; r < ROUNDS; r++) {
  grown.push(await round());
  show(`grown round ${r + 1}`, grown.at(-1)!);
  grownSteady.push(await round(false));
  show(`grown round ${r + 1} without forced checkpoints`, grownSteady.at(-1)!);
}
const tuned: Round[] = [];
const TUNED = values.tuned.split(/\s+/).filter(Boolean);
if (TUNED.length) {
  for (const kv of TUNED) {
    const [k, v] = [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)];
    await admin.query(`ALTER SYSTEM SET ${k} = '${v.replace(/'/g, "''")}'`);
  }
  await admin.query("SELECT pg_reload_conf()");
  for (let r = 0; r < ROUNDS; r++) {
    tuned.push(await round());
    show(`grown round ${r + 1} with ${TUNED.join(" ")}`, tuned.at(-1)!);
  }
}
await admin.end();
await db.close();
await database.cleanup();

type Figure = { [K in keyof Round]: Round[K] extends number ? K : never }[keyof Round];
const med = (rs: Round[], k: Figure) => median(rs.map((r) => r[k]));
console.log(
  `\n${fmt(JOBS)} no-op commands a round (each with an idempotency key, ${values.keys}), ${PROCS} worker processes × concurrency 10, pickup ${SAMPLES} samples; medians of ${ROUNDS} rounds`,
);
const table = (title: string, f: Round[], g: Round[], tuned: Round[] = []) => {
  const t = tuned.length > 0;
  console.log(`\n${title}`);
  console.log(
    `| | fresh table | after ${fmt(HISTORY)} finished commands | grown ÷ fresh |${t ? ` grown, ${TUNED.join(" ")} | ÷ fresh |` : ""} target |`,
  );
  console.log(`|---|---|---|---|${t ? "---|---|" : ""}---|`);
  const line = (name: string, k: Figure, d: number, target: string) =>
    console.log(
      `| ${name} | ${fmt(med(f, k), d)} | ${fmt(med(g, k), d)} | ${fmt(med(g, k) / med(f, k), 2)} |` +
        (t ? ` ${fmt(med(tuned, k), d)} | ${fmt(med(tuned, k) / med(f, k), 2)} |` : "") +
        ` ${target} |`,
    );
  line("intake (commands/s)", "intake", 0, "≥ 0.85");
  line("drain (jobs/s)", "drain", 0, "≥ 0.85");
  line("pickup p50 (ms)", "p50", 2, "");
  line("pickup p95 (ms)", "p95", 2, "≤ 1.15");
  line("intake WAL per command (kB)", "intakeWalKb", 2, "");
  line("intake full-page images per command", "intakeFpi", 2, "");
  line("drain WAL per command (kB)", "drainWalKb", 2, "");
  line("drain full-page images per command", "drainFpi", 2, "");
};
table("A checkpoint before each intake and each drain (the worst case):", fresh, grown, tuned);
table("The server's own checkpoints (checkpoint_timeout, max_wal_size):", freshSteady, grownSteady);
