// The rule kinds latency and circuit (DESIGN §9) on real data: commands
// carried out by a real worker against a real backend on loopback, a circuit
// breaker opened and closed by the worker's own flow control, and the
// percentile checked exactly against PostgreSQL's.
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createTestDb, type TestDb } from "../helpers/db";
import { startBackend, type Backend } from "../helpers/backend";
import { startTestWorker, testClient, waitUntil, type TestWorker } from "../helpers/engine";
import { moveTo, ruleSecrets } from "../helpers/fixtures";
import { createRule, updateRule, type RuleInput } from "../../server/alerts/rules";
import { evaluateRules } from "../../server/alerts/evaluator";
import { getRule, measure } from "../../server/db/alerts";
import { webhookBody } from "../../server/alerts/webhook";
import { directIntake, submit } from "../../server/commands/submit";
import { registry } from "../../server/command-types";

let t: TestDb;
let backend: Backend;
let clientId: string;
let workers: TestWorker[] = [];
const PUBLIC = "https://conveyor.example";

beforeAll(async () => {
  t = await createTestDb();
  backend = await startBackend();
  ({ clientId } = await testClient(t.db));
});
afterEach(async () => {
  await Promise.all(workers.map((w) => w.close()));
  workers = [];
  backend.setDefault({ kind: "ok" });
  backend.outage(null);
  await t.db.pool.query(`DELETE FROM commands`);
  await t.db.pool.query(`DELETE FROM flow_scopes`);
  await t.db.pool.query(`DELETE FROM alert_rules`);
});
afterAll(async () => {
  await backend?.close();
  await t?.drop();
});

const evaluate = () => evaluateRules(t.db, { publicUrl: PUBLIC });
const eventOf = async (ruleId: string) => (await evaluate())!.find((e) => e.ruleId === ruleId)!;
const make = async (r: Partial<RuleInput>) =>
  (await createRule(t.db, { recipients: ["oncall@example.com"], ...r } as RuleInput, "test", await ruleSecrets(t.db)))
    .id;
const submitHttp = (key: string, extra: Record<string, unknown> = {}) =>
  submit(directIntake(t.db, registry), clientId, {
    type: "http",
    payload: { url: `${backend.url}/do/${key}`, timeoutMs: 5000 },
    ...extra,
  }).then((r) => r.id);
