// SQL for alert rules as data: create, replace, delete and a new webhook
// secret, each with its audit entry in the same transaction, and the list the
// console shows.
import type pg from "pg";
import { withTransaction, type Db } from "./client";
import { writeAudit, type AuditInput } from "./audit";
import type { RuleKindName } from "./alerts";

/** The columns a rule's input sets (the evaluator's state is left alone). */
export type RuleColumns = {
  name: string;
  kind: RuleKindName;
  states: string[];
  type: string | null;
  windowSeconds: number | null;
  ageSeconds: number | null;
  percentile: number | null;
  threshold: number;
  recipients: string[];
  webhooks: string[];
  cooldownSeconds: number;
  notifyOnResolve: boolean;
  enabled: boolean;
  silencedUntil: Date | null;
};

const values = (c: RuleColumns) => [
  c.name,
  c.kind,
  c.states,
  c.type,
  c.windowSeconds,
  c.ageSeconds,
  c.threshold,
  c.recipients,
  c.cooldownSeconds,
  c.notifyOnResolve,
  c.enabled,
  c.silencedUntil,
  c.webhooks,
  c.percentile,
];

/** `secretEnc`: the rule's webhook secret, encrypted. */
export async function insertRule(
  db: Db,
  id: string,
  c: RuleColumns,
  secretEnc: string,
  createdBy: string,
  audit: AuditInput,
): Promise<void> {
  await withTransaction(db, async (client) => {
    await client.query(
      `INSERT INTO alert_rules (id, name, kind, states, type, window_seconds, age_seconds, threshold, recipients,
         cooldown_seconds, notify_on_resolve, enabled, silenced_until, webhooks, percentile, webhook_secret_enc, created_by)
       VALUES ($1, $2, $3::alert_kind, $4::command_status[], $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)`,
      [id, ...values(c), secretEnc, createdBy],
    );
    await writeAudit(client, audit);
  });
}

/**
 * Replaces the rule's input columns; null (and no audit entry) when there is
 * no such rule. A rule gets `secretEnc` as its webhook secret when it has none
 * (made before webhooks existed) or gets its first webhook (the secret made
 * at its creation may never have been shown: the console shows it only to a
 * rule with webhooks): `secretSet` says whether it did.
 */
export async function replaceRule(
  db: Db,
  id: string,
  c: RuleColumns,
  secretEnc: string,
  audit: AuditInput,
): Promise<{ secretSet: boolean } | null> {
  return withTransaction(db, async (client) => {
    const { rows } = await client.query<{ secret_set: boolean }>(
      `UPDATE alert_rules SET name = $2, kind = $3::alert_kind, states = $4::command_status[], type = $5, window_seconds = $6, age_seconds = $7,
         threshold = $8, recipients = $9, cooldown_seconds = $10, notify_on_resolve = $11, enabled = $12, silenced_until = $13,
         webhooks = $14, percentile = $15, updated_at = now(),
         -- in SET, column names are the row as it was
         webhook_secret_enc = CASE WHEN webhook_secret_enc IS NULL OR (cardinality(webhooks) = 0 AND cardinality($14::text[]) > 0)
                                   THEN $16 ELSE webhook_secret_enc END
       WHERE id = $1
       RETURNING webhook_secret_enc = $16 AS secret_set`,
      [id, ...values(c), secretEnc],
    );
    if (!rows.length) return null;
    await writeAudit(client, audit);
    return { secretSet: rows[0]!.secret_set };
  });
}

/** A new webhook secret for the rule; its name (for the audit entry), or null (and no audit entry) when there is no such rule. */
export async function replaceWebhookSecret(
  db: Db,
  id: string,
  secretEnc: string,
  audit: (name: string) => AuditInput,
): Promise<string | null> {
  return withTransaction(db, async (client) => {
    const { rows } = await client.query<{ name: string }>(
      `UPDATE alert_rules SET webhook_secret_enc = $2, updated_at = now() WHERE id = $1 RETURNING name`,
      [id, secretEnc],
    );
    if (!rows.length) return null;
    await writeAudit(client, audit(rows[0]!.name));
    return rows[0]!.name;
  });
}

/** Deletes the rule (its events and deliveries go with it); false (and no audit entry) when there is no such rule. */
export async function removeRule(db: Db, id: string, audit: AuditInput): Promise<boolean> {
  return withTransaction(db, async (client) => {
    const { rowCount } = await client.query(`DELETE FROM alert_rules WHERE id = $1`, [id]);
    if (!rowCount) return false;
    await writeAudit(client, audit);
    return true;
  });
}

export type ListedRule = RuleColumns & {
  id: string;
  firing: boolean;
  firingSince: Date | null;
  lastValue: number | null;
  lastEvaluatedAt: Date | null;
};

export async function listedRules(q: Pick<pg.Pool, "query">): Promise<ListedRule[]> {
  // command_status[] arrives from pg as a string unless cast to text[]
  const { rows } = await q.query<ListedRule>(
    `SELECT id, name, kind, states::text[] AS states, type, window_seconds AS "windowSeconds", age_seconds AS "ageSeconds",
            percentile, threshold, recipients, webhooks,
            cooldown_seconds AS "cooldownSeconds", notify_on_resolve AS "notifyOnResolve", enabled, silenced_until AS "silencedUntil",
            firing, firing_since AS "firingSince", last_value AS "lastValue", last_evaluated_at AS "lastEvaluatedAt"
     FROM alert_rules ORDER BY created_at`,
  );
  return rows;
}
