// The /schedules page in a real browser against the real web process, with a
// worker beside it: an admin creates a schedule in the form (a bad cron is
// refused at the field before anything is sent; a payload whose host is not
// allowed comes back from the server at the payload field), sees it listed,
// runs it now and follows the link to its command, which a worker runs to
// succeeded; disables and deletes it. Assertions wait on the page, never on
// the clock.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ChildProcess } from "node:child_process";
import { mkdirSync } from "node:fs";
import path from "node:path";
import type { BrowserContext, Page } from "playwright-core";
import { buildIfNeeded } from "../../scripts/build-if-needed";
import { browserAvailable, launchBrowser, signIn, spawnWeb, stopWeb, waitHealthy } from "../helpers/web";
import { createTestDb, type TestDb } from "../helpers/db";
import { freePort } from "../helpers/proc";
import { startBackend, type Backend } from "../helpers/backend";
import { startTestWorker, type TestWorker } from "../helpers/engine";
import { createUser } from "../../server/auth/users";
import { registry } from "../../server/command-types";
import { createSchedule } from "../../server/commands/schedules";

const SHOTS = path.resolve("docs/screenshots");
const admin = { email: "ada.admin@example.com", password: "admin-password-0001", role: "admin" as const };
const viewer = { email: "vic.viewer@example.com", password: "viewer-password-0001", role: "viewer" as const };

let t: TestDb;
let web: ChildProcess;
let base: string;
let ctx: BrowserContext;
let page: Page;
let browser: Awaited<ReturnType<typeof launchBrowser>> | undefined;
let backend: Backend;
let worker: TestWorker | undefined;

