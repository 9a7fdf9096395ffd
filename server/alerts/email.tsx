// Alert emails: plain text and HTML (rendered with React's static renderer,
// which escapes every value), subject "[FIRING] <rule>" or "[RESOLVED] <rule>".
import { renderToStaticMarkup } from "react-dom/server";
import type { RuleRow, Worst } from "../db/alerts";

export type AlertKind = "firing" | "repeat" | "resolved" | "test";

const describeRule = (r: RuleRow): string => {
  const scope = r.type ? ` of type ${r.type}` : "";
  switch (r.kind) {
    case "count":
      return `commands${scope} that entered ${r.states.join("/")} in the last ${r.window_seconds} s`;
    case "stuck":
      return `commands${scope} in ${r.states.join("/")} for longer than ${r.age_seconds} s`;
    case "rate":
      return `share of failed + exception among commands${scope} finished in the last ${r.window_seconds} s`;
    case "backlog":
      return `commands${scope} pending or retrying whose time has come`;
  }
};

const fmtValue = (r: RuleRow, v: number) => (r.kind === "rate" ? `${(v * 100).toFixed(1)}%` : String(Math.round(v)));

/** The console's filtered list for this rule. */
export function consoleLink(publicUrl: string, r: RuleRow): string {
  const q = new URLSearchParams();
  const states = r.kind === "backlog" ? ["pending", "retrying"] : r.kind === "rate" ? ["failed", "exception"] : r.states;
  if (states.length) q.set("status", states.join(","));
  if (r.type) q.set("type", r.type);
  return `${publicUrl.replace(/\/$/, "")}/commands?${q}`;
}

export function renderAlert(r: RuleRow, kind: AlertKind, value: number, worst: Worst[], publicUrl: string) {
  const tag = kind === "resolved" ? "[RESOLVED]" : kind === "test" ? "[TEST]" : "[FIRING]";
  const subject = `${tag} ${r.name}`;
  const what = describeRule(r);
  const headline =
    kind === "resolved"
      ? `Resolved: ${what} is ${fmtValue(r, value)}, below the threshold of ${fmtValue(r, r.threshold)}.`
      : kind === "test"
        ? `This is a test of the rule "${r.name}": ${what} is now ${fmtValue(r, value)} (threshold ${fmtValue(r, r.threshold)}).`
        : `${what} is ${fmtValue(r, value)}, at or above the threshold of ${fmtValue(r, r.threshold)}.`;
  const link = consoleLink(publicUrl, r);
  const lines = worst.map((w) => `- ${w.id}  ${w.type}  ${w.status}  since ${w.since.toISOString()}${w.error ? `  — ${w.error}` : ""}`);
  const text = [
    headline,
    "",
    `Rule: ${r.name} (${r.kind})`,
    `Value: ${fmtValue(r, value)}   Threshold: ${fmtValue(r, r.threshold)}`,
    ...(r.window_seconds ? [`Window: ${r.window_seconds} s`] : []),
    ...(kind !== "resolved" && lines.length ? ["", "Worst commands:", ...lines] : []),
    "",
    `Open in the console: ${link}`,
  ].join("\n");
  const html =
    "<!doctype html>" +
    renderToStaticMarkup(
      <html>
        <body style={{ fontFamily: "system-ui, sans-serif", color: "#0f172a", lineHeight: 1.5 }}>
          <h2 style={{ margin: "0 0 8px", color: kind === "resolved" ? "#15803d" : "#b91c1c" }}>{subject}</h2>
          <p>{headline}</p>
          <table style={{ borderCollapse: "collapse" }}>
            <tbody>
              <tr><td style={{ paddingRight: 16, color: "#64748b" }}>Value</td><td><b>{fmtValue(r, value)}</b></td></tr>
              <tr><td style={{ paddingRight: 16, color: "#64748b" }}>Threshold</td><td>{fmtValue(r, r.threshold)}</td></tr>
              {r.window_seconds ? <tr><td style={{ paddingRight: 16, color: "#64748b" }}>Window</td><td>{r.window_seconds} s</td></tr> : null}
            </tbody>
          </table>
          {kind !== "resolved" && worst.length > 0 ? (
            <>
              <h3 style={{ marginBottom: 4 }}>Worst commands</h3>
              <table style={{ borderCollapse: "collapse", fontSize: 13 }}>
                <thead><tr>{["Command", "Type", "State", "Since", "Last error"].map((h) => <th key={h} style={{ textAlign: "left", padding: "4px 8px", borderBottom: "1px solid #e2e8f0" }}>{h}</th>)}</tr></thead>
                <tbody>
                  {worst.map((w) => (
                    <tr key={w.id}>
                      <td style={{ padding: "4px 8px" }}><a href={`${publicUrl.replace(/\/$/, "")}/commands/${w.id}`}>{w.id}</a></td>
                      <td style={{ padding: "4px 8px" }}>{w.type}</td>
                      <td style={{ padding: "4px 8px" }}>{w.status}</td>
                      <td style={{ padding: "4px 8px" }}>{w.since.toISOString()}</td>
                      <td style={{ padding: "4px 8px" }}>{w.error ?? ""}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </>
          ) : null}
          <p><a href={link}>Open these commands in the console</a></p>
        </body>
      </html>,
    );
  return { subject, text, html };
}
