import { randomBytes } from "node:crypto";
import type { Db } from "./client";

/**
 * The key that encrypts stored secrets: SECRET_KEY when set, otherwise one
 * generated on first use and kept in the database (so that every web and
 * worker process agrees on it without configuration).
 */
export async function resolveSecretKey(db: Db, secretKeyHex: string | undefined): Promise<Buffer> {
  if (secretKeyHex) return Buffer.from(secretKeyHex, "hex");
  await db.pool.query(
    `INSERT INTO conveyor_settings (key, value) VALUES ('secret_key', $1) ON CONFLICT (key) DO NOTHING`,
    [randomBytes(32).toString("hex")],
  );
  const { rows } = await db.pool.query<{ value: string }>(`SELECT value FROM conveyor_settings WHERE key = 'secret_key'`);
  return Buffer.from(rows[0]!.value, "hex");
}
