// The console's view of ordering keys (DESIGN §4, §7) over real HTTP:
// commands.list (and countMatching, and actions on "all that match") filter by
// orderingKey; commands.get says where a command stands in its key's line:
// the key, whether it waits, and for which command (the key's head) in which
// state.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDb, type TestDb } from "../helpers/db";
import { client, newToken, startApi, type ApiServer } from "../helpers/api";
import { directIntake, submitBatch } from "../../server/commands/submit";
import { registry } from "../../server/command-types";
import { resolveCommands } from "../../server/commands/actions";

let t: TestDb;
let api: ApiServer;
let admin: ReturnType<typeof client>;
let clientId: string;

const LATER = "2999-01-01T00:00:00Z"; // not claimed here: the rows stay as intake and the test leave them
const cmd = (orderingKey?: string) => ({
  type: "http",
  payload: { url: "https://backend.example/pay" },
  runAt: LATER,
  ...(orderingKey ? { orderingKey } : {}),
});
const submit = async (items: unknown[]) =>
  (await submitBatch(directIntake(t.db, registry), clientId, items)).map((r) => (r as { id: string }).id);

beforeAll(async () => {
  t = await createTestDb();
  api = await startApi(t.db);
  admin = client(api.url, (await newToken(t.db, "admin", "ops")).token);
  clientId = (await newToken(t.db, "client", "orders")).id;
});
afterAll(async () => {
  await api?.close();
  await t?.drop();
});

describe("commands.list { orderingKey }", () => {
  it("lists the key's commands only, in every state, newest first; counts and actions follow the filter", async () => {
    const ids = await submit([cmd("acct-1"), cmd("acct-2"), cmd("acct-1"), cmd(), cmd("acct-1")]);
    await admin.mutation("commands.cancel", { ids: [ids[4]!], reason: "not needed" });
    // (one batch: one created_at; the list orders those by id)
    const byId = (rows: unknown[][]) => rows.sort((a, b) => String(b[0]).localeCompare(String(a[0])));
    const page = await admin.query("commands.list", { orderingKey: "acct-1" });
    expect(page.status).toBe(200);
    expect(page.data.items.map((i: any) => [i.id, i.orderingKey, i.status])).toEqual(
      byId([
        [ids[4], "acct-1", "cancelled"],
        [ids[2], "acct-1", "pending"],
        [ids[0], "acct-1", "pending"],
      ]),
    );
    const withState = await admin.query("commands.list", { orderingKey: "acct-1", status: ["pending"] });
    expect(withState.data.items.map((i: any) => [i.id])).toEqual(byId([[ids[2]], [ids[0]]]));
    expect((await admin.query("commands.countMatching", { orderingKey: "acct-1" })).data).toEqual({ total: 3 });
    expect((await admin.query("commands.list", { orderingKey: "nobody" })).data.items).toEqual([]);
    // an action on "all that match" the key touches that key only
    const r = await admin.mutation("commands.cancel", { filter: { orderingKey: "acct-2" }, reason: "key closed" });
    expect(r.data.updated).toEqual([ids[1]]);
  });

  it("refuses a key longer than 200 characters, naming the field", async () => {
    const r = await admin.query("commands.list", { orderingKey: "k".repeat(201) });
    expect(r.error?.data.code).toBe("BAD_REQUEST");
    expect(r.error?.data.issues?.map((i) => i.path)).toEqual([["orderingKey"]]);
  });
});

describe("commands.get: the command's place in its key's line", () => {
  it("a waiting command names the key's head and its state, and counts the commands around it", async () => {
    const ids = await submit([cmd("line"), cmd("line"), cmd("line"), cmd("line")]);
    const get = async (id: string) => (await admin.query("commands.get", { id })).data.ordering;
    expect(await get(ids[0]!)).toEqual({
      key: "line",
      waiting: false,
      isHead: true,
      head: null,
      ahead: 0,
      behind: 3,
      countMax: 1000,
    });
    expect(await get(ids[2]!)).toEqual({
      key: "line",
      waiting: true,
      isHead: false,
      head: { id: ids[0], status: "pending" },
      ahead: 1,
      behind: 1,
      countMax: 1000,
    });
    // the head meets an exception: the others wait for it until an operator acts
    await t.db.pool.query(
      `UPDATE commands SET status = 'running', lease_id = gen_random_uuid(), locked_by = 't', locked_until = now() + interval '1 minute' WHERE id = $1`,
      [ids[0]],
    );
    await t.db.pool.query(
      `UPDATE commands SET status = 'exception', lease_id = NULL, locked_by = NULL, locked_until = NULL, error = 'timeout' WHERE id = $1`,
      [ids[0]],
    );
    expect((await get(ids[3]!)).head).toEqual({ id: ids[0], status: "exception" });
    // resolved: the next is the head, and the resolved one stands in no line any more
    await resolveCommands(t.db, { ids: [ids[0]!] }, "succeeded", { name: "t" }, "done by hand");
    expect(await get(ids[0]!)).toMatchObject({ waiting: false, isHead: false, head: null });
    expect(await get(ids[1]!)).toMatchObject({ waiting: false, isHead: true, behind: 2 });
    expect(await get(ids[3]!)).toMatchObject({ waiting: true, head: { id: ids[1], status: "pending" }, ahead: 1 });
  });

  it("a command without a key has no line", async () => {
    const [id] = await submit([cmd()]);
    const r = await admin.query("commands.get", { id });
    expect(r.data.ordering).toBeNull();
    expect(r.data.command.orderingKey).toBeNull();
  });
});
