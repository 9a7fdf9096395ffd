// SQL for alerts: measuring a rule, the evaluator's lock, events and their
// deliveries (one outbox for emails and webhooks: claimed with SKIP LOCKED,
// retried until sent, every try recorded), history.
import type pg from "pg";
import { withTransaction, type Db } from "./client";
import { CLAIMABLE, QUEUED, UNSUCCESSFUL } from "../engine/states";
import { inList } from "./states-sql";
import { countBothHalves, selectBothHalves } from "./leased";

export type RuleKindName = "count" | "stuck" | "rate" | "backlog" | "latency" | "circuit";

export type RuleRow = {
  id: string;
  name: string;
  kind: RuleKindName;
  states: string[];
  type: string | null;
  window_seconds: number | null;
  age_seconds: number | null;
  percentile: number | null;
  threshold: number;
  recipients: string[];
  webhooks: string[];
  cooldown_seconds: number;
  notify_on_resolve: boolean;
  enabled: boolean;
  silenced_until: Date | null;
  firing: boolean;
  firing_since: Date | null;
  last_sent_at: Date | null;
  last_value: number | null;
};

const RULE_COLUMNS = `id, name, kind, states::text[] AS states, type, window_seconds, age_seconds, percentile, threshold, recipients,
  webhooks, cooldown_seconds, notify_on_resolve, enabled, silenced_until, firing, firing_since, last_sent_at, last_value`;

export type Worst = { id: string; type: string; status: string; error: string | null; since: Date };
/** A circuit breaker that is not closed (circuit rules). */
export type OpenCircuit = { kind: "type" | "host"; name: string; state: "open" | "half_open"; since: Date };
/** What an alert shows beside its value: the worst commands, and for circuit rules the circuits. */
export type Evidence = { worst: Worst[]; circuits?: OpenCircuit[] };

/** The rule's condition as SQL over commands (DESIGN §4), shared by the measure and the worst-commands query. */
function condition(r: RuleRow, params: unknown[]): string {
  const p = (v: unknown) => (params.push(v), `$${params.length}`);
  const parts: string[] = [];
  if (r.type) parts.push(`type = ${p(r.type)}`);
  switch (r.kind) {
    case "count":
      parts.push(
        `status = ANY(${p(r.states)}::command_status[])`,
        `state_changed_at >= now() - make_interval(secs => ${p(r.window_seconds ?? 300)})`,
      );
      break;
    case "stuck":
      parts.push(
        `status = ANY(${p(r.states)}::command_status[])`,
        `state_changed_at < now() - make_interval(secs => ${p(r.age_seconds ?? 600)})`,
      );
      break;
    case "rate":
      // finished commands are never leased; saying so lets the type index serve a rule with a type
      parts.push(`finished_at >= now() - make_interval(secs => ${p(r.window_seconds ?? 300)})`, `lease_id IS NULL`);
      break;
    case "backlog":
      parts.push(`status IN ${inList(QUEUED)}`, `run_at <= now()`, `lease_id IS NULL`);
      break;
    case "latency":
      // commands_finished_at_idx (finished_at IS NOT NULL, which this implies)
      parts.push(`finished_at >= now() - make_interval(secs => ${p(r.window_seconds ?? 300)})`);
      break;
    case "circuit":
      parts.push("false"); // a circuit rule measures circuit breakers, not commands
      break;
  }
  return parts.join(" AND ");
}

/** Seconds from receipt (created_at) to finish, as float8 (date_part, unlike extract, is not numeric). */
const LATENCY = `date_part('epoch', finished_at - created_at)`;

/**
 * The circuits of a circuit rule's scope that are open or half-open: every
 * one when the rule has no type; else its type's own, and the hosts its
 * commands go to (the type's attempts to the host since an hour before the
 * circuit opened, as flow_traffic counted them, or its commands waiting for
 * the host now).
 */
