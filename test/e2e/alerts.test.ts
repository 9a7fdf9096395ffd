// The alerts page in a real browser (Chromium through playwright-core) against
// the real web process and one real worker process (which evaluates the rules
// and sends the mail), with a real SMTP server on loopback: an admin creates a
// rule, sends a test email that arrives, and sees it in the history; a viewer
// sees the rules without the admin controls. Assertions wait on the page
// (locators) and on the inbox, never on the clock.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ChildProcess } from "node:child_process";
import { mkdirSync } from "node:fs";
import path from "node:path";
import type { BrowserContext, Page } from "playwright-core";
import type { ParsedMail } from "mailparser";
import { buildIfNeeded } from "../../scripts/build-if-needed";
import { browserAvailable, launchBrowser, signIn as signInAs, spawnWeb, stopWeb, waitHealthy } from "../helpers/web";
import { createTestDb, type TestDb } from "../helpers/db";
import { freePort, runWorker, type Proc } from "../helpers/proc";
import { startSmtp, type Inbox } from "../helpers/smtp";
import { newToken } from "../helpers/api";
import { createUser } from "../../server/auth/users";
import { directIntake, submit } from "../../server/commands/submit";
import { registry } from "../../server/command-types";
import { createRule } from "../../server/alerts/rules";
import { ruleSecrets } from "../helpers/fixtures";

const SHOTS = path.resolve("docs/screenshots");
const users = {
  admin: { email: "admin@example.com", password: "admin-password-0001", role: "admin" as const },
  viewer: { email: "vera.viewer@example.com", password: "viewer-password-0001", role: "viewer" as const },
};
const RULE = "Backlog over 100";

let t: TestDb;
let web: ChildProcess;
let worker: Proc;
let inbox: Inbox;
let base: string;
let ctx: BrowserContext;
let page: Page;
let browser: Awaited<ReturnType<typeof launchBrowser>> | undefined;

/** Waits for a mail matching `pred` (the inbox also gets the seeded rule's firing mail, in any order). */
async function mailMatching(pred: (m: ParsedMail) => boolean): Promise<ParsedMail> {
  for (;;) {
    const found = inbox.mails.find(pred);
    if (found) return found;
    await inbox.waitFor(inbox.mails.length + 1);
  }
}

const toAddresses = (m: ParsedMail) =>
  (Array.isArray(m.to) ? m.to : m.to ? [m.to] : []).flatMap((a) => a.value.map((v) => v.address));

/** Three commands that entered exception just now, and a count rule on them that fires once the worker evaluates it. */
async function seed(db: TestDb["db"]) {
  const client = await newToken(db, "client", "ledger-service");
  const intake = directIntake(db, registry);
  const ids: string[] = [];
  for (let i = 1; i <= 3; i++)
    ids.push(
      (
        await submit(intake, client.id, {
          type: "http",
          payload: { method: "POST", url: "https://ledger.example/api/postings", body: { order: 3000 + i } },
          idempotencyKey: `ledger-${i}`,
        })
      ).id,
    );
  await db.pool.query(
    `UPDATE commands SET status = 'running', lease_id = gen_random_uuid(),
       locked_by = 'worker-a1', locked_until = now() + interval '1 minute'
       WHERE id = ANY($1::uuid[])`,
    [ids],
  );
  await db.pool.query(
    `UPDATE commands SET status = 'exception', lease_id = NULL, locked_by = NULL, locked_until = NULL,
       attempt_count = 3, error = 'timeout after 10000 ms: outcome unknown'
       WHERE id = ANY($1::uuid[])`,
    [ids],
  );
  await createRule(
    db,
    {
      name: "Ledger exceptions",
      kind: "count",
      states: ["exception"],
      windowSeconds: 600,
      threshold: 3,
      recipients: ["ledger-team@example.com"],
      notifyOnResolve: true,
    },
    users.admin.email,
    await ruleSecrets(db),
  );
}

const signIn = (p: Page, who: keyof typeof users, next: string) =>
  signInAs(p, base, users[who].email, users[who].password, next);

