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
  updateUserRow,
  userByEmail,
  userById,
  type UserRole,
} from "../db/users";

export type Role = UserRole;
export type UserPrincipal = {
  kind: "user";
  userId: string;
  email: string;
  role: Role;
  mustChangePassword: boolean;
  sessionId: string;
};
export type UserSummary = {
  id: string;
  email: string;
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

const summary = (u: {
  id: string;
  email: string;
  role: Role;
  disabled: boolean;
  mustChangePassword: boolean;
  createdAt: Date;
  lastLoginAt: Date | null;
}): UserSummary => ({
  id: u.id,
  email: u.email,
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
  if (!u) {
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
  const sessionToken = randomBytes(32).toString("base64url");
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
