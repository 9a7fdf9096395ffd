// A database restart must not crash a process through a pooled connection it
// holds between two statements (node-postgres emits 'error' on it, and the
// pool listens only to idle ones).
import { afterAll, beforeAll, expect, it } from "vitest";
import { createTestDb, type TestDb } from "../helpers/db";
import { createDb } from "../../server/db/client";
import { isConnectionError } from "../../server/worker/completer";

let t: TestDb;
beforeAll(async () => {
  t = await createTestDb();
});
afterAll(async () => t?.drop());

it("a checked-out connection killed between statements fails its next query as a connection error, and the pool carries on", async () => {
  const db = createDb(t.url, { max: 2 });
  try {
    const client = await db.pool.connect();
    await client.query("BEGIN");
    const { rows } = await client.query<{ pid: number }>("SELECT pg_backend_pid() AS pid");
    const ended = new Promise<void>((r) => client.once("end", () => r()));
    await t.db.pool.query("SELECT pg_terminate_backend($1)", [rows[0]!.pid]);
    await ended; // the server's FATAL arrived while no query was running: without a listener, an uncaught 'error'
    const err = await client.query("SELECT 1").then(
      () => null,
      (e: unknown) => e,
    );
    expect(isConnectionError(err)).toBe(true);
    client.release(err as Error);
    expect((await db.pool.query<{ one: number }>("SELECT 1 AS one")).rows[0]!.one).toBe(1);
  } finally {
    await db.close();
  }
});
