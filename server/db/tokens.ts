// SQL for API clients (one per token): lookup by token hash, creation,
// revocation and signing secrets. The changes an admin makes write their audit
// entry in the same transaction.
import { withTransaction, type Db } from "./client";
import { writeAudit, type AuditInput } from "./audit";

export type ClientRow = { id: string; name: string; scope: "client" | "admin" };

export async function activeClientByTokenHash(db: Db, hash: string): Promise<ClientRow | undefined> {
  return (
    await db.pool.query<ClientRow>(
      `SELECT id, name, scope FROM api_clients WHERE token_hash = $1 AND revoked_at IS NULL`,
      [hash],
    )
  ).rows[0];
}

export async function touchClient(db: Db, id: string): Promise<void> {
  await db.pool.query(`UPDATE api_clients SET last_used_at = now() WHERE id = $1`, [id]);
}

export type NewClient = {
  id: string;
  name: string;
  scope: "client" | "admin";
  tokenHash: string;
  tokenPrefix: string;
  signingSecretEnc: string;
  createdBy: string;
};

/** Inserts a client and, when `audit` is given, its audit entry, in one transaction. */
export async function insertClient(db: Db, c: NewClient, audit: AuditInput | null): Promise<void> {
  await withTransaction(db, async (client) => {
    await client.query(
      `INSERT INTO api_clients (id, name, scope, token_hash, token_prefix, signing_secret_enc, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
      [c.id, c.name, c.scope, c.tokenHash, c.tokenPrefix, c.signingSecretEnc, c.createdBy],
    );
    if (audit) await writeAudit(client, audit);
  });
}

export async function insertClientIfAbsent(db: Db, c: NewClient) {
  await db.pool.query(
    `INSERT INTO api_clients (id, name, scope, token_hash, token_prefix, signing_secret_enc, created_by)
     VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (token_hash) DO NOTHING`,
    [c.id, c.name, c.scope, c.tokenHash, c.tokenPrefix, c.signingSecretEnc, c.createdBy],
  );
}

export async function countClients(db: Db): Promise<number> {
  return (await db.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM api_clients`)).rows[0]!.n;
}

export type ClientListRow = ClientRow & {
  tokenPrefix: string;
  createdAt: Date;
  createdBy: string | null;
  lastUsedAt: Date | null;
  revokedAt: Date | null;
};

export async function allClients(db: Db): Promise<ClientListRow[]> {
  const { rows } = await db.pool.query<ClientListRow>(
    `SELECT id, name, scope, token_prefix AS "tokenPrefix",
            created_at AS "createdAt", created_by AS "createdBy", last_used_at AS "lastUsedAt", revoked_at AS "revokedAt"
     FROM api_clients ORDER BY created_at DESC`,
  );
  return rows;
}

/** The client's encrypted signing secret, or undefined when there is no such client. */
export async function signingSecretEncOf(db: Db, id: string): Promise<string | undefined> {
  return (await db.pool.query<{ enc: string }>(`SELECT signing_secret_enc AS enc FROM api_clients WHERE id = $1`, [id]))
    .rows[0]?.enc;
}

/**
 * Revokes (once; a second revocation keeps the first time), writes the audit
 * entry and notifies every process listening on `channel` (at commit), in one
 * transaction; undefined (and nothing written) when there is no such client.
 */
export async function revokeClient(
  db: Db,
  id: string,
  channel: string,
  audit: AuditInput | null,
): Promise<Date | undefined> {
  return withTransaction(db, async (client) => {
    const { rows } = await client.query<{ revoked_at: Date }>(
      `WITH r AS (UPDATE api_clients SET revoked_at = COALESCE(revoked_at, now()) WHERE id = $1 RETURNING revoked_at)
       SELECT r.revoked_at, pg_notify($2, $1::text) FROM r`,
      [id, channel],
    );
    const revokedAt = rows[0]?.revoked_at;
    if (revokedAt && audit) await writeAudit(client, audit);
    return revokedAt;
  });
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
  audit: (name: string) => AuditInput,
  channel: string,
): Promise<
  | { ok: true; name: string }
  | { ok: false; why: "missing" }
  | { ok: false; why: "revoked"; name: string; revokedAt: Date }
> {
  return withTransaction(db, async (client) => {
    const cur = (
      await client.query<{ name: string; revoked_at: Date | null }>(
        `SELECT name, revoked_at FROM api_clients WHERE id = $1 FOR UPDATE`,
        [id],
      )
    ).rows[0];
    if (!cur) return { ok: false, why: "missing" } as const;
    if (cur.revoked_at) return { ok: false, why: "revoked", name: cur.name, revokedAt: cur.revoked_at } as const;
    await client.query(`UPDATE api_clients SET signing_secret_enc = $2 WHERE id = $1`, [id, signingSecretEnc]);
    await writeAudit(client, audit(cur.name));
    await client.query(`SELECT pg_notify($1, $2)`, [channel, id]);
    return { ok: true, name: cur.name } as const;
  });
}
