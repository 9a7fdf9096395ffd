// Alert emails: subject "[FIRING] <rule>" or "[RESOLVED] <rule>" (DESIGN §4),
// text and HTML rendered from the react-email template. The worker renders
// them (the evaluator when a rule fires, the mailer for test emails stored
// without bodies); the web process never loads this module.
import type { Db } from "../db/client";
import { setBodies, unrenderedEvents, type Evidence, type OpenCircuit, type RuleRow } from "../db/alerts";
import { alertHeadline, alertSubject, formatValue, type AlertKind } from "./format";
import { consoleLink, facts } from "./links";
import { renderAlertEmail } from "./templates/alert-email";

export type { AlertKind };
export { consoleLink };

export async function renderAlert(r: RuleRow, kind: AlertKind, value: number, ev: Evidence, publicUrl: string) {
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
    worst: ev.worst.map((w) => ({
      id: w.id,
      href: `${base}/commands/${w.id}`,
      type: w.type,
      status: w.status,
      since: w.since.toISOString(),
      error: w.error,
    })),
    circuits: (ev.circuits ?? []).map((c) => ({
      scope: `${c.kind} ${c.name}`,
      state: c.state === "half_open" ? "half-open" : c.state,
      since: c.since.toISOString(),
    })),
    link: consoleLink(publicUrl, r),
  });
  return { subject, text, html };
}

type Stored<T> = Omit<T, "since"> & { since: string };
type StoredEvidence = { worst?: Stored<Evidence["worst"][number]>[]; circuits?: Stored<OpenCircuit>[] };

/** The evidence as an event's details keep it (JSON: dates as strings). */
export const storedEvidence = (details: unknown): Evidence => {
  const d = (details ?? {}) as StoredEvidence;
  return {
    worst: (d.worst ?? []).map((w) => ({ ...w, since: new Date(w.since) })),
    circuits: d.circuits?.map((c) => ({ ...c, since: new Date(c.since) })),
  };
};

/** Renders the emails stored without bodies (test emails asked for in the console); answers how many events it rendered. */
export async function renderUnrendered(db: Db, publicUrl: string, limit = 20): Promise<number> {
  const events = await unrenderedEvents(db, limit);
  for (const e of events) {
    const mail = await renderAlert(e, e.event_kind, e.event_value ?? 0, storedEvidence(e.event_details), publicUrl);
    await setBodies(db, e.event_id, mail.text, mail.html);
  }
  return events.length;
}