describe.runIf(browserAvailable)("schedules in a real browser", () => {
  beforeAll(async () => {
    buildIfNeeded(path.resolve("."));
    t = await createTestDb();
    for (const u of [admin, viewer]) await createUser(t.db, u);
    backend = await startBackend();
    const deps = { db: t.db, registry };
    await createSchedule(
      deps,
      {
        name: "Hourly ledger reconciliation",
        cron: "0 * * * *",
        timezone: "UTC",
        command: { type: "http", payload: { url: `${backend.url}/do/reconcile` } },
      },
      admin.email,
    );
    await createSchedule(
      deps,
      {
        name: "Quarter-hour stock sync (paused)",
        cron: "*/15 8-18 * * 1-5",
        timezone: "America/New_York",
        command: { type: "http", payload: { url: `${backend.url}/do/stock` } },
        enabled: false,
      },
      admin.email,
    );
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    web = spawnWeb(port, { DATABASE_URL: t.url, LOG_LEVEL: "warn", HTTP_ALLOWED_HOSTS: "127.0.0.1" });
    await waitHealthy(base, web);
    worker = await startTestWorker(t.db, t.url, registry);
    mkdirSync(SHOTS, { recursive: true });
    browser = await launchBrowser();
    ({ ctx, page } = browser);
  }, 300_000);

  afterAll(async () => {
    await browser?.close();
    stopWeb(web);
    await worker?.close();
    await backend?.close();
    await t?.drop();
  });

  const count = async (name: string) =>
    (await t.db.pool.query(`SELECT count(*)::int AS n FROM schedules WHERE name = $1`, [name])).rows[0].n;

  it("creates a schedule in the form, runs it now, links to its command; disables and deletes it", async () => {
    await signIn(page, base, admin.email, admin.password, "/schedules");
    await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Schedules" }).waitFor();
    const form = page.getByRole("form", { name: "New schedule" });
    await form.getByLabel("Name").fill("Nightly export");
    await form.getByLabel("Cron").fill("0 2 * *");
    await form.getByLabel("Time zone").fill("Europe/Berlin");
    await form.getByLabel("Payload (JSON)").fill(JSON.stringify({ url: "https://intranet.example/export" }));
    await form.getByRole("button", { name: "Create schedule" }).click();
    // Refused at the field, by the schema the server uses, before anything is sent.
    await form
      .locator("#schedule-cron-error")
      .getByText(/must have 5 fields .* got 4/)
      .waitFor();
    expect(await form.getByLabel("Cron").getAttribute("aria-invalid")).toBe("true");
    expect(await count("Nightly export")).toBe(0);

    // A good cron shows its next ticks; the server refuses the payload's host at the payload field.
    await form.getByLabel("Cron").fill("0 2 * * *");
    await form
      .getByTestId("next-ticks")
      .getByText(/02:00:00/)
      .waitFor();
    await form.getByRole("button", { name: "Create schedule" }).click();
    await form
      .locator("#schedule-payload-error")
      .getByText(/url: host intranet\.example is not in HTTP_ALLOWED_HOSTS/)
      .waitFor();
    expect(await count("Nightly export")).toBe(0);

    await form.getByLabel("Payload (JSON)").fill(JSON.stringify({ url: `${backend.url}/do/export` }, null, 2));
    await form.getByRole("button", { name: "Create schedule" }).click();
    await page.getByRole("status").getByText("Schedule created.").waitFor();
    const row = page.locator("tbody", { has: page.getByText("Nightly export", { exact: true }) });
    await row.getByText("0 2 * * *").waitFor();
    await row.getByText("Europe/Berlin").waitFor();
    await row.getByText("enabled", { exact: true }).waitFor();
    const stored = (
      await t.db.pool.query(`SELECT id, timezone, next_run_at FROM schedules WHERE name = 'Nightly export'`)
    ).rows[0];
    expect(stored.timezone).toBe("Europe/Berlin");
    expect([0, 1]).toContain(stored.next_run_at.getUTCHours()); // 02:00 in Berlin

    // Run now: one command, under the client schedules, run by the worker; its link opens it.
    await row.getByRole("button", { name: "Run now" }).click();
    const submitted = row.getByRole("status").getByRole("link");
    await submitted.waitFor();
    const commandId = (await submitted.innerText()).trim();
    const link = row.getByRole("link", { name: "Last command of Nightly export" });
    await link.waitFor();
    expect(await link.getAttribute("href")).toBe(`/commands/${commandId}`);
    await row.getByTestId("last-run").getByText("Succeeded").waitFor({ timeout: 30_000 });
    const cmd = (
      await t.db.pool.query(
        `SELECT c.idempotency_key, a.name FROM commands c JOIN api_clients a ON a.id = c.client_id WHERE c.id = $1`,
        [commandId],
      )
    ).rows[0];
    expect(cmd.name).toBe("schedules");
    expect(cmd.idempotency_key).toMatch(new RegExp(`^schedule:${stored.id}:manual:`));
    await page.evaluate(() => window.scrollTo(0, 0));
    await page.screenshot({ path: path.join(SHOTS, "schedules.png"), fullPage: true });

    await link.click();
    await page.waitForURL(`${base}/commands/${commandId}`);
    await page.getByTestId("command-status").getByText("Succeeded").waitFor();

    // Disable, then delete (after a confirmation).
    await page.goBack();
    await page.waitForURL(`${base}/schedules`);
    await row.getByRole("button", { name: "Disable" }).click();
    await row.getByText("disabled", { exact: true }).waitFor();
    await row.getByRole("button", { name: "Enable" }).waitFor();
    expect(
      (await t.db.pool.query(`SELECT enabled, next_run_at FROM schedules WHERE id = $1`, [stored.id])).rows[0],
    ).toEqual({ enabled: false, next_run_at: null });
    page.once("dialog", (d) => void d.accept());
    await row.getByRole("button", { name: "Delete" }).click();
    await row.waitFor({ state: "detached" });
    expect(await count("Nightly export")).toBe(0);
    const audit = await t.db.pool.query(
      `SELECT action FROM audit_entries WHERE actor = $1 AND action LIKE 'schedules.%' ORDER BY id`,
      [admin.email],
    );
    expect(audit.rows.map((r) => r.action)).toEqual([
      "schedules.create",
      "schedules.create",
      "schedules.create",
      "schedules.runNow",
      "schedules.update",
      "schedules.delete",
    ]);
  }, 120_000);

  it("is for admins: a viewer is told so, and has no Schedules link", async () => {
    await ctx.clearCookies();
    const p = await ctx.newPage();
    await signIn(p, base, viewer.email, viewer.password, "/schedules");
    await p.getByRole("heading", { name: "Schedules needs the admin role" }).waitFor();
    expect(await p.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Schedules" }).count()).toBe(0);
    await p.close();
  });
});
