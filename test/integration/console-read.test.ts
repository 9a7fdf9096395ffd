// What the console reads, against real commands: why a command failed (in one
// line, and found by search) from failures the real worker recorded against a
// real HTTP backend; a search that reads a bounded window per page; the
// overview's waiting list; the per-minute chart after a bulk retry.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDb, type TestDb } from "../helpers/db";
import { client, newToken, startApi, type ApiServer } from "../helpers/api";
import { startBackend, type Backend } from "../helpers/backend";
import { startTestWorker, submitWith, waitForStatus, type TestWorker } from "../helpers/engine";
import { registry } from "../../server/command-types";
import { createUrlGuard } from "../../server/outbound/url-guard";
import { list, overview } from "../../server/commands/console-read";
import { resolveCommands, retryCommands } from "../../server/commands/actions";
import { compactStateEntries } from "../../server/db/alerts";
import { shortId } from "../../server/engine/short-id";

let t: TestDb;
let api: ApiServer;
let backend: Backend;
let worker: TestWorker;
let admin: ReturnType<typeof client>;
let submit: (input: Record<string, unknown>) => Promise<string>;
const ids: Record<string, string> = {};

const q = async (input: Record<string, unknown>) => {
  const r = await admin.query("commands.list", input);
  expect(r.status, JSON.stringify(r.error)).toBe(200);
  return r.data as {
    items: { id: string; failureSummary: string | null; status: string }[];
    nextCursor: string | null;
    searched: { window: number; to: string } | null;
  };
};
const found = async (input: Record<string, unknown>) => (await q(input)).items.map((i) => i.id).sort();
/**
 * What a search of a few digits finds besides commands whose random ids hold those digits (the id is searched too),
 * and besides every command sent to the backend when its random port holds them (the URL is searched too).
 */
const foundBesidesIds = async (digits: string, expected: string[]) =>
  (await found({ q: digits })).filter(
    (id) => expected.includes(id) || (!id.includes(digits) && !backend.url.includes(digits)),
  );

beforeAll(async () => {
  t = await createTestDb();
  api = await startApi(t.db);
  backend = await startBackend();
  admin = client(api.url, (await newToken(t.db, "admin", "console")).token);
  const c = await newToken(t.db, "client", "shop");
  submit = submitWith(t.db, registry, c.id);
  // HTTP_ALLOWED_HOSTS=127.0.0.1: the backend is allowed, any other host refused.
  worker = await startTestWorker(t.db, t.url, registry, { checkUrl: createUrlGuard("127.0.0.1") });
  backend.plan("decline", [
    { kind: "status", status: 422, body: { code: "card_declined", message: "Your card was declined." } },
  ]);
  backend.plan("down", [{ kind: "status", status: 503, body: { error: "maintenance" } }]);
  ids.declined = await submit({
    type: "http",
    payload: { url: `${backend.url}/do/decline`, body: { order: 1001 } },
    idempotencyKey: "order-1001",
  });
  ids.refused = await submit({
    type: "http",
    payload: { url: "https://pay.example/charges", body: { order: 1002 } },
    idempotencyKey: "order-1002",
  });
  ids.down = await submit({
    type: "http",
    payload: { url: `${backend.url}/do/down`, body: { order: 1003 } },
    idempotencyKey: "order-1003",
    retry: { maxAttempts: 1 },
  });
  ids.ok = await submit({
    type: "http",
    payload: { url: `${backend.url}/do/ok`, body: { order: 1004 } },
    idempotencyKey: "order-1004",
  });
  await waitForStatus(t.db, ids.declined, ["failed"]);
  await waitForStatus(t.db, ids.refused, ["failed"]);
  await waitForStatus(t.db, ids.down, ["exception"]);
  await waitForStatus(t.db, ids.ok, ["succeeded"]);
  await worker.close();
}, 60_000);

afterAll(async () => {
  await worker?.close();
  await backend?.close();
  await api?.close();
  await t?.drop();
});