describe.runIf(browserAvailable)("alert rules in a real browser", () => {
  beforeAll(async () => {
    buildIfNeeded(path.resolve("."));
    t = await createTestDb();
    for (const u of Object.values(users)) await createUser(t.db, u);
    await seed(t.db);
    inbox = await startSmtp();
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    web = spawnWeb(port, { DATABASE_URL: t.url, SMTP_URL: inbox.url, PUBLIC_URL: base, LOG_LEVEL: "warn" });
    worker = runWorker({
      DATABASE_URL: t.url,
      SMTP_URL: inbox.url,
      PUBLIC_URL: base,
      ALERT_EVAL_MS: "500",
      LOG_LEVEL: "info",
    });
    await Promise.all([waitHealthy(base, web), worker.waitFor(/worker started/)]);
    mkdirSync(SHOTS, { recursive: true });
    browser = await launchBrowser();
    ({ ctx, page } = browser);
  }, 300_000);

  afterAll(async () => {
    await browser?.close();
    if (worker) {
      worker.child.kill("SIGTERM");
      await worker.exited;
    }
    stopWeb(web);
    await inbox?.close();
    await t?.drop();
  });

  it("lets an admin create a rule, send a test email that arrives, and see it in the history", async () => {
    await signIn(page, "admin", "/alerts");
    await page.getByRole("heading", { name: "Alerts" }).waitFor();
    // The seeded rule fires once the worker evaluates it, and its email arrives.
    const seeded = page.getByRole("rowgroup", { name: "Ledger exceptions" });
    await seeded.getByText("≥ 3 commands entered exception in 10 min").waitFor();
    await seeded.getByText(/firing since/).waitFor();
    const firing = await mailMatching((m) => m.subject?.startsWith("[FIRING] Ledger exceptions") ?? false);
    expect(toAddresses(firing)).toEqual(["ledger-team@example.com"]);
    // The row says the email was sent, read from its delivery; so does the history.
    await seeded
      .getByTestId("rule-email")
      .getByText(/^email sent /)
      .waitFor();
    await seeded.getByTestId("rule-email").getByText("last alert (firing)").waitFor();
    const firingEntry = page
      .getByRole("list", { name: "Alert history" })
      .locator("[data-testid=history-entry][data-kind=firing]")
      .filter({ hasText: "Ledger exceptions" });
    await firingEntry
      .getByTestId("delivery")
      .filter({ hasText: "ledger-team@example.com" })
      .getByText(/^sent /)
      .waitFor();
    // Email is configured: no banner.
    expect(await page.getByRole("region", { name: "Email not configured" }).count()).toBe(0);

    // A bad recipient is refused (by the rule schema the server uses too), shown next to its field.
    await page.getByLabel("Name").fill(RULE);
    await page.getByRole("radio", { name: "Backlog" }).check();
    await page.getByLabel("Threshold").fill("100");
    await page.getByLabel("Recipients").fill("oncall@example.com, not-an-email");
    await page.getByRole("button", { name: "Create rule" }).click();
    await page.locator("#rule-recipients-error").getByText("not-an-email: must be an email address").waitFor();

    await page.getByLabel("Recipients").fill("oncall@example.com");
    await page.getByRole("button", { name: "Create rule" }).click();
    const rule = page.getByRole("rowgroup", { name: RULE });
    await rule.getByText("≥ 100 commands pending or retrying and due now").waitFor();
    await rule.getByText("oncall@example.com").waitFor();
    await rule.getByText("threshold ≥ 100").waitFor();
    await expect.poll(() => page.getByLabel("Name").inputValue()).toBe(""); // the form was reset
    const row = await t.db.pool.query(`SELECT kind, threshold, recipients FROM alert_rules WHERE name = $1`, [RULE]);
    expect(row.rows[0]).toMatchObject({ kind: "backlog", threshold: 100, recipients: ["oncall@example.com"] });

    await rule.getByRole("button", { name: "Send test" }).click();
    await rule.getByRole("status").getByText("Test queued for email to oncall@example.com").waitFor();
    const mail = await mailMatching((m) => m.subject?.startsWith("[TEST] ") ?? false);
    expect(mail.subject).toBe(`[TEST] ${RULE}`);
    expect(toAddresses(mail)).toEqual(["oncall@example.com"]);

    // The history shows the test event with its delivery sent.
    const history = page.getByRole("list", { name: "Alert history" });
    const entry = history.locator("[data-testid=history-entry][data-kind=test]").filter({ hasText: RULE });
    await entry.getByText("Test", { exact: true }).waitFor();
    await entry
      .getByTestId("delivery")
      .filter({ hasText: "oncall@example.com" })
      .getByText(/^sent /)
      .waitFor();
    await entry.getByText("Show the message").click();
    await entry.getByText(`Subject: [TEST] ${RULE}`).waitFor();
    await entry.getByText("Show the message").click();

    await page.evaluate(() => window.scrollTo(0, 0));
    await page.screenshot({ path: path.join(SHOTS, "alerts.png") });
  });

  it("shows a viewer the rules and history but none of the admin controls", async () => {
    await ctx.clearCookies();
    await signIn(page, "viewer", "/alerts");
    await page.getByRole("rowgroup", { name: RULE }).getByText("oncall@example.com").waitFor();
    await page.getByRole("list", { name: "Alert history" }).locator("[data-kind=test]").first().waitFor();
    for (const name of ["Create rule", "Send test", "Edit", "Delete", "Disable", "Silence 1 h"])
      expect(await page.getByRole("button", { name, exact: true }).count()).toBe(0);
    expect(await page.getByLabel("Recipients").count()).toBe(0);
  });

  it("lets an admin edit a rule in the form, which says what it refuses next to the field, and saves what was typed", async () => {
    await ctx.clearCookies();
    await signIn(page, "admin", "/alerts");
    const rule = page.getByRole("rowgroup", { name: RULE });
    await rule.getByRole("button", { name: "Edit" }).click();
    const form = page.getByRole("form", { name: "Edit rule" });
    await expect.poll(() => form.getByLabel("Name").inputValue()).toBe(RULE);
    expect(await form.getByLabel("Threshold").inputValue()).toBe("100");
    expect(await form.getByRole("radio", { name: "Backlog" }).isChecked()).toBe(true);
    expect(await form.getByLabel("Recipients").inputValue()).toBe("oncall@example.com");

    // A failure rate over 100 %: refused by the rule schema, next to the threshold; nothing saved.
    await form.getByRole("radio", { name: "Failure rate" }).check();
    await form.getByLabel("Threshold").fill("150");
    await form.getByLabel("Window", { exact: true }).fill("2");
    await form.getByLabel("Window unit").selectOption({ label: "hours" });
    await form.getByRole("button", { name: "Save changes" }).click();
    await form.locator("#rule-threshold-error").getByText("a rate is a share from 0 to 1").waitFor();
    await form.getByText("Check the fields marked above.").waitFor();
    await page.evaluate(() => window.scrollTo(0, 0));
    await page.screenshot({ path: path.join(SHOTS, "alerts-rule-form.png"), fullPage: true });
    expect((await t.db.pool.query(`SELECT kind FROM alert_rules WHERE name = $1`, [RULE])).rows).toEqual([
      { kind: "backlog" },
    ]);

    // Corrected: the error goes as the field changes, and the save stores a share and seconds.
    await form.getByLabel("Threshold").fill("25");
    await expect.poll(() => form.locator("#rule-threshold-error").count()).toBe(0);
    await form.getByRole("button", { name: "Save changes" }).click();
    await rule.getByText("≥ 25% of commands finished in 2 h failed or hit an exception").waitFor();
    const { rows } = await t.db.pool.query(
      `SELECT kind, threshold, window_seconds, states::text[] AS states FROM alert_rules WHERE name = $1`,
      [RULE],
    );
    expect(rows).toEqual([{ kind: "rate", threshold: 0.25, window_seconds: 7200, states: [] }]);
    const audit = await t.db.pool.query(
      `SELECT actor FROM audit_entries WHERE action = 'alert.update' AND details->>'name' = $1`,
      [RULE],
    );
    expect(audit.rows).toEqual([{ actor: users.admin.email }]);
  });
});

