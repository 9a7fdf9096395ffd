// What the engine's design choices cost PostgreSQL, and what a narrow hot queue table beside the history would save
// (issue #19, point 4), measured before building anything. One server (embedded, fsync on), one database per
// shape, each with the real migrations:
//   current     — the engine as it is: the claim leases the commands row itself (server/db/claim.ts), the completion
//                 updates it and records the attempt (server/db/completion.ts): two non-HOT updates of the wide row;
//   hot         — a sketch of the alternative: intake also stores a narrow command_queue row (id, priority, run_at,
//                 lease) by a statement trigger, the claim leases that row and reads the command beside it (the
//                 commands row is not written), and the completion deletes the queue row, updates the commands
//                 row once and records the attempt; commands loses its three claim and lease indexes;
//   and, to price the parts (none is a design to ship: each breaks a contract rule or a console read),
//   no-attempt  — current without the attempt rows;
//   no-triggers — current without the statement triggers that count states and finished commands;
//   no-lists    — current without the four indexes the console's lists and the pruner read;
//   no-attempt-fk — current without the attempts → commands foreign key (its check locks the command's row again:
//                 a Heap/LOCK record per attempt);
//   no-row-trigger — current without the BEFORE UPDATE row trigger (timestamps and the transition check): any
//                 such trigger makes PostgreSQL lock each row before updating it (GetTupleForTrigger), whatever
//                 its WHEN clause says, and disabling it does not stop that: a Heap/LOCK record per completion;
//   no-lock-sources — without both (either alone still locks each completed row once: measured), and
//   no-lock-sources-ff70 — with fillfactor 70 as well;
//   fillfactor-N — current with room left on each page of commands, so that a claim's or a completion's new
//                 version can stay on its page (a version that moves writes a Heap/LOCK record as well, and its
//                 Heap/UPDATE cannot be compressed against the old one).
// Each drains --jobs no-op commands stored by submitItems (1,000 a call, a key each) with --loops connections that
// each claim --claim at a time and complete --batch in one statement, as the worker's claim loop (prefetching no-op
// commands) and completer batch them;
// no worker JavaScript runs, so the figures are the database's: CPU of all PostgreSQL processes (from /proc)
// per command for intake and for the drain, and the drain's rate. The sketch is not the product: it skips the
// flow-control filters, the rescuer and the operator actions a real design must carry, and it checks no
// transitions on the commands row (its trigger is off; the hot statements set their timestamps themselves, so
// the trigger's function never runs on this path in either database).
// Usage: npm run bench:queue-shapes [-- --jobs 50000 --runs 3 --loops 4 --claim 50 --batch 100]
import { parseArgs } from "node:util";
import pg from "pg";
import { startDatabase, median, fmt, cpuMeter, clusterPids, benchToken, keyMaker, root } from "./lib";
import { createDb, type Db } from "../server/db/client";
import { migrate } from "../server/db/migrate";
import { submitItems } from "../server/commands/submit";
import { claim, commandsRowEstimate } from "../server/db/claim";
import { complete, completionDocuments } from "../server/db/completion";
import type { Claimed, Completion } from "../server/engine/types";
import { benchIntake } from "./conveyor";

const { values } = parseArgs({
  options: {
    jobs: { type: "string", default: "50000" },
    runs: { type: "string", default: "3" },
    loops: { type: "string", default: "4" },
    claim: { type: "string", default: "50" },
    batch: { type: "string", default: "100" },
    shapes: { type: "string", default: "all" },
  },
});
const JOBS = Number(values.jobs);
const RUNS = Number(values.runs);
const LOOPS = Number(values.loops);
const CLAIM = Number(values.claim);
const BATCH = Number(values.batch);
const newKey = keyMaker("v7");

const database = await startDatabase();
const admin = new pg.Client({ connectionString: database.adminUrl });
await admin.connect();

