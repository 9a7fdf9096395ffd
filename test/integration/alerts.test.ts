// Alert rules evaluated against real commands, emails through a real SMTP server on loopback.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDb, type TestDb } from "../helpers/db";
import { startSmtp, type Inbox } from "../helpers/smtp";
import { freePort, runWorker, type Proc } from "../helpers/proc";
import { testClient, waitUntil } from "../helpers/engine";
import { moveTo, ruleSecrets } from "../helpers/fixtures";
import { createRule, updateRule, type RuleInput } from "../../server/alerts/rules";
import { client as apiClient, newToken, startApi, type ApiServer } from "../helpers/api";
import { evaluateRules } from "../../server/alerts/evaluator";
import { sendTest } from "../../server/alerts/test-email";
import { startMailer, NO_SMTP } from "../../server/alerts/mailer";
import { directIntake, submit } from "../../server/commands/submit";
import { registry } from "../../server/command-types";
import { createLogger } from "../../server/log";

let t: TestDb;
let inbox: Inbox;
let clientId: string;
const log = createLogger({ name: "t", level: "silent" });
const PUBLIC = "https://conveyor.example";

beforeAll(async () => {
  t = await createTestDb();
  inbox = await startSmtp();
  ({ clientId } = await testClient(t.db));
});
afterAll(async () => {
  await inbox?.close();
  await t?.drop();
});

async function cmdIn(state: string, type = "http", path?: string[]) {
  const { id } = await submit(directIntake(t.db, registry), clientId, {
    type,
    payload: { url: "https://b.example/x" },
    runAt: "2999-01-01T00:00:00Z",
  });
  const paths: Record<string, string[]> = {
    exception: ["running", "exception"],
    failed: ["running", "failed"],
    succeeded: ["running", "succeeded"],
    pending: [],
  };
  await moveTo(t.db, id, path ?? paths[state]!);
  return id;
}
const evaluate = (now?: Date) => evaluateRules(t.db, { publicUrl: PUBLIC, now: now ? () => now : undefined });
const eventsOf = async (ruleId: string) =>
  (await t.db.pool.query(`SELECT kind FROM alert_events WHERE rule_id = $1 ORDER BY id`, [ruleId])).rows.map(
    (r) => r.kind,
  );
const rule = (r: Partial<RuleInput> & Pick<RuleInput, "name" | "kind" | "threshold">): RuleInput =>
  ({ recipients: ["oncall@example.com"], ...r }) as RuleInput;
// Each test works on its own rule; the others are disabled so that they stay quiet.
const only = async (id: string) => t.db.pool.query(`UPDATE alert_rules SET enabled = (id = $1)`, [id]);

