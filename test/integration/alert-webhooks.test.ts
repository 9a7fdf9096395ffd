// Alert webhooks (DESIGN §9) against a real PostgreSQL and a real webhook
// receiver on loopback: signed with the rule's secret, one delivery per
// firing per webhook, retried until a 2xx with every try recorded, firing then
// resolved, HTTP_ALLOWED_HOSTS and the rebinding-proof connection, the test
// alert, the secret shown once and rotated, bad input naming its field.
import { randomUUID } from "node:crypto";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createTestDb, type TestDb } from "../helpers/db";
import { startWebhookSink, verifies, type WebhookSink } from "../helpers/webhook";
import { testClient, waitUntil } from "../helpers/engine";
import { ruleSecrets, userWithSession } from "../helpers/fixtures";
import { client as apiClient, newToken, startApi, type ApiServer } from "../helpers/api";
import { createRule, listRules, rotateWebhookSecret, type RuleInput } from "../../server/alerts/rules";
import { evaluateRules } from "../../server/alerts/evaluator";
import { sendTest } from "../../server/alerts/test-email";
import { alertHistory } from "../../server/alerts/delivery";
import { alertWebhookSender } from "../../server/worker/alert-webhooks";
import { resolveSecretKey } from "../../server/db/settings";
import { createHostListCheck, createOutboundFetch, createUrlGuard } from "../../server/outbound/url-guard";
import { directIntake, submit } from "../../server/commands/submit";
import { registry } from "../../server/command-types";
import { createLogger } from "../../server/log";
import type { Service } from "../../server/worker/service";
import { verifySignature } from "../../packages/client/src/index";

let t: TestDb;
let sink: WebhookSink;
let clientId: string;
let api: ApiServer;
let admin: ReturnType<typeof apiClient>;
const log = createLogger({ name: "t", level: process.env.TEST_LOG ?? "silent" });
const PUBLIC = "https://conveyor.example";
const senders: Service[] = [];

beforeAll(async () => {
  t = await createTestDb();
  sink = await startWebhookSink();
  ({ clientId } = await testClient(t.db));
  api = await startApi(t.db, { publicUrl: PUBLIC });
  admin = apiClient(api.url, (await newToken(t.db, "admin", "hooks-admin")).token);
});
afterEach(async () => {
  await Promise.all(senders.splice(0).map((s) => s.stop()));
  sink.received.length = 0;
});
afterAll(async () => {
  await api?.close();
  await sink?.close();
  await t?.drop();
});

/** A webhook sender as a worker runs it: `allowed` is HTTP_ALLOWED_HOSTS (unset: the address rules, at connection time). */
function startSender(allowed: string | undefined, workerId = `w-${randomUUID().slice(0, 6)}`) {
  const s = alertWebhookSender({
    db: t.db,
    log,
    workerId,
    secretKey: () => resolveSecretKey(t.db, undefined),
    checkUrl: createUrlGuard(allowed),
    fetch: createOutboundFetch(allowed),
    pollMs: 25,
    maxRetryMs: 100,
  });
  s.start();
  senders.push(s);
  return s;
}
const stopSenders = () => Promise.all(senders.splice(0).map((s) => s.stop()));

const evaluate = () => evaluateRules(t.db, { publicUrl: PUBLIC });
const only = async (id: string) => t.db.pool.query(`UPDATE alert_rules SET enabled = (id = $1)`, [id]);
const rule = (r: Partial<RuleInput>): RuleInput =>
  ({ name: "Backlog", kind: "backlog", threshold: 1, webhooks: [`${sink.url}/hook`], ...r }) as RuleInput;
/** A command waiting now (no worker runs here): the backlog rules' value. */
const due = async () =>
  (await submit(directIntake(t.db, registry), clientId, { type: "http", payload: { url: "https://b.example/x" } })).id;
const clearCommands = () => t.db.pool.query(`DELETE FROM commands`);

const deliveriesOf = async (ruleId: string) =>
  (
    await t.db.pool.query<{
      id: string;
      kind: string;
      channel: string;
      recipient: string;
      sent: boolean;
      attempts: number;
    }>(
      `SELECT d.id::text, e.kind, d.channel, d.recipient, d.sent_at IS NOT NULL AS sent, d.attempts
       FROM alert_deliveries d JOIN alert_events e ON e.id = d.event_id WHERE e.rule_id = $1 ORDER BY d.id`,
      [ruleId],
    )
  ).rows;
