// What reading a batch costs (DESIGN §8: "a batch of 1,000 read 10 times a
// second must stay cheap"): intake.getBatch's statement (the sum of
// batch_counts' deltas) against counting the batch's commands, for batches of
// 1,000 and 10,000 whose commands were completed by 8 connections (8 shards
// of deltas per state) in a table of 200,000 other commands. Prints medians and
// p95 of 200 reads each, and the rows each statement read.
// Usage: npm run bench:batch-read
import pg from "pg";
import { startDatabase, median, percentile, fmt, benchToken } from "./lib";
import { createDb } from "../server/db/client";
import { directIntake, submitItems, submitBatch } from "../server/commands/submit";
import { createRegistry } from "../server/command-types/registry";
import { http } from "../server/command-types/http";
import { selectBatch } from "../server/db/batches";

const database = await startDatabase();
const db = createDb(database.url, { max: 10 });
const { id: clientId } = await benchToken(db);
const intake = directIntake(db, createRegistry([http]));
const cmd = (i: number) => ({
  type: "http",
  payload: { url: `https://backend.example/${i}` },
  runAt: "2999-01-01T00:00:00Z",
});

for (let i = 0; i < 200_000; i += 1000)
  await submitBatch(
    intake,
    clientId,
    Array.from({ length: 1000 }, (_, j) => cmd(i + j)),
  );

async function makeBatch(size: number): Promise<string> {
  let id = "";
  // One batch of `size` is at most 1,000 per request: the larger one is stored by one request and grown by hand.
  const r = await submitItems(
    intake,
    clientId,
    Array.from({ length: Math.min(size, 1000) }, (_, j) => cmd(j)),
    {
      batch: { name: `read ${size}` },
    },
  );
  id = r.batchId!;
  if (size > 1000) {
    for (let i = 1000; i < size; i += 1000) {
      const more = await submitBatch(
        intake,
        clientId,
        Array.from({ length: 1000 }, (_, j) => cmd(i + j)),
      );
      const ids = more.flatMap((x) => (x.ok ? [x.id] : []));
      await db.pool.query(`UPDATE commands SET batch_id = $1 WHERE id = ANY($2::uuid[])`, [id, ids]);
    }
    await db.pool.query(`UPDATE batches SET total = $2 WHERE id = $1`, [id, size]);
    await db.pool.query(`UPDATE batch_counts SET n = $2 WHERE batch_id = $1 AND status = 'pending'`, [id, size]);
  }
  // Complete them from 8 connections, a slice each, through running (each state change is counted by its writer).
  const clients = await Promise.all(
    Array.from({ length: 8 }, async () => {
      const c = new pg.Client({ connectionString: database.url });
      await c.connect();
      return c;
    }),
  );
  await Promise.all(
    clients.map(async (c, k) => {
      const { rows } = await c.query<{ id: string }>(
        `SELECT id FROM commands WHERE batch_id = $1 ORDER BY id OFFSET $2 LIMIT $3`,
        [id, (k * size) / 8, size / 8],
      );
      for (let i = 0; i < rows.length; i += 25) {
        const ids = rows.slice(i, i + 25).map((r) => r.id);
        await c.query(
          `UPDATE commands SET status = 'running', lease_id = gen_random_uuid(), locked_by = 'bench', locked_until = now() + interval '1 minute' WHERE id = ANY($1::uuid[])`,
          [ids],
        );
        await c.query(
          `UPDATE commands SET status = $2, lease_id = NULL, locked_by = NULL, locked_until = NULL, finished_at = now() WHERE id = ANY($1::uuid[])`,
          [ids, i % 100 === 0 ? "failed" : "succeeded"],
        );
      }
    }),
  );
  for (const c of clients) await c.end();
  return id;
}

async function time(fn: () => Promise<unknown>, n = 200): Promise<number[]> {
  for (let i = 0; i < 20; i++) await fn();
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await fn();
    out.push(performance.now() - t0);
  }
  return out.sort((a, b) => a - b);
}
const plan = async (sql: string, params: unknown[]) => {
  const { rows } = await db.pool.query(`EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) ${sql}`, params);
  const p = rows[0]["QUERY PLAN"][0];
  return { buffers: p.Plan["Shared Hit Blocks"] + p.Plan["Shared Read Blocks"] };
};

await db.pool.query("VACUUM ANALYZE");
console.log(
  `\nBatch reads — one PostgreSQL (embedded), 200,000 other commands, 200 reads each, after 20 warm-up reads`,
);
console.log(
  "| batch | getBatch (batch_counts) p50 / p95 ms | buffers | count(*) of its commands p50 / p95 ms | buffers |",
);
console.log("|---|---|---|---|---|");
const COUNT = `SELECT status, count(*)::int FROM commands WHERE batch_id = $1 GROUP BY status`;
for (const size of [1_000, 10_000]) {
  const id = await makeBatch(size);
  await db.pool.query("VACUUM ANALYZE");
  const view = await selectBatch(db, id, clientId);
  const sum = Object.values(view!.counts).reduce((a, b) => a + (b ?? 0), 0);
  if (sum !== size) throw new Error(`counts add up to ${sum}, not ${size}`);
  const a = await time(() => selectBatch(db, id, clientId));
  const b = await time(() => db.pool.query(COUNT, [id]));
  const shards = (await db.pool.query(`SELECT count(*)::int AS n FROM batch_counts WHERE batch_id = $1`, [id])).rows[0]
    .n;
  const pa = await plan(
    `SELECT status, sum(n)::int FROM batch_counts WHERE batch_id = $1 GROUP BY status HAVING sum(n) <> 0`,
    [id],
  );
  const pb = await plan(COUNT, [id]);
  console.log(
    `| ${fmt(size)} (${shards} count rows) | ${fmt(median(a), 3)} / ${fmt(percentile(a, 95), 3)} | ${pa.buffers} | ${fmt(median(b), 3)} / ${fmt(percentile(b, 95), 3)} | ${pb.buffers} |`,
  );
}
await db.close();
await database.cleanup();
process.exit(0);
