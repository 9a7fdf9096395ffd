// The alert email (react-email): one template for the HTML part and, through
// @react-email/render's plain-text conversion, the text part. React escapes
// every value. Only the worker renders (server/alerts/email.ts): nothing the
// web process loads imports this folder, so that react-dom/server stays out of
// its bundles (Next.js refuses a static import of it in the App Router; the
// render package's dynamic one builds, but a request should not render mail).
import { Body, Container, Head, Heading, Html, Link, Preview, Section, Text } from "@react-email/components";
import { render, toPlainText } from "@react-email/render";
import type { AlertKind } from "../format";

export type AlertEmailProps = {
  kind: AlertKind;
  subject: string;
  headline: string;
  rule: { name: string; kind: string };
  value: string;
  threshold: string;
  windowSeconds: number | null;
  /** Shown unless the alert is a resolution. */
  worst: { id: string; href: string; type: string; status: string; since: string; error: string | null }[];
  /** Circuit rules: the circuit breakers open or half-open (shown unless the alert is a resolution). */
  circuits?: { scope: string; state: string; since: string }[];
  /** The console's filtered list of the rule's commands. */
  link: string;
};

const muted = { color: "#64748b", paddingRight: "16px" };
const cell = { padding: "4px 8px", textAlign: "left" as const, verticalAlign: "top" as const };
const nowrap = { ...cell, whiteSpace: "nowrap" as const };
const head = { ...cell, borderBottom: "1px solid #e2e8f0" };

/**
 * Elements that read differently in the text part carry the line they stand
 * for in data-text (see TEXT_OPTIONS); HTML-only ones are skipped in text.
 */
function AlertEmail(p: AlertEmailProps) {
  const worst = p.kind !== "resolved" && p.worst.length > 0;
  const circuits = p.kind !== "resolved" ? (p.circuits ?? []) : [];
  return (
    <Html lang="en">
      <Head />
      <Preview>{p.headline}</Preview>
      <Body
        style={{ fontFamily: "system-ui, sans-serif", color: "#0f172a", lineHeight: 1.5, backgroundColor: "#ffffff" }}
      >
        <Container style={{ maxWidth: "880px", margin: "0", padding: "8px" }}>
          <Heading
            as="h2"
            data-skip-in-text="true"
            style={{ margin: "0 0 8px", color: p.kind === "resolved" ? "#15803d" : "#b91c1c" }}
          >
            {p.subject}
          </Heading>
          <Text style={{ fontSize: "16px", lineHeight: "24px" }}>{p.headline}</Text>
          <Section>
            <table style={{ borderCollapse: "collapse" }}>
              <tbody>
                <tr data-text={`Rule: ${p.rule.name} (${p.rule.kind})`}>
                  <td style={muted}>Rule</td>
                  <td>
                    {p.rule.name} ({p.rule.kind})
                  </td>
                </tr>
                <tr data-text={`Value: ${p.value}   Threshold: ${p.threshold}`}>
                  <td style={muted}>Value</td>
                  <td>
                    <b>{p.value}</b>
                  </td>
                </tr>
                <tr data-skip-in-text="true">
                  <td style={muted}>Threshold</td>
                  <td>{p.threshold}</td>
                </tr>
                {p.windowSeconds ? (
                  <tr data-text={`Window: ${p.windowSeconds} s`}>
                    <td style={muted}>Window</td>
                    <td>{p.windowSeconds} s</td>
                  </tr>
                ) : null}
              </tbody>
            </table>
          </Section>
          {worst ? (
            <Section>
              <Heading as="h3" data-text="Worst commands:" style={{ marginBottom: "4px" }}>
                Worst commands
              </Heading>
              <table style={{ borderCollapse: "collapse", fontSize: "13px" }}>
                <thead data-skip-in-text="true">
                  <tr>
                    {["Command", "Type", "State", "Since", "Last error"].map((h) => (
                      <th key={h} style={head}>
                        {h}
                      </th>
                    ))}
                  </tr>
                </thead>
                <tbody>
                  {p.worst.map((w) => (
                    <tr
                      key={w.id}
                      data-text={`- ${w.id}  ${w.type}  ${w.status}  since ${w.since}${w.error ? `  — ${w.error}` : ""}`}
                    >
                      <td style={nowrap}>
                        <Link href={w.href}>{w.id}</Link>
                      </td>
                      <td style={cell}>{w.type}</td>
                      <td style={cell}>{w.status}</td>
                      <td style={nowrap}>{w.since}</td>
                      <td style={cell}>{w.error ?? ""}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </Section>
          ) : null}
          {circuits.length ? (
            <Section>
              <Heading as="h3" data-text="Circuit breakers:" style={{ marginBottom: "4px" }}>
                Circuit breakers
              </Heading>
              <table style={{ borderCollapse: "collapse", fontSize: "13px" }}>
                <thead data-skip-in-text="true">
                  <tr>
                    {["Scope", "State", "Since"].map((h) => (
                      <th key={h} style={head}>
                        {h}
                      </th>
                    ))}
                  </tr>
                </thead>
                <tbody>
                  {circuits.map((c) => (
                    <tr key={c.scope} data-text={`- ${c.scope}  ${c.state}  since ${c.since}`}>
                      <td style={nowrap}>{c.scope}</td>
                      <td style={cell}>{c.state}</td>
                      <td style={nowrap}>{c.since}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </Section>
          ) : null}
          <Text data-text={`Open in the console: ${p.link}`}>
            <Link href={p.link}>
              {p.rule.kind === "circuit" ? "Open flow control in the console" : "Open these commands in the console"}
            </Link>
          </Text>
        </Container>
      </Body>
    </Html>
  );
}

type Builder = {
  openBlock(o: { leadingLineBreaks: number }): void;
  addLiteral(s: string): void;
  closeBlock(o: { trailingLineBreaks: number }): void;
};
type Elem = { attribs: Record<string, string> };

/** The text part: paragraphs as blocks, and each element with a data-text attribute as that one line. */
const TEXT_OPTIONS = {
  formatters: {
    textLine: (
      elem: Elem,
      _walk: unknown,
      builder: Builder,
      opts: { leadingLineBreaks?: number; trailingLineBreaks?: number },
    ) => {
      builder.openBlock({ leadingLineBreaks: opts.leadingLineBreaks ?? 1 });
      builder.addLiteral(elem.attribs["data-text"] ?? "");
      builder.closeBlock({ trailingLineBreaks: opts.trailingLineBreaks ?? 1 });
    },
  },
  selectors: [
    { selector: "[data-text]", format: "textLine" },
    { selector: "h3[data-text]", format: "textLine", options: { leadingLineBreaks: 2 } },
    { selector: "p[data-text]", format: "textLine", options: { leadingLineBreaks: 2, trailingLineBreaks: 2 } },
  ],
};

export async function renderAlertEmail(p: AlertEmailProps): Promise<{ html: string; text: string }> {
  const html = await render(<AlertEmail {...p} />);
  return { html, text: toPlainText(html, TEXT_OPTIONS) };
}
