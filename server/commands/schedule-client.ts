// The internal API client `schedules` (DESIGN §8): it owns the commands that
// schedules submit. One row under a fixed id, made by the first process that
// needs it; its token hash is no SHA-256 digest, so no token signs in as it.
// Its signing secret signs the callbacks of those commands like any
// client's (an admin can rotate it on the tokens page to learn it).
import { randomBytes } from "node:crypto";
import type { Db } from "../db/client";
import { encrypt, randomSecret } from "../crypto";
import { insertInternalClient } from "../db/schedules";

export const SCHEDULES_CLIENT_ID = "00000000-0000-4000-8000-00005c4ed01e";
export const SCHEDULES_CLIENT_NAME = "schedules";

const made = new WeakMap<Db, Promise<void>>();

/** The client's id, once its row exists (made once per process and database). */
export async function schedulesClientId(db: Db, secretKey: () => Promise<Buffer>): Promise<string> {
  let p = made.get(db);
  if (!p) {
    p = (async () =>
      insertInternalClient(db, {
        id: SCHEDULES_CLIENT_ID,
        name: SCHEDULES_CLIENT_NAME,
        tokenHash: `unusable:${randomBytes(32).toString("hex")}`,
        tokenPrefix: "(internal)",
        signingSecretEnc: encrypt(await secretKey(), randomSecret("whsec_")),
        createdBy: "conveyor (schedules)",
      }))();
    made.set(db, p);
    p.catch(() => made.delete(db));
  }
  await p;
  return SCHEDULES_CLIENT_ID;
}
