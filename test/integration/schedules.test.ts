// Schedules (DESIGN §8) against a real PostgreSQL: the API's answers, the
// audit, and the scheduler's rounds: one command per tick, catch-up after
// downtime, daylight saving switches, enable/disable, "Run now", and that the
// commands are ordinary ones (owned by the client `schedules`, run to the end).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDb, type TestDb } from "../helpers/db";
import { client, newToken, startApi, type ApiServer } from "../helpers/api";
import { startBackend, type Backend } from "../helpers/backend";
import { waitForStatus } from "../helpers/engine";
import { registry } from "../../server/command-types";
import { directIntake } from "../../server/commands/submit";
import { runDueSchedules, type TickOutcome } from "../../server/commands/schedule-ticks";
import { SCHEDULES_CLIENT_ID } from "../../server/commands/schedule-client";
import { resolveSecretKey } from "../../server/db/settings";
import { createLogger } from "../../server/log";

let t: TestDb;
let api: ApiServer;
let backend: Backend;
let admin: ReturnType<typeof client>;

beforeAll(async () => {
  t = await createTestDb();
  api = await startApi(t.db);
  backend = await startBackend();
  admin = client(api.url, (await newToken(t.db, "admin", "scheduler-admin")).token);
});
afterAll(async () => {
  await api?.close();
  await backend?.close();
  await t?.drop();
});

const command = (extra: Record<string, unknown> = {}) => ({
  type: "http",
  payload: { url: `${backend.url}/do/sched`, ...extra },
});
const create = async (input: Record<string, unknown>) => {
  const r = await admin.mutation("schedules.create", { name: "s", cron: "0 3 * * *", command: command(), ...input });
  expect(r.status, JSON.stringify(r.error)).toBe(200);
  return r.data.id as string;
};
const row = async (id: string) =>
  (
    await t.db.pool.query(
      `SELECT name, cron, timezone, command, enabled, next_run_at, last_run_at, last_command_id FROM schedules WHERE id = $1`,
      [id],
    )
  ).rows[0];
const commandsOf = async (id: string) =>
  (
    await t.db.pool.query<{ id: string; idempotency_key: string; client_id: string; status: string }>(
      `SELECT id, idempotency_key, client_id, status FROM commands WHERE idempotency_key LIKE $1 ORDER BY idempotency_key`,
      [`schedule:${id}:%`],
    )
  ).rows;
const silent = createLogger({ name: "test", level: "silent" });
/** One scheduler round at the clock `at`, and the ticks it counted. */
async function round(at: Date) {
  const counted: Record<string, number> = {};
  const onTick = (o: TickOutcome, n: number) => void (counted[o] = (counted[o] ?? 0) + n);
  const deps = {
    db: t.db,
    intake: directIntake(t.db, registry),
    secretKey: () => resolveSecretKey(t.db, undefined),
    log: silent,
    onTick,
  };
  const due = await runDueSchedules(deps, { at });
  return { due, counted };
}
/** A schedule made to start its ticks from `from` (as if created then). */
const startingAt = async (id: string, from: string) =>
  t.db.pool.query(`UPDATE schedules SET next_run_at = $2 WHERE id = $1`, [id, from]);

