// orderingKey (DESIGN §7) on every road of the intake API over real HTTP:
// tRPC submit and submitBatch, REST POST /api/v1/commands and /batch; read
// back by intake.get / getMany, REST GET, commands.get, the upstream callback,
// and described in the OpenAPI document. A bad key is a BAD_REQUEST naming
// the field, with nothing stored.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDb, type TestDb } from "../helpers/db";
import { client, newToken, startApi, type ApiServer } from "../helpers/api";
import { cancelCommands } from "../../server/commands/actions";

let t: TestDb;
let api: ApiServer;
let trpc: ReturnType<typeof client>;
let admin: ReturnType<typeof client>;
let token: string;

const httpCmd = (extra: Record<string, unknown> = {}) => ({
  type: "http",
  payload: { url: "https://backend.example/pay", body: { amount: 10 } },
  runAt: "2999-01-01T00:00:00Z", // never claimed here: the rows stay as intake left them
  ...extra,
});
const countCommands = async () =>
  (await t.db.pool.query<{ n: number }>("SELECT count(*)::int AS n FROM commands")).rows[0]!.n;
const stored = async (id: string) =>
  (
    await t.db.pool.query<{ ordering_key: string | null; ordering_seq: string | null; key_waiting: boolean }>(
      "SELECT ordering_key, ordering_seq, key_waiting FROM commands WHERE id = $1",
      [id],
    )
  ).rows[0]!;

function rest(path: string, init: { method?: string; body?: unknown } = {}) {
  return fetch(`${api.url}${path}`, {
    method: init.method ?? (init.body === undefined ? "GET" : "POST"),
    headers: {
      authorization: `Bearer ${token}`,
      ...(init.body !== undefined ? { "content-type": "application/json" } : {}),
    },
    body: init.body === undefined ? undefined : JSON.stringify(init.body),
  }).then(async (r) => ({ status: r.status, body: (await r.json()) as any }));
}

const BAD: [string, unknown][] = [
  ["empty", ""],
  ["201 characters", "k".repeat(201)],
  ["not a string", 42],
  ["null", null],
];

beforeAll(async () => {
  t = await createTestDb();
  api = await startApi(t.db);
  token = (await newToken(t.db, "client", "orders")).token;
  trpc = client(api.url, token);
  admin = client(api.url, (await newToken(t.db, "admin", "ops")).token);
});
afterAll(async () => {
  await api?.close();
  await t?.drop();
});

describe("tRPC", () => {
  it("intake.submit stores the key; intake.get, getMany and commands.get return it", async () => {
    const key = "k".repeat(200);
    const first = await trpc.mutation("intake.submit", httpCmd({ orderingKey: key, idempotencyKey: "o-1" }));
    const second = await trpc.mutation("intake.submit", httpCmd({ orderingKey: key }));
    const plain = await trpc.mutation("intake.submit", httpCmd());
    expect([first.status, second.status, plain.status]).toEqual([200, 200, 200]);
    const [a, b] = [await stored(first.data.id), await stored(second.data.id)];
    expect(a).toMatchObject({ ordering_key: key, key_waiting: false });
    expect(b).toMatchObject({ ordering_key: key, key_waiting: true }); // the first is pending: the second waits
    expect(BigInt(b.ordering_seq!)).toBeGreaterThan(BigInt(a.ordering_seq!));
    expect(await stored(plain.data.id)).toEqual({ ordering_key: null, ordering_seq: null, key_waiting: false });

    expect((await trpc.query("intake.get", { id: first.data.id })).data.orderingKey).toBe(key);
    expect((await trpc.query("intake.get", { idempotencyKey: "o-1" })).data.orderingKey).toBe(key);
    const many = await trpc.query("intake.getMany", { ids: [first.data.id, plain.data.id] });
    expect(many.data.items.map((v: any) => v.orderingKey)).toEqual([key, null]);
    expect((await admin.query("commands.get", { id: second.data.id })).data.command.orderingKey).toBe(key);
  });

  it("intake.submitBatch stores each item's key, in input order within the key", async () => {
    const r = await trpc.mutation("intake.submitBatch", {
      commands: [
        httpCmd({ orderingKey: "batch-a" }),
        httpCmd({ orderingKey: "batch-b" }),
        httpCmd(),
        httpCmd({ orderingKey: "batch-a" }),
      ],
    });
    expect(r.status).toBe(200);
    const rows = await Promise.all(r.data.receipts.map((x: any) => stored(x.id)));
    expect(rows.map((x) => [x.ordering_key, x.key_waiting])).toEqual([
      ["batch-a", false],
      ["batch-b", false],
      [null, false],
      ["batch-a", true],
    ]);
    expect(BigInt(rows[3]!.ordering_seq!)).toBeGreaterThan(BigInt(rows[0]!.ordering_seq!));
    const views = await trpc.query("intake.getMany", { ids: r.data.receipts.map((x: any) => x.id) });
    expect(views.data.items.map((v: any) => v.orderingKey)).toEqual(["batch-a", "batch-b", null, "batch-a"]);
  });

  it.each(BAD)("intake.submit refuses an orderingKey that is %s, and stores nothing", async (_, bad) => {
    const before = await countCommands();
    const r = await trpc.mutation("intake.submit", httpCmd({ orderingKey: bad }));
    expect(r.status).toBe(400);
    expect(r.error?.data.code).toBe("BAD_REQUEST");
    expect(r.error?.data.issues?.map((i) => i.path)).toEqual([["orderingKey"]]);
    expect(await countCommands()).toBe(before);
  });

  it.each(BAD)(
    "intake.submitBatch refuses the item whose orderingKey is %s, and stores only the others",
    async (_, bad) => {
      const before = await countCommands();
      const r = await trpc.mutation("intake.submitBatch", {
        commands: [httpCmd({ orderingKey: "fine" }), httpCmd({ orderingKey: bad })],
      });
      expect(r.status).toBe(200);
      expect(r.data.receipts[0]).toMatchObject({ ok: true });
      expect(r.data.receipts[1]).toMatchObject({ ok: false, error: { code: "BAD_REQUEST" } });
      expect(r.data.receipts[1].error.issues.map((i: any) => i.path)).toEqual([["commands", 1, "orderingKey"]]);
      expect(await countCommands()).toBe(before + 1);
    },
  );
});

