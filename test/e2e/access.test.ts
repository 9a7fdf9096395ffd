// Sign-in, admin pages and tokens in a real browser against the real web
// process: a wrong password keeps the email typed; a viewer opening an admin
// page is told it needs the admin role; an admin rotates a token's signing
// secret (asked first, shown once); every page has an icon.
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
import { createUser } from "../../server/auth/users";
import { signingSecretOf } from "../../server/auth/tokens";
import { resolveSecretKey } from "../../server/db/settings";

const SHOTS = path.resolve("docs/screenshots");
const admin = { email: "ada.admin@example.com", password: "admin-password-0001", role: "admin" as const };
const viewer = { email: "vic.viewer@example.com", password: "viewer-password-0001", role: "viewer" as const };

let t: TestDb;
let web: ChildProcess;
let base: string;
let ctx: BrowserContext;
let page: Page;
let browser: Awaited<ReturnType<typeof launchBrowser>> | undefined;
let billing: Awaited<ReturnType<typeof newToken>>;

describe.runIf(browserAvailable)("access and tokens in a real browser", () => {
  beforeAll(async () => {
    buildIfNeeded(path.resolve("."));
    t = await createTestDb();
    for (const u of [admin, viewer]) await createUser(t.db, u);
    billing = await newToken(t.db, "client", "billing-service");
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    web = spawnWeb(port, { DATABASE_URL: t.url, LOG_LEVEL: "warn" });
    await waitHealthy(base, web);
    mkdirSync(SHOTS, { recursive: true });
    browser = await launchBrowser();
    ({ ctx, page } = browser);
  }, 300_000);

  /** Each test signs in on a new tab without cookies: a navigation still settling on the last test's tab cannot move this one. */
  async function freshPage() {
    await ctx.clearCookies();
    const old = page;
    page = await ctx.newPage();
    await old.close();
  }

  afterAll(async () => {
    await browser?.close();
    stopWeb(web);
    await t?.drop();
  });

  it("keeps the email typed after a wrong password, and asks only for the password again", async () => {
    await freshPage();
    await page.goto(`${base}/login?next=%2Fcommands`);
    await page.getByLabel("Email").fill(viewer.email);
    await page.getByLabel("Password").fill("not the password");
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("alert").getByText("Wrong email or password").waitFor();
    expect(await page.getByLabel("Email").inputValue()).toBe(viewer.email);
    expect(await page.getByLabel("Password").inputValue()).toBe("");
    expect(await page.evaluate(() => document.activeElement?.id)).toBe("password");
    await page.screenshot({ path: path.join(SHOTS, "login-wrong-password.png") });
    // the password alone is enough now, and the way back is kept
    await page.getByLabel("Password").fill(viewer.password);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.waitForURL(`${base}/commands`);
  });

  it("tells a viewer that the tokens and users pages need the admin role, instead of sending them elsewhere", async () => {
    await freshPage();
    await signIn(page, base, viewer.email, viewer.password, "/");
    for (const [p, name] of [
      ["/tokens", "API tokens"],
      ["/users", "Users"],
    ] as const) {
      await page.goto(`${base}${p}`);
      const box = page.getByRole("alert", { name: `${name} needs the admin role` });
      await box.getByRole("heading", { name: `${name} needs the admin role` }).waitFor();
      expect(page.url()).toBe(`${base}${p}`);
      expect(await box.textContent()).toContain(`You are signed in as ${viewer.email} with the viewer role.`);
      if (p === "/tokens") await page.screenshot({ path: path.join(SHOTS, "needs-admin-role.png") });
    }
    // and nothing of the admin page itself
    await page.goto(`${base}/tokens`);
    await page.getByRole("heading", { name: "API tokens needs the admin role" }).waitFor();
    expect(await page.getByText("billing-service").count()).toBe(0);
    await page.getByRole("link", { name: "Go to the overview" }).click();
    await page.waitForURL(`${base}/`);
    // The client-side navigation has landed (not only changed the URL) before the next test signs in again.
    await page.getByRole("heading", { name: "Overview" }).waitFor();
  });

  it("lets an admin rotate a token's signing secret: asks first, then shows the new secret once", async () => {
    await freshPage();
    await signIn(page, base, admin.email, admin.password, "/tokens");
    const stored = async () => signingSecretOf(t.db, await resolveSecretKey(t.db, undefined), billing.id);
    const rotate = page.getByRole("button", { name: "Rotate the signing secret of billing-service" });

    // Cancelling changes nothing.
    await rotate.click();
    const ask = page.getByRole("dialog", { name: 'Rotate the signing secret of "billing-service"?' });
    await ask.getByText("the old one stops verifying them at once").waitFor();
    await ask.getByRole("button", { name: "Cancel" }).click();
    await ask.waitFor({ state: "hidden" });
    expect(await stored()).toBe(billing.signingSecret);

    await rotate.click();
    await ask.getByRole("button", { name: "Rotate secret" }).click();
    const shown = page.getByRole("dialog", { name: 'New signing secret of "billing-service"' });
    const secret = (await shown.getByLabel("New signing secret").textContent())!.trim();
    expect(secret).toMatch(/^whsec_/);
    expect(secret).not.toBe(billing.signingSecret);
    expect(await stored()).toBe(secret);
    await page.screenshot({ path: path.join(SHOTS, "token-rotate-secret.png") });
    await shown.getByRole("button", { name: "I have stored it" }).click();
    // Closed, then removed from the page: the secret is nowhere in it any more (shown once).
    await shown.waitFor({ state: "hidden" });
    await page.locator('code[aria-label="New signing secret"]').waitFor({ state: "detached" });
    expect(await page.content()).not.toContain(secret);
    const audit = (await t.db.pool.query(`SELECT actor FROM audit_entries WHERE action = 'token.rotateSecret'`)).rows;
    expect(audit).toEqual([{ actor: admin.email }]);
  });

  it("serves an icon: /favicon.ico and the icon every page links to", async () => {
    const ico = await fetch(`${base}/favicon.ico`);
    expect(ico.status).toBe(200);
    expect(ico.headers.get("content-type")).toMatch(/^image\//);
    expect(Buffer.from(await ico.arrayBuffer()).subarray(0, 4)).toEqual(Buffer.from([0, 0, 1, 0])); // an ICO file
    for (const p of ["/login", "/tokens"]) {
      await page.goto(`${base}${p}`);
      const hrefs = await page
        .locator('link[rel="icon"]')
        .evaluateAll((ls) => ls.map((l) => (l as HTMLLinkElement).href));
      expect(hrefs.length).toBeGreaterThan(0);
      for (const h of hrefs) {
        const r = await fetch(h);
        expect([h, r.status, r.headers.get("content-type")?.startsWith("image/")]).toEqual([h, 200, true]);
      }
    }
  });
});
