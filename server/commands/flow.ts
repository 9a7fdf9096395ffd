// Flow control as operators and admins see it (DESIGN §7): the scopes with
// their limits, pauses, circuits and traffic, the ordering keys an exception
// blocks; and the changes (limits: admins; pause and resume: operators), each
// audited in its transaction and told to the fleet at commit.
import type { Db } from "../db/client";
import type { Registry } from "../command-types/registry";
import {
  blockedKeys,
  limitOf,
  listScopes,
  pauseScope,
  removeScopeLimit,
  resumeScope,
  setScopeLimit,
  type ScopeChange,
  type ScopeListRow,
  type ScopeSettings,
} from "../db/flow-scopes";
import { toKey, toScope, type Limit, type Scope } from "../flow/scopes";
import { AppError } from "../errors";

export type Actor = { name: string };
export type LimitInput = {
  concurrency?: number;
  ratePerSecond?: number;
  burst?: number;
  circuit?: { threshold?: number; cooldownSeconds?: number };
};

/** Blocked keys shown at most (oldest first): past that, the page says there are more. */
const MAX_BLOCKED_KEYS = 500;

/** The limit a type declares in code (CommandType.flow, CommandType.concurrency), in force while no admin sets one. */
function codeLimitOf(registry: Registry, type: string): Limit | null {
  const t = registry.get(type);
  if (!t) return null;
  const l: Limit = {};
  if (t.concurrency !== undefined) l.concurrency = t.concurrency;
  else if (t.flow?.concurrency !== undefined) l.concurrency = t.flow.concurrency;
  if (t.flow?.ratePerSecond !== undefined) l.ratePerSecond = t.flow.ratePerSecond;
  if (t.flow?.burst !== undefined) l.burst = t.flow.burst;
  if (t.flow?.circuit) l.circuit = { ...t.flow.circuit };
  return Object.keys(l).length ? l : null;
}

const iso = (d: Date | null) => (d ? d.toISOString() : null);

function present(registry: Registry, r: ScopeListRow) {
  const scope = toScope(r);
  return {
    scope,
    limit: limitOf(r),
    /** The type's own limit in code, for a type scope that has one (overridden by `limit` when set). */
    codeLimit: r.kind === "type" ? codeLimitOf(registry, r.name) : null,
    paused: r.paused,
    pausedReason: r.paused ? (r.paused_reason ?? undefined) : undefined,
    pausedAt: r.paused ? (iso(r.paused_at) ?? undefined) : undefined,
    pausedBy: r.paused ? (r.paused_by ?? undefined) : undefined,
    inFlight: r.in_flight,
    circuit: {
      state: r.circuit_state,
      since: iso(r.circuit_since),
      consecutiveExceptions: r.consecutive_exceptions,
      nextProbeAt: r.circuit_state === "closed" ? undefined : (iso(r.next_probe_at) ?? undefined),
    },
    waiting: r.waiting,
    attemptsPerSecond: Math.round(r.attempts_per_second * 100) / 100,
    lastHour: { attempts: r.hour_attempts, exceptions: r.hour_exceptions, held: r.hour_held },
  };
}

/** The types whose code limits them (the worker counts their attempts out as it does a scope with a limit set). */
export const codeLimitedTypes = (registry: Registry) =>
  registry.names().filter((n) => {
    const l = codeLimitOf(registry, n);
    return l !== null && (l.concurrency !== undefined || l.ratePerSecond !== undefined);
  });

export async function listFlow(db: Db, registry: Registry) {
  const [scopes, keys] = await Promise.all([
    listScopes(db, codeLimitedTypes(registry)),
    blockedKeys(db, MAX_BLOCKED_KEYS + 1),
  ]);
  return {
    scopes: scopes.map((r) => present(registry, r)),
    blockedKeys: keys.slice(0, MAX_BLOCKED_KEYS).map((k) => ({
      clientName: k.client_name,
      orderingKey: k.ordering_key,
      blockedBy: k.blocked_by,
      /** The blocking command's type, and since when it is in exception. */
      type: k.type,
      blockedSince: k.blocked_since.toISOString(),
      waiting: k.waiting,
    })),
    /** More keys are blocked than listed. */
    moreBlockedKeys: keys.length > MAX_BLOCKED_KEYS,
  };
}

/** A type scope must name a registered type: a typo would otherwise limit nothing, silently. */
function checkScope(registry: Registry, scope: Scope) {
  if (scope.type !== undefined && !registry.get(scope.type))
    throw new AppError("BAD_REQUEST", `Unknown command type "${scope.type}"`, [
      {
        path: ["scope", "type"],
        message: `unknown command type "${scope.type}"; known types: ${registry.names().join(", ")}`,
      },
    ]);
}

const answer = (scope: Scope, c: ScopeChange) => ({ scope, ...c.after, changed: c.changed });
export type ScopeAnswer = { scope: Scope; changed: boolean } & ScopeSettings;

export async function setLimit(
  db: Db,
  registry: Registry,
  scope: Scope,
  limit: LimitInput,
  actor: Actor,
  reason: string | null = null,
): Promise<ScopeAnswer> {
  checkScope(registry, scope);
  if (limit.burst !== undefined && limit.ratePerSecond === undefined)
    throw new AppError("BAD_REQUEST", "burst needs ratePerSecond", [
      { path: ["burst"], message: "a burst is part of a rate limit: give ratePerSecond too" },
    ]);
  const c = await setScopeLimit(
    db,
    toKey(scope),
    {
      concurrency: limit.concurrency ?? null,
      ratePerSecond: limit.ratePerSecond ?? null,
      burst: limit.burst ?? null,
      circuitThreshold: limit.circuit?.threshold ?? null,
      circuitCooldownSeconds: limit.circuit?.cooldownSeconds ?? null,
    },
    { actor: actor.name, action: "flow.setLimit", reason, scope },
  );
  return answer(scope, c);
}

export async function removeLimit(
  db: Db,
  registry: Registry,
  scope: Scope,
  actor: Actor,
  reason: string | null = null,
): Promise<ScopeAnswer> {
  checkScope(registry, scope);
  const c = await removeScopeLimit(db, toKey(scope), { actor: actor.name, action: "flow.removeLimit", reason, scope });
  return answer(scope, c);
}

/** No attempt of the scope starts until it is resumed; those in flight finish. */
export async function pause(
  db: Db,
  registry: Registry,
  scope: Scope,
  actor: Actor,
  reason: string,
): Promise<ScopeAnswer> {
  checkScope(registry, scope);
  const c = await pauseScope(db, toKey(scope), actor.name, { actor: actor.name, action: "flow.pause", reason, scope });
  return answer(scope, c);
}

export async function resume(
  db: Db,
  registry: Registry,
  scope: Scope,
  actor: Actor,
  reason: string | null,
): Promise<ScopeAnswer> {
  checkScope(registry, scope);
  const c = await resumeScope(db, toKey(scope), { actor: actor.name, action: "flow.resume", reason, scope });
  return answer(scope, c);
}
