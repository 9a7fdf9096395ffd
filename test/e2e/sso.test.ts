// Single sign-on (DESIGN §9) in a real browser against the real web process
// and a real OpenID provider on loopback (test/helpers/oidc.ts). The provider
// is at 127.0.0.1 and Conveyor at localhost: two sites, so the flow's cookie
// must survive the provider's cross-site redirect back (SameSite=Lax).
//
// Two web processes: one with SSO and password sign-in, where accounts without
// a role claim are refused (OIDC_DEFAULT_ROLE=none); one with SSO only
// (PASSWORD_LOGIN=false) and the default role viewer.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ChildProcess } from "node:child_process";
import { mkdirSync } from "node:fs";
import path from "node:path";
import type { BrowserContext, Page } from "playwright-core";
import { buildIfNeeded } from "../../scripts/build-if-needed";
import { browserAvailable, launchBrowser, spawnWeb, stopWeb, waitHealthy } from "../helpers/web";
import { createTestDb, type TestDb } from "../helpers/db";
import { freePort } from "../helpers/proc";
import { startOidcProvider, type TestProvider } from "../helpers/oidc";
import { createUser, updateUser } from "../../server/auth/users";

const SHOTS = path.resolve("docs/screenshots");
const local = { email: "lena.local@example.com", password: "local-password-0001", role: "admin" as const };

let idp: TestProvider;
let a: { t: TestDb; web: ChildProcess; base: string };
let b: { t: TestDb; web: ChildProcess; base: string };
let browser: Awaited<ReturnType<typeof launchBrowser>> | undefined;
let ctx: BrowserContext;
let page: Page;

async function startWeb(port: number, env: Record<string, string>) {
  const t = await createTestDb();
  await createUser(t.db, local);
  const base = `http://localhost:${port}`;
  const web = spawnWeb(port, {
    DATABASE_URL: t.url,
    LOG_LEVEL: "warn",
    PUBLIC_URL: base,
    OIDC_ISSUER_URL: idp.issuer,
    OIDC_CLIENT_ID: idp.clientId,
    OIDC_CLIENT_SECRET: idp.clientSecret,
    ...env,
  });
  await waitHealthy(base, web);
  return { t, web, base };
}

/** A blank tab without any cookie (Conveyor's or the provider's): each sign-in starts from nothing. */
async function freshPage() {
  // The same tab (closing one mid-flow can hang chromium), emptied and without an earlier test's listeners.
  page.removeAllListeners("request");
  await page.goto("about:blank");
  await ctx.clearCookies();
  page.setDefaultTimeout(15_000);
}

/** From /login through the provider's sign-in page as `login`; returns once the provider redirects back. */
async function ssoSignIn(base: string, login: string, next = "/") {
  await page.goto(`${base}/login?next=${encodeURIComponent(next)}`);
  await page.getByRole("button", { name: "Sign in with SSO" }).click();
  await page.waitForURL(`${idp.issuer}/**`);
  await page.locator('input[name="login"]').fill(login);
  await page.locator('input[name="password"]').fill("any password");
  await page.getByRole("button", { name: "Sign-in" }).click();
}

const sessionCookie = async (base: string) =>
  (await ctx.cookies(base)).find((c) => c.name === "conveyor_session")?.value;

const userRow = async (t: TestDb, sub: string) =>
  (
    await t.db.pool.query(
      `SELECT id, email, name, role, oidc_issuer, password_hash, disabled FROM users WHERE oidc_subject = $1`,
      [sub],
    )
  ).rows;

const audits = async (t: TestDb, actor: string) =>
  (await t.db.pool.query(`SELECT action, details FROM audit_entries WHERE actor = $1 ORDER BY id`, [actor])).rows.map(
    (r) => ({ action: r.action as string, details: r.details as unknown }),
  );

