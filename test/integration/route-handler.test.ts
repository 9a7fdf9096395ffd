// The fetch-style handler behind app/api/trpc/[trpc]/route.ts (used by `next dev`).
import { afterAll, beforeAll, expect, it } from "vitest";
import { createTestDb, type TestDb } from "../helpers/db";
import { newToken } from "../helpers/api";
import { createTrpcHandler } from "../../server/api/handler";
import { directIntake } from "../../server/commands/submit";
import { registry } from "../../server/command-types";
import { resolveSecretKey } from "../../server/db/settings";
import { createLogger } from "../../server/log";

let t: TestDb;
beforeAll(async () => {
  t = await createTestDb();
});
afterAll(async () => t?.drop());

it("submits, and refuses a body over the limit with 413", async () => {
  const { token } = await newToken(t.db, "client");
  const handler = createTrpcHandler({
    db: t.db,
    registry,
    intake: directIntake(t.db, registry),
    secretKey: () => resolveSecretKey(t.db, undefined),
    maxBodyBytes: 2048,
    publicUrl: "http://x",
    emailConfigured: false,
    retentionDays: 30,
    log: createLogger({ name: "t", level: "silent" }),
  });
  const post = (body: string) =>
    handler(
      new Request("http://localhost/api/trpc/intake.submit", {
        method: "POST",
        headers: { authorization: `Bearer ${token}` },
        body,
      }),
    );
  const ok = await post(JSON.stringify({ type: "http", payload: { url: "https://x.example/" } }));
  expect(ok.status).toBe(200);
  expect(((await ok.json()) as any).result.data.status).toBe("pending");
  const big = await post(
    JSON.stringify({ type: "http", payload: { url: "https://x.example/", body: "z".repeat(4000) } }),
  );
  expect(big.status).toBe(413);
  expect(((await big.json()) as any).error.data.code).toBe("PAYLOAD_TOO_LARGE");
});
