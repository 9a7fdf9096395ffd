// Sustained load with retention active (issue #19, point 3): Conveyor's worker
// processes (bench/conveyor-noop-worker.ts, the real worker loop, with the
// production pruner) on one PostgreSQL server (embedded, fsync on). First the
// drain capacity, measured here (--capacity-jobs no-op commands enqueued, then
// drained by --procs processes), unless --rate is given; then --minutes of
// intake at --load of it (submitItems, as a web process runs it, a little every
// 20 ms), while the pruner deletes what is older than --retention minutes (the
// production code path with a retention of minutes instead of days, every
// --prune-every seconds). Once a minute it prints what was submitted and
// finished, pickup (submit → handler starts, sampled 5 times a second) p50/p99,
// the backlog, the oldest command's age, the table's and indexes' sizes, dead
// tuples, autovacuum runs and the CPU of PostgreSQL and of the workers; then the
// first 5 minutes against the last 5 and the sizes once pruning is steady.
// The table starts in its steady state (unless --fresh): --retention minutes of
// finished commands at the soak's rate, made as commands live (stored, claimed,
// finished with their attempt, vacuumed) and aged so that the oldest reach the
// retention as the soak starts, so the pruner deletes from the first minute
// and the first 5 minutes are comparable with the last 5. With --fresh the
// table starts empty and pruning begins after --retention minutes.
// Usage: npm run bench:soak [-- --minutes 30 --load 0.6 --retention 3 --procs 2 --rate N --prune-every 5 --fresh
//                               --table-settings "autovacuum_vacuum_scale_factor=0.05"]
import { parseArgs } from "node:util";
import { startDatabase, percentile, median, fmt, cpuTicks, clusterPids, benchToken } from "./lib";
import { createDb } from "../server/db/client";
import { submit, submitItems } from "../server/commands/submit";
import { benchIntake, startProc as startScript, stopProcs, storeFinished, workLeft, type Proc } from "./conveyor";

const { values } = parseArgs({
  options: {
    minutes: { type: "string", default: "30" },
    load: { type: "string", default: "0.6" },
    retention: { type: "string", default: "3" },
    procs: { type: "string", default: "2" },
    concurrency: { type: "string", default: "10" },
    rate: { type: "string" },
    "capacity-jobs": { type: "string", default: "30000" },
    "prune-every": { type: "string", default: "5" },
    fresh: { type: "boolean", default: false },
    // storage parameters of commands and attempts for this soak, e.g. "autovacuum_vacuum_cost_delay=0"
    "table-settings": { type: "string", default: "" },
  },
});
const MINUTES = Number(values.minutes);
const PROCS = Number(values.procs);

const database = await startDatabase();
const db = createDb(database.url, { max: 8 });
const { id: clientId } = await benchToken(db);
const intake = benchIntake(db);
const submitNoop = async (n: number) => {
  for (let i = 0; i < n; i += 1000)
    await submitItems(
      intake,
      clientId,
      Array.from({ length: Math.min(1000, n - i) }, () => ({ type: "noop", payload: {} })),
    );
};

const startProc = (env: Record<string, string>): Promise<Proc> =>
  startScript("bench/conveyor-noop-worker.ts", {
    DATABASE_URL: database.url,
    WORKER_CONCURRENCY: values.concurrency!,
    ...env,
  });

const anyLeft = () => workLeft(db);

async function capacity(): Promise<number> {
  const jobs = Number(values["capacity-jobs"]);
  await submitNoop(jobs);
  await db.pool.query("VACUUM ANALYZE commands");
  const ps = await Promise.all(Array.from({ length: PROCS }, () => startProc({})));
  const t0 = performance.now();
  while (await anyLeft()) await new Promise((r) => setTimeout(r, 25));
  const rate = jobs / ((performance.now() - t0) / 1000);
  await stopProcs(ps);
  await db.pool.query("TRUNCATE commands CASCADE");
  await db.pool.query("VACUUM ANALYZE");
  return rate;
}

