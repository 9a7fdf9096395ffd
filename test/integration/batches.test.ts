// Batches (DESIGN §8) against real PostgreSQL, the real API over loopback and
// real workers: counts and done under concurrent completion by three workers,
// done flipping back on an operator's retry (and the callback sent again),
// the signed callback retried until 2xx with each try recorded, visibility,
// duplicates that do not join, bad batch input, the list filter, retention.
import { createHmac } from "node:crypto";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createTestDb, type TestDb } from "../helpers/db";
import { client, newToken, startApi, type ApiServer } from "../helpers/api";
import { startBackend, type Backend } from "../helpers/backend";
import { startTestWorker, waitUntil, type TestWorker } from "../helpers/engine";
import { registry } from "../../server/command-types";
import { createDb, type Db } from "../../server/db/client";
import { createGroupInserter } from "../../server/commands/group-insert";
import { retryCommands } from "../../server/commands/actions";
import { createMetrics } from "../../server/metrics";
import { pruneBatches } from "../../server/db/batches";
import { AT_REST, STATES } from "../../server/engine/states";

let t: TestDb;
let api: ApiServer;
let backend: Backend;
let tok: { token: string; signingSecret: string; id: string };
let c: ReturnType<typeof client>;
const pools: Db[] = [];
let workers: TestWorker[] = [];

beforeAll(async () => {
  t = await createTestDb();
  backend = await startBackend();
  api = await startApi(t.db, {
    intake: {
      registry,
      insert: createGroupInserter(t.db),
      hostCheck: (url) => (new URL(url).hostname === "blocked.example" ? "host not in HTTP_ALLOWED_HOSTS" : null),
    },
  });
  tok = await newToken(t.db, "client");
  c = client(api.url, tok.token);
});
afterEach(async () => {
  for (const w of workers) await w.close();
  workers = [];
});
afterAll(async () => {
  for (const p of pools) await p.close();
  await api?.close();
  await backend?.close();
  await t?.drop();
});

async function startWorkers(n: number) {
  for (let i = 0; i < n; i++) {
    const db = createDb(t.url, { max: 8 });
    pools.push(db);
    workers.push(await startTestWorker(db, t.url, registry, { workerId: `batch-${i}`, batchPollMs: 60_000 }));
  }
}

const http = (key: string, extra: Record<string, unknown> = {}) => ({
  type: "http",
  payload: { url: `${backend.url}/do/${key}`, method: "POST" },
  ...extra,
});

async function submitBatch(input: unknown, who = c) {
  const r = await who.mutation("intake.submitBatch", input);
  expect(r.status, JSON.stringify(r.error)).toBe(200);
  return r.data as { receipts: { ok: boolean; id?: string; duplicate?: boolean }[]; batchId?: string };
}
const getBatch = async (id: string, who = c) => (await who.query("intake.getBatch", { id })).data;
const deliveries = async (batchId: string) =>
  (
    await t.db.pool.query<{ id: string; attempts: number; delivered_at: Date | null; body: any }>(
      `SELECT id, attempts, delivered_at, body FROM batch_deliveries WHERE batch_id = $1 ORDER BY id`,
      [batchId],
    )
  ).rows;

