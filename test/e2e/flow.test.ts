// The /flow page in a real browser against the real web process: an operator
// pauses a host with a reason (asked in a dialog), sees it paused, and
// resumes it; the scopes table shows limits, traffic, waiting commands and
// circuits; a blocked ordering key links to the command that blocks it; a
// viewer gets no button. Assertions wait on the page, never on the clock.
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
import { moveTo } from "../helpers/fixtures";
import { createUser } from "../../server/auth/users";
import { directIntake, submit } from "../../server/commands/submit";
import { registry } from "../../server/command-types";
import { setLimit } from "../../server/commands/flow";

const SHOTS = path.resolve("docs/screenshots");
const admin = { email: "ada.admin@example.com", password: "admin-password-0001", role: "admin" as const };
const viewer = { email: "vic.viewer@example.com", password: "viewer-password-0001", role: "viewer" as const };
const operator = { email: "oli.operator@example.com", password: "operator-password-01", role: "operator" as const };

let t: TestDb;
let web: ChildProcess;
let base: string;
let ctx: BrowserContext;
let page: Page;
let browser: Awaited<ReturnType<typeof launchBrowser>> | undefined;
let blocking = "";

async function seed(db: TestDb["db"]) {
  const client = await newToken(db, "client", "orders-service");
  const intake = directIntake(db, registry);
  const add = async (host: string, extra: Record<string, unknown> = {}) =>
    (await submit(intake, client.id, { type: "http", payload: { url: `https://${host}/api/orders` }, ...extra })).id;
  // Due commands waiting for a worker (none runs in this test), two of them leased (in flight).
  for (let i = 0; i < 6; i++) await add("payments.example");
  for (const id of [await add("payments.example"), await add("payments.example")]) await moveTo(db, id, ["running"]);
  for (let i = 0; i < 3; i++) await add("ledger.example");
  await add("search.example");
  await setLimit(
    db,
    registry,
    { host: "payments.example" },
    { concurrency: 4, ratePerSecond: 20, burst: 40 },
    { name: admin.email },
    "their contract: 20 requests/s",
  );
  await db.pool.query(
    `INSERT INTO flow_scopes (kind, name, circuit_state, circuit_since, consecutive_exceptions, cooldown_ms, next_probe_at)
     VALUES ('host', 'ledger.example', 'open', now() - interval '12 seconds', 5, 40000, now() + interval '28 seconds')`,
  );
  await db.pool.query(
    `INSERT INTO flow_traffic (minute, type, host, attempts, exceptions, held)
     SELECT date_trunc('minute', now()) - make_interval(mins => m), 'http', h.host, h.n, h.e, h.held
     FROM generate_series(0, 5) AS m,
       (VALUES ('payments.example', 1100, 3, 40), ('ledger.example', 90, 90, 0), ('search.example', 300, 0, 0)) AS h(host, n, e, held)`,
  );
  // An ordering key held up by an exception: two commands wait behind it.
  const k = [];
  for (let i = 0; i < 3; i++) k.push(await add("search.example", { orderingKey: "customer-1042" }));
  await moveTo(db, k[0]!, ["running", "exception"]);
  blocking = k[0]!;
}