const HOT_DDL = `
  CREATE TABLE command_queue (
    id uuid PRIMARY KEY REFERENCES commands (id) ON DELETE CASCADE,
    priority int NOT NULL,
    run_at timestamptz NOT NULL,
    lease_id uuid,
    locked_by text,
    locked_until timestamptz
  );
  CREATE INDEX command_queue_claim_idx ON command_queue (priority DESC, run_at) WHERE lease_id IS NULL;
  CREATE INDEX command_queue_lease_idx ON command_queue (locked_until) WHERE locked_until IS NOT NULL;
  CREATE FUNCTION bench_queue_insert() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      INSERT INTO command_queue (id, priority, run_at) SELECT id, priority, run_at FROM new_rows;
      RETURN NULL;
    END $$;
  CREATE TRIGGER commands_queue_insert AFTER INSERT ON commands REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION bench_queue_insert();
  ALTER TABLE commands DISABLE TRIGGER commands_update;
  DROP INDEX commands_claim_idx, commands_host_claim_idx, commands_lease_idx;`;

type Shape = { name: string; db: Db; hot: boolean; attempts: boolean };
const SHAPES: { name: string; ddl: string; hot?: boolean; attempts?: boolean }[] = [
  { name: "current", ddl: "" },
  { name: "hot", ddl: HOT_DDL, hot: true },
  { name: "no-attempt", ddl: "", attempts: false },
  {
    name: "no-triggers",
    ddl: "DROP TRIGGER commands_changed ON commands; DROP TRIGGER commands_batch_changed ON commands",
  },
  {
    name: "no-lists",
    ddl: "DROP INDEX commands_created_at_idx, commands_type_created_at_idx, commands_status_created_at_idx, commands_finished_at_idx",
  },
  { name: "no-attempt-fk", ddl: "ALTER TABLE attempts DROP CONSTRAINT attempts_command_id_fkey" },
  { name: "no-row-trigger", ddl: "DROP TRIGGER commands_update ON commands" },
  {
    name: "no-lock-sources",
    ddl: "DROP TRIGGER commands_update ON commands; ALTER TABLE attempts DROP CONSTRAINT attempts_command_id_fkey",
  },
  {
    name: "no-lock-sources-ff70",
    ddl: "DROP TRIGGER commands_update ON commands; ALTER TABLE attempts DROP CONSTRAINT attempts_command_id_fkey; ALTER TABLE commands SET (fillfactor = 70)",
  },
  { name: "fillfactor-90", ddl: "ALTER TABLE commands SET (fillfactor = 90)" },
  { name: "fillfactor-70", ddl: "ALTER TABLE commands SET (fillfactor = 70)" },
  { name: "fillfactor-50", ddl: "ALTER TABLE commands SET (fillfactor = 50)" },
].filter((x) => values.shapes === "all" || values.shapes!.split(",").includes(x.name));

const HOT_CLAIM = `WITH due AS (
    SELECT id FROM command_queue WHERE lease_id IS NULL AND run_at <= now()
    ORDER BY priority DESC, run_at LIMIT $2 FOR UPDATE SKIP LOCKED
  ), q AS (
    UPDATE command_queue q SET lease_id = gen_random_uuid(), locked_by = $1, locked_until = now() + interval '30 s'
    WHERE q.id = ANY(ARRAY(SELECT id FROM due)) RETURNING q.id, q.lease_id
  )
  SELECT c.id, q.lease_id, c.type, c.payload, c.status, c.tries, c.attempt_count
  FROM q JOIN commands c ON c.id = q.id`;

const HOT_COMPLETE = `WITH input AS (
    SELECT * FROM json_to_recordset($1::json)
      AS t(id uuid, lease_id uuid, status command_status, phase text, run_at timestamptz, tries int, needs_reconcile bool,
           result jsonb, set_result bool, failure jsonb, set_failure bool, error text, attempt_count int)
  ), del AS (
    DELETE FROM command_queue q USING input i WHERE q.id = i.id AND q.lease_id = i.lease_id RETURNING q.id
  ), upd AS (
    UPDATE commands c SET status = i.status, phase = i.phase, tries = i.tries, needs_reconcile = false,
      result = CASE WHEN i.set_result THEN i.result ELSE c.result END, error = i.error, attempt_count = i.attempt_count,
      updated_at = now(), state_changed_at = now(), finished_at = now()
    FROM input i WHERE c.id = ANY(ARRAY(SELECT id FROM del)) AND c.id = i.id
    RETURNING c.id
  ), att AS (
    INSERT INTO attempts (command_id, number, kind, outcome, started_at, finished_at, error, worker, detail)
    SELECT a.command_id, a.number, a.kind, a.outcome, to_timestamp(a.started_at / 1000), to_timestamp(a.finished_at / 1000),
           a.error, a.worker, a.detail
    FROM json_to_recordset($2::json)
      AS a(command_id uuid, number int, kind attempt_kind, outcome attempt_outcome,
           started_at float8, finished_at float8, error text, worker text, detail jsonb)
    WHERE a.command_id IN (SELECT id FROM upd)
  )
  SELECT id FROM upd`;

