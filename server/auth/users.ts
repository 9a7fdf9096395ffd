// Console users: argon2id password hashes, roles, sign-in with throttling,
// cookie sessions (the cookie holds a random token; the database its SHA-256).
// Each change is audited in the transaction that makes it (server/db/users.ts).
import { randomBytes, randomUUID } from "node:crypto";
import { hash, verify } from "@node-rs/argon2";
import type { Db } from "../db/client";
import { sha256Hex } from "../crypto";
import { AppError } from "../errors";
import { deleteSession, extendSession, liveSession, openSession } from "../db/sessions";
import {
  allUsers,
  countUsers,
  insertUser,
  recordSignInFailure,
  replacePassword,
  signInOidcUser,
  updateUserRow,
  userByEmail,
  userById,
  type UserRole,
  type UserRow,
} from "../db/users";

export type Role = UserRole;
export type UserPrincipal = {
  kind: "user";
  userId: string;
  email: string;
  role: Role;
  mustChangePassword: boolean;
  /** Signs in with SSO (no password of its own). */
  sso: boolean;
  sessionId: string;
};
export type UserSummary = {
  id: string;
  email: string;
  /** The identity provider's display name (SSO users). */
  name: string | null;
  /** Signs in with SSO: its role is the provider's, taken again at each sign-in. */
  sso: boolean;
  role: Role;
  disabled: boolean;
  mustChangePassword: boolean;
  createdAt: string;
  lastLoginAt: string | null;
};

export const SESSION_COOKIE = "conveyor_session";
const SESSION_IDLE_MS = 12 * 3600_000;
export const SESSION_MAX_MS = 7 * 24 * 3600_000;
const MAX_FAILURES = 5;
const LOCK_MS = 5 * 60_000;

const hashPassword = (password: string) => hash(password); // argon2id, library defaults (19 MiB, t=2)
const DUMMY_HASH = hashPassword("not a real password, used to spend the same time on unknown emails");

const normalizeEmail = (email: string) => email.trim().toLowerCase();

/**
 * Creates a user. With an `actor` (an admin creating it from the console) the
 * audit entry is written in the same transaction; without one (the first
 * admin, tests) there is none.
 */
export async function createUser(
  db: Db,
  input: { email: string; password: string; role: Role; mustChangePassword?: boolean },
  actor?: string,
): Promise<UserSummary> {
  const email = normalizeEmail(input.email);
  const u = await insertUser(
    db,
    {
      id: randomUUID(),
      email,
      passwordHash: await hashPassword(input.password),
      role: input.role,
      mustChangePassword: input.mustChangePassword ?? false,
    },
    actor === undefined
      ? null
      : (u) => ({ actor, action: "user.create", reason: null, details: { email: u.email, role: u.role } }),
  );
  if (!u)
    throw new AppError("CONFLICT", `A user with email ${email} already exists`, [
      { path: ["email"], message: "already taken" },
    ]);
  return summary(u);
}

const summary = (u: UserRow): UserSummary => ({
  id: u.id,
  email: u.email,
  name: u.name,
  sso: u.oidcSubject !== null,
  role: u.role,
  disabled: u.disabled,
  mustChangePassword: u.mustChangePassword,
  createdAt: u.createdAt.toISOString(),
  lastLoginAt: u.lastLoginAt?.toISOString() ?? null,
});

export async function listUsers(db: Db): Promise<UserSummary[]> {
  return (await allUsers(db)).map(summary);
}

/**
 * An admin changes a user's role or disables it (its sessions end), audited
 * in the same transaction. `by.userId` is the admin's own user (null for a
 * token): nobody disables themselves or takes away their own admin role.
 */