const cap = values.rate ? null : await capacity();
const RATE = values.rate ? Number(values.rate) : Math.round(cap! * Number(values.load));
console.log(
  cap
    ? `drain capacity: ${fmt(cap)} commands/s (${fmt(Number(values["capacity-jobs"]))} no-op commands, ${PROCS} worker processes × concurrency ${values.concurrency}); soak at ${values.load} of it: ${fmt(RATE)} commands/s`
    : `soak at ${fmt(RATE)} commands/s (--rate)`,
);
console.log(
  `${MINUTES} minutes, retention ${values.retention} minutes, the pruner every ${values["prune-every"]} s in each of ${PROCS} worker processes\n`,
);

/**
 * The history a soak at RATE with this retention holds once pruning is steady: RATE × retention of succeeded no-op
 * commands with their attempt, created evenly over the retention ending now: made as commands live (storeFinished),
 * with times relative to the fill's start, then moved forward by the fill's duration in one update (vacuumed after).
 */
async function prefill(n: number, seconds: number): Promise<void> {
  const CHUNK = 250_000;
  const t0 = performance.now();
  const { rows } = await db.pool.query<{ t: Date }>("SELECT now() AS t");
  const base = rows[0]!.t;
  for (let a = 0; a < n; a += CHUNK) {
    const args = [clientId, a, Math.min(n, a + CHUNK) - 1, n, base, seconds];
    const series = `FROM (SELECT i, $5::timestamptz - make_interval(secs => $6::float8 * (1 - i::float8 / $4)) AS t
                          FROM generate_series($2::int, $3::int) AS i) x`;
    await storeFinished(db, {
      rows: series,
      args,
      client: "$1",
      type: "noop",
      id: "uuidv7(t - now())",
      payload: "'{}'",
      key: "NULL",
      result: "null",
      startMs: 0,
      finishMs: 2,
      tag: "soak-prefill",
    });
  }
  const shift = `(now() - $1::timestamptz)`;
  await db.pool.query(
    `UPDATE commands SET created_at = created_at + ${shift}, updated_at = updated_at + ${shift},
            state_changed_at = state_changed_at + ${shift}, finished_at = finished_at + ${shift}, run_at = run_at + ${shift}`,
    [base],
  );
  await db.pool.query("VACUUM ANALYZE commands");
  await db.pool.query("VACUUM ANALYZE attempts");
  console.log(
    `prefilled ${fmt(n)} finished commands (${values.retention} minutes at ${fmt(RATE)}/s) in ${fmt((performance.now() - t0) / 1000)} s`,
  );
}
const TABLE_SETTINGS = values["table-settings"].split(/[\s,]+/).filter(Boolean);
if (TABLE_SETTINGS.length) {
  for (const t of ["commands", "attempts"]) await db.pool.query(`ALTER TABLE ${t} SET (${TABLE_SETTINGS.join(", ")})`);
  console.log(`commands and attempts with ${TABLE_SETTINGS.join(", ")}`);
}
if (!values.fresh) {
  const seconds = Number(values.retention) * 60;
  await prefill(Math.round(RATE * seconds), seconds);
}

const ps = await Promise.all(
  Array.from({ length: PROCS }, () =>
    startProc({
      BENCH_RETENTION_MINUTES: values.retention!,
      BENCH_PRUNE_EVERY_MS: String(Number(values["prune-every"]) * 1000),
    }),
  ),
);
/** CPU ticks of these processes since the last call (a process new since then counts from its start). */
const minuteMeter = (pids: () => number[]) => {
  let last = new Map(pids().map((p) => [p, cpuTicks(p)]));
  return () => {
    const now = new Map(pids().map((p) => [p, cpuTicks(p)]));
    let n = 0;
    for (const [p, t] of now) n += t - (last.get(p) ?? 0);
    last = now;
    return n;
  };
};
const cpuPg = minuteMeter(() => clusterPids(database.dataDir));
const cpuWorkers = minuteMeter(() => ps.map((p) => p.child.pid!));

