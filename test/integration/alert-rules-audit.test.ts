// Alert rule changes and their audit entries commit together: through the API
// (alerts.createRule / updateRule / deleteRule) each change writes one entry
// naming its actor, and when the audit entry cannot be written the change is
// rolled back with it (a trigger in this test's own database makes the insert fail).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDb, type TestDb } from "../helpers/db";
import { client, newToken, startApi, type ApiServer } from "../helpers/api";

let t: TestDb;
let api: ApiServer;
let admin: ReturnType<typeof client>;
const TOKEN = "rules-admin";
const ACTOR = `token:${TOKEN}`; // as the audit log names a token

beforeAll(async () => {
  t = await createTestDb();
  api = await startApi(t.db);
  admin = client(api.url, (await newToken(t.db, "admin", TOKEN)).token);
});
afterAll(async () => {
  await api?.close();
  await t?.drop();
});

const input = { name: "Backlog", kind: "backlog", threshold: 5, recipients: ["oncall@example.com"] };
const auditOf = async (id: string) =>
  (
    await t.db.pool.query(`SELECT actor, action, details FROM audit_entries WHERE details->>'id' = $1 ORDER BY id`, [
      id,
    ])
  ).rows;

describe("alert rule audit entries", () => {
  it("each change writes one audit entry naming its actor", async () => {
    const created = await admin.mutation("alerts.createRule", input);
    expect(created.status).toBe(200);
    const id = created.data.id as string;
    expect((await admin.mutation("alerts.updateRule", { id, ...input, enabled: false })).status).toBe(200);
    expect((await admin.mutation("alerts.deleteRule", { id })).status).toBe(200);
    expect(await auditOf(id)).toEqual([
      { actor: ACTOR, action: "alert.create", details: { id, name: "Backlog" } },
      { actor: ACTOR, action: "alert.update", details: { id, name: "Backlog", enabled: false } },
      { actor: ACTOR, action: "alert.delete", details: { id } },
    ]);
    // a rule that is not there: NOT_FOUND, and nothing audited
    const missing = "00000000-0000-4000-8000-000000000000";
    expect((await admin.mutation("alerts.deleteRule", { id: missing })).status).toBe(404);
    expect(await auditOf(missing)).toEqual([]);
  });

  it("a change whose audit entry cannot be written is not made", async () => {
    const { id } = (await admin.mutation("alerts.createRule", { ...input, name: "Kept" })).data as { id: string };
    await t.db.pool.query(
      `CREATE FUNCTION refuse_audit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'audit refused'; END $$`,
    );
    await t.db.pool.query(
      `CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_entries FOR EACH ROW EXECUTE FUNCTION refuse_audit()`,
    );
    try {
      expect((await admin.mutation("alerts.createRule", { ...input, name: "Never" })).status).toBe(500);
      expect((await admin.mutation("alerts.updateRule", { id, ...input, name: "Renamed" })).status).toBe(500);
      expect((await admin.mutation("alerts.deleteRule", { id })).status).toBe(500);
    } finally {
      await t.db.pool.query(`DROP TRIGGER refuse_audit ON audit_entries; DROP FUNCTION refuse_audit()`);
    }
    const { rows } = await t.db.pool.query(
      `SELECT name FROM alert_rules WHERE name IN ('Kept', 'Never', 'Renamed') ORDER BY name`,
    );
    expect(rows).toEqual([{ name: "Kept" }]);
  });
});