describe("rules", () => {
  it("count: fires when it becomes true and not before, repeats only after the cooldown, resolves, and the email says it all", async () => {
    const { id } = await createRule(
      t.db,
      rule({
        name: "Payments failing",
        kind: "count",
        states: ["exception"],
        windowSeconds: 600,
        threshold: 2,
        type: "http",
        cooldownSeconds: 300,
        notifyOnResolve: true,
      }),
      "test",
      await ruleSecrets(t.db),
    );
    await only(id);
    const first = await cmdIn("exception");
    await evaluate();
    expect(await eventsOf(id)).toEqual([]);
    const second = await cmdIn("exception");
    await evaluate();
    expect(await eventsOf(id)).toEqual(["firing"]);
    await evaluate();
    expect(await eventsOf(id)).toEqual(["firing"]); // within the cooldown
    await evaluate(new Date(Date.now() + 301_000));
    expect(await eventsOf(id)).toEqual(["firing", "repeat"]);

    const mailer = startMailer({
      db: t.db,
      log,
      publicUrl: PUBLIC,
      smtpUrl: inbox.url,
      from: "Conveyor <alerts@conveyor.example>",
      pollMs: 50,
    });
    const before = inbox.mails.length;
    try {
      await inbox.waitFor(before + 2);
    } finally {
      await mailer.stop();
    }
    const m = inbox.mails[before]!;
    expect(m.subject).toBe("[FIRING] Payments failing");
    expect((m.to as { text: string }).text).toBe("oncall@example.com");
    expect(m.text).toMatch(/is 2, at or above the threshold of 2/);
    expect(m.text).toContain(first);
    expect(m.text).toContain(second);
    expect(m.text).toContain(`${PUBLIC}/commands?status=exception&type=http`);
    expect(m.html).toContain(`href="${PUBLIC}/commands/${first}"`);

    // recovery: the entries leave the window (as if ten minutes had passed)
    await t.db.pool.query(`UPDATE state_entries SET minute = minute - interval '1 hour'`);
    await evaluate();
    expect(await eventsOf(id)).toEqual(["firing", "repeat", "resolved"]);
    const mailer2 = startMailer({
      db: t.db,
      log,
      publicUrl: PUBLIC,
      smtpUrl: inbox.url,
      from: "Conveyor <alerts@conveyor.example>",
      pollMs: 50,
    });
    try {
      const mails = await inbox.waitFor(before + 3);
      expect(mails[before + 2]!.subject).toBe("[RESOLVED] Payments failing");
      expect(mails[before + 2]!.text).toMatch(/^Resolved: /);
    } finally {
      await mailer2.stop();
    }
  });

  it("count: commands that entered a state and already left it still count", async () => {
    const { id } = await createRule(
      t.db,
      rule({ name: "Retries", kind: "count", states: ["retrying"], windowSeconds: 600, threshold: 2 }),
      "test",
      await ruleSecrets(t.db),
    );
    await only(id);
    await cmdIn("succeeded", "http", ["running", "retrying", "running", "succeeded"]);
    await evaluate();
    expect(await eventsOf(id)).toEqual([]);
    await cmdIn("succeeded", "http", ["running", "retrying", "running", "succeeded"]);
    await evaluate();
    expect((await t.db.pool.query(`SELECT last_value FROM alert_rules WHERE id = $1`, [id])).rows[0].last_value).toBe(
      2,
    );
    expect(await eventsOf(id)).toEqual(["firing"]);
  });

  it("count of pending entries includes new commands; finished minutes fold into one row without losing entries", async () => {
    const { id } = await createRule(
      t.db,
      rule({ name: "Inflow", kind: "count", states: ["pending"], windowSeconds: 600, threshold: 1_000_000 }),
      "test",
      await ruleSecrets(t.db),
    );
    await only(id);
    await evaluate();
    const before = (await t.db.pool.query(`SELECT last_value FROM alert_rules WHERE id = $1`, [id])).rows[0].last_value;
    await cmdIn("pending");
    await cmdIn("pending");
    await evaluate();
    expect((await t.db.pool.query(`SELECT last_value FROM alert_rules WHERE id = $1`, [id])).rows[0].last_value).toBe(
      before + 2,
    );
    await t.db.pool.query(
      `INSERT INTO state_entries (minute, status, type, shard, n)
       VALUES (date_trunc('minute', now()) - interval '5 minutes', 'failed', 'fold.test', 1, 2),
       (date_trunc('minute', now()) - interval '5 minutes', 'failed', 'fold.test', 2, 3)`,
    );
    await evaluate(); // the evaluator compacts
    expect((await t.db.pool.query(`SELECT shard, n FROM state_entries WHERE type = 'fold.test'`)).rows).toEqual([
      { shard: -1, n: 5 },
    ]);
  });

  it("stuck: commands in a state for longer than the age", async () => {
    const { id } = await createRule(
      t.db,
      rule({ name: "Stuck pending", kind: "stuck", states: ["pending"], ageSeconds: 60, threshold: 1 }),
      "test",
      await ruleSecrets(t.db),
    );
    await only(id);
    const c = await cmdIn("pending");
    await evaluate();
    expect(await eventsOf(id)).toEqual([]);
    await t.db.pool.query(`UPDATE commands SET state_changed_at = now() - interval '2 minutes' WHERE id = $1`, [c]);
    await evaluate();
    expect(await eventsOf(id)).toEqual(["firing"]);
    await t.db.pool.query(`UPDATE commands SET state_changed_at = now() WHERE id = $1`, [c]);
  });

  it("rate: share of failed + exception among recently finished", async () => {
    // its own command type, so that other tests' commands do not count
    const { id } = await createRule(
      t.db,
      rule({ name: "Failure rate", kind: "rate", windowSeconds: 300, threshold: 0.5, type: "ledger.post" }),
      "test",
      await ruleSecrets(t.db),
    );
    await only(id);
    const mine = async (state: string) => {
      const c = await cmdIn(state);
      await t.db.pool.query(`UPDATE commands SET type = 'ledger.post' WHERE id = $1`, [c]);
    };
    await mine("succeeded");
    await mine("succeeded");
    await mine("failed");
    await evaluate();
    expect(await eventsOf(id)).toEqual([]); // 1 of 3
    await mine("failed");
    await evaluate();
    expect((await t.db.pool.query(`SELECT last_value FROM alert_rules WHERE id = $1`, [id])).rows[0].last_value).toBe(
      0.5,
    );
    expect(await eventsOf(id)).toEqual(["firing"]);
  });

  it("backlog: due commands waiting for a worker", async () => {
    const { id } = await createRule(
      t.db,
      rule({ name: "Backlog", kind: "backlog", threshold: 3 }),
      "test",
      await ruleSecrets(t.db),
    );
    await only(id);
    await t.db.pool.query(`UPDATE commands SET run_at = 'infinity' WHERE status IN ('pending', 'retrying')`);
    const ids = [await cmdIn("pending"), await cmdIn("pending")];
    await t.db.pool.query(`UPDATE commands SET run_at = now() WHERE id = ANY($1::uuid[])`, [ids]);
    await evaluate();
    expect(await eventsOf(id)).toEqual([]);
    const third = await cmdIn("pending");
    await t.db.pool.query(`UPDATE commands SET run_at = now() WHERE id = $1`, [third]);
    await evaluate();
    expect(await eventsOf(id)).toEqual(["firing"]);
    await t.db.pool.query(`UPDATE commands SET run_at = 'infinity' WHERE id = ANY($1::uuid[])`, [[...ids, third]]);
  });

  it("a silenced rule sends nothing", async () => {
    const input = rule({
      name: "Silenced",
      kind: "count",
      states: ["failed"],
      windowSeconds: 600,
      threshold: 1,
      notifyOnResolve: true,
      silencedUntil: new Date(Date.now() + 3600_000).toISOString(),
    });
    const { id } = await createRule(t.db, input, "test", await ruleSecrets(t.db));
    await only(id);
    await cmdIn("failed");
    await evaluate();
    expect(await eventsOf(id)).toEqual([]);
    expect((await t.db.pool.query(`SELECT firing FROM alert_rules WHERE id = $1`, [id])).rows[0].firing).toBe(true);
    await updateRule(t.db, { ...input, id, silencedUntil: null }, "test", await ruleSecrets(t.db));
    await evaluate(new Date(Date.now() + 4000_000));
    expect(await eventsOf(id)).toEqual(["repeat"]);
  });

  it("without SMTP the deliveries wait, saying email is not configured", async () => {
    const { id } = await createRule(
      t.db,
      rule({ name: "Test me", kind: "backlog", threshold: 1000, recipients: ["a@example.com", "b@example.com"] }),
      "test",
      await ruleSecrets(t.db),
    );
    await only(id);
    const r = await sendTest(t.db, id, PUBLIC);
    expect(r!.recipients).toEqual(["a@example.com", "b@example.com"]);
    const mailer = startMailer({ db: t.db, log, publicUrl: PUBLIC, from: "x@example.com", pollMs: 20 });
    await waitUntil(
      async () =>
        (
          await t.db.pool.query(
            `SELECT count(*)::int AS n FROM alert_deliveries WHERE event_id = $1 AND last_error = $2`,
            [r!.eventId, NO_SMTP],
          )
        ).rows[0].n === 2,
      "deliveries marked",
    );
    await mailer.stop();
    const { rows } = await t.db.pool.query(`SELECT subject, sent_at FROM alert_deliveries WHERE event_id = $1`, [
      r!.eventId,
    ]);
    expect(rows).toEqual([
      { subject: "[TEST] Test me", sent_at: null },
      { subject: "[TEST] Test me", sent_at: null },
    ]);
  });

  it("a test email is stored without bodies by the web process and rendered by a worker's mailer, links to the console included", async () => {
    const { id } = await createRule(
      t.db,
      rule({ name: "Render me", kind: "backlog", threshold: 1000, recipients: ["r@example.com"] }),
      "test",
      await ruleSecrets(t.db),
    );
    await only(id);
    const r = await sendTest(t.db, id, PUBLIC);
    const bodies = async () =>
      (
        await t.db.pool.query(`SELECT subject, text_body, html_body FROM alert_deliveries WHERE event_id = $1`, [
          r!.eventId,
        ])
      ).rows;
    expect(await bodies()).toEqual([{ subject: "[TEST] Render me", text_body: null, html_body: null }]);
    const mailer = startMailer({ db: t.db, log, publicUrl: PUBLIC, from: "x@example.com", pollMs: 20 });
    try {
      await waitUntil(async () => (await bodies())[0].html_body !== null, "bodies rendered");
    } finally {
      await mailer.stop();
    }
    const [d] = await bodies();
    expect(d.text_body).toMatch(
      /^This is a test of the rule "Render me": commands pending or retrying whose time has come is now \d+ \(threshold 1000\)\./,
    );
    expect(d.text_body).toContain(`Open in the console: ${PUBLIC}/commands?status=pending%2Cretrying`);
    expect(d.html_body).toContain(`href="${PUBLIC}/commands?status=pending%2Cretrying"`);
    expect(d.html_body).toContain("[TEST] Render me</h2>");
  });

  it("rejects invalid rules naming the field", async () => {
    const { ruleInput } = await import("../../server/alerts/rules");
    const r = ruleInput.safeParse({ name: "x", kind: "rate", threshold: 3, recipients: ["not-an-email"] });
    expect(r.success).toBe(false);
    expect(r.error!.issues.map((i) => i.path.join("."))).toEqual(
      expect.arrayContaining(["recipients.0", "windowSeconds", "threshold"]),
    );
    const s = ruleInput.safeParse({
      name: "x",
      kind: "count",
      states: ["nope"],
      threshold: 1,
      recipients: ["a@b.example"],
    });
    expect(s.error!.issues.map((i) => i.path.join("."))).toContain("states.0");
  });
});

