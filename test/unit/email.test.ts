import { describe, expect, it } from "vitest";
import { renderAlert, consoleLink } from "../../server/alerts/email";
import type { RuleRow } from "../../server/db/alerts";

const rule: RuleRow = {
  id: "r", name: `Pay <script>alert("x")</script>`, kind: "count", states: ["exception"], type: "payment.capture", window_seconds: 300, age_seconds: null,
  threshold: 3, recipients: ["a@example.com"], cooldown_seconds: 3600, notify_on_resolve: true, enabled: true, silenced_until: null, firing: false,
  firing_since: null, last_sent_at: null, last_value: null,
};
const worst = [{ id: "c1", type: "payment.capture", status: "exception", error: "<b>HTTP 503</b>", since: new Date("2026-01-01T00:00:00Z") }];

describe("alert email", () => {
  it("says what fired, against what, where to look; escapes every value in HTML", () => {
    const m = renderAlert(rule, "firing", 4, worst, "https://c.example/");
    expect(m.subject).toBe(`[FIRING] Pay <script>alert("x")</script>`);
    expect(m.text).toContain("commands of type payment.capture that entered exception in the last 300 s is 4, at or above the threshold of 3");
    expect(m.text).toContain("c1  payment.capture  exception  since 2026-01-01T00:00:00.000Z  — <b>HTTP 503</b>");
    expect(m.html).not.toContain("<script>");
    expect(m.html).toContain("&lt;script&gt;");
    expect(m.html).toContain("&lt;b&gt;HTTP 503&lt;/b&gt;");
    expect(m.html).toContain('href="https://c.example/commands/c1"');
    expect(consoleLink("https://c.example", rule)).toBe("https://c.example/commands?status=exception&type=payment.capture");
    expect(renderAlert(rule, "resolved", 1, worst, "https://c.example").subject).toMatch(/^\[RESOLVED\] /);
    expect(renderAlert({ ...rule, kind: "rate", threshold: 0.25 }, "firing", 0.5, [], "https://c.example").text).toContain("is 50.0%, at or above the threshold of 25.0%");
  });
});
