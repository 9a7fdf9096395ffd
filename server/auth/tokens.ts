// API tokens (DESIGN §3/§4). Each token is one client: it owns the commands it
// submits and a signing secret for their callbacks. The token is shown once
// and stored as a SHA-256 hash; the signing secret is stored encrypted. An
// admin's changes are audited in the transaction that makes them.
import { randomUUID } from "node:crypto";
import type { Db } from "../db/client";
import { decrypt, encrypt, randomSecret, sha256Hex } from "../crypto";
import { AppError } from "../errors";
import {
  activeClientByTokenHash,
  allClients,
  countClients,
  insertClient,
  insertClientIfAbsent,
  replaceSigningSecret,
  revokeClient,
  signingSecretEncOf,
  touchClient,
} from "../db/tokens";

export type Scope = "client" | "admin";
export type TokenPrincipal = { kind: "token"; clientId: string; name: string; scope: Scope };

export type TokenSummary = {
  id: string;
  name: string;
  scope: Scope;
  prefix: string;
  createdAt: string;
  createdBy: string | null;
  lastUsedAt: string | null;
  revokedAt: string | null;
};

const TOKEN_PREFIX = "cvy_";

/**
 * A new token and its signing secret, shown once. With an `actor` (an admin
 * from the console) the audit entry is written in the same transaction;
 * without one (npm start's first token, benchmarks, tests) there is none.
 */
export async function createToken(
  db: Db,
  key: Buffer,
  input: { name: string; scope: Scope; createdBy: string },
  actor?: string,
) {
  const token = randomSecret(TOKEN_PREFIX);
  const signingSecret = randomSecret("whsec_");
  const id = randomUUID();
  await insertClient(
    db,
    {
      id,
      name: input.name,
      scope: input.scope,
      tokenHash: sha256Hex(token),
      tokenPrefix: token.slice(0, TOKEN_PREFIX.length + 6),
      signingSecretEnc: encrypt(key, signingSecret),
      createdBy: input.createdBy,
    },
    actor === undefined
      ? null
      : { actor, action: "token.create", reason: null, details: { id, name: input.name, scope: input.scope } },
  );
  return { id, token, signingSecret };
}

/** `npm start` on a fresh install: one admin token, unless a token exists. */
export async function createFirstToken(
  db: Db,
  key: Buffer,
): Promise<{ token: string; signingSecret: string } | undefined> {
  if ((await countClients(db)) > 0) return undefined;
  const { token, signingSecret } = await createToken(db, key, {
    name: "first token (npm start)",
    scope: "admin",
    createdBy: "npm start",
  });
  return { token, signingSecret };
}

export async function listTokens(db: Db): Promise<TokenSummary[]> {
  const rows = await allClients(db);
  return rows.map((r) => ({
    id: r.id,
    name: r.name,
    scope: r.scope,
    prefix: r.tokenPrefix,
    createdAt: r.createdAt.toISOString(),
    createdBy: r.createdBy,
    lastUsedAt: r.lastUsedAt?.toISOString() ?? null,
    revokedAt: r.revokedAt?.toISOString() ?? null,
  }));
}

/**
 * Revokes a token; it is refused from the next request on. Revoking twice is
 * harmless. `by.actor` (an admin from the console) is audited in the same
 * transaction; tests revoke on nobody's behalf.
 */
export async function revokeToken(
  db: Db,
  id: string,
  by: { actor?: string; cache?: TokenCache } = {},
): Promise<{ id: string; revokedAt: string }> {
  const { actor, cache } = by;
  // The notification (delivered at commit) empties every web process's token cache.
  const revokedAt = await revokeClient(
    db,
    id,
    TOKENS_CHANNEL,
    actor === undefined ? null : { actor, action: "token.revoke", reason: null, details: { id } },
  );
  cache?.clear();
  if (!revokedAt) throw new AppError("NOT_FOUND", "No such token");
  return { id, revokedAt: revokedAt.toISOString() };
}

