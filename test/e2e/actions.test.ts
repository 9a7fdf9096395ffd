// Operator actions in a real browser (Chromium through playwright-core)
// against the real web process and a fresh database: what cannot apply is
// not offered (disabled, the server's reason as its tooltip), Resolve has no
// default outcome, and a selection or "all that match this filter" says how
// many commands will change and how many will be skipped before anyone
// confirms. Assertions wait on the page (locators), never on the clock.
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
import { moveTo } from "../helpers/fixtures";
import { createUser } from "../../server/auth/users";
import { directIntake, submit } from "../../server/commands/submit";
import { registry } from "../../server/command-types";

const SHOTS = path.resolve("docs/screenshots");
const operator = { email: "oliver.operator@example.com", password: "operator-password-01", role: "operator" as const };

let t: TestDb;
let web: ChildProcess;
let base: string;
let page: Page;
let browser: Awaited<ReturnType<typeof launchBrowser>> | undefined;
const ids = { succeeded: "", exception: [] as string[] };
const FAILED = 60; // more than one page of the list

async function seed(db: TestDb["db"]) {
  const client = await newToken(db, "client", "orders-service");
  const intake = directIntake(db, registry);
  const add = async (key: string, extra: Record<string, unknown> = {}) =>
    (
      await submit(intake, client.id, {
        type: "http",
        payload: {
          method: "POST",
          url: `https://orders.example/api/${key}`,
          compensateUrl: `https://orders.example/api/${key}/undo`,
          ...extra,
        },
        idempotencyKey: key,
        runAt: "2999-01-01T00:00:00Z",
      })
    ).id;
  // The failed ones first: the list shows the newest first, so the others are on its first page.
  const failed: string[] = [];
  for (let i = 1; i <= FAILED; i++) failed.push(await add(`order-declined-${i}`));
  await db.pool.query(
    `UPDATE commands SET status = 'running', lease_id = gen_random_uuid(),
       locked_by = 'worker-a1', locked_until = now() + interval '1 minute'
       WHERE id = ANY($1::uuid[])`,
    [failed],
  );
  await db.pool.query(
    `UPDATE commands SET status = 'failed', lease_id = NULL, locked_by = NULL, locked_until = NULL,
       attempt_count = 1, failure = '{"status": 422}'::jsonb
       WHERE id = ANY($1::uuid[])`,
    [failed],
  );
  ids.succeeded = await add("order-ok-1");
  await moveTo(db, ids.succeeded, ["running", "succeeded"]);
  for (let i = 1; i <= 3; i++) {
    const id = await add(`order-ex-${i}`);
    await moveTo(db, id, ["running", "exception"]);
    ids.exception.push(id);
  }
}

const shot = (name: string) => page.screenshot({ path: path.join(SHOTS, `${name}.png`) });
const statusOf = async (id: string) =>
  (await t.db.pool.query(`SELECT status FROM commands WHERE id = $1`, [id])).rows[0].status;