export async function updateUser(
  db: Db,
  by: { actor: string; userId: string | null },
  input: { id: string; role?: Role; disabled?: boolean },
): Promise<UserSummary> {
  if (by.userId === input.id && (input.disabled || (input.role && input.role !== "admin"))) {
    throw new AppError("BAD_REQUEST", "You cannot disable yourself or take away your own admin role", [
      { path: ["id"], message: "is you" },
    ]);
  }
  const u = await updateUserRow(db, input.id, { role: input.role, disabled: input.disabled }, (u) => ({
    actor: by.actor,
    action: "user.update",
    reason: null,
    details: { email: u.email, role: input.role, disabled: input.disabled },
  }));
  if (!u) throw new AppError("NOT_FOUND", "No such user");
  return summary(u);
}

/**
 * Checks a password. After MAX_FAILURES wrong passwords in a row the account
 * is locked for LOCK_MS; unknown emails cost the same time as known ones. A
 * successful sign-in opens a session and is audited in one transaction.
 */
export async function signIn(
  db: Db,
  emailRaw: string,
  password: string,
): Promise<{ sessionToken: string; user: UserSummary }> {
  const email = normalizeEmail(emailRaw);
  const u = await userByEmail(db, email);
  const refused = () => new AppError("UNAUTHORIZED", "Wrong email or password");
  // An SSO user has no password: refused like an unknown email (the same time spent, the same answer).
  if (!u || u.passwordHash === null) {
    await verify(await DUMMY_HASH, password).catch(() => false);
    throw refused();
  }
  if (u.lockedUntil && u.lockedUntil > new Date()) {
    throw new AppError("TOO_MANY_REQUESTS", `Too many failed sign-ins; try again after ${u.lockedUntil.toISOString()}`);
  }
  const ok = await verify(u.passwordHash, password).catch(() => false);
  if (!ok || u.disabled) {
    if (!ok) {
      const failures = u.failedLogins + 1;
      if (failures >= MAX_FAILURES) await recordSignInFailure(db, u.id, 0, new Date(Date.now() + LOCK_MS));
      else await recordSignInFailure(db, u.id, failures, null);
    }
    throw refused();
  }
  const sessionToken = newSessionToken();
  await openSession(
    db,
    {
      sessionHash: sha256Hex(sessionToken),
      userId: u.id,
      expiresAt: new Date(Date.now() + SESSION_IDLE_MS),
      signedInAt: new Date(),
    },
    { actor: u.email, action: "sign-in", reason: null },
  );
  return { sessionToken, user: summary(u) };
}

const newSessionToken = () => randomBytes(32).toString("base64url");

/** Who the identity provider says signed in (from a validated ID token and the userinfo answer). */
export type OidcIdentity = { issuer: string; subject: string; email: string; name: string | null };

/**
 * A sign-in with SSO whose identity and role are already established (see
 * server/auth/oidc.ts): the user is created at its first sign-in and its
 * email, name and role are taken again at every one; a session opens. All in
 * one transaction with its audit entries: `user.create` the first time,
 * `user.update` (with the role before) when the role changed, and `sign-in`.
 * A disabled user, or an email that is another account's, is refused.
 */
export async function signInWithOidc(
  db: Db,
  who: OidcIdentity,
  role: Role,
): Promise<{ sessionToken: string; user: UserSummary; created: boolean; previousRole: Role | null }> {
  const email = normalizeEmail(who.email);
  if (!/^[^@\s]+@[^@\s]+$/.test(email))
    throw new AppError(
      "UNAUTHORIZED",
      "Your identity provider sent no usable email address for this account (the email claim); Conveyor needs one.",
    );
  const sessionToken = newSessionToken();
  const source = { source: "sso", issuer: who.issuer };
  const r = await signInOidcUser(
    db,
    { id: randomUUID(), issuer: who.issuer, subject: who.subject, email, name: who.name, role },
    { sessionHash: sha256Hex(sessionToken), expiresAt: new Date(Date.now() + SESSION_IDLE_MS), signedInAt: new Date() },
    {
      created: (u) => ({ actor: u.email, action: "user.create", reason: null, details: { email, role, ...source } }),
      roleChanged: (u, previous) => ({
        actor: u.email,
        action: "user.update",
        reason: null,
        details: { email, role: u.role, previousRole: previous, ...source },
      }),
      signedIn: (u) => ({ actor: u.email, action: "sign-in", reason: null, details: source }),
    },
  );
  if (!r.ok && r.why === "disabled")
    throw new AppError("FORBIDDEN", "Your Conveyor account is disabled. Ask an admin of this Conveyor to enable it.");
  if (!r.ok)
    throw new AppError(
      "CONFLICT",
      `Another Conveyor account already has the email ${r.email}; single sign-on does not take it over. Ask an admin of this Conveyor.`,
    );
  return { sessionToken, user: summary(r.user), created: r.created, previousRole: r.previousRole };
}