describe("why a command failed", () => {
  it("the list says it in one line: the HTTP status and the code and message of the body, the refusal, the last error", async () => {
    const items = new Map((await q({})).items.map((i) => [i.id, i]));
    expect(items.get(ids.declined!)!.failureSummary).toBe("422 card_declined: Your card was declined.");
    expect(items.get(ids.refused!)!.failureSummary).toBe("host pay.example is not in HTTP_ALLOWED_HOSTS");
    expect(items.get(ids.down!)!.failureSummary).toMatch(/503/);
    expect(items.get(ids.ok!)!.failureSummary).toBeNull();
  });

  it("search finds the failure and the error text, every word in any case, and keeps state filters", async () => {
    expect(await found({ q: "card declined" })).toEqual([ids.declined]);
    expect(await found({ q: "CARD_DECLINED" })).toEqual([ids.declined]);
    expect(await foundBesidesIds("422", [ids.declined!])).toEqual([ids.declined]);
    expect(await found({ q: "HTTP_ALLOWED_HOSTS" })).toEqual([ids.refused]);
    expect(await foundBesidesIds("503", [ids.down!])).toEqual([ids.down]);
    expect(await found({ q: "card declined", status: ["failed"] })).toEqual([ids.declined]);
    expect(await found({ q: "card declined", status: ["exception"] })).toEqual([]);
    // what it found before still: the payload, the idempotency key, the id, the short form the console shows
    expect(await foundBesidesIds("1004", [ids.ok!])).toEqual([ids.ok]);
    expect(await found({ q: "order-1003" })).toEqual([ids.down]);
    expect(await found({ q: ids.ok })).toEqual([ids.ok]);
    expect(await found({ q: shortId(ids.ok!) })).toEqual([ids.ok]);
    expect(await found({ q: "nowhere to be found" })).toEqual([]);
  });

  it("reads a search of more than 8 words as one phrase (an idempotency key with spaces is found too)", async () => {
    const key = "refund for order 1005 of customer 42 in store 7";
    const id = await submit({
      type: "http",
      payload: { url: `${backend.url}/do/ok`, body: { order: 1005 } },
      idempotencyKey: key,
      runAt: "2999-01-01T00:00:00Z",
    });
    expect(await found({ q: key })).toEqual([id]);
    expect(await found({ q: "order 1005 of customer 42 in store 7 refund" })).toEqual([]);
    expect(await found({ q: "order 1005 customer 42" })).toEqual([id]);
  });

  it("does not find a command by a secret the console masks (Authorization header, token), but by everything else in its payload", async () => {
    const id = await submit({
      type: "http",
      payload: {
        url: `${backend.url}/do/ok`,
        headers: { Authorization: "Bearer sk_live_51Hx9QzSecretValue", "X-Tenant": "acme-7781" },
        body: { order: 1006, token: "tok_9f8e7d6c5b", note: 'say "hi"' },
      },
      runAt: "2999-01-01T00:00:00Z",
    });
    for (const secret of ["sk_live_51Hx9QzSecretValue", "sk_live", "tok_9f8e7d6c5b", "Bearer sk_"])
      expect(await found({ q: secret }), secret).toEqual([]);
    expect(await found({ q: "acme-7781" })).toEqual([id]);
    expect(await found({ q: "authorization 1006" })).toEqual([id]);
    expect(await found({ q: 'say \\"hi' })).toEqual([id]);
    // the masked text itself is searched: a blanked value's quotes ("") close where the secret was
    expect(await found({ q: '""}' })).toContain(id);
  });

  it("all that match a search (an action on a filter) are the commands the search lists", async () => {
    const r = await admin.mutation("commands.retry", { filter: { q: "card declined" }, reason: "card updated" });
    expect(r.data.updated).toEqual([ids.declined]);
  });
});

