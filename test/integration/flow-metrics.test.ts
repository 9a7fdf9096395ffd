// Flow control in /api/metrics (read from the database at scrape time):
// conveyor_circuit_state per scope, and conveyor_flow_waiting per scope and
// reason (limit, paused, circuit; ordering for commands behind their key).
import { afterAll, beforeAll, expect, it } from "vitest";
import { createTestDb, type TestDb } from "../helpers/db";
import { submitWith, testClient, testTypes } from "../helpers/engine";
import { createMetrics, metricsResponse } from "../../server/metrics";

let t: TestDb;
const registry = testTypes({ calls: new Map(), running: 0, maxRunning: 0 });
let submit: (input: Record<string, unknown>) => Promise<string>;

beforeAll(async () => {
  t = await createTestDb();
  const { clientId } = await testClient(t.db);
  submit = submitWith(t.db, registry, clientId);
});
afterAll(async () => t?.drop());

const http = (host: string, extra: Record<string, unknown> = {}) =>
  submit({ type: "http", payload: { url: `https://${host}/x` }, ...extra });
const sample = (text: string, name: string, labels: string) =>
  Number(new RegExp(`^${name}\\{${labels.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}\\} (\\S+)$`, "m").exec(text)?.[1]);

it("reports every scope's circuit and what waits in the scopes that hold commands back, and why", async () => {
  const open = `cooldown_ms = 10000, next_probe_at = now() + interval '10 seconds'`;
  await t.db.pool.query(`INSERT INTO flow_scopes (kind, name) VALUES
    ('host', 'paused.example'), ('host', 'open.example'), ('host', 'half.example'), ('host', 'closed.example'),
    ('type', 'flaky')`);
  await t.db.pool.query(`UPDATE flow_scopes SET paused = true, paused_reason = 'deploy' WHERE name = 'paused.example'`);
  await t.db.pool.query(`UPDATE flow_scopes SET circuit_state = 'open', ${open} WHERE name = 'open.example'`);
  await t.db.pool.query(`UPDATE flow_scopes SET circuit_state = 'half_open', ${open} WHERE name = 'half.example'`);
  await t.db.pool.query(`UPDATE flow_scopes SET consecutive_exceptions = 2 WHERE name = 'closed.example'`);
  await t.db.pool.query(`UPDATE flow_scopes SET has_limit = true, concurrency = 1 WHERE name = 'flaky'`);
  await http("paused.example");
  await http("paused.example");
  await http("paused.example", { runAt: "2999-01-01T00:00:00Z" }); // not due: not waiting yet
  await http("open.example");
  await http("closed.example");
  for (let i = 0; i < 3; i++) await submit({ type: "flaky", payload: { succeedOn: 1 } });
  await submit({ type: "capped", payload: {} });
  // an ordering key: its head is due (and counted where its scope says), the two behind it wait for it
  for (let i = 0; i < 3; i++) await http("ordered.example", { orderingKey: "customer-1" });

  const m = createMetrics(t.db, { codeLimitedTypes: ["capped"] });
  const text = await (await metricsResponse(m, undefined, null)).text();
  expect(text).toContain("# TYPE conveyor_circuit_state gauge");
  expect(text).toContain("# TYPE conveyor_flow_waiting gauge");
  expect(sample(text, "conveyor_circuit_state", 'type="http",host="open.example"')).toBe(2);
  expect(sample(text, "conveyor_circuit_state", 'type="http",host="half.example"')).toBe(1);
  expect(sample(text, "conveyor_circuit_state", 'type="http",host="closed.example"')).toBe(0);
  expect(sample(text, "conveyor_circuit_state", 'type="flaky",host=""')).toBe(0);

  const waiting = [...text.matchAll(/^conveyor_flow_waiting\{(.*)\} (\S+)$/gm)].map((x) => `${x[1]} ${x[2]}`).sort();
  expect(waiting).toEqual(
    [
      'type="http",host="paused.example",reason="paused" 2',
      'type="http",host="open.example",reason="circuit" 1',
      'type="http",host="half.example",reason="circuit" 0',
      'type="flaky",host="",reason="limit" 3',
      'type="capped",host="",reason="limit" 1',
      'type="http",host="ordered.example",reason="ordering" 2',
    ].sort(),
  );

  // Paused beats the other reasons; a resume takes the scope out at the next scrape.
  await t.db.pool.query(`UPDATE flow_scopes SET paused = true WHERE name = 'flaky'`);
  await t.db.pool.query(`UPDATE flow_scopes SET paused = false WHERE name = 'paused.example'`);
  const again = await (await metricsResponse(m, undefined, null)).text();
  expect(sample(again, "conveyor_flow_waiting", 'type="flaky",host="",reason="paused"')).toBe(3);
  expect(sample(again, "conveyor_flow_waiting", 'type="flaky",host="",reason="limit"')).toBeNaN();
  expect(again).not.toMatch(/conveyor_flow_waiting\{[^}]*host="paused.example"/);
});
