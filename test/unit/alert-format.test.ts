// The words of latency and circuit rules, webhook texts and masked webhook URLs (server/alerts/format.ts),
// and a circuit alert's email (escaped, the circuits listed).
import { describe, expect, it } from "vitest";
import { alertText, describeRule, formatValue, maskWebhook, type RuleFacts } from "../../server/alerts/format";
import { renderAlert } from "../../server/alerts/email";
import { webhookBody } from "../../server/alerts/webhook";
import type { RuleRow } from "../../server/db/alerts";

const facts = (r: Partial<RuleFacts>): RuleFacts => ({
  name: "r",
  kind: "latency",
  states: [],
  type: null,
  windowSeconds: 900,
  ageSeconds: null,
  percentile: 95,
  threshold: 2.5,
  ...r,
});
const row: RuleRow = {
  id: "11111111-1111-4111-8111-111111111111",
  name: "Backends <down>",
  kind: "circuit",
  states: [],
  type: "http",
  window_seconds: null,
  age_seconds: null,
  percentile: null,
  threshold: 1,
  recipients: ["a@example.com"],
  webhooks: ["https://hooks.example/x"],
  cooldown_seconds: 3600,
  notify_on_resolve: true,
  enabled: true,
  silenced_until: null,
  firing: false,
  firing_since: null,
  last_sent_at: null,
  last_value: null,
};

describe("latency and circuit rules in words", () => {
  it("describes each kind with its percentile, window, seconds and scope", () => {
    expect(describeRule(facts({ type: "ledger.post" }))).toBe(
      "p95 time from receipt to finish of commands of type ledger.post finished in 15 min ≥ 2.5 s",
    );
    expect(describeRule(facts({ percentile: 99.9, threshold: 30, windowSeconds: 300 }))).toBe(
      "p99.9 time from receipt to finish of commands finished in 5 min ≥ 30 s",
    );
    expect(describeRule(facts({ kind: "circuit", threshold: 1, windowSeconds: null }))).toBe(
      "≥ 1 circuit breaker open or half-open",
    );
    expect(describeRule(facts({ kind: "circuit", type: "http", threshold: 2 }))).toBe(
      "≥ 2 circuit breakers of type http (its own or its hosts') open or half-open",
    );
    expect(formatValue("latency", 12.3456)).toBe("12.35 s");
    expect(formatValue("latency", 0.2504)).toBe("0.25 s");
    expect(formatValue("latency", 12.3456, "email")).toBe("12.35 s");
    expect(formatValue("circuit", 2)).toBe("2");
  });

  it("a webhook's text is one line, whatever the rule's name holds", () => {
    const t = alertText(facts({ name: "Slow\nledger\t postings" }), "firing", 3.5);
    expect(t).toBe(
      "[FIRING] Slow ledger postings: the p95 time from receipt to finish of commands finished in the last 900 s is 3.50 s, at or above the threshold of 2.50 s.",
    );
    expect(t).not.toMatch(/\n/);
  });

  it("masks a webhook URL to its host and the path's last four characters", () => {
    expect(maskWebhook("https://hooks.slack.com/services/T00/B00/abcdefXYZ1")).toBe("https://hooks.slack.com/…XYZ1");
    expect(maskWebhook("https://h.example/")).toBe("https://h.example/");
    expect(maskWebhook("https://h.example:8443/hook?token=secret9")).toBe("https://h.example:8443/…ret9");
    expect(maskWebhook("not a url")).toBe("(webhook)");
  });

  it("a circuit alert lists its circuits in the email (escaped) and names them in the webhook text", async () => {
    const since = new Date("2026-01-01T00:00:00Z");
    const ev = {
      worst: [],
      circuits: [
        { kind: "host" as const, name: "<img src=x onerror=alert(1)>.example", state: "open" as const, since },
        { kind: "type" as const, name: "ledger", state: "half_open" as const, since },
      ],
    };
    const m = await renderAlert(row, "firing", 2, ev, "https://c.example");
    expect(m.text).toContain("Circuit breakers:");
    expect(m.text).toContain("- type ledger  half-open  since 2026-01-01T00:00:00.000Z");
    expect(m.text).toContain("Open in the console: https://c.example/flow");
    expect(m.html).not.toContain("<img");
    expect(m.html).toContain("&lt;img");
    expect(m.html).toContain("Open flow control in the console");
    const body = webhookBody(row, "firing", 2, ev, "https://c.example/");
    expect(body.text).toBe(
      "[FIRING] Backends <down>: the number of open or half-open circuit breakers of type http and its hosts is 2, at or above the threshold of 1. " +
        "Circuits: host <img src=x onerror=alert(1)>.example (open), type ledger (half-open).",
    );
    expect(body.url).toBe("https://c.example/alerts?rule=11111111-1111-4111-8111-111111111111");
    expect(webhookBody(row, "resolved", 0, ev, "https://c.example").text).not.toContain("Circuits:");
  });
});
