// alerts.testRule: a test email now, through the same deliveries as alerts.
// It runs in the web process, which does not render emails (the templates
// stay out of its bundles, see templates/alert-email.tsx): the deliveries are
// stored with their subject and no bodies, and a worker's mailer renders them
// before sending.
import { withTransaction, type Db } from "../db/client";
import { getRule, insertEvent, measure } from "../db/alerts";
import { alertSubject } from "./format";

export async function sendTest(db: Db, ruleId: string): Promise<{ eventId: string; recipients: string[] } | null> {
  return withTransaction(db, async (client) => {
    const r = await getRule(client, ruleId);
    if (!r) return null;
    const { value, worst } = await measure(client, r);
    const subject = alertSubject("test", r.name);
    const emails = r.recipients.map((recipient) => ({ recipient, subject, text: null, html: null }));
    const eventId = await insertEvent(client, {
      ruleId,
      kind: "test",
      value,
      threshold: r.threshold,
      details: { worst },
      emails,
    });
    return { eventId, recipients: r.recipients };
  });
}
