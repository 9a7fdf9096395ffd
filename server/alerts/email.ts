// Alert emails: subject "[FIRING] <rule>" or "[RESOLVED] <rule>" (DESIGN §4),
// text and HTML rendered from the react-email template. The worker renders
// them (the evaluator when a rule fires, the mailer for test emails stored
// without bodies); the web process never loads this module.
import type { Db } from "../db/client";
import { QUEUED, UNSUCCESSFUL } from "../engine/states";
import { setBodies, unrenderedEvents, type RuleRow, type Worst } from "../db/alerts";
import { alertHeadline, alertSubject, formatValue, type AlertKind, type RuleFacts } from "./format";
import { renderAlertEmail } from "./templates/alert-email";

export type { AlertKind };

const facts = (r: RuleRow): RuleFacts => ({
  name: r.name,
  kind: r.kind,
  states: r.states,
  type: r.type,
  windowSeconds: r.window_seconds,
  ageSeconds: r.age_seconds,
  threshold: r.threshold,
});

/** The console's filtered list for this rule. */
export function consoleLink(publicUrl: string, r: RuleRow): string {
  const q = new URLSearchParams();
  const states = r.kind === "backlog" ? QUEUED : r.kind === "rate" ? UNSUCCESSFUL : r.states;
  if (states.length) q.set("status", states.join(","));
  if (r.type) q.set("type", r.type);
  return `${publicUrl.replace(/\/$/, "")}/commands?${q}`;
}

export async function renderAlert(r: RuleRow, kind: AlertKind, value: number, worst: Worst[], publicUrl: string) {
  const base = publicUrl.replace(/\/$/, "");
  const subject = alertSubject(kind, r.name);
  const { text, html } = await renderAlertEmail({
    kind,
    subject,
    headline: alertHeadline(facts(r), kind, value),
    rule: { name: r.name, kind: r.kind },
    value: formatValue(r.kind, value, "email"),
    threshold: formatValue(r.kind, r.threshold, "email"),
    windowSeconds: r.window_seconds,
    worst: worst.map((w) => ({
      id: w.id,
      href: `${base}/commands/${w.id}`,
      type: w.type,
      status: w.status,
      since: w.since.toISOString(),
      error: w.error,
    })),
    link: consoleLink(publicUrl, r),
  });
  return { subject, text, html };
}

type StoredWorst = Omit<Worst, "since"> & { since: string };

/** Renders the deliveries stored without bodies (test emails asked for in the console); answers how many events it rendered. */
export async function renderUnrendered(db: Db, publicUrl: string, limit = 20): Promise<number> {
  const events = await unrenderedEvents(db, limit);
  for (const e of events) {
    const stored = (e.event_details as { worst?: StoredWorst[] } | null)?.worst ?? [];
    const mail = await renderAlert(
      e,
      e.event_kind,
      e.event_value ?? 0,
      stored.map((w) => ({ ...w, since: new Date(w.since) })),
      publicUrl,
    );
    await setBodies(db, e.event_id, mail.text, mail.html);
  }
  return events.length;
}