// pickup samples: id → submit time; started → latency, by the minute it was submitted in
const sampled = new Map<string, { t0: number; minute: number }>();
const early = new Map<string, number>();
const pickups: number[][] = Array.from({ length: MINUTES }, () => []);
for (const p of ps)
  p.lines((l) => {
    const m = /^START (\S+) ([\d.]+)$/.exec(l);
    if (!m) return;
    const s = sampled.get(m[1]!);
    if (s) {
      pickups[s.minute]!.push(Number(m[2]) - s.t0);
      sampled.delete(m[1]!);
    } else early.set(m[1]!, Number(m[2]));
  });

const start = performance.now();
const end = start + MINUTES * 60_000;
/** Intake a little at a time, as many clients' requests arrive: what is due every TICK_MS. */
const TICK_MS = 20;
const minuteOf = () => Math.min(MINUTES - 1, Math.floor((performance.now() - start) / 60_000));
let sent = 0;
const sentPerMinute = Array.from({ length: MINUTES }, () => 0);
let lagMax = 0;
const load = (async () => {
  while (performance.now() < end) {
    const due = Math.floor((RATE * (performance.now() - start)) / 1000) - sent;
    if (due > 0) {
      lagMax = Math.max(lagMax, due / RATE);
      const m = minuteOf();
      await submitNoop(due);
      sent += due;
      sentPerMinute[m]! += due;
    }
    await new Promise((r) => setTimeout(r, TICK_MS));
  }
})();
const sampler = (async () => {
  while (performance.now() < end) {
    const t0 = performance.timeOrigin + performance.now();
    const minute = minuteOf();
    const { id } = await submit(intake, clientId, { type: "noop", payload: { report: true } });
    if (early.has(id)) {
      pickups[minute]!.push(early.get(id)! - t0);
      early.delete(id);
    } else sampled.set(id, { t0, minute });
    await new Promise((r) => setTimeout(r, 200));
  }
})();