describe("a search page reads a bounded window", () => {
  it("stops after the window, says how far it read, and the next pages go on from there: every match once", async () => {
    const c = await newToken(t.db, "client", "window");
    const add = submitWith(t.db, registry, c.id);
    const made: string[] = [];
    for (let i = 0; i < 12; i++)
      made.push(
        await add({
          type: "http",
          payload: { url: "https://w.example/x", body: { n: i, tag: i % 4 === 1 ? "needle" : "hay" } },
          idempotencyKey: `w-${i}`,
          runAt: "2999-01-01T00:00:00Z",
        }),
      );
    // one second apart, the first made the oldest
    await t.db.pool.query(
      `UPDATE commands c SET created_at = now() - make_interval(secs => 100 - x.n) FROM unnest($1::uuid[]) WITH ORDINALITY AS x(id, n) WHERE c.id = x.id`,
      [made],
    );
    const needles = [9, 5, 1].map((i) => made[i]!); // newest first
    // (the created range leaves out the commands of the other tests)
    const f = {
      q: "needle",
      type: "http",
      createdAfter: new Date(Date.now() - 200_000).toISOString(),
      createdBefore: new Date(Date.now() - 50_000).toISOString(),
    };

    const seen: string[] = [];
    const tos: string[] = [];
    let cursor: string | undefined;
    for (let n = 0; n < 10; n++) {
      const page = await list(t.db, { ...f, cursor, limit: 50 }, { searchWindow: 5 });
      seen.push(...page.items.map((i) => i.id));
      if (page.searched) tos.push(page.searched.to);
      if (!page.nextCursor) break;
      cursor = page.nextCursor;
    }
    expect(seen).toEqual(needles);
    // pages of 5: w-11…w-7, w-6…w-2, then w-1, w-0 (the last page reads to the end and says nothing)
    const created = async (i: number) =>
      (
        await t.db.pool.query(`SELECT created_at FROM commands WHERE id = $1`, [made[i]])
      ).rows[0].created_at.toISOString();
    expect(tos).toEqual([await created(7), await created(2)]);

    // An exact idempotency key is found on the first page whatever its age.
    const key = await list(t.db, { ...f, q: "w-0", limit: 50 }, { searchWindow: 5 });
    expect(key.items[0]!.id).toBe(made[0]);
  });
});