describe.runIf(browserAvailable)("alert emails with SMTP_URL unset, in a real browser", () => {
  let db: TestDb;
  let w: ChildProcess;
  let wk: Proc;
  let url: string;
  let b: Awaited<ReturnType<typeof launchBrowser>> | undefined;

  beforeAll(async () => {
    buildIfNeeded(path.resolve("."));
    db = await createTestDb();
    for (const u of Object.values(users)) await createUser(db.db, u);
    await seed(db.db);
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    // Neither process has SMTP_URL: the worker evaluates the rules and keeps the emails.
    w = spawnWeb(port, { DATABASE_URL: db.url, PUBLIC_URL: url, LOG_LEVEL: "warn" });
    wk = runWorker({ DATABASE_URL: db.url, PUBLIC_URL: url, ALERT_EVAL_MS: "500", LOG_LEVEL: "info" });
    await Promise.all([waitHealthy(url, w), wk.waitFor(/worker started/)]);
    b = await launchBrowser();
  }, 300_000);

  afterAll(async () => {
    await b?.close();
    if (wk) {
      wk.child.kill("SIGTERM");
      await wk.exited;
    }
    stopWeb(w);
    await db?.drop();
  });

  it("says a firing rule's email was not sent, and why, on the rule and in the history", async () => {
    const p = b!.page;
    await signInAs(p, url, users.admin.email, users.admin.password, "/alerts");
    await p.getByRole("region", { name: "Email not configured" }).waitFor();
    const seeded = p.getByRole("rowgroup", { name: "Ledger exceptions" });
    await seeded.getByText(/firing since/).waitFor();
    const email = seeded.getByTestId("rule-email");
    await email.getByText("email not sent: SMTP_URL is unset; kept until it is set").waitFor();
    await email.getByText("no email of this rule was ever sent").waitFor();
    expect(await seeded.getByText(/sent \d+ s ago|sent just now/).count()).toBe(0);
    const entry = p
      .getByRole("list", { name: "Alert history" })
      .locator("[data-testid=history-entry][data-kind=firing]")
      .filter({ hasText: "Ledger exceptions" });
    await entry
      .getByTestId("delivery")
      .filter({ hasText: "ledger-team@example.com" })
      .getByText("not sent: SMTP_URL is unset; kept until it is set")
      .waitFor();
    await entry.getByText("Show the message (not sent yet)").waitFor();
    const { rows } = await db.db.pool.query(`SELECT sent_at FROM alert_deliveries`);
    expect(rows).toEqual([{ sent_at: null }]);
    await p.evaluate(() => window.scrollTo(0, 0));
    await p.screenshot({ path: path.join(SHOTS, "alerts-smtp-unset.png") });
  });
});
