// commands.editAndRetry (DESIGN §9) over real HTTP with an operator's session,
// against a real PostgreSQL, a real worker and a real loopback backend: the
// corrected payload is what the backend receives, under the same id and key;
// an unknown last outcome is still reconciled first (and the new payload is
// then never sent when the backend had done it); other states are skipped
// with the reason; a payload the type refuses changes nothing; the audit
// entry keeps the payload before and after with secrets masked; an edited
// command of an ordering key rejoins its line like a retried one.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDb, type TestDb } from "../helpers/db";
import { startApi, type ApiServer } from "../helpers/api";
import { startBackend, type Backend } from "../helpers/backend";
import {
  attemptsOf,
  getRow,
  startTestWorker,
  testClient,
  waitForStatus,
  waitUntil,
  type TestWorker,
} from "../helpers/engine";
import { commandInEveryState, moveTo, userWithSession } from "../helpers/fixtures";
import { registry } from "../../server/command-types";
import { directIntake, submit } from "../../server/commands/submit";
import { createHostListCheck } from "../../server/outbound/url-guard";
import { STATES, type State } from "../../server/engine/states";

let t: TestDb;
let api: ApiServer;
let backend: Backend;
let worker: TestWorker;
let clientId: string;
const who: Record<"viewer" | "operator", Record<string, string>> = { viewer: {}, operator: {} };

beforeAll(async () => {
  t = await createTestDb();
  backend = await startBackend();
  // An explicit allow-list, as HTTP_ALLOWED_HOSTS=127.0.0.1,backend.example would make: intake and edits check it.
  const hostCheck = createHostListCheck("127.0.0.1,backend.example");
  api = await startApi(t.db, { intake: { registry, insert: directIntake(t.db, registry).insert, hostCheck } });
  ({ clientId } = await testClient(t.db));
  for (const role of ["viewer", "operator"] as const) {
    const { cookie } = await userWithSession(t.db, `${role}@example.com`, role);
    who[role] = { cookie, origin: api.url };
  }
  worker = await startTestWorker(t.db, t.url, registry);
});
afterAll(async () => {
  await worker?.close();
  await api?.close();
  await backend?.close();
  await t?.drop();
});

async function editAndRetry(input: unknown, as: Record<string, string> = who.operator) {
  const res = await fetch(`${api.url}/api/trpc/commands.editAndRetry`, {
    method: "POST",
    headers: { "content-type": "application/json", ...as },
    body: JSON.stringify(input),
  });
  const body = (await res.json()) as any;
  return { status: res.status, data: body.result?.data, error: body.error };
}

const intake = () => directIntake(t.db, registry);
const lastAudit = async () =>
  (
    await t.db.pool.query(
      `SELECT actor, action, reason, command_ids, details FROM audit_entries WHERE action = 'editAndRetry' ORDER BY id DESC LIMIT 1`,
    )
  ).rows[0];
const auditCount = async () =>
  Number((await t.db.pool.query(`SELECT count(*) FROM audit_entries`)).rows[0].count as string);
const SECRET = "Bearer secret-token-abc123";