describe("counts and done", () => {
  it("three workers complete three batches at once: counts always add up, done only at rest, one callback each", async () => {
    // Some commands fail (a 422 is a business failure), the rest succeed.
    backend.chooser((key) => (key.endsWith("-f") ? { kind: "status", status: 422 } : { kind: "ok" }));
    const ids: string[] = [];
    for (let b = 0; b < 3; b++) {
      const commands = Array.from({ length: 200 }, (_, i) => http(`b${b}-${i}${i % 7 === 0 ? "-f" : ""}`));
      const r = await submitBatch({ commands, batch: { name: `load ${b}`, callbackUrl: `${backend.url}/callback` } });
      expect(r.receipts.every((x) => x.ok)).toBe(true);
      ids.push(r.batchId!);
    }
    const first = await getBatch(ids[0]!);
    expect(first).toMatchObject({ name: "load 0", total: 200, done: false, doneAt: null });
    expect(first.counts.pending).toBe(200);
    expect(Object.keys(first.counts)).toEqual([...STATES]);

    await startWorkers(3);
    // While they run: every read adds up to the total, and done is only ever said with every command at rest.
    const samples: any[] = [];
    await waitUntil(
      async () => {
        const views = await Promise.all(ids.map((id) => getBatch(id)));
        samples.push(...views);
        return views.every((v) => v.done);
      },
      "every batch done",
      60_000,
    );
    for (const v of samples) {
      expect(Object.values(v.counts as Record<string, number>).reduce((a, b) => a + b, 0)).toBe(200);
      if (v.done) expect(AT_REST.reduce((a, s) => a + v.counts[s], 0)).toBe(200);
    }
    for (const id of ids) {
      const v = await getBatch(id);
      const actual = (
        await t.db.pool.query<{ status: string; n: number }>(
          `SELECT status, count(*)::int AS n FROM commands WHERE batch_id = $1 GROUP BY status`,
          [id],
        )
      ).rows;
      expect(v.counts).toEqual({
        ...Object.fromEntries(STATES.map((s) => [s, 0])),
        ...Object.fromEntries(actual.map((r) => [r.status, r.n])),
      });
      expect(v.counts.failed).toBe(29);
      expect(v.counts.succeeded).toBe(171);
      expect(v.doneAt).not.toBeNull();
    }
    // One callback per batch (it became done once), delivered, signed with the client's secret.
    await waitUntil(
      async () => (await Promise.all(ids.map(deliveries))).every((d) => d.length === 1 && d[0]!.delivered_at),
      "the batch callbacks",
    );
    const calls = backend.requests.filter(
      (r) => r.path === "/callback" && ids.includes(String(r.headers["x-batch-id"])),
    );
    expect(calls).toHaveLength(3);
    for (const call of calls) {
      expect(call.headers["x-conveyor-signature"]).toBe(
        `sha256=${createHmac("sha256", tok.signingSecret).update(call.body).digest("hex")}`,
      );
      const body = JSON.parse(call.body);
      expect(body).toEqual(await getBatch(String(call.headers["x-batch-id"])));
    }
    backend.chooser(null);
  });

  it("a batch through retries, exception and an operator's retry: done flips back, and the callback is sent again", async () => {
    backend.plan("x-flaky", [
      { kind: "status", status: 503 },
      { kind: "status", status: 503 },
    ]);
    const r = await submitBatch({
      commands: [http("x-ok"), http("x-flaky", { retry: { maxAttempts: 2, backoffMs: 10, maxBackoffMs: 20 } })],
      batch: { callbackUrl: `${backend.url}/callback` },
    });
    const id = r.batchId!;
    await startWorkers(1);
    await waitUntil(async () => (await getBatch(id)).done, "done with an exception");
    expect((await getBatch(id)).counts).toMatchObject({ succeeded: 1, exception: 1 });
    await waitUntil(async () => (await deliveries(id)).some((d) => d.delivered_at), "the first callback");

    const flaky = r.receipts[1]!.id!;
    expect((await retryCommands(t.db, { ids: [flaky] }, { name: "op" }, "backend fixed")).updated).toEqual([flaky]);
    // Open again as soon as the retry commits (the trigger), before any worker looks.
    const reopened = await getBatch(id);
    expect(reopened.done).toBe(false);
    expect(reopened.doneAt).toBeNull();
    await waitUntil(async () => (await getBatch(id)).done, "done again");
    expect((await getBatch(id)).counts).toMatchObject({ succeeded: 2, exception: 0 });
    await waitUntil(
      async () => (await deliveries(id)).filter((d) => d.delivered_at).length === 2,
      "the second callback",
    );
    const sent = (await deliveries(id)).map((d) => d.body.counts);
    expect(sent[0]).toMatchObject({ succeeded: 1, exception: 1 });
    expect(sent[1]).toMatchObject({ succeeded: 2, exception: 0 });
  });

  it("the callback is retried until 2xx, each try recorded and shown on the console's batch", async () => {
    backend.callbackPlan([500, 503]);
    const r = await submitBatch({
      commands: [http("cb-1")],
      batch: { name: "retried", callbackUrl: `${backend.url}/callback` },
    });
    await startWorkers(1);
    await waitUntil(async () => (await deliveries(r.batchId!))[0]?.delivered_at != null, "delivered", 30_000);
    const admin = client(api.url, (await newToken(t.db, "admin")).token);
    const detail = (await admin.query("batches.get", { id: r.batchId })).data;
    expect(detail.batch).toMatchObject({
      id: r.batchId,
      name: "retried",
      total: 1,
      done: true,
      callbackUrl: `${backend.url}/callback`,
    });
    expect(detail.deliveries).toHaveLength(1);
    expect(detail.deliveries[0]).toMatchObject({ attempts: 3, lastStatus: 200, nextAt: null });
    expect(detail.deliveries[0].tries.map((x: any) => x.status)).toEqual([500, 503, 200]);
    const calls = backend.requests.filter((x) => x.path === "/callback" && x.headers["x-batch-id"] === r.batchId);
    expect(calls).toHaveLength(3);
    expect(new Set(calls.map((x) => x.body)).size).toBe(1); // the same view each time
  });
});

