// Edit & retry (DESIGN §9) in a real browser, against the real web process, a
// real worker and a real backend on loopback: an operator opens a failed
// command, the dialog offers its payload (secrets masked), a JSON syntax error
// and a schema error are shown at the Payload field before anything is sent,
// the fixed payload is confirmed with a reason, and the command runs again
// under the same id at the new URL (the masked secret kept) and succeeds; its
// audit trail shows what changed. Screenshots: docs/screenshots/edit-retry*.png.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ChildProcess } from "node:child_process";
import { mkdirSync } from "node:fs";
import path from "node:path";
import type { Page } from "playwright-core";
import { buildIfNeeded } from "../../scripts/build-if-needed";
import { browserAvailable, launchBrowser, signIn, spawnWeb, stopWeb, waitHealthy } from "../helpers/web";
import { createTestDb, type TestDb } from "../helpers/db";
import { freePort } from "../helpers/proc";
import { newToken } from "../helpers/api";
import { startBackend, type Backend } from "../helpers/backend";
import { startTestWorker, waitForStatus, type TestWorker } from "../helpers/engine";
import { createUser } from "../../server/auth/users";
import { directIntake, submit } from "../../server/commands/submit";
import { registry } from "../../server/command-types";

const SHOTS = path.resolve("docs/screenshots");
const operator = { email: "oliver.operator@example.com", password: "operator-password-01", role: "operator" as const };
const SECRET = "Bearer refunds-api-key-7f3a9c";

let t: TestDb;
let web: ChildProcess;
let base: string;
let page: Page;
let browser: Awaited<ReturnType<typeof launchBrowser>> | undefined;
let backend: Backend;
let worker: TestWorker | undefined;
let failedId: string;

