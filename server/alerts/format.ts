// How alert rules, their values and their alerts read: the words of the alert
// emails and of the console's alerts page, in one module that both import.
// Pure (no I/O, no Node), so that the console can bundle it.
import type { RuleKind } from "./rule-input";
import { QUEUED, UNSUCCESSFUL } from "../engine/states";

export type AlertKind = "firing" | "repeat" | "resolved" | "test";

/** What the sentences need of a rule. */
export type RuleFacts = {
  name: string;
  kind: RuleKind;
  states: readonly string[];
  type: string | null;
  windowSeconds: number | null;
  ageSeconds: number | null;
  /** latency rules (default 95) */
  percentile?: number | null;
  threshold: number;
};

/** 600 → "10 min", 5400 → "1 h 30 min" (at most two units). */
export function duration(sec: number | null | undefined): string {
  if (sec === null || sec === undefined) return "—";
  const parts: string[] = [];
  let s = Math.round(sec);
  for (const [n, u] of [
    [86400, "d"],
    [3600, "h"],
    [60, "min"],
  ] as const) {
    if (s >= n) {
      parts.push(`${Math.floor(s / n)} ${u}`);
      s %= n;
    }
  }
  if (s || !parts.length) parts.push(`${s} s`);
  return parts.slice(0, 2).join(" ");
}

const grouped = (n: number) =>
  Number.isInteger(n) ? n.toLocaleString() : n.toLocaleString(undefined, { maximumFractionDigits: 2 });
const percent = (share: number) => `${Number((share * 100).toFixed(2))}%`;

/**
 * A rule's measured value or threshold: a share as a percentage for a rate
 * rule, a count otherwise. "console" groups digits and drops trailing zeros
 * (12.5%, 1,234); "email" has a fixed precision that reads the same in every
 * mail client and locale (12.5%, 50.0%, 1234).
 */
export function formatValue(
  kind: RuleKind | undefined,
  v: number | null | undefined,
  style: "console" | "email" = "console",
): string {
  if (v === null || v === undefined) return "—";
  if (kind === "latency") return style === "email" ? `${v.toFixed(2)} s` : seconds(v);
  if (style === "email") return kind === "rate" ? `${(v * 100).toFixed(1)}%` : String(Math.round(v));
  return kind === "rate" ? percent(v) : grouped(v);
}

/** A latency in seconds for the console: 0.25 s, 12.4 s, 1,250 s. */
const seconds = (v: number) =>
  `${v.toLocaleString(undefined, { maximumFractionDigits: v < 10 ? 3 : v < 100 ? 2 : 1 })} s`;

/** "p95", "p99.9". */
export const percentileLabel = (p: number | null | undefined) => `p${Number((p ?? 95).toFixed(3))}`;

function orList(xs: readonly string[]): string {
  if (xs.length <= 1) return xs.join("");
  return `${xs.slice(0, -1).join(", ")} or ${xs[xs.length - 1]}`;
}

/** The console's sentence for a rule's condition, threshold included, e.g. "≥ 5 commands entered exception in 10 min". */
export function describeRule(r: RuleFacts): string {
  const of = r.type ? ` of type ${r.type}` : "";
  const cmds = (n: number) => (n === 1 ? "command" : "commands");
  const states = orList(r.states);
  switch (r.kind) {
    case "count":
      return `≥ ${grouped(r.threshold)} ${cmds(r.threshold)}${of} entered ${states} in ${duration(r.windowSeconds)}`;
    case "stuck":
      return `≥ ${grouped(r.threshold)} ${cmds(r.threshold)}${of} in ${states} for longer than ${duration(r.ageSeconds)}`;
    case "rate":
      return `≥ ${percent(r.threshold)} of commands${of} finished in ${duration(r.windowSeconds)} failed or hit an exception`;
    case "backlog":
      return `≥ ${grouped(r.threshold)} ${cmds(r.threshold)}${of} ${orList(QUEUED)} and due now`;
    case "latency":
      return `${percentileLabel(r.percentile)} time from receipt to finish of commands${of} finished in ${duration(r.windowSeconds)} ≥ ${seconds(r.threshold)}`;
    case "circuit": {
      const n = grouped(r.threshold);
      return `≥ ${n} circuit ${r.threshold === 1 ? "breaker" : "breakers"}${r.type ? ` of type ${r.type} (its own or its hosts')` : ""} open or half-open`;
    }
  }
}

/** What an email says the rule measures, e.g. "commands of type http that entered exception in the last 600 s". */
function measuredBy(r: RuleFacts): string {
  const scope = r.type ? ` of type ${r.type}` : "";
  switch (r.kind) {
    case "count":
      return `commands${scope} that entered ${r.states.join("/")} in the last ${r.windowSeconds} s`;
    case "stuck":
      return `commands${scope} in ${r.states.join("/")} for longer than ${r.ageSeconds} s`;
    case "rate":
      return `share of ${UNSUCCESSFUL.join(" + ")} among commands${scope} finished in the last ${r.windowSeconds} s`;
    case "backlog":
      return `commands${scope} ${orList(QUEUED)} whose time has come`;
    case "latency":
      return `the ${percentileLabel(r.percentile)} time from receipt to finish of commands${scope} finished in the last ${r.windowSeconds} s`;
    case "circuit":
      return `the number of open or half-open circuit breakers${r.type ? ` of type ${r.type} and its hosts` : ""}`;
  }
}

/** "[FIRING] <rule>", "[RESOLVED] <rule>" (DESIGN §4), "[TEST] <rule>"; a repeat fires again. */
export function alertSubject(kind: AlertKind, ruleName: string): string {
  const tag = kind === "resolved" ? "[RESOLVED]" : kind === "test" ? "[TEST]" : "[FIRING]";
  return `${tag} ${ruleName}`;
}

/** An alert email's first sentence. */
export function alertHeadline(r: RuleFacts, kind: AlertKind, value: number): string {
  const what = measuredBy(r);
  const v = formatValue(r.kind, value, "email");
  const t = formatValue(r.kind, r.threshold, "email");
  if (kind === "resolved") return `Resolved: ${what} is ${v}, below the threshold of ${t}.`;
  if (kind === "test") return `This is a test of the rule "${r.name}": ${what} is now ${v} (threshold ${t}).`;
  return `${what} is ${v}, at or above the threshold of ${t}.`;
}

/**
 * A webhook's URL as readers who are not admins see it: a chat service's
 * incoming-webhook URL is its own credential (its path is the secret), so
 * only the scheme, host and the path's last four characters are shown.
 */
export function maskWebhook(url: string): string {
  try {
    const u = new URL(url);
    const rest = `${u.pathname}${u.search}`;
    return `${u.protocol}//${u.host}${rest.length > 1 ? `/…${rest.slice(-4)}` : "/"}`;
  } catch {
    return "(webhook)";
  }
}

/** A webhook's `text` (DESIGN §9): one line, so that a chat incoming-webhook shows it as is. */
export function alertText(r: RuleFacts, kind: AlertKind, value: number, more?: string): string {
  const line = `${alertSubject(kind, r.name)}: ${alertHeadline(r, kind, value)}${more ? ` ${more}` : ""}`;
  return line.replace(/\s+/g, " ").trim();
}
