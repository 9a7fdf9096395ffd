// Alert emails: plain text and HTML, subject "[FIRING] <rule>" or "[RESOLVED] <rule>".
// Every value put into the HTML goes through esc(). (React's static renderer
// would do the escaping for us, but Next.js refuses react-dom/server in App
// Router server bundles, which reach this module through alerts.testRule.)
import type { RuleRow, Worst } from "../db/alerts";

export type AlertKind = "firing" | "repeat" | "resolved" | "test";

const esc = (v: unknown) =>
  String(v ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);

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
  const base = publicUrl.replace(/\/$/, "");
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
  const showWorst = kind !== "resolved" && worst.length > 0;
  const text = [
    headline,
    "",
    `Rule: ${r.name} (${r.kind})`,
    `Value: ${fmtValue(r, value)}   Threshold: ${fmtValue(r, r.threshold)}`,
    ...(r.window_seconds ? [`Window: ${r.window_seconds} s`] : []),
    ...(showWorst ? ["", "Worst commands:", ...worst.map((w) => `- ${w.id}  ${w.type}  ${w.status}  since ${w.since.toISOString()}${w.error ? `  — ${w.error}` : ""}`)] : []),
    "",
    `Open in the console: ${link}`,
  ].join("\n");
  const td = `style="padding:4px 8px"`;
  const row = (k: string, v: string) => `<tr><td style="padding-right:16px;color:#64748b">${esc(k)}</td><td>${v}</td></tr>`;
  const html = `<!doctype html><html><body style="font-family:system-ui,sans-serif;color:#0f172a;line-height:1.5">
<h2 style="margin:0 0 8px;color:${kind === "resolved" ? "#15803d" : "#b91c1c"}">${esc(subject)}</h2>
<p>${esc(headline)}</p>
<table style="border-collapse:collapse"><tbody>
${row("Value", `<b>${esc(fmtValue(r, value))}</b>`)}${row("Threshold", esc(fmtValue(r, r.threshold)))}${r.window_seconds ? row("Window", `${esc(r.window_seconds)} s`) : ""}
</tbody></table>
${
  showWorst
    ? `<h3 style="margin-bottom:4px">Worst commands</h3>
<table style="border-collapse:collapse;font-size:13px"><thead><tr>${["Command", "Type", "State", "Since", "Last error"].map((h) => `<th style="text-align:left;padding:4px 8px;border-bottom:1px solid #e2e8f0">${h}</th>`).join("")}</tr></thead><tbody>
${worst
  .map((w) => `<tr><td ${td}><a href="${esc(`${base}/commands/${w.id}`)}">${esc(w.id)}</a></td><td ${td}>${esc(w.type)}</td><td ${td}>${esc(w.status)}</td><td ${td}>${esc(w.since.toISOString())}</td><td ${td}>${esc(w.error ?? "")}</td></tr>`)
  .join("\n")}
</tbody></table>`
    : ""
}
<p><a href="${esc(link)}">Open these commands in the console</a></p>
</body></html>`;
  return { subject, text, html };
}
