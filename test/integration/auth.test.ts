// Console sign-in: argon2 hashes, cookie flags, throttling, lockout, expiry, first admin, password change.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDb, type TestDb } from "../helpers/db";
import { clientAddress, handleSignIn, handleSignOut, PEER_HEADER, safeNext } from "../../server/auth/http";
import { createUser, ensureFirstAdmin, sessionUser, changePassword, signIn } from "../../server/auth/users";

let t: TestDb;
beforeAll(async () => {
  t = await createTestDb();
});
afterAll(async () => t?.drop());

// `ip` is the socket's peer as the web process reports it; `forwarded` what the client (or a proxy) put in X-Forwarded-For.
const form = (fields: Record<string, string>, ip = "10.0.0.1", forwarded?: string) =>
  new Request("http://localhost/api/auth/login", {
    method: "POST",
    headers: {
      "content-type": "application/x-www-form-urlencoded",
      [PEER_HEADER]: ip,
      ...(forwarded ? { "x-forwarded-for": forwarded } : {}),
    },
    body: new URLSearchParams(fields).toString(),
  });

describe("sign-in", () => {
  it("stores an argon2id hash and sets an httpOnly, same-site session cookie", async () => {
    await createUser(t.db, { email: "Ops@Example.com", password: "correct horse battery staple", role: "operator" });
    const { rows } = await t.db.pool.query(`SELECT email, password_hash FROM users WHERE email = 'ops@example.com'`);
    expect(rows[0].password_hash).toMatch(/^\$argon2id\$/);
    const res = await handleSignIn(
      t.db,
      form({ email: "ops@example.com", password: "correct horse battery staple", next: "/commands?status=exception" }),
      { secure: true },
    );
    expect(res.status).toBe(303);
    expect(res.headers.get("location")).toBe("/commands?status=exception");
    const cookie = res.headers.get("set-cookie")!;
    expect(cookie).toMatch(/^conveyor_session=[\w-]+; Path=\/; HttpOnly; SameSite=Lax; Max-Age=\d+; Secure$/);
    const token = decodeURIComponent(cookie.split(";")[0]!.split("=")[1]!);
    expect(await sessionUser(t.db, token)).toMatchObject({ email: "ops@example.com", role: "operator" });
    // the cookie value is not what the database holds
    expect(JSON.stringify((await t.db.pool.query(`SELECT * FROM sessions`)).rows)).not.toContain(token);
    const out = await handleSignOut(
      t.db,
      new Request("http://localhost/api/auth/logout", {
        method: "POST",
        headers: { cookie: `conveyor_session=${token}` },
      }),
      { secure: false },
    );
    expect(out.headers.get("set-cookie")).toMatch(/Max-Age=0/);
    expect(await sessionUser(t.db, token)).toBeNull();
  });

  it("refuses a wrong password and never redirects off-site", async () => {
    const res = await handleSignIn(
      t.db,
      form({ email: "ops@example.com", password: "nope", next: "//evil.example/x" }, "10.0.0.2"),
      { secure: false },
    );
    expect(res.status).toBe(303);
    // back to the form with the message and the email typed (never the password)
    expect(res.headers.get("location")).toMatch(
      /^\/login\?error=Wrong\+email\+or\+password&next=%2F&email=ops%40example\.com$/,
    );
    expect(safeNext("https://evil.example")).toBe("/");
  });

  it("locks an account after 5 wrong passwords in a row", async () => {
    await createUser(t.db, { email: "victim@example.com", password: "correct horse battery staple", role: "viewer" });
    for (let i = 0; i < 5; i++)
      await expect(signIn(t.db, "victim@example.com", "guess" + i)).rejects.toThrow(/Wrong email or password/);
    await expect(signIn(t.db, "victim@example.com", "correct horse battery staple")).rejects.toThrow(
      /Too many failed sign-ins/,
    );
  });

  it("throttles an address after many failures, for any email", async () => {
    let last: Response | undefined;
    for (let i = 0; i < 21; i++)
      last = await handleSignIn(t.db, form({ email: `nobody${i}@example.com`, password: "x" }, "10.9.9.9"), {
        secure: false,
      });
    expect(new URLSearchParams(last!.headers.get("location")!.split("?")[1]).get("error")).toMatch(
      /Too many failed sign-ins from here/,
    );
  });

  it("a made-up X-Forwarded-For does not escape the throttle unless TRUST_PROXY says a proxy sets it", async () => {
    const errorOf = (r: Response) => new URLSearchParams(r.headers.get("location")!.split("?")[1]).get("error");
    let last: Response | undefined;
    for (let i = 0; i < 21; i++)
      last = await handleSignIn(
        t.db,
        form({ email: `spoof${i}@example.com`, password: "x" }, "10.8.8.8", `203.0.113.${i}`),
        { secure: false },
      );
    expect(errorOf(last!)).toMatch(/Too many failed sign-ins from here/);
    // behind a trusted proxy, the forwarded address is the client's: another client is not throttled with them
    const other = await handleSignIn(
      t.db,
      form({ email: "spoof-x@example.com", password: "x" }, "10.8.8.8", "198.51.100.7"),
      { secure: false, trustProxy: true },
    );
    expect(errorOf(other)).not.toMatch(/Too many failed sign-ins/);
    expect(
      clientAddress(new Headers({ "x-forwarded-for": "198.51.100.7, 10.0.0.1", [PEER_HEADER]: "10.0.0.1" }), true),
    ).toBe("198.51.100.7");
    expect(clientAddress(new Headers({ "x-forwarded-for": "198.51.100.7", [PEER_HEADER]: "10.0.0.1" }), false)).toBe(
      "10.0.0.1",
    );
  });

  it("ends expired sessions and sessions of disabled users", async () => {
    const u = await createUser(t.db, {
      email: "temp@example.com",
      password: "correct horse battery staple",
      role: "viewer",
    });
    const { sessionToken } = await signIn(t.db, "temp@example.com", "correct horse battery staple");
    expect(await sessionUser(t.db, sessionToken)).not.toBeNull();
    await t.db.pool.query(`UPDATE sessions SET expires_at = now() - interval '1 second' WHERE user_id = $1`, [u.id]);
    expect(await sessionUser(t.db, sessionToken)).toBeNull();
    const again = await signIn(t.db, "temp@example.com", "correct horse battery staple");
    await t.db.pool.query(`UPDATE users SET disabled = true WHERE id = $1`, [u.id]);
    expect(await sessionUser(t.db, again.sessionToken)).toBeNull();
  });
});