export async function openCircuits(q: Pick<pg.PoolClient, "query">, type: string | null): Promise<OpenCircuit[]> {
  const { rows } = await q.query<OpenCircuit>(
    `SELECT kind, name, circuit_state AS state, circuit_since AS since FROM flow_scopes s
     WHERE circuit_state <> 'closed'
       AND ($1::text IS NULL
            OR (kind = 'type' AND name = $1)
            OR (kind = 'host' AND (
                  EXISTS (SELECT 1 FROM flow_traffic f
                          WHERE f.minute >= date_trunc('minute', s.circuit_since) - interval '1 hour' AND f.type = $1 AND f.host = s.name)
                  OR EXISTS (SELECT 1 FROM commands c
                             WHERE c.target_host = s.name AND c.type = $1 AND c.status IN ${inList(CLAIMABLE)}
                               AND c.lease_id IS NULL AND NOT c.key_waiting))))
     ORDER BY circuit_since, kind, name`,
    [type],
  );
  return rows;
}

/** The rule's value now (DESIGN §4, §9): what the evaluator compares with the threshold. */
export async function measureValue(q: Pick<pg.PoolClient, "query">, r: RuleRow): Promise<number> {
  const params: unknown[] = [];
  const where = condition(r, params);
  switch (r.kind) {
    case "rate":
      return (
        (
          await q.query<{ v: number | null }>(
            `SELECT (count(*) FILTER (WHERE status IN ${inList(UNSUCCESSFUL)}))::float8 / NULLIF(count(*), 0) AS v FROM commands WHERE ${where}`,
            params,
          )
        ).rows[0]!.v ?? 0
      );
    case "latency":
      params.push((r.percentile ?? 95) / 100);
      return (
        (
          await q.query<{ v: number | null }>(
            `SELECT percentile_cont($${params.length}::float8) WITHIN GROUP (ORDER BY ${LATENCY}) AS v FROM commands WHERE ${where}`,
            params,
          )
        ).rows[0]!.v ?? 0
      );
    case "circuit":
      return (await openCircuits(q, r.type)).length;
    case "count":
      return enteredCount(q, r);
    default:
      return (await q.query<{ v: number }>(`SELECT ${countBothHalves(where)}::float8 AS v`, params)).rows[0]!.v;
  }
}

/** What an alert of the rule shows beside its value: the worst commands (the slowest, for latency), the open circuits. */
export async function evidenceOf(q: Pick<pg.PoolClient, "query">, r: RuleRow): Promise<Evidence> {
  if (r.kind === "circuit") return { worst: [], circuits: await openCircuits(q, r.type) };
  const params: unknown[] = [];
  const where = condition(r, params);
  if (r.kind === "latency") {
    const { rows } = await q.query<Worst>(
      `SELECT id, type, status, error, finished_at AS since FROM commands WHERE ${where} ORDER BY ${LATENCY} DESC LIMIT 5`,
      params,
    );
    return { worst: rows };
  }
  const worstWhere = r.kind === "rate" ? `${where} AND status IN ${inList(UNSUCCESSFUL)}` : where;
  const worst = (
    await q.query<Worst>(
      `SELECT id, type, status, error, state_changed_at AS since
       FROM (${selectBothHalves("id, type, status, error, state_changed_at", worstWhere, "state_changed_at", "5")}) AS w
       ORDER BY since`,
      params,
    )
  ).rows;
  return { worst };
}

/** The value and the evidence at once (a test alert). */
export async function measure(q: Pick<pg.PoolClient, "query">, r: RuleRow): Promise<{ value: number } & Evidence> {
  return { value: await measureValue(q, r), ...(await evidenceOf(q, r)) };
}

/**
 * Entries into the rule's states in its window, from the per-minute counters
 * (state_entries): commands that entered and already left count too. The
 * window is read at minute resolution (the minute it started in is included).
 */
async function enteredCount(q: Pick<pg.PoolClient, "query">, r: RuleRow): Promise<number> {
  const { rows } = await q.query<{ v: number }>(
    `SELECT (SELECT COALESCE(sum(n), 0) FROM state_entries
             WHERE status = ANY($1::command_status[]) AND ($2::text IS NULL OR type = $2)
               AND minute >= date_trunc('minute', now() - make_interval(secs => $3)))
          + (CASE WHEN 'pending' = ANY($1::text[]) THEN
               ${countBothHalves("created_at >= date_trunc('minute', now() - make_interval(secs => $3)) AND ($2::text IS NULL OR type = $2)")}
             ELSE 0 END) AS v`,
    [r.states, r.type, r.window_seconds ?? 300],
  );
  return Number(rows[0]!.v);
}

