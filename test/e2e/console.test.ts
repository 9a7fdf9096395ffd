// The operator console in a real browser (Chromium through playwright-core)
// against the real web process (`npm run web`) and a fresh database: sign-in
// and the way back, finding an exception and retrying it with a reason, a bulk
// retry of a selection, what a viewer sees and may do, and screenshots of the
// main pages (docs/screenshots/). Assertions wait on the page (locators),
// never on the clock.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ChildProcess } from "node:child_process";
import { mkdirSync } from "node:fs";
import path from "node:path";
import type { BrowserContext, Page } from "playwright-core";
import { buildIfNeeded } from "../../scripts/build-if-needed";
import { browserAvailable, launchBrowser, signIn as signInAs, spawnWeb, stopWeb, waitHealthy } from "../helpers/web";
import { createTestDb, type TestDb } from "../helpers/db";
import { freePort } from "../helpers/proc";
import { newToken } from "../helpers/api";
import { createUser } from "../../server/auth/users";
import { directIntake, submit } from "../../server/commands/submit";
import { registry } from "../../server/command-types";
import { shortId } from "../../server/engine/short-id";

const SHOTS = path.resolve("docs/screenshots");
const users = {
  admin: { email: "admin@example.com", password: "admin-password-0001", role: "admin" as const },
  operator: { email: "oliver.operator@example.com", password: "operator-password-01", role: "operator" as const },
  viewer: { email: "vera.viewer@example.com", password: "viewer-password-0001", role: "viewer" as const },
};

let t: TestDb;
let web: ChildProcess;
let base: string;
let ctx: BrowserContext;
let page: Page;
let browser: Awaited<ReturnType<typeof launchBrowser>> | undefined;
const ex: string[] = []; // the three commands in exception

/** Commands in a spread of states, with finishes over the last hour (for the chart) and attempts on the exceptions. */
async function seed(db: TestDb["db"]) {
  const client = await newToken(db, "client", "orders-service");
  const intake = directIntake(db, registry);
  const add = async (key: string, payload: Record<string, unknown>) =>
    (await submit(intake, client.id, { type: "http", payload: { method: "POST", ...payload }, idempotencyKey: key }))
      .id;
  const q = (sql: string, params: unknown[]) => db.pool.query(sql, params);
  const toRunning = (ids: string[]) =>
    q(
      `UPDATE commands SET status = 'running', lease_id = gen_random_uuid(),
         locked_by = 'worker-a1', locked_until = now() + interval '1 minute'
         WHERE id = ANY($1::uuid[])`,
      [ids],
    );
  const release = `lease_id = NULL, locked_by = NULL, locked_until = NULL`;

  const succeeded: string[] = [];
  for (let i = 0; i < 36; i++)
    succeeded.push(
      await add(`order-ok-${i}`, {
        url: `https://orders.example/api/orders/${1000 + i}/confirm`,
        body: { order: 1000 + i, amount: 25 + i },
      }),
    );
  await toRunning(succeeded);
  await q(
    `UPDATE commands SET status = 'succeeded', ${release}, attempt_count = 1,
       result = jsonb_build_object('status', 200, 'body', jsonb_build_object('confirmed', true))
       WHERE id = ANY($1::uuid[])`,
    [succeeded],
  );
  // Spread the finishes over the last hour (a later update without a change of state keeps finished_at).
  await q(
    `UPDATE commands c SET finished_at = now() - make_interval(mins => ((x.n * 7) % 55)::int),
                       created_at = now() - make_interval(mins => ((x.n * 7) % 55)::int, secs => 20)
           FROM (SELECT id, row_number() OVER (ORDER BY id) AS n FROM commands WHERE id = ANY($1::uuid[])) x WHERE c.id = x.id`,
    [succeeded],
  );

  const failed: string[] = [];
  for (let i = 0; i < 5; i++)
    failed.push(
      await add(`order-declined-${i}`, {
        url: `https://payments.example/api/charges`,
        body: { order: 2000 + i, amount: 990 },
      }),
    );
  await toRunning(failed);
  await q(
    `UPDATE commands SET status = 'failed', ${release}, attempt_count = 1,
       failure = '{"status": 422, "body": {"code": "card_declined"}}'::jsonb
       WHERE id = ANY($1::uuid[])`,
    [failed],
  );
  await q(
    `UPDATE commands c SET finished_at = now() - make_interval(mins => (3 + x.n * 11)::int)
          FROM (SELECT id, row_number() OVER (ORDER BY id) AS n FROM commands WHERE id = ANY($1::uuid[])) x
          WHERE c.id = x.id`,
    [failed],
  );

  for (let i = 1; i <= 3; i++)
    ex.push(
      await add(`order-ex-${i}`, {
        url: `https://ledger.example/api/postings`,
        body: { order: 3000 + i, amount: 120 },
      }),
    );
  await toRunning(ex);
  await q(
    `UPDATE commands SET status = 'exception', ${release}, attempt_count = 3,
       needs_reconcile = true, error = 'timeout after 10000 ms: the backend did not answer; outcome unknown'
       WHERE id = ANY($1::uuid[])`,
    [ex],
  );
  for (const id of ex) {
    await q(
      `INSERT INTO attempts (command_id, number, kind, outcome, started_at, finished_at, error, worker) VALUES
       ($1, 1, 'execute', 'exception', now() - interval '9 minutes', now() - interval '9 minutes' + interval '10 seconds',
        'timeout after 10000 ms', 'worker-a1'),
       ($1, 2, 'execute', 'exception', now() - interval '6 minutes', now() - interval '6 minutes' + interval '10 seconds', 'connect ECONNRESET', 'worker-b2'),
       ($1, 3, 'execute', 'exception', now() - interval '2 minutes', now() - interval '2 minutes' + interval '10 seconds',
        'timeout after 10000 ms', 'worker-a1')`,
      [id],
    );
  }

  for (let i = 0; i < 4; i++)
    await add(`order-new-${i}`, {
      url: `https://orders.example/api/orders/${4000 + i}/ship`,
      body: { order: 4000 + i },
    });
  const cancelled = await add(`order-cancel-0`, { url: `https://orders.example/api/orders/5000/ship` });
  await q(`UPDATE commands SET status = 'cancelled' WHERE id = $1`, [cancelled]);
  // The chart counts state entries in the minute they happened: count these as of their (spread) finishes.
  await q(`DELETE FROM state_entries`, []);
  await q(
    `INSERT INTO state_entries (minute, status, type, shard, n)
     SELECT date_trunc('minute', finished_at), status, type, -1, count(*)
     FROM commands WHERE finished_at IS NOT NULL GROUP BY 1, 2, 3`,
    [],
  );
}

