// The command page in a real browser while a real worker carries commands
// out against a real backend on loopback: a running command shows its attempt
// in progress; a command with retries, an operator's retry and callbacks shows
// one attempt history, callbacks in their own panel, and counts that agree
// with their labels and with the list; a command of an ordering key says what
// it waits for. Screenshots: docs/screenshots/.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ChildProcess } from "node:child_process";
import { mkdirSync } from "node:fs";
import path from "node:path";
import type { Page } from "playwright-core";
import { buildIfNeeded } from "../../scripts/build-if-needed";
import { browserAvailable, launchBrowser, signIn, spawnWeb, stopWeb, waitHealthy } from "../helpers/web";
import { createTestDb, type TestDb } from "../helpers/db";
import { freePort } from "../helpers/proc";
import { client, newToken } from "../helpers/api";
import { startBackend, type Backend } from "../helpers/backend";
import { startTestWorker, waitForStatus, waitUntil, type TestWorker } from "../helpers/engine";
import { createUser } from "../../server/auth/users";
import { directIntake, submit } from "../../server/commands/submit";
import { registry } from "../../server/command-types";
import { shortId } from "../../server/engine/short-id";

const SHOTS = path.resolve("docs/screenshots");
const viewer = { email: "vera.viewer@example.com", password: "viewer-password-0001", role: "viewer" as const };
const WORKER = "worker-e2e-1";

let t: TestDb;
let web: ChildProcess;
let base: string;
let page: Page;
let browser: Awaited<ReturnType<typeof launchBrowser>> | undefined;
let backend: Backend;
let worker: TestWorker | undefined;
let add: (input: Record<string, unknown>) => Promise<string>;
let adminToken: string;

const shot = (name: string) => page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
const attemptsPanel = () => page.getByTestId("attempts-panel");
const fact = (name: string) => page.getByTestId("facts").locator(`dt:text-is("${name}") + dd`);
/** The cell of a list row under the column named `header`. */
async function cellOf(id: string, header: string) {
  const headers = (await page.getByRole("columnheader").allTextContents()).map((h) => h.trim());
  const row = page.getByRole("row").filter({ has: page.getByRole("link", { name: shortId(id) }) });
  return row.getByRole("cell").nth(headers.indexOf(header));
}
const deliveredCount = async (id: string) =>
  (await t.db.pool.query(`SELECT 1 FROM callback_deliveries WHERE command_id = $1 AND delivered_at IS NOT NULL`, [id]))
    .rowCount;

