// SQL behind authentication: API clients by token hash, console sessions.
import { withTransaction, type Db } from "./client";

export type ClientRow = { id: string; name: string; scope: "client" | "admin" };

export async function activeClientByTokenHash(db: Db, hash: string): Promise<ClientRow | undefined> {
  return (await db.pool.query<ClientRow>(`SELECT id, name, scope FROM api_clients WHERE token_hash = $1 AND revoked_at IS NULL`, [hash])).rows[0];
}

export async function touchClient(db: Db, id: string): Promise<void> {
  await db.pool.query(`UPDATE api_clients SET last_used_at = now() WHERE id = $1`, [id]);
}

/** Revokes (once) and notifies every process listening on `channel`, at commit. */
export async function revokeClient(db: Db, id: string, channel: string): Promise<Date | undefined> {
  const { rows } = await db.pool.query<{ revoked_at: Date }>(
    `WITH r AS (UPDATE api_clients SET revoked_at = COALESCE(revoked_at, now()) WHERE id = $1 RETURNING revoked_at)
     SELECT r.revoked_at, pg_notify($2, $1::text) FROM r`,
    [id, channel],
  );
  return rows[0]?.revoked_at;
}

/**
 * Replaces a client's (encrypted) signing secret, writes the audit entry and
 * notifies `channel` (processes that cache secrets forget them), all in one
 * transaction. A revoked client keeps its secret.
 */
export async function replaceSigningSecret(
  db: Db,
  id: string,
  signingSecretEnc: string,
  audit: { actor: string; action: string },
  channel: string,
): Promise<{ ok: true; name: string } | { ok: false; why: "missing" } | { ok: false; why: "revoked"; name: string; revokedAt: Date }> {
  return withTransaction(db, async (client) => {
    const cur = (await client.query<{ name: string; revoked_at: Date | null }>(`SELECT name, revoked_at FROM api_clients WHERE id = $1 FOR UPDATE`, [id])).rows[0];
    if (!cur) return { ok: false, why: "missing" } as const;
    if (cur.revoked_at) return { ok: false, why: "revoked", name: cur.name, revokedAt: cur.revoked_at } as const;
    await client.query(`UPDATE api_clients SET signing_secret_enc = $2 WHERE id = $1`, [id, signingSecretEnc]);
    await client.query(`INSERT INTO audit_entries (actor, action, reason, details) VALUES ($1, $2, NULL, $3)`, [audit.actor, audit.action, JSON.stringify({ id, name: cur.name })]);
    await client.query(`SELECT pg_notify($1, $2)`, [channel, id]);
    return { ok: true, name: cur.name } as const;
  });
}

export async function insertClientIfAbsent(db: Db, c: { id: string; name: string; scope: string; tokenHash: string; tokenPrefix: string; signingSecretEnc: string; createdBy: string }) {
  await db.pool.query(
    `INSERT INTO api_clients (id, name, scope, token_hash, token_prefix, signing_secret_enc, created_by)
     VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (token_hash) DO NOTHING`,
    [c.id, c.name, c.scope, c.tokenHash, c.tokenPrefix, c.signingSecretEnc, c.createdBy],
  );
}

export type SessionRow = { user_id: string; email: string; role: "viewer" | "operator" | "admin"; must_change_password: boolean; created_at: Date; expires_at: Date; last_seen_at: Date };

export async function liveSession(db: Db, sessionHash: string): Promise<SessionRow | undefined> {
  return (
    await db.pool.query<SessionRow>(
      `SELECT s.user_id, u.email, u.role, u.must_change_password, s.created_at, s.expires_at, s.last_seen_at
       FROM sessions s JOIN users u ON u.id = s.user_id
       WHERE s.id = $1 AND s.expires_at > now() AND NOT u.disabled`,
      [sessionHash],
    )
  ).rows[0];
}

export async function extendSession(db: Db, sessionHash: string, until: Date): Promise<void> {
  await db.pool.query(`UPDATE sessions SET last_seen_at = now(), expires_at = $2 WHERE id = $1`, [sessionHash, until]);
}

export async function deleteSession(db: Db, sessionHash: string): Promise<void> {
  await db.pool.query(`DELETE FROM sessions WHERE id = $1`, [sessionHash]);
}

export async function deleteOtherSessions(db: Db, userId: string, keepHash: string): Promise<void> {
  await db.pool.query(`DELETE FROM sessions WHERE user_id = $1 AND id <> $2`, [userId, keepHash]);
}
