// The completer's linger (server/worker/completer.ts): under load, a write that
// would carry few completions waits a moment for more, so that one statement
// (one commit) carries what would have been several. Against a real PostgreSQL:
// the completions one statement wrote share its now() in updated_at.
import { afterAll, beforeAll, expect, it } from "vitest";
import { createTestDb, type TestDb } from "../helpers/db";
import { testClient } from "../helpers/engine";
import { createCompleter, type CompleterOptions } from "../../server/worker/completer";
import { createLogger } from "../../server/log";
import type { Claimed } from "../../server/engine/types";
import { leasedCommands, succeededCompletion } from "../helpers/completions";

let t: TestDb;
let clientId: string;

beforeAll(async () => {
  t = await createTestDb();
  ({ clientId } = await testClient(t.db));
});
afterAll(async () => {
  await t?.drop();
});

const leased = (n: number) => leasedCommands(t.db, clientId, n, { type: "linger" }, "linger-test");
const succeeded = (c: Claimed) => succeededCompletion(c);

/**
 * One completion, then 20 more 2 ms apart (as attempts finish under load), the first of them while the first
 * write is in flight; how many statements wrote the 20.
 */
async function trickle(opts: CompleterOptions): Promise<{ statements: number; applied: boolean[] }> {
  const cs = await leased(21);
  const completer = createCompleter(t.db, createLogger({ name: "test", level: "silent" }), opts);
  const first = completer.complete(succeeded(cs[0]!));
  const written: Promise<boolean>[] = [];
  for (const c of cs.slice(1)) {
    written.push(completer.complete(succeeded(c)));
    await new Promise((r) => setTimeout(r, 2));
  }
  const applied = await Promise.all([first, ...written]);
  const { rows } = await t.db.pool.query<{ n: number }>(
    `SELECT count(DISTINCT updated_at)::int AS n FROM commands WHERE id = ANY($1::uuid[])`,
    [cs.slice(1).map((c) => c.id)],
  );
  return { statements: rows[0]!.n, applied };
}

it("without a linger, completions that trickle in go out in several writes", async () => {
  const r = await trickle({});
  expect(r.applied.every(Boolean)).toBe(true);
  expect(r.statements).toBeGreaterThan(1);
});

it("with a linger, the same completions go out in one write", async () => {
  const r = await trickle({ lingerMs: 1_000 });
  expect(r.applied.every(Boolean)).toBe(true);
  expect(r.statements).toBe(1);
});

it("when idle, a completion is written at once (no linger)", async () => {
  const [c] = await leased(1);
  const completer = createCompleter(t.db, createLogger({ name: "test", level: "silent" }), { lingerMs: 60_000 });
  // a minute of linger would time the test out: idle (no write within 20 ms), the completer does not wait
  await expect(completer.complete(succeeded(c!))).resolves.toBe(true);
});