describe("schedules.create and update refuse what is wrong, naming the field, and store nothing", () => {
  const cases: [string, Record<string, unknown>, (string | number)[], RegExp][] = [
    ["a cron of 3 fields", { cron: "* * *" }, ["cron"], /5 fields.*got 3/],
    ["a cron with a minute of 61", { cron: "61 * * * *" }, ["cron"], /minute/],
    ["a cron that never matches", { cron: "0 0 30 2 *" }, ["cron"], /never matches/],
    ["a nickname", { cron: "@daily" }, ["cron"], /5 fields/],
    ["an unknown time zone", { timezone: "Mars/Olympus" }, ["timezone"], /unknown time zone/],
    ["an offset for a zone", { timezone: "+02:00" }, ["timezone"], /IANA/],
    ["an unknown type", { command: { type: "nope", payload: {} } }, ["command", "type"], /unknown command type/],
    ["a payload the type refuses", { command: { type: "http", payload: {} } }, ["command", "payload", "url"], /./],
    [
      "an intake field a schedule does not take",
      { command: { type: "http", payload: { url: "https://backend.example/x" }, idempotencyKey: "k" } },
      ["command"],
      /idempotencyKey/,
    ],
    ["an empty name", { name: " " }, ["name"], /name is required/],
  ];
  for (const [what, input, path, message] of cases) {
    it(what, async () => {
      const r = await admin.mutation("schedules.create", {
        name: "bad",
        cron: "* * * * *",
        command: { type: "http", payload: { url: "https://backend.example/x" } },
        ...input,
      });
      expect(r.status).toBe(400);
      expect(r.error!.data.code).toBe("BAD_REQUEST");
      const issue = r.error!.data.issues!.find((i) => JSON.stringify(i.path) === JSON.stringify(path));
      expect(issue, JSON.stringify(r.error!.data.issues)).toBeDefined();
      expect(issue!.message).toMatch(message);
      expect((await t.db.pool.query(`SELECT count(*)::int AS n FROM schedules WHERE name = 'bad'`)).rows[0].n).toBe(0);
    });
  }

  it("an update with a bad cron or time zone changes nothing", async () => {
    const id = await create({ name: "unchanged", cron: "0 4 * * *", timezone: "Europe/Berlin" });
    const before = await row(id);
    for (const change of [
      { cron: "0 25 * * *" },
      { timezone: "Nowhere/City" },
      { command: { type: "x", payload: 1 } },
    ]) {
      const r = await admin.mutation("schedules.update", { id, ...change });
      expect(r.error?.data.code).toBe("BAD_REQUEST");
      expect(r.error!.data.issues![0]!.path[0]).toBe(Object.keys(change)[0]);
    }
    expect(await row(id)).toEqual(before);
    const missing = await admin.mutation("schedules.update", { id: crypto.randomUUID(), enabled: false });
    expect(missing.error?.data.code).toBe("NOT_FOUND");
  });
});

describe("create, list, update, delete", () => {
  it("stores the schedule with its next tick in its time zone, lists it, and audits each change without secrets", async () => {
    const before = Date.now();
    const id = await create({
      name: "nightly export",
      cron: "0  2 * * *",
      timezone: "europe/berlin",
      command: command({ headers: { Authorization: "Bearer supersecret-token-123" } }),
    });
    const r = await row(id);
    expect(r).toMatchObject({ cron: "0 2 * * *", timezone: "Europe/Berlin", enabled: true, last_run_at: null });
    // 02:00 in Berlin is 00:00 or 01:00 UTC, within a day
    expect([0, 1]).toContain(r.next_run_at.getUTCHours());
    expect(r.next_run_at.getTime()).toBeGreaterThan(before);
    expect(r.next_run_at.getTime()).toBeLessThanOrEqual(before + 86_400_000);

    const list = await admin.query("schedules.list");
    const item = list.data.items.find((i: { id: string }) => i.id === id);
    expect(item).toMatchObject({
      id,
      name: "nightly export",
      cron: "0 2 * * *",
      timezone: "Europe/Berlin",
      enabled: true,
      nextRunAt: r.next_run_at.toISOString(),
      lastRunAt: null,
      lastCommandId: null,
    });
    expect(JSON.stringify(item)).not.toContain("supersecret");

    // Sent back as listed (the secret masked), the payload keeps its secret; a changed one replaces it.
    await admin.mutation("schedules.update", { id, name: "nightly export (eu)", command: item.command });
    expect((await row(id)).command.payload.headers.Authorization).toBe("Bearer supersecret-token-123");
    await admin.mutation("schedules.update", {
      id,
      command: { ...item.command, payload: { ...item.command.payload, headers: { Authorization: "Bearer new-one" } } },
    });
    expect((await row(id)).command.payload.headers.Authorization).toBe("Bearer new-one");

    // A new cron moves the next tick; a change of name only does not.
    const next = (await row(id)).next_run_at;
    await admin.mutation("schedules.update", { id, name: "renamed" });
    expect((await row(id)).next_run_at).toEqual(next);
    await admin.mutation("schedules.update", { id, cron: "*/5 * * * *", timezone: "UTC" });
    const moved = (await row(id)).next_run_at;
    expect(moved.getUTCMinutes() % 5).toBe(0);
    expect(moved.getTime()).toBeLessThanOrEqual(Date.now() + 5 * 60_000);

    expect((await admin.mutation("schedules.delete", { id })).status).toBe(200);
    expect(await row(id)).toBeUndefined();
    expect((await admin.mutation("schedules.delete", { id })).error?.data.code).toBe("NOT_FOUND");

    const { rows: audit } = await t.db.pool.query(
      `SELECT actor, action, details FROM audit_entries WHERE details->>'id' = $1 ORDER BY id`,
      [id],
    );
    expect(audit.map((a) => a.action)).toEqual([
      "schedules.create",
      "schedules.update",
      "schedules.update",
      "schedules.update",
      "schedules.update",
      "schedules.delete",
    ]);
    for (const a of audit) expect(a.actor).toBe("token:scheduler-admin");
    expect(audit[0].details).toMatchObject({ name: "nightly export", cron: "0 2 * * *", timezone: "Europe/Berlin" });
    expect(JSON.stringify(audit)).not.toMatch(/supersecret|new-one/);
  });

  it("disable clears the next tick and no round runs it; enable sets the next tick after now", async () => {
    const id = await create({ cron: "* * * * * *" });
    expect((await admin.mutation("schedules.update", { id, enabled: false })).status).toBe(200);
    expect(await row(id)).toMatchObject({ enabled: false, next_run_at: null });
    const later = new Date(Date.now() + 3_600_000);
    await round(later);
    expect(await commandsOf(id)).toEqual([]);
    const item = (await admin.query("schedules.list")).data.items.find((i: { id: string }) => i.id === id);
    expect(item).toMatchObject({ enabled: false, nextRunAt: null });

    const before = Date.now();
    await admin.mutation("schedules.update", { id, enabled: true });
    const r = await row(id);
    expect(r.enabled).toBe(true);
    expect(r.next_run_at.getTime()).toBeGreaterThan(before - 1000);
    expect(r.next_run_at.getTime()).toBeLessThanOrEqual(Date.now() + 1000);
    await admin.mutation("schedules.update", { id, enabled: false });
  });
});