describe("REST", () => {
  it("POST /api/v1/commands stores the key; GET by id and by idempotency key and get-many return it", async () => {
    const r = await rest("/api/v1/commands", { body: httpCmd({ orderingKey: "rest-1", idempotencyKey: "r-1" }) });
    expect(r.status).toBe(201);
    expect(await stored(r.body.id)).toMatchObject({ ordering_key: "rest-1", key_waiting: false });
    expect((await rest(`/api/v1/commands/${r.body.id}`)).body.orderingKey).toBe("rest-1");
    expect((await rest(`/api/v1/commands?idempotencyKey=r-1`)).body.orderingKey).toBe("rest-1");
    const many = await rest("/api/v1/commands/get-many", { body: { ids: [r.body.id] } });
    expect(many.body.items[0].orderingKey).toBe("rest-1");
  });

  it("POST /api/v1/commands/batch stores each item's key", async () => {
    const r = await rest("/api/v1/commands/batch", {
      body: { commands: [httpCmd({ orderingKey: "rest-b" }), httpCmd({ orderingKey: "rest-b" })] },
    });
    expect(r.status).toBe(200);
    const rows = await Promise.all(r.body.receipts.map((x: any) => stored(x.id)));
    expect(rows.map((x) => [x.ordering_key, x.key_waiting])).toEqual([
      ["rest-b", false],
      ["rest-b", true],
    ]);
  });

  it.each(BAD)("POST /api/v1/commands refuses an orderingKey that is %s, and stores nothing", async (_, bad) => {
    const before = await countCommands();
    const r = await rest("/api/v1/commands", { body: httpCmd({ orderingKey: bad }) });
    expect(r.status).toBe(400);
    expect(r.body.error.code).toBe("BAD_REQUEST");
    expect(r.body.error.issues.map((i: any) => i.path)).toEqual([["orderingKey"]]);
    expect(await countCommands()).toBe(before);
  });

  it.each(BAD)("POST /api/v1/commands/batch refuses the item whose orderingKey is %s", async (_, bad) => {
    const before = await countCommands();
    const r = await rest("/api/v1/commands/batch", { body: { commands: [httpCmd({ orderingKey: bad })] } });
    expect(r.status).toBe(200);
    expect(r.body.receipts[0]).toMatchObject({ ok: false, error: { code: "BAD_REQUEST" } });
    expect(r.body.receipts[0].error.issues.map((i: any) => i.path)).toEqual([["commands", 0, "orderingKey"]]);
    expect(await countCommands()).toBe(before);
  });

  it("the OpenAPI document describes orderingKey in every command sent and in the command view", async () => {
    const doc = (await (await fetch(`${api.url}/api/openapi.json`)).json()) as any;
    const s = doc.components.schemas;
    for (const name of Object.keys(s).filter((n) => n.startsWith("SubmitCommand_"))) {
      expect(s[name].properties.orderingKey, name).toMatchObject({ type: "string", minLength: 1, maxLength: 200 });
      expect(s[name].properties.orderingKey.description, name).toMatch(/one at a time/);
      expect(s[name].required ?? [], name).not.toContain("orderingKey");
    }
    expect(s.CommandView.properties.orderingKey).toMatchObject({ type: ["string", "null"] });
    expect(s.CommandView.required).toContain("orderingKey");
  });
});

it("the upstream callback's command view carries the key", async () => {
  const r = await trpc.mutation(
    "intake.submit",
    httpCmd({ orderingKey: "cb-key", callbackUrl: "https://caller.example/hook" }),
  );
  await cancelCommands(t.db, { ids: [r.data.id] }, { name: "test" }, null);
  const { rows } = await t.db.pool.query(`SELECT body FROM callback_deliveries WHERE command_id = $1`, [r.data.id]);
  expect(rows.map((x) => [x.body.status, x.body.orderingKey])).toEqual([["cancelled", "cb-key"]]);
});
