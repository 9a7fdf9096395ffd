// A batch's page in a real browser against the real web process, with a
// worker beside it: a batch submitted over the API finishes with failures and
// exceptions; the page shows its progress, counts, callback and commands (the
// state tabs filter them); the overview lists it; a command's page links to
// it; an operator retries the batch's failed and exception commands from the
// page and sees it become done again, with a second callback. Assertions wait
// on the page, never on the clock.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ChildProcess } from "node:child_process";
import { mkdirSync } from "node:fs";
import path from "node:path";
import type { Page } from "playwright-core";
import { buildIfNeeded } from "../../scripts/build-if-needed";
import { browserAvailable, launchBrowser, signIn, spawnWeb, stopWeb, waitHealthy } from "../helpers/web";
import { createTestDb, type TestDb } from "../helpers/db";
import { freePort } from "../helpers/proc";
import { startBackend, type Backend } from "../helpers/backend";
import { startTestWorker, waitUntil, type TestWorker } from "../helpers/engine";
import { client, newToken } from "../helpers/api";
import { createUser } from "../../server/auth/users";
import { registry } from "../../server/command-types";
import { shortId } from "../../server/engine/short-id";

const SHOTS = path.resolve("docs/screenshots");
const operator = { email: "olga.operator@example.com", password: "operator-password-01", role: "operator" as const };

let t: TestDb;
let web: ChildProcess;
let base: string;
let page: Page;
let browser: Awaited<ReturnType<typeof launchBrowser>> | undefined;
let backend: Backend;
let worker: TestWorker | undefined;
let batchId: string;
let firstId: string;

describe.runIf(browserAvailable)("a batch's page in a real browser", () => {
  beforeAll(async () => {
    buildIfNeeded(path.resolve("."));
    t = await createTestDb();
    await createUser(t.db, operator);
    backend = await startBackend();
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    web = spawnWeb(port, { DATABASE_URL: t.url, LOG_LEVEL: "warn", HTTP_ALLOWED_HOSTS: "127.0.0.1" });
    await waitHealthy(base, web);

    // 40 settlements: 4 refused by the ledger (422: failed), 3 that meet an outage with one try each (exception).
    let ledgerDown = true;
    backend.chooser((key) =>
      key.endsWith("-refused")
        ? { kind: "status", status: 422, body: { error: "account closed" } }
        : key.endsWith("-outage") && ledgerDown
          ? { kind: "status", status: 503 }
          : { kind: "ok" },
    );
    const api = client(base, (await newToken(t.db, "client", "settlement-service")).token);
    const commands = Array.from({ length: 40 }, (_, i) => ({
      type: "http",
      payload: { url: `${backend.url}/do/settle-${i}${i % 10 === 3 ? "-refused" : i % 13 === 5 ? "-outage" : ""}` },
      retry: { maxAttempts: 1 },
    }));
    const r = await api.mutation("intake.submitBatch", {
      commands,
      batch: { name: "Nightly settlement 2026-12-02", callbackUrl: `${backend.url}/callback` },
    });
    expect(r.status, JSON.stringify(r.error)).toBe(200);
    batchId = r.data.batchId;
    firstId = r.data.receipts[0].id;
    worker = await startTestWorker(t.db, t.url, registry);
    await waitUntil(
      async () => (await t.db.pool.query(`SELECT done FROM batches WHERE id = $1`, [batchId])).rows[0].done,
      "the batch to be done",
    );
    ledgerDown = false;
    mkdirSync(SHOTS, { recursive: true });
    browser = await launchBrowser();
    ({ page } = browser);
  }, 300_000);

  afterAll(async () => {
    await browser?.close();
    stopWeb(web);
    await worker?.close();
    await backend?.close();
    await t?.drop();
  });

  it("shows progress, counts, the callback and the batch's commands; the overview and a command link to it", async () => {
    await signIn(page, base, operator.email, operator.password, "/");
    const recent = page.getByRole("list", { name: "Recent batches" });
    await recent.getByText("Nightly settlement 2026-12-02").click();
    await page.waitForURL(`**/batches/${batchId}`);
    await page.getByRole("heading", { name: "Nightly settlement 2026-12-02" }).waitFor();
    expect(await page.getByTestId("batch-done").first().textContent()).toBe("Done");
    expect(await page.getByTestId("batch-at-rest").textContent()).toBe("40");
    const counts = page.getByRole("list", { name: "Commands per state" });
    expect(await counts.getByTestId("count-succeeded").textContent()).toBe("33");
    expect(await counts.getByTestId("count-failed").textContent()).toBe("4");
    expect(await counts.getByTestId("count-exception").textContent()).toBe("3");
    expect(await page.getByRole("progressbar").getAttribute("aria-valuenow")).toBe("40");
    await page.getByRole("list", { name: "Callback deliveries" }).getByText("delivered").waitFor();
    await page.getByText("settlement-service").first().waitFor();

    // Its commands, with the commands page's state tabs (counted from the batch).
    const rows = page.locator("tbody tr");
    await expect.poll(() => rows.count()).toBe(40);
    await page.getByRole("tab", { name: /Failed/ }).click();
    await expect.poll(() => rows.count()).toBe(4);
    await page.screenshot({ path: path.join(SHOTS, "batch.png"), fullPage: true });
    await page.getByRole("tab", { name: /^All/ }).click();
    await expect.poll(() => rows.count()).toBe(40);

    // A command's page names its batch.
    await page.goto(`${base}/commands/${firstId}`);
    await page.getByRole("link", { name: shortId(batchId) }).click();
    await page.waitForURL(`**/batches/${batchId}`);
    await page.getByRole("heading", { name: "Nightly settlement 2026-12-02" }).waitFor();
  });

  it("an operator retries the batch's failed and exception commands: it opens, then is done again with a new callback", async () => {
    await page.goto(`${base}/batches/${batchId}`);
    await page.getByText("7 failed or in exception:").waitFor();
    await page
      .getByRole("group", { name: "Actions" })
      .first()
      .getByRole("button", { name: "Retry", exact: true })
      .click();
    const dialog = page.getByRole("dialog");
    await dialog.getByLabel("Reason").fill("Ledger is back; accounts reopened");
    // The ledger takes the refused ones now too.
    backend.chooser(() => ({ kind: "ok" }));
    await dialog.getByRole("button", { name: "Retry", exact: true }).click();
    await dialog.getByText("7 updated").waitFor();
    await dialog.getByRole("button", { name: "Done" }).click();
    await expect
      .poll(() => page.getByRole("list", { name: "Commands per state" }).getByTestId("count-succeeded").textContent(), {
        timeout: 30_000,
      })
      .toBe("40");
    await page.getByTestId("batch-done").first().getByText("Done").waitFor();
    await page.getByRole("heading", { name: "Callbacks (2)" }).waitFor();
    const sent = () => backend.requests.filter((r) => r.path === "/callback" && r.headers["x-batch-id"] === batchId);
    await waitUntil(() => sent().length === 2, "the second callback");
    expect(JSON.parse(sent()[1]!.body).counts).toMatchObject({ succeeded: 40, failed: 0, exception: 0 });
  });
});