describe("the scheduler's rounds", () => {
  it("after downtime submits one command, for the latest missed tick, and counts the others as missed", async () => {
    const id = await create({ cron: "*/5 * * * *" });
    await startingAt(id, "2026-06-01T10:00:00Z"); // due since 10:00; the worker is back at 10:47:12
    const back = new Date("2026-06-01T10:47:12Z");
    const r = await round(back);
    expect(r.counted).toEqual({ submitted: 1, missed: 9 }); // 10:00 … 10:40 left out, 10:45 submitted
    const cmds = await commandsOf(id);
    expect(cmds.map((c) => c.idempotency_key)).toEqual([`schedule:${id}:2026-06-01T10:45:00.000Z`]);
    expect(await row(id)).toMatchObject({
      next_run_at: new Date("2026-06-01T10:50:00Z"),
      last_run_at: new Date("2026-06-01T10:45:00Z"),
      last_command_id: cmds[0]!.id,
    });
    // Nothing more is due until 10:50; a round then submits that tick.
    expect((await round(new Date("2026-06-01T10:49:59.999Z"))).counted).toEqual({});
    expect((await round(new Date("2026-06-01T10:50:00.000Z"))).counted).toEqual({ submitted: 1 });
    expect((await commandsOf(id)).length).toBe(2);
    // A round that repeats a tick (a worker died before its commit) gets the same command back.
    await startingAt(id, "2026-06-01T10:50:00Z");
    expect((await round(new Date("2026-06-01T10:50:01Z"))).counted).toEqual({});
    expect((await commandsOf(id)).length).toBe(2);
    expect((await row(id)).last_command_id).toBe((await commandsOf(id))[1]!.id);
    await admin.mutation("schedules.delete", { id });
  });

  it("follows croner at daylight saving switches in the schedule's zone", async () => {
    const keys = async (id: string) =>
      (await commandsOf(id)).map((c) => c.idempotency_key.split(":").slice(-3).join(":"));
    // A fixed 02:30 in Berlin: on 2026-03-29 (no 02:30) at 03:00 CEST; on 2026-10-25 (02:30 twice) once, in CEST.
    const fixed = await create({ cron: "30 2 * * *", timezone: "Europe/Berlin" });
    await startingAt(fixed, "2026-03-29T01:00:00Z");
    await round(new Date("2026-03-29T01:00:00.200Z"));
    expect((await row(fixed)).next_run_at).toEqual(new Date("2026-03-30T00:30:00Z"));
    await startingAt(fixed, "2026-10-25T00:30:00Z");
    await round(new Date("2026-10-25T00:30:00.200Z"));
    expect((await row(fixed)).next_run_at).toEqual(new Date("2026-10-26T01:30:00Z")); // not 01:30Z that day
    expect((await round(new Date("2026-10-25T01:30:00.200Z"))).due).toBe(0);
    expect(await keys(fixed)).toEqual(["2026-03-29T01:00:00.000Z", "2026-10-25T00:30:00.000Z"]);

    // Every 30 minutes: both 02:00 and 02:30 of the autumn night run twice (CEST, then CET).
    const every = await create({ cron: "*/30 * * * *", timezone: "Europe/Berlin" });
    await startingAt(every, "2026-10-25T00:00:00Z");
    for (const at of ["00:00", "00:30", "01:00", "01:30", "02:00"])
      expect((await round(new Date(`2026-10-25T${at}:00.100Z`))).counted).toEqual({ submitted: 1 });
    expect(await keys(every)).toEqual([
      "2026-10-25T00:00:00.000Z",
      "2026-10-25T00:30:00.000Z",
      "2026-10-25T01:00:00.000Z",
      "2026-10-25T01:30:00.000Z",
      "2026-10-25T02:00:00.000Z",
    ]);
    await admin.mutation("schedules.delete", { id: fixed });
    await admin.mutation("schedules.delete", { id: every });
  });
});

