// Changes to users, sessions and API tokens are audited in the transaction that
// makes them: each is written with its audit entry, and when the audit log
// refuses the entry (a trigger that raises) the change does not happen.
// Over real HTTP (the tRPC handler) and the sign-in handler, on a real PostgreSQL.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDb, type TestDb } from "../helpers/db";
import { newToken, startApi, type ApiServer } from "../helpers/api";
import { userWithSession } from "../helpers/fixtures";
import { handleSignIn, PEER_HEADER } from "../../server/auth/http";
import { authenticateToken } from "../../server/auth/tokens";
import { signIn } from "../../server/auth/users";

let t: TestDb;
let api: ApiServer;
let admin: Record<string, string>;
const PASSWORD = "correct horse battery staple";

beforeAll(async () => {
  t = await createTestDb();
  api = await startApi(t.db);
  const { cookie } = await userWithSession(t.db, "admin@example.com", "admin");
  admin = { cookie, origin: api.url };
});
afterAll(async () => {
  await api?.close();
  await t?.drop();
});

async function call(path: string, input: unknown, headers: Record<string, string>) {
  const res = await fetch(`${api.url}/api/trpc/${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify(input),
  });
  const body = (await res.json()) as any;
  return { status: res.status, data: body.result?.data, error: body.error };
}

const q = async (sql: string, params: unknown[] = []) => (await t.db.pool.query(sql, params)).rows;
const lastAudit = async (action: string) =>
  (
    await q(`SELECT actor, action, reason, details FROM audit_entries WHERE action = $1 ORDER BY id DESC LIMIT 1`, [
      action,
    ])
  )[0];
const auditCount = async (action: string) =>
  (await q(`SELECT count(*)::int AS n FROM audit_entries WHERE action = $1`, [action]))[0].n as number;

/** Runs fn while the audit log refuses entries of this action. */
async function auditRefusing<T>(action: string, fn: () => Promise<T>): Promise<T> {
  await t.db.pool.query(`CREATE FUNCTION refuse_audit() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN IF NEW.action = '${action}' THEN RAISE EXCEPTION 'audit refused'; END IF; RETURN NEW; END $$`);
  await t.db.pool.query(
    `CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_entries FOR EACH ROW EXECUTE FUNCTION refuse_audit()`,
  );
  try {
    return await fn();
  } finally {
    await t.db.pool.query(`DROP TRIGGER refuse_audit ON audit_entries; DROP FUNCTION refuse_audit()`);
  }
}

describe("users", () => {
  it("users.create writes the user with its audit entry, or neither", async () => {
    const ok = await call("users.create", { email: "new-one@example.com", password: PASSWORD, role: "viewer" }, admin);
    expect(ok.status).toBe(200);
    expect(await lastAudit("user.create")).toEqual({
      actor: "admin@example.com",
      action: "user.create",
      reason: null,
      details: { email: "new-one@example.com", role: "viewer" },
    });

    const before = await auditCount("user.create");
    const refused = await auditRefusing("user.create", () =>
      call("users.create", { email: "unaudited@example.com", password: PASSWORD, role: "viewer" }, admin),
    );
    expect(refused.status).toBe(500);
    expect(await q(`SELECT id FROM users WHERE email = 'unaudited@example.com'`)).toEqual([]);
    expect(await auditCount("user.create")).toBe(before);
  });

  it("users.update changes the role, or disables the user and ends its sessions, with its audit entry, or not at all", async () => {
    const { id } = await userWithSession(t.db, "changed@example.com", "viewer");
    const state = async () =>
      (
        await q(
          `SELECT role, disabled, (SELECT count(*)::int FROM sessions WHERE user_id = $1) AS sessions FROM users WHERE id = $1`,
          [id],
        )
      )[0];

    const refusedRole = await auditRefusing("user.update", () => call("users.update", { id, role: "operator" }, admin));
    expect(refusedRole.status).toBe(500);
    const refusedDisable = await auditRefusing("user.update", () =>
      call("users.update", { id, disabled: true }, admin),
    );
    expect(refusedDisable.status).toBe(500);
    expect(await state()).toEqual({ role: "viewer", disabled: false, sessions: 1 });

    expect((await call("users.update", { id, role: "operator" }, admin)).status).toBe(200);
    expect(await lastAudit("user.update")).toEqual({
      actor: "admin@example.com",
      action: "user.update",
      reason: null,
      details: { email: "changed@example.com", role: "operator" },
    });
    expect((await call("users.update", { id, disabled: true }, admin)).status).toBe(200);
    expect(await lastAudit("user.update")).toEqual({
      actor: "admin@example.com",
      action: "user.update",
      reason: null,
      details: { email: "changed@example.com", disabled: true },
    });
    expect(await state()).toEqual({ role: "operator", disabled: true, sessions: 0 });
  });

  it("auth.changePassword replaces the password and ends the other sessions with its audit entry, or not at all", async () => {
    const { cookie } = await userWithSession(t.db, "changer@example.com", "viewer");
    await signIn(t.db, "changer@example.com", PASSWORD); // another session of the same user
    const me = { cookie, origin: api.url };
    const sessions = async () =>
      (
        await q(
          `SELECT count(*)::int AS n FROM sessions s JOIN users u ON u.id = s.user_id WHERE u.email = 'changer@example.com'`,
        )
      )[0].n;
    expect(await sessions()).toBe(2);

    const refused = await auditRefusing("user.password", () =>
      call("auth.changePassword", { current: PASSWORD, next: "a brand new long password" }, me),
    );
    expect(refused.status).toBe(500);
    expect(await sessions()).toBe(2);
    await expect(signIn(t.db, "changer@example.com", "a brand new long password")).rejects.toThrow(
      /Wrong email or password/,
    );
    await signIn(t.db, "changer@example.com", PASSWORD); // the old one still works
    expect(await sessions()).toBe(3);

    expect(
      (await call("auth.changePassword", { current: PASSWORD, next: "a brand new long password" }, me)).status,
    ).toBe(200);
    expect(await lastAudit("user.password")).toEqual({
      actor: "changer@example.com",
      action: "user.password",
      reason: null,
      details: null,
    });
    expect(await sessions()).toBe(1);
    await signIn(t.db, "changer@example.com", "a brand new long password");
  });

  it("a sign-in opens its session with its audit entry, or not at all", async () => {
    await userWithSession(t.db, "signer@example.com", "viewer");
    await t.db.pool.query(`UPDATE users SET failed_logins = 2 WHERE email = 'signer@example.com'`);
    const row = async () =>
      (
        await q(
          `SELECT failed_logins, last_login_at IS NOT NULL AS seen,
           (SELECT count(*)::int FROM sessions WHERE user_id = users.id) AS sessions
           FROM users WHERE email = 'signer@example.com'`,
        )
      )[0];
    const before = await row();
    const form = () =>
      new Request("http://localhost/api/auth/login", {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded", [PEER_HEADER]: "10.1.1.1" },
        body: new URLSearchParams({ email: "signer@example.com", password: PASSWORD }).toString(),
      });

    await auditRefusing("sign-in", () =>
      expect(handleSignIn(t.db, form(), { secure: false })).rejects.toThrow(/audit refused/),
    );
    expect(await row()).toEqual(before);

    const audits = await auditCount("sign-in");
    expect((await handleSignIn(t.db, form(), { secure: false })).status).toBe(303);
    expect(await auditCount("sign-in")).toBe(audits + 1);
    expect(await lastAudit("sign-in")).toEqual({
      actor: "signer@example.com",
      action: "sign-in",
      reason: null,
      details: null,
    });
    expect(await row()).toEqual({ failed_logins: 0, seen: true, sessions: before.sessions + 1 });
  });
});

describe("tokens", () => {
  it("tokens.create writes the token with its audit entry, or neither", async () => {
    const ok = await call("tokens.create", { name: "audited", scope: "client" }, admin);
    expect(ok.status).toBe(200);
    expect(await lastAudit("token.create")).toEqual({
      actor: "admin@example.com",
      action: "token.create",
      reason: null,
      details: { id: ok.data.id, name: "audited", scope: "client" },
    });

    const refused = await auditRefusing("token.create", () =>
      call("tokens.create", { name: "unaudited", scope: "admin" }, admin),
    );
    expect(refused.status).toBe(500);
    expect(await q(`SELECT id FROM api_clients WHERE name = 'unaudited'`)).toEqual([]);
  });

  it("tokens.revoke revokes with its audit entry, or not at all", async () => {
    const target = await newToken(t.db, "client", "to-revoke");
    const refused = await auditRefusing("token.revoke", () => call("tokens.revoke", { id: target.id }, admin));
    expect(refused.status).toBe(500);
    expect(await authenticateToken(t.db, target.token)).toMatchObject({ clientId: target.id });
    expect(await q(`SELECT revoked_at FROM api_clients WHERE id = $1`, [target.id])).toEqual([{ revoked_at: null }]);

    expect((await call("tokens.revoke", { id: target.id }, admin)).status).toBe(200);
    expect(await lastAudit("token.revoke")).toEqual({
      actor: "admin@example.com",
      action: "token.revoke",
      reason: null,
      details: { id: target.id },
    });
    expect(await authenticateToken(t.db, target.token)).toBeNull();
  });
});