/**
 * Folds the per-connection shards of finished minutes into one row (shard -1),
 * and drops minutes older than the longest window a rule may have (30 days).
 */
export async function compactStateEntries(q: Pick<pg.PoolClient, "query">, keepDays: number) {
  await q.query(
    `WITH moved AS (
       DELETE FROM state_entries WHERE minute < date_trunc('minute', now()) - interval '1 minute' AND shard <> -1
       RETURNING minute, status, type, n)
     INSERT INTO state_entries (minute, status, type, shard, n)
     SELECT minute, status, type, -1, sum(n) FROM moved GROUP BY 1, 2, 3
     ON CONFLICT (minute, status, type, shard) DO UPDATE SET n = state_entries.n + EXCLUDED.n`,
  );
  await q.query(`DELETE FROM state_entries WHERE minute < now() - make_interval(days => $1)`, [keepDays]);
}

const ALERT_LOCK = 72707370;

/** Runs fn while holding the evaluator lock; returns null (without running it) when another process holds it. */
export async function withEvaluatorLock<T>(db: Db, fn: (client: pg.PoolClient) => Promise<T>): Promise<T | null> {
  return withTransaction(db, async (client) => {
    const { rows } = await client.query<{ ok: boolean }>(`SELECT pg_try_advisory_xact_lock($1) AS ok`, [ALERT_LOCK]);
    return rows[0]!.ok ? fn(client) : null;
  });
}

export async function getRule(q: Pick<pg.PoolClient, "query">, id: string): Promise<RuleRow | undefined> {
  return (await q.query<RuleRow>(`SELECT ${RULE_COLUMNS} FROM alert_rules WHERE id = $1`, [id])).rows[0];
}

export async function enabledRules(q: Pick<pg.PoolClient, "query">): Promise<RuleRow[]> {
  // command_status[] arrives from pg as a string unless cast to text[]
  return (await q.query<RuleRow>(`SELECT ${RULE_COLUMNS} FROM alert_rules WHERE enabled ORDER BY created_at`)).rows;
}

export async function saveRuleState(
  q: Pick<pg.PoolClient, "query">,
  id: string,
  s: { firing: boolean; firingSince: Date | null; lastSentAt: Date | null; value: number },
) {
  await q.query(
    `UPDATE alert_rules SET firing = $2, firing_since = $3, last_sent_at = $4, last_value = $5, last_evaluated_at = now() WHERE id = $1`,
    [id, s.firing, s.firingSince, s.lastSentAt, s.value],
  );
}

/** An email delivery of an event; text and html null when a worker is to render them (see unrenderedEvents). */
export type Email = { recipient: string; subject: string; text: string | null; html: string | null };
/** A webhook delivery of an event: the JSON posted to `url`, and its one-line text (for the history). */
export type Webhook = { url: string; subject: string; text: string; body: unknown };

/** Channels' NOTIFY: emails wake the mailers, webhooks the webhook senders. */
export const ALERTS_CHANNEL = "conveyor_alerts";