describe.runIf(browserAvailable)("the command page in a real browser", () => {
  beforeAll(async () => {
    buildIfNeeded(path.resolve("."));
    t = await createTestDb();
    await createUser(t.db, viewer);
    const c = await newToken(t.db, "client", "orders-service");
    adminToken = (await newToken(t.db, "admin", "ops")).token;
    add = async (input) => (await submit(directIntake(t.db, registry), c.id, input)).id;
    backend = await startBackend();
    worker = await startTestWorker(t.db, t.url, registry, { workerId: WORKER });
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    web = spawnWeb(port, { DATABASE_URL: t.url, LOG_LEVEL: "warn" });
    await waitHealthy(base, web);
    mkdirSync(SHOTS, { recursive: true });
    browser = await launchBrowser();
    page = browser.page;
    await signIn(page, base, viewer.email, viewer.password, "/commands");
  }, 300_000);

  afterAll(async () => {
    await browser?.close();
    stopWeb(web);
    await worker?.close();
    await backend?.close();
    await t?.drop();
  });

  it("shows a running command's attempt in progress: started at, elapsed, worker, and counts it in the list", async () => {
    backend.plan("ship-7001", [{ kind: "hang" }]);
    const id = await add({
      type: "http",
      payload: { url: `${backend.url}/do/ship-7001`, body: { order: 7001 }, timeoutMs: 60_000 },
      idempotencyKey: "ship-7001",
    });
    await waitUntil(
      () => backend.requests.some((r) => r.path === "/do/ship-7001"),
      "the worker's request to the backend",
    );

    await page.goto(`${base}/commands/${id}`);
    await page.getByTestId("command-status").getByText("Running").waitFor();
    const panel = attemptsPanel();
    await page.getByRole("heading", { name: "Attempts (0 + 1 in progress)" }).waitFor();
    const current = panel.getByTestId("attempt-in-progress");
    await current.getByText("#1 execute").waitFor();
    await current.getByText("in progress", { exact: true }).waitFor();
    await current.getByText(/^started /).waitFor();
    await current.getByText(`on ${WORKER}`).waitFor();
    // the elapsed time counts on
    const elapsed = current.getByTestId("attempt-elapsed");
    const first = await elapsed.textContent();
    expect(first).toMatch(/^\d+ s so far$/);
    await page.waitForFunction(([el, was]) => el!.textContent !== was, [await elapsed.elementHandle(), first] as const);
    expect(await panel.getByText("No attempt yet").count()).toBe(0);
    await fact("Attempts").getByText("0 + 1 in progress", { exact: true }).waitFor();
    await fact("Worker").getByText(WORKER, { exact: true }).waitFor();
    await shot("command-running");

    await page.goto(`${base}/commands`);
    await page.getByRole("link", { name: shortId(id) }).waitFor();
    expect((await (await cellOf(id, "Attempts")).textContent())?.replace(/\s+/g, " ").trim()).toBe("0 + 1 in progress");
  });

  it("shows one attempt history in time order, callbacks apart, and counts that say what they count", async () => {
    backend.plan("charge-8001", [{ kind: "status", status: 503 }, { kind: "status", status: 503 }, { kind: "ok" }]);
    backend.callbackPlan([500]); // the first notification is delivered on its second try
    const id = await add({
      type: "http",
      payload: {
        url: `${backend.url}/do/charge-8001`,
        statusUrl: `${backend.url}/status/{commandId}`,
        body: { order: 8001, amount: 120 },
        timeoutMs: 2_000,
      },
      idempotencyKey: "charge-8001",
      callbackUrl: `${backend.url}/callback`,
      retry: { maxAttempts: 2, backoffMs: 10, maxBackoffMs: 20 },
    });
    await waitForStatus(t.db, id, ["exception"]);
    await waitUntil(async () => (await deliveredCount(id)) === 1, "the exception's notification delivered");

    await page.goto(`${base}/commands/${id}`);
    await page.getByTestId("command-status").getByText("Exception").waitFor();
    await page.getByRole("note").filter({ hasText: "HTTP 503; gave up after 2 tries (maxAttempts 2)" }).waitFor();
    await attemptsPanel().getByRole("heading", { name: "Attempts (3)" }).waitFor();
    expect(await fact("Attempts").textContent()).toBe("3");
    expect(await fact("Tries this round").textContent()).toBe("2 of max 2");
    await shot("command-gave-up");

    // An operator retries it (through the API: this page is about what is shown); the page follows by itself.
    const r = await client(base, adminToken).mutation("commands.retry", { ids: [id], reason: "payments are back" });
    expect(r.data.updated).toEqual([id]);
    await waitForStatus(t.db, id, ["succeeded"]);
    await waitUntil(async () => (await deliveredCount(id)) === 2, "the success's notification delivered");
    await page.getByTestId("command-status").getByText("Succeeded").waitFor();
    const panel = attemptsPanel();
    await panel.getByRole("heading", { name: "Attempts (5)" }).waitFor();
    await page.getByRole("heading", { name: "Callback deliveries (2)" }).waitFor();
    const deliveries = page.getByRole("list", { name: "Callback deliveries" });
    await deliveries
      .getByRole("listitem", { name: "Notification of succeeded" })
      .getByText(/try 1: delivered · HTTP 200/)
      .waitFor();

    // each entry's number and kind, as listed from the top
    const items = await panel
      .getByRole("list", { name: "Attempts" })
      .locator(":scope > li > div > span:first-child")
      .allTextContents();
    expect(items.map((x) => x.trim())).toEqual([
      "#1 execute",
      "#2 reconcile",
      "#3 execute",
      "#4 reconcile",
      "#5 execute",
    ]);
    expect(await fact("Attempts").textContent()).toBe("5");
    expect(await fact("Tries this round").textContent()).toBe("1 of max 2");

    const exceptionNote = deliveries.getByRole("listitem", { name: "Notification of exception" });
    await exceptionNote.getByText("2 tries").waitFor();
    await exceptionNote.getByText(/try 1: not delivered · HTTP 500/).waitFor();
    await exceptionNote.getByText(/try 2: delivered · HTTP 200/).waitFor();
    await deliveries.getByRole("listitem", { name: "Notification of succeeded" }).getByText("1 try").waitFor();
    await shot("command-history");

    await page.goto(`${base}/commands`);
    await page.getByRole("link", { name: shortId(id) }).waitFor();
    expect((await (await cellOf(id, "Attempts")).textContent())?.trim()).toBe("5");
  });

  it("shows a command's ordering key, and what it waits for: the key's head, its state, a link to it", async () => {
    backend.plan("acct-9001", [{ kind: "status", status: 503 }]);
    const orderingKey = "account-9001";
    const head = await add({
      type: "http",
      payload: { url: `${backend.url}/do/acct-9001`, body: { debit: 40 }, timeoutMs: 2_000 },
      orderingKey,
      retry: { maxAttempts: 1 },
    });
    const next = await add({
      type: "http",
      payload: { url: `${backend.url}/do/acct-9001-b`, body: { credit: 40 } },
      orderingKey,
    });
    await waitForStatus(t.db, head, ["exception"]);

    await page.goto(`${base}/commands/${next}`);
    const note = page.getByTestId("key-line");
    await note.getByRole("link", { name: head }).waitFor();
    expect((await note.locator("p").first().textContent())?.replace(/\s+/g, " ")).toBe(
      `Waits for ${head} (exception) — an operator must act on it`,
    );
    await fact("Ordering key").getByRole("link", { name: orderingKey }).waitFor();
    await page.getByTestId("command-status").getByText("Pending").waitFor();
    expect(await fact("Next run").textContent()).toBe("after the earlier commands of its ordering key");
    await shot("command-ordering");

    // the head: it holds the key
    await note.getByRole("link", { name: head }).click();
    await page.waitForURL(`${base}/commands/${head}`);
    await page
      .getByRole("note")
      .filter({ hasText: `Holds its ordering key ${orderingKey}: 1 later command waits for it.` })
      .waitFor();
    expect(await page.getByTestId("key-line").count()).toBe(0);

    // the key's link: the list of its commands, filtered in the URL and the filter bar
    await fact("Ordering key").getByRole("link", { name: orderingKey }).click();
    await page.waitForURL(`${base}/commands?orderingKey=${orderingKey}`);
    await page.getByRole("link", { name: shortId(head) }).waitFor();
    await page.getByRole("link", { name: shortId(next) }).waitFor();
    expect(await page.getByRole("row").count()).toBe(3); // the header and the key's two commands
    expect(await page.getByLabel("Ordering key", { exact: true }).inputValue()).toBe(orderingKey);
    await page.getByRole("group", { name: "Active filters" }).getByText(`Ordering key: ${orderingKey}`).waitFor();

    // typed into the field: the list follows, and the URL with it
    await page.getByLabel("Ordering key", { exact: true }).fill("no-such-key");
    await page.waitForURL(`${base}/commands?orderingKey=no-such-key`);
    await page.getByText("No command matches").waitFor();
  });
});