/** The user behind a session cookie, or null (unknown, expired, or user disabled). Slides the idle expiry. */
export async function sessionUser(db: Db, token: string): Promise<UserPrincipal | null> {
  const id = sha256Hex(token);
  const r = await liveSession(db, id);
  if (!r) return null;
  if (Date.now() - r.last_seen_at.getTime() > 60_000) {
    await extendSession(
      db,
      id,
      new Date(Math.min(r.created_at.getTime() + SESSION_MAX_MS, Date.now() + SESSION_IDLE_MS)),
    );
  }
  return {
    kind: "user",
    userId: r.user_id,
    email: r.email,
    role: r.role,
    mustChangePassword: r.must_change_password,
    sso: r.sso,
    sessionId: id,
  };
}

export async function signOut(db: Db, token: string): Promise<void> {
  await deleteSession(db, sha256Hex(token));
}

/** A user changes their own password: their other sessions end, this one stays; audited in the same transaction. */
export async function changePassword(
  db: Db,
  userId: string,
  current: string,
  next: string,
  keepSessionId: string,
): Promise<void> {
  const u = await userById(db, userId);
  if (!u) throw new AppError("NOT_FOUND", "No such user");
  if (u.passwordHash === null)
    throw new AppError(
      "BAD_REQUEST",
      "This account signs in with single sign-on: it has no password here (your identity provider keeps it)",
      [{ path: ["current"], message: "no password: single sign-on" }],
    );
  if (!(await verify(u.passwordHash, current).catch(() => false))) {
    throw new AppError("BAD_REQUEST", "The current password is wrong", [{ path: ["current"], message: "is wrong" }]);
  }
  await replacePassword(db, userId, await hashPassword(next), keepSessionId, {
    actor: u.email,
    action: "user.password",
    reason: null,
  });
}

/** The first admin's email when ADMIN_EMAIL is unset (its password is generated and printed once). */
const GENERATED_ADMIN_EMAIL = "admin@localhost";

/**
 * The first admin, when there is no user yet: ADMIN_EMAIL/ADMIN_PASSWORD, or
 * (under npm start) admin@localhost with a generated password that must be
 * changed at first sign-in. Returns what to tell the person starting it.
 */
export async function ensureFirstAdmin(
  db: Db,
  given: { email?: string; password?: string },
): Promise<{ email: string; password?: string } | null> {
  if ((await countUsers(db)) > 0) return null;
  const email = given.email ?? GENERATED_ADMIN_EMAIL;
  const password = given.password ?? randomBytes(12).toString("base64url");
  try {
    await createUser(db, { email, password, role: "admin", mustChangePassword: !given.password });
  } catch (err) {
    if (err instanceof AppError && err.code === "CONFLICT") return null; // another process made it first
    throw err;
  }
  return given.password ? { email } : { email, password };
}

/** The admin a first start without ADMIN_EMAIL made, if there is one: whether its generated password is still the one printed then. */
export async function generatedAdmin(
  db: Db,
): Promise<{ email: string; passwordUnchanged: boolean; disabled: boolean } | null> {
  const u = await userByEmail(db, GENERATED_ADMIN_EMAIL);
  return u ? { email: GENERATED_ADMIN_EMAIL, passwordUnchanged: u.mustChangePassword, disabled: u.disabled } : null;
}