export async function insertEvent(
  q: Pick<pg.PoolClient, "query">,
  e: {
    ruleId: string;
    kind: string;
    value: number | null;
    threshold: number | null;
    details: unknown;
    emails: Email[];
    webhooks?: Webhook[];
  },
): Promise<string> {
  const { rows } = await q.query<{ id: string }>(
    `INSERT INTO alert_events (rule_id, kind, value, threshold, details) VALUES ($1, $2, $3, $4, $5) RETURNING id::text`,
    [e.ruleId, e.kind, e.value, e.threshold, JSON.stringify(e.details)],
  );
  const id = rows[0]!.id;
  const hooks = e.webhooks ?? [];
  if (e.emails.length) {
    await q.query(
      `INSERT INTO alert_deliveries (event_id, recipient, subject, text_body, html_body)
       SELECT $1::bigint, * FROM unnest($2::text[], $3::text[], $4::text[], $5::text[])`,
      [
        id,
        e.emails.map((m) => m.recipient),
        e.emails.map((m) => m.subject),
        e.emails.map((m) => m.text),
        e.emails.map((m) => m.html),
      ],
    );
  }
  if (hooks.length) {
    await q.query(
      `INSERT INTO alert_deliveries (event_id, channel, recipient, subject, text_body, body)
       SELECT $1::bigint, 'webhook', * FROM unnest($2::text[], $3::text[], $4::text[], $5::json[])`,
      [
        id,
        hooks.map((h) => h.url),
        hooks.map((h) => h.subject),
        hooks.map((h) => h.text),
        hooks.map((h) => JSON.stringify(h.body)),
      ],
    );
  }
  if (e.emails.length || hooks.length) await q.query(`SELECT pg_notify($1, '')`, [ALERTS_CHANNEL]);
  return id;
}

export type DueDelivery = {
  id: string;
  recipient: string;
  subject: string;
  text_body: string;
  html_body: string;
  attempts: number;
};

/** Due emails (rendered), each leased for leaseMs (its next_at moves on, so that no other sender takes it meanwhile). */
export async function claimDeliveries(db: Db, limit: number, leaseMs: number): Promise<DueDelivery[]> {
  const { rows } = await db.pool.query<DueDelivery>(
    `WITH due AS (SELECT id FROM alert_deliveries WHERE channel = 'email' AND sent_at IS NULL AND next_at <= now()
                      AND html_body IS NOT NULL ORDER BY next_at LIMIT $1 FOR UPDATE SKIP LOCKED)
     UPDATE alert_deliveries d SET next_at = now() + make_interval(secs => $2::float8 / 1000), attempts = d.attempts + 1
     FROM due WHERE d.id = due.id
     RETURNING d.id::text, d.recipient, d.subject, d.text_body, d.html_body, d.attempts`,
    [limit, leaseMs],
  );
  return rows;
}

export type DueWebhook = {
  id: string;
  ruleId: string;
  url: string;
  body: unknown;
  attempts: number;
  /** The rule's webhook secret as stored (encrypted); null if it has none. */
  secretEnc: string | null;
};

/** Due webhook deliveries, leased like emails, each with its rule's webhook secret (as it is now: a rotation applies to retries). */
export async function claimWebhooks(db: Db, limit: number, leaseMs: number): Promise<DueWebhook[]> {
  const { rows } = await db.pool.query<{
    id: string;
    rule_id: string;
    url: string;
    body: unknown;
    attempts: number;
    secret_enc: string | null;
  }>(
    `WITH due AS (SELECT id FROM alert_deliveries WHERE channel = 'webhook' AND sent_at IS NULL AND next_at <= now()
                  ORDER BY next_at LIMIT $1 FOR UPDATE SKIP LOCKED),
     claimed AS (
       UPDATE alert_deliveries d SET next_at = now() + make_interval(secs => $2::float8 / 1000), attempts = d.attempts + 1
       FROM due WHERE d.id = due.id
       RETURNING d.id, d.event_id, d.recipient, d.body, d.attempts)
     SELECT c.id::text, e.rule_id, c.recipient AS url, c.body, c.attempts, r.webhook_secret_enc AS secret_enc
     FROM claimed c JOIN alert_events e ON e.id = c.event_id JOIN alert_rules r ON r.id = e.rule_id`,
    [limit, leaseMs],
  );
  return rows.map((r) => ({
    id: r.id,
    ruleId: r.rule_id,
    url: r.url,
    body: r.body,
    attempts: r.attempts,
    secretEnc: r.secret_enc,
  }));
}

/**
 * Records a try of a delivery (email or webhook): sent, or the error and when
 * to try again. `attempts` is the try's number (what the claim counted).
 */
