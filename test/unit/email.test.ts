import { describe, expect, it } from "vitest";
import { renderAlert, consoleLink } from "../../server/alerts/email";
import type { RuleRow } from "../../server/db/alerts";

const rule: RuleRow = {
  id: "r",
  name: `Pay <script>alert("x")</script>`,
  kind: "count",
  states: ["exception"],
  type: "payment.capture",
  window_seconds: 300,
  age_seconds: null,
  percentile: null,
  threshold: 3,
  recipients: ["a@example.com"],
  webhooks: [],
  cooldown_seconds: 3600,
  notify_on_resolve: true,
  enabled: true,
  silenced_until: null,
  firing: false,
  firing_since: null,
  last_sent_at: null,
  last_value: null,
};
const worst = [
  {
    id: "c1",
    type: "payment.capture",
    status: "exception",
    error: "<b>HTTP 503</b>",
    since: new Date("2026-01-01T00:00:00Z"),
  },
];

describe("alert email", () => {
  it("says what fired, against what, where to look; escapes every value in HTML", async () => {
    const m = await renderAlert(rule, "firing", 4, { worst }, "https://c.example/");
    expect(m.subject).toBe(`[FIRING] Pay <script>alert("x")</script>`);
    expect(m.text).toContain(
      "commands of type payment.capture that entered exception in the last 300 s is 4, at or above the threshold of 3",
    );
    expect(m.text).toContain("c1  payment.capture  exception  since 2026-01-01T00:00:00.000Z  — <b>HTTP 503</b>");
    expect(m.html).not.toContain("<script>");
    expect(m.html).toContain("&lt;script&gt;");
    expect(m.html).toContain("&lt;b&gt;HTTP 503&lt;/b&gt;");
    expect(m.html).toContain('href="https://c.example/commands/c1"');
    expect(consoleLink("https://c.example", rule)).toBe(
      "https://c.example/commands?status=exception&type=payment.capture",
    );
    expect((await renderAlert(rule, "resolved", 1, { worst }, "https://c.example")).subject).toMatch(/^\[RESOLVED\] /);
    expect(
      (await renderAlert({ ...rule, kind: "rate", threshold: 0.25 }, "firing", 0.5, { worst: [] }, "https://c.example"))
        .text,
    ).toContain("is 50.0%, at or above the threshold of 25.0%");
  });

  it("never lets a hostile rule name, command type or error become markup in the HTML, whatever the kind of alert", async () => {
    const name = `<script>alert(1)</script><img src=x onerror="alert(2)">`;
    const hostile: RuleRow = { ...rule, name, type: `t"><script>alert(3)</script>` };
    const bad = [
      {
        id: "c1",
        type: `<svg onload=alert(4)>`,
        status: "exception",
        error: `</td><script>alert(5)</script>`,
        since: new Date("2026-01-01T00:00:00Z"),
      },
    ];
    for (const kind of ["firing", "repeat", "resolved", "test"] as const) {
      const m = await renderAlert(hostile, kind, 4, { worst: bad }, "https://c.example");
      // Escaped text holds no "<", so every "<" opens real markup: read each tag and its attributes (values are double-quoted).
      const tags = [...m.html.matchAll(/<([a-zA-Z][\w-]*)((?:\s+[\w-]+(?:="[^"]*")?)*)\s*\/?>/g)];
      expect(m.html.split("<").length - 1).toBe(tags.length + (m.html.match(/<\/|<!/g) ?? []).length);
      const allowed = [
        "html",
        "head",
        "meta",
        "body",
        "div",
        "table",
        "tbody",
        "thead",
        "tr",
        "td",
        "th",
        "h2",
        "h3",
        "p",
        "a",
        "b",
      ];
      expect([...new Set(tags.map((t) => t[1]!.toLowerCase()))].filter((n) => !allowed.includes(n))).toEqual([]);
      expect(
        tags
          .flatMap((t) => [...t[2]!.matchAll(/\s([\w-]+)(?:="[^"]*")?/g)].map((a) => a[1]!))
          .filter((a) => /^on/i.test(a)),
      ).toEqual([]);
      // the name is shown, as text, in the heading and in the facts
      expect(
        m.html.split("&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=&quot;alert(2)&quot;&gt;").length - 1,
      ).toBeGreaterThanOrEqual(2);
      // in the link the type is URL-encoded, so it cannot leave the href attribute
      expect(m.html).toContain(
        `href="https://c.example/commands?status=exception&amp;type=t%22%3E%3Cscript%3Ealert%283%29%3C%2Fscript%3E"`,
      );
      expect(m.subject).toMatch(/^\[(FIRING|RESOLVED|TEST)\] <script>alert\(1\)<\/script>/);
      expect(m.text).not.toContain("&lt;"); // the text part is not HTML: it says the name as it is
    }
  });
});