const allAtRest = async (ids: string[]) =>
  (
    await t.db.pool.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM commands WHERE id = ANY($1::uuid[]) AND finished_at IS NOT NULL`,
      [ids],
    )
  ).rows[0]!.n === ids.length;

describe("latency rules", () => {
  it("the percentile of receipt-to-finish over the commands finished in the window, of the type, as PostgreSQL computes it", async () => {
    // 20 http commands that took 1..20 s, 5 of another type that took 100 s, 3 that finished long before the window
    const ids: string[] = [];
    for (let i = 1; i <= 28; i++) {
      const id = await submitHttp(`p${i}`, { runAt: "2999-01-01T00:00:00Z" });
      await moveTo(t.db, id, ["running", "succeeded"]);
      ids.push(id);
    }
    await t.db.pool.query(
      `UPDATE commands c SET created_at = c.finished_at - make_interval(secs => x.secs), type = x.type,
         finished_at = c.finished_at - make_interval(secs => x.gone), state_changed_at = c.finished_at - make_interval(secs => x.gone)
       FROM unnest($1::uuid[], $2::float8[], $3::text[], $4::float8[]) AS x(id, secs, type, gone) WHERE c.id = x.id`,
      [
        ids,
        ids.map((_, i) => (i < 20 ? i + 1 : i < 25 ? 100 : 1000)),
        ids.map((_, i) => (i < 20 || i >= 25 ? "http" : "ledger")),
        ids.map((_, i) => (i < 25 ? 0 : 7200)),
      ],
    );
    const p95 = await make({ name: "http p95", kind: "latency", type: "http", windowSeconds: 600, threshold: 19 });
    const p50all = await make({ name: "all p50", kind: "latency", percentile: 50, windowSeconds: 600, threshold: 60 });
    const r = (await getRule(t.db.pool, p95))!;
    expect(r.percentile).toBe(95);
    const m = await measure(t.db.pool, r);
    // percentile_cont(0.95) of 1..20: 19 + 0.05 × (20 − 19)
    expect(m.value).toBeCloseTo(19.05, 6);
    // the evidence: the slowest of them first
    expect(m.worst.map((w) => w.id)).toEqual([ids[19], ids[18], ids[17], ids[16], ids[15]]);
    const all = await measure(t.db.pool, (await getRule(t.db.pool, p50all))!);
    expect(all.value).toBeCloseTo(13, 6); // the median of 1..20 and five 100s: the 13th of 25
    const evs = (await evaluate())!;
    expect(evs.find((e) => e.ruleId === p95)).toMatchObject({ event: "firing" });
    expect(evs.find((e) => e.ruleId === p50all)).toMatchObject({ event: null });
    // the webhook's text says it in seconds
    expect(webhookBody(r, "firing", m.value, m, PUBLIC).text).toBe(
      "[FIRING] http p95: the p95 time from receipt to finish of commands of type http finished in the last 600 s is 19.05 s, at or above the threshold of 19.00 s.",
    );
    // nothing finished in the window: 0, and no alert
    await t.db.pool.query(`UPDATE commands SET finished_at = finished_at - interval '1 day'`);
    const zero = await make({ name: "zero", kind: "latency", windowSeconds: 60, threshold: 0.001 });
    expect(await eventOf(zero)).toMatchObject({ value: 0, event: null });
  });

  it("fires on commands a real worker carried out slowly, and resolves when fast ones bring the percentile down", async () => {
    const id = await make({
      name: "Slow http",
      kind: "latency",
      type: "http",
      percentile: 95,
      windowSeconds: 600,
      threshold: 1,
      notifyOnResolve: true,
    });
    workers.push(await startTestWorker(t.db, t.url, registry, { concurrency: 10 }));
    backend.setDefault({ kind: "slow", ms: 1200 });
    const slow = await Promise.all([1, 2, 3, 4, 5].map((i) => submitHttp(`slow${i}`)));
    await waitUntil(() => allAtRest(slow), "the slow commands finish");
    const fired = await eventOf(id);
    expect(fired.event).toBe("firing");
    expect(fired.value).toBeGreaterThanOrEqual(1.2);
    expect(fired.value).toBeLessThan(5);

    // 120 fast ones, 20 at a time: the five slow ones are now above the 95th percentile
    backend.setDefault({ kind: "ok" });
    for (let b = 0; b < 6; b++) {
      const batch = await Promise.all(Array.from({ length: 20 }, (_, i) => submitHttp(`fast${b}-${i}`)));
      await waitUntil(() => allAtRest(batch), "a batch of fast commands finishes");
    }
    const resolved = await eventOf(id);
    expect(resolved.event).toBe("resolved");
    expect(resolved.value).toBeLessThan(1);
    const kinds = await t.db.pool.query(`SELECT kind FROM alert_events WHERE rule_id = $1 ORDER BY id`, [id]);
    expect(kinds.rows.map((r) => r.kind)).toEqual(["firing", "resolved"]);
    // and a higher threshold for a rule that fired is a resolution too (the rule as it is now)
    await updateRule(
      t.db,
      {
        id,
        name: "Slow http",
        kind: "latency",
        type: "http",
        windowSeconds: 600,
        threshold: 1000,
        recipients: ["a@example.com"],
      },
      "test",
      await ruleSecrets(t.db),
    );
    expect((await eventOf(id)).event).toBe(null);
  });
});

describe("circuit rules", () => {
  it("fire while a circuit breaker the worker opened is open or half-open, per type or any, and resolve once it closes", async () => {
    // the backend's host: a circuit that opens after 3 exceptions, probes after 1 s
    await t.db.pool.query(
      `INSERT INTO flow_scopes (kind, name, circuit_threshold, circuit_cooldown_seconds) VALUES ('host', '127.0.0.1', 3, 1)`,
    );
    const httpRule = await make({ name: "http circuits", kind: "circuit", type: "http", notifyOnResolve: true });
    const anyRule = await make({ name: "any circuit", kind: "circuit", webhooks: ["https://hooks.example/x"] });
    const ledgerRule = await make({ name: "ledger circuits", kind: "circuit", type: "ledger" });
    const twoRule = await make({ name: "two circuits", kind: "circuit", threshold: 2 });
    expect((await evaluate())!.map((e) => e.value)).toEqual([0, 0, 0, 0]);

    backend.outage(503);
    workers.push(await startTestWorker(t.db, t.url, registry, { concurrency: 2 }));
    const ids = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        submitHttp(`c${i}`, { retry: { maxAttempts: 20, backoffMs: 10, maxBackoffMs: 20 } }),
      ),
    );
    await waitUntil(
      async () =>
        (await t.db.pool.query(`SELECT 1 FROM flow_scopes WHERE name = '127.0.0.1' AND circuit_state <> 'closed'`))
          .rowCount === 1,
      "the worker opens the circuit",
    );
    const evs = new Map((await evaluate())!.map((e) => [e.ruleId, e]));
    expect(evs.get(httpRule)).toMatchObject({ value: 1, event: "firing" });
    expect(evs.get(anyRule)).toMatchObject({ value: 1, event: "firing" });
    expect(evs.get(ledgerRule)).toMatchObject({ value: 0, event: null });
    expect(evs.get(twoRule)).toMatchObject({ value: 1, event: null });
    // the alert names the circuit: in its details, the email and the webhook's text
    const ev = await t.db.pool.query(
      `SELECT e.details, d.channel, d.text_body, d.body FROM alert_events e JOIN alert_deliveries d ON d.event_id = e.id
       WHERE e.rule_id = $1 ORDER BY d.id`,
      [anyRule],
    );
    expect(ev.rows[0].details.circuits).toEqual([
      {
        kind: "host",
        name: "127.0.0.1",
        state: expect.stringMatching(/^(open|half_open)$/),
        since: expect.any(String),
      },
    ]);
    const hook = ev.rows.find((r) => r.channel === "webhook")!;
    expect(hook.body.text).toMatch(
      /^\[FIRING\] any circuit: the number of open or half-open circuit breakers is 1, at or above the threshold of 1\. Circuits: host 127\.0\.0\.1 \((open|half-open)\)\.$/,
    );
    const mail = ev.rows.find((r) => r.channel === "email")!;
    expect(mail.text_body).toMatch(/Circuit breakers:\s+- host 127\.0\.0\.1 {2}(open|half-open) {2}since /);
    expect(mail.text_body).toContain(`${PUBLIC}/flow`);

    // the backend is back: a probe succeeds, the circuit closes, the rules resolve
    backend.outage(null);
    await waitUntil(() => allAtRest(ids), "every command finishes once the backend is back", 30_000);
    const after = new Map((await evaluate())!.map((e) => [e.ruleId, e]));
    expect(after.get(httpRule)).toMatchObject({ value: 0, event: "resolved" });
    expect(after.get(anyRule)).toMatchObject({ value: 0, event: null }); // resolved without notifying (notifyOnResolve off)
    const stored = await t.db.pool.query(`SELECT firing FROM alert_rules WHERE id = ANY($1::uuid[])`, [
      [httpRule, anyRule],
    ]);
    expect(stored.rows.every((r) => r.firing === false)).toBe(true);
  });
});