export async function finishDelivery(
  db: Db,
  id: string,
  r: {
    sent: boolean;
    error: string | null;
    retryInMs: number;
    status?: number | null;
    startedAt?: Date;
    worker?: string | null;
  },
) {
  await db.pool.query(
    `WITH upd AS (
       UPDATE alert_deliveries SET sent_at = CASE WHEN $2 THEN now() END, last_error = $3, last_status = $5,
         next_at = CASE WHEN $2 THEN next_at ELSE now() + make_interval(secs => $4::float8 / 1000) END
       WHERE id = $1::bigint RETURNING id, attempts)
     INSERT INTO alert_delivery_tries (delivery_id, number, started_at, finished_at, status, error, worker)
     SELECT id, attempts, COALESCE($6::timestamptz, now()), now(), $5, $3, $7 FROM upd
     ON CONFLICT (delivery_id, number) DO NOTHING`,
    [id, r.sent, r.error, r.retryInMs, r.status ?? null, r.startedAt?.toISOString() ?? null, r.worker ?? null],
  );
}

export type UnrenderedEvent = RuleRow & {
  event_id: string;
  event_kind: "firing" | "repeat" | "resolved" | "test";
  event_value: number | null;
  event_details: unknown;
};

/** Events with email deliveries whose bodies are not rendered yet, oldest first, with their rule as it is now. */
export async function unrenderedEvents(db: Db, limit: number): Promise<UnrenderedEvent[]> {
  const { rows } = await db.pool.query<UnrenderedEvent>(
    `SELECT e.id::text AS event_id, e.kind AS event_kind, e.value AS event_value, e.details AS event_details, r.*
     FROM alert_events e CROSS JOIN LATERAL (SELECT ${RULE_COLUMNS} FROM alert_rules WHERE id = e.rule_id) r
     WHERE e.id IN (SELECT event_id FROM alert_deliveries WHERE channel = 'email' AND sent_at IS NULL AND html_body IS NULL)
     ORDER BY e.id LIMIT $1`,
    [limit],
  );
  return rows;
}

/** Stores an event's rendered bodies on its emails that have none (another worker may have rendered them first). */
export async function setBodies(db: Db, eventId: string, text: string, html: string) {
  await db.pool.query(
    `UPDATE alert_deliveries SET text_body = $2, html_body = $3
     WHERE event_id = $1::bigint AND channel = 'email' AND html_body IS NULL`,
    [eventId, text, html],
  );
}

/** Marks emails that cannot be sent now (no SMTP configured), so the console can say so. */
export async function noteUndeliverable(db: Db, reason: string) {
  await db.pool.query(
    `UPDATE alert_deliveries SET last_error = $1
     WHERE channel = 'email' AND sent_at IS NULL AND last_error IS DISTINCT FROM $1`,
    [reason],
  );
}

export type RuleDeliveryRow = {
  rule_id: string;
  /** The rule's latest event that has emails (null: no email was ever made for it). */
  event_kind: string | null;
  event_at: Date | null;
  sent: number;
  held: number;
  queued: number;
  attempts: number | null;
  next_at: Date | null;
  last_error: string | null;
  event_sent_at: Date | null;
  /** Over all of the rule's events. */
  last_sent_at: Date | null;
  held_total: number;
  queued_total: number;
};

/**
 * What became of each rule's emails, from the delivery rows: its latest
 * alert's emails (sent, held for `heldError`, queued), the last time any
 * of its emails was sent, and how many are still unsent.
 */
