// SQL for schedules (DESIGN §8): the admin's changes, each with its audit entry
// and a notification to the workers in the same transaction; the round of the
// scheduler (due schedules locked with SKIP LOCKED, moved on in the same
// transaction); and the internal client that owns the commands they submit.
import type pg from "pg";
import { withTransaction, type Db } from "./client";
import { writeAudit, type AuditInput } from "./audit";

/** Schedules changed (at commit): workers look again at when the next one is due. */
export const SCHEDULES_CHANNEL = "conveyor_schedules";

export type ScheduleColumns = {
  name: string;
  cron: string;
  timezone: string;
  /** { type, payload, callbackUrl?, priority?, retry? } */
  command: { type: string; payload: unknown } & Record<string, unknown>;
  enabled: boolean;
  nextRunAt: Date | null;
};

export type ScheduleRow = ScheduleColumns & {
  id: string;
  lastRunAt: Date | null;
  lastCommandId: string | null;
  createdAt: Date;
  createdBy: string | null;
  updatedAt: Date;
};

const COLUMNS = `s.id, s.name, s.cron, s.timezone, s.command, s.enabled, s.next_run_at AS "nextRunAt", s.last_run_at AS "lastRunAt",
  s.last_command_id AS "lastCommandId", s.created_at AS "createdAt", s.created_by AS "createdBy", s.updated_at AS "updatedAt"`;

const notify = (client: pg.PoolClient, id: string) => client.query(`SELECT pg_notify($1, $2)`, [SCHEDULES_CHANNEL, id]);