const triesOf = async (deliveryId: string) =>
  (
    await t.db.pool.query<{ number: number; status: number | null; error: string | null; worker: string }>(
      `SELECT number, status, error, worker FROM alert_delivery_tries WHERE delivery_id = $1 ORDER BY number`,
      [deliveryId],
    )
  ).rows;

describe("alert webhooks", () => {
  it("fires, is retried after 500s until a 2xx with every try recorded, signed with the rule's secret; then resolves", async () => {
    const { id, webhookSecret } = await createRule(
      t.db,
      rule({ name: "Ledger backlog", notifyOnResolve: true }),
      "test",
      await ruleSecrets(t.db),
    );
    await only(id);
    await due();
    sink.plan([500, 500]);
    const [ev] = (await evaluate())!;
    expect(ev).toMatchObject({ ruleId: id, value: 1, event: "firing" });
    startSender("127.0.0.1");
    const got = await sink.waitFor(3);
    await waitUntil(async () => (await deliveriesOf(id))[0]?.sent === true, "the delivery is marked sent");

    // the same body every try, signed with the secret createRule answered (and no other)
    expect(new Set(got.map((r) => r.raw)).size).toBe(1);
    for (const r of got) {
      expect(r.path).toBe("/hook");
      expect(r.headers["content-type"]).toBe("application/json");
      expect(verifies(r.raw, r.headers["x-conveyor-signature"] as string, webhookSecret)).toBe(true);
      expect(verifies(r.raw, r.headers["x-conveyor-signature"] as string, "whsec_other")).toBe(false);
      expect(r.headers["x-conveyor-rule"]).toBe(id);
      // the client SDK's check of callbacks verifies webhooks too
      expect(await verifySignature(r.raw, r.headers["x-conveyor-signature"] as string, webhookSecret)).toBe(true);
    }
    expect(new Set(got.map((r) => r.headers["x-conveyor-delivery"])).size).toBe(1); // one delivery, three tries
    expect(got[0]!.body).toEqual({
      rule: { id, name: "Ledger backlog", kind: "backlog" },
      status: "firing",
      value: 1,
      threshold: 1,
      text: "[FIRING] Ledger backlog: commands pending or retrying whose time has come is 1, at or above the threshold of 1.",
      url: `${PUBLIC}/alerts?rule=${id}`,
    });
    // posted with its members in the documented order (stored as json, not jsonb)
    expect(Object.keys(got[0]!.body)).toEqual(["rule", "status", "value", "threshold", "text", "url"]);
    expect(got.map((r) => r.status)).toEqual([500, 500, 200]);

    // one delivery, three tries: each with its status, error and worker
    const [d] = await deliveriesOf(id);
    expect(d).toMatchObject({ kind: "firing", channel: "webhook", recipient: `${sink.url}/hook`, attempts: 3 });
    const tries = await triesOf(d!.id);
    expect(tries.map((x) => [x.number, x.status, x.error])).toEqual([
      [1, 500, "HTTP 500"],
      [2, 500, "HTTP 500"],
      [3, 200, null],
    ]);
    expect(tries.every((x) => x.worker.startsWith("w-"))).toBe(true);
    // the history shows them
    const [h] = await alertHistory(t.db, id, 10);
    expect(h!.deliveries).toHaveLength(1);
    expect(h!.deliveries[0]).toMatchObject({ channel: "webhook", status: { state: "sent" }, lastStatus: 200 });
    expect(h!.deliveries[0]!.tries.map((x) => x.status)).toEqual([500, 500, 200]);
    expect(h!.deliveries[0]!.body).toEqual(got[0]!.body);

    // the backlog clears: resolved, posted once
    await clearCommands();
    expect((await evaluate())![0]).toMatchObject({ value: 0, event: "resolved" });
    const [, , , resolved] = await sink.waitFor(4);
    expect(resolved!.body).toMatchObject({ status: "resolved", value: 0, threshold: 1 });
    expect(resolved!.body.text).toMatch(/^\[RESOLVED\] Ledger backlog: Resolved: .* is 0, below the threshold of 1\.$/);
    expect(verifies(resolved!.raw, resolved!.headers["x-conveyor-signature"] as string, webhookSecret)).toBe(true);
    await waitUntil(async () => (await deliveriesOf(id)).every((x) => x.sent), "both sent");
    // the rules list: the channel with its last delivery
    const listed = (await listRules(t.db)).find((r) => r.id === id)!;
    expect(listed.channels).toEqual([
      {
        channel: "webhook",
        to: `${sink.url}/hook`,
        last: expect.objectContaining({
          kind: "resolved",
          attempts: 1,
          lastStatus: 200,
          status: expect.objectContaining({ state: "sent" }),
        }),
      },
    ]);
    await stopSenders();
    expect(sink.received).toHaveLength(4);
  });

  it("a webhook HTTP_ALLOWED_HOSTS refuses is a failed try, as is one the rebinding-proof connection refuses; never dropped, it goes once allowed", async () => {
    const { id } = await createRule(
      t.db,
      rule({ name: "Refused", webhooks: [`${sink.localhostUrl}/refused`] }),
      "test",
      await ruleSecrets(t.db),
    );
    await only(id);
    await due();
    expect((await evaluate())![0]!.event).toBe("firing");
    const [d] = await deliveriesOf(id);

    // the list names 127.0.0.1, not localhost
    startSender("127.0.0.1");
    await waitUntil(async () => (await triesOf(d!.id)).length >= 2, "two refused tries");
    await stopSenders();
    // unset: any public address; localhost resolves to loopback, refused inside the connection's own lookup
    const before = (await triesOf(d!.id)).length;
    const s = alertWebhookSender({
      db: t.db,
      log,
      workerId: "w-unset",
      secretKey: () => resolveSecretKey(t.db, undefined),
      fetch: createOutboundFetch(undefined), // no checkUrl: the connection itself must refuse
      pollMs: 25,
      maxRetryMs: 100,
    });
    s.start();
    senders.push(s);
    await waitUntil(async () => (await triesOf(d!.id)).length > before, "a try through the rebinding-proof connection");
    await stopSenders();
    const tries = await triesOf(d!.id);
    expect(sink.received).toHaveLength(0);
    expect(tries.slice(0, 2).map((x) => [x.status, x.error])).toEqual([
      [null, "host localhost is not in HTTP_ALLOWED_HOSTS"],
      [null, "host localhost is not in HTTP_ALLOWED_HOSTS"],
    ]);
    expect(tries.at(-1)!.error).toMatch(
      /localhost resolves to (127\.0\.0\.1|::1), a loopback, private or link-local address/,
    );
    expect((await deliveriesOf(id))[0]!.sent).toBe(false);
    const [h] = await alertHistory(t.db, id, 1);
    expect(h!.deliveries[0]!.status).toMatchObject({ state: "queued", attempts: tries.length });

    // allowed now (another HTTP_ALLOWED_HOSTS): the same delivery goes, once
    startSender("localhost");
    await sink.waitFor(1);
    await waitUntil(async () => (await deliveriesOf(id))[0]!.sent, "sent once allowed");
    await stopSenders();
    expect(sink.received).toHaveLength(1);
    expect(sink.received[0]!.path).toBe("/refused");
    await clearCommands();
  });

  it("two evaluators and two senders, one firing: one POST per webhook", async () => {
    const { id } = await createRule(
      t.db,
      rule({ name: "Fleet", webhooks: [`${sink.url}/a`, `${sink.url}/b`], recipients: ["oncall@example.com"] }),
      "test",
      await ruleSecrets(t.db),
    );
    await only(id);
    await due();
    const rounds = await Promise.all([evaluate(), evaluate(), evaluate()]);
    const events = rounds.flatMap((r) => r ?? []).filter((e) => e.event);
    expect(events).toHaveLength(1);
    startSender("127.0.0.1", "w-one");
    startSender("127.0.0.1", "w-two");
    await sink.waitFor(2);
    await waitUntil(
      async () => (await deliveriesOf(id)).filter((x) => x.channel === "webhook").every((x) => x.sent),
      "both webhooks sent",
    );
    await stopSenders();
    expect(sink.received.map((r) => r.path).sort()).toEqual(["/a", "/b"]);
    // the email is a delivery of its own, in the same outbox, left to the mailer
    expect((await deliveriesOf(id)).map((x) => [x.channel, x.recipient])).toEqual([
      ["email", "oncall@example.com"],
      ["webhook", `${sink.url}/a`],
      ["webhook", `${sink.url}/b`],
    ]);
    await clearCommands();
  });

  it("Send test posts to every webhook (test: true); a rotated secret signs from then on, audited, and the old one stops verifying", async () => {
    const made = await admin.mutation("alerts.createRule", {
      name: "Tested",
      kind: "count",
      states: ["exception"],
      windowSeconds: 600,
      threshold: 3,
      webhooks: [`${sink.url}/test`],
    });
    expect(made.status).toBe(200);
    const { id, webhookSecret } = made.data as { id: string; webhookSecret: string };
    expect(webhookSecret).toMatch(/^whsec_/);
    await only(id);
    // never shown again, nor stored in the clear
    const listed = await admin.query("alerts.listRules");
    expect(JSON.stringify(listed.data)).not.toContain(webhookSecret);
    const stored = await t.db.pool.query(`SELECT webhook_secret_enc FROM alert_rules WHERE id = $1`, [id]);
    expect(stored.rows[0].webhook_secret_enc).not.toContain(webhookSecret.slice(6));

    const tested = await admin.mutation("alerts.testRule", { id });
    expect(tested.data).toMatchObject({ recipients: [], webhooks: 1 });
    startSender("127.0.0.1");
    const [r] = await sink.waitFor(1);
    expect(r!.body).toMatchObject({
      rule: { id, name: "Tested", kind: "count" },
      status: "firing",
      test: true,
      value: 0,
      threshold: 3,
      url: `${PUBLIC}/alerts?rule=${id}`,
    });
    expect(r!.body.text).toMatch(/^\[TEST\] Tested: This is a test of the rule "Tested": /);
    expect(verifies(r!.raw, r!.headers["x-conveyor-signature"] as string, webhookSecret)).toBe(true);

    const rotated = await admin.mutation("alerts.rotateWebhookSecret", { id });
    const fresh = (rotated.data as { webhookSecret: string }).webhookSecret;
    expect(fresh).toMatch(/^whsec_/);
    expect(fresh).not.toBe(webhookSecret);
    await sendTest(t.db, id, PUBLIC);
    const [, again] = await sink.waitFor(2);
    expect(verifies(again!.raw, again!.headers["x-conveyor-signature"] as string, fresh)).toBe(true);
    expect(verifies(again!.raw, again!.headers["x-conveyor-signature"] as string, webhookSecret)).toBe(false);
    const audit = await t.db.pool.query(
      `SELECT actor, action, details FROM audit_entries WHERE action = 'alert.rotateWebhookSecret' ORDER BY id DESC LIMIT 1`,
    );
    expect(audit.rows[0]).toMatchObject({ actor: "token:hooks-admin", details: { id, name: "Tested" } });
    expect(JSON.stringify(audit.rows)).not.toContain(fresh);
    expect((await rotateWebhookSecret(t.db, id, "test", await resolveSecretKey(t.db, undefined))).id).toBe(id);
    const missing = await admin.mutation("alerts.rotateWebhookSecret", { id: randomUUID() });
    expect(missing.status).toBe(404);
  });

  it("a rule that gets its first webhook gets a new secret, answered once by updateRule (never again on later saves)", async () => {
    const input = { name: "Email first", kind: "backlog", threshold: 1, recipients: ["a@example.com"] };
    const made = await admin.mutation("alerts.createRule", input);
    const { id } = made.data as { id: string };
    const first = await admin.mutation("alerts.updateRule", { id, ...input, webhooks: [`${sink.url}/later`] });
    const secret = (first.data as { webhookSecret?: string }).webhookSecret!;
    expect(secret).toMatch(/^whsec_/);
    expect(secret).not.toBe((made.data as { webhookSecret: string }).webhookSecret);
    const again = await admin.mutation("alerts.updateRule", {
      id,
      ...input,
      webhooks: [`${sink.url}/later`],
      threshold: 2,
    });
    expect(again.data).toEqual({ id });
    await t.db.pool.query(`UPDATE alert_rules SET enabled = false WHERE id = $1`, [id]);
    await sendTest(t.db, id, PUBLIC);
    startSender("127.0.0.1");
    const [r] = await sink.waitFor(1);
    expect(verifies(r!.raw, r!.headers["x-conveyor-signature"] as string, secret)).toBe(true);
  });

  it("webhook URLs are whole for admins, masked for viewers (a chat webhook's URL is its credential)", async () => {
    const url = "https://hooks.chat.example/services/T000/B000/XXXXsecretpath";
    const { id } = await createRule(t.db, rule({ name: "Masked", webhooks: [url] }), "test", await ruleSecrets(t.db));
    await t.db.pool.query(`UPDATE alert_rules SET enabled = false WHERE id = $1`, [id]);
    await sendTest(t.db, id, PUBLIC);
    const { cookie } = await userWithSession(t.db, "viewer-hooks@example.com", "viewer");
    const viewer = (path: string, input?: unknown) =>
      fetch(`${api.url}/api/trpc/${path}${input ? `?input=${encodeURIComponent(JSON.stringify(input))}` : ""}`, {
        headers: { cookie },
      }).then((r) => r.json() as Promise<{ result: { data: any } }>);
    const seen = (await viewer("alerts.listRules")).result.data.items.find((r: { id: string }) => r.id === id);
    expect(seen.webhooks).toEqual(["https://hooks.chat.example/…path"]);
    expect(seen.channels[0].to).toBe("https://hooks.chat.example/…path");
    const hist = (await viewer("alerts.history", { ruleId: id })).result.data.items;
    expect(hist[0].deliveries[0].recipient).toBe("https://hooks.chat.example/…path");
    expect(JSON.stringify([seen, hist.map((h: { deliveries: unknown }) => h.deliveries)])).not.toContain("secretpath");
    const whole = ((await admin.query("alerts.listRules")).data as { items: { id: string; webhooks: string[] }[] })
      .items;
    expect(whole.find((r) => r.id === id)!.webhooks).toEqual([url]);
  });
});

