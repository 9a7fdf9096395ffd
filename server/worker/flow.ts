// A worker's side of flow control (DESIGN §7). It keeps the list of gated
// scopes (refreshed when the fleet is told of a change, NOTIFY conveyor_flow,
// and every few seconds), builds claim units from it, counts their commands
// out with the gated claim, and feeds every attempt's outcome to its scope's
// circuit breaker. What it has seen itself it acts on at once: a command of a
// scope whose circuit it knows to be open is handed back unstarted.
import type { Db } from "../db/client";
import type { Registry } from "../command-types/registry";
import type { Logger } from "../log";
import type { Listener } from "../db/listener";
import type { Claimed } from "../engine/types";
import { claimGated, ensureScopes, gatedScopes } from "../db/flow-claim";
import { recordOutcome } from "../db/flow-circuit";
import { allowance, spend, type CircuitState } from "../flow/allowance";
import { afterAnswer, afterException, circuitSettings, usesBudget } from "../flow/circuit";
import {
  CIRCUIT_DEFAULTS,
  circuitScopeOf,
  keyText,
  unitsOf,
  unitText,
  type Limit,
  type ScopeKey,
  type Unit,
} from "../flow/scopes";
import type { WorkerMetrics } from "./metrics";
import type { FlowTraffic } from "./flow-traffic";

const REFRESH_MS = 5_000;
const BUSY_RETRY_MS = 25;

/** A circuit as this worker last heard of it; `seen` orders what it heard (see `refresh`). */
type Known = { state: CircuitState; consecutive: number; seen: number };
/**
 * A unit not worth trying before `until`. `empty`: nothing was due (lifted when commands arrive); `full`: its
 * limit or pause held everything back (lifted when one of its commands finishes here, when limits change, or after
 * the poll interval: the worker whose command freed the room claims it first, so no herd of workers chases one slot);
 * `time`: a token or a probe comes at `until`.
 */
type Block = { until: number; kind: "empty" | "full" | "time" };

export type Counterpart = {
  /** An attempt of `c` ended in exception: does it use the command's retry budget? (Not while its circuit is open.) */
  exception(c: Claimed): Promise<boolean>;
  /** The counterpart answered an attempt of `c`. */
  answered(c: Claimed): Promise<void>;
};

export type FlowControl = Counterpart & {
  start(): void;
  stop(): void;
  /** Types the plain claim must leave to the gated claim (limits declared in code). */
  readonly codeGatedTypes: string[];
  /** Claims gated commands, at most `room`; `wake` is called when a blocked unit may be tried again. */
  claim(room: number): Promise<Claimed[]>;
  /** A command claimed earlier whose circuit this worker now knows to be open: hand it back instead of starting it. */
  holdBack(c: Claimed): boolean;
  /** A command of a gated unit finished: its unit may have room again. */
  released(c: Claimed): void;
};

