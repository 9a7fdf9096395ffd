// The JSON an alert webhook receives (DESIGN §9):
//   { rule: { id, name, kind }, status: "firing" | "resolved", value, threshold, text, url }
// `text` is one line (a chat incoming-webhook shows it as is), `url` the rule
// on the console's alerts page. A repeat is "firing" again; a test is
// "firing" with `test: true` (and its text says [TEST]). Built where the event
// is made (the evaluator, or alerts.testRule in the web process): no rendering.
import type { Evidence, RuleRow, Webhook } from "../db/alerts";
import { alertSubject, alertText, type AlertKind } from "./format";
import { facts, ruleLink } from "./links";

export type WebhookBody = {
  rule: { id: string; name: string; kind: string };
  status: "firing" | "resolved";
  value: number;
  threshold: number;
  text: string;
  url: string;
  test?: true;
};

/** What follows the headline in `text`: the circuits a circuit rule counts (at most three named). */
function more(ev: Evidence): string | undefined {
  const c = ev.circuits ?? [];
  if (!c.length) return undefined;
  const named = c.slice(0, 3).map((x) => `${x.kind} ${x.name} (${x.state === "half_open" ? "half-open" : x.state})`);
  return `Circuits: ${named.join(", ")}${c.length > 3 ? ` and ${c.length - 3} more` : ""}.`;
}

export function webhookBody(r: RuleRow, kind: AlertKind, value: number, ev: Evidence, publicUrl: string): WebhookBody {
  return {
    rule: { id: r.id, name: r.name, kind: r.kind },
    status: kind === "resolved" ? "resolved" : "firing",
    value,
    threshold: r.threshold,
    text: alertText(facts(r), kind, value, kind === "resolved" ? undefined : more(ev)),
    url: ruleLink(publicUrl, r.id),
    ...(kind === "test" ? { test: true as const } : {}),
  };
}

/** One delivery per webhook of the rule. */
export function webhookDeliveries(
  r: RuleRow,
  kind: AlertKind,
  value: number,
  ev: Evidence,
  publicUrl: string,
): Webhook[] {
  if (!r.webhooks.length) return [];
  const body = webhookBody(r, kind, value, ev, publicUrl);
  return r.webhooks.map((url) => ({ url, subject: alertSubject(kind, r.name), text: body.text, body }));
}
