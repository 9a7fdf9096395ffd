import { afterAll, beforeAll, expect, it } from "vitest";
import { createTestDb, type TestDb } from "../helpers/db";
import { createMetrics, metricsResponse } from "../../server/metrics";

let t: TestDb;
beforeAll(async () => {
  t = await createTestDb();
});
afterAll(async () => t?.drop());

it("answers Prometheus text, and only with the token when METRICS_TOKEN is set", async () => {
  const m = createMetrics(t.db);
  m.observe("trpc:intake.submit", 200, 0.012);
  const open = await metricsResponse(m, undefined, null);
  expect(open.status).toBe(200);
  const text = await open.text();
  expect(text).toContain("# TYPE conveyor_commands gauge");
  expect(text).toMatch(/^conveyor_queue_oldest_due_seconds 0$/m);
  expect(text).toMatch(/^conveyor_http_request_duration_seconds_bucket\{le="0.025",route="trpc:intake.submit",status="200"\} 1$/m);
  expect((await metricsResponse(m, "s3cret", null)).status).toBe(401);
  expect((await metricsResponse(m, "s3cret", "Bearer wrong")).status).toBe(401);
  expect((await metricsResponse(m, "s3cret", "Bearer s3cret")).status).toBe(200);
});