export function flowControl(o: {
  db: Db;
  registry: Registry;
  log: Logger;
  workerId: string;
  leaseMs: number;
  pollMs: number;
  listener?: Listener;
  wake: () => void;
  metrics?: WorkerMetrics;
  traffic?: Pick<FlowTraffic, "held">;
}): FlowControl {
  const { db, registry, log } = o;
  const codeLimits = new Map<string, Limit>();
  for (const name of registry.names()) {
    const t = registry.get(name)!;
    const l: Limit = { ...(t.flow ?? {}) };
    if (t.concurrency !== undefined) l.concurrency = t.concurrency;
    delete l.circuit;
    if (l.concurrency !== undefined || l.ratePerSecond !== undefined) codeLimits.set(name, l);
  }
  const codeGatedTypes = [...codeLimits.keys()];
  const codeLimit = (s: ScopeKey) => (s.kind === "type" ? (codeLimits.get(s.name) ?? null) : null);
  const typeCircuit = (type: string) => registry.get(type)?.flow?.circuit;

  let units: Unit[] = unitsOf(codeGatedTypes.map((name) => ({ kind: "type", name })));
  const blocks = new Map<string, Block>();
  const known = new Map<string, Known>();
  let refreshing: Promise<void> | null = null;
  let refreshAgain = false;
  let heard = 0; // counts what this worker heard of circuits (its own records, the fleet's notifications)
  let timer: ReturnType<typeof setInterval> | undefined;
  let wakeTimer: ReturnType<typeof setTimeout> | undefined;
  let wakeAt = Infinity;

  const hear = (k: string, state: CircuitState, consecutive: number) =>
    known.set(k, { state, consecutive, seen: ++heard });

  // A refresh reads a snapshot that may predate what the worker heard while it ran (the circuit opened by the
  // attempt that finished a millisecond ago): that stays, or a command claimed before would start against an open
  // circuit. And a change told while a refresh runs may be missing from its snapshot: one more refresh follows.
  const refresh = (): Promise<void> => {
    if (refreshing) {
      refreshAgain = true;
      return refreshing;
    }
    const before = heard;
    return (refreshing = (async () => {
      try {
        const rows = await gatedScopes(db);
        const gated = rows.filter((r) => r.gated).map((r) => ({ kind: r.kind, name: r.name }));
        for (const t of codeGatedTypes)
          if (!gated.some((g) => g.kind === "type" && g.name === t)) gated.push({ kind: "type", name: t });
        units = unitsOf(gated);
        for (const [k, v] of known) if (v.seen <= before) known.delete(k);
        for (const r of rows) {
          const k = keyText(r);
          if (!known.has(k)) known.set(k, { state: r.circuitState, consecutive: r.consecutive, seen: before });
        }
      } catch (err) {
        log.warn({ err: String(err) }, "could not read the flow scopes; keeping the last known");
      } finally {
        refreshing = null;
        if (refreshAgain) {
          refreshAgain = false;
          void refresh().then(o.wake);
        }
      }
    })());
  };

  const wakeLater = (at: number) => {
    if (at >= wakeAt) return;
    wakeAt = at;
    clearTimeout(wakeTimer);
    wakeTimer = setTimeout(
      () => {
        wakeAt = Infinity;
        o.wake();
      },
      Math.max(0, at - Date.now()),
    );
  };
  const clearEmptyBlocks = () => {
    for (const [k, b] of blocks) if (b.kind === "empty") blocks.delete(k);
  };

  const onFlow = (payload: string) => {
    try {
      const m = JSON.parse(payload) as { kind?: string; name?: string; state?: CircuitState; consecutive?: number };
      if (m.kind && m.name && m.state) hear(`${m.kind}:${m.name}`, m.state, m.consecutive ?? 0);
    } catch {
      // a change of limits or pauses: no payload to read
    }
    blocks.clear();
    void refresh().then(o.wake);
  };

  const circuitOf = (c: Claimed) => circuitScopeOf(c.type, c.targetHost);

  // Never throws: an attempt's outcome must be written whatever became of its circuit's bookkeeping (the
  // database may be away right now; then the exception counts as without a breaker, and an answer is forgotten).
  const record = async (c: Claimed, exception: boolean) => {
    try {
      return await recordUnsafe(c, exception);
    } catch (err) {
      log.warn({ err: String(err), command: c.id }, "could not record the attempt on its circuit breaker");
      return null;
    }
  };
  const recordUnsafe = async (c: Claimed, exception: boolean) => {
    const scope = circuitOf(c);
    const change = await recordOutcome(
      db,
      scope,
      exception,
      (before, s, now) => (exception ? afterException(before, s, c.leaseId, now) : afterAnswer(before, now)),
      (overrides) => circuitSettings(overrides, typeCircuit(c.type), CIRCUIT_DEFAULTS),
    );
    if (!change) return null;
    hear(keyText(scope), change.after.state, change.after.consecutive);
    if (change.after.state !== change.before.state) {
      o.metrics?.circuit(scope, change.after.state);
      const fields = { scope: keyText(scope), consecutiveExceptions: change.after.consecutive, command: c.id };
      if (change.after.state === "open")
        log.warn(
          { ...fields, nextProbeAt: change.after.nextProbeAt?.toISOString(), cooldownMs: change.after.cooldownMs },
          "circuit opened",
        );
      else if (change.after.state === "closed") log.info(fields, "circuit closed");
      void refresh().then(o.wake);
    }
    return change;
  };

  return {
    codeGatedTypes,
    start() {
      o.listener?.on("conveyor_flow", onFlow);
      o.listener?.on("conveyor_commands", clearEmptyBlocks);
      void ensureScopes(
        db,
        codeGatedTypes.map((name) => ({ kind: "type" as const, name })),
      )
        .then(refresh)
        .then(o.wake)
        .catch((err) => log.warn({ err: String(err) }, "could not prepare the flow scopes"));
      timer = setInterval(() => void refresh(), REFRESH_MS);
    },
    stop() {
      clearInterval(timer);
      clearTimeout(wakeTimer);
    },
    async claim(room) {
      const out: Claimed[] = [];
      const now = Date.now();
      for (const u of units) {
        if (room - out.length <= 0) break;
        const k = unitText(u);
        const b = blocks.get(k);
        if (b && b.until > now) continue;
        blocks.delete(k);
        const want = room - out.length;
        const r = await claimGated(db, o.workerId, u, want, o.leaseMs, codeLimit, allowance, spend);
        out.push(...r.claimed);
        if (r.busy) {
          blocks.set(k, { until: now + BUSY_RETRY_MS, kind: "time" });
          wakeLater(now + BUSY_RETRY_MS);
          continue;
        }
        const a = r.allowance;
        if (!a) continue;
        if (a.reason && r.claimed.length >= a.take) {
          // Held back: by time (a token, a probe), or until something changes (a completion, a resume).
          o.metrics?.heldBack(u, a.reason, want - r.claimed.length);
          o.traffic?.held(u, want - r.claimed.length);
          if (a.wakeAt) {
            blocks.set(k, { until: a.wakeAt.getTime(), kind: "time" });
            wakeLater(a.wakeAt.getTime());
          } else blocks.set(k, { until: now + o.pollMs, kind: "full" });
        } else if (r.claimed.length < a.take) blocks.set(k, { until: now + o.pollMs, kind: "empty" }); // nothing more due
      }
      return out;
    },
    holdBack(c) {
      if (c.probe) return false;
      const k = known.get(keyText(circuitOf(c)));
      return !!k && k.state !== "closed";
    },
    released(c) {
      for (const u of units)
        if (
          u.type === c.type &&
          (u.host === null ? !u.exceptHosts.includes(c.targetHost ?? "") : u.host === c.targetHost)
        )
          blocks.delete(unitText(u));
    },
    async exception(c) {
      const change = await record(c, true);
      return change ? usesBudget(change.before, c.leaseId) : true;
    },
    async answered(c) {
      const k = known.get(keyText(circuitOf(c)));
      // The common case costs nothing: a closed circuit that has counted no exception.
      if (!c.probe && (!k || (k.state === "closed" && k.consecutive === 0))) return;
      await record(c, false);
    },
  };
}