const shapes: Shape[] = [];
for (const x of SHAPES) {
  const name = `shape_${x.name.replace(/-/g, "_")}`;
  await admin.query(`CREATE DATABASE ${name}`);
  const u = new URL(database.url);
  u.pathname = `/${name}`;
  await migrate(u.toString(), `${root}/prisma/migrations`);
  const db = createDb(u.toString(), { max: LOOPS + 2 });
  if (x.ddl) await db.pool.query(x.ddl);
  shapes.push({ name: x.name, db, hot: x.hot ?? false, attempts: x.attempts ?? true });
}
await admin.query("CREATE EXTENSION IF NOT EXISTS pg_walinspect");
const lsn = async () => (await admin.query<{ lsn: string }>("SELECT pg_current_wal_lsn()::text AS lsn")).rows[0]!.lsn;
/** The WAL since `from`: bytes, and the records that made most of it (the WAL of a shape's drain, read from the WAL itself). */
async function walSince(from: string): Promise<{ bytes: number; top: string }> {
  const { rows } = await admin.query<{ rec: string; n: string; bytes: string }>(
    `SELECT "resource_manager/record_type" AS rec, count::text AS n, combined_size::text AS bytes
     FROM pg_get_wal_stats($1::pg_lsn, pg_current_wal_lsn(), true) WHERE count > 0 ORDER BY combined_size DESC`,
    [from],
  );
  const bytes = rows.reduce((n, r) => n + Number(r.bytes), 0);
  const top = rows
    .slice(0, 6)
    .map((r) => `${r.rec} ${fmt(Number(r.n) / JOBS, 2)}× ${fmt(Number(r.bytes) / JOBS)} B`)
    .join(", ");
  return { bytes, top };
}

const claimOf = async (shape: Shape, worker: string, n: number): Promise<Claimed[]> =>
  shape.hot
    ? (await shape.db.pool.query<{ id: string; lease_id: string }>(HOT_CLAIM, [worker, n])).rows.map(
        (r) => ({ id: r.id, leaseId: r.lease_id }) as Claimed,
      )
    : claim(shape.db, worker, n, 30_000, [], true);

const done = (c: Claimed, worker: string, t: Date): Completion => ({
  id: c.id,
  leaseId: c.leaseId,
  status: "succeeded",
  phase: "execute",
  runAt: null,
  tries: 1,
  needsReconcile: false,
  result: null,
  error: null,
  attemptCount: 1,
  attempts: [{ number: 1, kind: "execute", outcome: "success", startedAt: t, finishedAt: t, error: null, worker }],
  keyed: false,
});

async function completeAll(shape: Shape, items: Completion[]): Promise<void> {
  if (!shape.attempts) for (const i of items) i.attempts = [];
  if (!shape.hot) {
    await complete(shape.db.pool, items);
    return;
  }
  const { input, attempts } = completionDocuments(items);
  await shape.db.pool.query(HOT_COMPLETE, [input, attempts]);
}