describe.runIf(browserAvailable)("single sign-on in a real browser against a real OpenID provider", () => {
  beforeAll(async () => {
    buildIfNeeded(path.resolve("."));
    const [portA, portB] = [await freePort(), await freePort()];
    idp = await startOidcProvider({
      redirectUris: [portA, portB].map((p) => `http://localhost:${p}/api/auth/oidc/callback`),
    });
    [a, b] = await Promise.all([
      startWeb(portA, { OIDC_DEFAULT_ROLE: "none" }),
      startWeb(portB, { PASSWORD_LOGIN: "false" }),
    ]);
    mkdirSync(SHOTS, { recursive: true });
    browser = await launchBrowser();
    ({ ctx, page } = browser);
  }, 300_000);

  afterAll(async () => {
    await browser?.close();
    for (const w of [a, b]) stopWeb(w?.web);
    await idp?.close();
    for (const w of [a, b]) await w?.t.drop();
  });

  it("offers Sign in with SSO on /login beside the password form", async () => {
    await freshPage();
    await page.goto(`${a.base}/login`);
    await page.getByRole("button", { name: "Sign in with SSO" }).waitFor();
    expect(await page.getByLabel("Email").count()).toBe(1);
    expect(await page.getByLabel("Password").count()).toBe(1);
    await page.screenshot({ path: path.join(SHOTS, "login-sso.png") });
    // The sign-in page's policy lets its SSO form be redirected to the provider (and nowhere else).
    const csp = (await fetch(`${a.base}/login`)).headers.get("content-security-policy");
    expect(csp).toContain(`form-action 'self' ${idp.issuer};`);
    // local accounts still sign in with their password
    await page.getByLabel("Email").fill(local.email);
    await page.getByLabel("Password").fill(local.password);
    await page.getByRole("button", { name: "Sign in", exact: true }).click();
    await page.waitForURL(`${a.base}/`);
  });

  it("creates the user at the first sign-in with the claim's role, in Conveyor's own session", async () => {
    await freshPage();
    idp.accounts.set("ann", { email: "Ann.Ops@corp.example", name: "Ann Ops", conveyor_role: "operator" });
    await ssoSignIn(a.base, "ann", "/commands");
    await page.waitForURL(`${a.base}/commands`);
    await page.getByRole("heading", { name: "Commands" }).waitFor();
    // the same cookie as a password sign-in; the flow's own cookie is gone
    expect(await sessionCookie(a.base)).toBeTruthy();
    expect((await ctx.cookies(a.base)).map((c) => c.name)).not.toContain("conveyor_oidc");
    const me = await page.evaluate(async () => (await fetch("/api/trpc/auth.me")).json());
    expect(me.result.data).toEqual({
      kind: "user",
      email: "ann.ops@corp.example",
      role: "operator",
      mustChangePassword: false,
    });

    expect(await userRow(a.t, "ann")).toEqual([
      {
        id: expect.any(String),
        email: "ann.ops@corp.example",
        name: "Ann Ops",
        role: "operator",
        oidc_issuer: idp.issuer,
        password_hash: null,
        disabled: false,
      },
    ]);
    const source = { source: "sso", issuer: idp.issuer };
    expect(await audits(a.t, "ann.ops@corp.example")).toEqual([
      { action: "user.create", details: { email: "ann.ops@corp.example", role: "operator", ...source } },
      { action: "sign-in", details: source },
    ]);
    // no password sign-in for an SSO account
    const r = await fetch(`${a.base}/api/auth/login`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ email: "ann.ops@corp.example", password: "anything at all" }),
    });
    expect(r.status).toBe(401);
  });

  it("takes the role again at the next sign-in, and audits the change", async () => {
    const [before] = await userRow(a.t, "ann");
    idp.accounts.set("ann", { email: "ann.ops@corp.example", name: "Ann Ops", conveyor_role: ["staff", "admin"] });
    await freshPage();
    await ssoSignIn(a.base, "ann", "/users");
    await page.waitForURL(`${a.base}/users`);
    // an admin now: the users page opens, and marks her as an SSO user whose role is the provider's
    const row = page.getByRole("row").filter({ hasText: "ann.ops@corp.example" });
    await row.getByText("SSO", { exact: true }).waitFor();
    await row.getByText("from the identity provider").waitFor();
    expect(await row.textContent()).toContain("Ann Ops");
    const [after] = await userRow(a.t, "ann");
    expect(after).toEqual({ ...before, role: "admin" });
    const entries = await audits(a.t, "ann.ops@corp.example");
    expect(entries.slice(2)).toEqual([
      {
        action: "user.update",
        details: {
          email: "ann.ops@corp.example",
          role: "admin",
          previousRole: "operator",
          source: "sso",
          issuer: idp.issuer,
        },
      },
      { action: "sign-in", details: { source: "sso", issuer: idp.issuer } },
    ]);
    // a sign-in with the same role again writes no role change
    await freshPage();
    await ssoSignIn(a.base, "ann", "/");
    await page.waitForURL(`${a.base}/`);
    expect((await audits(a.t, "ann.ops@corp.example")).slice(4).map((e) => e.action)).toEqual(["sign-in"]);
  });

  it("refuses an account without a role when the default is none: a message on /login, no session, no user", async () => {
    await freshPage();
    idp.accounts.set("norole", { email: "no.role@corp.example", name: "No Role", conveyor_role: "superuser" });
    await ssoSignIn(a.base, "norole", "/commands");
    await page.waitForURL(`${a.base}/login?**`);
    const alert = page.locator("p[role=alert]");
    await alert.getByText("gave this account no Conveyor role").waitFor();
    expect(await alert.textContent()).toContain('claim "conveyor_role"');
    await page.screenshot({ path: path.join(SHOTS, "login-sso-refused.png") });
    expect(await sessionCookie(a.base)).toBeUndefined();
    expect(await userRow(a.t, "norole")).toEqual([]);
    expect(await audits(a.t, "no.role@corp.example")).toEqual([]);
  });

  it("refuses an answer whose state is not this browser's, and the genuine answer once the flow was refused", async () => {
    await freshPage();
    idp.accounts.set("mallory", { email: "mallory@corp.example", conveyor_role: "admin" });
    // The browser starts a sign-in; the authorization request it is sent with names the flow's state.
    const authorize = new Promise<URL>((resolve) =>
      page.on("request", (r) => {
        if (r.url().startsWith(`${idp.issuer}/auth?`)) resolve(new URL(r.url()));
      }),
    );
    await page.goto(`${a.base}/login`);
    await page.getByRole("button", { name: "Sign in with SSO" }).click();
    await page.waitForURL(`${idp.issuer}/**`);
    const state = (await authorize).searchParams.get("state")!;
    expect(state).toBeTruthy();
    const providerPage = page.url();

    // An answer with another state (as an attacker's own sign-in would carry) is refused, and ends the flow.
    const forged = new URL(`${a.base}/api/auth/oidc/callback`);
    forged.search = new URLSearchParams({ code: "an-attackers-code", state: `${state}x`, iss: idp.issuer }).toString();
    await page.goto(forged.href);
    await page.waitForURL(`${a.base}/login?**`);
    await page.locator("p[role=alert]").getByText("state mismatch").waitFor();
    expect(await sessionCookie(a.base)).toBeUndefined();
    expect((await ctx.cookies(a.base)).map((c) => c.name)).not.toContain("conveyor_oidc");

    // The genuine answer, delivered now (the provider's sign-in finished), finds no sign-in to finish.
    await page.goto(providerPage);
    await page.locator('input[name="login"]').fill("mallory");
    await page.locator('input[name="password"]').fill("any password");
    await page.getByRole("button", { name: "Sign-in" }).click();
    await page.waitForURL(`${a.base}/login?**`);
    await page.locator("p[role=alert]").getByText("could not be finished").waitFor();
    expect(await sessionCookie(a.base)).toBeUndefined();
    expect(await userRow(a.t, "mallory")).toEqual([]);
  });

  it("refuses a disabled user", async () => {
    await freshPage();
    idp.accounts.set("dora", { email: "dora@corp.example", conveyor_role: "operator" });
    await ssoSignIn(a.base, "dora", "/");
    await page.waitForURL(`${a.base}/`);
    const [dora] = await userRow(a.t, "dora");
    await updateUser(a.t.db, { actor: local.email, userId: null }, { id: dora.id, disabled: true });

    await freshPage();
    await ssoSignIn(a.base, "dora", "/");
    await page.waitForURL(`${a.base}/login?**`);
    await page.locator("p[role=alert]").getByText("Your Conveyor account is disabled").waitFor();
    expect(await sessionCookie(a.base)).toBeUndefined();
    expect((await audits(a.t, "dora@corp.example")).map((e) => e.action)).toEqual(["user.create", "sign-in"]);
  });

  it("with PASSWORD_LOGIN=false shows no password form and refuses the password endpoint", async () => {
    await freshPage();
    await page.goto(`${b.base}/login`);
    await page.getByRole("button", { name: "Sign in with SSO" }).waitFor();
    expect(await page.getByLabel("Email").count()).toBe(0);
    expect(await page.getByLabel("Password").count()).toBe(0);
    expect(await page.getByRole("button", { name: "Sign in", exact: true }).count()).toBe(0);

    const json = await fetch(`${b.base}/api/auth/login`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ email: local.email, password: local.password }),
    });
    expect(json.status).toBe(403);
    expect(await json.json()).toEqual({ ok: false, error: expect.stringMatching(/password is turned off/) });
    expect(json.headers.get("set-cookie")).toBeNull();
    const form = await fetch(`${b.base}/api/auth/login`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ email: local.email, password: local.password }).toString(),
      redirect: "manual",
    });
    expect(form.status).toBe(303);
    expect(form.headers.get("set-cookie")).toBeNull();
    expect(new URL(form.headers.get("location")!, b.base).searchParams.get("error")).toMatch(/password is turned off/);
    expect((await b.t.db.pool.query(`SELECT count(*)::int AS n FROM sessions`)).rows[0].n).toBe(0);

    // SSO works, and an account without a role claim gets the default role (viewer)
    idp.accounts.set("vic", { email: "vic@corp.example", name: "Vic" });
    await ssoSignIn(b.base, "vic", "/");
    await page.waitForURL(`${b.base}/`);
    expect(await userRow(b.t, "vic")).toMatchObject([{ role: "viewer" }]);
  });
});
