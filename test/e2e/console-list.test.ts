// The commands list and the overview in a real browser (Chromium through
// playwright-core) against the real web process, with failures a real worker
// recorded against a real HTTP backend: why each command failed, on the list
// and through search; the link alert emails send (two states) and its page in
// the URL (Next, reload, Back, Forward); the overview's waiting list; the
// per-minute chart after a bulk retry. Screenshots in docs/screenshots/.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ChildProcess } from "node:child_process";
import { mkdirSync } from "node:fs";
import path from "node:path";
import type { BrowserContext, Page } from "playwright-core";
import { buildIfNeeded } from "../../scripts/build-if-needed";
import { browserAvailable, launchBrowser, signIn, spawnWeb, stopWeb, waitHealthy } from "../helpers/web";
import { createTestDb, type TestDb } from "../helpers/db";
import { freePort } from "../helpers/proc";
import { newToken } from "../helpers/api";
import { startBackend, type Backend } from "../helpers/backend";
import { startTestWorker, submitWith, waitForStatus } from "../helpers/engine";
import { createUser } from "../../server/auth/users";
import { registry } from "../../server/command-types";
import { createUrlGuard } from "../../server/outbound/url-guard";

const SHOTS = path.resolve("docs/screenshots");
const operator = { email: "otto.operator@example.com", password: "operator-password-02", role: "operator" as const };

let t: TestDb;
let web: ChildProcess;
let backend: Backend;
let base: string;
let ctx: BrowserContext;
let page: Page;
let browser: Awaited<ReturnType<typeof launchBrowser>> | undefined;
const declined: string[] = [];
let refused: string;
const ledger: string[] = []; // 30 exceptions of one incident (batch-a), retried together later
const others: string[] = []; // 25 more exceptions
const due: string[] = [];
let nextYear: string;

async function seed(db: TestDb["db"]) {
  const c = await newToken(db, "client", "checkout");
  const add = submitWith(db, registry, c.id);
  backend.setDefault({
    kind: "status",
    status: 422,
    body: { code: "card_declined", message: "Your card was declined." },
  });
  // HTTP_ALLOWED_HOSTS=127.0.0.1: the backend is allowed, pay.example refused.
  const worker = await startTestWorker(db, t.url, registry, { checkUrl: createUrlGuard("127.0.0.1") });
  try {
    for (let i = 0; i < 3; i++)
      declined.push(
        await add({
          type: "http",
          payload: { url: `${backend.url}/do/charge-${i}`, body: { order: 7000 + i } },
          idempotencyKey: `charge-${i}`,
        }),
      );
    refused = await add({
      type: "http",
      payload: { url: "https://pay.example/charges", body: { order: 7100 } },
      idempotencyKey: "charge-elsewhere",
    });
    for (const id of declined) await waitForStatus(db, id, ["failed"]);
    await waitForStatus(db, refused, ["failed"]);
  } finally {
    await worker.close();
  }
  const q = (sql: string, params: unknown[]) => db.pool.query(sql, params);
  const park = { runAt: "2999-01-01T00:00:00Z" };
  for (let i = 0; i < 30; i++)
    ledger.push(
      await add({
        type: "http",
        payload: { url: "https://ledger.example/postings", body: { posting: i } },
        idempotencyKey: `batch-a-${i}`,
        ...park,
      }),
    );
  for (let i = 0; i < 25; i++)
    others.push(
      await add({
        type: "http",
        payload: { url: "https://mail.example/send", body: { mail: i } },
        idempotencyKey: `mail-${i}`,
        ...park,
      }),
    );
  const ex = [...ledger, ...others];
  await q(
    `UPDATE commands SET status = 'running', lease_id = gen_random_uuid(),
       locked_by = 'worker-a1', locked_until = now() + interval '1 minute'
       WHERE id = ANY($1::uuid[])`,
    [ex],
  );
  await q(
    `UPDATE commands SET status = 'exception', lease_id = NULL, locked_by = NULL, locked_until = NULL,
       attempt_count = 3, error = 'timeout after 10000 ms: the backend did not answer; outcome unknown'
       WHERE id = ANY($1::uuid[])`,
    [ex],
  );
  // the oldest exceptions are the mail ones
  await q(`UPDATE commands SET state_changed_at = now() - interval '40 minutes' WHERE id = ANY($1::uuid[])`, [others]);
  for (let i = 0; i < 2; i++)
    due.push(
      await add({
        type: "http",
        payload: { url: "https://orders.example/ship", body: { order: 7200 + i } },
        idempotencyKey: `ship-${i}`,
        ...park,
      }),
    );
  await q(`UPDATE commands SET run_at = now() - interval '15 minutes' WHERE id = ANY($1::uuid[])`, [due]);
  nextYear = await add({
    type: "http",
    payload: { url: "https://orders.example/renew" },
    idempotencyKey: "renew-next-year",
    runAt: new Date(Date.now() + 365 * 86_400_000).toISOString(),
  });
}

