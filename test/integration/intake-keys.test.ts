// Idempotency keys inside one intake.submitBatch (DESIGN §3): a stored command
// with the key always answers for an item; only a key nothing stored has yet
// is judged against earlier items of the same batch. Over real HTTP (the group
// inserter the web process uses) and directly, on a real PostgreSQL.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDb, type TestDb } from "../helpers/db";
import { client, newToken, startApi, type ApiServer } from "../helpers/api";
import { moveTo } from "../helpers/fixtures";
import { createGroupInserter } from "../../server/commands/group-insert";
import { directIntake, submitBatch, type IntakeDeps, type Receipt, type Rejection } from "../../server/commands/submit";
import { registry } from "../../server/command-types";
import { http } from "../../server/command-types/http";
import { createRegistry } from "../../server/command-types/registry";
import { defineCommandType } from "../../server/command-types/types";
import { z } from "zod";
import type { Db } from "../../server/db/client";

let t: TestDb;
let api: ApiServer;
let clientId: string;
let a: ReturnType<typeof client>;

const A = { url: "https://backend.example/pay", body: { amount: 10, currency: "EUR" } };
const B = { url: "https://backend.example/pay", body: { amount: 11, currency: "EUR" } };
const cmd = (key: string, payload: unknown) => ({ type: "http", idempotencyKey: key, payload });
const stored = async (key: string) =>
  (
    await t.db.pool.query<{ id: string; payload: unknown; status: string }>(
      "SELECT id, payload, status FROM commands WHERE client_id = $1 AND idempotency_key = $2",
      [clientId, key],
    )
  ).rows;
const countCommands = async () =>
  (await t.db.pool.query<{ n: number }>("SELECT count(*)::int AS n FROM commands")).rows[0]!.n;
const batch = async (commands: unknown[]) => {
  const r = await a.mutation("intake.submitBatch", { commands });
  expect(r.status).toBe(200);
  return r.data.receipts as (Receipt | Rejection)[];
};
const conflict = { ok: false, error: { code: "CONFLICT", message: expect.stringContaining("idempotencyKey") } };

beforeAll(async () => {
  t = await createTestDb();
  api = await startApi(t.db);
  const tok = await newToken(t.db, "client", "keys");
  clientId = tok.id;
  a = client(api.url, tok.token);
});
afterAll(async () => {
  await api?.close();
  await t?.drop();
});

describe("a key stored before the batch answers every item with it", () => {
  // The stored command is no longer pending: a duplicate answers its current state.
  const storeA = async (key: string) => {
    const [r] = await batch([cmd(key, A)]);
    expect(r).toMatchObject({ ok: true, duplicate: false });
    await moveTo(t.db, (r as Receipt).id, ["running", "succeeded"]);
    return { ok: true, id: (r as Receipt).id, status: "succeeded", duplicate: true };
  };

  it("[B, A] with A stored: CONFLICT, then the stored command (the issue's example)", async () => {
    const dup = await storeA("s-ba");
    const before = await countCommands();
    expect(await batch([cmd("s-ba", B), cmd("s-ba", A)])).toEqual([conflict, dup]);
    expect(await countCommands()).toBe(before);
  });

  it("[A, A] with A stored: the stored command twice", async () => {
    const dup = await storeA("s-aa");
    expect(await batch([cmd("s-aa", A), cmd("s-aa", A)])).toEqual([dup, dup]);
  });

  it("[A, B] with A stored: the stored command, then CONFLICT", async () => {
    const dup = await storeA("s-ab");
    expect(await batch([cmd("s-ab", A), cmd("s-ab", B)])).toEqual([dup, conflict]);
  });

  it("[B, B] with A stored: CONFLICT twice", async () => {
    await storeA("s-bb");
    const before = await countCommands();
    expect(await batch([cmd("s-bb", B), cmd("s-bb", B)])).toEqual([conflict, conflict]);
    expect(await countCommands()).toBe(before);
    expect(await stored("s-bb")).toEqual([expect.objectContaining({ payload: A })]);
  });

  it("[B, A, B, A] with A stored: each item on its own merits, in input order", async () => {
    const dup = await storeA("s-baba");
    expect(await batch([cmd("s-baba", B), cmd("s-baba", A), cmd("s-baba", B), cmd("s-baba", A)])).toEqual([
      conflict,
      dup,
      conflict,
      dup,
    ]);
  });
});

