// Leased commands are not in the status, type and created_at indexes
// (server/db/leased.ts): every query that must see all commands reads both
// halves. Here every state, some of them leased, against plain SQL that
// reads the table itself.
import { afterAll, beforeAll, expect, it } from "vitest";
import { createTestDb, type TestDb } from "../helpers/db";
import { testClient } from "../helpers/engine";
import { commandInEveryState } from "../helpers/fixtures";
import { countByStatus, countMatching, listCommands, searchCommands } from "../../server/db/commands-read";
import { idsMatching } from "../../server/db/operator-actions";
import { dueCount, waiting } from "../../server/db/overview";
import type { ListFilter } from "../../server/db/command-filter";
import { measure, type RuleRow } from "../../server/db/alerts";

let t: TestDb;
beforeAll(async () => {
  t = await createTestDb();
  const { clientId } = await testClient(t.db);
  for (const p of ["a", "b", "c"]) await commandInEveryState(t.db, clientId, p);
  // awaiting and compensating commands are leased while a worker polls or compensates them: lease one of each
  await t.db.pool.query(
    `UPDATE commands SET lease_id = gen_random_uuid(), locked_by = 'test', locked_until = now() + interval '1 hour'
     WHERE idempotency_key IN ('a-awaiting', 'a-compensating')`,
  );
  await t.db.pool.query(`ANALYZE commands`);
});
afterAll(async () => t?.drop());

const plain = async (where = "true") =>
  (
    await t.db.pool.query<{ id: string }>(`SELECT id FROM commands WHERE ${where} ORDER BY created_at DESC, id DESC`)
  ).rows.map((r) => r.id);

it("the fixtures have leased and unleased commands in the same states", async () => {
  const { rows } = await t.db.pool.query(
    `SELECT status, lease_id IS NOT NULL AS leased, count(*)::int AS n FROM commands GROUP BY 1, 2 ORDER BY 1, 2`,
  );
  expect(rows).toContainEqual({ status: "running", leased: true, n: 3 });
  expect(rows).toContainEqual({ status: "awaiting", leased: true, n: 1 });
  expect(rows).toContainEqual({ status: "awaiting", leased: false, n: 2 });
});

it("counts every state as the table has it", async () => {
  const { rows } = await t.db.pool.query<{ status: string; n: number }>(
    `SELECT status::text, count(*)::int AS n FROM commands GROUP BY 1`,
  );
  expect(await countByStatus(t.db)).toEqual(Object.fromEntries(rows.map((r) => [r.status, r.n])));
});

it("lists every command once, in order, across cursor pages, with and without filters", async () => {
  const cases: [ListFilter, string][] = [
    [{}, "true"],
    [{ status: ["running"] }, "status = 'running'"],
    [{ status: ["awaiting", "succeeded"] }, "status IN ('awaiting', 'succeeded')"],
    // no leasable state: the leased half is not read at all
    [{ status: ["exception", "failed"] }, "status IN ('exception', 'failed')"],
    [{ type: "http" }, "type = 'http'"],
  ];
  for (const [filter, where] of cases) {
    const seen: string[] = [];
    let cursor: { createdAt: string; id: string } | null = null;
    for (;;) {
      const page = await listCommands(t.db, filter, cursor, 4);
      seen.push(...page.map((r) => r.id));
      if (page.length < 4) break;
      const last = page.at(-1)!;
      cursor = { createdAt: last.created_at.toISOString(), id: last.id };
    }
    expect(seen, JSON.stringify(filter)).toEqual(await plain(where));
    expect(await idsMatching(t.db, filter, 1000), JSON.stringify(filter)).toEqual(await plain(where));
    expect(await countMatching(t.db, filter), JSON.stringify(filter)).toBe((await plain(where)).length);
  }
});

