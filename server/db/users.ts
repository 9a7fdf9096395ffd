// SQL for console users: accounts, roles, sign-in failures and passwords. The
// changes an admin or the user makes write their audit entry in the same
// transaction.
import { withTransaction, type Db } from "./client";
import { writeAudit, type AuditInput } from "./audit";

export type UserRole = "viewer" | "operator" | "admin";
export type UserRow = {
  id: string;
  email: string;
  /** null: an SSO user, who has no password. */
  passwordHash: string | null;
  name: string | null;
  oidcIssuer: string | null;
  oidcSubject: string | null;
  role: UserRole;
  disabled: boolean;
  mustChangePassword: boolean;
  createdAt: Date;
  failedLogins: number;
  lockedUntil: Date | null;
  lastLoginAt: Date | null;
};

const USER_COLUMNS = `id, email, password_hash AS "passwordHash", name, oidc_issuer AS "oidcIssuer", oidc_subject AS "oidcSubject", role, disabled, must_change_password AS "mustChangePassword", created_at AS "createdAt",
  failed_logins AS "failedLogins", locked_until AS "lockedUntil", last_login_at AS "lastLoginAt"`;

/**
 * Inserts a user and, when `audit` is given, its audit entry, in one
 * transaction; null (and nothing written) when the email is taken.
 */
export async function insertUser(
  db: Db,
  u: { id: string; email: string; passwordHash: string; role: UserRole; mustChangePassword: boolean },
  audit: ((u: UserRow) => AuditInput) | null,
): Promise<UserRow | null> {
  return withTransaction(db, async (client) => {
    const row = (
      await client.query<UserRow>(
        `INSERT INTO users (id, email, password_hash, role, must_change_password) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (email) DO NOTHING RETURNING ${USER_COLUMNS}`,
        [u.id, u.email, u.passwordHash, u.role, u.mustChangePassword],
      )
    ).rows[0];
    if (row && audit) await writeAudit(client, audit(row));
    return row ?? null;
  });
}

export async function allUsers(db: Db): Promise<UserRow[]> {
  return (await db.pool.query<UserRow>(`SELECT ${USER_COLUMNS} FROM users ORDER BY created_at`)).rows;
}

export async function userByEmail(db: Db, email: string): Promise<UserRow | undefined> {
  return (await db.pool.query<UserRow>(`SELECT ${USER_COLUMNS} FROM users WHERE email = $1`, [email])).rows[0];
}

export async function userById(db: Db, id: string): Promise<UserRow | undefined> {
  return (await db.pool.query<UserRow>(`SELECT ${USER_COLUMNS} FROM users WHERE id = $1`, [id])).rows[0];
}