describe("delivery", () => {
  it("SMTP down when the rule fires, back 30 s later: the email arrives, once", async () => {
    const port = await freePort();
    await t.db.pool.query(`UPDATE alert_deliveries SET sent_at = now() WHERE sent_at IS NULL`); // earlier tests' mail is not this test's
    const { id } = await createRule(
      t.db,
      rule({ name: "Outage", kind: "backlog", threshold: 1000, recipients: ["ops@example.com"] }),
      "test",
      await ruleSecrets(t.db),
    );
    await only(id);
    const r = await sendTest(t.db, id, PUBLIC);
    const mailer = startMailer({
      db: t.db,
      log,
      publicUrl: PUBLIC,
      smtpUrl: `smtp://127.0.0.1:${port}`,
      from: "x@example.com",
      pollMs: 100,
      maxRetryMs: 4000,
    });
    try {
      await waitUntil(
        async () =>
          (await t.db.pool.query(`SELECT attempts FROM alert_deliveries WHERE event_id = $1`, [r!.eventId])).rows[0]
            .attempts >= 2,
        "failed attempts",
        20_000,
      );
      const failed = (
        await t.db.pool.query(`SELECT last_error, sent_at FROM alert_deliveries WHERE event_id = $1`, [r!.eventId])
      ).rows[0];
      expect(failed.last_error).toMatch(/ECONNREFUSED|connect/i);
      expect(failed.sent_at).toBeNull();
      await new Promise((res) => setTimeout(res, 30_000)); // the outage lasts 30 s, as the issue asks
      const back = await startSmtp(port);
      try {
        const mails = await back.waitFor(1, 30_000);
        expect(mails[0]!.subject).toBe("[TEST] Outage");
        await waitUntil(
          async () =>
            (await t.db.pool.query(`SELECT sent_at FROM alert_deliveries WHERE event_id = $1`, [r!.eventId])).rows[0]
              .sent_at !== null,
          "sent",
        );
        await new Promise((res) => setTimeout(res, 1500)); // a window for a duplicate to show up
        expect(back.mails).toHaveLength(1);
      } finally {
        await back.close();
      }
    } finally {
      await mailer.stop();
    }
  }, 90_000);

  it("two worker processes, one firing: exactly one email per recipient", async () => {
    await t.db.pool.query(`UPDATE alert_rules SET enabled = false`);
    await t.db.pool.query(`UPDATE alert_deliveries SET sent_at = now() WHERE sent_at IS NULL`);
    const box = await startSmtp();
    const env = {
      DATABASE_URL: t.url,
      SMTP_URL: box.url,
      ALERT_EVAL_MS: "500",
      LOG_LEVEL: "info",
      PUBLIC_URL: PUBLIC,
      HTTP_ALLOWED_HOSTS: "127.0.0.1",
    };
    const ws: Proc[] = [runWorker(env), runWorker(env)];
    try {
      await Promise.all(ws.map((w) => w.waitFor(/worker started/)));
      const { id } = await createRule(
        t.db,
        rule({
          name: "Two workers",
          kind: "count",
          states: ["exception"],
          windowSeconds: 600,
          threshold: 1,
          recipients: ["one@example.com", "two@example.com"],
        }),
        "test",
        await ruleSecrets(t.db),
      );
      await only(id);
      await cmdIn("exception");
      const mails = await box.waitFor(2, 30_000);
      // let both workers evaluate several more times
      const seen = (await t.db.pool.query(`SELECT last_evaluated_at FROM alert_rules WHERE id = $1`, [id])).rows[0]
        .last_evaluated_at;
      await waitUntil(
        async () =>
          (
            await t.db.pool.query(`SELECT last_evaluated_at FROM alert_rules WHERE id = $1`, [id])
          ).rows[0].last_evaluated_at.getTime() >
          seen.getTime() + 1500,
        "more evaluations",
        20_000,
      );
      expect(mails.map((m) => (m.to as { text: string }).text).sort()).toEqual(["one@example.com", "two@example.com"]);
      expect(box.mails).toHaveLength(2);
      expect(await eventsOf(id)).toEqual(["firing"]);
    } finally {
      for (const w of ws) w.child.kill("SIGTERM");
      await Promise.all(ws.map((w) => w.exited));
      await box.close();
    }
  }, 90_000);
});