const shot = (name: string, fullPage = true) => page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage });
/** The overview's chart and waiting list, in view (a full-page shot repeats the sticky header). */
const overviewShot = async (name: string) => {
  await page.getByRole("heading", { name: "Waiting longest" }).waitFor();
  await page.evaluate(() => window.scrollTo(0, document.body.scrollHeight));
  await shot(name, false);
};
const rows = () => page.getByRole("row").filter({ has: page.getByRole("link") });
const firstId = async () => (await rows().first().getByRole("link").getAttribute("title"))!;

describe.runIf(browserAvailable)("commands list and overview in a real browser", () => {
  beforeAll(async () => {
    buildIfNeeded(path.resolve("."));
    t = await createTestDb();
    backend = await startBackend();
    await createUser(t.db, operator);
    await seed(t.db);
    await t.db.pool.query(
      `INSERT INTO worker_metrics (worker_id, started_at, updated_at, metrics)
       VALUES ('worker-a1', now() - interval '1 hour', now() + interval '10 minutes', '[]')`,
    );
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    web = spawnWeb(port, { DATABASE_URL: t.url, LOG_LEVEL: "warn" });
    await waitHealthy(base, web);
    mkdirSync(SHOTS, { recursive: true });
    browser = await launchBrowser();
    ({ ctx, page } = browser);
    await signIn(page, base, operator.email, operator.password, "/commands");
  }, 300_000);

  afterAll(async () => {
    await browser?.close();
    stopWeb(web);
    await backend?.close();
    await t?.drop();
  });

  it("shows why each failed command failed, and search finds it by that text", async () => {
    await page.goto(`${base}/commands?status=failed`);
    for (const id of declined)
      await rows()
        .filter({ has: page.getByTitle(id, { exact: true }) })
        .getByRole("cell", { name: "422 card_declined: Your card was declined." })
        .waitFor();
    await rows()
      .filter({ has: page.getByTitle(refused, { exact: true }) })
      .getByRole("cell", { name: "host pay.example is not in HTTP_ALLOWED_HOSTS" })
      .waitFor();
    await shot("commands-failures");

    await page.goto(`${base}/commands`);
    await page.getByLabel("Search").fill("card declined");
    await page.waitForURL(/q=card\+declined/);
    await page.getByRole("group", { name: "Active filters" }).getByText("Text: card declined").waitFor();
    await expect.poll(async () => (await rows().all()).length).toBe(3);
    for (const id of declined) await page.getByTitle(id, { exact: true }).waitFor();
    await shot("commands-search-failure");

    await page.getByLabel("Search").fill("HTTP_ALLOWED_HOSTS");
    await page.waitForURL(/q=HTTP_ALLOWED_HOSTS/);
    await page.getByTitle(refused, { exact: true }).waitFor();
    await expect.poll(async () => (await rows().all()).length).toBe(1);

    // Back returns to the search before (one history entry per search, not one per pause in typing).
    await page.goBack();
    await page.waitForURL(/q=card\+declined/);
    await expect.poll(() => page.getByLabel("Search").inputValue()).toBe("card declined");
    await expect.poll(async () => (await rows().all()).length).toBe(3);
  });

  it("a link with two states shows both as chips and selected tabs; its pages are in the URL (Next, reload, Back, Forward)", async () => {
    await page.goto(`${base}/commands?status=exception,failed`);
    const chips = page.getByRole("group", { name: "Active filters" });
    await chips.getByText("State: Exception").waitFor();
    await chips.getByText("State: Failed").waitFor();
    const tabs = page.getByRole("tablist", { name: "State" });
    await tabs.getByRole("tab", { name: /Exception/, selected: true }).waitFor();
    await tabs.getByRole("tab", { name: /Failed/, selected: true }).waitFor();
    expect(await tabs.getByRole("tab", { name: /^All/, selected: true }).count()).toBe(0);
    await expect.poll(async () => (await rows().all()).length).toBe(50);
    const first1 = await firstId();
    await shot("commands-two-states");

    await page.getByRole("button", { name: "Next" }).click();
    await page.waitForURL(/[?&]cursor=/);
    expect(new URL(page.url()).searchParams.get("status")).toBe("exception,failed");
    await page.getByText("Page 2 · 9 shown").waitFor();
    const first2 = await firstId();
    expect(first2).not.toBe(first1);
    const page2Url = page.url();

    await page.reload();
    await page.getByText("Page 2 · 9 shown").waitFor();
    expect(await firstId()).toBe(first2);
    await chips.getByText("State: Failed").waitFor();
    await shot("commands-page-2-after-reload");

    await page.goBack();
    await page.waitForURL((u) => !u.searchParams.has("cursor") && u.searchParams.get("status") === "exception,failed");
    await expect.poll(firstId).toBe(first1);
    await page.goForward();
    await page.waitForURL(page2Url);
    await expect.poll(firstId).toBe(first2);

    // A shared link to page 2 (no history behind it) opens page 2, and offers the first page.
    const other = await ctx.newPage();
    await other.goto(page2Url);
    await other.getByText("A later page · 9 shown").waitFor();
    await other.getByRole("button", { name: "First page" }).click();
    await other.waitForURL((u) => !u.searchParams.has("cursor"));
    await other.getByText("Page 1 · 50 shown").waitFor();
    await other.close();

    // Removing a chip changes the URL and the list.
    await chips.getByRole("button", { name: "Remove State: Exception" }).click();
    await page.waitForURL((u) => u.searchParams.get("status") === "failed" && !u.searchParams.has("cursor"));
    await expect.poll(async () => (await rows().all()).length).toBe(4);
  });

  it("the overview lists exceptions first, then due commands, and not one due next year", async () => {
    await page.goto(`${base}/`);
    const panel = page.getByRole("region", { name: "In exception: an operator decides" });
    await panel.waitFor();
    const queue = page.getByRole("region", { name: "Queued and due, no worker has taken them yet" });
    await queue.waitFor();
    // exceptions come before the queue, the longest in exception (the mail ones) first
    const order = await page
      .locator("section[aria-label]")
      .evaluateAll((els) => els.map((e) => e.getAttribute("aria-label")));
    expect(order.indexOf("In exception: an operator decides")).toBeLessThan(
      order.indexOf("Queued and due, no worker has taken them yet"),
    );
    const firstItem = panel.getByRole("listitem").first().getByRole("link");
    await firstItem.getByText("timeout after 10000 ms", { exact: false }).waitFor();
    expect(others.map((id) => `/commands/${id}`)).toContain(await firstItem.getAttribute("href"));
    await panel.getByRole("link", { name: "55 · view" }).waitFor();
    for (const id of due) await queue.locator(`a[href="/commands/${id}"]`).waitFor();
    expect(await page.locator(`a[href="/commands/${nextYear}"]`).count()).toBe(0);
    await overviewShot("overview-waiting");
  });

  it("keeps an incident's exceptions on the chart after they are retried in bulk", async () => {
    const exceptionsCharted = async () => {
      await page.goto(`${base}/`);
      await page.getByRole("img", { name: /Finished commands per minute/ }).waitFor();
      await page.getByText("Per-minute figures").click();
      const table = page.getByRole("table", { name: "Finished per minute" });
      await table.waitFor();
      const cells = await table
        .getByRole("row")
        .evaluateAll((trs) => trs.slice(1).map((tr) => Number(tr.querySelectorAll("td")[2]?.textContent ?? 0)));
      return cells.reduce((a, b) => a + b, 0);
    };
    expect(await exceptionsCharted()).toBe(55);
    await page.getByRole("img", { name: /55 exceptions in the last hour/ }).waitFor();

    // Retry the 30 of batch-a: search them, select the page, Retry with a reason.
    await page.goto(`${base}/commands?status=exception&q=batch-a`);
    await expect.poll(async () => (await rows().all()).length).toBe(30);
    await page.getByLabel("Select all on this page").check();
    await page.getByTestId("selection-count").getByText("30 selected").waitFor();
    await page.getByRole("button", { name: "Retry", exact: true }).click();
    const dialog = page.getByRole("dialog");
    await dialog.getByLabel("Reason").fill("Ledger is back");
    await dialog.getByRole("button", { name: "Retry", exact: true }).click();
    await dialog.getByText("30 updated").waitFor();
    await dialog.getByRole("button", { name: "Done" }).click();
    expect(
      (await t.db.pool.query(`SELECT count(*)::int AS n FROM commands WHERE status = 'exception'`)).rows[0].n,
    ).toBe(25);

    expect(await exceptionsCharted()).toBe(55);
    await page.getByRole("img", { name: /55 exceptions in the last hour/ }).waitFor();
    await overviewShot("overview-after-bulk-retry");
  });

  it("a search says how far back a page read, and Search older goes on from there", async () => {
    // 20,010 older commands: the one with the word searched for is the oldest, beyond the first page's window.
    const { rows: c } = await t.db.pool.query(`SELECT id FROM api_clients WHERE name = 'checkout'`);
    await t.db.pool.query(
      `INSERT INTO commands (id, client_id, type, payload, status, created_at, updated_at, state_changed_at, finished_at, attempt_count)
       SELECT gen_random_uuid(), $1, 'http', jsonb_build_object('url', 'https://archive.example/' || i,
                                 'note', CASE WHEN i = 20010 THEN 'needle-7731' ELSE 'hay' END),
              'succeeded', now() - interval '2 hours' - make_interval(secs => i), now(), now(), now(), 1
       FROM generate_series(1, 20010) AS i`,
      [c[0].id],
    );
    const needle = (await t.db.pool.query(`SELECT id FROM commands WHERE payload->>'note' = 'needle-7731'`)).rows[0].id;
    await page.goto(`${base}/commands?q=needle-7731`);
    await page.getByText("No match yet").waitFor();
    await page.getByText(/None of the 20,000 newest commands of this filter \(created back to .+\) matches/).waitFor();
    await shot("commands-search-window", false);
    await page.getByRole("button", { name: "Search older" }).click();
    await page.waitForURL(/[?&]cursor=/);
    await page.getByTitle(needle, { exact: true }).waitFor();
    expect(new URL(page.url()).searchParams.get("q")).toBe("needle-7731");
    await expect.poll(async () => (await rows().all()).length).toBe(1);
  });
});