describe.runIf(browserAvailable)("operator actions in a real browser", () => {
  beforeAll(async () => {
    buildIfNeeded(path.resolve("."));
    t = await createTestDb();
    await createUser(t.db, operator);
    await seed(t.db);
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    web = spawnWeb(port, { DATABASE_URL: t.url, LOG_LEVEL: "warn" });
    await waitHealthy(base, web);
    mkdirSync(SHOTS, { recursive: true });
    browser = await launchBrowser();
    ({ page } = browser);
    await signIn(page, base, operator.email, operator.password, "/commands");
  }, 300_000);

  afterAll(async () => {
    await browser?.close();
    stopWeb(web);
    await t?.drop();
  });

  it("a succeeded command offers only Compensate: Retry, Cancel and Resolve are disabled and say why", async () => {
    await page.goto(`${base}/commands/${ids.succeeded}`);
    await page.getByTestId("command-status").getByText("Succeeded").waitFor();
    const actions = page.getByRole("group", { name: "Actions" });
    const button = (name: string) => actions.getByRole("button", { name, exact: true });
    // The buttons wait for the server's answer (disabled, "Checking…"), then say why they cannot apply.
    await expect
      .poll(() => button("Retry").getAttribute("title"))
      .toBe("Not available: succeeded: retry applies only to failed, exception, cancelled commands");
    expect(await button("Retry").isDisabled()).toBe(true);
    expect(await button("Cancel").isDisabled()).toBe(true);
    expect(await button("Cancel").getAttribute("title")).toBe(
      "Not available: succeeded: cancel applies only to pending, retrying, awaiting commands",
    );
    expect(await button("Resolve").isDisabled()).toBe(true);
    expect(await button("Resolve").getAttribute("title")).toBe(
      "Not available: succeeded: resolve applies only to exception commands",
    );
    expect(await button("Compensate").isEnabled()).toBe(true);
    await button("Retry").hover({ force: true });
    await shot("actions-succeeded");

    // An exception: everything but Cancel.
    await page.goto(`${base}/commands/${ids.exception[0]}`);
    await page.getByTestId("command-status").getByText("Exception").waitFor();
    await expect.poll(() => button("Retry").isEnabled()).toBe(true);
    for (const name of ["Compensate", "Resolve"]) expect(await button(name).isEnabled(), name).toBe(true);
    expect(await button("Cancel").isDisabled()).toBe(true);
    expect(await button("Cancel").getAttribute("title")).toBe(
      "Not available: exception: cancel applies only to pending, retrying, awaiting commands",
    );
  });

  it("Resolve chooses no outcome for the operator: its button stays disabled until one is chosen", async () => {
    await page.goto(`${base}/commands/${ids.exception[0]}`);
    await page.getByTestId("command-status").getByText("Exception").waitFor();
    await page.getByRole("group", { name: "Actions" }).getByRole("button", { name: "Resolve", exact: true }).click();
    const dialog = page.getByRole("dialog");
    const succeeded = dialog.getByRole("radio", { name: "Succeeded (the backend did it)" });
    const failed = dialog.getByRole("radio", { name: "Failed (it did not happen)" });
    const confirm = dialog.getByRole("button", { name: "Resolve", exact: true });
    await dialog.getByLabel("Reason").waitFor();
    expect(await succeeded.isChecked()).toBe(false);
    expect(await failed.isChecked()).toBe(false);
    await dialog.getByLabel("Reason").fill("The ledger has no such posting");
    expect(await confirm.isDisabled()).toBe(true);
    await dialog.getByText("Choose the outcome first.").waitFor();
    await dialog.getByTestId("action-preview").getByText("1 command will change").waitFor();
    await shot("resolve-no-default");
    await confirm.click({ force: true }); // a disabled button does nothing
    expect(await statusOf(ids.exception[0]!)).toBe("exception");

    await failed.check();
    expect(await confirm.isEnabled()).toBe(true);
    await confirm.click();
    await dialog.getByText("1 updated").waitFor();
    await dialog.getByRole("button", { name: "Done" }).click();
    await page.getByTestId("command-status").getByText("Failed").waitFor();
    expect(await statusOf(ids.exception[0]!)).toBe("failed");
  });

  it("a selection says how many commands will change and how many will be skipped before confirming", async () => {
    await page.goto(`${base}/commands`);
    await page.getByLabel(`Select ${ids.exception[1]}`).check();
    await page.getByLabel(`Select ${ids.exception[2]}`).check();
    await page.getByLabel(`Select ${ids.succeeded}`).check();
    await page.getByTestId("selection-count").getByText("3 selected").waitFor();
    const bar = page.getByLabel("Selection");
    // None of the three is pending, retrying or awaiting: Cancel would change nothing.
    await expect
      .poll(() => bar.getByRole("button", { name: "Cancel", exact: true }).getAttribute("title"))
      .toBe(
        "Not available: 2 × exception: cancel applies only to pending, retrying, awaiting commands;" +
          " 1 × succeeded: cancel applies only to pending, retrying, awaiting commands",
      );
    expect(await bar.getByRole("button", { name: "Cancel", exact: true }).isDisabled()).toBe(true);
    await bar.getByRole("button", { name: "Retry", exact: true }).click();
    const dialog = page.getByRole("dialog");
    await dialog.getByRole("heading", { name: "Retry 3 selected commands?" }).waitFor();
    const preview = dialog.getByTestId("action-preview");
    await preview.getByText("2 commands will change").waitFor();
    await preview.getByText("1 will be skipped").waitFor();
    await preview.getByText("1 × succeeded: retry applies only to failed, exception, cancelled commands").waitFor();
    await shot("selection-preview");
    await dialog.getByLabel("Reason").fill("Ledger is back");
    await dialog.getByRole("button", { name: "Retry", exact: true }).click();
    await dialog.getByText("2 updated").waitFor();
    await dialog.getByText("1 skipped").waitFor();
    await dialog.getByRole("button", { name: "Done" }).click();
    expect(await statusOf(ids.exception[1]!)).toBe("pending");
    expect(await statusOf(ids.succeeded)).toBe("succeeded");
  });

  it('"Select all that match this filter" says how many commands that is, before the dialog and in it', async () => {
    // The seeded failed ones (and the exception resolved as failed above): more than one page.
    const n = (await t.db.pool.query(`SELECT count(*)::int AS n FROM commands WHERE status = 'failed'`)).rows[0].n;
    expect(n).toBeGreaterThanOrEqual(FAILED);
    await page.goto(`${base}/commands?status=failed`);
    await page.getByRole("tab", { name: /Failed/, selected: true }).waitFor();
    await page.getByLabel("Select all on this page").check();
    const bar = page.getByLabel("Selection");
    await bar.getByRole("button", { name: `Select all ${n} that match this filter` }).waitFor();
    await shot("select-all-count");
    await bar.getByRole("button", { name: `Select all ${n} that match this filter` }).click();
    await page
      .getByTestId("selection-count")
      .getByText(`All ${n} commands that match this filter are selected`)
      .waitFor();
    await bar.getByRole("button", { name: "Retry", exact: true }).click();
    const dialog = page.getByRole("dialog");
    await dialog.getByRole("heading", { name: `Retry all ${n} commands that match this filter?` }).waitFor();
    await dialog.getByTestId("action-preview").getByText(`${n} commands will change`).waitFor();
    await dialog.getByTestId("action-preview").getByText("0 will be skipped").waitFor();
    await shot("select-all-preview");
    await dialog.getByLabel("Reason").fill("Card processor fixed");
    await dialog.getByRole("button", { name: "Retry", exact: true }).click();
    await dialog.getByText(`${n} updated`).waitFor();
    const { rows } = await t.db.pool.query(`SELECT count(*)::int AS n FROM commands WHERE status = 'failed'`);
    expect(rows[0].n).toBe(0);
  });
});