describe("a key nothing stored has yet is judged against the batch's first item with it", () => {
  it("[A, A]: a new command, then a duplicate of it", async () => {
    const [first, second] = await batch([cmd("n-aa", A), cmd("n-aa", A)]);
    expect(first).toEqual({ ok: true, id: expect.any(String), status: "pending", duplicate: false });
    expect(second).toEqual({ ...first, duplicate: true });
    expect(await stored("n-aa")).toEqual([expect.objectContaining({ id: (first as Receipt).id, payload: A })]);
  });

  it("[A, B, A]: a new command, CONFLICT, a duplicate; only the first is stored", async () => {
    const r = await batch([cmd("n-aba", A), cmd("n-aba", B), cmd("n-aba", A)]);
    expect(r[0]).toMatchObject({ ok: true, duplicate: false });
    expect(r[1]).toEqual(conflict);
    expect(r[2]).toEqual({ ...r[0], duplicate: true });
    expect(await stored("n-aba")).toEqual([expect.objectContaining({ id: (r[0] as Receipt).id, payload: A })]);
  });

  it("the same payload with its keys in another order is the same payload, as against a stored command (jsonb equality)", async () => {
    const reordered = { body: { currency: "EUR", amount: 10 }, url: A.url };
    const [first, second] = await batch([cmd("n-order", A), cmd("n-order", reordered)]);
    expect(second).toEqual({ ...first, duplicate: true });
  });

  it("the same payload under another type is a CONFLICT, before and after the key is stored", async () => {
    const loose = defineCommandType({
      name: "loose",
      description: "",
      schema: z.unknown(),
      execute: async () => ({ outcome: "success" }),
      retry: { maxAttempts: 1, backoffMs: 0, maxBackoffMs: 0 },
      retryBusinessFailures: false,
      compensateOnFailure: false,
      idempotent: () => true,
      timeoutMs: () => 1000,
    });
    const intake = directIntake(t.db, createRegistry([http, loose]));
    const first = await submitBatch(intake, clientId, [cmd("n-type", A), { ...cmd("n-type", A), type: "loose" }]);
    expect(first).toEqual([expect.objectContaining({ ok: true, duplicate: false }), conflict]);
    const again = await submitBatch(intake, clientId, [{ ...cmd("n-type", A), type: "loose" }, cmd("n-type", A)]);
    expect(again).toEqual([conflict, { ...first[0], duplicate: true }]);
  });

  it("an invalid earlier item does not take the key: the next valid one is the first", async () => {
    const r = await batch([cmd("n-bad", { url: 12 }), cmd("n-bad", B), cmd("n-bad", A)]);
    expect(r[0]).toMatchObject({ ok: false, error: { code: "BAD_REQUEST" } });
    expect(r[1]).toMatchObject({ ok: true, duplicate: false });
    expect(r[2]).toEqual(conflict);
    expect(await stored("n-bad")).toEqual([expect.objectContaining({ payload: B })]);
  });
});

/**
 * Two batches that each hold the same new key twice, in opposite orders.
 * Whichever stores the key, every item must be answered by that command:
 * the one with its payload as a duplicate (or the one new receipt), the
 * other as CONFLICT.
 */
async function race(intakeX: IntakeDeps, intakeY: IntakeDeps, rounds: number, prefix: string) {
  for (let i = 0; i < rounds; i++) {
    const key = `${prefix}-${i}`;
    const [x, y] = await Promise.all([
      submitBatch(intakeX, clientId, [cmd(key, A), cmd(key, B)]),
      submitBatch(intakeY, clientId, [cmd(key, B), cmd(key, A)]),
    ]);
    const rows = await stored(key);
    expect(rows).toHaveLength(1);
    const winner = rows[0]!;
    const payloads = [A, B, B, A];
    const receipts = [...x, ...y];
    receipts.forEach((r, j) => {
      if (JSON.stringify(payloads[j]) === JSON.stringify(winner.payload))
        expect(r).toMatchObject({ ok: true, id: winner.id, status: "pending" });
      else expect(r).toEqual(conflict);
    });
    expect(receipts.filter((r) => r.ok && !r.duplicate)).toHaveLength(1);
  }
}