describe("overview", () => {
  const waitingOrder =
    "waiting: exceptions first (longest in exception first), then due queued commands (longest due first);" +
    " nothing scheduled for later, nothing a worker holds";
  it(waitingOrder, async () => {
    const db = await createTestDb();
    try {
      const c = await newToken(db.db, "client", "w");
      const add = submitWith(db.db, registry, c.id);
      const sql = (s: string, p: unknown[]) => db.db.pool.query(s, p);
      const mk = async (key: string) =>
        add({ type: "http", payload: { url: "https://w.example/x" }, idempotencyKey: key });
      const ex1 = await mk("ex1"),
        ex2 = await mk("ex2"),
        p1 = await mk("p1"),
        r1 = await mk("r1"),
        future = await mk("future"),
        run = await mk("run"),
        aw = await mk("aw");
      const lease = `lease_id = gen_random_uuid(), locked_by = 'w', locked_until = now() + interval '1 hour'`;
      const free = `lease_id = NULL, locked_by = NULL, locked_until = NULL`;
      await sql(`UPDATE commands SET status = 'running', ${lease} WHERE id = ANY($1::uuid[])`, [
        [ex1, ex2, r1, run, aw],
      ]);
      await sql(
        `UPDATE commands SET status = 'exception', ${free}, error = 'gave up after 3 attempts: HTTP 503' WHERE id = ANY($1::uuid[])`,
        [[ex1, ex2]],
      );
      await sql(`UPDATE commands SET state_changed_at = now() - interval '10 minutes' WHERE id = $1`, [ex1]);
      await sql(`UPDATE commands SET state_changed_at = now() - interval '30 minutes' WHERE id = $1`, [ex2]);
      await sql(
        `UPDATE commands SET status = 'retrying', ${free}, error = 'HTTP 503', run_at = now() - interval '20 minutes' WHERE id = $1`,
        [r1],
      );
      await sql(`UPDATE commands SET status = 'awaiting', run_at = now() - interval '1 hour' WHERE id = $1`, [aw]);
      // a higher priority: still listed by how long it has been due
      await sql(`UPDATE commands SET run_at = now() - interval '5 minutes', priority = 5 WHERE id = $1`, [p1]);
      await sql(`UPDATE commands SET run_at = now() + interval '1 year' WHERE id = $1`, [future]);

      const o = await overview(db.db, 30);
      expect(o.waiting.map((w) => [w.id, w.why])).toEqual([
        [ex2, "exception"],
        [ex1, "exception"],
        [r1, "due"],
        [p1, "due"],
      ]);
      expect(o.waiting[0]!.summary).toBe("gave up after 3 attempts: HTTP 503");
      expect(o.due).toEqual({ count: 2, max: 1_000 });
      expect(o.counts.exception).toBe(2);

      // Many exceptions leave room for the due queue still.
      const more: string[] = [];
      for (let i = 0; i < 10; i++) more.push(await mk(`more-${i}`));
      await sql(`UPDATE commands SET status = 'running', ${lease} WHERE id = ANY($1::uuid[])`, [more]);
      await sql(`UPDATE commands SET status = 'exception', ${free} WHERE id = ANY($1::uuid[])`, [more]);
      const o2 = await overview(db.db, 30);
      expect(o2.waiting.map((w) => w.why)).toEqual([...Array(8).fill("exception"), "due", "due"]);
      expect(o2.waiting.slice(0, 2).map((w) => w.id)).toEqual([ex2, ex1]);
      expect(o2.waiting.slice(8).map((w) => w.id)).toEqual([r1, p1]);
    } finally {
      await db.drop();
    }
  });

  it("the per-minute chart keeps an incident after a bulk retry, a resolve and the counters' compaction", async () => {
    const db = await createTestDb();
    try {
      const c = await newToken(db.db, "client", "chart");
      const add = submitWith(db.db, registry, c.id);
      const made: string[] = [];
      for (let i = 0; i < 30; i++)
        made.push(await add({ type: "http", payload: { url: "https://w.example/x", body: { i } } }));
      await db.db.pool.query(
        `UPDATE commands SET status = 'running', lease_id = gen_random_uuid(),
           locked_by = 'w', locked_until = now() + interval '1 hour'
           WHERE id = ANY($1::uuid[])`,
        [made],
      );
      await db.db.pool.query(
        `UPDATE commands SET status = 'exception', lease_id = NULL, locked_by = NULL, locked_until = NULL, error = 'timeout' WHERE id = ANY($1::uuid[])`,
        [made],
      );
      const exceptions = async () => (await overview(db.db, 30)).throughput.reduce((a, r) => a + r.exception, 0);
      expect(await exceptions()).toBe(30);

      const retried = await retryCommands(
        db.db,
        { filter: { status: ["exception"] } },
        { name: "ops@example.com" },
        "backend is back",
      );
      expect(retried.updated).toHaveLength(30);
      expect(await exceptions()).toBe(30);

      // one goes to exception again and is resolved by hand: one more exception, one success
      await db.db.pool.query(
        `UPDATE commands SET status = 'running', lease_id = gen_random_uuid(), locked_by = 'w', locked_until = now() + interval '1 hour' WHERE id = $1`,
        [made[0]],
      );
      await db.db.pool.query(
        `UPDATE commands SET status = 'exception', lease_id = NULL, locked_by = NULL, locked_until = NULL WHERE id = $1`,
        [made[0]],
      );
      await resolveCommands(
        db.db,
        { ids: [made[0]!] },
        "succeeded",
        { name: "ops@example.com" },
        "the bank confirmed it",
      );
      let o = await overview(db.db, 30);
      expect(o.throughput.reduce((a, r) => a + r.exception, 0)).toBe(31);
      expect(o.throughput.reduce((a, r) => a + r.succeeded, 0)).toBe(1);

      // counted 5 minutes ago, then folded into one row per minute: still in its minute
      await db.db.pool.query(`UPDATE state_entries SET minute = minute - interval '5 minutes'`);
      await compactStateEntries(db.db.pool, 30);
      o = await overview(db.db, 30);
      const rows = o.throughput.filter((r) => r.exception + r.succeeded > 0);
      expect(rows.reduce((a, r) => a + r.exception, 0)).toBe(31);
      expect(rows.reduce((a, r) => a + r.succeeded, 0)).toBe(1);
      for (const r of rows) expect(Date.now() - new Date(r.minute).getTime()).toBeGreaterThanOrEqual(5 * 60_000);
      expect((await db.db.pool.query(`SELECT DISTINCT shard FROM state_entries`)).rows).toEqual([{ shard: -1 }]);
    } finally {
      await db.drop();
    }
  });
});
