// An alert webhook made in the console, in a real browser (Chromium through
// playwright-core), against the real web process and a real worker process
// (which evaluates the rules and posts the webhooks) with a real webhook
// receiver on loopback: an admin creates a rule with a webhook and no email,
// sees its secret once, the worker's POSTs arrive signed with it (the first
// answered 500, retried), and the page shows the channel's last delivery and
// every try in the history. Assertions wait on the page and on the receiver.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ChildProcess } from "node:child_process";
import { mkdirSync } from "node:fs";
import path from "node:path";
import type { Page } from "playwright-core";
import { buildIfNeeded } from "../../scripts/build-if-needed";
import { browserAvailable, launchBrowser, signIn, spawnWeb, stopWeb, waitHealthy } from "../helpers/web";
import { createTestDb, type TestDb } from "../helpers/db";
import { freePort, runWorker, type Proc } from "../helpers/proc";
import { startWebhookSink, verifies, type WebhookSink } from "../helpers/webhook";
import { newToken } from "../helpers/api";
import { createUser } from "../../server/auth/users";
import { directIntake, submit } from "../../server/commands/submit";
import { registry } from "../../server/command-types";
import { moveTo } from "../helpers/fixtures";

const SHOTS = path.resolve("docs/screenshots");
const admin = { email: "admin@example.com", password: "admin-password-0001", role: "admin" as const };
const RULE = "Ledger exceptions to chat";

let t: TestDb;
let web: ChildProcess;
let worker: Proc;
let sink: WebhookSink;
let base: string;
let page: Page;
let browser: Awaited<ReturnType<typeof launchBrowser>> | undefined;

