// The rule form's values: the rule input's fields, in the form a person types
// them (text, amounts with units, a percentage for rates, seconds for
// latencies, lists one per line). toInput converts
// them to the rule input, and the form's resolver checks that with the schema
// the server checks with (server/alerts/rule-input.ts), so that the server's
// issues and the form's name the same fields.
import type { Resolver } from "react-hook-form";
import { zodResolver } from "@hookform/resolvers/zod";
import type { z } from "zod";
import type { State } from "@/app/_components/ui";
import { DEFAULT_PERCENTILE, ruleInput, type RuleInput } from "@/server/alerts/rule-input";
import type { Rule, RuleKind } from "./types";

type Dur = { amount: string; unit: number };

export const UNITS = [
  { value: 1, label: "seconds" },
  { value: 60, label: "minutes" },
  { value: 3600, label: "hours" },
  { value: 86400, label: "days" },
] as const;

/** Seconds → the largest unit that divides them. */
function split(sec: number | null | undefined, fallbackUnit = 60): Dur {
  if (sec === null || sec === undefined) return { amount: "", unit: fallbackUnit };
  const u = [...UNITS].reverse().find((x) => sec % x.value === 0) ?? UNITS[0];
  return { amount: String(sec / u.value), unit: u.value };
}

const toSeconds = (d: Dur): number | undefined =>
  d.amount.trim() === "" ? undefined : Math.round(Number(d.amount) * d.unit);

export type FormValues = {
  name: string;
  kind: RuleKind;
  states: State[];
  type: string;
  windowSeconds: Dur;
  ageSeconds: Dur;
  /** As typed: a latency rule's percentile (default 95). */
  percentile: string;
  /** As typed: a percentage for a rate rule, seconds for a latency rule. */
  threshold: string;
  /** As typed: addresses separated by commas, semicolons or white space. */
  recipients: string;
  /** As typed: URLs separated by white space or commas. */
  webhooks: string;
  cooldownSeconds: Dur;
  notifyOnResolve: boolean;
  enabled: boolean;
  silencedUntil: string | null;
};

export function defaults(rule: Rule | null): FormValues {
  return {
    name: rule?.name ?? "",
    kind: rule?.kind ?? "count",
    states: rule ? rule.states : ["exception"],
    type: rule?.type ?? "",
    windowSeconds: rule ? split(rule.windowSeconds) : { amount: "10", unit: 60 },
    ageSeconds: rule ? split(rule.ageSeconds) : { amount: "15", unit: 60 },
    percentile: String(rule?.percentile ?? DEFAULT_PERCENTILE),
    threshold: rule ? String(rule.kind === "rate" ? Number((rule.threshold * 100).toFixed(4)) : rule.threshold) : "5",
    recipients: rule?.recipients.join("\n") ?? "",
    webhooks: rule?.webhooks.join("\n") ?? "",
    cooldownSeconds: split(rule?.cooldownSeconds ?? 3600),
    notifyOnResolve: rule?.notifyOnResolve ?? true,
    enabled: rule?.enabled ?? true,
    silencedUntil: rule?.silencedUntil ?? null,
  };
}

/** The form's fields: the rule input's, but id. */
export const FIELDS = Object.keys(defaults(null));

export const recipientList = (text: string) =>
  text
    .split(/[\s,;]+/)
    .map((x) => x.trim())
    .filter(Boolean);

/** URLs one per line (or separated by white space or commas, which a URL's own characters never are unescaped). */
export const webhookList = (text: string) =>
  text
    .split(/[\s,]+/)
    .map((x) => x.trim())
    .filter(Boolean);

/** The kinds that look at a window of time. */
export const WINDOWED: readonly RuleKind[] = ["count", "rate", "latency"];

const num = (s: string) => (s.trim() === "" ? Number.NaN : Number(s));

/** The rule input the form stands for; fields its kind does not use are left out. */
function toInput(v: FormValues): z.input<typeof ruleInput> {
  const t = num(v.threshold);
  return {
    name: v.name,
    kind: v.kind,
    states: v.kind === "count" || v.kind === "stuck" ? v.states : undefined,
    type: v.type || undefined,
    windowSeconds: WINDOWED.includes(v.kind) ? toSeconds(v.windowSeconds) : undefined,
    ageSeconds: v.kind === "stuck" ? toSeconds(v.ageSeconds) : undefined,
    percentile: v.kind === "latency" ? num(v.percentile) : undefined,
    // a circuit rule's threshold may be left empty (1)
    threshold: v.kind === "rate" ? t / 100 : v.kind === "circuit" && v.threshold.trim() === "" ? undefined : t,
    recipients: recipientList(v.recipients),
    webhooks: webhookList(v.webhooks),
    cooldownSeconds: toSeconds(v.cooldownSeconds),
    notifyOnResolve: v.notifyOnResolve,
    enabled: v.enabled,
    silencedUntil: v.silencedUntil,
  };
}

// A number left empty (or not a number) says so, rather than zod's "expected number, received NaN".
const checkInput = zodResolver(ruleInput, {
  error: (i) => (i.code === "invalid_type" && i.expected === "number" ? "enter a number" : undefined),
});
export const resolver: Resolver<FormValues, unknown, RuleInput> = (values, context, options) =>
  checkInput(toInput(values), context, options as unknown as Parameters<typeof checkInput>[2]) as unknown as ReturnType<
    Resolver<FormValues, unknown, RuleInput>
  >;