/**
 * A new signing secret for a token's callbacks, shown once: callbacks sent
 * from now on are signed with it (the old one stops verifying). Audited in the
 * same transaction; a revoked token's secret is not rotated.
 */
export async function rotateSigningSecret(
  db: Db,
  key: Buffer,
  id: string,
  actor: string,
): Promise<{ id: string; signingSecret: string }> {
  const signingSecret = randomSecret("whsec_");
  const r = await replaceSigningSecret(
    db,
    id,
    encrypt(key, signingSecret),
    (name) => ({ actor, action: "token.rotateSecret", reason: null, details: { id, name } }),
    TOKENS_CHANNEL,
  );
  if (!r.ok && r.why === "missing") throw new AppError("NOT_FOUND", "No such token");
  if (!r.ok && r.why === "revoked")
    throw new AppError(
      "CONFLICT",
      `The token "${r.name}" is revoked (${r.revokedAt.toISOString()}): its signing secret cannot be rotated. Create a new token instead.`,
    );
  return { id, signingSecret };
}

/** Revocations and secret rotations are announced here (at commit): processes drop what they cached about tokens. */
export const TOKENS_CHANNEL = "conveyor_tokens";

/**
 * Remembers authenticated tokens for a moment, so that a busy client does not
 * cost a query per request. Only used while the process hears revocations
 * (LISTEN conveyor_tokens): a revocation empties every process's cache as it
 * commits, and while the listener is down nothing is cached.
 */
export class TokenCache {
  private entries = new Map<string, { p: TokenPrincipal; until: number }>();
  constructor(
    private readonly isLive: () => boolean,
    private readonly ttlMs = 5_000,
  ) {}
  get(hash: string): TokenPrincipal | undefined {
    const e = this.entries.get(hash);
    if (!e || !this.isLive() || e.until < Date.now()) return undefined;
    return e.p;
  }
  set(hash: string, p: TokenPrincipal) {
    if (!this.isLive()) return;
    if (this.entries.size > 10_000) this.entries.clear();
    this.entries.set(hash, { p, until: Date.now() + this.ttlMs });
  }
  clear() {
    this.entries.clear();
  }
}

// last_used_at is a hint for operators; write it at most once a minute per token and process.
const lastTouched = new Map<string, number>();

/** The principal behind a bearer token, or null when it is unknown or revoked. Checked on every request. */
export async function authenticateToken(db: Db, token: string, cache?: TokenCache): Promise<TokenPrincipal | null> {
  if (!token.startsWith(TOKEN_PREFIX) && token.length < 24) return null;
  const hash = sha256Hex(token);
  const hit = cache?.get(hash);
  if (hit) return hit;
  const r = await activeClientByTokenHash(db, hash);
  if (!r) return null;
  const now = Date.now();
  if ((lastTouched.get(r.id) ?? 0) < now - 60_000) {
    lastTouched.set(r.id, now);
    touchClient(db, r.id).catch(() => {});
  }
  const principal: TokenPrincipal = { kind: "token", clientId: r.id, name: r.name, scope: r.scope };
  cache?.set(hash, principal);
  return principal;
}

/** BOOTSTRAP_API_TOKEN: make sure an admin-scoped token with exactly this value exists. */
export async function ensureBootstrapToken(db: Db, key: Buffer, token: string): Promise<void> {
  await insertClientIfAbsent(db, {
    id: randomUUID(),
    name: "bootstrap",
    scope: "admin",
    tokenHash: sha256Hex(token),
    tokenPrefix: token.slice(0, 10),
    signingSecretEnc: encrypt(key, randomSecret("whsec_")),
    createdBy: "BOOTSTRAP_API_TOKEN",
  });
}

export async function signingSecretOf(db: Db, key: Buffer, clientId: string): Promise<string> {
  const enc = await signingSecretEncOf(db, clientId);
  if (enc === undefined) throw new Error(`No API client ${clientId}`);
  return decrypt(key, enc);
}
