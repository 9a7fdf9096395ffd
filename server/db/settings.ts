import { createHmac, randomBytes } from "node:crypto";
import type { Db } from "./client";

/** This process's key is not the one the database's secrets were encrypted with: refuse to start. */
export class SecretKeyMismatch extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SecretKeyMismatch";
  }
}

// Stored beside the data: a keyed digest that says which key encrypted it (never the key itself).
const checkOf = (key: Buffer) => createHmac("sha256", key).update("conveyor secret key check").digest("hex");

/**
 * The key that encrypts stored secrets: SECRET_KEY when set, otherwise one
 * generated on first use and kept in the database (so that every web and
 * worker process agrees on it without configuration). The first key used is
 * recorded by a check value; a process with another key (SECRET_KEY set on
 * some processes and not on others, or changed) is refused with
 * SecretKeyMismatch instead of failing later on every signature.
 */
export async function resolveSecretKey(db: Db, secretKeyHex: string | undefined): Promise<Buffer> {
  let key: Buffer;
  if (secretKeyHex) key = Buffer.from(secretKeyHex, "hex");
  else {
    await db.pool.query(
      `INSERT INTO conveyor_settings (key, value) VALUES ('secret_key', $1) ON CONFLICT (key) DO NOTHING`,
      [randomBytes(32).toString("hex")],
    );
    const { rows } = await db.pool.query<{ value: string }>(
      `SELECT value FROM conveyor_settings WHERE key = 'secret_key'`,
    );
    key = Buffer.from(rows[0]!.value, "hex");
  }
  const check = checkOf(key);
  await db.pool.query(
    `INSERT INTO conveyor_settings (key, value) VALUES ('secret_key_check', $1) ON CONFLICT (key) DO NOTHING`,
    [check],
  );
  const { rows } = await db.pool.query<{ value: string }>(
    `SELECT value FROM conveyor_settings WHERE key = 'secret_key_check'`,
  );
  if (rows[0]!.value !== check) {
    throw new SecretKeyMismatch(
      secretKeyHex
        ? "SECRET_KEY is not the key this database's secrets were encrypted with (another process or an earlier start used a different one);" +
            " every process must use the same SECRET_KEY"
        : "SECRET_KEY is not set in this process, but this database's secrets were encrypted with a SECRET_KEY: set the same SECRET_KEY here",
    );
  }
  return key;
}
