// Circuit breakers (DESIGN §7): closed → open after `threshold` consecutive
// exceptions of a scope's attempts → half-open (one probe) after a cooldown
// that doubles while probes fail → closed on a success. Pure decisions; the
// shared state is a flow_scopes row (server/db/flow-circuit.ts), changed under
// its row lock.
import type { CircuitState } from "./allowance";
import { MAX_COOLDOWN_MS, type CircuitSettings } from "./scopes";

export type Circuit = {
  state: CircuitState;
  since: Date;
  consecutive: number;
  cooldownMs: number | null;
  nextProbeAt: Date | null;
  probeLease: string | null;
};

/** What an attempt's outcome says of its counterpart: it answered, it did not (exception), or nothing (interrupted by us). */
export type Signal = "answered" | "exception" | null;

export function afterException(c: Circuit, s: CircuitSettings, leaseId: string, now: Date): Circuit {
  const consecutive = c.consecutive + 1;
  const open = (cooldownMs: number): Circuit => ({
    state: "open",
    since: now,
    consecutive,
    cooldownMs,
    nextProbeAt: new Date(now.getTime() + cooldownMs),
    probeLease: null,
  });
  if (c.state === "closed") return consecutive >= s.threshold ? open(s.cooldownSeconds * 1000) : { ...c, consecutive };
  if (c.state === "half_open" && c.probeLease === leaseId)
    return open(Math.min(MAX_COOLDOWN_MS, 2 * (c.cooldownMs ?? s.cooldownSeconds * 1000)));
  // Open, or half-open and this was not the probe (an attempt that started before): nothing new.
  return { ...c, consecutive };
}

/** A success (the counterpart answered): closed, from whatever state. */
export const afterAnswer = (c: Circuit, now: Date): Circuit =>
  c.state === "closed"
    ? { ...c, consecutive: 0 }
    : { state: "closed", since: now, consecutive: 0, cooldownMs: null, nextProbeAt: null, probeLease: null };

/**
 * Whether an exception uses the command's retry budget: not while its
 * circuit is open or half-open, nor the probe's own (DESIGN §7). `before`:
 * the circuit as it was when the exception was recorded.
 */
export const usesBudget = (before: Circuit, leaseId: string) =>
  before.state === "closed" && before.probeLease !== leaseId;

/** The settings in force: the scope's overrides, else the type's, else the defaults. */
export function circuitSettings(
  scope: Partial<CircuitSettings> | undefined,
  type: Partial<CircuitSettings> | undefined,
  defaults: CircuitSettings,
): CircuitSettings {
  return {
    threshold: scope?.threshold ?? type?.threshold ?? defaults.threshold,
    cooldownSeconds: scope?.cooldownSeconds ?? type?.cooldownSeconds ?? defaults.cooldownSeconds,
  };
}