export async function countUsers(db: Db): Promise<number> {
  return (await db.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM users`)).rows[0]!.n;
}

/**
 * Sets a user's role and/or disabled flag (a disabled user's sessions end)
 * and writes the audit entry, in one transaction; null (and nothing written)
 * when there is no such user.
 */
export async function updateUserRow(
  db: Db,
  id: string,
  set: { role?: UserRole; disabled?: boolean },
  audit: (u: UserRow) => AuditInput,
): Promise<UserRow | null> {
  return withTransaction(db, async (client) => {
    const row = (
      await client.query<UserRow>(
        `UPDATE users SET role = COALESCE($2::user_role, role), disabled = COALESCE($3::boolean, disabled) WHERE id = $1 RETURNING ${USER_COLUMNS}`,
        [id, set.role ?? null, set.disabled ?? null],
      )
    ).rows[0];
    if (!row) return null;
    if (set.disabled) await client.query(`DELETE FROM sessions WHERE user_id = $1`, [id]);
    await writeAudit(client, audit(row));
    return row;
  });
}

/** A wrong password: the count of failures in a row, and the lock when they reached the limit. */
export async function recordSignInFailure(
  db: Db,
  id: string,
  failedLogins: number,
  lockedUntil: Date | null,
): Promise<void> {
  await db.pool.query(
    `UPDATE users SET failed_logins = $2, locked_until = COALESCE($3::timestamptz, locked_until) WHERE id = $1`,
    [id, failedLogins, lockedUntil],
  );
}

/**
 * Replaces a user's password (no longer one to change), ends the user's other
 * sessions and writes the audit entry, in one transaction.
 */
export async function replacePassword(
  db: Db,
  id: string,
  passwordHash: string,
  keepSessionHash: string,
  audit: AuditInput,
): Promise<void> {
  await withTransaction(db, async (client) => {
    await client.query(`UPDATE users SET password_hash = $2, must_change_password = false WHERE id = $1`, [
      id,
      passwordHash,
    ]);
    await client.query(`DELETE FROM sessions WHERE user_id = $1 AND id <> $2`, [id, keepSessionHash]);
    await writeAudit(client, audit);
  });
}

export type OidcSignInResult =
  | { ok: true; user: UserRow; created: boolean; previousRole: UserRole | null }
  | { ok: false; why: "disabled"; user: UserRow }
  | { ok: false; why: "email-taken"; email: string };

/**
 * A sign-in with SSO, in one transaction: the user known by (issuer, subject)
 * is created at its first sign-in, else its email, name and role are replaced
 * by what the provider says now; the session is stored; the audit entries
 * (the creation, a change of role, the sign-in) are written. Nothing is
 * written when the user is disabled, or when its email is another user's (a
 * local account's, say: an SSO sign-in never takes over an account it did not
 * create).
 */
export async function signInOidcUser(
  db: Db,
  u: { id: string; issuer: string; subject: string; email: string; name: string | null; role: UserRole },
  s: { sessionHash: string; expiresAt: Date; signedInAt: Date },
  audit: {
    created: (u: UserRow) => AuditInput;
    roleChanged: (u: UserRow, previous: UserRole) => AuditInput;
    signedIn: (u: UserRow) => AuditInput;
  },
): Promise<OidcSignInResult> {
  return withTransaction(db, async (client) => {
    const bySubject = async () =>
      (
        await client.query<UserRow>(
          `SELECT ${USER_COLUMNS} FROM users WHERE oidc_issuer = $1 AND oidc_subject = $2 FOR UPDATE`,
          [u.issuer, u.subject],
        )
      ).rows[0];
    let row = await bySubject();
    let created = false;
    if (!row) {
      row = (
        await client.query<UserRow>(
          `INSERT INTO users (id, email, name, oidc_issuer, oidc_subject, role, last_login_at) VALUES ($1, $2, $3, $4, $5, $6, $7)
           ON CONFLICT DO NOTHING RETURNING ${USER_COLUMNS}`,
          [u.id, u.email, u.name, u.issuer, u.subject, u.role, s.signedInAt],
        )
      ).rows[0];
      if (row) created = true;
      else row = await bySubject(); // made by a sign-in of the same user a moment ago, or the email is taken
      if (!row) return { ok: false, why: "email-taken", email: u.email };
    }
    if (row.disabled) return { ok: false, why: "disabled", user: row };
    const previousRole = row.role;
    if (!created) {
      if (row.email !== u.email) {
        const taken = await client.query(`SELECT 1 FROM users WHERE email = $1 AND id <> $2`, [u.email, row.id]);
        if (taken.rowCount) return { ok: false, why: "email-taken", email: u.email };
      }
      row = (
        await client.query<UserRow>(
          `UPDATE users SET email = $2, name = $3, role = $4, failed_logins = 0, locked_until = NULL, last_login_at = $5
           WHERE id = $1 RETURNING ${USER_COLUMNS}`,
          [row.id, u.email, u.name, u.role, s.signedInAt],
        )
      ).rows[0]!;
    }
    await client.query(`INSERT INTO sessions (id, user_id, expires_at) VALUES ($1, $2, $3)`, [
      s.sessionHash,
      row.id,
      s.expiresAt,
    ]);
    if (created) await writeAudit(client, audit.created(row));
    else if (previousRole !== row.role) await writeAudit(client, audit.roleChanged(row, previousRole));
    await writeAudit(client, audit.signedIn(row));
    return { ok: true, user: row, created, previousRole: created ? null : previousRole };
  });
}
