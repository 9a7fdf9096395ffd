// Evaluates every enabled rule. Runs in every worker on an interval; an
// advisory lock lets exactly one evaluate at a time, and the rule state,
// event and deliveries (an email per recipient, a POST per webhook) are
// written in the same transaction, so one firing makes one delivery per
// channel however many workers run.
import type { Db } from "../db/client";
import {
  enabledRules,
  evidenceOf,
  insertEvent,
  measureValue,
  compactStateEntries,
  saveRuleState,
  withEvaluatorLock,
  type RuleRow,
} from "../db/alerts";
import { renderAlert, type AlertKind } from "./email";
import { webhookDeliveries } from "./webhook";

export type Evaluation = { ruleId: string; value: number; event: AlertKind | null };

/** Whether the value breaches the rule. A share or latency of 0 against a threshold of 0 is "no command finished": not a breach. */
const breaches = (r: RuleRow, value: number) =>
  value >= r.threshold && !((r.kind === "rate" || r.kind === "latency") && value === 0 && r.threshold === 0);

export async function evaluateRules(
  db: Db,
  opts: { publicUrl: string; now?: () => Date },
): Promise<Evaluation[] | null> {
  const now = opts.now ?? (() => new Date());
  return withEvaluatorLock(db, async (client) => {
    const out: Evaluation[] = [];
    await compactStateEntries(client, 31);
    for (const r of await enabledRules(client)) {
      const value = await measureValue(client, r);
      const breached = breaches(r, value);
      const silenced = !!r.silenced_until && r.silenced_until > now();
      let event: AlertKind | null = null;
      let { firing, firing_since: since, last_sent_at: lastSent } = r;
      if (breached && !firing) {
        firing = true;
        since = now();
        if (!silenced) event = "firing";
      } else if (breached && firing) {
        if (!silenced && (!lastSent || now().getTime() - lastSent.getTime() >= r.cooldown_seconds * 1000))
          event = "repeat";
      } else if (!breached && firing) {
        firing = false;
        since = null;
        if (r.notify_on_resolve && !silenced) event = "resolved";
      }
      if (event) {
        await emit(client, r, event, value, opts.publicUrl);
        lastSent = now();
      }
      await saveRuleState(client, r.id, {
        firing,
        firingSince: since,
        lastSentAt: event === "resolved" ? null : lastSent,
        value,
      });
      out.push({ ruleId: r.id, value, event });
    }
    return out;
  });
}

async function emit(
  client: Parameters<typeof insertEvent>[0],
  r: RuleRow,
  kind: AlertKind,
  value: number,
  publicUrl: string,
) {
  // The evidence (worst commands, open circuits) only when there is an alert to show it in.
  const ev = await evidenceOf(client, r);
  const mail = r.recipients.length ? await renderAlert(r, kind, value, ev, publicUrl) : null;
  await insertEvent(client, {
    ruleId: r.id,
    kind,
    value,
    threshold: r.threshold,
    details: ev,
    emails: mail ? r.recipients.map((recipient) => ({ recipient, ...mail })) : [],
    webhooks: webhookDeliveries(r, kind, value, ev, publicUrl),
  });
}
