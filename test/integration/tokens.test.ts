// tokens.rotateSecret: a new callback signing secret, shown once, for admins
// only, audited in the transaction that changes it; a revoked token is not
// rotated; callbacks sent after a rotation are signed with the new secret
// (the worker does not keep the old one).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createHmac } from "node:crypto";
import { createTestDb, type TestDb } from "../helpers/db";
import { newToken, startApi, type ApiServer } from "../helpers/api";
import { userWithSession } from "../helpers/fixtures";
import { startBackend, type Backend } from "../helpers/backend";
import { startTestWorker, submitWith, waitForStatus, waitUntil, type TestWorker } from "../helpers/engine";
import { revokeToken, signingSecretOf } from "../../server/auth/tokens";
import { resolveSecretKey } from "../../server/db/settings";
import { registry } from "../../server/command-types";

let t: TestDb;
let api: ApiServer;
let backend: Backend;
let worker: TestWorker | undefined;
type Who = { headers: Record<string, string> };
const who: Record<string, Who> = {};

async function rotate(w: Who, id: string) {
  const res = await fetch(`${api.url}/api/trpc/tokens.rotateSecret`, {
    method: "POST",
    headers: { "content-type": "application/json", ...w.headers },
    body: JSON.stringify({ id }),
  });
  const body = (await res.json()) as any;
  return { status: res.status, data: body.result?.data, error: body.error };
}

const key = () => resolveSecretKey(t.db, undefined);
const audits = async (id: string) =>
  (
    await t.db.pool.query(
      `SELECT actor, action, reason, details FROM audit_entries WHERE action = 'token.rotateSecret' AND details->>'id' = $1 ORDER BY id`,
      [id],
    )
  ).rows;

beforeAll(async () => {
  t = await createTestDb();
  api = await startApi(t.db);
  backend = await startBackend();
  const client = await newToken(t.db, "client", "svc");
  const admin = await newToken(t.db, "admin", "automation");
  who.none = { headers: {} };
  who.client = { headers: { authorization: `Bearer ${client.token}` } };
  who.adminToken = { headers: { authorization: `Bearer ${admin.token}` } };
  for (const role of ["viewer", "operator", "admin"] as const) {
    const { cookie } = await userWithSession(t.db, `${role}@example.com`, role);
    who[role] = { headers: { cookie, origin: api.url } };
  }
});
afterAll(async () => {
  await worker?.close();
  await backend?.close();
  await api?.close();
  await t?.drop();
});