it("a text search finds leased and unleased commands, every one once, across pages", async () => {
  // The running (leased) and retrying (not) commands of each prefix call https://backend.example/r…
  for (const window of [2, 1000]) {
    const seen: string[] = [];
    let cursor: { createdAt: string; id: string } | null = null;
    for (;;) {
      const page = await searchCommands(t.db, { q: "BACKEND.example/R" }, cursor, 2, window);
      seen.push(...page.rows.map((r) => r.id));
      if (!page.next) break;
      cursor = { createdAt: page.next.createdAt.toISOString(), id: page.next.id };
    }
    expect(seen, `window ${window}`).toEqual(await plain("payload->>'url' LIKE 'https://backend.example/r%'"));
  }
});

it("the overview's waiting list: every exception, and every queued command that is due and not held by a worker", async () => {
  const w = await waiting(t.db, 100);
  expect(w.exception.map((r) => r.id).sort()).toEqual((await plain("status = 'exception'")).sort());
  expect(w.due.map((r) => r.id).sort()).toEqual(
    (
      await plain(
        "status IN ('pending', 'retrying', 'compensating') AND lease_id IS NULL AND NOT key_waiting AND run_at <= now()",
      )
    ).sort(),
  );
  expect(w.due.map((r) => r.id)).not.toContain((await plain("idempotency_key = 'a-compensating'"))[0]);
});

it("the overview reads the due commands through the claim index (its whole predicate) and the exceptions through theirs, whatever the table's size", async () => {
  // The statements as the overview sends them, planned where the planner must use an index if one can serve.
  const sent: { text: string; values: unknown[] }[] = [];
  const pool = new Proxy(t.db.pool, {
    get(target, prop, receiver) {
      if (prop !== "query") return Reflect.get(target, prop, receiver);
      return (text: string, values: unknown[] = []) => {
        sent.push({ text, values });
        return target.query(text, values);
      };
    },
  });
  const db = { ...t.db, pool };
  await waiting(db, 10);
  await dueCount(db, 10);
  const due = sent.filter((q) => q.text.includes("WITH RECURSIVE"));
  expect(due).toHaveLength(2);
  const client = await t.db.pool.connect();
  try {
    await client.query("SET enable_seqscan = off");
    await client.query("SET enable_bitmapscan = off");
    for (const q of due) {
      const plan = JSON.stringify((await client.query(`EXPLAIN (FORMAT JSON) ${q.text}`, q.values)).rows[0]);
      const scans = [...plan.matchAll(/"Index Name":"([a-z_]+)"/g)].map((m) => m[1]);
      expect(scans.length, plan).toBeGreaterThan(0);
      expect(new Set(scans), plan).toEqual(new Set(["commands_claim_idx"]));
      expect(plan).not.toContain("Seq Scan");
    }
    // and the exceptions, longest in that state first, through their own index (no sort of every exception)
    await client.query("SET enable_sort = off");
    const exceptions = sent.find((q) => q.text.includes("status = 'exception'"))!;
    const plan = JSON.stringify(
      (await client.query(`EXPLAIN (FORMAT JSON) ${exceptions.text}`, exceptions.values)).rows[0],
    );
    expect(
      [...plan.matchAll(/"Index Name":"([a-z_]+)"/g)].map((m) => m[1]),
      plan,
    ).toEqual(["commands_exception_since_idx"]);
    expect(plan).not.toContain('"Node Type":"Sort"');
  } finally {
    client.release();
  }
});

it("alert rules see leased commands (a stuck rule over running and awaiting)", async () => {
  await t.db.pool.query(`UPDATE commands SET state_changed_at = now() - interval '2 hours'`);
  const rule = {
    kind: "stuck",
    states: ["running", "awaiting"],
    type: null,
    age_seconds: 600,
    window_seconds: null,
  } as unknown as RuleRow;
  const client = await t.db.pool.connect();
  try {
    const m = await measure(client, rule);
    expect(m.value).toBe(6);
    expect(m.worst).toHaveLength(5);
  } finally {
    client.release();
  }
});