describe("intake", () => {
  it("a client sees only its own batches; an admin token sees all; REST answers the same", async () => {
    const r = await submitBatch({ commands: [http("vis", { runAt: "2999-01-01T00:00:00Z" })], batch: {} });
    const other = client(api.url, (await newToken(t.db, "client")).token);
    const refused = await other.query("intake.getBatch", { id: r.batchId });
    expect(refused.status).toBe(404);
    expect(refused.error!.data.code).toBe("NOT_FOUND");
    const admin = client(api.url, (await newToken(t.db, "admin")).token);
    expect((await admin.query("intake.getBatch", { id: r.batchId })).data).toMatchObject({
      id: r.batchId,
      name: null,
      total: 1,
    });

    const rest = await fetch(`${api.url}/api/v1/batches/${r.batchId}`, {
      headers: { authorization: `Bearer ${tok.token}` },
    });
    expect(rest.status).toBe(200);
    expect(await rest.json()).toEqual(await getBatch(r.batchId!));
    const restOther = await fetch(`${api.url}/api/v1/batches/${r.batchId}`, {
      headers: { authorization: `Bearer ${(await newToken(t.db, "client")).token}` },
    });
    expect(restOther.status).toBe(404);
    const bad = await fetch(`${api.url}/api/v1/batches/not-a-uuid`, {
      headers: { authorization: `Bearer ${tok.token}` },
    });
    expect(bad.status).toBe(400);
    expect((await bad.json()).error.issues[0].path).toEqual(["id"]);
    const viaRest = await fetch(`${api.url}/api/v1/commands/batch`, {
      method: "POST",
      headers: { authorization: `Bearer ${tok.token}`, "content-type": "application/json" },
      body: JSON.stringify({ commands: [http("rest-1", { runAt: "2999-01-01T00:00:00Z" })], batch: { name: "rest" } }),
    });
    const body = await viaRest.json();
    expect(viaRest.status).toBe(200);
    expect((await getBatch(body.batchId)).name).toBe("rest");
  });

  it("duplicates answer their earlier command and do not join; a retried request answers its batch", async () => {
    const later = { runAt: "2999-01-01T00:00:00Z" };
    const first = await submitBatch({
      commands: [http("d1", { ...later, idempotencyKey: "dup-1" }), http("d2", { ...later, idempotencyKey: "dup-2" })],
      batch: { name: "first" },
    });
    expect((await getBatch(first.batchId!)).total).toBe(2);

    const second = await submitBatch({
      commands: [http("d1", { ...later, idempotencyKey: "dup-1" }), http("d3", { ...later, idempotencyKey: "dup-3" })],
      batch: { name: "second" },
    });
    expect(second.receipts[0]).toMatchObject({ ok: true, id: first.receipts[0]!.id, duplicate: true });
    expect(second.batchId).not.toBe(first.batchId);
    expect((await getBatch(second.batchId!)).total).toBe(1);
    const owner = await t.db.pool.query(`SELECT batch_id FROM commands WHERE id = $1`, [first.receipts[0]!.id]);
    expect(owner.rows[0].batch_id).toBe(first.batchId);

    // The same request again (its answer was lost): every item answered by the first batch's commands.
    const again = await submitBatch({
      commands: [http("d1", { ...later, idempotencyKey: "dup-1" }), http("d2", { ...later, idempotencyKey: "dup-2" })],
      batch: { name: "first" },
    });
    expect(again.batchId).toBe(first.batchId);
    expect(again.receipts.every((x) => x.duplicate)).toBe(true);
    // Answered by commands of two batches: no batch to name.
    const mixed = await submitBatch({
      commands: [http("d1", { ...later, idempotencyKey: "dup-1" }), http("d3", { ...later, idempotencyKey: "dup-3" })],
      batch: {},
    });
    expect(mixed.batchId).toBeUndefined();
    // Nothing valid: nothing stored, no batch.
    const none = await submitBatch({ commands: [{ type: "no-such-type", payload: {} }], batch: { name: "empty" } });
    expect(none.receipts[0]!.ok).toBe(false);
    expect(none.batchId).toBeUndefined();
    const batches = await t.db.pool.query(`SELECT count(*)::int AS n FROM batches WHERE name = 'empty'`);
    expect(batches.rows[0].n).toBe(0);
  });

  it("bad batch input is a BAD_REQUEST naming the field, and stores nothing", async () => {
    const count = async () =>
      (await t.db.pool.query(`SELECT (SELECT count(*) FROM commands)::int + (SELECT count(*) FROM batches)::int AS n`))
        .rows[0].n;
    const before = await count();
    const cases: [unknown, (string | number)[]][] = [
      [{ callbackUrl: "ftp://x.example/" }, ["batch", "callbackUrl"]],
      [{ callbackUrl: "https://user:pw@x.example/" }, ["batch", "callbackUrl"]],
      [{ callbackUrl: "https://blocked.example/cb" }, ["batch", "callbackUrl"]],
      [{ name: "" }, ["batch", "name"]],
      [{ name: "n".repeat(201) }, ["batch", "name"]],
      [{ size: 3 }, ["batch"]],
      ["yes", ["batch"]],
    ];
    for (const [batch, path] of cases) {
      const r = await c.mutation("intake.submitBatch", { commands: [http("bad")], batch });
      expect(r.status, JSON.stringify(batch)).toBe(400);
      expect(
        r.error!.data.issues!.map((i) => i.path),
        JSON.stringify(batch),
      ).toContainEqual(path);
    }
    expect(await count()).toBe(before);
  });
});

