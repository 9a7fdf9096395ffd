// SQL for alert rules as data: create, replace and delete, each with its audit
// entry in the same transaction, and the list the console shows.
import type pg from "pg";
import { withTransaction, type Db } from "./client";
import { writeAudit, type AuditInput } from "./audit";

/** The columns a rule's input sets (the evaluator's state is left alone). */
export type RuleColumns = {
  name: string;
  kind: "count" | "stuck" | "rate" | "backlog";
  states: string[];
  type: string | null;
  windowSeconds: number | null;
  ageSeconds: number | null;
  threshold: number;
  recipients: string[];
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
];

export async function insertRule(
  db: Db,
  id: string,
  c: RuleColumns,
  createdBy: string,
  audit: AuditInput,
): Promise<void> {
  await withTransaction(db, async (client) => {
    await client.query(
      `INSERT INTO alert_rules (id, name, kind, states, type, window_seconds,
         age_seconds, threshold, recipients, cooldown_seconds, notify_on_resolve, enabled, silenced_until, created_by)
       VALUES ($1, $2, $3::alert_kind, $4::command_status[], $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`,
      [id, ...values(c), createdBy],
    );
    await writeAudit(client, audit);
  });
}

/** Replaces the rule's input columns; false (and no audit entry) when there is no such rule. */
export async function replaceRule(db: Db, id: string, c: RuleColumns, audit: AuditInput): Promise<boolean> {
  return withTransaction(db, async (client) => {
    const { rowCount } = await client.query(
      `UPDATE alert_rules SET name = $2, kind = $3::alert_kind, states = $4::command_status[], type = $5, window_seconds = $6, age_seconds = $7, threshold = $8,
         recipients = $9, cooldown_seconds = $10, notify_on_resolve = $11, enabled = $12, silenced_until = $13, updated_at = now()
       WHERE id = $1`,
      [id, ...values(c)],
    );
    if (!rowCount) return false;
    await writeAudit(client, audit);
    return true;
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
    `SELECT id, name, kind, states::text[] AS states, type, window_seconds AS "windowSeconds", age_seconds AS "ageSeconds", threshold, recipients,
            cooldown_seconds AS "cooldownSeconds", notify_on_resolve AS "notifyOnResolve", enabled, silenced_until AS "silencedUntil",
            firing, firing_since AS "firingSince", last_value AS "lastValue", last_evaluated_at AS "lastEvaluatedAt"
     FROM alert_rules ORDER BY created_at`,
  );
  return rows;
}