describe("Run now and the commands a schedule makes", () => {
  it("submits one command now, owned by the client schedules, audited; a worker runs it like any other", async () => {
    const id = await create({ name: "ping", enabled: false });
    const r = await admin.mutation("schedules.runNow", { id });
    expect(r.status, JSON.stringify(r.error)).toBe(200);
    const commandId = r.data.commandId as string;
    const [cmd] = await commandsOf(id);
    expect(cmd).toMatchObject({ id: commandId, client_id: SCHEDULES_CLIENT_ID });
    expect(cmd!.idempotency_key).toMatch(new RegExp(`^schedule:${id}:manual:\\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z$`));
    expect((await row(id)).last_command_id).toBe(commandId);
    const audit = (
      await t.db.pool.query(
        `SELECT actor, action, command_ids FROM audit_entries WHERE action = 'schedules.runNow' ORDER BY id DESC LIMIT 1`,
      )
    ).rows[0];
    expect(audit).toMatchObject({ actor: "token:scheduler-admin", command_ids: [commandId] });

    // The internal client: a row of api_clients that no token can authenticate as.
    const c = (await t.db.pool.query(`SELECT name, scope, token_hash FROM api_clients WHERE id = $1`, [cmd!.client_id]))
      .rows[0];
    expect(c).toMatchObject({ name: "schedules", scope: "client" });
    expect(c.token_hash).not.toMatch(/^[0-9a-f]{64}$/);
    const byHash = await client(api.url, c.token_hash).query("schedules.list");
    expect(byHash.status).toBe(401);

    // An ordinary command: a worker runs it to succeeded.
    const { startTestWorker } = await import("../helpers/engine");
    const w = await startTestWorker(t.db, t.url, registry);
    try {
      await waitForStatus(t.db, commandId, ["succeeded"]);
    } finally {
      await w.close();
    }
    expect(backend.applied).toContain(commandId);
    const list = (await admin.query("schedules.list")).data.items.find((i: { id: string }) => i.id === id);
    expect(list).toMatchObject({ lastCommandId: commandId, lastCommandStatus: "succeeded" });
    expect((await admin.mutation("schedules.runNow", { id: crypto.randomUUID() })).error?.data.code).toBe("NOT_FOUND");
  });
});