describe("two concurrent batches racing on one new key", () => {
  it("over HTTP, through the web process's group inserter: one command stored, every receipt consistent with it", async () => {
    const b = client(api.url, (await newToken(t.db, "client", "other")).token);
    for (let i = 0; i < 15; i++) {
      const key = `http-race-${i}`;
      const [x, y] = await Promise.all([
        a.mutation("intake.submitBatch", { commands: [cmd(key, A), cmd(key, B)] }),
        a.mutation("intake.submitBatch", { commands: [cmd(key, B), cmd(key, A)] }),
        // Another client's batch with the same key is its own command.
        b.mutation("intake.submitBatch", { commands: [cmd(key, B)] }),
      ]);
      const rows = await stored(key);
      expect(rows).toHaveLength(1);
      const receipts = [...x.data.receipts, ...y.data.receipts];
      [A, B, B, A].forEach((p, j) => {
        if (JSON.stringify(p) === JSON.stringify(rows[0]!.payload))
          expect(receipts[j]).toMatchObject({ ok: true, id: rows[0]!.id });
        else expect(receipts[j]).toEqual(conflict);
      });
      expect(receipts.filter((r: Receipt) => r.ok && !r.duplicate)).toHaveLength(1);
    }
  });

  it("in one grouped statement (both queued behind a request in flight)", async () => {
    const { db, statements } = observed(t.db);
    const insert = createGroupInserter(db, { maxInFlight: 1 });
    const intake: IntakeDeps = { registry, insert };
    for (let i = 0; i < 10; i++) {
      const key = `group-race-${i}`;
      statements.length = 0;
      // The first request takes the only slot; the two batches queue behind it and are written together.
      const blocker = submitBatch(intake, clientId, [cmd(`${key}-blocker`, A)]);
      const racing = race(intake, intake, 1, key);
      await Promise.all([blocker, racing]);
      const inserts = statements.filter((s) => s.text.startsWith("INSERT INTO commands"));
      expect(inserts.map((s) => (s.values[0] as unknown[]).length)).toEqual([1, 2]);
    }
  });

  it("requests written in one statement are each answered on their own payload against a stored key", async () => {
    const [held] = await submitBatch(directIntake(t.db, registry), clientId, [cmd("group-stored", A)]);
    const { db, statements } = observed(t.db);
    const intake: IntakeDeps = { registry, insert: createGroupInserter(db, { maxInFlight: 1 }) };
    const blocker = submitBatch(intake, clientId, [cmd("group-stored-blocker", A)]);
    const answers = await Promise.all([
      submitBatch(intake, clientId, [cmd("group-stored", B)]),
      submitBatch(intake, clientId, [cmd("group-stored", A)]),
      blocker,
    ]);
    expect(answers.slice(0, 2)).toEqual([[conflict], [{ ...held, duplicate: true }]]);
    expect(
      statements.filter((s) => s.text.startsWith("INSERT INTO commands")).map((s) => (s.values[0] as unknown[]).length),
    ).toEqual([1, 2]);
  });

  it("directly, each batch in its own statement", async () => {
    await race(directIntake(t.db, registry), directIntake(t.db, registry), 15, "direct-race");
  });
});

describe("intake stays cheap", () => {
  it("one statement for a batch without stored or repeated keys; a second only to look keys up", async () => {
    const { db, statements } = observed(t.db);
    const intake = directIntake(db, registry);
    const count = async (items: unknown[]) => {
      statements.length = 0;
      await submitBatch(intake, clientId, items);
      return statements.length;
    };
    expect(await count([cmd("cheap-1", A), cmd("cheap-2", A), { type: "http", payload: A }])).toBe(1);
    expect(await count([cmd("cheap-1", A), cmd("cheap-3", A)])).toBe(2);
    expect(await count([cmd("cheap-4", A), cmd("cheap-4", A), cmd("cheap-4", B)])).toBe(2);
  });
});

/** The same database, with each statement sent through its pool noted (to count round trips). */
function observed(db: Db): { db: Db; statements: { text: string; values: unknown[] }[] } {
  const statements: { text: string; values: unknown[] }[] = [];
  const pool = new Proxy(db.pool, {
    get(target, prop, receiver) {
      if (prop !== "query") return Reflect.get(target, prop, receiver);
      return (text: string, values: unknown[]) => {
        statements.push({ text: text.trim(), values });
        return target.query(text, values);
      };
    },
  });
  return { db: { ...db, pool }, statements };
}