describe.runIf(browserAvailable)("an alert webhook made in the console, in a real browser", () => {
  beforeAll(async () => {
    buildIfNeeded(path.resolve("."));
    t = await createTestDb();
    await createUser(t.db, admin);
    // three ledger postings that ended in exception just now: a count rule on them fires
    const client = await newToken(t.db, "client", "ledger-service");
    for (let i = 1; i <= 3; i++) {
      const { id } = await submit(directIntake(t.db, registry), client.id, {
        type: "http",
        payload: { method: "POST", url: "https://ledger.example/api/postings", body: { order: 4000 + i } },
        idempotencyKey: `ledger-${i}`,
        runAt: "2999-01-01T00:00:00Z",
      });
      await moveTo(t.db, id, ["running", "exception"]);
    }
    sink = await startWebhookSink();
    sink.plan([500]); // the first POST fails: retried
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    // The receiver is on loopback: HTTP_ALLOWED_HOSTS names it (unset, loopback is refused).
    const env = { DATABASE_URL: t.url, PUBLIC_URL: base, HTTP_ALLOWED_HOSTS: "127.0.0.1" };
    web = spawnWeb(port, { ...env, LOG_LEVEL: "warn" });
    worker = runWorker({ ...env, ALERT_EVAL_MS: "500", LOG_LEVEL: "info" });
    await Promise.all([waitHealthy(base, web), worker.waitFor(/worker started/)]);
    mkdirSync(SHOTS, { recursive: true });
    browser = await launchBrowser();
    ({ page } = browser);
  }, 300_000);

  afterAll(async () => {
    await browser?.close();
    if (worker) {
      worker.child.kill("SIGTERM");
      await worker.exited;
    }
    stopWeb(web);
    await sink?.close();
    await t?.drop();
  });

  it("creates a webhook rule in the form, shows its secret once, and the signed, retried deliveries on the page", async () => {
    await signIn(page, base, admin.email, admin.password, "/alerts");
    const form = page.getByRole("form", { name: "New rule" });
    await form.getByLabel("Name").fill(RULE);
    await form.getByLabel("Threshold").fill("3");
    // a webhook that is not http(s), and no recipient: refused next to the field, nothing stored
    await form.getByLabel("Webhooks").fill(`${sink.url}/chat\nftp://chat.example/hook`);
    await form.getByRole("button", { name: "Create rule" }).click();
    await form
      .locator("#rule-webhooks-error")
      .getByText("ftp://chat.example/hook: must be an http:// or https:// URL")
      .waitFor();
    expect((await t.db.pool.query(`SELECT 1 FROM alert_rules`)).rowCount).toBe(0);
    await form.getByLabel("Webhooks").fill(`${sink.url}/chat`);
    await form.getByRole("button", { name: "Create rule" }).click();

    // the secret, this once, with the hint to copy it
    const shown = page.getByRole("region", { name: "Webhook secret" });
    await shown.getByText("Webhook secret: copy it now, it is shown only once").waitFor();
    await shown.getByRole("button", { name: "Copy webhook secret" }).waitFor();
    const secret = (await shown.getByLabel("Webhook secret").textContent())!.trim();
    expect(secret).toMatch(/^whsec_[\w-]{43}$/);

    // the worker fires the rule: the first POST is answered 500, the second 200, both signed with that secret
    const [first, second] = await sink.waitFor(2, 30_000);
    for (const r of [first!, second!]) {
      expect(r.path).toBe("/chat");
      expect(verifies(r.raw, r.headers["x-conveyor-signature"] as string, secret)).toBe(true);
    }
    const { rows } = await t.db.pool.query(`SELECT id FROM alert_rules WHERE name = $1`, [RULE]);
    expect(second!.body).toMatchObject({
      rule: { id: rows[0].id, name: RULE, kind: "count" },
      status: "firing",
      value: 3,
      threshold: 3,
      url: `${base}/alerts?rule=${rows[0].id}`,
    });
    expect(second!.body.text).toMatch(/^\[FIRING\] Ledger exceptions to chat: commands that entered exception/);

    // the rule's channel and its last delivery; the history with both tries
    const rule = page.getByRole("rowgroup", { name: RULE });
    const channel = rule.getByTestId("rule-channel");
    await channel.getByText(`${sink.url}/chat`).waitFor();
    await channel.getByText(/^firing, sent /).waitFor();
    const entry = page
      .getByRole("list", { name: "Alert history" })
      .locator("[data-testid=history-entry][data-kind=firing]")
      .filter({ hasText: RULE });
    const delivery = entry.locator("[data-testid=delivery][data-channel=webhook]");
    await delivery.getByText(/^sent /).waitFor();
    await delivery.getByText("2 tries").click();
    const tries = delivery.getByTestId("delivery-try");
    await expect.poll(() => tries.count()).toBe(2);
    expect(await tries.nth(0).textContent()).toMatch(/#1.*HTTP 500.*failed/);
    expect(await tries.nth(1).textContent()).toMatch(/#2.*HTTP 200.*delivered/);
    await entry.getByText("Show the webhook payload").click();
    await entry.getByText(`"status": "firing"`).waitFor();

    await page.evaluate(() => window.scrollTo(0, 0));
    await page.screenshot({ path: path.join(SHOTS, "alerts-webhook.png"), fullPage: true });

    // "Send test" reaches the webhook too
    await rule.getByRole("button", { name: "Send test" }).click();
    await rule.getByRole("status").getByText("Test queued for 1 webhook").waitFor();
    const [, , test] = await sink.waitFor(3, 30_000);
    expect(test!.body).toMatchObject({ test: true, status: "firing" });
    expect(verifies(test!.raw, test!.headers["x-conveyor-signature"] as string, secret)).toBe(true);

    // once dismissed (or after a reload) the secret is nowhere on the page
    await shown.getByRole("button", { name: "I have stored it" }).click();
    await expect.poll(() => page.getByRole("region", { name: "Webhook secret" }).count()).toBe(0);
    await page.reload();
    await page.getByRole("rowgroup", { name: RULE }).waitFor();
    expect(await page.content()).not.toContain(secret);
  });
});