describe("what the console is told about a rule's emails (from the deliveries)", () => {
  const FROM = "Conveyor <alerts@conveyor.example>";
  // Read as the console reads it: alerts.listRules and alerts.history over HTTP, with an admin token.
  let api: ApiServer;
  let read: ReturnType<typeof apiClient>;
  beforeAll(async () => {
    api = await startApi(t.db);
    read = apiClient(api.url, (await newToken(t.db, "admin", "console-reader")).token);
  });
  afterAll(() => api?.close());
  type Status =
    | { state: "sent"; sentAt: string }
    | { state: "queued"; attempts: number; nextAt: string | null; lastError: string | null }
    | { state: "not_sent"; why: string; message: string };
  const emailOf = async (id: string) =>
    ((await read.query("alerts.listRules")).data.items as any[]).find((r) => r.id === id)!.email;
  const statusesOf = async (id: string): Promise<{ kind: string; statuses: Status[] }[]> =>
    ((await read.query("alerts.history", { ruleId: id, limit: 10 })).data.items as any[]).map((e) => ({
      kind: e.kind,
      statuses: e.deliveries.map((d: { status: Status }) => d.status),
    }));
  const sentAts = async (id: string) =>
    (
      await t.db.pool.query(
        `SELECT d.sent_at FROM alert_deliveries d JOIN alert_events e ON e.id = d.event_id WHERE e.rule_id = $1 AND d.sent_at IS NOT NULL ORDER BY d.sent_at`,
        [id],
      )
    ).rows.map((r) => r.sent_at.toISOString());
  async function mailing(o: { smtpUrl?: string; until: () => Promise<boolean>; what: string }) {
    const mailer = startMailer({
      db: t.db,
      log,
      publicUrl: PUBLIC,
      smtpUrl: o.smtpUrl,
      from: FROM,
      pollMs: 20,
      maxRetryMs: 60_000,
    });
    try {
      await waitUntil(o.until, o.what);
    } finally {
      await mailer.stop();
    }
  }

  const deliveryLife =
    "queued, then not sent while SMTP_URL is unset (kept), then retrying while the server is down, then sent;" +
    " a later alert says when the last one was sent";
  it(deliveryLife, { timeout: 60_000 }, async () => {
    await t.db.pool.query(`UPDATE alert_deliveries SET sent_at = now() WHERE sent_at IS NULL`); // earlier tests' mail is not this test's
    const { id } = await createRule(
      t.db,
      rule({
        name: "Ledger down",
        kind: "count",
        states: ["exception"],
        windowSeconds: 600,
        threshold: 1,
        recipients: ["a@example.com", "b@example.com"],
        cooldownSeconds: 300,
      }),
      "test",
      await ruleSecrets(t.db),
    );
    await only(id);
    expect(await emailOf(id)).toEqual({ latest: null, lastSentAt: null, unsent: { notSent: 0, queued: 0 } });
    await cmdIn("exception");
    await evaluate();

    // Nobody has tried yet.
    const fresh = await emailOf(id);
    expect(fresh).toMatchObject({
      latest: { kind: "firing", sent: 0, notSent: 0, queued: 2, attempts: 0, lastError: null, sentAt: null },
      lastSentAt: null,
      unsent: { notSent: 0, queued: 2 },
    });
    expect(await statusesOf(id)).toEqual([
      {
        kind: "firing",
        statuses: [
          expect.objectContaining({ state: "queued", attempts: 0, lastError: null }),
          expect.objectContaining({ state: "queued", attempts: 0, lastError: null }),
        ],
      },
    ]);

    // A worker without SMTP_URL: kept, not sent, and it says why. Nothing claims it was sent.
    await mailing({ until: async () => (await emailOf(id)).latest?.notSent === 2, what: "deliveries held" });
    const held = await emailOf(id);
    expect(held).toMatchObject({
      latest: { kind: "firing", sent: 0, notSent: 2, queued: 0, sentAt: null },
      lastSentAt: null,
      unsent: { notSent: 2, queued: 0 },
    });
    const notSent = { state: "not_sent", why: "smtp_unset", message: "SMTP_URL is unset; kept until it is set" };
    expect(await statusesOf(id)).toEqual([{ kind: "firing", statuses: [notSent, notSent] }]);

    // SMTP_URL set, the server down: queued, retrying, with the next try and the error.
    const port = await freePort();
    await mailing({
      smtpUrl: `smtp://127.0.0.1:${port}`,
      until: async () => ((await emailOf(id)).latest?.attempts ?? 0) >= 1 && (await emailOf(id)).latest?.queued === 2,
      what: "failed attempts",
    });
    const down = await emailOf(id);
    expect(down).toMatchObject({
      latest: { sent: 0, notSent: 0, queued: 2 },
      lastSentAt: null,
      unsent: { notSent: 0, queued: 2 },
    });
    expect(down.latest!.lastError).toMatch(/ECONNREFUSED|connect/i);
    expect(Date.parse(down.latest!.nextAt!)).toBeGreaterThan(Date.now());
    for (const st of (await statusesOf(id))[0]!.statuses) {
      expect(st).toMatchObject({ state: "queued" });
      if (st.state === "queued" && st.attempts > 0) expect(st.lastError).toMatch(/ECONNREFUSED|connect/i);
    }

    // The server up: sent, and when.
    await mailing({ smtpUrl: inbox.url, until: async () => (await emailOf(id)).latest?.sent === 2, what: "sent" });
    const at = await sentAts(id);
    expect(at).toHaveLength(2);
    expect(await emailOf(id)).toEqual({
      latest: {
        kind: "firing",
        at: expect.any(String),
        sent: 2,
        notSent: 0,
        queued: 0,
        attempts: 0,
        nextAt: null,
        lastError: null,
        sentAt: at[1],
      },
      lastSentAt: at[1],
      unsent: { notSent: 0, queued: 0 },
    });
    expect((await statusesOf(id))[0]!.statuses.map((s) => (s.state === "sent" ? s.sentAt : s.state)).sort()).toEqual(
      at,
    );

    // A repeat after the cooldown, while no worker sends mail: the latest alert is queued, and the last email sent is the earlier one.
    await evaluate(new Date(Date.now() + 301_000));
    const later = await emailOf(id);
    expect(later).toMatchObject({
      latest: { kind: "repeat", sent: 0, queued: 2, sentAt: null },
      lastSentAt: at[1],
      unsent: { notSent: 0, queued: 2 },
    });
    expect((await statusesOf(id)).map((e) => e.kind)).toEqual(["repeat", "firing"]);
  });
});
