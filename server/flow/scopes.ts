// Scopes of flow control (DESIGN §7): a command type, or for `http` a target
// host. A command belongs to its type's scope and, when it has a host, to the
// host's; its circuit breaker is the host's when it has one, else the type's.
// Pure: the worker, the API and the tests share it.

export type ScopeKind = "type" | "host";
export type ScopeKey = { kind: ScopeKind; name: string };
/** The contract's shape: `{ type }` or `{ host }`. */
export type Scope = { type: string; host?: undefined } | { host: string; type?: undefined };

export const toKey = (s: Scope): ScopeKey =>
  s.host !== undefined ? { kind: "host", name: s.host } : { kind: "type", name: s.type! };
export const toScope = (k: ScopeKey): Scope => (k.kind === "host" ? { host: k.name } : { type: k.name });
export const keyText = (k: ScopeKey) => `${k.kind}:${k.name}`;

export type CircuitSettings = { threshold: number; cooldownSeconds: number };
export const CIRCUIT_DEFAULTS: CircuitSettings = { threshold: 5, cooldownSeconds: 10 };
/** The cooldown doubles while probes fail, up to this. */
export const MAX_COOLDOWN_MS = 5 * 60_000;

/** A limit on a scope; every field optional (an empty limit holds nothing back). */
export type Limit = {
  concurrency?: number;
  ratePerSecond?: number;
  burst?: number;
  circuit?: Partial<CircuitSettings>;
};

/** What a command type may declare in code (CommandType.flow). */
export type TypeFlow = Limit;

/** The URL's host name, lower case, without port (IPv6 in brackets), or null when it has none. */
export function hostOf(url: string): string | null {
  try {
    const h = new URL(url).hostname.toLowerCase();
    return h === "" ? null : h;
  } catch {
    return null;
  }
}

/** The scope whose circuit breaker an attempt of this command feeds. */
export const circuitScopeOf = (type: string, host: string | null): ScopeKey =>
  host !== null ? { kind: "host", name: host } : { kind: "type", name: type };

/** The burst of a rate limit: as given, else ceil(ratePerSecond). */
export const burstOf = (l: Pick<Limit, "ratePerSecond" | "burst">) =>
  l.burst ?? (l.ratePerSecond !== undefined ? Math.max(1, Math.ceil(l.ratePerSecond)) : undefined);

/**
 * A claim unit: the commands one gated claim counts out together. A gated
 * host's unit is its `http` commands; a gated type's unit is its commands
 * whose host is not gated (those go through their host's unit, which also
 * respects the type's gate). `scopes`: every gated scope the unit's commands
 * belong to (all locked by the claim); `circuit`: the scope whose breaker
 * decides (absent: its circuit is closed, or it has none).
 */
export type Unit = {
  type: string;
  /** A host, or null: every host not in `exceptHosts`. */
  host: string | null;
  exceptHosts: string[];
  scopes: ScopeKey[];
  circuit: ScopeKey | null;
};

export const unitText = (u: Unit) => (u.host !== null ? `host:${u.host}` : `type:${u.type}`);

/**
 * The units for a set of gated scopes. `httpType`: the type whose commands
 * have hosts. A gated type other than the http one has no hosts, so its unit
 * is all of its commands.
 */
export function unitsOf(gated: ScopeKey[], httpType = "http"): Unit[] {
  const hosts = gated.filter((g) => g.kind === "host").map((g) => g.name);
  const types = new Set(gated.filter((g) => g.kind === "type").map((g) => g.name));
  const units: Unit[] = hosts.map((h) => ({
    type: httpType,
    host: h,
    exceptHosts: [],
    scopes: [
      ...(types.has(httpType) ? [{ kind: "type" as const, name: httpType }] : []),
      { kind: "host" as const, name: h },
    ],
    circuit: { kind: "host", name: h },
  }));
  for (const t of types) {
    units.push({
      type: t,
      host: null,
      exceptHosts: t === httpType ? hosts : [],
      scopes: [{ kind: "type", name: t }],
      circuit: t === httpType ? null : { kind: "type", name: t },
    });
  }
  return units;
}