export async function ruleDeliveries(db: Db, heldError: string): Promise<RuleDeliveryRow[]> {
  const held = `sent_at IS NULL AND last_error = $1`;
  const queued = `sent_at IS NULL AND last_error IS DISTINCT FROM $1`;
  const { rows } = await db.pool.query<RuleDeliveryRow>(
    `SELECT r.id AS rule_id, l.kind AS event_kind, l.at AS event_at,
            COALESCE(le.sent, 0) AS sent, COALESCE(le.held, 0) AS held, COALESCE(le.queued, 0) AS queued,
            le.attempts, le.next_at, le.last_error, le.sent_at AS event_sent_at,
            s.last_sent_at, COALESCE(u.held_total, 0) AS held_total, COALESCE(u.queued_total, 0) AS queued_total
     FROM alert_rules r
     LEFT JOIN LATERAL (
       SELECT e.id, e.kind, e.at FROM alert_events e
       WHERE e.rule_id = r.id AND EXISTS (SELECT 1 FROM alert_deliveries x WHERE x.event_id = e.id AND x.channel = 'email')
       ORDER BY e.at DESC, e.id DESC LIMIT 1) l ON true
     LEFT JOIN LATERAL (
       SELECT count(*) FILTER (WHERE sent_at IS NOT NULL)::int AS sent, count(*) FILTER (WHERE ${held})::int AS held,
              count(*) FILTER (WHERE ${queued})::int AS queued, max(attempts) FILTER (WHERE ${queued}) AS attempts,
              min(next_at) FILTER (WHERE ${queued}) AS next_at, max(sent_at) AS sent_at,
              (array_agg(last_error ORDER BY id DESC) FILTER (WHERE ${queued} AND last_error IS NOT NULL))[1] AS last_error
       FROM alert_deliveries WHERE event_id = l.id AND channel = 'email') le ON true
     LEFT JOIN LATERAL (
       SELECT max(d.sent_at) AS last_sent_at FROM alert_events e JOIN alert_deliveries d ON d.event_id = e.id
       WHERE e.rule_id = r.id AND d.channel = 'email') s ON true
     LEFT JOIN LATERAL (
       SELECT count(*) FILTER (WHERE d.last_error = $1)::int AS held_total, count(*) FILTER (WHERE d.last_error IS DISTINCT FROM $1)::int AS queued_total
       FROM alert_events e JOIN alert_deliveries d ON d.event_id = e.id
       WHERE e.rule_id = r.id AND d.channel = 'email' AND d.sent_at IS NULL) u ON true`,
    [heldError],
  );
  return rows;
}

export type ChannelDeliveryRow = {
  rule_id: string;
  channel: "email" | "webhook";
  recipient: string;
  event_kind: string;
  event_at: Date;
  attempts: number;
  sent_at: Date | null;
  next_at: Date;
  last_status: number | null;
  last_error: string | null;
};

/** The last delivery to each channel (an address, a webhook URL) of each rule. */
export async function lastDeliveryPerChannel(db: Db): Promise<ChannelDeliveryRow[]> {
  const { rows } = await db.pool.query<ChannelDeliveryRow>(
    `SELECT DISTINCT ON (e.rule_id, d.channel, d.recipient)
            e.rule_id, d.channel, d.recipient, e.kind AS event_kind, e.at AS event_at,
            d.attempts, d.sent_at, d.next_at, d.last_status, d.last_error
     FROM alert_deliveries d JOIN alert_events e ON e.id = d.event_id
     ORDER BY e.rule_id, d.channel, d.recipient, d.id DESC`,
  );
  return rows;
}

export async function history(db: Db, ruleId: string | null, limit: number) {
  const { rows } = await db.pool.query(
    `SELECT e.id::text, e.rule_id, r.name AS rule_name, e.kind, e.at, e.value, e.threshold, e.details,
            COALESCE(json_agg(json_build_object('id', d.id::text, 'channel', d.channel, 'recipient', d.recipient,
                     'subject', d.subject, 'attempts', d.attempts, 'sentAt', d.sent_at, 'nextAt', d.next_at,
                     'lastStatus', d.last_status, 'lastError', d.last_error, 'text', d.text_body, 'body', d.body,
                     'tries', (SELECT COALESCE(json_agg(json_build_object('number', t.number, 'at', t.finished_at,
                                 'status', t.status, 'error', t.error) ORDER BY t.number), '[]')
                               FROM alert_delivery_tries t WHERE t.delivery_id = d.id)) ORDER BY d.id)
            FILTER (WHERE d.id IS NOT NULL), '[]') AS deliveries
     FROM alert_events e JOIN alert_rules r ON r.id = e.rule_id LEFT JOIN alert_deliveries d ON d.event_id = e.id
     WHERE ($1::uuid IS NULL OR e.rule_id = $1) GROUP BY e.id, r.name ORDER BY e.at DESC, e.id DESC LIMIT $2`,
    [ruleId, limit],
  );
  return rows;
}