const signIn = (p: Page, who: keyof typeof users, next: string) =>
  signInAs(p, base, users[who].email, users[who].password, next);

const shot = (name: string) => page.screenshot({ path: path.join(SHOTS, `${name}.png`) });

describe.runIf(browserAvailable)("operator console in a real browser", () => {
  beforeAll(async () => {
    buildIfNeeded(path.resolve("."));
    t = await createTestDb();
    for (const u of Object.values(users)) await createUser(t.db, u);
    await seed(t.db);
    // two workers reporting (their snapshots stay fresh for the length of the test)
    await t.db.pool.query(
      `INSERT INTO worker_metrics (worker_id, started_at, updated_at, metrics) VALUES
       ('worker-a1', now() - interval '2 hours', now() + interval '10 minutes', '[]'),
       ('worker-b2', now() - interval '25 minutes', now() + interval '10 minutes', '[]')`,
    );
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    web = spawnWeb(port, { DATABASE_URL: t.url, LOG_LEVEL: "warn" });
    await waitHealthy(base, web);
    mkdirSync(SHOTS, { recursive: true });
    browser = await launchBrowser();
    ({ ctx, page } = browser);
  }, 300_000);

  afterAll(async () => {
    await browser?.close();
    stopWeb(web);
    await t?.drop();
  });

  it("sends a visitor without a session to the sign-in page and back to the page asked for", async () => {
    await ctx.clearCookies();
    await page.goto(`${base}/commands`);
    await page.waitForURL(`${base}/login?next=%2Fcommands`);
    await page.getByRole("button", { name: "Sign in" }).waitFor();
    await shot("login");

    // A wrong password comes back to the form with the message, keeping where to go.
    await page.getByLabel("Email").fill(users.operator.email);
    await page.getByLabel("Password").fill("not the password");
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("alert").getByText("Wrong email or password").waitFor();

    await page.getByLabel("Email").fill(users.operator.email);
    await page.getByLabel("Password").fill(users.operator.password);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.waitForURL(`${base}/commands`);
    await page.getByRole("heading", { name: "Commands" }).waitFor();
    await page.getByRole("link", { name: shortId(ex[0]!) }).waitFor();
    await page.getByText(users.operator.email).waitFor();
    await shot("commands");
  });

  it("lets an operator find an exception through the filters and retry it with a reason", async () => {
    await page.getByRole("tab", { name: /Exception/ }).click();
    await page.waitForURL(/status=exception/);
    await page.getByLabel("Search").fill("order-ex-1");
    await page.waitForURL(/q=order-ex-1/);
    // Only the one command matches now.
    await page.getByRole("link", { name: shortId(ex[1]!) }).waitFor({ state: "detached" });
    await page.getByRole("link", { name: shortId(ex[0]!) }).click();
    await page.waitForURL(`${base}/commands/${ex[0]}`);
    const status = page.getByTestId("command-status");
    await status.getByText("Exception").waitFor();
    await page.getByText("connect ECONNRESET").waitFor();
    await shot("command-detail");

    await page.getByRole("button", { name: "Retry", exact: true }).click();
    const dialog = page.getByRole("dialog");
    await dialog.waitFor();
    await dialog.getByLabel("Reason").fill("Ledger confirmed the posting never arrived");
    await dialog.getByRole("button", { name: "Retry", exact: true }).click();
    await dialog.getByText("1 updated").waitFor();
    await dialog.getByRole("button", { name: "Done" }).click();
    await dialog.waitFor({ state: "hidden" });

    await status.getByText("Pending").waitFor();
    const trail = page.getByRole("list", { name: "Audit trail" });
    await trail.getByText("Ledger confirmed the posting never arrived").waitFor();
    await trail.getByText(`by ${users.operator.email}`).waitFor();
    const row = await t.db.pool.query(`SELECT status FROM commands WHERE id = $1`, [ex[0]]);
    expect(row.rows[0].status).toBe("pending");
  });

  it("retries a selection of two rows and reports both updated", async () => {
    await page.goto(`${base}/commands?status=exception`);
    await page.getByRole("tab", { name: /Exception/, selected: true }).waitFor();
    await page.getByLabel(`Select ${ex[1]}`).check();
    await page.getByLabel(`Select ${ex[2]}`).check();
    await page.getByTestId("selection-count").getByText("2 selected").waitFor();
    await page.getByRole("button", { name: "Retry", exact: true }).click();
    const dialog = page.getByRole("dialog");
    await dialog.getByRole("heading", { name: /2 selected commands/ }).waitFor();
    await dialog.getByLabel("Reason").fill("Ledger outage is over");
    await dialog.getByRole("button", { name: "Retry", exact: true }).click();
    await dialog.getByText("2 updated").waitFor();
    await dialog.getByText("0 skipped").waitFor();
    await shot("bulk-retry-result");
    await dialog.getByRole("button", { name: "Done" }).click();
    // Nothing is left in exception.
    await page.getByText("No command matches").waitFor();
    const rows = await t.db.pool.query(`SELECT status FROM commands WHERE id = ANY($1::uuid[])`, [[ex[1], ex[2]]]);
    expect(rows.rows.map((r) => r.status)).toEqual(["pending", "pending"]);
  });

  it("shows a viewer no action buttons, and the server refuses the viewer's action", async () => {
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.waitForURL(`${base}/login`);
    await signIn(page, "viewer", `/commands/${ex[0]}`);
    await page.getByTestId("command-status").getByText("Pending").waitFor();
    await page.getByRole("list", { name: "Audit trail" }).waitFor();
    for (const name of ["Retry", "Compensate", "Cancel", "Resolve"])
      expect(await page.getByRole("button", { name, exact: true }).count()).toBe(0);
    const nav = page.getByRole("navigation", { name: "Main" });
    await nav.getByRole("link", { name: "Commands" }).waitFor();
    expect(await nav.getByRole("link", { name: "Users" }).count()).toBe(0);
    expect(await nav.getByRole("link", { name: "API tokens" }).count()).toBe(0);

    await page.goto(`${base}/commands`);
    await page.getByRole("link", { name: shortId(ex[0]!) }).waitFor();
    expect(await page.getByRole("checkbox").count()).toBe(0);

    // An admin page tells a viewer that it needs the admin role.
    await page.goto(`${base}/users`);
    await page.getByRole("heading", { name: "Users needs the admin role" }).waitFor();

    const session = (await ctx.cookies(base)).find((c) => c.name === "conveyor_session");
    expect(session?.httpOnly).toBe(true);
    const res = await fetch(`${base}/api/trpc/commands.retry`, {
      method: "POST",
      headers: { "content-type": "application/json", origin: base, cookie: `conveyor_session=${session!.value}` },
      body: JSON.stringify({ ids: [ex[0]], reason: "viewer tries" }),
    });
    expect(res.status).toBe(403);
    expect(((await res.json()) as any).error.data.code).toBe("FORBIDDEN");
  });

  it("shows an admin the overview, tokens, users and audit log", async () => {
    await ctx.clearCookies();
    await signIn(page, "admin", "/");
    await page.getByRole("img", { name: /Finished commands per minute/ }).waitFor();
    await page.getByRole("link", { name: /Succeeded\s*36/ }).waitFor();
    await page.getByRole("region", { name: "Workers" }).getByText("2 workers running").waitFor();
    await shot("overview");

    await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "API tokens" }).click();
    await page.waitForURL(`${base}/tokens`);
    await page.getByRole("cell", { name: "orders-service", exact: true }).waitFor();
    await page.getByLabel("Name").fill("billing-service");
    await page.getByRole("button", { name: "Create token" }).click();
    const created = page.getByRole("region", { name: "New token" });
    await created.getByText("shown only once").waitFor();
    await created.getByRole("button", { name: "Copy token" }).waitFor();
    await created.getByRole("button", { name: "Copy signing secret" }).waitFor();
    await page.getByRole("cell", { name: "billing-service", exact: true }).waitFor();
    await shot("tokens");

    await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Users" }).click();
    await page.waitForURL(`${base}/users`);
    await page.getByText(users.viewer.email).waitFor();
    await shot("users");

    await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Audit log" }).click();
    await page.waitForURL(`${base}/audit`);
    await page.getByRole("cell", { name: "Ledger outage is over" }).waitFor();
    await page.getByRole("cell", { name: "Ledger confirmed the posting never arrived" }).waitFor();
    await shot("audit");
  });
});
