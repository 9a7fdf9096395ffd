// Every process must encrypt and decrypt stored secrets with the same key:
// a process started with another one is refused at start, by name.
import { afterAll, beforeAll, expect, it } from "vitest";
import { randomBytes } from "node:crypto";
import { createTestDb, type TestDb } from "../helpers/db";
import { resolveSecretKey, SecretKeyMismatch } from "../../server/db/settings";
import { runWorker } from "../helpers/proc";

let a: TestDb;
let b: TestDb;
beforeAll(async () => {
  a = await createTestDb();
  b = await createTestDb();
});
afterAll(async () => {
  await a?.drop();
  await b?.drop();
});

it("without SECRET_KEY every process gets the database's key; a process with another SECRET_KEY is refused", async () => {
  const k1 = await resolveSecretKey(a.db, undefined);
  expect((await resolveSecretKey(a.db, undefined)).equals(k1)).toBe(true);
  await expect(resolveSecretKey(a.db, randomBytes(32).toString("hex"))).rejects.toThrow(SecretKeyMismatch);
  // the database's own key, given as SECRET_KEY, is the same key
  expect((await resolveSecretKey(a.db, k1.toString("hex"))).equals(k1)).toBe(true);
});

it("with SECRET_KEY: a process without it, or with another, is refused with a message naming SECRET_KEY", async () => {
  const hex = randomBytes(32).toString("hex");
  expect((await resolveSecretKey(b.db, hex)).toString("hex")).toBe(hex);
  await expect(resolveSecretKey(b.db, undefined)).rejects.toThrow(
    "SECRET_KEY is not set in this process, but this database's secrets were encrypted with a SECRET_KEY",
  );
  await expect(resolveSecretKey(b.db, randomBytes(32).toString("hex"))).rejects.toThrow(
    /^SECRET_KEY is not the key this database's secrets were encrypted with/,
  );
  // a worker process with the wrong key stops at once with the reason (rather than failing every signature later)
  const w = runWorker({ DATABASE_URL: b.url, SECRET_KEY: randomBytes(32).toString("hex"), LOG_LEVEL: "info" });
  expect((await w.exited).code).toBe(1);
  expect(w.output()).toContain("every process must use the same SECRET_KEY");
});