describe("commands.editAndRetry", () => {
  it("an exception with a URL that moved: the backend is called at the new URL, same id and key, audited with before and after (masked)", async () => {
    backend.plan("moved-old", [{ kind: "status", status: 503 }]);
    const original = {
      url: `${backend.url}/do/moved-old`,
      statusUrl: `${backend.url}/status/{commandId}`,
      headers: { Authorization: SECRET },
      body: { account: "ACC-1" },
    };
    const { id } = await submit(intake(), clientId, {
      type: "http",
      payload: original,
      idempotencyKey: "order-moved-1",
      retry: { maxAttempts: 1 },
    });
    const failed = await waitForStatus(t.db, id, ["exception"]);
    expect(failed.needs_reconcile).toBe(true); // a 503: the outcome is unknown

    // The payload as the console shows it (secret masked), with the new URL.
    const shown = (await t.db.pool.query(`SELECT payload FROM commands WHERE id = $1`, [id])).rows[0].payload;
    const edited = { ...original, url: `${backend.url}/do/moved-new`, headers: { Authorization: "Bearer ••••" } };
    expect(shown.url).toBe(original.url);
    const r = await editAndRetry({ id, payload: edited, reason: "the orders endpoint moved" });
    expect(r.status).toBe(200);
    expect(r.data).toEqual({ updated: [id], skipped: [] });

    const done = await waitForStatus(t.db, id, ["succeeded"]);
    expect(done.id).toBe(id);
    const row = (
      await t.db.pool.query(`SELECT idempotency_key, payload, submitted_payload FROM commands WHERE id = $1`, [id])
    ).rows[0];
    expect(row.idempotency_key).toBe("order-moved-1");
    expect(row.payload.url).toBe(`${backend.url}/do/moved-new`);
    expect(row.payload.headers.Authorization).toBe(SECRET); // the masked secret sent back kept the stored one
    expect(row.submitted_payload.url).toBe(original.url);

    // Reconcile first (the backend never had it: 404), then the new URL, with the command's id as the key.
    expect((await attemptsOf(t.db, id)).map((a) => `${a.kind} ${a.outcome}`)).toEqual([
      "execute exception",
      "reconcile not_found",
      "execute success",
    ]);
    const sent = backend.requests.filter((q) => q.path === "/do/moved-new");
    expect(sent).toHaveLength(1);
    expect(sent[0]!.headers["idempotency-key"]).toBe(id);
    expect(sent[0]!.headers["x-command-id"]).toBe(id);
    expect(sent[0]!.headers.authorization).toBe(SECRET);
    expect(JSON.parse(sent[0]!.body)).toEqual({ account: "ACC-1" });

    const audit = await lastAudit();
    expect(audit).toMatchObject({
      actor: "operator@example.com",
      action: "editAndRetry",
      reason: "the orders endpoint moved",
      command_ids: [id],
    });
    expect(audit.details.changed).toEqual(["url"]);
    expect(audit.details.payloadBefore.url).toBe(original.url);
    expect(audit.details.payloadAfter.url).toBe(`${backend.url}/do/moved-new`);
    expect(audit.details.payloadBefore.headers.Authorization).toBe("Bearer ••••");
    expect(audit.details.payloadAfter.headers.Authorization).toBe("Bearer ••••");
    expect(JSON.stringify(audit.details)).not.toContain("secret-token");

    // What the console reads: the audit trail's entry with its change, and the payload marked as edited.
    const detail = await fetch(`${api.url}/api/trpc/commands.get?input=${encodeURIComponent(JSON.stringify({ id }))}`, {
      headers: who.viewer,
    }).then((x) => x.json() as Promise<any>);
    expect(detail.result.data.command.payloadEdited).toBe(true);
    expect(detail.result.data.audit[0]).toMatchObject({ action: "editAndRetry", edit: { changed: ["url"] } });

    // The client's own retry of its submission (same key, the payload it sent) is still that command.
    const again = await submit(intake(), clientId, {
      type: "http",
      payload: original,
      idempotencyKey: "order-moved-1",
      retry: { maxAttempts: 1 },
    });
    expect(again).toEqual({ id, status: "succeeded", duplicate: true });
    await expect(
      submit(intake(), clientId, {
        type: "http",
        payload: { ...original, url: `${backend.url}/do/other` },
        idempotencyKey: "order-moved-1",
      }),
    ).rejects.toMatchObject({ code: "CONFLICT" });
  });

  it("the last attempt timed out after the backend applied it: edited and retried, the reconcile finds it done and the new payload is never sent", async () => {
    backend.plan("late-old", [{ kind: "slow", ms: 700 }]);
    const original = {
      url: `${backend.url}/do/late-old`,
      statusUrl: `${backend.url}/status/{commandId}`,
      timeoutMs: 200,
      body: { amount: 10 },
    };
    const { id } = await submit(intake(), clientId, {
      type: "http",
      payload: original,
      idempotencyKey: "late-1",
      retry: { maxAttempts: 1 },
    });
    const ex = await waitForStatus(t.db, id, ["exception"]);
    expect(ex.needs_reconcile).toBe(true);
    expect((await attemptsOf(t.db, id)).map((a) => `${a.kind} ${a.outcome}`)).toEqual(["execute exception"]);
    // The backend finishes the request it was still holding: it did the work, only the answer was lost.
    await waitUntil(() => backend.applied.includes(id), "the backend to apply the timed-out request");

    const r = await editAndRetry({
      id,
      payload: { ...original, url: `${backend.url}/do/late-new`, body: { amount: 12 } },
      reason: "amount was wrong",
    });
    expect(r.data).toEqual({ updated: [id], skipped: [] });
    const done = await waitForStatus(t.db, id, ["succeeded"]);
    expect(done.result).toEqual({ status: 200, body: { applied: true, id } });
    expect((await attemptsOf(t.db, id)).map((a) => `${a.kind} ${a.outcome}`)).toEqual([
      "execute exception",
      "reconcile success",
    ]);
    expect(backend.requests.filter((q) => q.path === "/do/late-new")).toEqual([]);
    expect(backend.applied.filter((x) => x === id)).toHaveLength(1);
    expect(backend.requests.filter((q) => q.path === `/status/${id}`)).toHaveLength(1);
  });

  it("applies in failed, exception and cancelled only: the others are skipped with the reason, and keep their payload", async () => {
    const fx = await commandInEveryState(t.db, clientId, "edit-states");
    const allowed: State[] = ["failed", "exception", "cancelled"];
    for (const s of STATES) {
      const before = await t.db.pool.query(`SELECT status, payload, updated_at FROM commands WHERE id = $1`, [fx[s]]);
      const r = await editAndRetry({
        id: fx[s],
        payload: { url: `${backend.url}/do/edit-states-${s}`, headers: { Authorization: "Bearer ••••" } },
        reason: `edit a ${s} one`,
      });
      expect(r.status, s).toBe(200);
      if (allowed.includes(s)) {
        expect(r.data, s).toEqual({ updated: [fx[s]], skipped: [] });
        continue;
      }
      expect(r.data.updated, s).toEqual([]);
      expect(r.data.skipped, s).toEqual([
        {
          id: fx[s],
          reason:
            s === "running"
              ? "running: a worker is working on it right now"
              : `${s}: edit & retry applies only to failed, exception, cancelled commands`,
        },
      ]);
      const after = await t.db.pool.query(`SELECT status, payload, updated_at FROM commands WHERE id = $1`, [fx[s]]);
      expect(after.rows[0], s).toEqual(before.rows[0]);
    }
    for (const s of allowed) {
      const row = await waitForStatus(t.db, fx[s], ["succeeded"]);
      expect(row.id).toBe(fx[s]);
    }
    // Each edited one's secret was kept from what it held.
    const { rows } = await t.db.pool.query(`SELECT payload FROM commands WHERE id = $1`, [fx.failed]);
    expect(rows[0].payload.headers.Authorization).toBe("Bearer secret-value-123");

    const none = crypto.randomUUID();
    const missing = await editAndRetry({ id: none, payload: { url: "https://backend.example/x" }, reason: "r" });
    expect(missing.data).toEqual({ updated: [], skipped: [{ id: none, reason: "no such command" }] });
    // Twice: the second finds it no longer where it applies.
    const twice = await editAndRetry({
      id: fx.succeeded,
      payload: { url: "https://backend.example/x" },
      reason: "again",
    });
    expect(twice.data.skipped[0].reason).toMatch(/^succeeded: edit & retry applies only to/);
  });

  it("a payload the type refuses is BAD_REQUEST with issues under payload, and nothing changes", async () => {
    const { id } = await submit(intake(), clientId, {
      type: "http",
      payload: { url: "https://backend.example/refused", headers: { Authorization: SECRET } },
      idempotencyKey: "bad-edit-1",
      runAt: "2999-01-01T00:00:00Z",
    });
    await moveTo(t.db, id, ["running", "exception"]);
    const before = await getRow(t.db, id);
    const beforeAudit = await auditCount();
    const cases: { payload: unknown; reason?: string; issues: { path: (string | number)[]; message?: unknown }[] }[] = [
      {
        payload: { url: "ftp://backend.example/x", timeoutMs: 5 },
        issues: [
          { path: ["payload", "url"], message: "must be an http:// or https:// URL" },
          { path: ["payload", "timeoutMs"] },
        ],
      },
      { payload: { url: "https://backend.example/x", colour: "red" }, issues: [{ path: ["payload"] }] },
      { payload: "https://backend.example/x", issues: [{ path: ["payload"] }] },
      { payload: { url: "https://backend.example/x", body: "a\u0000b" }, issues: [{ path: ["payload", "body"] }] },
      {
        payload: { url: "https://intranet.example/x" },
        issues: [{ path: ["payload", "url"], message: "host intranet.example is not in HTTP_ALLOWED_HOSTS" }],
      },
      { payload: { url: "https://backend.example/x" }, reason: "", issues: [{ path: ["reason"], message: "say why" }] },
      { payload: undefined, issues: [{ path: ["payload"], message: "the corrected payload is required" }] },
    ];
    for (const c of cases) {
      const r = await editAndRetry({ id, payload: c.payload, reason: c.reason ?? "fix it" });
      expect(r.status, JSON.stringify(c.payload)).toBe(400);
      expect(r.error.data.code).toBe("BAD_REQUEST");
      expect(r.error.data.issues).toEqual(
        expect.arrayContaining(
          c.issues.map((i) => expect.objectContaining({ path: i.path, ...(i.message ? { message: i.message } : {}) })),
        ),
      );
    }
    expect(await getRow(t.db, id)).toEqual(before);
    expect(await auditCount()).toBe(beforeAudit);
    expect((await t.db.pool.query(`SELECT submitted_payload FROM commands WHERE id = $1`, [id])).rows[0]).toEqual({
      submitted_payload: null,
    });
  });

  it("a viewer is refused, and nothing changes", async () => {
    const { id } = await submit(intake(), clientId, {
      type: "http",
      payload: { url: "https://backend.example/viewer" },
      runAt: "2999-01-01T00:00:00Z",
    });
    await moveTo(t.db, id, ["running", "failed"]);
    const before = await getRow(t.db, id);
    const r = await editAndRetry(
      { id, payload: { url: `${backend.url}/do/viewer` }, reason: "not mine to do" },
      who.viewer,
    );
    expect(r.status).toBe(403);
    expect(r.error.data.code).toBe("FORBIDDEN");
    expect(await getRow(t.db, id)).toEqual(before);
  });

  it("an exception that blocks its ordering key, edited and retried, runs again first and then lets the next one go", async () => {
    backend.plan("key-a", [{ kind: "status", status: 503 }]);
    const key = "customer-42";
    const first = await submit(intake(), clientId, {
      type: "http",
      payload: { url: `${backend.url}/do/key-a` },
      orderingKey: key,
      retry: { maxAttempts: 1 },
    });
    await waitForStatus(t.db, first.id, ["exception"]);
    const second = await submit(intake(), clientId, {
      type: "http",
      payload: { url: `${backend.url}/do/key-b` },
      orderingKey: key,
    });
    // The exception blocks the key: the second waits behind it.
    await waitUntil(
      async () =>
        (await t.db.pool.query(`SELECT key_waiting FROM commands WHERE id = $1`, [second.id])).rows[0].key_waiting,
      "the second command to wait behind the exception",
    );
    expect((await getRow(t.db, second.id)).status).toBe("pending");
    expect(backend.requests.filter((q) => q.path === "/do/key-b")).toEqual([]);

    const r = await editAndRetry({ id: first.id, payload: { url: `${backend.url}/do/key-a2` }, reason: "moved" });
    expect(r.data.updated).toEqual([first.id]);
    await waitForStatus(t.db, second.id, ["succeeded"]);
    await waitForStatus(t.db, first.id, ["succeeded"]);
    const order = backend.requests.filter((q) => ["/do/key-a2", "/do/key-b"].includes(q.path)).map((q) => q.path);
    expect(order).toEqual(["/do/key-a2", "/do/key-b"]);
  });
});