type Row = {
  minute: number;
  submitted: number;
  finished: number;
  p50: number;
  p99: number;
  backlog: number;
  oldestS: number;
  rows: number;
  table: number;
  indexes: number;
  attempts: number;
  dead: number;
  deadAttempts: number;
  autovacuums: number;
  deleted: number;
  pgCores: number;
  workerCores: number;
};
const rows: Row[] = [];
const MB = 1024 * 1024;
let lastDbNow = (await db.pool.query<{ t: Date }>("SELECT now() AS t")).rows[0]!.t;
let lastDeleted = 0;
console.log(
  "| min | submitted/s | finished/s | pickup p50 ms | pickup p99 ms | backlog | oldest s | rows | table MB | indexes MB | attempts MB | dead | dead attempts | autovacuums | deleted/s | PG cores | worker cores |",
);
console.log("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
for (let m = 0; m < MINUTES; m++) {
  await new Promise((r) => setTimeout(r, Math.max(0, start + (m + 1) * 60_000 - performance.now())));
  const { rows: r } = await db.pool.query(
    `SELECT now() AS t,
            (SELECT count(*)::int FROM commands WHERE finished_at >= $1 AND finished_at < now()) AS finished,
            (SELECT count(*)::int FROM commands WHERE status IN ('pending', 'retrying') AND lease_id IS NULL AND NOT key_waiting) AS backlog,
            (SELECT extract(epoch FROM now() - min(created_at))::float8 FROM commands WHERE lease_id IS NULL) AS oldest,
            pg_table_size('commands')::float8 AS table, pg_indexes_size('commands')::float8 AS indexes,
            pg_total_relation_size('attempts')::float8 AS attempts,
            c.n_live_tup::int AS rows, c.n_dead_tup::int AS dead, a.n_dead_tup::int AS dead_attempts,
            (c.autovacuum_count + a.autovacuum_count)::int AS autovacuums, c.n_tup_del::float8 AS deleted
     FROM pg_stat_user_tables c, pg_stat_user_tables a WHERE c.relname = 'commands' AND a.relname = 'attempts'`,
    [lastDbNow],
  );
  const x = r[0]!;
  const secs = (x.t.getTime() - lastDbNow.getTime()) / 1000;
  lastDbNow = x.t;
  const pg = cpuPg();
  const wk = cpuWorkers();
  const pk = pickups[m]!.sort((a, b) => a - b);
  const row: Row = {
    minute: m + 1,
    submitted: sentPerMinute[m]! / 60,
    finished: x.finished / secs,
    p50: pk.length ? percentile(pk, 50) : NaN,
    p99: pk.length ? percentile(pk, 99) : NaN,
    backlog: x.backlog,
    oldestS: x.oldest ?? 0,
    rows: x.rows,
    table: x.table / MB,
    indexes: x.indexes / MB,
    attempts: x.attempts / MB,
    dead: x.dead,
    deadAttempts: x.dead_attempts,
    autovacuums: x.autovacuums,
    deleted: (x.deleted - lastDeleted) / secs,
    pgCores: (pg * 10) / 1000 / secs,
    workerCores: (wk * 10) / 1000 / secs,
  };
  lastDeleted = x.deleted;
  rows.push(row);
  console.log(
    `| ${row.minute} | ${fmt(row.submitted)} | ${fmt(row.finished)} | ${fmt(row.p50, 1)} | ${fmt(row.p99, 1)} | ${fmt(row.backlog)} | ${fmt(row.oldestS)} | ${fmt(row.rows)} | ${fmt(row.table)} | ${fmt(row.indexes)} | ${fmt(row.attempts)} | ${fmt(row.dead)} | ${fmt(row.deadAttempts)} | ${row.autovacuums} | ${fmt(row.deleted)} | ${fmt(row.pgCores, 2)} | ${fmt(row.workerCores, 2)} |`,
  );
}
await Promise.all([load, sampler]);
await stopProcs(ps);
const left = await anyLeft();
await db.close();
await database.cleanup();

const window = (from: number, to: number) => rows.slice(from, to);
const first = window(0, Math.min(5, rows.length));
const last = window(Math.max(0, rows.length - 5), rows.length);
const avg = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const through = (w: Row[]) => avg(w.map((r) => r.finished));
const p99 = (w: Row[]) => median(w.map((r) => r.p99));
console.log(
  `\nthroughput (finished/s, mean of the minutes): first 5 min ${fmt(through(first))}, last 5 min ${fmt(through(last))} → ${fmt(through(last) / through(first), 3)} (target within 10 %)`,
);
console.log(
  `pickup p99 (median of the minutes' p99): first 5 min ${fmt(p99(first), 1)} ms, last 5 min ${fmt(p99(last), 1)} ms → ${fmt(p99(last) / p99(first), 2)}`,
);
const steadyFrom = values.fresh ? Math.min(rows.length - 1, Math.ceil(Number(values.retention)) + 2) : 0;
const steady = rows.slice(steadyFrom);
const span = (f: (r: Row) => number) => `${fmt(Math.min(...steady.map(f)))}–${fmt(Math.max(...steady.map(f)))}`;
console.log(
  `from minute ${steadyFrom + 1} (pruning steady): table ${span((r) => r.table)} MB, indexes ${span((r) => r.indexes)} MB, attempts ${span((r) => r.attempts)} MB, rows ${span((r) => r.rows)}, dead tuples ${span((r) => r.dead)} (attempts ${span((r) => r.deadAttempts)}), oldest ${span((r) => r.oldestS)} s`,
);
console.log(
  `intake fell behind its schedule by at most ${fmt(lagMax, 2)} s; work left after the workers stopped: ${left ? "yes" : "none"}`,
);
