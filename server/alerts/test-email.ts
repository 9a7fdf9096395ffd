// alerts.testRule: a test alert now, through the same deliveries as alerts,
// to every channel of the rule (emails and webhooks). It runs in the web
// process, which does not render emails (the templates stay out of its
// bundles, see templates/alert-email.tsx): the emails are stored with their
// subject and no bodies, and a worker's mailer renders them before sending.
// A webhook's body needs no rendering: it is stored as it will be posted.
import { withTransaction, type Db } from "../db/client";
import { getRule, insertEvent, measure } from "../db/alerts";
import { alertSubject } from "./format";
import { webhookDeliveries } from "./webhook";

export async function sendTest(
  db: Db,
  ruleId: string,
  publicUrl: string,
): Promise<{ eventId: string; recipients: string[]; webhooks: number } | null> {
  return withTransaction(db, async (client) => {
    const r = await getRule(client, ruleId);
    if (!r) return null;
    const { value, ...ev } = await measure(client, r);
    const subject = alertSubject("test", r.name);
    const emails = r.recipients.map((recipient) => ({ recipient, subject, text: null, html: null }));
    const webhooks = webhookDeliveries(r, "test", value, ev, publicUrl);
    const eventId = await insertEvent(client, {
      ruleId,
      kind: "test",
      value,
      threshold: r.threshold,
      details: ev,
      emails,
      webhooks,
    });
    return { eventId, recipients: r.recipients, webhooks: webhooks.length };
  });
}
