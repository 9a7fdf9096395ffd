// What became of alert deliveries (emails and webhooks), as the console tells
// it: read from the delivery rows (sent_at, attempts, next_at, last_error,
// last_status) and their tries, never from when the evaluator decided to
// alert. Each delivery is sent (when), queued (not tried yet, or retrying:
// next try, last error), or, for an email, not sent because the worker has no
// SMTP_URL (kept until it is set).
import type { Db } from "../db/client";
import { history, lastDeliveryPerChannel, ruleDeliveries, type RuleDeliveryRow } from "../db/alerts";
import { maskWebhook } from "./format";

/** The mark the mailer leaves on every unsent delivery while it has no SMTP_URL. */
export const NO_SMTP = "email is not configured (SMTP_URL is unset); this message is kept and will be sent once it is";

type DeliveryStatus =
  | { state: "sent"; sentAt: string }
  | { state: "queued"; attempts: number; nextAt: string | null; lastError: string | null }
  | { state: "not_sent"; why: "smtp_unset"; message: string };

const iso = (d: Date | string | null) => (d === null ? null : new Date(d).toISOString());

function deliveryStatus(d: {
  channel?: string;
  sentAt: Date | string | null;
  attempts: number;
  nextAt: Date | string | null;
  lastError: string | null;
}): DeliveryStatus {
  if (d.sentAt !== null) return { state: "sent", sentAt: iso(d.sentAt)! };
  if (d.lastError === NO_SMTP && d.channel !== "webhook")
    return { state: "not_sent", why: "smtp_unset", message: "SMTP_URL is unset; kept until it is set" };
  return { state: "queued", attempts: d.attempts, nextAt: iso(d.nextAt), lastError: d.lastError };
}

export type RuleEmail = {
  /** The rule's latest alert that made emails, and what became of them; null when it never made one. */
  latest: null | {
    kind: string;
    at: string;
    sent: number;
    notSent: number;
    queued: number;
    /** Of the queued ones: the most attempts made, the earliest next try, the latest error. */
    attempts: number;
    nextAt: string | null;
    lastError: string | null;
    sentAt: string | null;
  };
  /** The last time any email of the rule was sent. */
  lastSentAt: string | null;
  /** Emails of the rule not sent yet, over all its alerts. */
  unsent: { notSent: number; queued: number };
};

function ruleEmail(r: RuleDeliveryRow): RuleEmail {
  return {
    latest:
      r.event_kind === null || r.event_at === null
        ? null
        : {
            kind: r.event_kind,
            at: iso(r.event_at)!,
            sent: r.sent,
            notSent: r.held,
            queued: r.queued,
            attempts: r.attempts ?? 0,
            nextAt: iso(r.next_at),
            lastError: r.last_error,
            sentAt: iso(r.event_sent_at),
          },
    lastSentAt: iso(r.last_sent_at),
    unsent: { notSent: r.held_total, queued: r.queued_total },
  };
}

/** Per rule id, what became of its emails. */
export async function emailByRule(db: Db): Promise<Map<string, RuleEmail>> {
  return new Map((await ruleDeliveries(db, NO_SMTP)).map((r) => [r.rule_id, ruleEmail(r)]));
}

/** A channel of a rule (an email recipient, a webhook) and its last delivery. */
export type RuleChannel = {
  channel: "email" | "webhook";
  /** The address, or the webhook's URL (masked for readers who are not admins). */
  to: string;
  last: null | {
    /** The alert it carried (firing, repeat, resolved, test) and when. */
    kind: string;
    at: string;
    attempts: number;
    /** The HTTP status of its last try (webhooks). */
    lastStatus: number | null;
    status: DeliveryStatus;
  };
};

/** Per rule id, per "<channel> <recipient>", its last delivery. */
export async function channelsByRule(db: Db): Promise<Map<string, Map<string, RuleChannel["last"]>>> {
  const out = new Map<string, Map<string, RuleChannel["last"]>>();
  for (const r of await lastDeliveryPerChannel(db)) {
    const m = out.get(r.rule_id) ?? new Map<string, RuleChannel["last"]>();
    out.set(r.rule_id, m);
    m.set(`${r.channel} ${r.recipient}`, {
      kind: r.event_kind,
      at: iso(r.event_at)!,
      attempts: r.attempts,
      lastStatus: r.last_status,
      status: deliveryStatus({
        channel: r.channel,
        sentAt: r.sent_at,
        attempts: r.attempts,
        nextAt: r.next_at,
        lastError: r.last_error,
      }),
    });
  }
  return out;
}

type Try = { number: number; at: string; status: number | null; error: string | null };
type HistoryDelivery = {
  id: string;
  channel: "email" | "webhook";
  recipient: string;
  subject: string;
  attempts: number;
  sentAt: string | null;
  nextAt: string | null;
  lastError: string | null;
  lastStatus: number | null;
  text: string | null;
  /** A webhook's JSON body, as posted. */
  body: unknown;
  /** Every try: when it ended, the HTTP status (webhooks), the error. */
  tries: Try[];
};
export type HistoryEvent = {
  id: string;
  rule_id: string;
  rule_name: string;
  kind: "firing" | "repeat" | "resolved" | "test";
  at: Date;
  value: number | null;
  threshold: number | null;
  details: unknown;
  deliveries: (HistoryDelivery & { status: DeliveryStatus })[];
};

/** alerts.history: events newest first, each delivery with its status and tries; `reveal`: webhook URLs whole (admins). */
export async function alertHistory(
  db: Db,
  ruleId: string | null,
  limit: number,
  opts: { reveal: boolean } = { reveal: true },
): Promise<HistoryEvent[]> {
  const rows = await history(db, ruleId, limit);
  return rows.map((e) => ({
    ...e,
    deliveries: (e.deliveries as HistoryDelivery[]).map((d) => ({
      ...d,
      recipient: d.channel === "webhook" && !opts.reveal ? maskWebhook(d.recipient) : d.recipient,
      status: deliveryStatus(d),
    })),
  }));
}