type Result = { intakeUs: number; drainUs: number; drainRate: number; walB: number; walTop: string; tableB: number };
const clients = new Map<string, string>();
async function run(shape: Shape): Promise<Result> {
  const { db } = shape;
  await db.pool.query("TRUNCATE commands CASCADE");
  const clientId = (clients.get(shape.name) ?? clients.set(shape.name, (await benchToken(db)).id).get(shape.name))!;
  const intake = benchIntake(db);
  await db.pool.query("VACUUM ANALYZE");
  const pids = () => clusterPids(database.dataDir);
  const intakeCpu = cpuMeter(pids);
  for (let i = 0; i < JOBS; i += 1000)
    await submitItems(
      intake,
      clientId,
      Array.from({ length: Math.min(1000, JOBS - i) }, () => ({ type: "noop", payload: {}, idempotencyKey: newKey() })),
    );
  const intakeTicks = intakeCpu.take();
  await db.pool.query("VACUUM ANALYZE");
  await db.pool.query("CHECKPOINT");
  if (!shape.hot && (await commandsRowEstimate(db)) < 1000) throw new Error("table not analysed");
  const wal0 = await lsn();
  const drainCpu = cpuMeter(pids);
  const t0 = performance.now();
  let finished = 0;
  await Promise.all(
    Array.from({ length: LOOPS }, async (_, l) => {
      const worker = `bench-${l}`;
      for (;;) {
        const held: Claimed[] = [];
        while (held.length < BATCH) {
          const got = await claimOf(shape, worker, CLAIM);
          held.push(...got);
          if (got.length < CLAIM) break;
        }
        if (held.length === 0) return;
        const t = new Date();
        await completeAll(
          shape,
          held.map((c) => done(c, worker, t)),
        );
        finished += held.length;
      }
    }),
  );
  const drainS = (performance.now() - t0) / 1000;
  const drainTicks = drainCpu.take();
  const wal = await walSince(wal0);
  await db.pool.query("VACUUM commands");
  const { rows: size } = await db.pool.query<{ b: number }>("SELECT pg_table_size('commands')::float8 AS b");
  const { rows } = await db.pool.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM commands WHERE status = 'succeeded'`,
  );
  if (rows[0]!.n !== JOBS || finished !== JOBS)
    throw new Error(`${shape.name}: ${rows[0]!.n} succeeded, ${finished} completed of ${JOBS}`);
  return {
    intakeUs: (intakeTicks * 10_000) / JOBS,
    drainUs: (drainTicks * 10_000) / JOBS,
    drainRate: JOBS / drainS,
    walB: wal.bytes / JOBS,
    walTop: wal.top,
    tableB: size[0]!.b / JOBS,
  };
}

const results = new Map<string, Result[]>();
for (let r = 0; r < RUNS; r++) {
  // alternate which shape goes first: each run leaves a vacuum and a checkpoint's work to the next
  for (const shape of r % 2 === 0 ? shapes : [...shapes].reverse()) {
    const x = await run(shape);
    (results.get(shape.name) ?? results.set(shape.name, []).get(shape.name)!).push(x);
    console.log(
      `run ${r + 1} ${shape.name}: PostgreSQL CPU per command intake ${fmt(x.intakeUs)} µs, drain ${fmt(x.drainUs)} µs; drain ${fmt(x.drainRate)} commands/s`,
    );
  }
}
const med = (name: string, f: (x: Result) => number) => median(results.get(name)!.map(f));
console.log(
  `\nmedians of ${RUNS} runs, ${fmt(JOBS)} no-op commands, ${LOOPS} connections claiming ${CLAIM} and completing ${BATCH}:`,
);
const base = shapes.find((x) => x.name === "current") ?? shapes[0]!;
console.log(
  `| shape | intake µs | drain µs | intake + drain µs | drain commands/s | intake + drain ÷ ${base.name} | drain rate ÷ ${base.name} |`,
);
console.log("|---|---|---|---|---|---|---|");
const total = (name: string) => med(name, (x) => x.intakeUs) + med(name, (x) => x.drainUs);
for (const { name } of shapes) {
  const rate = med(name, (x) => x.drainRate);
  console.log(
    `| ${name} | ${fmt(med(name, (x) => x.intakeUs))} | ${fmt(med(name, (x) => x.drainUs))} | ${fmt(total(name))} | ${fmt(rate)} | ${fmt(total(name) / total(base.name), 2)} | ${fmt(rate / med(base.name, (x) => x.drainRate), 2)} |`,
  );
}
for (const { name } of shapes)
  console.log(
    `${name}: drain WAL ${fmt(med(name, (x) => x.walB))} B, table ${fmt(med(name, (x) => x.tableB))} B per command (vacuumed); last run's records per command: ${results.get(name)!.at(-1)!.walTop}`,
  );
for (const x of shapes) await x.db.close();
await admin.end();
await database.cleanup();
