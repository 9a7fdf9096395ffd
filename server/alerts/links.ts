// What the alerts say of a rule and where they point: the facts the sentences
// need, the console's list of the rule's commands (emails), and the rule on
// the alerts page (webhooks).
import type { RuleRow } from "../db/alerts";
import { QUEUED, UNSUCCESSFUL } from "../engine/states";
import type { RuleFacts } from "./format";

export const facts = (r: RuleRow): RuleFacts => ({
  name: r.name,
  kind: r.kind,
  states: r.states,
  type: r.type,
  windowSeconds: r.window_seconds,
  ageSeconds: r.age_seconds,
  percentile: r.percentile,
  threshold: r.threshold,
});

const trim = (publicUrl: string) => publicUrl.replace(/\/$/, "");

/** The console's filtered list for this rule (a circuit rule: the flow page, where the circuits are). */
export function consoleLink(publicUrl: string, r: RuleRow): string {
  if (r.kind === "circuit") return `${trim(publicUrl)}/flow`;
  const q = new URLSearchParams();
  const states =
    r.kind === "backlog" ? QUEUED : r.kind === "rate" ? UNSUCCESSFUL : r.kind === "latency" ? [] : r.states;
  if (states.length) q.set("status", states.join(","));
  if (r.type) q.set("type", r.type);
  return `${trim(publicUrl)}/commands${q.size ? `?${q}` : ""}`;
}

/** The rule on the console's alerts page, its history shown. */
export const ruleLink = (publicUrl: string, ruleId: string) =>
  `${trim(publicUrl)}/alerts?rule=${encodeURIComponent(ruleId)}`;