describe("bad input names its field and changes nothing", () => {
  const base = { name: "Bad", kind: "backlog", threshold: 1 };
  const cases: [string, Record<string, unknown>, (string | number)[], RegExp][] = [
    ["a webhook that is not a URL", { ...base, webhooks: ["nope"] }, ["webhooks", 0], /http:\/\/ or https:\/\//],
    [
      "a webhook of another scheme",
      { ...base, webhooks: ["https://ok.example/", "ftp://x.example/"] },
      ["webhooks", 1],
      /http/,
    ],
    ["a webhook with credentials", { ...base, webhooks: ["https://u:p@x.example/"] }, ["webhooks", 0], /credentials/],
    [
      "the same webhook twice",
      { ...base, webhooks: ["https://x.example/", "https://x.example/"] },
      ["webhooks", 1],
      /twice/,
    ],
    ["no channel at all", { ...base, recipients: [], webhooks: [] }, ["webhooks"], /at least one recipient or webhook/],
    [
      "a percentile on a count rule",
      { ...base, recipients: ["a@example.com"], percentile: 90 },
      ["percentile"],
      /only a latency/,
    ],
    [
      "a latency rule without a window",
      { ...base, kind: "latency", recipients: ["a@example.com"] },
      ["windowSeconds"],
      /window/,
    ],
    [
      "a percentile above 100",
      { ...base, kind: "latency", windowSeconds: 60, percentile: 100.5, recipients: ["a@example.com"] },
      ["percentile"],
      /at most 100/,
    ],
    [
      "a circuit threshold of 0",
      { ...base, kind: "circuit", threshold: 0, recipients: ["a@example.com"] },
      ["threshold"],
      /from 1/,
    ],
    ["an unknown kind", { ...base, kind: "p99", recipients: ["a@example.com"] }, ["kind"], /./],
  ];
  for (const [what, input, path, message] of cases)
    it(what, async () => {
      const before = (await t.db.pool.query(`SELECT count(*)::int AS n FROM alert_rules`)).rows[0].n;
      const r = await admin.mutation("alerts.createRule", input);
      expect(r.status).toBe(400);
      expect(r.error!.data.code).toBe("BAD_REQUEST");
      const issue = r.error!.data.issues!.find((i) => JSON.stringify(i.path) === JSON.stringify(path));
      expect(issue, JSON.stringify(r.error!.data.issues)).toBeDefined();
      expect(issue!.message).toMatch(message);
      expect((await t.db.pool.query(`SELECT count(*)::int AS n FROM alert_rules`)).rows[0].n).toBe(before);
    });

  it("a webhook HTTP_ALLOWED_HOSTS's list does not name is refused at once, naming it", async () => {
    const listed = await startApi(t.db, {
      intake: { registry, insert: api.deps.intake.insert, hostCheck: createHostListCheck("hooks.example") },
    });
    try {
      const c = apiClient(listed.url, (await newToken(t.db, "admin")).token);
      const r = await c.mutation("alerts.createRule", {
        ...base,
        webhooks: ["https://hooks.example/ok", "https://elsewhere.example/x"],
      });
      expect(r.status).toBe(400);
      expect(r.error!.data.issues).toEqual([
        { path: ["webhooks", 1], message: "host elsewhere.example is not in HTTP_ALLOWED_HOSTS" },
      ]);
      expect((await c.mutation("alerts.createRule", { ...base, webhooks: ["https://hooks.example/ok"] })).status).toBe(
        200,
      );
    } finally {
      await listed.close();
    }
  });
});