describe("first admin", () => {
  it("is made once, with a generated password that must be changed", async () => {
    const other = await createTestDb();
    try {
      const first = await ensureFirstAdmin(other.db, {});
      expect(first).toEqual({ email: "admin@localhost", password: expect.stringMatching(/^[\w-]{16}$/) });
      expect(await ensureFirstAdmin(other.db, {})).toBeNull();
      const { sessionToken, user } = await signIn(other.db, "admin@localhost", first!.password!);
      expect(user.mustChangePassword).toBe(true);
      const me = (await sessionUser(other.db, sessionToken))!;
      await expect(
        changePassword(other.db, me.userId, "wrong", "a brand new long password", me.sessionId),
      ).rejects.toThrow(/current password is wrong/);
      await changePassword(other.db, me.userId, first!.password!, "a brand new long password", me.sessionId);
      expect((await sessionUser(other.db, sessionToken))!.mustChangePassword).toBe(false);
    } finally {
      await other.drop();
    }
  });

  it("comes from ADMIN_EMAIL / ADMIN_PASSWORD when given", async () => {
    const other = await createTestDb();
    try {
      expect(await ensureFirstAdmin(other.db, { email: "boss@example.com", password: "given long password" })).toEqual({
        email: "boss@example.com",
      });
      expect((await signIn(other.db, "boss@example.com", "given long password")).user).toMatchObject({
        role: "admin",
        mustChangePassword: false,
      });
    } finally {
      await other.drop();
    }
  });
});