describe.runIf(browserAvailable)("Edit & retry in a real browser", () => {
  beforeAll(async () => {
    buildIfNeeded(path.resolve("."));
    t = await createTestDb();
    await createUser(t.db, operator);
    backend = await startBackend();
    worker = await startTestWorker(t.db, t.url, registry);
    // A refund sent to an account the backend does not know: a business failure (422), final.
    backend.plan("refund-4411", [{ kind: "status", status: 422, body: { error: "unknown account ACC-0001" } }]);
    const c = await newToken(t.db, "client", "billing-service");
    failedId = (
      await submit(directIntake(t.db, registry), c.id, {
        type: "http",
        payload: {
          url: `${backend.url}/do/refund-4411`,
          headers: { Authorization: SECRET },
          body: { refund: 4411, account: "ACC-0001", amount: 25 },
        },
        idempotencyKey: "refund-4411",
      })
    ).id;
    await waitForStatus(t.db, failedId, ["failed"]);
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    web = spawnWeb(port, { DATABASE_URL: t.url, LOG_LEVEL: "warn" });
    await waitHealthy(base, web);
    mkdirSync(SHOTS, { recursive: true });
    browser = await launchBrowser();
    page = browser.page;
    await signIn(page, base, operator.email, operator.password, "/commands");
  }, 300_000);

  afterAll(async () => {
    await browser?.close();
    stopWeb(web);
    await worker?.close();
    await backend?.close();
    await t?.drop();
  });

  it("shows JSON and schema errors at the Payload field before sending, then runs the fixed payload under the same id", async () => {
    await page.goto(`${base}/commands/${failedId}`);
    await page.getByTestId("command-status").getByText("Failed").waitFor();
    const open = page
      .getByRole("group", { name: "Actions" })
      .getByRole("button", { name: "Edit & retry", exact: true });
    await expect.poll(() => open.isEnabled()).toBe(true);
    await open.click();

    const dialog = page.getByRole("dialog");
    const payload = dialog.getByRole("textbox", { name: "Payload", exact: true });
    await payload.waitFor();
    // Prefilled with the current payload, its secret masked.
    const prefilled = JSON.parse(await payload.inputValue());
    expect(prefilled).toEqual({
      url: `${backend.url}/do/refund-4411`,
      headers: { Authorization: "Bearer ••••" },
      body: { refund: 4411, account: "ACC-0001", amount: 25 },
    });
    expect(await payload.getAttribute("aria-invalid")).toBeNull();

    // A comma missing after the url: the syntax error is shown at the field, with its line and column.
    const lines = [
      "{",
      `  "url": "${backend.url}/do/refund-4411-b"`,
      `  "headers": { "Authorization": "Bearer ••••" },`,
      `  "body": { "refund": 4411, "account": "ACC-0002", "amount": 25 }`,
      "}",
    ];
    await payload.fill(lines.join("\n"));
    await dialog.getByText(/not valid JSON: .*\(line 3, column 3\)/).waitFor();
    expect(await payload.getAttribute("aria-invalid")).toBe("true");
    await dialog.getByLabel("Reason").fill("Customer moved the refund to account ACC-0002");
    // Confirming with the error sends nothing.
    await dialog.getByRole("button", { name: "Edit & retry", exact: true }).click();
    await dialog.getByText(/not valid JSON/).waitFor();
    await page.screenshot({ path: path.join(SHOTS, "edit-retry.png") });
    expect((await t.db.pool.query(`SELECT status FROM commands WHERE id = $1`, [failedId])).rows[0].status).toBe(
      "failed",
    );

    // Valid JSON, but a URL the http type refuses: its schema's message, at the field, before sending.
    lines[1] = `  "url": "ftp://${new URL(backend.url).host}/do/refund-4411-b",`;
    await payload.fill(lines.join("\n"));
    await dialog.getByText("url: must be an http:// or https:// URL").waitFor();
    expect(await dialog.getByText(/not valid JSON/).count()).toBe(0);

    // Fixed: the dialog says what will change, and the confirmed edit runs.
    lines[1] = `  "url": "${backend.url}/do/refund-4411-b",`;
    await payload.fill(lines.join("\n"));
    await dialog.getByText(/^Changes body, url\./).waitFor();
    expect(await payload.getAttribute("aria-invalid")).toBeNull();
    await dialog.getByRole("button", { name: "Edit & retry", exact: true }).click();
    await dialog.getByRole("status").getByText("1 updated").waitFor();
    await dialog.getByRole("status").getByText("0 skipped").waitFor();
    await dialog.getByRole("button", { name: "Done" }).click();

    await page.getByTestId("command-status").getByText("Succeeded").waitFor();
    const sent = backend.requests.filter((r) => r.path === "/do/refund-4411-b");
    expect(sent).toHaveLength(1);
    expect(sent[0]!.headers["x-command-id"]).toBe(failedId);
    expect(sent[0]!.headers["idempotency-key"]).toBe(failedId);
    expect(sent[0]!.headers.authorization).toBe(SECRET); // the masked secret, left as it was, was kept
    expect(JSON.parse(sent[0]!.body)).toEqual({ refund: 4411, account: "ACC-0002", amount: 25 });
    const row = (await t.db.pool.query(`SELECT id, idempotency_key FROM commands WHERE id = $1`, [failedId])).rows[0];
    expect(row).toEqual({ id: failedId, idempotency_key: "refund-4411" });

    // The audit trail: the edit, its reason, and the payload before and after (masked).
    const trail = page.getByRole("list", { name: "Audit trail" });
    await trail.getByText("editAndRetry").waitFor();
    await trail.getByText("“Customer moved the refund to account ACC-0002”").waitFor();
    const change = trail.getByTestId("edit-change");
    await change.getByText("Changed body, url: before and after").click();
    await change.getByText(/"account": "ACC-0001"/).waitFor();
    await change.getByText(/"account": "ACC-0002"/).waitFor();
    expect(await page.getByText("refunds-api-key").count()).toBe(0);
    await page.screenshot({ path: path.join(SHOTS, "edit-retry-done.png"), fullPage: true });
  });

  it("a succeeded command does not offer it, and says why", async () => {
    await page.goto(`${base}/commands/${failedId}`);
    await page.getByTestId("command-status").getByText("Succeeded").waitFor();
    const button = page.getByRole("group", { name: "Actions" }).getByRole("button", { name: "Edit & retry" });
    await expect
      .poll(() => button.getAttribute("title"))
      .toBe("Not available: succeeded: edit & retry applies only to failed, exception, cancelled commands");
    expect(await button.isDisabled()).toBe(true);
  });
});