export async function insertSchedule(
  db: Db,
  id: string,
  c: ScheduleColumns,
  createdBy: string,
  audit: AuditInput,
): Promise<void> {
  await withTransaction(db, async (client) => {
    await client.query(
      `INSERT INTO schedules (id, name, cron, timezone, command, enabled, next_run_at, created_by)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
      [id, c.name, c.cron, c.timezone, JSON.stringify(c.command), c.enabled, c.nextRunAt, createdBy],
    );
    await writeAudit(client, audit);
    await notify(client, id);
  });
}

/**
 * Replaces the schedule's columns with what `change` makes of the current
 * row (locked meanwhile, so that no scheduler round runs it in between);
 * false (and nothing written) when there is no such schedule.
 */
export async function changeSchedule(
  db: Db,
  id: string,
  change: (current: ScheduleRow) => { columns: ScheduleColumns; audit: AuditInput },
): Promise<boolean> {
  return withTransaction(db, async (client) => {
    const cur = (await client.query<ScheduleRow>(`SELECT ${COLUMNS} FROM schedules s WHERE s.id = $1 FOR UPDATE`, [id]))
      .rows[0];
    if (!cur) return false;
    const { columns: c, audit } = change(cur);
    await client.query(
      `UPDATE schedules SET name = $2, cron = $3, timezone = $4, command = $5, enabled = $6, next_run_at = $7, updated_at = now()
       WHERE id = $1`,
      [id, c.name, c.cron, c.timezone, JSON.stringify(c.command), c.enabled, c.nextRunAt],
    );
    await writeAudit(client, audit);
    await notify(client, id);
    return true;
  });
}

/** Deletes the schedule (the commands it made stay); false (and no audit entry) when there is no such schedule. */
export async function removeSchedule(db: Db, id: string, audit: (name: string) => AuditInput): Promise<boolean> {
  return withTransaction(db, async (client) => {
    const { rows } = await client.query<{ name: string }>(`DELETE FROM schedules WHERE id = $1 RETURNING name`, [id]);
    if (!rows[0]) return false;
    await writeAudit(client, audit(rows[0].name));
    await notify(client, id);
    return true;
  });
}

export type ListedSchedule = ScheduleRow & { lastCommandStatus: string | null };

export async function listedSchedules(db: Db): Promise<ListedSchedule[]> {
  const { rows } = await db.pool.query<ListedSchedule>(
    `SELECT ${COLUMNS}, c.status::text AS "lastCommandStatus"
     FROM schedules s LEFT JOIN commands c ON c.id = s.last_command_id
     ORDER BY s.created_at, s.id`,
  );
  return rows;
}

/**
 * Runs `submit` with the schedule locked (a scheduler round waits), then
 * records its command as the schedule's last and writes the audit entry, in
 * one transaction; undefined when there is no such schedule.
 */
export async function runScheduleNow(
  db: Db,
  id: string,
  submit: (s: ScheduleRow) => Promise<{ commandId: string; at: Date }>,
  audit: (s: ScheduleRow, commandId: string) => AuditInput,
): Promise<{ commandId: string } | undefined> {
  return withTransaction(db, async (client) => {
    const s = (await client.query<ScheduleRow>(`SELECT ${COLUMNS} FROM schedules s WHERE s.id = $1 FOR UPDATE`, [id]))
      .rows[0];
    if (!s) return undefined;
    const { commandId, at } = await submit(s);
    await client.query(`UPDATE schedules SET last_run_at = $2, last_command_id = $3 WHERE id = $1`, [
      id,
      at,
      commandId,
    ]);
    await writeAudit(client, audit(s, commandId));
    return { commandId };
  });
}

// ---------------------------------------------------------------------------
// The scheduler's round.

export type DueSchedule = Pick<ScheduleRow, "id" | "name" | "cron" | "timezone" | "command"> & { nextRunAt: Date };
/** What a round makes of a due schedule: its next tick, and the command it submitted (if it did). */
export type ScheduleAdvance = { id: string; nextRunAt: Date | null; lastRunAt?: Date; lastCommandId?: string };

/**
 * One round: locks up to `limit` due schedules (enabled, next_run_at <= now())
 * that no other worker holds (SKIP LOCKED), hands them to `handle` with the
 * database's clock, and writes what it answers, in one transaction. A
 * schedule another worker holds is skipped; once that worker commits, its
 * next_run_at is in the future and the row is no longer due (the lock's
 * recheck sees the committed row). Answers how many were due. `at`
 * stands for the clock in tests (daylight saving switches of other dates).
 */
export async function takeDueSchedules(
  db: Db,
  limit: number,
  handle: (due: DueSchedule[], now: Date) => Promise<ScheduleAdvance[]>,
  at: Date | null = null,
): Promise<number> {
  return withTransaction(db, async (client) => {
    const { rows } = await client.query<DueSchedule & { now: Date }>(
      `SELECT s.id, s.name, s.cron, s.timezone, s.command, s.next_run_at AS "nextRunAt", COALESCE($2::timestamptz, now()) AS now
       FROM schedules s WHERE s.enabled AND s.next_run_at <= COALESCE($2::timestamptz, now())
       ORDER BY s.next_run_at LIMIT $1 FOR UPDATE SKIP LOCKED`,
      [limit, at],
    );
    if (rows.length === 0) return 0;
    const advances = await handle(
      rows.map(({ now: _now, ...r }) => r),
      rows[0]!.now,
    );
    if (advances.length > 0)
      await client.query(
        `UPDATE schedules s SET next_run_at = a.next_run_at,
           last_run_at = COALESCE(a.last_run_at, s.last_run_at), last_command_id = COALESCE(a.command_id, s.last_command_id)
         FROM unnest($1::uuid[], $2::timestamptz[], $3::timestamptz[], $4::uuid[]) AS a(id, next_run_at, last_run_at, command_id)
         WHERE s.id = a.id`,
        [
          advances.map((a) => a.id),
          advances.map((a) => a.nextRunAt),
          advances.map((a) => a.lastRunAt ?? null),
          advances.map((a) => a.lastCommandId ?? null),
        ],
      );
    return rows.length;
  });
}

/** Milliseconds (by the database's clock) until the earliest enabled schedule is due; null when none is. */
export async function msUntilNextDue(db: Db): Promise<number | null> {
  const { rows } = await db.pool.query<{ ms: number | null }>(
    `SELECT (EXTRACT(EPOCH FROM (min(next_run_at) - now())) * 1000)::float8 AS ms FROM schedules WHERE enabled`,
  );
  return rows[0]?.ms ?? null;
}

// ---------------------------------------------------------------------------
// The internal client `schedules`.

/**
 * Inserts the internal client under its fixed id unless it exists (the first
 * of several processes wins). Its token hash is not a SHA-256 hex digest, so
 * no token can ever authenticate as it.
 */
export async function insertInternalClient(
  db: Db,
  c: { id: string; name: string; tokenHash: string; tokenPrefix: string; signingSecretEnc: string; createdBy: string },
): Promise<void> {
  await db.pool.query(
    `INSERT INTO api_clients (id, name, scope, token_hash, token_prefix, signing_secret_enc, created_by)
     VALUES ($1, $2, 'client', $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING`,
    [c.id, c.name, c.tokenHash, c.tokenPrefix, c.signingSecretEnc, c.createdBy],
  );
}