describe.runIf(browserAvailable)("flow control in a real browser", () => {
  beforeAll(async () => {
    buildIfNeeded(path.resolve("."));
    t = await createTestDb();
    for (const u of [admin, viewer, operator]) await createUser(t.db, u);
    await seed(t.db);
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    web = spawnWeb(port, { DATABASE_URL: t.url, LOG_LEVEL: "warn" });
    await waitHealthy(base, web);
    mkdirSync(SHOTS, { recursive: true });
    browser = await launchBrowser();
    ({ ctx, page } = browser);
  }, 300_000);

  /** Each test signs in on a new tab without cookies (see access.test.ts). */
  async function freshPage() {
    await ctx.clearCookies();
    const old = page;
    page = await ctx.newPage();
    await old.close();
  }
  const row = (scope: string) => page.locator(`tr[data-scope="${scope}"]`);

  afterAll(async () => {
    await browser?.close();
    stopWeb(web);
    await t?.drop();
  });

  it("pauses a host with a reason, shows it paused, and resumes it", async () => {
    await freshPage();
    await signIn(page, base, admin.email, admin.password, "/flow");
    await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Flow" }).waitFor();
    const payments = row("host:payments.example");
    await payments.getByText("≤ 4 in flight").waitFor();
    await payments.getByText("20/s, burst 40").waitFor();
    expect(await payments.locator("td").nth(2).innerText()).toBe("2");
    expect(await payments.locator("td").nth(4).innerText()).toBe("6");
    await row("host:ledger.example").getByText("open", { exact: true }).waitFor();
    await row("host:ledger.example")
      .getByText(/next probe in/)
      .waitFor();

    // Pause: the dialog asks for a reason first.
    await payments.getByRole("button", { name: "Pause", exact: true }).click();
    const dialog = page.getByRole("dialog");
    await dialog.getByText("Pause host payments.example?").waitFor();
    await dialog.getByRole("button", { name: "Pause", exact: true }).click();
    await dialog.getByText("Say why you pause it.").waitFor();
    await dialog.getByRole("textbox", { name: "Reason" }).fill("payments provider maintenance until 14:00");
    await dialog.getByRole("button", { name: "Pause", exact: true }).click();
    await dialog.waitFor({ state: "detached" });
    await payments.getByText("paused", { exact: true }).waitFor();
    await payments.getByText(/payments provider maintenance until 14:00/).waitFor();
    const stored = await t.db.pool.query(
      `SELECT paused, paused_reason, paused_by FROM flow_scopes WHERE kind = 'host' AND name = 'payments.example'`,
    );
    expect(stored.rows[0]).toEqual({
      paused: true,
      paused_reason: "payments provider maintenance until 14:00",
      paused_by: admin.email,
    });
    await page.screenshot({ path: path.join(SHOTS, "flow.png"), fullPage: true });

    // Resume: the reason is optional.
    await payments.getByRole("button", { name: "Resume", exact: true }).click();
    await dialog.getByRole("textbox", { name: "Reason" }).fill("maintenance over");
    await dialog.getByRole("button", { name: "Resume", exact: true }).click();
    await dialog.waitFor({ state: "detached" });
    await payments.getByRole("button", { name: "Pause", exact: true }).waitFor();
    expect(await payments.getByText("paused", { exact: true }).count()).toBe(0);
    const audit = await t.db.pool.query(
      `SELECT action, reason FROM audit_entries WHERE action IN ('flow.pause', 'flow.resume') ORDER BY id`,
    );
    expect(audit.rows).toEqual([
      { action: "flow.pause", reason: "payments provider maintenance until 14:00" },
      { action: "flow.resume", reason: "maintenance over" },
    ]);
  });

  it("lists the blocked ordering key with a link to the command that blocks it", async () => {
    await freshPage();
    await signIn(page, base, viewer.email, viewer.password, "/flow");
    const keys = page.getByRole("table", { name: "Blocked ordering keys" });
    const key = keys.getByRole("row").filter({ hasText: "customer-1042" });
    await key.waitFor();
    expect(await key.locator("td").nth(0).innerText()).toBe("orders-service");
    expect(await key.locator("td").nth(4).innerText()).toBe("2");
    await key.getByRole("link", { name: `command ${blocking}` }).click();
    await page.waitForURL(`${base}/commands/${blocking}`);
    await page.getByTestId("command-status").getByText("Exception").waitFor();
  });

  it("shows each role only the buttons it can use: none to a viewer, Pause but no limits to an operator", async () => {
    await freshPage();
    await signIn(page, base, viewer.email, viewer.password, "/flow");
    await row("host:payments.example").waitFor();
    const scopes = page.getByRole("table", { name: "Scopes" });
    expect(await scopes.getByRole("button").count()).toBe(0);
    expect(await page.getByRole("form", { name: "Set limit" }).count()).toBe(0);

    await freshPage();
    await signIn(page, base, operator.email, operator.password, "/flow");
    await row("host:payments.example").getByRole("button", { name: "Pause", exact: true }).waitFor();
    const operatorScopes = page.getByRole("table", { name: "Scopes" });
    expect(await operatorScopes.getByRole("button", { name: /limit/ }).count()).toBe(0);
    expect(await page.getByRole("form", { name: "Set limit" }).count()).toBe(0);
  });
});