describe("console and housekeeping", () => {
  it("commands.list filters by batchId, commands.get names the batch, batches.list pages, metrics count them", async () => {
    const later = { runAt: "2999-01-01T00:00:00Z" };
    const a = await submitBatch({
      commands: [http("l1", later), http("l2", later), http("l3", later)],
      batch: { name: "A" },
    });
    await submitBatch({ commands: [http("l4", later)], batch: { name: "B" } });
    const admin = client(api.url, (await newToken(t.db, "admin")).token);
    const listed = await admin.query("commands.list", { batchId: a.batchId, limit: 2 });
    expect(listed.status, JSON.stringify(listed.error)).toBe(200);
    expect(listed.data.items).toHaveLength(2);
    const next = await admin.query("commands.list", { batchId: a.batchId, limit: 2, cursor: listed.data.nextCursor });
    const all = [...listed.data.items, ...next.data.items].map((x: any) => x.id).sort();
    expect(all).toEqual(a.receipts.map((x) => x.id).sort());
    expect((await admin.query("commands.countMatching", { batchId: a.batchId })).data).toMatchObject({ total: 3 });
    expect((await admin.query("commands.get", { id: a.receipts[0]!.id })).data.command.batchId).toBe(a.batchId);
    expect((await admin.query("commands.list", { batchId: "nope" })).error!.data.issues![0]!.path).toEqual(["batchId"]);

    const page1 = await admin.query("batches.list", { limit: 1 });
    expect(page1.data.items[0]).toMatchObject({ name: "B", total: 1, client: expect.any(String) });
    const page2 = await admin.query("batches.list", { limit: 1, cursor: page1.data.nextCursor });
    expect(page2.data.items[0]).toMatchObject({ id: a.batchId, name: "A", total: 3 });
    expect((await admin.query("batches.list", { cursor: "garbage" })).status).toBe(400);

    const text = (await createMetrics(t.db).render()).body;
    const open = Number(/conveyor_batches\{state="open"\} (\d+)/.exec(text)?.[1]);
    const done = Number(/conveyor_batches\{state="done"\} (\d+)/.exec(text)?.[1]);
    const real = (
      await t.db.pool.query(
        `SELECT count(*) FILTER (WHERE done)::int AS d, count(*) FILTER (WHERE NOT done)::int AS o FROM batches`,
      )
    ).rows[0];
    expect({ open, done }).toEqual({ open: real.o, done: real.d });
  });

  it("retention removes done batches once their commands are gone, and keeps the others", async () => {
    const r = await submitBatch({ commands: [http("p1", { runAt: "2999-01-01T00:00:00Z" })], batch: { name: "old" } });
    const keep = await submitBatch({
      commands: [http("p2", { runAt: "2999-01-01T00:00:00Z" })],
      batch: { name: "kept" },
    });
    await t.db.pool.query(
      `UPDATE batches SET done = true, done_at = now() - interval '40 days' WHERE id = ANY($1::uuid[])`,
      [[r.batchId, keep.batchId]],
    );
    expect(await pruneBatches(t.db, 30, 100)).toBe(0); // their commands are still there
    await t.db.pool.query(`DELETE FROM commands WHERE id = $1`, [r.receipts[0]!.id]);
    expect(await pruneBatches(t.db, 30, 100)).toBe(1);
    expect(
      (await t.db.pool.query(`SELECT name FROM batches WHERE id = ANY($1::uuid[])`, [[r.batchId, keep.batchId]])).rows,
    ).toEqual([{ name: "kept" }]);
  });
});
