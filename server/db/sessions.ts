// SQL for console sessions: the database holds the SHA-256 of each cookie's
// token, the user it signs in and when it expires.
import { withTransaction, type Db } from "./client";
import { writeAudit, type AuditInput } from "./audit";

/**
 * A successful sign-in: the user's failures are forgotten and its last sign-in
 * noted, the session is stored and the audit entry written, in one transaction.
 */
export async function openSession(
  db: Db,
  s: { sessionHash: string; userId: string; expiresAt: Date; signedInAt: Date },
  audit: AuditInput,
): Promise<void> {
  await withTransaction(db, async (client) => {
    await client.query(`UPDATE users SET failed_logins = 0, locked_until = NULL, last_login_at = $2 WHERE id = $1`, [
      s.userId,
      s.signedInAt,
    ]);
    await client.query(`INSERT INTO sessions (id, user_id, expires_at) VALUES ($1, $2, $3)`, [
      s.sessionHash,
      s.userId,
      s.expiresAt,
    ]);
    await writeAudit(client, audit);
  });
}

export type SessionRow = {
  user_id: string;
  email: string;
  role: "viewer" | "operator" | "admin";
  must_change_password: boolean;
  sso: boolean;
  created_at: Date;
  expires_at: Date;
  last_seen_at: Date;
};

export async function liveSession(db: Db, sessionHash: string): Promise<SessionRow | undefined> {
  return (
    await db.pool.query<SessionRow>(
      `SELECT s.user_id, u.email, u.role, u.must_change_password, u.oidc_subject IS NOT NULL AS sso, s.created_at, s.expires_at, s.last_seen_at
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