describe("tokens.rotateSecret", () => {
  it("is refused to anyone but an admin, and then changes nothing", async () => {
    const target = await newToken(t.db, "client", "target");
    const before = await signingSecretOf(t.db, await key(), target.id);
    const got: Record<string, number> = {};
    for (const name of ["none", "client", "viewer", "operator"]) {
      const r = await rotate(who[name]!, target.id);
      got[name] = r.status;
      if (name !== "none") expect(r.error.message).toMatch(/admin/);
    }
    expect(got).toEqual({ none: 401, client: 403, viewer: 403, operator: 403 });
    expect(await signingSecretOf(t.db, await key(), target.id)).toBe(before);
    expect(await audits(target.id)).toEqual([]);
  });

  it("gives an admin (user or admin token) a new secret once, stores it encrypted, and audits who did it without the secret", async () => {
    const target = await newToken(t.db, "client", "billing");
    const r = await rotate(who.admin!, target.id);
    expect(r.status).toBe(200);
    expect(r.data).toEqual({ id: target.id, signingSecret: expect.stringMatching(/^whsec_[\w-]{40,}$/) });
    expect(r.data.signingSecret).not.toBe(target.signingSecret);
    expect(await signingSecretOf(t.db, await key(), target.id)).toBe(r.data.signingSecret);
    const stored = (await t.db.pool.query(`SELECT signing_secret_enc FROM api_clients WHERE id = $1`, [target.id]))
      .rows[0].signing_secret_enc;
    expect(stored).not.toContain(r.data.signingSecret);

    const again = await rotate(who.adminToken!, target.id);
    expect(again.status).toBe(200);
    expect(again.data.signingSecret).not.toBe(r.data.signingSecret);
    const entries = await audits(target.id);
    expect(entries).toEqual([
      {
        actor: "admin@example.com",
        action: "token.rotateSecret",
        reason: null,
        details: { id: target.id, name: "billing" },
      },
      {
        actor: "token:automation",
        action: "token.rotateSecret",
        reason: null,
        details: { id: target.id, name: "billing" },
      },
    ]);
    expect(JSON.stringify(entries)).not.toContain("whsec_");
    // the secret is never listed
    const list = await fetch(`${api.url}/api/trpc/tokens.list`, { headers: who.admin!.headers }).then((x) => x.text());
    expect(list).not.toContain(again.data.signingSecret);
  });

  it("writes the secret and its audit entry together: no entry, no change", async () => {
    const target = await newToken(t.db, "client", "atomic");
    const before = await signingSecretOf(t.db, await key(), target.id);
    // The audit log refuses this one entry: the rotation must not happen without it.
    await t.db.pool.query(`CREATE FUNCTION refuse_rotation_audit() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN IF NEW.action = 'token.rotateSecret' THEN RAISE EXCEPTION 'audit refused'; END IF; RETURN NEW; END $$`);
    await t.db.pool.query(
      `CREATE TRIGGER refuse_rotation_audit BEFORE INSERT ON audit_entries FOR EACH ROW EXECUTE FUNCTION refuse_rotation_audit()`,
    );
    try {
      const r = await rotate(who.admin!, target.id);
      expect(r.status).toBe(500);
    } finally {
      await t.db.pool.query(
        `DROP TRIGGER refuse_rotation_audit ON audit_entries; DROP FUNCTION refuse_rotation_audit()`,
      );
    }
    expect(await signingSecretOf(t.db, await key(), target.id)).toBe(before);
  });

  it("refuses a revoked token with a clear error, and an unknown one", async () => {
    const target = await newToken(t.db, "client", "retired");
    await revokeToken(t.db, target.id);
    const before = await signingSecretOf(t.db, await key(), target.id);
    const r = await rotate(who.admin!, target.id);
    expect(r.status).toBe(409);
    expect(r.error.message).toMatch(
      /^The token "retired" is revoked \(.+\): its signing secret cannot be rotated\. Create a new token instead\.$/,
    );
    expect(await signingSecretOf(t.db, await key(), target.id)).toBe(before);
    expect(await audits(target.id)).toEqual([]);

    const missing = await rotate(who.admin!, "00000000-0000-4000-8000-000000000000");
    expect([missing.status, missing.error.message]).toEqual([404, "No such token"]);
    const bad = await rotate(who.admin!, "not-a-uuid");
    expect(bad.status).toBe(400);
    expect(bad.error.message).toMatch(/id: must be a token id \(UUID\)/);
  });

  it("signs the callbacks sent after a rotation with the new secret, not the one the worker had cached", async () => {
    const owner = await newToken(t.db, "client", "shop");
    worker = await startTestWorker(t.db, t.url, registry);
    const submit = submitWith(t.db, registry, owner.id);
    const signedWith = async (id: string) => {
      await waitForStatus(t.db, id, ["succeeded"]);
      await waitUntil(
        () => backend.requests.some((r) => r.path === "/callback" && r.headers["x-command-id"] === id),
        `the callback of ${id}`,
      );
      const call = backend.requests.find((r) => r.path === "/callback" && r.headers["x-command-id"] === id)!;
      return { signature: call.headers["x-conveyor-signature"], body: call.body };
    };
    const sign = (secret: string, body: string) => `sha256=${createHmac("sha256", secret).update(body).digest("hex")}`;
    const cmd = (n: number) => ({
      type: "http",
      payload: { url: `${backend.url}/do/shop-${n}` },
      callbackUrl: `${backend.url}/callback`,
    });

    const first = await signedWith(await submit(cmd(1)));
    expect(first.signature).toBe(sign(owner.signingSecret, first.body)); // the worker now holds this secret

    const r = await rotate(who.admin!, owner.id);
    expect(r.status).toBe(200);
    const second = await signedWith(await submit(cmd(2)));
    expect(second.signature).toBe(sign(r.data.signingSecret, second.body));
    expect(second.signature).not.toBe(sign(owner.signingSecret, second.body));
  });
});
